//! v2 tokens, `v2.{<tag>}.<id>.<signature>` (docs/tokens.md#v2-tokens):
//! minting, parsing, signing and verifying, the binding a session stores,
//! and the session's key name.
//!
//! `<tag>` is the canonical tag of the session's hash slot (`tag.rs`), so
//! every Redis Cluster client routes the token to that slot. The signature
//! is HMAC-SHA256 over everything before the last dot, so the tag and the
//! version are signed along with the id.

use super::parts::{
    self, is_id, is_signature, signatures_equal, Id, Inline, Signature, ID_LEN, SIGNATURE_LEN,
};
use super::tag::{Tag, MAX_TAG_LEN};

/// What every v2 token starts with, up to its tag.
const PREFIX: &[u8; 4] = b"v2.{";
/// Between the tag and the id.
const AFTER_TAG: &[u8; 2] = b"}.";
/// The shortest token (a one-character tag) and the longest (three).
pub const MIN_TOKEN_LEN: usize = PREFIX.len() + 1 + AFTER_TAG.len() + ID_LEN + 1 + SIGNATURE_LEN;
pub const MAX_TOKEN_LEN: usize = MIN_TOKEN_LEN - 1 + MAX_TAG_LEN;
/// A minted token, 88 to 90 bytes.
pub type TokenBytes = Inline<MAX_TOKEN_LEN>;

/// What a session keeps of its token: the first 16 bytes of the signature
/// as the token writes them, its first 32 lowercase hex characters. Kept as
/// hex, a slice of the token: nothing to decode, so no decoding error, and
/// `HGET` shows the same characters the token starts its signature with.
pub const BINDING_LEN: usize = 32;
pub type Binding = [u8; BINDING_LEN];

const KEY_PREFIX: &[u8] = b"sg-session:";
/// `sg-session:{<tag>}.<id>`, 31 to 33 bytes.
pub const MAX_KEY_NAME_LEN: usize = KEY_PREFIX.len() + 1 + MAX_TAG_LEN + 2 + ID_LEN;
pub type KeyName = Inline<MAX_KEY_NAME_LEN>;

/// A v2 token that has the right shape and a canonical tag; whether its
/// signature is right is a separate question (`is_signed_by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token<'a> {
    bytes: &'a [u8],
    tag: Tag,
    id: &'a Id,
    /// Everything before the last dot: what the signature signs.
    signed: &'a [u8],
    signature: &'a Signature,
    binding: &'a Binding,
}

impl<'a> Token<'a> {
    /// Accepts exactly `v2.{` + a canonical tag + `}.` + 16 of
    /// `[A-Za-z0-9]` + `.` + 64 of `[0-9a-f]`, 88 to 90 bytes. A tag that
    /// is 1–3 alphanumerics but not its slot's canonical tag is refused
    /// like any other malformed token, signed or not: docs/tokens.md#v2-tokens defines the
    /// tag as the canonical one, the module never mints another, and so a
    /// session has exactly one token spelling.
    pub fn parse(bytes: &'a [u8]) -> Option<Self> {
        if !(MIN_TOKEN_LEN..=MAX_TOKEN_LEN).contains(&bytes.len()) {
            return None;
        }
        let (signed, signature) = bytes.split_last_chunk::<SIGNATURE_LEN>()?;
        let signed = signed.strip_suffix(b".")?;
        let (rest, id) = signed.split_last_chunk::<ID_LEN>()?;
        let tag = rest.strip_prefix(PREFIX)?.strip_suffix(AFTER_TAG)?;
        if !(is_id(id) && is_signature(signature)) {
            return None;
        }
        let (binding, _) = signature.split_first_chunk()?;
        Some(Token {
            bytes,
            tag: Tag::parse(tag)?,
            id,
            signed,
            signature,
            binding,
        })
    }

    /// The whole token.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    pub fn tag(&self) -> Tag {
        self.tag
    }

    /// The hash slot of the token, and of its session's key.
    pub fn slot(&self) -> usize {
        self.tag.slot()
    }

    pub fn id(&self) -> &'a Id {
        self.id
    }

    pub fn signature(&self) -> &'a Signature {
        self.signature
    }

    /// Whether the signature is the HMAC of `v2.{<tag>}.<id>` under
    /// `sign_key`, compared in constant time so that a forger learns
    /// nothing from the reply time.
    pub fn is_signed_by(&self, sign_key: &[u8]) -> bool {
        signatures_equal(&parts::hmac_hex(sign_key, &[self.signed]), self.signature)
    }

    /// The first 32 hex characters of the signature (`Binding`).
    pub fn binding(&self) -> &'a Binding {
        self.binding
    }

    /// Whether `stored`, a session's binding, is this token's, in time that
    /// depends on the lengths only: a stored value of any other length is
    /// simply not it.
    pub fn is_bound_to(&self, stored: &[u8]) -> bool {
        signatures_equal(self.binding(), stored)
    }

    /// The name of the session's key.
    pub fn key_name(&self) -> KeyName {
        key_name(self.tag, self.id)
    }
}

