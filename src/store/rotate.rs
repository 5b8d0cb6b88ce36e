//! ROTATE (docs/commands.md#rotate): a session gets a new v2 token in the
//! slot it is in, and the old token dies in the same call. The payloads
//! move with one `RENAME` of their hash, whatever they weigh; the record
//! is written anew with the new binding and what the old one carried.

use super::effects::{notify, replicate, signal_modified};
use super::index::Index;
use super::record::{Owner, Record};
use super::v2::{self, RECORD};
use super::Session;
use crate::cluster;
use crate::error::Rejection;
use crate::key::{Access, Key, Kind};
use crate::token::{self, Id, Minted, Tag};
use redis_module::{CallOptionsBuilder, CallResult, Context, RedisString};
use std::os::raw::c_longlong;

/// How to rotate: the new token's signing secret and namespace, its slot's
/// tag (the old token's slot), and its expiry.
pub struct Rotation<'a> {
    pub ctx: &'a Context,
    pub secret: &'a [u8],
    pub namespace: Vec<u8>,
    pub tag: Tag,
    /// `None` keeps the expiry; `Some(None)` is a TTL of 0, which ends the
    /// session; `Some(Some(at))` moves it to `at`.
    pub ttl: Option<Option<i64>>,
    /// The deadline a v1 session gets as it becomes v2.
    pub default_deadline: Option<i64>,
    pub now: i64,
}

/// What the old session carries into the new one.
struct Carried {
    /// The hash that holds the payloads (v2: the session itself), if any.
    payloads: Option<RedisString>,
    /// v1's signature key, deleted.
    signature: Option<RedisString>,
    expires_at: Option<i64>,
    created: i64,
    deadline: Option<i64>,
    owner: Option<(Vec<u8>, Vec<u8>)>,
    label: Option<Vec<u8>>,
    old_id: Option<Id>,
}

pub fn rotate(old: Session, rotation: &Rotation) -> Result<Minted, Rejection> {
    let ctx = rotation.ctx;
    let carried = match old {
        Session::V1(session) => {
            let (signature, payloads, expires_at) = session.into_parts()?;
            Carried {
                payloads,
                signature: Some(signature),
                expires_at,
                created: rotation.now,
                deadline: rotation.default_deadline,
                owner: None,
                label: None,
                old_id: None,
            }
        }
        Session::V2(session) => {
            let record = session.record();
            let (created, deadline) = (record.created, record.deadline);
            let owner = record
                .owner
                .map(|owner| (owner.name.to_vec(), owner.namespace.to_vec()));
            let label = record.label.map(<[u8]>::to_vec);
            let old_id = Some(*session.id());
            let (name, expires_at, _) = session.into_parts();
            Carried {
                payloads: Some(name),
                signature: None,
                expires_at,
                created,
                deadline,
                owner,
                label,
                old_id,
            }
        }
    };
    let requested = match rotation.ttl {
        None => carried.expires_at,
        Some(at) => at,
    };
    // The deadline bounds the expiry, and gives one to a session that had
    // none (written by other means).
    let expires_at = match (requested, carried.deadline) {
        (Some(at), Some(deadline)) => Some(at.min(deadline)),
        (None, deadline) => deadline,
        (at, None) => at,
    };

    // Neither index may be made anew on a node importing the slot.
    if let Some((owner, namespace)) = &carried.owner {
        Index::of(ctx, rotation.tag, namespace, owner).settle()?;
        Index::of(ctx, rotation.tag, &rotation.namespace, owner).settle()?;
    }
    let id = free_id(ctx, rotation.tag)?;
    let name = v2::key_name(ctx, rotation.tag, &id);
    // The RENAME below names two keys of the slot, the new one missing, and
    // Redis refuses such a command on a node importing the slot (its
    // TRYAGAIN for multi-key commands there): so does ROTATE, before it
    // writes anything, until the slot is this node's
    // (docs/cluster.md#during-a-migration).
    let old_key = carried.payloads.as_ref().or(carried.signature.as_ref());
    if old_key.is_some_and(|old_key| cluster::importing(ctx, &[old_key, &name])) {
        return Err(Rejection::TryAgain);
    }
    let signature = token::v2::sign(rotation.secret, rotation.tag, &id);
    let minted = token::v2::format(rotation.tag, &id, &signature);
    let old_index = carried
        .owner
        .as_ref()
        .map(|(name, namespace)| Index::of(ctx, rotation.tag, namespace, name));
    if rotation.ttl == Some(None) {
        // A TTL of 0: the session ends, and the new token's never starts.
        for name in [&carried.payloads, &carried.signature]
            .into_iter()
            .flatten()
        {
            unlink(ctx, name);
        }
        if let (Some(index), Some(old_id)) = (old_index, carried.old_id) {
            index.remove(&[old_id]);
        }
        if let Some(name) = carried.signature.as_ref().or(carried.payloads.as_ref()) {
            notify(ctx, c"sessiongate.end", name);
        }
        return Ok(minted);
    }

    if let Some(payloads) = &carried.payloads {
        let options = CallOptionsBuilder::new()
            .replicate()
            .errors_as_replies()
            .build();
        let _: CallResult = ctx.call_ext("RENAME", &options, &[payloads, &name][..]);
        signal_modified(ctx, payloads);
    }
    let binding: [u8; 32] = token::first_half(&signature);
    let record = Record {
        deadline: carried.deadline,
        owner: carried.owner.as_ref().map(|(owner, _)| Owner {
            name: owner,
            namespace: &rotation.namespace,
        }),
        label: carried.label.as_deref(),
        ..Record::new(&binding, carried.created)
    };
    let record = RedisString::create_from_slice(ctx.ctx, &record.encode());
    let key = Key::open(ctx, &name, Access::Write);
    key.set_hash_cfield(RECORD, &record);
    if let Some(at) = expires_at {
        key.set_expires_at(Some(at));
    }
    drop(key);
    replicate!(
        ctx,
        "HSET",
        "scs",
        name.inner,
        RECORD.as_ptr(),
        record.inner
    );
    if let Some(at) = expires_at {
        replicate!(ctx, "PEXPIREAT", "sl", name.inner, at as c_longlong);
    }
    if let Some(signature) = &carried.signature {
        unlink(ctx, signature);
    }
    if let Some((owner, _)) = &carried.owner {
        if let (Some(index), Some(old_id)) = (old_index, carried.old_id) {
            index.remove(&[old_id]);
        }
        if let Some(at) = expires_at {
            Index::of(ctx, rotation.tag, &rotation.namespace, owner).set(&id, at);
        }
    }
    signal_modified(ctx, &name);
    notify(ctx, c"sessiongate.rotate", &name);
    Ok(minted)
}

/// A new id whose key does not exist in `tag`'s slot; another is drawn
/// only on the rare collision.
pub fn free_id(ctx: &Context, tag: Tag) -> Result<Id, Rejection> {
    let mut rng = rand::rng();
    for _ in 0..64 {
        let id = token::random_id(&mut rng);
        crate::stats::IDS_DRAWN.incr();
        if Key::open(ctx, &v2::key_name(ctx, tag, &id), Access::Read).kind() == Kind::Missing {
            return Ok(id);
        }
    }
    Err(Rejection::NoFreeId)
}

fn unlink(ctx: &Context, name: &RedisString) {
    let key = Key::open(ctx, name, Access::Write);
    if key.kind() == Kind::Missing {
        return;
    }
    key.unlink();
    drop(key);
    replicate!(ctx, "UNLINK", "s", name.inner);
    signal_modified(ctx, name);
}
