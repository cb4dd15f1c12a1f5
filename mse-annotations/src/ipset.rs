//! [`IpSet`]: a list of networks compiled for lookups that cost the same whatever the
//! list's length.
//!
//! The networks are turned into address ranges, sorted and merged where they overlap or
//! touch, one array for IPv4 and one for IPv6. A lookup is a binary search: about ten
//! comparisons for a thousand entries, where testing each network in turn would be a
//! thousand. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is looked up as IPv4, as
//! [`Cidr::contains`] does.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Serialize, Serializer};

use crate::cidr::Cidr;

/// A set of IPv4 and IPv6 addresses, built from networks ([`IpSet::new`]); membership in
/// `O(log n)` ([`IpSet::contains`]).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct IpSet {
    /// Inclusive ranges, sorted, neither overlapping nor touching.
    v4: Box<[(u32, u32)]>,
    /// The same for IPv6.
    v6: Box<[(u128, u128)]>,
}

impl IpSet {
    /// The addresses of `networks`.
    pub fn new<'a>(networks: impl IntoIterator<Item = &'a Cidr>) -> Self {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for c in networks {
            match c.addr() {
                IpAddr::V4(a) => {
                    let start = u32::from(a);
                    let size = host_mask_v4(c.prefix());
                    v4.push((start, start | size));
                }
                IpAddr::V6(a) => {
                    let start = u128::from(a);
                    let size = host_mask_v6(c.prefix());
                    v6.push((start, start | size));
                }
            }
        }
        Self {
            v4: merge(v4).into(),
            v6: merge(v6).into(),
        }
    }

    /// Whether `ip` is in the set.
    #[inline]
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => find(&self.v4, u32::from(a)),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => find(&self.v4, u32::from(v4)),
                None => find(&self.v6, u128::from(a)),
            },
        }
    }

    /// Whether the set has no address.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// How many disjoint ranges the set is made of.
    pub fn ranges(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// The addresses in both sets.
    #[must_use]
    pub fn intersection(&self, other: &IpSet) -> IpSet {
        Self {
            v4: intersect(&self.v4, &other.v4).into(),
            v6: intersect(&self.v6, &other.v6).into(),
        }
    }

    /// The addresses in either set.
    #[must_use]
    pub fn union(&self, other: &IpSet) -> IpSet {
        Self {
            v4: merge(self.v4.iter().chain(other.v4.iter()).copied().collect()).into(),
            v6: merge(self.v6.iter().chain(other.v6.iter()).copied().collect()).into(),
        }
    }

    /// The ranges as text, `first-last` (or one address), IPv4 first.
    fn texts(&self) -> impl Iterator<Item = String> + '_ {
        let v4 = self.v4.iter().map(|&(a, b)| {
            range_text(IpAddr::V4(Ipv4Addr::from(a)), IpAddr::V4(Ipv4Addr::from(b)))
        });
        let v6 = self.v6.iter().map(|&(a, b)| {
            range_text(IpAddr::V6(Ipv6Addr::from(a)), IpAddr::V6(Ipv6Addr::from(b)))
        });
        v4.chain(v6)
    }
}

fn range_text(a: IpAddr, b: IpAddr) -> String {
    if a == b {
        a.to_string()
    } else {
        format!("{a}-{b}")
    }
}

impl fmt::Debug for IpSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.texts()).finish()
    }
}

impl Serialize for IpSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.texts())
    }
}

/// The host bits of a prefix length: the size of the network, less one.
fn host_mask_v4(prefix: u8) -> u32 {
    u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0)
}

fn host_mask_v6(prefix: u8) -> u128 {
    u128::MAX.checked_shr(u32::from(prefix)).unwrap_or(0)
}