/// HMAC-SHA256 with `sign_key` over `v2.{<tag>}.<id>`, as 64 lowercase hex.
pub fn sign(sign_key: &[u8], tag: Tag, id: &Id) -> Signature {
    parts::hmac_hex(sign_key, &[PREFIX, tag.as_bytes(), AFTER_TAG, id])
}

/// The whole token for a tag, an id and its signature.
pub fn format(tag: Tag, id: &Id, signature: &Signature) -> TokenBytes {
    Inline::concat(&[PREFIX, tag.as_bytes(), AFTER_TAG, id, b".", signature])
}

/// A new token in `tag`'s slot: `id` (from `random_id`) signed with
/// `sign_key`.
pub fn mint(sign_key: &[u8], tag: Tag, id: &Id) -> TokenBytes {
    format(tag, id, &sign(sign_key, tag, id))
}

/// `sg-session:{<tag>}.<id>`: the one key of a v2 session, in its slot in
/// a cluster and under the same name standalone.
pub fn key_name(tag: Tag, id: &Id) -> KeyName {
    Inline::concat(&[KEY_PREFIX, b"{", tag.as_bytes(), b"}.", id])
}

#[cfg(test)]
mod tests {
    use super::super::tag::{slot_of, tag_of_slot, SLOT_COUNT};
    use super::*;

    const KEY: &[u8] = b"mykey";
    const ID: &Id = b"AbCdEfGh01234567";

    fn tag(slot: usize) -> Tag {
        Tag::of_slot(slot).expect("a slot")
    }

    /// A slot whose canonical tag has `len` characters.
    fn slot_with_tag_len(len: usize) -> usize {
        (0..SLOT_COUNT)
            .find(|&s| tag_of_slot(s).map(<[u8]>::len) == Some(len))
            .expect("some slot")
    }

    #[test]
    fn minted_tokens_have_the_spec_shape_and_parse_back() {
        for len in 1..=3 {
            let slot = slot_with_tag_len(len);
            let tag = tag(slot);
            let token = mint(KEY, tag, ID);
            assert_eq!(token.len(), 87 + len);
            let expected = [
                &b"v2.{"[..],
                tag.as_bytes(),
                b"}.",
                ID,
                b".",
                &sign(KEY, tag, ID),
            ]
            .concat();
            assert_eq!(token.as_bytes(), expected);
            let parsed = Token::parse(&token).expect("a minted token parses");
            assert_eq!(parsed.bytes(), token.as_bytes());
            assert_eq!(parsed.tag(), tag);
            assert_eq!(parsed.slot(), slot);
            assert_eq!(slot_of(tag.as_bytes()), slot);
            assert_eq!(parsed.id(), ID);
            assert!(parsed.is_signed_by(KEY));
            assert!(!parsed.is_signed_by(b"otherkey"));
        }
    }

    #[test]
    fn the_signature_covers_everything_before_the_last_dot() {
        let tag = tag(slot_with_tag_len(2));
        let token = mint(KEY, tag, ID);
        let last_dot = token.len() - 65;
        assert_eq!(token[last_dot], b'.');
        assert_eq!(
            sign(KEY, tag, ID),
            parts::hmac_hex(KEY, &[&token[..last_dot]])
        );
        // Not v1's message: the id alone.
        assert_ne!(sign(KEY, tag, ID), super::super::v1::sign(KEY, ID));
    }

    #[test]
    fn sign_matches_an_hmac_computed_apart() {
        use hmac::{KeyInit, Mac};
        let tag = tag(slot_of(b"a"));
        assert_eq!(tag.as_bytes(), b"a");
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(KEY).expect("any key");
        mac.update(b"v2.{a}.AbCdEfGh01234567");
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(&sign(KEY, tag, ID)[..], hex.as_bytes());
    }

    #[test]
    fn parse_rejects_every_wrong_shape() {
        let tag = tag(slot_with_tag_len(3));
        let good = mint(KEY, tag, ID);
        let good = good.as_bytes();
        assert_eq!(good.len(), 90);
        assert!(Token::parse(&good[..89]).is_none(), "one byte short");
        assert!(
            Token::parse(&[good, b"0"].concat()).is_none(),
            "one byte long"
        );
        assert!(Token::parse(b"").is_none());
        assert!(Token::parse(&[b'v'; 89]).is_none());
        let replace = |at: usize, with: u8| {
            let mut t = good.to_vec();
            t[at] = with;
            t
        };
        for (at, with) in [
            (0, b'V'),  // prefix
            (1, b'1'),  // version
            (2, b'-'),  // first dot
            (3, b'('),  // opening brace
            (4, b'_'),  // tag outside [0-9A-Za-z]
            (7, b')'),  // closing brace
            (8, b'x'),  // dot after the tag
            (9, b'_'),  // id outside [A-Za-z0-9]
            (24, 0),    // NUL in id
            (25, b'x'), // last dot
            (26, b'A'), // uppercase hex
            (89, b'g'), // not hex
        ] {
            assert!(
                Token::parse(&replace(at, with)).is_none(),
                "byte {at} = {with}"
            );
        }
    }

