//! v2 tokens and `AnyToken` on arbitrary bytes: `AnyToken::parse` accepts
//! exactly the v1 shape of docs/tokens.md#shape and the v2 shape of docs/tokens.md#v2-tokens (with the canonical
//! tag of its slot), verification is the reference HMAC over everything
//! before the last dot, the binding is the signature's first 32 hex
//! characters, and a minted token in any slot parses back into that slot.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use reference::{
    canonical_tags, hmac_block_key, hmac_hex, id_from, is_token_shape, is_v2_token_shape,
    shaped_v2, slot, v2_key_name,
};
use sessiongate::token::{v2, AnyToken, Tag, Version};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    key: &'a [u8],
    other_key: &'a [u8],
    bytes: &'a [u8],
    /// Parse `reference::shaped_v2` (almost always v2-shaped) instead of
    /// the bytes themselves.
    shape: bool,
    /// With `shape`: a canonical tag, or three alphanumerics that may not be.
    canonical: bool,
    /// With `shape`: the right signature for `key`.
    sign: bool,
    slot: [u8; 2],
    id: [u8; 16],
}

fuzz_target!(|input: Input| {
    let mut candidate = if input.shape {
        shaped_v2(input.slot, input.canonical, input.bytes)
    } else {
        input.bytes.to_vec()
    };
    if input.shape && input.sign {
        let signed = candidate.len() - 65;
        let right = hmac_hex(input.key, &candidate[..signed]);
        candidate[signed + 1..].copy_from_slice(&right);
    }
    check_parse(&candidate, input.key);
    check_mint(&input);
});

fn check_parse(candidate: &[u8], key: &[u8]) {
    let parsed = AnyToken::parse(candidate);
    let (v1, v2) = (is_token_shape(candidate), is_v2_token_shape(candidate));
    assert_eq!(
        parsed.is_some(),
        v1 || v2,
        "parse disagrees on {candidate:?}"
    );
    assert_eq!(v2::Token::parse(candidate).is_some(), v2, "{candidate:?}");
    let Some(token) = parsed else { return };
    assert_eq!(token.bytes(), candidate);
    let last_dot = candidate.len() - 65;
    assert_eq!(&token.signature()[..], &candidate[last_dot + 1..]);
    assert_eq!(&token.id()[..], &candidate[last_dot - 16..last_dot]);
    let message: &[u8] = match token.version() {
        Version::V1 => token.id(),
        Version::V2 => &candidate[..last_dot],
    };
    let right = hmac_hex(key, message);
    assert_eq!(
        token.is_signed_by(key),
        token.signature() == &right,
        "is_signed_by({key:?}) on {candidate:?}"
    );
    assert!(token.is_bound_to(token.binding()));
    let AnyToken::V2(two) = token else {
        assert!(v1 && token.tag().is_none());
        assert_eq!(token.binding(), &candidate[20..]);
        return;
    };
    let tag = &candidate[4..last_dot - 18];
    assert_eq!(two.tag().as_bytes(), tag);
    assert_eq!(two.slot(), slot(tag));
    assert_eq!(token.slot(), Some(slot(tag)));
    assert_eq!(&two.binding()[..], &candidate[last_dot + 1..last_dot + 33]);
    assert_eq!(token.binding(), &two.binding()[..]);
    assert!(!token.is_bound_to(&candidate[last_dot + 1..]));
    assert_eq!(two.key_name().as_bytes(), v2_key_name(tag, two.id()));
    assert_eq!(
        v2::format(two.tag(), two.id(), two.signature()).as_bytes(),
        candidate
    );
}

fn check_mint(input: &Input) {
    let slot_number = usize::from(u16::from_le_bytes(input.slot)) % 16384;
    let tag = Tag::of_slot(slot_number).expect("every slot has a tag");
    let expected_tag = &canonical_tags()[slot_number];
    assert_eq!(tag.as_bytes(), expected_tag.as_slice());
    assert_eq!(slot(tag.as_bytes()), slot_number);
    let id = id_from(input.id);

    let minted = v2::mint(input.key, tag, &id);
    let signed = [&b"v2.{"[..], expected_tag, b"}.", &id].concat();
    let expected = [&signed[..], b".", &hmac_hex(input.key, &signed)].concat();
    assert_eq!(minted.as_bytes(), expected);
    let token = AnyToken::parse(&minted).expect("a minted token parses");
    assert_eq!(token.slot(), Some(slot_number));
    assert!(token.is_signed_by(input.key), "fails its own key");
    let same_to_hmac = hmac_block_key(input.other_key) == hmac_block_key(input.key);
    assert_eq!(token.is_signed_by(input.other_key), same_to_hmac);
    let other_binding = &hmac_hex(input.other_key, &signed)[..32];
    assert_eq!(token.is_bound_to(other_binding), same_to_hmac);
}
