//! The consistent-hash ring behind `ring_hash`.
//!
//! Each endpoint owns virtual nodes whose positions depend only on its own address and
//! the node's ordinal, so adding or removing an endpoint moves only the keys that land
//! on its nodes. Hashes are deterministic (not seeded per process) so every proxy maps a
//! key to the same endpoint.

use std::net::{IpAddr, SocketAddr};

/// Virtual nodes per unit of endpoint weight.
pub(crate) const NODES_PER_WEIGHT: u64 = 100;
/// Upper bound on the ring size; above it every endpoint's share is scaled down.
pub(crate) const MAX_RING_SIZE: u64 = 100_000;

pub(crate) struct Ring {
    /// Sorted node positions.
    hashes: Box<[u64]>,
    /// `owners[i]` is the endpoint index (into the balancer's endpoint list) of `hashes[i]`.
    owners: Box<[u32]>,
}

impl Ring {
    /// `members` are `(endpoint index, address, weight > 0)`.
    pub(crate) fn new(members: &[(u32, SocketAddr, u32)]) -> Ring {
        let total_weight: u64 = members.iter().map(|m| u64::from(m.2)).sum();
        let wanted = total_weight.saturating_mul(NODES_PER_WEIGHT);
        let nodes_for = |weight: u32| -> u64 {
            if wanted <= MAX_RING_SIZE {
                u64::from(weight) * NODES_PER_WEIGHT
            } else {
                (u128::from(weight) * u128::from(MAX_RING_SIZE) / u128::from(total_weight)).max(1)
                    as u64
            }
        };
        let mut nodes: Vec<(u64, u32)> = Vec::new();
        let mut text = String::new();
        for &(index, addr, weight) in members {
            use std::fmt::Write;
            text.clear();
            let _ = write!(text, "{addr}");
            let base = hash_bytes(text.as_bytes());
            for ordinal in 0..nodes_for(weight) {
                nodes.push((
                    mix(base ^ ordinal.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
                    index,
                ));
            }
        }
        // Ties (vanishingly rare) resolve by endpoint index so the ring is deterministic.
        nodes.sort_unstable();
        let (hashes, owners) = nodes.into_iter().unzip::<u64, u32, Vec<u64>, Vec<u32>>();
        Ring {
            hashes: hashes.into_boxed_slice(),
            owners: owners.into_boxed_slice(),
        }
    }

    /// Number of virtual nodes.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.hashes.len()
    }

    /// The endpoint index owning `key`: the first node at or after it, wrapping around.
    pub(crate) fn owner(&self, key: u64) -> Option<u32> {
        if self.hashes.is_empty() {
            return None;
        }
        let at = self.hashes.partition_point(|&h| h < key);
        Some(self.owners[if at == self.hashes.len() { 0 } else { at }])
    }
}

/// FNV-1a followed by a strong finaliser: deterministic and well spread.
pub(crate) fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(h)
}

/// Hash of a client address; IPv4-mapped IPv6 hashes like the IPv4 address.
pub(crate) fn hash_ip(ip: IpAddr) -> u64 {
    match ip.to_canonical() {
        IpAddr::V4(v4) => hash_bytes(&v4.octets()),
        IpAddr::V6(v6) => hash_bytes(&v6.octets()),
    }
}

/// MurmurHash3's 64-bit finaliser.
fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}
