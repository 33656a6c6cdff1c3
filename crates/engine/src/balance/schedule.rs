//! The fixed visiting order behind `round_robin`: smooth weighted round robin (as in
//! nginx) laid out once per snapshot, so a pick is one atomic increment and an index.

/// Longest schedule built; larger weight totals are scaled down proportionally (each
/// endpoint keeps at least one slot), which bounds memory at the cost of precision
/// finer than 1/`MAX_SCHEDULE_LEN`.
pub(crate) const MAX_SCHEDULE_LEN: u64 = 10_000;

/// `members` are `(endpoint index, weight > 0)`; returns endpoint indices in visiting order.
pub(crate) fn smooth_weighted(members: &[(u32, u32)]) -> Box<[u32]> {
    if members.is_empty() {
        return Box::new([]);
    }
    let divisor = members.iter().fold(0u64, |g, m| gcd(g, u64::from(m.1)));
    let mut weights: Vec<u64> = members.iter().map(|m| u64::from(m.1) / divisor).collect();
    let total: u64 = weights.iter().sum();
    if total > MAX_SCHEDULE_LEN {
        for w in &mut weights {
            *w = (u128::from(*w) * u128::from(MAX_SCHEDULE_LEN) / u128::from(total)).max(1) as u64;
        }
    }
    let total: i64 = weights.iter().sum::<u64>() as i64;
    let mut current = vec![0i64; members.len()];
    let mut order = Vec::with_capacity(total as usize);
    for _ in 0..total {
        let mut best = 0;
        for i in 0..members.len() {
            current[i] += weights[i] as i64;
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total;
        order.push(members[best].0);
    }
    order.into_boxed_slice()
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}
