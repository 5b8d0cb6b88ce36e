//! Session tokens: minting, parsing, signing and verifying. Pure code with
//! no Redis types, so it is unit-tested without a server and benchmarked on
//! its own (docs/tokens.md).
//!
//! * `v1`: `v1.<id>.<signature>`, the C module's token.
//!
//! The v1 items keep their paths here (`token::Token`, `token::sign`, …):
//! the rest of the crate, the benchmarks and the fuzz targets name them so.

pub mod v1;

pub use v1::{
    format, random_id, sign, signatures_equal, Id, Signature, Token, ID_LEN, ID_RANGE,
    SIGNATURE_LEN, SIGNATURE_RANGE, TOKEN_LEN,
};
