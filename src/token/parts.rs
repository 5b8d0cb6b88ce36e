//! What v1 and v2 tokens share: the random id, the signature as lowercase
//! hex and its constant-time comparison, and the byte classes their shapes
//! allow.

use crate::keyed_hmac;
use hmac::Mac;
use rand::distr::{Alphanumeric, Distribution};
use rand::Rng;

pub const ID_LEN: usize = 16;
pub const SIGNATURE_LEN: usize = 64;

pub type Id = [u8; ID_LEN];
/// HMAC-SHA256, as lowercase hex.
pub type Signature = [u8; SIGNATURE_LEN];

/// Whether `bytes` could be an id: all of `[A-Za-z0-9]`.
pub(super) fn is_id(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| ID_CHAR[usize::from(b)])
}

/// Whether `bytes` could be a signature: all of `[0-9a-f]`.
pub(super) fn is_signature(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| HEX_CHAR[usize::from(b)])
}

/// Which bytes may appear in an id (`[A-Za-z0-9]`) and in a signature
/// (`[0-9a-f]`), one table look-up per byte.
const ID_CHAR: [bool; 256] = byte_table(false);
const HEX_CHAR: [bool; 256] = byte_table(true);

const fn byte_table(lowercase_hex: bool) -> [bool; 256] {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = if lowercase_hex {
            matches!(b, b'0'..=b'9' | b'a'..=b'f')
        } else {
            b.is_ascii_alphanumeric()
        };
        byte += 1;
    }
    table
}

/// Constant-time equality of two signatures (or bindings): the time
/// depends on their lengths only.
pub fn signatures_equal(a: &[u8], b: &[u8]) -> bool {
    keyed_hmac::constant_time_eq(a, b)
}

/// HMAC-SHA256 under `sign_key` of the concatenation of `message`, as 64
/// lowercase hex characters.
pub(super) fn hmac_hex(sign_key: &[u8], message: &[&[u8]]) -> Signature {
    let mut mac = keyed_hmac::keyed(sign_key);
    for part in message {
        mac.update(part);
    }
    to_hex(&mac.finalize().into_bytes().into())
}

fn to_hex(digest: &[u8; SIGNATURE_LEN / 2]) -> Signature {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = [0; SIGNATURE_LEN];
    for (pair, byte) in hex.chunks_exact_mut(2).zip(digest) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0x0f)];
    }
    hex
}

/// 16 characters drawn uniformly from the 62 of `[A-Za-z0-9]` (rand's
/// `Alphanumeric` rejects out-of-range draws instead of taking a modulo).
pub fn random_id<R: Rng + ?Sized>(rng: &mut R) -> Id {
    let mut id = [0; ID_LEN];
    for (byte, drawn) in id.iter_mut().zip(Alphanumeric.sample_iter(rng)) {
        *byte = drawn;
    }
    id
}

/// Up to `N` bytes held inline, for a v2 token or key name, whose length
/// varies with its tag's: no allocation per command.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Inline<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Inline<N> {
    /// The concatenation of `parts`. The callers' parts always fit (their
    /// lengths are fixed by their types); were they longer, the bytes past
    /// `N` would be left out rather than panic.
    pub(super) fn concat(parts: &[&[u8]]) -> Self {
        let mut buf = [0; N];
        let mut len = 0;
        for (slot, &byte) in buf.iter_mut().zip(parts.iter().copied().flatten()) {
            *slot = byte;
            len += 1;
        }
        Inline { buf, len }
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

impl<const N: usize> std::ops::Deref for Inline<N> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl<const N: usize> AsRef<[u8]> for Inline<N> {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl<const N: usize> std::fmt::Debug for Inline<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_bytes().escape_ascii().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_are_alphanumeric_and_differ() {
        let mut rng = rand::rng();
        let a = random_id(&mut rng);
        let b = random_id(&mut rng);
        assert!(a.iter().chain(&b).all(u8::is_ascii_alphanumeric));
        assert_ne!(a, b);
    }

    #[test]
    fn byte_classes_are_the_spec_ones() {
        for b in 0..=255u8 {
            assert_eq!(is_id(&[b]), b.is_ascii_alphanumeric(), "{b}");
            let hex = b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
            assert_eq!(is_signature(&[b]), hex, "{b}");
        }
    }

    #[test]
    fn hmac_hex_signs_the_concatenation_of_the_parts() {
        // RFC 4231, test case 2, in three pieces.
        let expected = b"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        let parts: [&[u8]; 3] = [b"what do ya", b"", b" want for nothing?"];
        assert_eq!(&hmac_hex(b"Jefe", &parts), expected);
    }

    #[test]
    fn inline_holds_the_concatenation_and_never_more_than_n() {
        let short = Inline::<8>::concat(&[b"ab", b"", b"cd"]);
        assert_eq!(short.as_bytes(), b"abcd");
        assert_eq!(&*short, b"abcd");
        let cut = Inline::<3>::concat(&[b"ab", b"cd"]);
        assert_eq!(cut.as_bytes(), b"abc");
        assert_eq!(Inline::<4>::concat(&[]).as_bytes(), b"");
    }
}
