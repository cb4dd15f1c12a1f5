//! [`HashRing`]: consistent hashing over the endpoints of a cluster, for
//! `upstream-hash-by`. Each endpoint owns [`POINTS_PER_ENDPOINT`] points on a ring of
//! 64-bit hashes, placed by hashing its address; a key goes to the owner of the first
//! point at or after the key's hash. An endpoint's points depend on its address only, so
//! adding or removing one of N endpoints moves only the keys it gains or owned: about
//! 1/N of them.
//!
//! Points and keys are hashed with the standard library's SipHash under fixed keys
//! ([`std::hash::DefaultHasher::new`]): every replica of the gateway built from the same
//! source places them alike, so a key goes to the same endpoint whichever replica serves
//! it.

use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher, Hash};
use std::net::SocketAddr;

/// Points each endpoint owns on the ring: enough that shares stay within a few percent
/// of even.
pub const POINTS_PER_ENDPOINT: u32 = 160;

/// A consistent-hash ring over a list of endpoints, built once per published table.
#[derive(Clone, Debug, Default)]
pub struct HashRing {
    /// `(point, endpoint index)`, sorted by point.
    points: Box<[(u64, u32)]>,
}

type Fixed = BuildHasherDefault<DefaultHasher>;

/// The hash of a request's key (the bytes `upstream-hash-by` names), as the ring reads it.
pub fn hash_key(key: &[u8]) -> u64 {
    Fixed::default().hash_one(key)
}

impl HashRing {
    /// The ring over `endpoints`; [`HashRing::endpoint`] answers with indexes into it.
    pub fn new(endpoints: &[SocketAddr]) -> Self {
        let mut points = Vec::with_capacity(endpoints.len() * POINTS_PER_ENDPOINT as usize);
        for (i, addr) in endpoints.iter().enumerate() {
            let Ok(i) = u32::try_from(i) else { break };
            for v in 0..POINTS_PER_ENDPOINT {
                points.push((point(addr, v), i));
            }
        }
        points.sort_unstable();
        Self {
            points: points.into(),
        }
    }

    /// The index of the endpoint that owns `key` (a [`hash_key`]); `None` for a ring
    /// without endpoints.
    pub fn endpoint(&self, key: u64) -> Option<usize> {
        let i = self.points.partition_point(|p| p.0 < key);
        let (_, e) = self.points.get(i).or_else(|| self.points.first())?;
        Some(*e as usize)
    }

    /// Whether the ring has no endpoint.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

fn point(addr: &SocketAddr, v: u32) -> u64 {
    let mut h = Fixed::default().build_hasher();
    addr.hash(&mut h);
    v.hash(&mut h);
    std::hash::Hasher::finish(&h)
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use proptest::prelude::*;

    use super::*;

    fn endpoints(n: usize, salt: u16) -> Vec<SocketAddr> {
        (0..n)
            .map(|i| {
                let i = u16::try_from(i).unwrap();
                let ip = Ipv4Addr::new(10, 0, (i >> 8) as u8, i as u8);
                SocketAddr::new(IpAddr::V4(ip), 8000 + salt % 1000)
            })
            .collect()
    }

    fn owner(ring: &HashRing, eps: &[SocketAddr], key: u64) -> SocketAddr {
        eps[ring.endpoint(hash_key(&key.to_le_bytes())).unwrap()]
    }

    #[test]
    fn an_empty_ring_has_no_endpoint() {
        assert_eq!(HashRing::new(&[]).endpoint(42), None);
    }

    #[test]
    fn keys_spread_over_endpoints_within_a_tolerance() {
        let eps = endpoints(8, 0);
        let ring = HashRing::new(&eps);
        let mut counts = [0usize; 8];
        for k in 0..16_000u64 {
            counts[ring.endpoint(hash_key(&k.to_le_bytes())).unwrap()] += 1;
        }
        // Even would be 2,000 each.
        for c in counts {
            assert!((1_300..=2_700).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn the_order_of_endpoints_does_not_move_keys() {
        let eps = endpoints(5, 3);
        let mut reversed = eps.clone();
        reversed.reverse();
        let (a, b) = (HashRing::new(&eps), HashRing::new(&reversed));
        for k in 0..1_000u64 {
            assert_eq!(owner(&a, &eps, k), owner(&b, &reversed, k));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Removing one of N endpoints moves the keys it owned and no other: about 1/N
        /// of them.
        #[test]
        fn removing_one_of_n_endpoints_moves_about_one_nth_of_keys(
            n in 2usize..24,
            removed in any::<prop::sample::Index>(),
            salt in any::<u16>(),
        ) {
            const KEYS: u64 = 4_000;
            let eps = endpoints(n, salt);
            let gone = removed.index(n);
            let mut rest = eps.clone();
            rest.remove(gone);
            let (before, after) = (HashRing::new(&eps), HashRing::new(&rest));
            let mut moved = 0u64;
            for k in 0..KEYS {
                let (was, is) = (owner(&before, &eps, k), owner(&after, &rest, k));
                if was == eps[gone] {
                    moved += 1;
                } else {
                    prop_assert_eq!(was, is, "key {} moved off a remaining endpoint", k);
                }
            }
            let even = KEYS as f64 / n as f64;
            let moved = moved as f64;
            prop_assert!(
                moved >= even * 0.5 && moved <= even * 1.6,
                "{} of {} keys moved with {} endpoints (1/N: {})", moved, KEYS, n, even
            );
        }
    }
}
