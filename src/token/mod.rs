//! Session tokens: minting, parsing, signing and verifying. Pure code with
//! no Redis types, so it is unit-tested without a server and benchmarked on
//! its own (docs/tokens.md).
//!
//! * `parts`: what both versions share: ids, hex signatures, comparison.
//! * `v1`: `v1.<id>.<signature>`, the C module's token.
//! * `v2`: `v2.{<tag>}.<id>.<signature>`, whose tag chooses its slot.
//! * `tag`: the canonical tag of each hash slot, with its proof.
//!
//! The v1 items keep their paths here (`token::Token`, `token::sign`, …):
//! the rest of the crate, the benchmarks and the fuzz targets name them so.

mod parts;
pub mod tag;
pub mod v1;
pub mod v2;

pub use parts::{random_id, signatures_equal, Id, Inline, Signature, ID_LEN, SIGNATURE_LEN};
pub use tag::{slot_of, tag_of_slot, Tag};
pub use v1::{format, sign, Token, ID_RANGE, SIGNATURE_RANGE, TOKEN_LEN};
