//! A per-thread wyrand generator for balancer and backend picks: a few instructions, no
//! locking, no allocation. Not for anything security-sensitive.

use std::cell::Cell;

thread_local! {
    static STATE: Cell<u64> = const { Cell::new(0) };
}

/// A uniformly distributed 64-bit value.
pub(crate) fn next_u64() -> u64 {
    STATE.with(|state| {
        let mut x = state.get();
        if x == 0 {
            // First use on this thread: seed from the OS-seeded generator.
            x = rand::random::<u64>() | 1;
        }
        x = x.wrapping_add(0xa076_1d64_78bd_642f);
        state.set(x);
        let t = u128::from(x).wrapping_mul(u128::from(x ^ 0xe703_7ed1_a0b4_28db));
        ((t >> 64) as u64) ^ (t as u64)
    })
}

/// A value in `0..bound` (`bound > 0`), by multiply-shift; the bias is below 2^-32 for
/// any bound a balancer sees.
pub(crate) fn below(bound: u64) -> u64 {
    debug_assert!(bound > 0);
    ((u128::from(next_u64()) * u128::from(bound)) >> 64) as u64
}

/// Two distinct indices in `0..len` (`len >= 2`), uniformly.
pub(crate) fn two_distinct(len: usize) -> (usize, usize) {
    debug_assert!(len >= 2);
    let first = below(len as u64) as usize;
    let mut second = below(len as u64 - 1) as usize;
    if second >= first {
        second += 1;
    }
    (first, second)
}
