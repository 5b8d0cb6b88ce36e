//! The commands: parse, verify, store, reply. Each check is one named step,
//! called in the order docs/errors.md#check-order fixes, so the first failure
//! is the reply. No command asks which token version it holds: the keyref
//! verifies either (keyref.rs), and the store finds either's keys (store/).

use crate::arg::Arg;
use crate::config;
use crate::error::Rejection;
use crate::key::Access;
use crate::lifecycle::{self, Extras};
use crate::mint::mint;
use crate::options::Keyword;
use crate::reply::{Answer, Reply};
use crate::stats;
use crate::steps::{authenticate, expiry_of, keyref_of, session_of, token_of};
use crate::store;
use crate::token::Version;
use crate::validate;
use redis_module::Context;

/// SESSIONGATE.START <keyref> <ttl> [MAXLIFE <seconds>] [LABEL <text>]
/// (docs/commands.md#start): with an option, always a v2 session.
pub fn start(ctx: &Context, args: &[Arg]) -> Reply {
    let [_, keyref, ttl, rest @ ..] = args else {
        return Err(Rejection::WrongArity);
    };
    let options = lifecycle::options_of(rest, &[Keyword::Maxlife, Keyword::Label])?;
    let keyref = keyref_of(ctx, keyref)?;
    let version = match config::token_version() {
        _ if !rest.is_empty() => Version::V2,
        2 => Version::V2,
        _ => Version::V1,
    };
    // One clock read for the expiry, the deadline and `created`, so that a
    // deadline is exactly MAXLIFE (or default-max-lifetime) after `created`.
    let now = store::now_ms();
    let expires_at = validate::expiry_for(version, ttl.parse_integer(), now)?;
    let values = lifecycle::values_of(rest, &options, now)?;
    let extras = match version {
        Version::V1 => Extras::default(),
        Version::V2 => Extras {
            deadline: values.deadline.or_else(|| lifecycle::default_deadline(now)),
            label: values.label,
        },
    };
    let expires_at = extras.clamp(expires_at);
    let token = mint(
        ctx,
        keyref.signing_secret(),
        version,
        expires_at,
        &extras,
        now,
    )?;
    stats::SESSIONS_STARTED.incr();
    Ok(Answer::Token(token))
}

/// SESSIONGATE.EXPIRE <keyref> <token> <ttl>
pub fn expire(ctx: &Context, args: &[Arg]) -> Reply {
    let [_, keyref, token, ttl] = args else {
        return Err(Rejection::WrongArity);
    };
    let keyref = keyref_of(ctx, keyref)?;
    let token = token_of(token)?;
    let expires_at = expiry_of(token.version(), ttl)?;
    let (session, _) = authenticate(ctx, &keyref, &token, Access::Write)?;
    match expires_at {
        Some(at) => session.expire_at(at)?,
        None => {
            session.end()?;
            stats::SESSIONS_ENDED_BY_EXPIRE_0.incr();
        }
    }
    Ok(Answer::Ok)
}

/// SESSIONGATE.PSET <keyref> <token> <payload_name> <payload_data>
pub fn pset(ctx: &Context, args: &[Arg]) -> Reply {
    let [_, keyref, token, name, data] = args else {
        return Err(Rejection::WrongArity);
    };
    set_payloads(ctx, keyref, token, &[(name, data)])
}

/// SESSIONGATE.PMSET <keyref> <token> <name> <data> [<name> <data> …]
pub fn pmset(ctx: &Context, args: &[Arg]) -> Reply {
    let [_, keyref, token, rest @ ..] = args else {
        return Err(Rejection::WrongArity);
    };
    if rest.is_empty() || rest.len() % 2 != 0 {
        return Err(Rejection::WrongArity);
    }
    let pairs: Vec<(&Arg, &Arg)> = rest
        .chunks_exact(2)
        .map(|pair| (&pair[0], &pair[1]))
        .collect();
    set_payloads(ctx, keyref, token, &pairs)
}

