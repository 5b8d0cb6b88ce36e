//! The commands: parse, verify, store, reply. Each check is one named step,
//! called in the order docs/errors.md#check-order fixes, so the first failure
//! is the reply.

use crate::arg::Arg;
use crate::cluster::Served;
use crate::config;
use crate::error::Rejection;
use crate::key::Access;
use crate::reply::{Answer, Reply};
use crate::stats;
use crate::store::{self, Claim, Session};
use crate::token::{self, Token, TOKEN_LEN};
use crate::validate;
use redis_module::Context;

/// SESSIONGATE.START <sign_key> <ttl>
pub fn start(ctx: &Context, args: &[Arg]) -> Reply {
    let [_, sign_key, ttl] = args else {
        return Err(Rejection::WrongArity);
    };
    let sign_key = sign_key_of(sign_key)?;
    let expires_at = expiry_of(ttl)?;
    let token = mint(ctx, sign_key, expires_at)?;
    stats::SESSIONS_STARTED.incr();
    Ok(Answer::Token(token))
}

/// A new token, its session created to expire at `expires_at` (a ttl of 0,
/// `None`, is a session over before it starts: nothing is stored). Ids are
/// drawn until one is free; in a cluster, until one is free in a slot this
/// node serves, so that the cluster routes the token back here.
fn mint(
    ctx: &Context,
    sign_key: &[u8],
    expires_at: Option<i64>,
) -> Result<[u8; TOKEN_LEN], Rejection> {
    let now = store::now_ms();
    let mut served = Served::now(ctx, now).ok_or(Rejection::NoServedSlot)?;
    let mut rng = rand::rng();
    while served.next_draw() {
        let id = token::random_id(&mut rng);
        let token = token::format(&id, &token::sign(sign_key, &id));
        if !served.includes(&token) {
            continue;
        }
        match store::claim(ctx, &token, expires_at) {
            Claim::Created => return Ok(token),
            Claim::Taken => {}
            Claim::NotServedHere => {
                if !served.proved_stale(ctx, &token, now) {
                    return Err(Rejection::NoServedSlot);
                }
            }
        }
    }
    Err(Rejection::NoFreeId)
}

/// SESSIONGATE.EXPIRE <sign_key> <token> <ttl>
pub fn expire(ctx: &Context, args: &[Arg]) -> Reply {
    let [_, sign_key, token, ttl] = args else {
        return Err(Rejection::WrongArity);
    };
    let sign_key = sign_key_of(sign_key)?;
    let token = token_of(token)?;
    let expires_at = expiry_of(ttl)?;
    let session = authenticate(ctx, sign_key, &token, Access::Write)?;
    match expires_at {
        Some(at) => session.expire_at(at)?,
        None => {
            session.end()?;
            stats::SESSIONS_ENDED_BY_EXPIRE_0.incr();
        }
    }
    Ok(Answer::Ok)
}

/// SESSIONGATE.PSET <sign_key> <token> <payload_name> <payload_data>
pub fn pset(ctx: &Context, args: &[Arg]) -> Reply {
    let [_, sign_key, token, name, data] = args else {
        return Err(Rejection::WrongArity);
    };
    set_payloads(ctx, sign_key, token, &[(name, data)])
}

/// SESSIONGATE.PMSET <sign_key> <token> <name> <data> [<name> <data> …]
pub fn pmset(ctx: &Context, args: &[Arg]) -> Reply {
    let [_, sign_key, token, rest @ ..] = args else {
        return Err(Rejection::WrongArity);
    };
    if rest.is_empty() || rest.len() % 2 != 0 {
        return Err(Rejection::WrongArity);
    }
    let pairs: Vec<(&Arg, &Arg)> = rest
        .chunks_exact(2)
        .map(|pair| (&pair[0], &pair[1]))
        .collect();
    set_payloads(ctx, sign_key, token, &pairs)
}

/// PSET and PMSET: every name and data is checked before anything is written.
fn set_payloads(ctx: &Context, sign_key: &Arg, token: &Arg, pairs: &[(&Arg, &Arg)]) -> Reply {
    let session = session_of(ctx, sign_key, token, Access::Read)?;
    for (name, data) in pairs {
        check_payload_name(name)?;
        check_payload_data(data)?;
    }
    session.set_payloads(pairs, config::max_payloads_per_session())?;
    stats::PAYLOADS_SET.add(pairs.len());
    Ok(Answer::Ok)
}

