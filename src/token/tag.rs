//! The canonical tag of each Redis Cluster hash slot (docs/tokens.md#canonical-tags):
//! the first string, ordered by length and then bytewise, of 1–3 characters
//! from `[0-9A-Za-z]` whose slot (CRC16/XMODEM modulo 16384, `slot_of`) is
//! that slot. A v2 token carries the canonical tag of its session's slot as
//! its hash tag, so the module picks a session's slot without drawing ids.
//!
//! The table is built on first use, once per process, by walking the
//! candidates in that order and keeping the first per slot. The unit tests
//! prove that every one of the 16384 slots gets a tag and compare the table
//! with a search written independently.

use std::sync::OnceLock;

/// How many hash slots Redis Cluster has.
pub const SLOT_COUNT: usize = 16384;

/// The slot of a key whose hash tag is `tag`: CRC16 (XMODEM) modulo 16384,
/// as Redis Cluster computes it.
pub fn slot_of(tag: &[u8]) -> usize {
    const CRC16: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_XMODEM);
    usize::from(CRC16.checksum(tag)) % SLOT_COUNT
}
/// The slot of a whole key, as Redis Cluster hashes it: the bytes between
/// the first `{` and the first `}` after it when there are any, else the
/// whole key (`keyHashSlot` in Redis' cluster.c).
pub fn key_slot(key: &[u8]) -> usize {
    let Some(open) = key.iter().position(|&b| b == b'{') else {
        return slot_of(key);
    };
    match key[open + 1..].iter().position(|&b| b == b'}') {
        Some(len) if len > 0 => slot_of(&key[open + 1..open + 1 + len]),
        _ => slot_of(key),
    }
}

/// The longest canonical tag.
pub const MAX_TAG_LEN: usize = 3;
/// The characters a tag may hold, in bytewise order.
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Each slot's tag, padded with NUL bytes (which no tag holds).
type Table = [[u8; MAX_TAG_LEN]; SLOT_COUNT];

static TABLE: OnceLock<Box<Table>> = OnceLock::new();

/// Builds the table now if it is not built yet.
pub fn build_table() {
    table();
}

fn table() -> &'static Table {
    TABLE.get_or_init(build)
}

/// Every candidate, shortest first and bytewise within a length: the
/// `n`th of length `len` spells `n` in base 62 with `ALPHABET` as digits,
/// most significant first, which is bytewise order since `ALPHABET` is.
fn build() -> Box<Table> {
    let mut table = Box::new([[0; MAX_TAG_LEN]; SLOT_COUNT]);
    for len in 1..=MAX_TAG_LEN {
        let count = ALPHABET.len().pow(len as u32);
        for n in 0..count {
            let mut tag = [0; MAX_TAG_LEN];
            let mut rest = n;
            for byte in tag.iter_mut().take(len).rev() {
                *byte = ALPHABET[rest % ALPHABET.len()];
                rest /= ALPHABET.len();
            }
            if let Some(entry) = table.get_mut(slot_of(until_nul(&tag))) {
                if entry[0] == 0 {
                    *entry = tag;
                }
            }
        }
    }
    table
}

fn until_nul(entry: &[u8; MAX_TAG_LEN]) -> &[u8] {
    entry.split(|&b| b == 0).next().unwrap_or(entry)
}

/// The canonical tag of `slot`; `None` for a slot of 16384 or more.
pub fn tag_of_slot(slot: usize) -> Option<&'static [u8]> {
    let tag = until_nul(table().get(slot)?);
    (!tag.is_empty()).then_some(tag)
}

/// Whether `tag` is the canonical tag of its slot. Equality with the
/// table's entry is the whole check: an entry is 1–3 characters of the
/// alphabet, so anything longer, shorter or holding another byte differs.
pub fn is_canonical(tag: &[u8]) -> bool {
    tag.len() <= MAX_TAG_LEN && tag_of_slot(slot_of(tag)) == Some(tag)
}

/// A canonical tag, with its slot: the only tags a v2 token may carry.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Tag {
    bytes: &'static [u8],
    slot: u16,
}

impl Tag {
    /// The canonical tag of `slot`; `None` for a slot of 16384 or more.
    pub fn of_slot(slot: usize) -> Option<Tag> {
        Some(Tag {
            bytes: tag_of_slot(slot)?,
            slot: u16::try_from(slot).ok()?,
        })
    }

    /// `bytes` as a tag, if it is the canonical tag of its slot.
    pub fn parse(bytes: &[u8]) -> Option<Tag> {
        if bytes.len() > MAX_TAG_LEN {
            return None;
        }
        Tag::of_slot(slot_of(bytes)).filter(|tag| tag.bytes == bytes)
    }

