//! The session lifecycle's commands (docs/commands.md#session-lifecycle):
//! ROTATE, INSPECT and the owner commands OSTART, OLIST and OEND, and the
//! option values START shares with them. Each check is one step, called in
//! the order docs/errors.md#lifecycle-errors fixes.

use crate::arg::Arg;
use crate::config;
use crate::error::Rejection;
use crate::key::Access;
use crate::keyref::Keyref;
use crate::options::{self, Keyword, Options, Policy};
use crate::reply::{Answer, Field, Fields, Reply};
use crate::stats;
use crate::steps::{authenticate, keyref_of, token_of};
use crate::store::{self, Owned, Rotation, Start, Which};
use crate::token::{self, AnyToken, Tag};
use crate::validate::{self, MAX_V2_EXPIRY_MS};
use redis_module::Context;

/// What a new v2 session's record holds besides its binding and owner.
#[derive(Default)]
pub struct Extras<'a> {
    pub deadline: Option<i64>,
    pub label: Option<&'a [u8]>,
}

impl Extras<'_> {
    /// An expiry as the deadline allows it: never later.
    pub fn clamp(&self, expires_at: Option<i64>) -> Option<i64> {
        expires_at.map(|at| self.deadline.map_or(at, |deadline| at.min(deadline)))
    }
}

/// The options' values, checked.
#[derive(Default)]
pub struct Values<'a> {
    pub deadline: Option<i64>,
    pub label: Option<&'a [u8]>,
    pub limit: Option<(usize, Policy)>,
    /// ROTATE's TTL: `Some(None)` for 0.
    pub ttl: Option<Option<i64>>,
}

/// Step 1 for the options: their shape.
pub fn options_of(rest: &[Arg], allowed: &[Keyword]) -> Result<Options, Rejection> {
    let words: Vec<&[u8]> = rest.iter().map(Arg::as_slice).collect();
    options::parse(&words, allowed).ok_or(Rejection::WrongArity)
}

/// The options' values, left to right.
pub fn values_of<'a>(
    rest: &'a [Arg],
    options: &Options,
    now: i64,
) -> Result<Values<'a>, Rejection> {
    let mut values = Values::default();
    for (at, keyword) in options.in_order() {
        let Some(arg) = rest.get(at) else {
            return Err(Rejection::WrongArity);
        };
        match keyword {
            Keyword::Maxlife => {
                values.deadline = Some(validate::maxlife(arg.parse_integer(), now)?)
            }
            Keyword::Label => values.label = Some(validate::label(arg.as_slice())?),
            Keyword::Limit => {
                let policy = options.limit.map_or(Policy::Evict, |(_, policy)| policy);
                values.limit = Some((validate::limit(arg.parse_integer())?, policy));
            }
            Keyword::Ttl => values.ttl = Some(validate::expiry_v2(arg.parse_integer(), now)?),
        }
    }
    Ok(values)
}

/// `default-max-lifetime` from `now`, if set.
pub fn default_deadline(now: i64) -> Option<i64> {
    let seconds = config::default_max_lifetime();
    (seconds > 0).then(|| {
        now.saturating_add(seconds.saturating_mul(1000))
            .min(MAX_V2_EXPIRY_MS)
    })
}

/// The owner's slot's canonical tag: where its index and sessions live.
fn tag_of_owner(owner: &[u8]) -> Tag {
    match Tag::of_slot(token::key_slot(owner)) {
        Some(tag) => tag,
        None => unreachable!("key_slot is below the slot count"),
    }
}

fn owned<'a>(keyref: &Keyref, owner: &'a [u8]) -> Owned<'a> {
    Owned {
        owner,
        namespace: keyref.namespace(),
        tag: tag_of_owner(owner),
    }
}

/// SESSIONGATE.OSTART <keyref> <owner> <ttl> [MAXLIFE <s>] [LABEL <text>] [LIMIT <n> [EVICT|REJECT]]
pub fn ostart(ctx: &Context, args: &[Arg]) -> Reply {
    let [_, keyref, owner, ttl, rest @ ..] = args else {
        return Err(Rejection::WrongArity);
    };
    let options = options_of(rest, &[Keyword::Maxlife, Keyword::Label, Keyword::Limit])?;
    let keyref = keyref_of(ctx, keyref)?;
    let owner = validate::owner(owner.as_slice())?;
    let now = store::now_ms();
    let expires_at = validate::expiry_v2(ttl.parse_integer(), now)?;
    let values = values_of(rest, &options, now)?;
    let extras = Extras {
        deadline: values.deadline.or_else(|| default_deadline(now)),
        label: values.label,
    };
    let start = Start {
        secret: keyref.signing_secret(),
        deadline: extras.deadline,
        label: extras.label,
        expires_at: extras.clamp(expires_at),
        limit: values.limit,
        max: config::max_sessions_per_owner(),
        now,
    };
    let token = store::start_owned(ctx, &owned(&keyref, owner), &start)?;
    stats::SESSIONS_STARTED.incr();
    Ok(Answer::Token(token))
}