/// SESSIONGATE.PGET <sign_key> <token> <payload_name>
pub fn pget(ctx: &Context, args: &[Arg]) -> Reply {
    let [_, sign_key, token, name] = args else {
        return Err(Rejection::WrongArity);
    };
    let session = session_of(ctx, sign_key, token, Access::Read)?;
    check_payload_name(name)?;
    let data = session.payload(name)?.ok_or(Rejection::NoPayload)?;
    stats::PAYLOADS_READ.incr();
    Ok(Answer::Data(data))
}

/// SESSIONGATE.PMGET <sign_key> <token> <name> [<name> …]
pub fn pmget(ctx: &Context, args: &[Arg]) -> Reply {
    let [_, sign_key, token, names @ ..] = args else {
        return Err(Rejection::WrongArity);
    };
    if names.is_empty() {
        return Err(Rejection::WrongArity);
    }
    let session = session_of(ctx, sign_key, token, Access::Read)?;
    for name in names {
        check_payload_name(name)?;
    }
    let found = session.payloads(names.iter())?;
    stats::PAYLOADS_READ.add(found.iter().flatten().count());
    Ok(Answer::Each(found))
}

/// SESSIONGATE.PGETALL <sign_key> <token>
pub fn pgetall(ctx: &Context, args: &[Arg]) -> Reply {
    let [_, sign_key, token] = args else {
        return Err(Rejection::WrongArity);
    };
    let session = session_of(ctx, sign_key, token, Access::Read)?;
    let all = session.all_payloads()?;
    stats::PAYLOADS_READ.add(all.len());
    Ok(Answer::Payloads(all))
}

/// SESSIONGATE.PDEL <sign_key> <token> <payload_name>
pub fn pdel(ctx: &Context, args: &[Arg]) -> Reply {
    let [_, sign_key, token, name] = args else {
        return Err(Rejection::WrongArity);
    };
    let session = session_of(ctx, sign_key, token, Access::Read)?;
    check_payload_name(name)?;
    if session.delete_payload(name)? {
        stats::PAYLOADS_DELETED.incr();
    }
    Ok(Answer::Ok)
}

/// SESSIONGATE.TTL <sign_key> <token>
pub fn ttl(ctx: &Context, args: &[Arg]) -> Reply {
    let [_, sign_key, token] = args else {
        return Err(Rejection::WrongArity);
    };
    let session = session_of(ctx, sign_key, token, Access::Read)?;
    // Rounded as Redis' TTL rounds; -1 for a session with no expiry.
    let seconds = session.remaining_ms().map_or(-1, |ms| (ms + 500) / 1000);
    Ok(Answer::Integer(seconds))
}

/// SESSIONGATE.END <sign_key> <token>
pub fn end(ctx: &Context, args: &[Arg]) -> Reply {
    let [_, sign_key, token] = args else {
        return Err(Rejection::WrongArity);
    };
    session_of(ctx, sign_key, token, Access::Write)?.end()?;
    stats::SESSIONS_ENDED.incr();
    Ok(Answer::Ok)
}

fn sign_key_of(arg: &Arg) -> Result<&[u8], Rejection> {
    validate::sign_key(arg.as_slice())
}

fn token_of(arg: &Arg) -> Result<Token<'_>, Rejection> {
    validate::token(arg.as_slice())
}

fn expiry_of(arg: &Arg) -> Result<Option<i64>, Rejection> {
    validate::expiry(arg.parse_integer(), store::now_ms())
}

/// Steps 2, 4 and 5, then 7 to 9 of docs/errors.md#check-order, for the commands with no ttl
/// between them: the token's session, authenticated.
fn session_of<'c>(
    ctx: &'c Context,
    sign_key: &Arg,
    token: &Arg,
    access: Access,
) -> Result<Session<'c>, Rejection> {
    let sign_key = sign_key_of(sign_key)?;
    let token = token_of(token)?;
    authenticate(ctx, sign_key, &token, access)
}

/// Steps 7 to 9 of docs/errors.md#check-order: the HMAC is right, the session exists, and it
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
    let session = Session::find(ctx, token, access)?;
    if !session.stores_signature(token.signature) {
        return Err(Rejection::StaleSignature);
    }
    Ok(session)
}

fn check_payload_name(arg: &Arg) -> Result<(), Rejection> {
    validate::payload_name(arg.as_slice(), config::max_payload_name_len())
}

fn check_payload_data(arg: &Arg) -> Result<(), Rejection> {
    validate::payload_data(arg.as_slice(), config::max_payload_data_len())
}