    pub fn as_bytes(&self) -> &'static [u8] {
        self.bytes
    }

    pub fn slot(&self) -> usize {
        usize::from(self.slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_hashes_by_its_hash_tag_as_redis_does() {
        assert_eq!(key_slot(b"foo"), slot_of(b"foo"));
        assert_eq!(key_slot(b"{user1000}.following"), slot_of(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), slot_of(b"foo{}{bar}"));
        assert_eq!(key_slot(b"foo{{bar}}zap"), slot_of(b"{bar"));
        assert_eq!(key_slot(b"foo{bar}{zap}"), slot_of(b"bar"));
        assert_eq!(key_slot(b"a{b{c}d}"), slot_of(b"b{c"));
        assert_eq!(key_slot(b"{"), slot_of(b"{"));
        assert_eq!(key_slot(b"x}{"), slot_of(b"x}{"));
    }
    use std::collections::HashMap;

    /// CRC16/XMODEM bit by bit (poly 0x1021, init 0, no reflection), apart
    /// from the `crc` crate the module uses.
    fn crc16_bitwise(bytes: &[u8]) -> u16 {
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

    /// The first tag per slot, found differently: every string of 1–3
    /// bytes from the ASCII range that holds the alphabet, kept if it is
    /// alphanumeric, sorted by (length, bytes), hashed bit by bit.
    fn brute_force() -> HashMap<usize, Vec<u8>> {
        let range = b'0'..=b'z';
        let mut candidates: Vec<Vec<u8>> = Vec::new();
        for a in range.clone() {
            candidates.push(vec![a]);
            for b in range.clone() {
                candidates.push(vec![a, b]);
                for c in range.clone() {
                    candidates.push(vec![a, b, c]);
                }
            }
        }
        candidates.retain(|c| c.iter().all(u8::is_ascii_alphanumeric));
        candidates.sort_by(|x, y| x.len().cmp(&y.len()).then(x.cmp(y)));
        let mut first = HashMap::new();
        for candidate in candidates {
            let slot = usize::from(crc16_bitwise(&candidate)) % 16384;
            first.entry(slot).or_insert(candidate);
        }
        first
    }

    #[test]
    fn the_bitwise_crc_is_redis_clusters() {
        assert_eq!(crc16_bitwise(b"123456789"), 0x31c3);
        for key in [&b"foo"[..], b"bar", b"", b"\xff\x00"] {
            assert_eq!(usize::from(crc16_bitwise(key)) % 16384, slot_of(key));
        }
    }

    #[test]
    fn every_slot_has_a_tag_of_at_most_three_characters_in_its_slot() {
        for slot in 0..SLOT_COUNT {
            let tag = tag_of_slot(slot).expect("every slot has a tag");
            assert!((1..=3).contains(&tag.len()), "slot {slot}: {tag:?}");
            assert!(tag.iter().all(u8::is_ascii_alphanumeric), "{tag:?}");
            assert_eq!(slot_of(tag), slot, "{tag:?}");
            assert!(is_canonical(tag));
            let parsed = Tag::parse(tag).expect("canonical");
            assert_eq!((parsed.slot(), parsed.as_bytes()), (slot, tag));
            assert_eq!(Tag::of_slot(slot), Some(parsed));
        }
        assert_eq!(tag_of_slot(SLOT_COUNT), None);
        assert_eq!(tag_of_slot(usize::MAX), None);
        assert_eq!(Tag::of_slot(SLOT_COUNT), None);
    }

    #[test]
    fn the_table_is_the_brute_force_search() {
        let expected = brute_force();
        assert_eq!(expected.len(), SLOT_COUNT, "every slot is reached");
        for slot in 0..SLOT_COUNT {
            assert_eq!(tag_of_slot(slot), expected.get(&slot).map(Vec::as_slice));
        }
    }

    #[test]
    fn the_shortest_tags_come_first() {
        // '0' is the first candidate of all, so it is its slot's tag.
        assert_eq!(tag_of_slot(slot_of(b"0")), Some(&b"0"[..]));
        // All 62 one-character tags land in distinct slots.
        let singles: std::collections::HashSet<usize> =
            ALPHABET.iter().map(|&c| slot_of(&[c])).collect();
        assert_eq!(singles.len(), 62);
        for &c in ALPHABET {
            assert_eq!(tag_of_slot(slot_of(&[c])), Some(&[c][..]));
        }
    }

    /// The figures and examples docs/tokens.md#canonical-tags gives.
    #[test]
    fn the_documented_examples_hold() {
        let mut by_len = [0; MAX_TAG_LEN + 1];
        for slot in 0..SLOT_COUNT {
            by_len[tag_of_slot(slot).map_or(0, <[u8]>::len)] += 1;
        }
        assert_eq!(by_len, [0, 62, 3448, 12874]);
        assert_eq!(tag_of_slot(0), Some(&b"06S"[..]));
        assert_eq!(tag_of_slot(1), Some(&b"Qi"[..]));
        assert_eq!(tag_of_slot(slot_of(b"foo")), Some(&b"9Le"[..]));
        assert_eq!(slot_of(b"foo"), 12182);
    }

    #[test]
    fn tags_that_are_not_canonical_are_refused() {
        for bad in [
            &b""[..],
            b"0000",
            b"ab-",
            b"\0",
            b"{a}",
            b"abcd",
            b"\xff\xff\xff",
        ] {
            assert!(!is_canonical(bad), "{bad:?}");
            assert_eq!(Tag::parse(bad), None, "{bad:?}");
        }
        // A 3-character alphanumeric string whose slot has a shorter tag.
        let slot_of_a = slot_of(b"a");
        let longer = brute_force_other_spelling(slot_of_a);
        assert!(!is_canonical(&longer), "{longer:?}");
    }

    /// Some alphanumeric string of 3 characters in `slot` other than its tag.
    fn brute_force_other_spelling(slot: usize) -> Vec<u8> {
        for a in ALPHABET {
            for b in ALPHABET {
                for c in ALPHABET {
                    let s = vec![*a, *b, *c];
                    if slot_of(&s) == slot && Some(&s[..]) != tag_of_slot(slot) {
                        return s;
                    }
                }
            }
        }
        panic!("no other spelling of slot {slot}")
    }
}
