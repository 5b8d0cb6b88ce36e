//! HMAC-SHA256 states already keyed with a sign key, cached, and the
//! constant-time comparison every secret and signature check uses.
//!
//! HMAC absorbs its key into two SHA-256 blocks before it reads a byte of
//! the message. Every command signs a 16-byte id under one of very few sign
//! keys, so those two blocks are half of its work: a small cache keeps the
//! keyed state per sign key and each call clones it.
//!
//! Anyone who may run the commands chooses the sign key, forged calls
//! included, so what the cache holds is bounded in bytes, not only in
//! entries: a key longer than `MAX_CACHED_KEY_LEN` is keyed afresh on every
//! call and never kept (docs/tokens.md#verification).

use hmac::{Hmac, KeyInit};
use sha2::Sha256;
use std::cell::RefCell;
use subtle::ConstantTimeEq;

pub type HmacSha256 = Hmac<Sha256>;

/// How many sign keys keep a keyed state. Deployments use one, or a few
/// during a key rotation; past this, the oldest entry is replaced.
const CAPACITY: usize = 8;
/// The longest sign key the cache keeps a copy of. Raw keys are advised at
/// 32 bytes or more; a longer one costs HMAC an extra hash anyway.
const MAX_CACHED_KEY_LEN: usize = 1024;

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
        if key.len() > MAX_CACHED_KEY_LEN {
            return new_keyed(key);
        }
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

    /// Drops every entry, its key copy overwritten first: after a keyring
    /// swap no removed secret stays in this cache.
    fn clear(&mut self) {
        for entry in &mut self.entries {
            wipe(&mut entry.key);
        }
        self.entries.clear();
        self.next_replaced = 0;
    }
}

/// Overwrites `bytes` with zeros in a way the compiler may not drop as a
/// dead store, though the memory is freed right after.
pub fn wipe(bytes: &mut [u8]) {
    for byte in bytes.iter_mut() {
        // SAFETY: a valid, aligned, exclusive reference to one byte.
        unsafe { std::ptr::write_volatile(byte, 0) };
    }
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
}

thread_local! {
    static KEYED: RefCell<KeyedStates> = RefCell::default();
}

/// An HMAC-SHA256 state keyed with `key`, ready for the message.
pub fn keyed(key: &[u8]) -> HmacSha256 {
    KEYED.with(|states| states.borrow_mut().keyed(key))
}

/// Empties the cache of the calling thread. Every command runs on Redis'
/// main thread, and so does a keyring swap, which calls this
/// (docs/keyrings.md#reload): the one cache that commands fill is the one
/// emptied.
pub fn forget_all() {
    KEYED.with(|states| states.borrow_mut().clear());
}

fn new_keyed(key: &[u8]) -> HmacSha256 {
    match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    }
}

/// Whether `a == b`, in time that depends on their lengths only (`subtle`).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
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
    fn long_keys_sign_right_and_are_never_kept() {
        let mut states = KeyedStates::default();
        for len in [MAX_CACHED_KEY_LEN + 1, 3 << 20] {
            for round in 0..CAPACITY + 2 {
                let key = vec![round as u8; len];
                let mac = states.keyed(&key);
                assert_eq!(tag(mac, b"id"), tag(new_keyed(&key), b"id"));
            }
        }
        assert!(states.entries.is_empty());
        let longest = vec![9; MAX_CACHED_KEY_LEN];
        for round in 0..3 * CAPACITY {
            let mut key = longest.clone();
            key[0] = round as u8;
            states.keyed(&key);
        }
        assert_eq!(states.entries.len(), CAPACITY);
        let held: usize = states.entries.iter().map(|e| e.key.len()).sum();
        assert!(held <= CAPACITY * MAX_CACHED_KEY_LEN);
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
    fn forget_all_empties_the_cache_and_it_fills_again() {
        keyed(b"a secret of a removed ring");
        KEYED.with(|states| assert!(!states.borrow().entries.is_empty()));
        forget_all();
        KEYED.with(|states| {
            let states = states.borrow();
            assert!(states.entries.is_empty());
            assert_eq!(states.next_replaced, 0);
        });
        let mac = keyed(b"another key");
        assert_eq!(tag(mac, b"id"), tag(new_keyed(b"another key"), b"id"));
        KEYED.with(|states| assert_eq!(states.borrow().entries.len(), 1));
    }

    #[test]
    fn wipe_zeroes_every_byte() {
        let mut bytes = *b"secret bytes";
        wipe(&mut bytes);
        assert_eq!(bytes, [0; 12]);
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
