//! The checks every command that takes a keyref and a token runs, in the
//! order docs/errors.md#check-order fixes: step 2 (the keyref), steps 4 and
//! 5 (the token's shape), 3 and 6 (a ttl), then 7 to 9 (the signature and
//! the session it names).

use crate::arg::Arg;
use crate::error::Rejection;
use crate::key::Access;
use crate::keyref::{Keyref, Verified};
use crate::store::{self, Session};
use crate::token::{AnyToken, Version};
use crate::validate;
use redis_module::Context;

/// Step 2: not empty, then a ring this caller may use or an allowed raw key.
pub fn keyref_of<'a>(ctx: &Context, arg: &'a Arg) -> Result<Keyref<'a>, Rejection> {
    Keyref::of(ctx, validate::sign_key(arg.as_slice())?)
}

pub fn token_of(arg: &Arg) -> Result<AnyToken<'_>, Rejection> {
    validate::token(arg.as_slice())
}

/// Steps 3 and 6, for a session of `version` (v2 expiries are capped).
pub fn expiry_of(version: Version, arg: &Arg) -> Result<Option<i64>, Rejection> {
    validate::expiry_for(version, arg.parse_integer(), store::now_ms())
}

/// Steps 2, 4 and 5, then 7 to 9 of docs/errors.md#check-order, for the
/// commands with no ttl between them: the token's session, authenticated.
pub fn session_of<'c>(
    ctx: &'c Context,
    keyref: &Arg,
    token: &Arg,
    access: Access,
) -> Result<Session<'c>, Rejection> {
    let keyref = keyref_of(ctx, keyref)?;
    let token = token_of(token)?;
    Ok(authenticate(ctx, &keyref, &token, access)?.0)
}

/// Steps 7 to 9 of docs/errors.md#check-order: the keyref's secrets sign
/// the token, the session exists (its record readable, for v2), and it
/// holds what this very token carries. Also how the token verified.
pub fn authenticate<'c>(
    ctx: &'c Context,
    keyref: &Keyref,
    token: &AnyToken,
    access: Access,
) -> Result<(Session<'c>, Verified), Rejection> {
    let verified = keyref.verify(token).ok_or(Rejection::ForgedSignature)?;
    let session = Session::find(ctx, token, access)?;
    if !session.is_bound_to(token) {
        return Err(Rejection::StaleSignature);
    }
    Ok((session, verified))
}
