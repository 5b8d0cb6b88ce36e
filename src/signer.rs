//! The signing primitives under tokens: HMAC-SHA256 states already keyed
//! with a sign key, and constant-time comparison.
//!
//! HMAC absorbs its key into two SHA-256 blocks before it reads a byte of
//! the message. Every command signs a 16-byte id under one of very few sign
//! keys, so those two blocks are half of its work: a small cache keeps the
//! keyed state per sign key and each call clones it.

use hmac::{Hmac, KeyInit};
use sha2::Sha256;
use std::cell::RefCell;
use subtle::{Choice, ConstantTimeEq};

pub type HmacSha256 = Hmac<Sha256>;

/// How many sign keys keep a keyed state. Deployments use one, or a few
/// during a key rotation; past this, the oldest entry is replaced.
const CAPACITY: usize = 8;

struct Entry {
    key: Box<[u8]>,
    mac: HmacSha256,
}

#[derive(Default)]
struct KeyedStates {
    entries: Vec<Entry>,
    next_replaced: usize,
}

impl KeyedStates {
    fn keyed(&mut self, key: &[u8]) -> HmacSha256 {
        // Every entry is compared, in constant time: a sign key is a secret,
        // and how long the look-up takes must not tell how much of a guessed
        // key matches a cached one.
        let mut hit = None;
        for (index, entry) in self.entries.iter().enumerate() {
            if constant_time_eq(&entry.key, key) {
                hit = Some(index);
            }
        }
        if let Some(index) = hit {
            return self.entries[index].mac.clone();
        }
        let mac = new_keyed(key);
        let entry = Entry {
            key: key.into(),
            mac: mac.clone(),
        };
        if self.entries.len() < CAPACITY {
            self.entries.push(entry);
        } else {
            self.entries[self.next_replaced] = entry;
            self.next_replaced = (self.next_replaced + 1) % CAPACITY;
        }
        mac
    }
}

thread_local! {
    static KEYED: RefCell<KeyedStates> = RefCell::default();
}

/// An HMAC-SHA256 state keyed with `key`, ready for the message.
pub fn keyed(key: &[u8]) -> HmacSha256 {
    KEYED.with(|states| states.borrow_mut().keyed(key))
}

fn new_keyed(key: &[u8]) -> HmacSha256 {
    match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    }
}

/// Whether `a == b`, in time that depends on their lengths only. Compares
/// eight bytes at a time with `subtle`, which keeps the optimiser from
/// turning the comparison into an early exit.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut equal = Choice::from(1);
    for (x, y) in a.chunks(8).zip(b.chunks(8)) {
        equal &= word(x).ct_eq(&word(y));
    }
    equal.into()
}

/// Up to eight bytes as one word, zero-padded.
fn word(bytes: &[u8]) -> u64 {
    let mut word = [0; 8];
    word[..bytes.len()].copy_from_slice(bytes);
    u64::from_le_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::Mac;

    fn tag(mac: HmacSha256, message: &[u8]) -> Vec<u8> {
        let mut mac = mac;
        mac.update(message);
        mac.finalize().into_bytes().to_vec()
    }

    #[test]
    fn cached_states_sign_as_fresh_ones_do() {
        let mut states = KeyedStates::default();
        let keys: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; usize::from(i) * 7]).collect();
        // Twice round more keys than the cache holds, so entries get replaced.
        for _ in 0..2 {
            for key in &keys {
                let cached = tag(states.keyed(key), b"AbCdEfGh01234567");
                assert_eq!(
                    cached,
                    tag(new_keyed(key), b"AbCdEfGh01234567"),
                    "key {key:?}"
                );
            }
        }
        assert_eq!(states.entries.len(), CAPACITY);
    }

    #[test]
    fn keys_that_share_a_prefix_or_differ_in_length_are_told_apart() {
        let mut states = KeyedStates::default();
        let a = tag(states.keyed(b"secret"), b"id");
        let b = tag(states.keyed(b"secret2"), b"id");
        let c = tag(states.keyed(b"secreT"), b"id");
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, tag(states.keyed(b"secret"), b"id"));
    }

    #[test]
    fn constant_time_eq_is_equality() {
        let cases: [(&[u8], &[u8], bool); 7] = [
            (b"", b"", true),
            (b"abc", b"abc", true),
            (b"abc", b"abd", false),
            (b"abc", b"ab", false),
            (b"0123456789abcdef0", b"0123456789abcdef0", true),
            (b"0123456789abcdef0", b"0123456789abcdef1", false),
            (b"\0", b"", false),
        ];
        for (a, b, equal) in cases {
            assert_eq!(constant_time_eq(a, b), equal, "{a:?} {b:?}");
        }
    }
}