/// Sorts inclusive ranges and merges those that overlap or touch.
fn merge<T: Copy + Ord + Step>(mut ranges: Vec<(T, T)>) -> Vec<(T, T)> {
    ranges.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        match out.last_mut() {
            Some(last) if last.1.next().is_none_or(|n| start <= n) => {
                last.1 = last.1.max(end);
            }
            _ => out.push((start, end)),
        }
    }
    out.shrink_to_fit();
    out
}

/// The ranges in both sorted, disjoint lists.
fn intersect<T: Copy + Ord>(a: &[(T, T)], b: &[(T, T)]) -> Vec<(T, T)> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() && j < b.len() {
        let start = a[i].0.max(b[j].0);
        let end = a[i].1.min(b[j].1);
        if start <= end {
            out.push((start, end));
        }
        if a[i].1 < b[j].1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// Whether `x` lies in one of the sorted, disjoint `ranges`: the last range that starts at
/// or before `x` must end at or after it.
#[inline]
fn find<T: Copy + Ord>(ranges: &[(T, T)], x: T) -> bool {
    let after = ranges.partition_point(|r| r.0 <= x);
    after > 0 && ranges[after - 1].1 >= x
}

/// The next address, for merging touching ranges.
trait Step: Sized {
    fn next(self) -> Option<Self>;
}

impl Step for u32 {
    fn next(self) -> Option<Self> {
        self.checked_add(1)
    }
}

impl Step for u128 {
    fn next(self) -> Option<Self> {
        self.checked_add(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cidr_list;

    fn set(list: &str) -> IpSet {
        IpSet::new(&cidr_list(list).unwrap())
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_merge_into_disjoint_ranges() {
        let s = set("10.0.0.0/9, 10.128.0.0/9, 10.1.0.0/16, 192.168.1.1, 192.168.1.2, ::1");
        assert_eq!(
            format!("{s:?}"),
            r#"["10.0.0.0-10.255.255.255", "192.168.1.1-192.168.1.2", "::1"]"#
        );
        assert_eq!(s.ranges(), 3);
        assert!(s.contains(ip("10.200.0.1")));
        assert!(s.contains(ip("::ffff:10.0.0.1")));
        assert!(!s.contains(ip("11.0.0.0")));
        assert!(!s.contains(ip("192.168.1.3")));
        assert!(s.contains(ip("::1")));
        assert!(!s.contains(ip("::2")));
        let all = set("0.0.0.0/0, ::/0");
        assert!(all.contains(ip("255.255.255.255")));
        assert!(all.contains(ip("ffff::1")));
        assert!(IpSet::default().is_empty());
        assert!(!IpSet::default().contains(ip("10.0.0.1")));
    }

    #[test]
    fn intersection_and_union_work_on_ranges() {
        let a = set("10.0.0.0/8, 2001:db8::/32");
        let b = set("10.1.0.0/16, 192.168.0.0/16, 2001:db8:1::/48");
        let both = a.intersection(&b);
        assert_eq!(
            format!("{both:?}"),
            r#"["10.1.0.0-10.1.255.255", "2001:db8:1::-2001:db8:1:ffff:ffff:ffff:ffff:ffff"]"#
        );
        let either = a.union(&b);
        assert!(either.contains(ip("192.168.3.3")));
        assert!(either.contains(ip("10.9.9.9")));
        assert_eq!(either.ranges(), 3);
    }

    /// The compiled set agrees with testing each network in turn.
    #[test]
    fn lookups_agree_with_a_linear_scan() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let nets: Vec<Cidr> = (0..300)
            .map(|_| {
                let a = Ipv4Addr::from((rnd() as u32) & 0xff0f_ffff);
                let p = 8 + (rnd() % 25) as u8;
                format!("{a}/{p}").parse().unwrap()
            })
            .collect();
        let s = IpSet::new(&nets);
        for _ in 0..20_000 {
            let a = IpAddr::V4(Ipv4Addr::from((rnd() as u32) & 0xff0f_ffff));
            assert_eq!(s.contains(a), nets.iter().any(|c| c.contains(a)), "{a}");
        }
    }
}
