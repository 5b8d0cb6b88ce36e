//! The six commands: parse, verify, store, reply. Each check is one named
//! step, called in the order SPEC 1.4 fixes, so the first failure is the reply.

use crate::cluster::Served;
use crate::error::{Rejection, MAX_PAYLOAD_DATA_LEN, MAX_PAYLOAD_NAME_LEN};
use crate::key::Access;
use crate::store::{self, Availability, Session};
use crate::token::{self, Token, TOKEN_LEN};
use redis_module::{Context, RedisError, RedisResult, RedisString, RedisValue};

pub fn start(ctx: &Context, args: &[RedisString]) -> RedisResult {
    let [_, sign_key, ttl] = args else {
        return Err(RedisError::WrongArity);
    };
    let sign_key = sign_key_of(sign_key)?;
    let expires_at = expiry_of(ttl)?;
    let token = mint(ctx, sign_key)?;
    // A ttl of 0 is a session that is over before it starts: nothing to store.
    if let Some(at) = expires_at {
        store::create(ctx, &token, at);
    }
    Ok(RedisValue::StringBuffer(token.to_vec()))
}

/// A new token whose session does not exist yet. In a cluster, also one
/// whose slot this node serves, so that the cluster routes it back here.
fn mint(ctx: &Context, sign_key: &[u8]) -> Result<[u8; TOKEN_LEN], Rejection> {
    let now = store::now_ms();
    let mut served = Served::now(ctx, now).ok_or(Rejection::NoServedSlot)?;
    let mut rng = rand::rng();
    while served.next_draw() {
        let id = token::random_id(&mut rng);
        let token = token::format(&id, &token::sign(sign_key, &id));
        if !served.includes(&token) {
            continue;
        }
        match store::availability(ctx, &token) {
            Availability::Free => return Ok(token),
            Availability::Taken => {}
            Availability::NotServedHere => {
                if !served.proved_stale(ctx, &token, now) {
                    return Err(Rejection::NoServedSlot);
                }
            }
        }
    }
    Err(Rejection::NoFreeId)
}

pub fn expire(ctx: &Context, args: &[RedisString]) -> RedisResult {
    let [_, sign_key, token, ttl] = args else {
        return Err(RedisError::WrongArity);
    };
    let sign_key = sign_key_of(sign_key)?;
    let token = token_of(token)?;
    let expires_at = expiry_of(ttl)?;
    let session = authenticate(ctx, sign_key, &token, Access::Write)?;
    match expires_at {
        Some(at) => session.expire_at(at),
        None => session.end(),
    }
    Ok(RedisValue::SimpleStringStatic("OK"))
}

pub fn pset(ctx: &Context, args: &[RedisString]) -> RedisResult {
    let [_, sign_key, token, name, data] = args else {
        return Err(RedisError::WrongArity);
    };
    let sign_key = sign_key_of(sign_key)?;
    let token = token_of(token)?;
    let session = authenticate(ctx, sign_key, &token, Access::Read)?;
    check_payload_name(name)?;
    check_payload_data(data)?;
    session
        .set_payload(name, data)
        .map_err(|_| RedisError::WrongType)?;
    Ok(RedisValue::SimpleStringStatic("OK"))
}

pub fn pget(ctx: &Context, args: &[RedisString]) -> RedisResult {
    let [_, sign_key, token, name] = args else {
        return Err(RedisError::WrongArity);
    };
    let sign_key = sign_key_of(sign_key)?;
    let token = token_of(token)?;
    let session = authenticate(ctx, sign_key, &token, Access::Read)?;
    check_payload_name(name)?;
    let data = session.payload(name).ok_or(Rejection::NoPayload)?;
    Ok(RedisValue::BulkRedisString(data))
}

pub fn pdel(ctx: &Context, args: &[RedisString]) -> RedisResult {
    let [_, sign_key, token, name] = args else {
        return Err(RedisError::WrongArity);
    };
    let sign_key = sign_key_of(sign_key)?;
    let token = token_of(token)?;
    let session = authenticate(ctx, sign_key, &token, Access::Read)?;
    check_payload_name(name)?;
    session
        .delete_payload(name)
        .map_err(|_| Rejection::NoPayload)?;
    Ok(RedisValue::SimpleStringStatic("OK"))
}

pub fn end(ctx: &Context, args: &[RedisString]) -> RedisResult {
    let [_, sign_key, token] = args else {
        return Err(RedisError::WrongArity);
    };
    let sign_key = sign_key_of(sign_key)?;
    let token = token_of(token)?;
    authenticate(ctx, sign_key, &token, Access::Write)?.end();
    Ok(RedisValue::SimpleStringStatic("OK"))
}

fn sign_key_of(arg: &RedisString) -> Result<&[u8], Rejection> {
    non_empty(arg, Rejection::EmptySignKey)
}

fn token_of(arg: &RedisString) -> Result<Token<'_>, Rejection> {
    Token::parse(non_empty(arg, Rejection::EmptyToken)?).ok_or(Rejection::MalformedToken)
}

/// When a session of `<ttl>` seconds from now ends, in Unix milliseconds;
/// `None` for a ttl of 0, which ends the session at once.
fn expiry_of(arg: &RedisString) -> Result<Option<i64>, Rejection> {
    let ttl = arg.parse_integer().map_err(|_| Rejection::InvalidTtl)?;
    if ttl == 0 {
        return Ok(None);
    }
    u64::try_from(ttl)
        .ok()
        .and_then(|_| ttl.checked_mul(1000))
        .and_then(|ms| ms.checked_add(store::now_ms()))
        .map(Some)
        .ok_or(Rejection::InvalidTtl)
}

/// Steps 7 to 9 of SPEC 1.4: the HMAC is right, the session exists, and it
/// stores this very signature.
fn authenticate<'c>(
    ctx: &'c Context,
    sign_key: &[u8],
    token: &Token,
    access: Access,
) -> Result<Session<'c>, Rejection> {
    if !token.is_signed_by(sign_key) {
        return Err(Rejection::ForgedSignature);
    }
    let session = Session::find(ctx, token, access).ok_or(Rejection::NoSession)?;
    if !session.stores_signature(token.signature) {
        return Err(Rejection::StaleSignature);
    }
    Ok(session)
}

fn check_payload_name(arg: &RedisString) -> Result<(), Rejection> {
    let name = non_empty(arg, Rejection::EmptyPayloadName)?;
    within(name, MAX_PAYLOAD_NAME_LEN, Rejection::PayloadNameTooLong)
}

fn check_payload_data(arg: &RedisString) -> Result<(), Rejection> {
    let data = non_empty(arg, Rejection::EmptyPayloadData)?;
    within(data, MAX_PAYLOAD_DATA_LEN, Rejection::PayloadDataTooLong)
}

fn non_empty(arg: &RedisString, otherwise: Rejection) -> Result<&[u8], Rejection> {
    let bytes = arg.as_slice();
    if bytes.is_empty() {
        Err(otherwise)
    } else {
        Ok(bytes)
    }
}

fn within(bytes: &[u8], max: usize, otherwise: Rejection) -> Result<(), Rejection> {
    if bytes.len() > max {
        Err(otherwise)
    } else {
        Ok(())
    }
}
