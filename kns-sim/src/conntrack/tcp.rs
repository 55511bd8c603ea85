//! The TCP states connection tracking follows, reduced to what timeouts need.

use std::time::Duration;

use super::{ConntrackConfig, Direction};
use crate::wire::TcpFlags;

/// A tracked TCP connection's state, named as `conntrack -L` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TcpState {
    /// SYN seen, no answer yet.
    SynSent,
    /// SYN-ACK seen in reply.
    SynRecv,
    /// Handshake completed (or picked up mid-stream).
    Established,
    /// One side sent FIN.
    FinWait,
    /// The other side acknowledged that FIN without sending its own.
    CloseWait,
    /// Both sides sent FIN.
    LastAck,
    /// Both FINs were acknowledged.
    TimeWait,
    /// Reset.
    Close,
}

impl TcpState {
    /// The state of a connection opened by a packet with `flags` (a SYN, or a bare ACK picked
    /// up mid-stream).
    pub fn start(flags: TcpFlags) -> TcpState {
        if flags.syn { TcpState::SynSent } else { TcpState::Established }
    }

    /// The state after a packet of `dir` with `flags`; `fin_seen` says which directions have
    /// sent a FIN so far (this packet included).
    pub fn next(self, dir: Direction, flags: TcpFlags, fin_seen: [bool; 2]) -> TcpState {
        use TcpState::*;
        if flags.rst {
            return Close;
        }
        match self {
            SynSent if dir == Direction::Reply && flags.syn && flags.ack => SynRecv,
            SynSent if dir == Direction::Original && flags.syn => SynSent,
            SynRecv if dir == Direction::Original && flags.ack && !flags.syn => Established,
            Close if dir == Direction::Original && flags.syn && !flags.ack => SynSent,
            TimeWait | Close => self,
            _ if fin_seen[0] && fin_seen[1] => {
                if flags.ack && !flags.fin && self == LastAck {
                    TimeWait
                } else {
                    LastAck
                }
            }
            _ if fin_seen[0] || fin_seen[1] => {
                let from_closer = fin_seen[dir_index(dir)];
                if from_closer {
                    if self == CloseWait { CloseWait } else { FinWait }
                } else if flags.ack {
                    CloseWait
                } else {
                    self
                }
            }
            SynSent | SynRecv => self,
            _ => Established,
        }
    }

    /// How long a connection in this state lives without traffic.
    pub fn timeout(self, config: &ConntrackConfig) -> Duration {
        match self {
            TcpState::SynSent => config.tcp_syn_sent,
            TcpState::SynRecv => config.tcp_syn_recv,
            TcpState::Established => config.tcp_established,
            TcpState::FinWait => config.tcp_fin_wait,
            TcpState::CloseWait => config.tcp_close_wait,
            TcpState::LastAck => config.tcp_last_ack,
            TcpState::TimeWait => config.tcp_time_wait,
            TcpState::Close => config.tcp_close,
        }
    }

    /// The name `conntrack -L` prints.
    pub fn name(self) -> &'static str {
        match self {
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::Established => "ESTABLISHED",
            TcpState::FinWait => "FIN_WAIT",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
        }
    }
}

fn dir_index(dir: Direction) -> usize {
    match dir {
        Direction::Original => 0,
        Direction::Reply => 1,
    }
}
