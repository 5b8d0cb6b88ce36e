//! Session tokens: minting, parsing, signing and verifying. Pure code with
//! no Redis types, so it is unit-tested without a server and benchmarked on
//! its own (docs/tokens.md).
//!
//! * `parts`: what both versions share: ids, hex signatures, comparison.
//! * `v1`: `v1.<id>.<signature>`, the C module's token.
//! * `v2`: `v2.{<tag>}.<id>.<signature>`, whose tag chooses its slot.
//! * `tag`: the canonical tag of each hash slot, with its proof.
//!
//! `AnyToken` is a token of either version, so that code taking a token
//! from a client never branches on the version itself. The v1 items keep
//! their paths here (`token::Token` is v1's, `token::sign`, …): the rest of
//! the crate, the benchmarks and the fuzz targets name them so.

mod parts;
pub mod tag;
pub mod v1;
pub mod v2;

pub use parts::{random_id, signatures_equal, Id, Inline, Signature, ID_LEN, SIGNATURE_LEN};
pub use tag::{key_slot, slot_of, tag_of_slot, Tag};
pub use v1::{format, sign, Token, ID_RANGE, SIGNATURE_RANGE, TOKEN_LEN};

/// A token just minted, of either version (v1's 84 bytes fit).
pub type Minted = v2::TokenBytes;

/// A minted v1 token as `Minted`.
pub fn minted_v1(token: &[u8; TOKEN_LEN]) -> Minted {
    Inline::concat(&[token])
}

/// A v2 session's binding: a signature's first 32 hex characters.
pub fn first_half(signature: &Signature) -> [u8; v2::BINDING_LEN] {
    let mut binding = [0; v2::BINDING_LEN];
    binding.copy_from_slice(&signature[..v2::BINDING_LEN]);
    binding
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// A well-formed token of either version; whether it is signed by a given
/// key is a separate question (`is_signed_by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnyToken<'a> {
    V1(v1::Token<'a>),
    V2(v2::Token<'a>),
}

impl<'a> AnyToken<'a> {
    /// A v1 token if `bytes` starts with `v1.`, a v2 token if with `v2.`,
    /// each with its exact shape; anything else is malformed (`None`).
    pub fn parse(bytes: &'a [u8]) -> Option<Self> {
        match bytes.first_chunk() {
            Some(b"v1.") => v1::Token::parse(bytes).map(AnyToken::V1),
            Some(b"v2.") => v2::Token::parse(bytes).map(AnyToken::V2),
            _ => None,
        }
    }

    pub fn version(&self) -> Version {
        match self {
            AnyToken::V1(_) => Version::V1,
            AnyToken::V2(_) => Version::V2,
        }
    }

    /// The whole token, as the client sent it.
    pub fn bytes(&self) -> &'a [u8] {
        match self {
            AnyToken::V1(token) => token.bytes,
            AnyToken::V2(token) => token.bytes(),
        }
    }

    pub fn id(&self) -> &'a Id {
        match self {
            AnyToken::V1(token) => token.id,
            AnyToken::V2(token) => token.id(),
        }
    }

    pub fn signature(&self) -> &'a Signature {
        match self {
            AnyToken::V1(token) => token.signature,
            AnyToken::V2(token) => token.signature(),
        }
    }

    /// Whether the token's signature is right under `sign_key` (its
    /// version's message), compared in constant time.
    pub fn is_signed_by(&self, sign_key: &[u8]) -> bool {
        match self {
            AnyToken::V1(token) => token.is_signed_by(sign_key),
            AnyToken::V2(token) => token.is_signed_by(sign_key),
        }
    }

    /// What a session keeps of the token that created it, which step 9
    /// compares: v1's whole signature (its `:signature` key, as the C module
    /// has it), v2's binding (the signature's first 32 hex characters).
    pub fn binding(&self) -> &'a [u8] {
        match self {
            AnyToken::V1(token) => token.signature,
            AnyToken::V2(token) => token.binding(),
        }
    }

    /// Whether `stored`, what a session keeps, is this token's `binding`,
    /// in time that depends on the lengths only.
    pub fn is_bound_to(&self, stored: &[u8]) -> bool {
        signatures_equal(self.binding(), stored)
    }

    /// v2's canonical tag; a v1 token has none (its keys are named by id,
    /// or by the whole token in a cluster).
    pub fn tag(&self) -> Option<Tag> {
        match self {
            AnyToken::V1(_) => None,
            AnyToken::V2(token) => Some(token.tag()),
        }
    }

    /// v2's slot, chosen by its tag; a v1 token's slot is where its whole
    /// text hashes, and `cluster` works that out.
    pub fn slot(&self) -> Option<usize> {
        self.tag().map(|tag| tag.slot())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"mykey";
    const ID: &Id = b"AbCdEfGh01234567";

    #[test]
    fn each_version_parses_by_its_prefix() {
        let one = format(ID, &sign(KEY, ID));
        let tag = Tag::of_slot(7).expect("a slot");
        let two = v2::mint(KEY, tag, ID);

        let parsed = AnyToken::parse(&one).expect("v1");
        assert_eq!(parsed, AnyToken::V1(Token::parse(&one).expect("v1")));
        assert_eq!(parsed.version(), Version::V1);
        assert_eq!((parsed.bytes(), parsed.id()), (&one[..], ID));
        assert_eq!(parsed.signature(), &sign(KEY, ID));
        assert_eq!(parsed.binding(), &sign(KEY, ID)[..]);
        assert_eq!((parsed.tag(), parsed.slot()), (None, None));

        let parsed = AnyToken::parse(&two).expect("v2");
        assert_eq!(parsed, AnyToken::V2(v2::Token::parse(&two).expect("v2")));
        assert_eq!(parsed.version(), Version::V2);
        assert_eq!((parsed.bytes(), parsed.id()), (two.as_bytes(), ID));
        assert_eq!(parsed.signature(), &v2::sign(KEY, tag, ID));
        assert_eq!(parsed.binding(), &v2::sign(KEY, tag, ID)[..32]);
        assert_eq!((parsed.tag(), parsed.slot()), (Some(tag), Some(7)));

        for token in [&one[..], two.as_bytes()] {
            let parsed = AnyToken::parse(token).expect("parses");
            assert!(parsed.is_signed_by(KEY));
            assert!(!parsed.is_signed_by(b"otherkey"));
            assert!(parsed.is_bound_to(parsed.binding()));
            assert!(!parsed.is_bound_to(&parsed.binding()[1..]));
        }
    }

    #[test]
    fn neither_shape_nor_another_version_parses() {
        let one = format(ID, &sign(KEY, ID));
        let two = v2::mint(KEY, Tag::of_slot(7).expect("a slot"), ID);
        let swap = |token: &[u8], version: u8| {
            let mut t = token.to_vec();
            t[1] = version;
            t
        };
        for bad in [
            &b""[..],
            b"v1",
            b"v2.",
            b"v3.",
            &swap(&one, b'2'),
            &swap(two.as_bytes(), b'1'),
            &swap(&one, b'3'),
            &one[1..],
            &two[..two.len() - 1],
        ] {
            assert_eq!(AnyToken::parse(bad), None, "{bad:?}");
        }
    }
}
