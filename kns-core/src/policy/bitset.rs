//! A fixed-length set of small integers stored in `u64` words.
//!
//! Used by the fast matrix to hold sets of pod indices. Bits past `len` are always zero, so
//! two bitsets of the same length compare equal exactly when they hold the same members.

/// A set of indices in `0..len`, one bit per index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Bitset {
    words: Vec<u64>,
    len: usize,
}

impl Bitset {
    /// The empty set over `0..len`.
    pub fn new(len: usize) -> Self {
        Bitset { words: vec![0; len.div_ceil(64)], len }
    }

    /// The set holding every index of `0..len`.
    pub fn full(len: usize) -> Self {
        let mut set = Bitset { words: vec![u64::MAX; len.div_ceil(64)], len };
        set.clear_tail();
        set
    }

    /// The number of indices the set ranges over (not the number of members).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set ranges over no index at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `index` is a member. Indices past the end are never members.
    pub fn contains(&self, index: usize) -> bool {
        index < self.len && self.words[index / 64] & (1 << (index % 64)) != 0
    }

    /// Adds `index` (which must be below `len`).
    pub fn insert(&mut self, index: usize) {
        assert!(index < self.len, "bitset index {index} out of range 0..{}", self.len);
        self.words[index / 64] |= 1 << (index % 64);
    }

    /// Adds every member of `other` (of the same length).
    pub fn union_with(&mut self, other: &Bitset) {
        debug_assert_eq!(self.len, other.len);
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a |= b;
        }
    }

    /// Adds every index that is in both `a` and `b` (all three of the same length).
    pub fn union_with_intersection(&mut self, a: &Bitset, b: &Bitset) {
        debug_assert!(self.len == a.len && a.len == b.len);
        for ((w, x), y) in self.words.iter_mut().zip(&a.words).zip(&b.words) {
            *w |= x & y;
        }
    }

    /// Whether every index of `0..len` is a member.
    pub fn is_full(&self) -> bool {
        self.count() == self.len
    }

    /// The number of members.
    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// The members in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &word)| {
            let mut rest = word;
            std::iter::from_fn(move || {
                if rest == 0 {
                    return None;
                }
                let bit = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                Some(i * 64 + bit)
            })
        })
    }

    /// Zeroes the unused bits of the last word, keeping the invariant stated in the module doc.
    fn clear_tail(&mut self) {
        let used = self.len % 64;
        if used != 0
            && let Some(last) = self.words.last_mut()
        {
            *last &= (1u64 << used) - 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_contains_and_iterate() {
        let mut set = Bitset::new(130);
        for i in [0, 63, 64, 129] {
            set.insert(i);
        }
        assert!(set.contains(63) && set.contains(64) && !set.contains(1) && !set.contains(500));
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![0, 63, 64, 129]);
        assert_eq!(set.count(), 4);
    }

    #[test]
    fn full_has_no_stray_bits() {
        let full = Bitset::full(70);
        assert_eq!(full.count(), 70);
        assert!(full.is_full());
        let mut built = Bitset::new(70);
        (0..70).for_each(|i| built.insert(i));
        assert_eq!(full, built);
        assert_eq!(Bitset::full(0).count(), 0);
    }

    #[test]
    fn unions_and_intersections() {
        let mut a = Bitset::new(10);
        a.insert(1);
        let mut b = Bitset::new(10);
        b.insert(2);
        b.insert(3);
        let mut c = Bitset::new(10);
        c.insert(3);
        c.insert(4);
        let mut out = a.clone();
        out.union_with_intersection(&b, &c);
        assert_eq!(out.iter().collect::<Vec<_>>(), vec![1, 3]);
        out.union_with(&b);
        assert_eq!(out.iter().collect::<Vec<_>>(), vec![1, 2, 3]);
    }
}
