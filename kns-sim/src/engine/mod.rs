//! The discrete-event core: a queue of events ordered by (virtual time, insertion sequence), the
//! virtual clock, and the root random number generator with its child-seed derivation.
//!
//! **Guarantees:** two events scheduled for the same instant come out in the order they were
//! scheduled, so a run depends only on its inputs and its seed. Time never goes backwards: an
//! event scheduled in the past runs at the current instant. Nothing here reads the wall clock.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

use rand::rngs::ChaCha8Rng;
use rand::{Rng, SeedableRng};

use crate::time::Time;

/// Why a run stopped before the queue drained.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// More events ran than the caller allowed: probably a forwarding loop or a stuck timer.
    #[error("event limit of {limit} reached at {now} without going idle (seed {seed})")]
    Limit {
        /// The limit that was hit.
        limit: u64,
        /// The virtual time when it was hit.
        now: Time,
        /// The simulation's seed, to reproduce the run.
        seed: u64,
    },
}

struct Entry<E> {
    time: Time,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.time, self.seq) == (other.time, other.seq)
    }
}
impl<E> Eq for Entry<E> {}
impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Entry<E> {
    /// Reversed, so that the max-heap pops the earliest (time, seq) first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.time, other.seq).cmp(&(self.time, self.seq))
    }
}

/// A queue of events of type `E` with a virtual clock and a seeded RNG.
pub struct Engine<E> {
    now: Time,
    seq: u64,
    queue: BinaryHeap<Entry<E>>,
    /// Events scheduled for the instant that was current when they were scheduled, in
    /// (time, sequence) order: most frames cross zero-latency links, and a FIFO spares them
    /// the heap. The next event is the smaller of this queue's front and the heap's top.
    due: VecDeque<Entry<E>>,
    seed: u64,
    rng: ChaCha8Rng,
    executed: u64,
}

impl<E> Engine<E> {
    /// An empty queue at time zero whose RNG starts from `seed`.
    pub fn new(seed: u64) -> Self {
        Engine {
            now: Time::ZERO,
            seq: 0,
            queue: BinaryHeap::new(),
            due: VecDeque::new(),
            seed,
            rng: ChaCha8Rng::seed_from_u64(seed),
            executed: 0,
        }
    }

    /// The current virtual time.
    pub fn now(&self) -> Time {
        self.now
    }

    /// The seed this engine was created with.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// How many events have been popped so far.
    pub fn executed(&self) -> u64 {
        self.executed
    }

    /// Schedules `event` at `at` (at the current time if `at` is in the past).
    pub fn schedule(&mut self, at: Time, event: E) {
        let time = at.max(self.now);
        let entry = Entry { time, seq: self.seq, event };
        // The clock never goes back, so entries pushed at the current time keep `due` sorted.
        if time == self.now && self.due.back().is_none_or(|last| last.time <= time) {
            self.due.push_back(entry);
        } else {
            self.queue.push(entry);
        }
        self.seq += 1;
    }

    /// The time of the earliest pending event.
    pub fn next_time(&self) -> Option<Time> {
        match (self.queue.peek(), self.due.front()) {
            (Some(a), Some(b)) => Some(a.time.min(b.time)),
            (a, b) => a.or(b).map(|e| e.time),
        }
    }

    /// Number of pending events.
    pub fn pending(&self) -> usize {
        self.queue.len() + self.due.len()
    }

    /// Iterates over the pending events in no particular order.
    pub fn pending_events(&self) -> impl Iterator<Item = &E> {
        self.queue.iter().chain(&self.due).map(|e| &e.event)
    }

    /// Pops the earliest event if it is due at or before `until`, advancing the clock to it.
    pub fn pop_until(&mut self, until: Time) -> Option<E> {
        // `Entry`'s order is reversed (for the max-heap): the greater entry is the earlier.
        let from_due = match (self.queue.peek(), self.due.front()) {
            (Some(heap), Some(due)) => due > heap,
            (None, Some(_)) => true,
            (_, None) => false,
        };
        let next = if from_due { self.due.front() } else { self.queue.peek() };
        if next?.time > until {
            return None;
        }
        let entry = if from_due { self.due.pop_front() } else { self.queue.pop() }?;
        self.now = entry.time;
        self.executed += 1;
        Some(entry.event)
    }

    /// Moves the clock forward to `t` (never backwards).
    pub fn advance_to(&mut self, t: Time) {
        self.now = self.now.max(t);
    }

    /// The root RNG. Use it only in a fixed order (e.g. to derive child seeds at creation).
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }

    /// A fresh seed for a child component, drawn from the root RNG.
    pub fn child_seed(&mut self) -> u64 {
        self.rng.next_u64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_by_time_then_insertion() {
        let mut e = Engine::new(1);
        e.schedule(Time::from_micros(5), "b");
        e.schedule(Time::from_micros(1), "a");
        e.schedule(Time::from_micros(5), "c");
        e.schedule(Time::from_micros(9), "d");
        let mut out = Vec::new();
        while let Some(ev) = e.pop_until(Time::from_micros(6)) {
            out.push((e.now(), ev));
        }
        assert_eq!(
            out,
            [(Time::from_micros(1), "a"), (Time::from_micros(5), "b"), (Time::from_micros(5), "c")]
        );
        assert_eq!(e.next_time(), Some(Time::from_micros(9)));
        // The past is clamped to now.
        e.schedule(Time::ZERO, "late");
        assert_eq!(e.pop_until(Time::MAX), Some("late"));
        assert_eq!(e.now(), Time::from_micros(5));
    }

    #[test]
    fn same_instant_fifo_and_heap_interleave_in_order() {
        // Events due now (the FIFO) and later (the heap) mixed with pops: the order must be
        // (time, insertion) exactly as a sorted reference list gives it.
        let mut e = Engine::new(1);
        let mut reference: Vec<(Time, u64)> = Vec::new();
        let mut seq = 0;
        let mut state = 12345u64;
        let mut popped = Vec::new();
        let mut expected = Vec::new();
        for _ in 0..500 {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let r = state >> 33;
            if r.is_multiple_of(3) {
                if let Some(ev) = e.pop_until(Time::MAX) {
                    popped.push((e.now(), ev));
                    let i = (0..reference.len()).min_by_key(|&i| reference[i]).unwrap();
                    expected.push(reference.remove(i));
                }
            } else {
                let at = e.now() + std::time::Duration::from_micros(r % 4 / 2 * (r % 7));
                e.schedule(at, seq);
                reference.push((at.max(e.now()), seq));
                seq += 1;
            }
        }
        while let Some(ev) = e.pop_until(Time::MAX) {
            popped.push((e.now(), ev));
        }
        reference.sort();
        expected.extend(reference);
        assert_eq!(popped, expected);
        assert_eq!(e.pending(), 0);
    }

    #[test]
    fn seeds_are_reproducible() {
        let mut a = Engine::<()>::new(7);
        let mut b = Engine::<()>::new(7);
        let mut c = Engine::<()>::new(8);
        let (x, y, z) = (a.child_seed(), b.child_seed(), c.child_seed());
        assert_eq!(x, y);
        assert_ne!(x, z);
    }
}