/// PSET and PMSET: every name and data is checked before anything is written.
fn set_payloads(ctx: &Context, keyref: &Arg, token: &Arg, pairs: &[(&Arg, &Arg)]) -> Reply {
    let session = session_of(ctx, keyref, token, Access::Write)?;
    for (name, data) in pairs {
        check_payload_name(name)?;
        check_payload_data(data)?;
    }
    session.set_payloads(pairs, config::max_payloads_per_session())?;
    stats::PAYLOADS_SET.add(pairs.len());
    Ok(Answer::Ok)
}

/// SESSIONGATE.PGET <keyref> <token> <payload_name>
pub fn pget(ctx: &Context, args: &[Arg]) -> Reply {
    let [_, keyref, token, name] = args else {
        return Err(Rejection::WrongArity);
    };
    let session = session_of(ctx, keyref, token, Access::Read)?;
    check_payload_name(name)?;
    let data = session.payload(name)?.ok_or(Rejection::NoPayload)?;
    stats::PAYLOADS_READ.incr();
    Ok(Answer::Data(data))
}

/// SESSIONGATE.PMGET <keyref> <token> <name> [<name> …]
pub fn pmget(ctx: &Context, args: &[Arg]) -> Reply {
    let [_, keyref, token, names @ ..] = args else {
        return Err(Rejection::WrongArity);
    };
    if names.is_empty() {
        return Err(Rejection::WrongArity);
    }
    let session = session_of(ctx, keyref, token, Access::Read)?;
    for name in names {
        check_payload_name(name)?;
    }
    let found = session.payloads(names.iter())?;
    stats::PAYLOADS_READ.add(found.iter().flatten().count());
    Ok(Answer::Each(found))
}

/// SESSIONGATE.PGETALL <keyref> <token>
pub fn pgetall(ctx: &Context, args: &[Arg]) -> Reply {
    let [_, keyref, token] = args else {
        return Err(Rejection::WrongArity);
    };
    let session = session_of(ctx, keyref, token, Access::Read)?;
    let all = session.all_payloads()?;
    stats::PAYLOADS_READ.add(all.len());
    Ok(Answer::Payloads(all))
}

/// SESSIONGATE.PDEL <keyref> <token> <payload_name>
pub fn pdel(ctx: &Context, args: &[Arg]) -> Reply {
    let [_, keyref, token, name] = args else {
        return Err(Rejection::WrongArity);
    };
    let session = session_of(ctx, keyref, token, Access::Write)?;
    check_payload_name(name)?;
    if session.delete_payload(name)? {
        stats::PAYLOADS_DELETED.incr();
    }
    Ok(Answer::Ok)
}

/// SESSIONGATE.TTL <keyref> <token>
pub fn ttl(ctx: &Context, args: &[Arg]) -> Reply {
    let [_, keyref, token] = args else {
        return Err(Rejection::WrongArity);
    };
    let session = session_of(ctx, keyref, token, Access::Read)?;
    // Rounded as Redis' TTL rounds; -1 for a session with no expiry.
    let seconds = session.remaining_ms().map_or(-1, |ms| (ms + 500) / 1000);
    Ok(Answer::Integer(seconds))
}

/// SESSIONGATE.END <keyref> <token>
pub fn end(ctx: &Context, args: &[Arg]) -> Reply {
    let [_, keyref, token] = args else {
        return Err(Rejection::WrongArity);
    };
    session_of(ctx, keyref, token, Access::Write)?.end()?;
    stats::SESSIONS_ENDED.incr();
    Ok(Answer::Ok)
}

fn check_payload_name(arg: &Arg) -> Result<(), Rejection> {
    validate::payload_name(arg.as_slice(), config::max_payload_name_len())
}

fn check_payload_data(arg: &Arg) -> Result<(), Rejection> {
    validate::payload_data(arg.as_slice(), config::max_payload_data_len())
}
