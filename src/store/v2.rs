//! A v2 session: one hash, `sg-session:{<tag>}.<id>`, whose field `""`
//! holds the session's record and every other field a payload
//! (docs/keys.md#v2-keys). One key: one lookup, one expiry, one write.

use super::effects::{notify, replicate, signal_modified};
use super::index::Index;
use super::record::{Record, BINDING_LEN};
use super::Claim;
use crate::arg::{Arg, ModuleString};
use crate::cluster;
use crate::error::Rejection;
use crate::key::{Access, Key, Kind};
use crate::reply::NameAndData;
use crate::token::{self, v2, Id, Tag};
use redis_module::{raw, Context, RedisString, RedisValue, ScanKeyCursor};
use std::ffi::CStr;
use std::os::raw::c_longlong;

/// The record's field: the empty name, which no payload can have (step 10
/// of docs/errors.md#check-order).
pub const RECORD: &CStr = c"";

pub fn key_name(ctx: &Context, tag: Tag, id: &Id) -> RedisString {
    RedisString::create_from_slice(ctx.ctx, &v2::key_name(tag, id))
}

/// `sg-session:{<tag>}`: a name in the session's slot that is never a key.
/// Named beside the session's key, it makes `EXISTS` a two-key command of
/// that slot, which is how `cluster::importing` asks Redis whether this
/// node is importing the slot.
fn slot_sibling(ctx: &Context, tag: Tag) -> RedisString {
    let name = [b"sg-session:{", tag.as_bytes(), b"}"].concat();
    RedisString::create_from_slice(ctx.ctx, &name)
}

/// Creates the session `tag`/`id` with `record` if the id is free, to
/// expire at `expires_at`; `None` (a ttl of 0) only checks that it is free.
pub fn claim(ctx: &Context, tag: Tag, id: &Id, record: &Record, expires_at: Option<i64>) -> Claim {
    let name = key_name(ctx, tag, id);
    // As for v1 (v1::claim): RM_Call refuses a slot this node does not
    // serve, or is migrating or importing, when two of its keys are named.
    if cluster::enabled()
        && !matches!(
            ctx.call("EXISTS", &[&name, &slot_sibling(ctx, tag)]),
            Ok(RedisValue::Integer(_))
        )
    {
        return Claim::NotServedHere;
    }
    claim_routed(ctx, tag, id, record, expires_at)
}

/// `claim` for a command whose declared key is in `tag`'s slot (OSTART's
/// owner), which Redis ran here only if this node serves the slot or, under
/// ASKING, imports it: no check of the slot, which on an importing node
/// would refuse a key it may create.
pub fn claim_routed(
    ctx: &Context,
    tag: Tag,
    id: &Id,
    record: &Record,
    expires_at: Option<i64>,
) -> Claim {
    let name = key_name(ctx, tag, id);
    let key = Key::open(ctx, &name, Access::Write);
    if key.exists() {
        return Claim::Taken;
    }
    let Some(expires_at) = expires_at else {
        return Claim::Created;
    };
    let record = RedisString::create_from_slice(ctx.ctx, &record.encode());
    key.set_hash_cfield(RECORD, &record);
    key.set_expires_at(Some(expires_at));
    drop(key);
    let at = expires_at as c_longlong;
    replicate!(
        ctx,
        "HSET",
        "scs",
        name.inner,
        RECORD.as_ptr(),
        record.inner
    );
    replicate!(ctx, "PEXPIREAT", "sl", name.inner, at);
    signal_modified(ctx, &name);
    notify(ctx, c"sessiongate.start", &name);
    Claim::Created
}

/// A v2 session whose key exists and whose record reads, opened for a
/// command.
pub struct Session<'c> {
    ctx: &'c Context,
    name: RedisString,
    key: Key,
    tag: Tag,
    id: Id,
    record: RedisString,
}

impl<'c> Session<'c> {
    /// The token's session: `Err(NoSession)` if its key does not exist,
    /// `Err(TryAgain)` if it may still be on its way here, and
    /// `Err(UnreadableRecord)` if it is not a hash with a record the module
    /// can read.
    pub fn find(ctx: &'c Context, token: &v2::Token, access: Access) -> Result<Self, Rejection> {
        Self::open(ctx, token.tag(), token.id(), access, true)
    }

    /// The session `tag`/`id`, as `find`; `settle` says whether a missing
    /// key on a node importing the slot is TRYAGAIN.
    pub fn open(
        ctx: &'c Context,
        tag: Tag,
        id: &Id,
        access: Access,
        settle: bool,
    ) -> Result<Self, Rejection> {
        let name = key_name(ctx, tag, id);
        let key = Key::open(ctx, &name, access);
        match key.kind() {
            Kind::Hash => {}
            Kind::Missing => {
                if settle && cluster::importing(ctx, &[&name, &slot_sibling(ctx, tag)]) {
                    return Err(Rejection::TryAgain);
                }
                return Err(Rejection::NoSession);
            }
            Kind::String | Kind::Other => return Err(Rejection::UnreadableRecord),
        }
        let record = key.hash_cfield(RECORD).ok_or(Rejection::UnreadableRecord)?;
        Record::decode(record.as_slice()).ok_or(Rejection::UnreadableRecord)?;
        Ok(Session {
            ctx,
            name,
            key,
            tag,
            id: *id,
            record,
        })
    }