/// SESSIONGATE.OLIST <keyref> <owner>
pub fn olist(ctx: &Context, args: &[Arg]) -> Reply {
    let [_, keyref, owner] = args else {
        return Err(Rejection::WrongArity);
    };
    let keyref = keyref_of(ctx, keyref)?;
    let owner = validate::owner(owner.as_slice())?;
    let listed = store::list(ctx, &owned(&keyref, owner), store::now_ms())?;
    Ok(Answer::EachFields(
        listed
            .into_iter()
            .map(|session| {
                vec![
                    ("id", Field::Bytes(session.id.to_vec())),
                    ("created", Field::Integer(session.created)),
                    ("expires", Field::Integer(session.expires_at)),
                    ("deadline", Field::integer_or_nil(session.deadline)),
                    ("label", Field::bytes_or_nil(session.label)),
                ]
            })
            .collect(),
    ))
}

/// SESSIONGATE.OEND <keyref> <owner> [EXCEPT <token> | ID <id> [<id> …]]
pub fn oend(ctx: &Context, args: &[Arg]) -> Reply {
    let [_, keyref, owner, rest @ ..] = args else {
        return Err(Rejection::WrongArity);
    };
    let mode = match rest {
        [] => Mode::All,
        [word, token] if word.as_slice().eq_ignore_ascii_case(b"EXCEPT") => Mode::Except(token),
        [word, ids @ ..] if word.as_slice().eq_ignore_ascii_case(b"ID") && !ids.is_empty() => {
            Mode::Ids(ids)
        }
        _ => return Err(Rejection::WrongArity),
    };
    let keyref = keyref_of(ctx, keyref)?;
    let owner = validate::owner(owner.as_slice())?;
    let owned = owned(&keyref, owner);
    let which = match mode {
        Mode::All => Which::All,
        Mode::Except(token) => {
            let token = token_of(token)?;
            // A token of another slot names a key this command must not
            // open (docs/cluster.md): refused before any is.
            if token.tag() != Some(owned.tag) {
                return Err(Rejection::NotTheOwners);
            }
            let (session, _) = authenticate(ctx, &keyref, &token, Access::Read)?;
            if !session.is_owned_by(owner, &owned.namespace) {
                return Err(Rejection::NotTheOwners);
            }
            Which::AllBut(*token.id())
        }
        Mode::Ids(ids) => Which::These(
            ids.iter()
                .map(|id| validate::id(id.as_slice()).copied())
                .collect::<Result<_, _>>()?,
        ),
    };
    let ended = store::end_sessions(ctx, &owned, &which, store::now_ms())?;
    Ok(Answer::Integer(ended as i64))
}

enum Mode<'a> {
    All,
    Except(&'a Arg),
    Ids(&'a [Arg]),
}

/// SESSIONGATE.ROTATE <keyref> <token> [TTL <seconds>]
pub fn rotate(ctx: &Context, args: &[Arg]) -> Reply {
    let [_, keyref, token, rest @ ..] = args else {
        return Err(Rejection::WrongArity);
    };
    let options = options_of(rest, &[Keyword::Ttl])?;
    let keyref = keyref_of(ctx, keyref)?;
    let token = token_of(token)?;
    let now = store::now_ms();
    let values = values_of(rest, &options, now)?;
    let (session, _) = authenticate(ctx, &keyref, &token, Access::Write)?;
    let rotation = Rotation {
        ctx,
        secret: keyref.signing_secret(),
        namespace: keyref.namespace(),
        tag: slot_tag(&token),
        ttl: values.ttl,
        default_deadline: default_deadline(now),
        now,
    };
    let minted = session.rotate(&rotation)?;
    stats::SESSIONS_ROTATED.incr();
    Ok(Answer::Token(minted))
}

/// The canonical tag of the slot the token's session is in: v2's own tag;
/// for v1, its keys' slot in a cluster (the whole token is their hash
/// tag), which standalone has no use for but keeps alike.
fn slot_tag(token: &AnyToken) -> Tag {
    token.tag().unwrap_or_else(|| {
        Tag::of_slot(token::slot_of(token.bytes()))
            .unwrap_or_else(|| unreachable!("slot_of is below the slot count"))
    })
}

/// SESSIONGATE.INSPECT <keyref> <token>
pub fn inspect(ctx: &Context, args: &[Arg]) -> Reply {
    let [_, keyref, token] = args else {
        return Err(Rejection::WrongArity);
    };
    let keyref = keyref_of(ctx, keyref)?;
    let token = token_of(token)?;
    let (session, verified) = authenticate(ctx, &keyref, &token, Access::Read)?;
    let facts = session.facts()?;
    let fields: Fields = vec![
        ("version", Field::Integer(facts.version)),
        ("id", Field::Bytes(token.id().to_vec())),
        ("created", Field::integer_or_nil(facts.created)),
        ("expires", Field::integer_or_nil(facts.expires_at)),
        ("deadline", Field::integer_or_nil(facts.deadline)),
        ("owner", Field::bytes_or_nil(facts.owner)),
        ("label", Field::bytes_or_nil(facts.label)),
        ("payloads", Field::Integer(facts.payloads as i64)),
        ("stale", Field::Integer(i64::from(verified.stale))),
    ];
    Ok(Answer::Fields(fields))
}
