//! An owner's sessions (docs/commands.md#owner-commands): started under a
//! limit, listed and ended together, all in the owner's slot with the
//! owner's index (`index.rs`).
//!
//! A session is live when its index score (its expiry) is not past and its
//! key is there with a record naming this owner and namespace: `maxmemory`
//! eviction may remove a session on its own. OLIST skips the rest; the
//! write commands also prune them from the index.

use super::index::{Entry, Index};
use super::record::{Owner, Record};
use super::rotate::free_id;
use super::v2::{self, Session};
use super::{Claim, Listed};
use crate::error::Rejection;
use crate::key::Access;
use crate::options::Policy;
use crate::stats;
use crate::token::{self, Id, Minted, Tag};
use redis_module::Context;

/// An owner of one application: its name, the keyref's namespace, and the
/// tag of the owner's slot.
pub struct Owned<'a> {
    pub owner: &'a [u8],
    pub namespace: Vec<u8>,
    pub tag: Tag,
}

impl Owned<'_> {
    fn index<'c>(&self, ctx: &'c Context) -> Index<'c> {
        Index::of(ctx, self.tag, &self.namespace, self.owner)
    }

    /// The session `id` if it is live and this owner's.
    fn session<'c>(&self, ctx: &'c Context, id: &Id, access: Access) -> Option<Session<'c>> {
        let session = Session::open(ctx, self.tag, id, access, false).ok()?;
        self.owns(&session).then_some(session)
    }

    fn owns(&self, session: &Session) -> bool {
        let record = session.record();
        record
            .owner
            .is_some_and(|o| o.name == self.owner && o.namespace == self.namespace)
    }

    /// The live entries, by expiry; with `prune`, the others leave the index.
    /// `Err(TryAgain)`, before anything is pruned, when an entry that has
    /// not expired names a session missing on a node importing the slot:
    /// it may still be on its way, and is neither dead nor to be left out
    /// (docs/cluster.md#during-a-migration).
    fn live(
        &self,
        ctx: &Context,
        index: &Index,
        now: i64,
        prune: bool,
    ) -> Result<Vec<Entry>, Rejection> {
        let (mut live, mut dead) = (Vec::new(), Vec::new());
        for entry in index.entries() {
            if entry.expires_at < now {
                dead.push(entry);
                continue;
            }
            match Session::open(ctx, self.tag, &entry.id, Access::Read, true) {
                Err(Rejection::TryAgain) => return Err(Rejection::TryAgain),
                Ok(session) if self.owns(&session) => live.push(entry),
                _ => dead.push(entry),
            }
        }
        if prune {
            index.remove(&dead.iter().map(|entry| entry.id).collect::<Vec<_>>());
        }
        Ok(live)
    }
}

/// What a new owned session holds besides its owner.
pub struct Start<'a> {
    pub secret: &'a [u8],
    pub deadline: Option<i64>,
    pub label: Option<&'a [u8]>,
    /// `None` for a ttl of 0: a token, nothing stored.
    pub expires_at: Option<i64>,
    pub limit: Option<(usize, Policy)>,
    /// `max-sessions-per-owner`; 0 for none.
    pub max: usize,
    pub now: i64,
}

/// OSTART: a new session of `owned`, within its limits.
pub fn start_owned(ctx: &Context, owned: &Owned, start: &Start) -> Result<Minted, Rejection> {
    let Some(expires_at) = start.expires_at else {
        let id = free_id(ctx, owned.tag)?;
        return Ok(token::v2::mint(start.secret, owned.tag, &id));
    };
    let index = owned.index(ctx);
    index.settle()?;
    let mut live = owned.live(ctx, &index, start.now, true)?;
    if let Some((n, policy)) = start.limit {
        if live.len() >= n {
            if policy == Policy::Reject {
                return Err(Rejection::TooManySessions(n));
            }
            let evicted: Vec<Entry> = live.drain(..=live.len() - n).collect();
            for entry in evicted {
                if let Some(session) = owned.session(ctx, &entry.id, Access::Write) {
                    session.end(c"sessiongate.evict");
                    stats::SESSIONS_EVICTED.incr();
                }
            }
        }
    }
    if start.max > 0 && live.len() >= start.max {
        return Err(Rejection::TooManySessions(start.max));
    }
    // `claim_routed` finds a taken id itself: a new one is drawn only then.
    let mut rng = rand::rng();
    for _ in 0..64 {
        let id = token::random_id(&mut rng);
        stats::IDS_DRAWN.incr();
        let signature = token::v2::sign(start.secret, owned.tag, &id);
        let binding = token::first_half(&signature);
        let record = Record {
            deadline: start.deadline,
            owner: Some(Owner {
                name: owned.owner,
                namespace: &owned.namespace,
            }),
            label: start.label,
            ..Record::new(&binding, start.now)
        };
        if let Claim::Created = v2::claim_routed(ctx, owned.tag, &id, &record, Some(expires_at)) {
            index.set(&id, expires_at);
            return Ok(token::v2::format(owned.tag, &id, &signature));
        }
    }
    Err(Rejection::NoFreeId)
}

/// OLIST: the owner's live sessions, oldest first.
pub fn list(ctx: &Context, owned: &Owned, now: i64) -> Result<Vec<Listed>, Rejection> {
    let index = owned.index(ctx);
    index.settle()?;
    let mut listed: Vec<Listed> = owned
        .live(ctx, &index, now, false)?
        .iter()
        .filter_map(|entry| {
            let session = owned.session(ctx, &entry.id, Access::Read)?;
            let record = session.record();
            Some(Listed {
                id: entry.id,
                created: record.created,
                expires_at: session.expires_at().unwrap_or(entry.expires_at),
                deadline: record.deadline,
                label: record.label.map(<[u8]>::to_vec),
            })
        })
        .collect();
    listed.sort_by_key(|session| (session.created, session.id));
    Ok(listed)
}

/// Which of an owner's sessions OEND ends.
pub enum Which {
    All,
    AllBut(Id),
    These(Vec<Id>),
}

/// OEND: ends the owner's live sessions that `which` names; how many.
pub fn end_sessions(
    ctx: &Context,
    owned: &Owned,
    which: &Which,
    now: i64,
) -> Result<usize, Rejection> {
    let index = owned.index(ctx);
    index.settle()?;
    let mut ended = 0;
    for entry in owned.live(ctx, &index, now, true)? {
        let chosen = match which {
            Which::All => true,
            Which::AllBut(kept) => entry.id != *kept,
            Which::These(ids) => ids.contains(&entry.id),
        };
        if !chosen {
            continue;
        }
        if let Some(session) = owned.session(ctx, &entry.id, Access::Write) {
            session.end(c"sessiongate.end");
            ended += 1;
        }
    }
    stats::SESSIONS_ENDED_BY_OWNER.add(ended);
    Ok(ended)
}
