//! Reference statements of what the module's pure code must do, written from
//! docs/tokens.md, docs/errors.md and docs/keyrings.md independently of `src/`, for the fuzz
//! targets to compare the module against. Deliberately plain: no lookup
//! tables, no keyed-state cache, wide integers instead of checked arithmetic.

use hmac::{Hmac, KeyInit, Mac};
use sessiongate::error::Rejection;
use sessiongate::keyring_file::Keyring;
use sha2::{Digest, Sha256};

/// SHA-256's block size: HMAC pads (or first hashes) its key to this.
const BLOCK: usize = 64;

/// HMAC-SHA256 of `message` under `key`, as 64 lowercase hex characters,
/// straight from the `hmac` crate.
pub fn hmac_hex(key: &[u8], message: &[u8]) -> [u8; 64] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(message);
    let digest = mac.finalize().into_bytes();
    let mut hex = [0; 64];
    for (i, byte) in digest.iter().enumerate() {
        let two = format!("{byte:02x}");
        hex[2 * i..2 * i + 2].copy_from_slice(two.as_bytes());
    }
    hex
}

/// The key HMAC really uses (RFC 2104): a key longer than the block is
/// replaced by its SHA-256, and the result is zero-padded to the block. Two
/// sign keys with the same block key sign every id identically, so "a"
/// and "a\0" are one key as far as HMAC (and docs/tokens.md#signature) is
/// concerned.
pub fn hmac_block_key(key: &[u8]) -> [u8; BLOCK] {
    let mut block = [0; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    block
}

/// docs/tokens.md#shape, 84 bytes in all:
/// `^v1\.[0-9a-zA-Z]{16}\.[0-9a-f]{64}$`.
pub fn is_token_shape(bytes: &[u8]) -> bool {
    bytes.len() == 84
        && bytes.starts_with(b"v1.")
        && bytes[3..19].iter().all(u8::is_ascii_alphanumeric)
        && bytes[19] == b'.'
        && bytes[20..]
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

const ALNUM: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const HEX: &[u8; 16] = b"0123456789abcdef";

/// Any byte, mapped onto `[A-Za-z0-9]`.
pub fn alnum(byte: u8) -> u8 {
    ALNUM[usize::from(byte) % ALNUM.len()]
}

/// 16 arbitrary bytes as an id of docs/tokens.md#ids.
pub fn id_from(bytes: [u8; 16]) -> [u8; 16] {
    bytes.map(alnum)
}

/// An 84-byte candidate token built from arbitrary bytes: each byte is
/// mapped into what its position allows, except bytes from 0xF8 up, which
/// stay as they are (never allowed anywhere), so that most candidates have
/// the token shape and the rest miss it by a byte or a few. Random bytes
/// alone almost never reach the shape.
pub fn shaped(bytes: &[u8]) -> Vec<u8> {
    (0..84)
        .map(|at| {
            let byte = bytes.get(at).copied().unwrap_or(0);
            if byte >= 0xF8 {
                return byte;
            }
            match at {
                0 => b'v',
                1 => b'1',
                2 | 19 => b'.',
                3..=18 => alnum(byte),
                _ => HEX[usize::from(byte) % HEX.len()],
            }
        })
        .collect()
}

/// docs/errors.md#step-3 and #step-6 as they word it: a ttl that is not an
/// integer, or negative, is refused; 0 ends the session at once (`None`);
/// otherwise the session ends `ttl` seconds after `now_ms`, refused when
/// that instant (or the ttl in milliseconds) is no i64 of milliseconds.
pub fn expiry(ttl: Option<i64>, now_ms: i64) -> Result<Option<i64>, Rejection> {
    let ttl = ttl.ok_or(Rejection::InvalidTtl)?;
    if ttl < 0 {
        return Err(Rejection::InvalidTtl);
    }
    if ttl == 0 {
        return Ok(None);
    }
    let ms = i128::from(ttl) * 1000;
    let at = i128::from(now_ms) + ms;
    let fits = |v: i128| i64::try_from(v).is_ok();
    if fits(ms) && fits(at) {
        Ok(Some(at as i64))
    } else {
        Err(Rejection::InvalidTtl)
    }
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (RFC 4648, section 4), written out by hand
/// rather than with the crate the module decodes with.
pub fn base64(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in bytes.chunks(3) {
        let group = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for at in 0..4 {
            if at <= chunk.len() {
                out.push(BASE64[(group >> (18 - 6 * at) & 63) as usize]);
            } else {
                out.push(b'=');
            }
        }
    }
    out
}

/// docs/keyrings.md#fingerprint: the first 8 bytes of the secret's
/// SHA-256, as 16 lowercase hex characters.
pub fn fingerprint(secret: &[u8]) -> String {
    Sha256::digest(secret)[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A keyring written back as a keyring file in one canonical form: rings
/// by name, each ring's primary and then its verify secrets in order, one
/// space between fields, `users=` in byte order, `\n` after every line.
pub fn keyring_text(keyring: &Keyring) -> Vec<u8> {
    let mut text = Vec::new();
    for (name, ring) in keyring.rings() {
        for (state, secret) in ring.secrets() {
            text.extend_from_slice(name.as_bytes());
            text.push(b' ');
            text.extend_from_slice(state.as_str().as_bytes());
            text.push(b' ');
            text.extend(base64(secret.bytes()));
            if let Some(users) = ring.users() {
                text.extend_from_slice(b" users=");
                let names: Vec<&[u8]> = users.iter().map(|user| &user[..]).collect();
                text.extend(names.join(&b","[..]));
            }
            text.push(b'\n');
        }
    }
    text
}

/// CRC16/XMODEM bit by bit (poly 0x1021, init 0, no reflection, no final
/// xor) modulo 16384: the hash slot of a key, as Redis Cluster computes it.
pub fn slot(bytes: &[u8]) -> usize {
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
    usize::from(crc) % 16384
}

/// docs/tokens.md#v2-tokens: the canonical tag of every slot: walk the strings of 1, then 2,
/// then 3 characters of `[0-9A-Za-z]` in bytewise order and keep the first
/// that lands in each slot. Built once per fuzzing process.
pub fn canonical_tags() -> &'static [Vec<u8>] {
    static TAGS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    TAGS.get_or_init(|| {
        let mut sorted = *ALNUM;
        sorted.sort_unstable();
        let mut tags = vec![Vec::new(); 16384];
        let mut keep = |candidate: Vec<u8>| {
            let slot = slot(&candidate);
            if tags[slot].is_empty() {
                tags[slot] = candidate;
            }
        };
        for &a in &sorted {
            keep(vec![a]);
        }
        for &a in &sorted {
            for &b in &sorted {
                keep(vec![a, b]);
            }
        }
        for &a in &sorted {
            for &b in &sorted {
                for &c in &sorted {
                    keep(vec![a, b, c]);
                }
            }
        }
        assert!(tags.iter().all(|t| !t.is_empty()), "a slot without a tag");
        tags
    })
}

/// docs/tokens.md#v2-tokens: `^v2\.\{<tag>\}\.[0-9a-zA-Z]{16}\.[0-9a-f]{64}$` where `<tag>`
/// is the canonical tag of its slot.
pub fn is_v2_token_shape(bytes: &[u8]) -> bool {
    let Some(rest) = bytes.strip_prefix(b"v2.{") else {
        return false;
    };
    let Some(close) = rest.iter().position(|&b| b == b'}') else {
        return false;
    };
    let (tag, rest) = rest.split_at(close);
    let hex = |b: &u8| b.is_ascii_digit() || (b'a'..=b'f').contains(b);
    (1..=3).contains(&tag.len())
        && canonical_tags()[slot(tag)] == tag
        && rest.len() == 2 + 16 + 1 + 64
        && rest.starts_with(b"}.")
        && rest[2..18].iter().all(u8::is_ascii_alphanumeric)
        && rest[18] == b'.'
        && rest[19..].iter().all(hex)
}

/// A v2 candidate token built from arbitrary bytes: the canonical tag of a
/// slot (or, when `canonical` is false, three alphanumerics that may not be
/// one), then id and signature positions mapped as in `shaped`, bytes from
/// 0xF8 up left as they are.
pub fn shaped_v2(slot_bytes: [u8; 2], canonical: bool, bytes: &[u8]) -> Vec<u8> {
    let tag = if canonical {
        canonical_tags()[usize::from(u16::from_le_bytes(slot_bytes)) % 16384].clone()
    } else {
        vec![
            alnum(slot_bytes[0]),
            alnum(slot_bytes[1]),
            alnum(slot_bytes[0] ^ 0x55),
        ]
    };
    let mut token = [&b"v2.{"[..], &tag, b"}."].concat();
    for at in 0..16 + 1 + 64 {
        let byte = bytes.get(at).copied().unwrap_or(0);
        token.push(match (byte, at) {
            (0xF8.., _) => byte,
            (_, 0..=15) => alnum(byte),
            (_, 16) => b'.',
            _ => HEX[usize::from(byte) % HEX.len()],
        });
    }
    token
}

/// docs/tokens.md#v2-tokens: the one key of a v2 session, `sg-session:{<tag>}.<id>`.
pub fn v2_key_name(tag: &[u8], id: &[u8]) -> Vec<u8> {
    [&b"sg-session:{"[..], tag, b"}.", id].concat()
}
