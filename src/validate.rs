//! The checks of docs/errors.md#check-order that need nothing but an argument's bytes. Pure,
//! so that they are unit-tested and fuzzed without a server; the commands
//! call them in that order.

use crate::error::Rejection;
use crate::token::{AnyToken, Version};

/// Step 2.
pub fn sign_key(arg: &[u8]) -> Result<&[u8], Rejection> {
    non_empty(arg, Rejection::EmptySignKey)
}

/// Steps 4 and 5: a v1 or a v2 token of exactly its shape.
pub fn token(arg: &[u8]) -> Result<AnyToken<'_>, Rejection> {
    AnyToken::parse(non_empty(arg, Rejection::EmptyToken)?).ok_or(Rejection::MalformedToken)
}

/// Steps 3 and 6: when a session of `ttl` seconds from `now_ms` ends, in
/// Unix milliseconds; `None` for a ttl of 0, which ends it at once. `ttl`
/// is `None` when the argument is not an integer.
pub fn expiry(ttl: Option<i64>, now_ms: i64) -> Result<Option<i64>, Rejection> {
    match ttl {
        Some(0) => Ok(None),
        Some(seconds) if seconds > 0 => seconds
            .checked_mul(1000)
            .and_then(|ms| ms.checked_add(now_ms))
            .map(Some)
            .ok_or(Rejection::InvalidTtl),
        _ => Err(Rejection::InvalidTtl),
    }
}

/// The latest expiry a v2 session may have, in Unix milliseconds: 2^53, so
/// that an expiry kept as a sorted-set score (a double) is exact
/// (docs/tokens.md#v2-tokens).
pub const MAX_V2_EXPIRY_MS: i64 = 1 << 53;

/// Steps 3 and 6 for a v2 session: `expiry`, and an instant past
/// `MAX_V2_EXPIRY_MS` is the ttl error as well.
pub fn expiry_v2(ttl: Option<i64>, now_ms: i64) -> Result<Option<i64>, Rejection> {
    match expiry(ttl, now_ms)? {
        Some(at) if at > MAX_V2_EXPIRY_MS => Err(Rejection::InvalidTtl),
        at => Ok(at),
    }
}

/// Steps 3 and 6 for a session of `version`.
pub fn expiry_for(
    version: Version,
    ttl: Option<i64>,
    now_ms: i64,
) -> Result<Option<i64>, Rejection> {
    match version {
        Version::V1 => expiry(ttl, now_ms),
        Version::V2 => expiry_v2(ttl, now_ms),
    }
}

/// The longest owner and label (docs/errors.md#lifecycle-errors).
pub const MAX_OWNER_LEN: usize = 512;
pub const MAX_LABEL_LEN: usize = 512;

pub fn owner(arg: &[u8]) -> Result<&[u8], Rejection> {
    let owner = non_empty(arg, Rejection::EmptyOwner)?;
    within(owner, MAX_OWNER_LEN, Rejection::OwnerTooLong(MAX_OWNER_LEN))?;
    Ok(owner)
}

pub fn label(arg: &[u8]) -> Result<&[u8], Rejection> {
    let label = non_empty(arg, Rejection::EmptyLabel)?;
    within(label, MAX_LABEL_LEN, Rejection::LabelTooLong(MAX_LABEL_LEN))?;
    Ok(label)
}

/// MAXLIFE: a deadline `seconds` from `now_ms`, at least 1 second and at
/// most `MAX_V2_EXPIRY_MS`.
pub fn maxlife(seconds: Option<i64>, now_ms: i64) -> Result<i64, Rejection> {
    match seconds {
        Some(seconds) if seconds >= 1 => seconds
            .checked_mul(1000)
            .and_then(|ms| ms.checked_add(now_ms))
            .filter(|at| *at <= MAX_V2_EXPIRY_MS)
            .ok_or(Rejection::InvalidMaxlife),
        _ => Err(Rejection::InvalidMaxlife),
    }
}

/// LIMIT's n: an integer of at least 1.
pub fn limit(n: Option<i64>) -> Result<usize, Rejection> {
    n.filter(|n| *n >= 1)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or(Rejection::InvalidLimit)
}

/// An OEND ID: 16 of `[A-Za-z0-9]`.
pub fn id(arg: &[u8]) -> Result<&[u8; 16], Rejection> {
    <&[u8; 16]>::try_from(arg)
        .ok()
        .filter(|id| id.iter().all(u8::is_ascii_alphanumeric))
        .ok_or(Rejection::InvalidId)
}

/// Step 10.
pub fn payload_name(arg: &[u8], max_len: usize) -> Result<(), Rejection> {
    within(
        non_empty(arg, Rejection::EmptyPayloadName)?,
        max_len,
        Rejection::PayloadNameTooLong(max_len),
    )
}

/// Step 11.
pub fn payload_data(arg: &[u8], max_len: usize) -> Result<(), Rejection> {
    within(
        non_empty(arg, Rejection::EmptyPayloadData)?,
        max_len,
        Rejection::PayloadDataTooLong(max_len),
    )
}

fn non_empty(bytes: &[u8], otherwise: Rejection) -> Result<&[u8], Rejection> {
    if bytes.is_empty() {
        Err(otherwise)
    } else {
        Ok(bytes)
    }
}