    #[test]
    fn a_tag_that_is_not_canonical_is_malformed_even_when_signed() {
        // "a" is the canonical tag of its slot; find a 3-character
        // spelling of the same slot and sign a token with it.
        let slot = slot_of(b"a");
        let other = (b'0'..=b'z')
            .flat_map(|x| (b'0'..=b'z').flat_map(move |y| (b'0'..=b'z').map(move |z| [x, y, z])))
            .find(|c| c.iter().all(u8::is_ascii_alphanumeric) && slot_of(c) == slot)
            .expect("another spelling");
        let signed = [&b"v2.{"[..], &other, b"}.", ID].concat();
        let token = [&signed[..], b".", &parts::hmac_hex(KEY, &[&signed])].concat();
        assert_eq!(token.len(), 90);
        assert!(Token::parse(&token).is_none());
        // Nor may a tag be empty or longer than three characters.
        for tag in [&b""[..], b"aaaa"] {
            let signed = [&b"v2.{"[..], tag, b"}.", ID].concat();
            let token = [&signed[..], b".", &parts::hmac_hex(KEY, &[&signed])].concat();
            assert!(Token::parse(&token).is_none(), "{tag:?}");
        }
    }

    #[test]
    fn tampered_tag_id_or_signature_fails_verification() {
        let (a, b) = (tag(slot_of(b"a")), tag(slot_of(b"b")));
        let good = mint(KEY, a, ID);
        let mut other_tag = good.as_bytes().to_vec();
        other_tag[4] = b'b';
        assert_eq!(Token::parse(&other_tag).map(|t| t.tag()), Some(b));
        let mut other_id = good.as_bytes().to_vec();
        other_id[7] = if other_id[7] == b'A' { b'B' } else { b'A' };
        let mut other_sig = good.as_bytes().to_vec();
        let last = other_sig.len() - 1;
        other_sig[last] = if other_sig[last] == b'0' { b'1' } else { b'0' };
        for bad in [other_tag, other_id, other_sig] {
            let parsed = Token::parse(&bad).expect("still well formed");
            assert!(!parsed.is_signed_by(KEY));
        }
    }

    #[test]
    fn the_binding_is_the_first_32_hex_characters_of_the_signature() {
        let tag = tag(slot_with_tag_len(2));
        let token = mint(KEY, tag, ID);
        let parsed = Token::parse(&token).expect("minted");
        let signature = sign(KEY, tag, ID);
        assert_eq!(parsed.binding(), &signature[..32]);
        assert_eq!(
            &parsed.binding()[..],
            &token[token.len() - 64..token.len() - 32]
        );
        assert!(parsed.is_bound_to(&signature[..32]));
        assert!(
            !parsed.is_bound_to(&signature),
            "the whole signature is not it"
        );
        assert!(!parsed.is_bound_to(&signature[..31]));
        assert!(!parsed.is_bound_to(b""));
        let other = sign(b"otherkey", tag, ID);
        assert!(!parsed.is_bound_to(&other[..32]));
        let mut one_off = *parsed.binding();
        one_off[31] ^= 1;
        assert!(!parsed.is_bound_to(&one_off));
    }

    #[test]
    fn the_key_name_is_the_tag_and_the_id() {
        let tag = tag(slot_of(b"a"));
        let parsed_token = mint(KEY, tag, ID);
        let parsed = Token::parse(&parsed_token).expect("minted");
        assert_eq!(
            parsed.key_name().as_bytes(),
            b"sg-session:{a}.AbCdEfGh01234567"
        );
        for len in 1..=3 {
            let slot = slot_with_tag_len(len);
            let name = key_name(Tag::of_slot(slot).expect("slot"), ID);
            assert_eq!(name.len(), 30 + len);
            // Redis hashes a key by what is between its first braces.
            let open = name.iter().position(|&b| b == b'{').expect("{");
            let close = name.iter().position(|&b| b == b'}').expect("}");
            assert_eq!(slot_of(&name[open + 1..close]), slot);
        }
        assert_eq!(MAX_KEY_NAME_LEN, 33);
    }

    #[test]
    fn lengths_are_88_to_90() {
        assert_eq!((MIN_TOKEN_LEN, MAX_TOKEN_LEN), (88, 90));
    }
}
