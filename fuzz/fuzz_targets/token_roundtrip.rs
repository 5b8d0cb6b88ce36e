//! Minting and verifying: for any sign key and any id of docs/tokens.md#ids,
//! `format(id, sign(key, id))` parses, verifies under that key, and fails
//! under every other key, except those HMAC cannot tell from it.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use reference::{hmac_block_key, hmac_hex, id_from};
use sessiongate::token::{self, Token};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    key: &'a [u8],
    other_key: &'a [u8],
    id: [u8; 16],
}

fuzz_target!(|input: Input| {
    let Input { key, other_key, id } = input;
    let id = id_from(id);

    let signature = token::sign(key, &id);
    assert_eq!(signature, hmac_hex(key, &id), "sign({key:?}, {id:?})");
    let minted = token::format(&id, &signature);
    let token = Token::parse(&minted).expect("a minted token parses");
    assert_eq!(token.id, &id);
    assert_eq!(token.signature, &signature);
    assert!(token.is_signed_by(key), "fails its own key {key:?}");

    // HMAC zero-pads a short key and hashes a long one (RFC 2104), so keys
    // such as "k" and "k\0" are the same key to it: the fuzzer found that
    // a plain `other_key != key` is not the line between the two verdicts.
    let same_to_hmac = hmac_block_key(other_key) == hmac_block_key(key);
    assert_eq!(
        token.is_signed_by(other_key),
        same_to_hmac,
        "key {key:?}, other key {other_key:?}"
    );
    if other_key != key && same_to_hmac {
        // The module's keyed-state cache tells them apart all the same.
        assert_eq!(token::sign(other_key, &id), signature);
    }
});
