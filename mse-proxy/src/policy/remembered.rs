//! [`Remembered`]: a worker's bounded memory of authentication results, keyed by a keyed
//! hash ([`keyed`]) so that it holds neither credentials nor anything a client could
//! aim at without the process's random key.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Instant;

use aws_lc_rs::hmac;

/// The key an entry is remembered under: the first 16 bytes of an HMAC-SHA256.
pub(crate) type Key = [u8; 16];

/// At most `cap` entries, each until its own deadline. Lives on one worker thread.
pub(crate) struct Remembered<V> {
    entries: RefCell<HashMap<Key, (Instant, V)>>,
    cap: usize,
}

// === impl Remembered ===

impl<V: Clone> Remembered<V> {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            entries: RefCell::new(HashMap::new()),
            cap,
        }
    }

    /// The entry under `key`, unless it expired (then it is dropped).
    pub(crate) fn get(&self, key: &Key, now: Instant) -> Option<V> {
        let mut entries = self.entries.borrow_mut();
        match entries.get(key) {
            Some((until, v)) if *until > now => Some(v.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Remembers `value` until `until`. When full, the expired entries go first; if all
    /// are live, all go: the memory never grows past `cap`.
    pub(crate) fn insert(&self, key: Key, value: V, until: Instant, now: Instant) {
        let mut entries = self.entries.borrow_mut();
        if entries.len() >= self.cap && !entries.contains_key(&key) {
            entries.retain(|_, (t, _)| *t > now);
            if entries.len() >= self.cap {
                entries.clear();
            }
        }
        entries.insert(key, (until, value));
    }

    /// How many entries there are.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.borrow().len()
    }
}

/// The HMAC-SHA256 of `parts` (each length-prefixed, so that no two lists collide) under
/// a key drawn at random once per process.
pub(crate) fn keyed(parts: &[&[u8]]) -> Key {
    static KEY: OnceLock<Option<hmac::Key>> = OnceLock::new();
    let key = KEY.get_or_init(|| {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        hmac::Key::generate(hmac::HMAC_SHA256, &rng).ok()
    });
    let mut out = [0u8; 16];
    let Some(key) = key else {
        // No randomness: a key that matches nothing, so nothing is ever found again.
        aws_lc_rs::rand::fill(&mut out).ok();
        return out;
    };
    let mut ctx = hmac::Context::with_key(key);
    for part in parts {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    out.copy_from_slice(&ctx.sign().as_ref()[..16]);
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn entries_are_bounded_and_expire() {
        let cache = Remembered::new(100);
        let now = Instant::now();
        let later = now + Duration::from_secs(60);
        for i in 0..150u32 {
            cache.insert(keyed(&[&i.to_be_bytes()]), i, later, now);
        }
        assert!(cache.len() <= 100);
        let key = keyed(&[b"k"]);
        cache.insert(key, 7, later, now);
        assert_eq!(cache.get(&key, now), Some(7));
        assert_eq!(cache.get(&key, later), None);
        assert_eq!(
            cache.get(&key, now),
            None,
            "an expired entry is dropped when found"
        );
    }

    #[test]
    fn keys_separate_their_parts() {
        assert_ne!(keyed(&[b"ab", b"c"]), keyed(&[b"a", b"bc"]));
        assert_eq!(keyed(&[b"ab", b"c"]), keyed(&[b"ab", b"c"]));
    }
}
