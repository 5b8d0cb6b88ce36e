//! `Token::parse` on arbitrary bytes: it accepts exactly the shape of
//! docs/tokens.md#shape, what it accepts `token::format` writes back byte for
//! byte, and `is_signed_by` is the reference HMAC's verdict for any key.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use reference::{hmac_hex, is_token_shape, shaped};
use sessiongate::error::Rejection;
use sessiongate::token::{self, Token};
use sessiongate::validate;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    key: &'a [u8],
    bytes: &'a [u8],
    /// Parse `reference::shaped(bytes)` (almost always token-shaped)
    /// instead of the bytes themselves.
    shape: bool,
    /// With `shape`: put the right signature for `key` into the candidate,
    /// so that verification succeeds as well as fails.
    sign: bool,
}

fuzz_target!(|input: Input| {
    let mut candidate = if input.shape {
        shaped(input.bytes)
    } else {
        input.bytes.to_vec()
    };
    if input.shape && input.sign {
        let id = candidate[3..19].to_vec();
        candidate[20..].copy_from_slice(&hmac_hex(input.key, &id));
    }
    check(&candidate, input.key);
});

fn check(candidate: &[u8], key: &[u8]) {
    let parsed = Token::parse(candidate);
    assert_eq!(
        parsed.is_some(),
        is_token_shape(candidate),
        "parse disagrees with docs/tokens.md#shape on {candidate:?}"
    );
    // validate::token is parse behind the empty-token check.
    let expected = match (candidate.is_empty(), parsed.is_some()) {
        (true, _) => Err(Rejection::EmptyToken),
        (false, false) => Err(Rejection::MalformedToken),
        (false, true) => Ok(()),
    };
    assert_eq!(validate::token(candidate).map(|_| ()), expected);

    let Some(token) = parsed else { return };
    assert_eq!(candidate.len(), 84);
    assert_eq!(&candidate[..3], b"v1.");
    assert_eq!(&token.bytes[..], candidate);
    assert_eq!(&token.id[..], &candidate[3..19]);
    assert_eq!(&token.signature[..], &candidate[20..]);
    assert!(token.id.iter().all(u8::is_ascii_alphanumeric));
    assert!(token
        .signature
        .iter()
        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
    assert_eq!(&token::format(token.id, token.signature)[..], candidate);

    let right = hmac_hex(key, token.id);
    assert_eq!(token::sign(key, token.id), right, "sign({key:?}, id)");
    assert_eq!(
        token.is_signed_by(key),
        token.signature == &right,
        "is_signed_by({key:?}) on {candidate:?}"
    );
}