    /// The record, read when the session was opened.
    pub fn record(&self) -> Record<'_> {
        // `open` decoded these very bytes.
        Record::decode(self.record.as_slice()).unwrap_or(Record::new(&[0; BINDING_LEN], 0))
    }

    pub fn id(&self) -> &Id {
        &self.id
    }

    /// Whether the record's binding is `token`'s, in constant time.
    pub fn is_bound_to(&self, token: &v2::Token) -> bool {
        token::signatures_equal(self.record().binding, token.binding())
    }

    pub fn expires_at(&self) -> Option<i64> {
        self.key.expires_at()
    }

    /// The index that lists the session, if it has an owner.
    pub fn index(&self) -> Option<Index<'c>> {
        let owner = self.record().owner?;
        Some(Index::of(self.ctx, self.tag, owner.namespace, owner.name))
    }

    /// `Err(TryAgain)` when the session's owner index is missing on a node
    /// importing the slot: it may still be on its way, and writing it here
    /// would make a second index that the MIGRATE of the first then finds
    /// in its way (docs/cluster.md#during-a-migration).
    pub fn settle_index(&self) -> Result<(), Rejection> {
        self.index().map_or(Ok(()), |index| index.settle())
    }

    /// How many payloads: every field but the record.
    pub fn payload_count(&self) -> usize {
        self.key.len().saturating_sub(1)
    }
    pub fn payload(&self, name: &Arg) -> Option<RedisString> {
        self.key.hash_field(name)
    }

    pub fn payloads<'n>(&self, names: impl Iterator<Item = &'n Arg>) -> Vec<Option<RedisString>> {
        names.map(|name| self.key.hash_field(name)).collect()
    }

    pub fn all_payloads(&self) -> Vec<NameAndData> {
        let mut all = Vec::with_capacity(self.payload_count());
        ScanKeyCursor::new(self.ctx.open_key(&self.name)).for_each(|_, name, data| {
            if !name.as_slice().is_empty() {
                all.push((name.as_slice().to_vec(), data.as_slice().to_vec()));
            }
        });
        all
    }

    /// As v1's: all or none, none past `max_count` payloads (0: no limit).
    /// The key keeps its expiry, so only the fields are propagated.
    pub fn set_payloads(&self, pairs: &[(&Arg, &Arg)], max_count: usize) -> Result<(), Rejection> {
        if max_count > 0 {
            let mut added: Vec<&[u8]> = pairs
                .iter()
                .filter(|(name, _)| self.key.hash_field(name).is_none())
                .map(|(name, _)| name.as_slice())
                .collect();
            added.sort_unstable();
            added.dedup();
            if !added.is_empty() && self.payload_count() + added.len() > max_count {
                return Err(Rejection::TooManyPayloads(max_count));
            }
        }
        for (name, data) in pairs {
            self.key.set_hash_field(name, data);
        }
        let ctx = self.ctx;
        if let [(name, data)] = pairs {
            replicate!(ctx, "HSET", "sss", self.name.inner, name.ptr(), data.ptr());
        } else {
            let mut fields: Vec<*mut raw::RedisModuleString> = pairs
                .iter()
                .flat_map(|(name, data)| [name.ptr(), data.ptr()])
                .collect();
            replicate!(
                ctx,
                "HSET",
                "sv",
                self.name.inner,
                fields.as_mut_ptr(),
                fields.len()
            );
        }
        signal_modified(ctx, &self.name);
        notify(ctx, c"sessiongate.pset", &self.name);
        Ok(())
    }

    /// As v1's: `Err(NoPayload)` when the session has no payload at all.
    pub fn delete_payload(&self, name: &Arg) -> Result<bool, Rejection> {
        if self.payload_count() == 0 {
            return Err(Rejection::NoPayload);
        }
        let deleted = self.key.delete_hash_field(name);
        if deleted {
            replicate!(self.ctx, "HDEL", "ss", self.name.inner, name.ptr());
            signal_modified(self.ctx, &self.name);
            notify(self.ctx, c"sessiongate.pdel", &self.name);
        }
        Ok(deleted)
    }

    /// Moves the expiry to `expires_at`, or to the deadline if that comes
    /// first (docs/commands.md#maxlife); the owner's index follows.
    pub fn expire_at(&self, expires_at: i64) -> Result<(), Rejection> {
        let index = self.index();
        if let Some(index) = &index {
            index.settle()?;
        }
        let expires_at = self
            .record()
            .deadline
            .map_or(expires_at, |deadline| expires_at.min(deadline));
        self.key.set_expires_at(Some(expires_at));
        let at = expires_at as c_longlong;
        replicate!(self.ctx, "PEXPIREAT", "sl", self.name.inner, at);
        signal_modified(self.ctx, &self.name);
        if let Some(index) = index {
            index.set(&self.id, expires_at);
        }
        notify(self.ctx, c"sessiongate.expire", &self.name);
        Ok(())
    }

    /// Deletes the session, and its entry in its owner's index; `event`
    /// says why (`sessiongate.end` or `sessiongate.evict`).
    pub fn end(self, event: &CStr) {
        let index = self.index();
        self.key.unlink();
        let Session {
            ctx, name, key, id, ..
        } = self;
        drop(key);
        replicate!(ctx, "UNLINK", "s", name.inner);
        signal_modified(ctx, &name);
        if let Some(index) = index {
            index.remove(&[id]);
        }
        notify(ctx, event, &name);
    }

    /// What ROTATE carries over, with the key closed: the name of the hash
    /// that holds the payloads, and the record.
    pub fn into_parts(self) -> (RedisString, Option<i64>, RedisString) {
        let expires_at = self.key.expires_at();
        (self.name, expires_at, self.record)
    }
}