fn within(bytes: &[u8], max_len: usize, otherwise: Rejection) -> Result<(), Rejection> {
    if bytes.len() > max_len {
        Err(otherwise)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_values_are_checked_as_documented() {
        assert_eq!(owner(b""), Err(Rejection::EmptyOwner));
        assert_eq!(owner(&[0; 512]), Ok(&[0u8; 512][..]));
        assert_eq!(owner(&[0; 513]), Err(Rejection::OwnerTooLong(512)));
        assert_eq!(label(b""), Err(Rejection::EmptyLabel));
        assert_eq!(label(&[7; 513]), Err(Rejection::LabelTooLong(512)));
        assert_eq!(maxlife(Some(1), 5), Ok(1005));
        for bad in [
            None,
            Some(0),
            Some(-1),
            Some(i64::MAX),
            Some(MAX_V2_EXPIRY_MS / 1000 + 1),
        ] {
            assert_eq!(maxlife(bad, 5), Err(Rejection::InvalidMaxlife), "{bad:?}");
        }
        assert_eq!(limit(Some(1)), Ok(1));
        for bad in [None, Some(0), Some(-3)] {
            assert_eq!(limit(bad), Err(Rejection::InvalidLimit));
        }
        assert_eq!(id(b"AbCdEfGh01234567"), Ok(b"AbCdEfGh01234567"));
        for bad in [
            &b"AbCdEfGh0123456"[..],
            b"AbCdEfGh012345678",
            b"AbCdEfGh0123456-",
        ] {
            assert_eq!(id(bad), Err(Rejection::InvalidId));
        }
    }

    const NOW: i64 = 1_800_000_000_000;

    #[test]
    fn expiry_is_now_plus_the_ttl_or_the_ttl_error() {
        assert_eq!(expiry(Some(0), NOW), Ok(None));
        assert_eq!(expiry(Some(60), NOW), Ok(Some(NOW + 60_000)));
        for bad in [
            None,
            Some(-1),
            Some(i64::MIN),
            Some(i64::MAX),
            Some(i64::MAX / 1000),
        ] {
            assert_eq!(expiry(bad, NOW), Err(Rejection::InvalidTtl), "{bad:?}");
        }
        let last = (i64::MAX - NOW) / 1000;
        assert_eq!(expiry(Some(last), NOW), Ok(Some(NOW + last * 1000)));
        assert_eq!(expiry(Some(last + 1), NOW), Err(Rejection::InvalidTtl));
    }

    #[test]
    fn v2_expiries_stop_at_two_to_the_53_ms() {
        assert_eq!(MAX_V2_EXPIRY_MS, 9_007_199_254_740_992);
        assert_eq!(expiry_v2(Some(0), NOW), Ok(None));
        assert_eq!(expiry_v2(Some(60), NOW), Ok(Some(NOW + 60_000)));
        let last = (MAX_V2_EXPIRY_MS - NOW) / 1000;
        assert_eq!(expiry_v2(Some(last), NOW), Ok(Some(NOW + last * 1000)));
        assert_eq!(expiry_v2(Some(last + 1), NOW), Err(Rejection::InvalidTtl));
        // Exactly 2^53 is allowed, one millisecond more is not.
        let now = MAX_V2_EXPIRY_MS - 5_000;
        assert_eq!(expiry_v2(Some(5), now), Ok(Some(MAX_V2_EXPIRY_MS)));
        assert_eq!(expiry_v2(Some(5), now + 1), Err(Rejection::InvalidTtl));
        // Every value v1 refuses, v2 refuses too.
        for bad in [None, Some(-1), Some(i64::MIN), Some(i64::MAX)] {
            assert_eq!(expiry_v2(bad, NOW), Err(Rejection::InvalidTtl), "{bad:?}");
        }
        // The cap is exact as a double, its successor is not.
        assert_eq!(MAX_V2_EXPIRY_MS as f64 as i64, MAX_V2_EXPIRY_MS);
        assert_ne!((MAX_V2_EXPIRY_MS + 1) as f64 as i64, MAX_V2_EXPIRY_MS + 1);
    }

    #[test]
    fn names_and_data_are_limited_at_exactly_their_length() {
        assert_eq!(payload_name(b"", 3), Err(Rejection::EmptyPayloadName));
        assert_eq!(payload_name(b"abc", 3), Ok(()));
        assert_eq!(
            payload_name(b"abcd", 3),
            Err(Rejection::PayloadNameTooLong(3))
        );
        assert_eq!(payload_data(b"", 3), Err(Rejection::EmptyPayloadData));
        assert_eq!(payload_data(b"\0\0\0", 3), Ok(()));
        assert_eq!(
            payload_data(b"\0\0\0\0", 3),
            Err(Rejection::PayloadDataTooLong(3))
        );
    }

    #[test]
    fn an_empty_token_and_a_malformed_one_differ() {
        assert_eq!(token(b"").err(), Some(Rejection::EmptyToken));
        assert_eq!(token(b"v1.").err(), Some(Rejection::MalformedToken));
        assert_eq!(sign_key(b""), Err(Rejection::EmptySignKey));
        assert_eq!(sign_key(b"k"), Ok(&b"k"[..]));
    }
}
