//! Virtual time: nanoseconds since the start of a simulation. No wall clock is ever read.

use std::fmt;
use std::ops::{Add, AddAssign, Sub};
use std::time::Duration;

/// An instant of virtual time, in nanoseconds since the simulation started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Time(pub u64);

impl Time {
    /// The start of the simulation.
    pub const ZERO: Time = Time(0);
    /// The far future (never reached).
    pub const MAX: Time = Time(u64::MAX);

    /// An instant `nanos` nanoseconds after the start.
    pub const fn from_nanos(nanos: u64) -> Time {
        Time(nanos)
    }

    /// An instant `micros` microseconds after the start.
    pub const fn from_micros(micros: u64) -> Time {
        Time(micros.saturating_mul(1_000))
    }

    /// An instant `millis` milliseconds after the start.
    pub const fn from_millis(millis: u64) -> Time {
        Time(millis.saturating_mul(1_000_000))
    }

    /// An instant `secs` seconds after the start.
    pub const fn from_secs(secs: u64) -> Time {
        Time(secs.saturating_mul(1_000_000_000))
    }

    /// Nanoseconds since the start.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Whole microseconds since the start.
    pub const fn as_micros(self) -> u64 {
        self.0 / 1_000
    }

    /// This instant as smoltcp's clock value (microsecond resolution).
    pub fn to_smoltcp(self) -> smoltcp::time::Instant {
        smoltcp::time::Instant::from_micros(i64::try_from(self.as_micros()).unwrap_or(i64::MAX))
    }

    /// smoltcp's clock value as a virtual instant (negative values clamp to zero).
    pub fn from_smoltcp(instant: smoltcp::time::Instant) -> Time {
        Time::from_micros(u64::try_from(instant.total_micros()).unwrap_or(0))
    }

    /// The time elapsed since `earlier` (zero if `earlier` is later).
    pub fn saturating_since(self, earlier: Time) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Time {
    type Output = Time;
    fn add(self, rhs: Duration) -> Time {
        Time(self.0.saturating_add(u64::try_from(rhs.as_nanos()).unwrap_or(u64::MAX)))
    }
}

impl AddAssign<Duration> for Time {
    fn add_assign(&mut self, rhs: Duration) {
        *self = *self + rhs;
    }
}

impl Sub for Time {
    type Output = Duration;
    fn sub(self, rhs: Time) -> Duration {
        self.saturating_since(rhs)
    }
}

impl fmt::Display for Time {
    /// Seconds with microsecond precision, e.g. `1.000250s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}s", self.0 / 1_000_000_000, (self.0 % 1_000_000_000) / 1_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_and_prints() {
        let t = Time::from_millis(1500) + Duration::from_micros(250);
        assert_eq!(t.as_nanos(), 1_500_250_000);
        assert_eq!(t.to_string(), "1.500250s");
        assert_eq!(Time::from_smoltcp(t.to_smoltcp()), t);
        assert_eq!(t - Time::from_secs(1), Duration::from_micros(500_250));
        assert_eq!(Time::ZERO - t, Duration::ZERO);
    }
}
