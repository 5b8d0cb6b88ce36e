//! Where a session lives in Redis (docs/keys.md) and how every change to it
//! reaches replicas and the AOF (docs/replication.md).
//!
//! `Session::find` is the one place that decides, from a parsed token,
//! which keys its session has: a v1 token the C module's two keys (`v1`),
//! a v2 token one hash (`v2`). The commands call `Session`'s methods and
//! never ask which version they hold.

mod effects;
pub mod index;
pub mod record;
mod rotate;
mod v1;
mod v2;

use crate::arg::Arg;
use crate::error::Rejection;
use crate::key::Access;
use crate::reply::NameAndData;
use crate::token::{AnyToken, Id, Tag, TOKEN_LEN};
use record::Record;
use redis_module::{Context, RedisString};

pub use effects::now_ms;
pub use rotate::Rotation;

/// What START's attempt to claim a freshly minted token came to.
pub enum Claim {
    /// The session now exists (or, for a ttl of 0, could have).
    Created,
    /// A session with this id exists already.
    Taken,
    /// In a cluster: this node does not serve the token's slot (any more).
    NotServedHere,
}

/// Creates the session of a new v1 token if its id is free.
pub fn claim_v1(ctx: &Context, token: &[u8; TOKEN_LEN], expires_at: Option<i64>) -> Claim {
    v1::claim(ctx, token, expires_at)
}

/// Creates the v2 session `tag`/`id` with `record` if the id is free.
pub fn claim_v2(
    ctx: &Context,
    tag: Tag,
    id: &Id,
    record: &Record,
    expires_at: Option<i64>,
) -> Claim {
    v2::claim(ctx, tag, id, record, expires_at)
}

/// A session that exists, opened for a command: writes need
/// `Access::Write`.
pub enum Session<'c> {
    V1(v1::Session<'c>),
    V2(v2::Session<'c>),
}

impl<'c> Session<'c> {
    /// The token's session: `Err(NoSession)` if it does not exist (or
    /// expired), `Err(TryAgain)` if it may still be on its way here,
    /// `Err(UnreadableRecord)` for a v2 session whose record does not read.
    pub fn find(ctx: &'c Context, token: &AnyToken, access: Access) -> Result<Self, Rejection> {
        Ok(match token {
            AnyToken::V1(token) => Session::V1(v1::Session::find(ctx, token, access)?),
            AnyToken::V2(token) => Session::V2(v2::Session::find(ctx, token, access)?),
        })
    }

    /// Step 9: whether the session holds what `token` carries (v1 its
    /// whole signature, v2 its binding), in constant time. A token of the
    /// other version is never its session's.
    pub fn is_bound_to(&self, token: &AnyToken) -> bool {
        match (self, token) {
            (Session::V1(session), AnyToken::V1(token)) => {
                session.stores_signature(token.signature)
            }
            (Session::V2(session), AnyToken::V2(token)) => session.is_bound_to(token),
            _ => false,
        }
    }

    /// Milliseconds left, or `None` for a session with no expiry (possible
    /// only in a dataset written by other means).
    pub fn remaining_ms(&self) -> Option<i64> {
        let at = match self {
            Session::V1(session) => session.expires_at(),
            Session::V2(session) => session.expires_at(),
        }?;
        Some(at.saturating_sub(now_ms()).max(0))
    }

    /// One payload, `None` where the session has no such payload.
    pub fn payload(&self, name: &Arg) -> Result<Option<RedisString>, Rejection> {
        match self {
            Session::V1(session) => session.payload(name),
            Session::V2(session) => Ok(session.payload(name)),
        }
    }

    /// One payload per name, `None` where the session has no such payload.
    pub fn payloads<'n>(
        &self,
        names: impl Iterator<Item = &'n Arg>,
    ) -> Result<Vec<Option<RedisString>>, Rejection> {
        match self {
            Session::V1(session) => session.payloads(names),
            Session::V2(session) => Ok(session.payloads(names)),
        }
    }

    /// Every payload, by name.
    pub fn all_payloads(&self) -> Result<Vec<NameAndData>, Rejection> {
        match self {
            Session::V1(session) => session.all_payloads(),
            Session::V2(session) => Ok(session.all_payloads()),
        }
    }

    /// Sets payloads, all or none: none when they would take the session
    /// past `max_count` payloads (0: no limit).
    pub fn set_payloads(&self, pairs: &[(&Arg, &Arg)], max_count: usize) -> Result<(), Rejection> {
        match self {
            Session::V1(session) => session.set_payloads(pairs, max_count),
            Session::V2(session) => session.set_payloads(pairs, max_count),
        }
    }

    /// Deletes one payload; true if it was there. `Err(NoPayload)` when the
    /// session has no payloads at all (docs/commands.md#pdel).
    pub fn delete_payload(&self, name: &Arg) -> Result<bool, Rejection> {
        match self {
            Session::V1(session) => session.delete_payload(name),
            Session::V2(session) => session.delete_payload(name),
        }
    }

    /// Moves the session's expiry to `expires_at`.
    pub fn expire_at(&self, expires_at: i64) -> Result<(), Rejection> {
        match self {
            Session::V1(session) => session.expire_at(expires_at),
            Session::V2(session) => session.expire_at(expires_at),
        }
    }

    /// Deletes the session (and its owner index entry).
    pub fn end(self) -> Result<(), Rejection> {
        match self {
            Session::V1(session) => session.end(),
            Session::V2(session) => {
                // An index still on its way is waited for; one of the wrong
                // type does not keep the session from ending.
                if let Err(Rejection::TryAgain) = session.settle_index() {
                    return Err(Rejection::TryAgain);
                }
                session.end(c"sessiongate.end");
                Ok(())
            }
        }
    }

    /// What INSPECT shows (docs/commands.md#inspect).
    pub fn facts(&self) -> Result<Facts, Rejection> {
        Ok(match self {
            Session::V1(session) => Facts {
                version: 1,
                created: None,
                expires_at: session.expires_at(),
                deadline: None,
                owner: None,
                label: None,
                payloads: session.payload_count()?,
            },
            Session::V2(session) => {
                let record = session.record();
                Facts {
                    version: 2,
                    created: Some(record.created),
                    expires_at: session.expires_at(),
                    deadline: record.deadline,
                    owner: record.owner.map(|owner| owner.name.to_vec()),
                    label: record.label.map(<[u8]>::to_vec),
                    payloads: session.payload_count(),
                }
            }
        })
    }

    /// Whether the session's record names this owner in this namespace.
    pub fn is_owned_by(&self, owner: &[u8], namespace: &[u8]) -> bool {
        match self {
            Session::V1(_) => false,
            Session::V2(session) => session
                .record()
                .owner
                .is_some_and(|o| o.name == owner && o.namespace == namespace),
        }
    }

    /// ROTATE (docs/commands.md#rotate): a new v2 token for this session.
    pub fn rotate(self, rotation: &Rotation) -> Result<crate::token::Minted, Rejection> {
        rotate::rotate(self, rotation)
    }
}

/// A session as INSPECT shows it.
pub struct Facts {
    pub version: i64,
    pub created: Option<i64>,
    pub expires_at: Option<i64>,
    pub deadline: Option<i64>,
    pub owner: Option<Vec<u8>>,
    pub label: Option<Vec<u8>>,
    pub payloads: usize,
}

/// One live session of an owner, as OLIST shows it.
pub struct Listed {
    pub id: Id,
    pub created: i64,
    pub expires_at: i64,
    pub deadline: Option<i64>,
    pub label: Option<Vec<u8>>,
}

pub use owner::{end_sessions, list, start_owned, Owned, Start, Which};
mod owner;
