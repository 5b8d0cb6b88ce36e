//! Hash slots and canonical tags as Redis Cluster and docs/tokens.md define
//! them, written here apart from `src/` (bit-by-bit CRC16, a brute-force
//! tag search), so that the suites check the module against an independent
//! computation.

use std::sync::OnceLock;

pub const SLOT_COUNT: usize = 16384;

/// CRC16/XMODEM (polynomial 0x1021, start 0), bit by bit, as Redis'
/// crc16.c.
pub fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in bytes {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// Redis' keyHashSlot: the CRC16 of the bytes between the first `{` and the
/// first `}` after it when there are any, else of the whole key, modulo
/// 16384.
pub fn key_hash_slot(key: &[u8]) -> usize {
    let hashed = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            let close = rest.iter().position(|&b| b == b'}')?;
            (close > 0).then(|| &rest[..close])
        })
        .unwrap_or(key);
    usize::from(crc16(hashed)) % SLOT_COUNT
}

/// Each slot's canonical tag (docs/tokens.md#canonical-tags): the first
/// string, by length then bytewise, of 1–3 characters of `[0-9A-Za-z]`, in
/// that slot. Brute force, once per test program.
pub fn canonical_tags() -> &'static [String] {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        let mut alphabet: Vec<u8> = (b'0'..=b'9')
            .chain(b'A'..=b'Z')
            .chain(b'a'..=b'z')
            .collect();
        alphabet.sort_unstable();
        let mut tags: Vec<Option<String>> = vec![None; SLOT_COUNT];
        let mut candidates: Vec<Vec<u8>> = vec![Vec::new()];
        for _len in 1..=3 {
            // Bytewise order within a length: extend each shorter one, in order.
            candidates = candidates
                .iter()
                .flat_map(|prefix| {
                    alphabet
                        .iter()
                        .map(move |&c| [prefix.as_slice(), &[c]].concat())
                })
                .collect();
            for candidate in &candidates {
                let tag = &mut tags[key_hash_slot(candidate)];
                if tag.is_none() {
                    *tag = Some(String::from_utf8(candidate.clone()).expect("alphanumeric"));
                }
            }
        }
        tags.into_iter()
            .enumerate()
            .map(|(slot, tag)| tag.unwrap_or_else(|| panic!("slot {slot} has no tag")))
            .collect()
    })
}

pub fn canonical_tag(slot: usize) -> &'static str {
    &canonical_tags()[slot]
}
