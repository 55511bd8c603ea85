//! Real TCP (smoltcp stacks) across the dataplane: a capture read back with `pcap_file` shows
//! the handshake, and a transfer over a lossy, slow link completes by retransmission.

use std::time::Duration;

use kns_sim::DropReason;
use kns_sim::Sim;
use kns_sim::net::{LinkParams, NetnsId};
use kns_sim::stack::apps::{TcpClient, TcpClientConfig, TcpEcho};
use kns_sim::stack::{SmolStack, StackConfig};
use kns_sim::wire::{L4Summary, parse_ip};
use smoltcp::wire::TcpPacket;

/// red (10.0.0.1) and blue (10.0.0.2) on a veth pair, each with a smoltcp stack.
fn pair(seed: u64) -> (Sim, NetnsId, NetnsId) {
    let mut sim = Sim::new(seed);
    for cmd in [
        "netns add red",
        "netns add blue",
        "link add veth-red type veth peer name veth-blue",
        "link set veth-red netns red",
        "link set veth-blue netns blue",
        "-n red addr add 10.0.0.1/24 dev veth-red",
        "-n blue addr add 10.0.0.2/24 dev veth-blue",
        "-n red link set veth-red up",
        "-n blue link set veth-blue up",
    ] {
        sim.ip(None, cmd).unwrap();
    }
    let red = sim.netns(Some("red")).unwrap();
    let blue = sim.netns(Some("blue")).unwrap();
    for ns in [red, blue] {
        let seed = sim.child_seed();
        sim.attach_stack(ns, SmolStack::new(StackConfig::with_seed(seed), sim.now()));
    }
    (sim, red, blue)
}

#[test]
fn pcap_shows_the_tcp_handshake() {
    let (mut sim, red, blue) = pair(3);
    sim.stack_mut::<SmolStack>(blue).unwrap().spawn(TcpEcho::new(7));
    let cfg = TcpClientConfig::new("10.0.0.2:7".parse().unwrap(), "hello");
    let client = sim.stack_mut::<SmolStack>(red).unwrap().spawn(TcpClient::new(cfg));
    let cap = sim.capture(red, "veth-red").unwrap();
    sim.kick(blue);
    sim.kick(red);
    sim.run_for(Duration::from_secs(5));
    let c = sim.stack_mut::<SmolStack>(red).unwrap().app::<TcpClient>(client).unwrap();
    assert!(c.established(), "{:?}", c.error());

    let mut pcap = Vec::new();
    sim.write_pcap(cap, &mut pcap).unwrap();
    let mut reader = pcap_file::pcap::PcapReader::new(&pcap[..]).unwrap();
    let mut tcp = Vec::new();
    while let Some(pkt) = reader.next_packet() {
        let data = pkt.unwrap().data.into_owned();
        if data[12..14] != [0x08, 0x00] {
            continue;
        }
        let s = parse_ip(&data[14..]).unwrap();
        if let L4Summary::Tcp { .. } = s.l4 {
            let t = TcpPacket::new_checked(&data[14 + s.header_len..14 + s.total_len]).unwrap();
            tcp.push((s.src.to_string(), t.syn(), t.ack(), t.seq_number(), t.ack_number()));
        }
    }
    assert!(tcp.len() >= 3, "{tcp:?}");
    let (syn, synack, ack) = (&tcp[0], &tcp[1], &tcp[2]);
    assert_eq!((syn.0.as_str(), syn.1, syn.2), ("10.0.0.1", true, false), "SYN");
    assert_eq!((synack.0.as_str(), synack.1, synack.2), ("10.0.0.2", true, true), "SYN-ACK");
    assert_eq!((ack.0.as_str(), ack.1, ack.2), ("10.0.0.1", false, true), "ACK");
    assert_eq!(synack.4, syn.3 + 1);
    assert_eq!(ack.4, synack.3 + 1);
    assert_eq!(ack.3, syn.3 + 1);
}

#[test]
fn tcp_recovers_from_link_loss_by_retransmission() {
    let (mut sim, red, blue) = pair(4);
    let lossy = LinkParams {
        latency: Duration::from_millis(2),
        bandwidth_bps: Some(10_000_000),
        loss: 0.05,
        queue_limit: 100,
    };
    sim.link_set_params(red, "veth-red", lossy.clone()).unwrap();
    sim.link_set_params(blue, "veth-blue", lossy).unwrap();
    sim.stack_mut::<SmolStack>(blue).unwrap().spawn(TcpEcho::new(7));
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let mut cfg = TcpClientConfig::new("10.0.0.2:7".parse().unwrap(), data.clone());
    cfg.expect = Some(data.len());
    let client = sim.stack_mut::<SmolStack>(red).unwrap().spawn(TcpClient::new(cfg));
    sim.kick(blue);
    sim.kick(red);
    sim.run_for(Duration::from_secs(120));
    let lost = sim.total_drops().get(&DropReason::LinkLoss).copied().unwrap_or(0);
    assert!(lost > 5, "the link lost {lost} frames");
    let c = sim.stack_mut::<SmolStack>(red).unwrap().app::<TcpClient>(client).unwrap();
    assert_eq!(c.error(), None);
    assert_eq!(c.received(), &data[..], "every byte echoed despite the losses");
    assert!(sim.conservation().holds(), "{}", sim.conservation());
}
