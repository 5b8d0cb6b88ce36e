//! Where a session lives in Redis (SPEC 1.2) and how every change to it
//! reaches replicas and the AOF (SPEC Part 3).
//!
//! Writes go through the key API, then each one propagates its effect, never
//! the command: START is random, and verbatim replication would also copy the
//! sign key into the AOF. Expiries travel as absolute times so that a replica
//! or an AOF replay ends up with the master's `PEXPIRETIME`.

use crate::cluster;
use crate::error::Rejection;
use crate::key::{api, Access, Key, Kind};
use crate::token::{self, Signature, Token, ID_RANGE, SIGNATURE_RANGE, TOKEN_LEN};
use redis_module::{Context, NotifyEvent, RedisString, RedisValue, ScanKeyCursor};

const KEY_PREFIX: &[u8] = b"sg-session:";
const SIGNATURE_SUFFIX: &[u8] = b":signature";
const PAYLOADS_SUFFIX: &[u8] = b":payloads";

/// Unix time in milliseconds, as Redis' own clock reads it.
pub fn now_ms() -> i64 {
    // SAFETY: a plain clock read with no arguments.
    unsafe { api!(RedisModule_Milliseconds)() }
}

/// The one place key names are made. Standalone keeps the C module's
/// `sg-session:<id>:…`, so its datasets keep working; a cluster names keys
/// `sg-session:{<token>}:…`, so both of a session's keys hash to the slot of
/// the token, the key that every command declares.
pub fn key_name(token: &[u8; TOKEN_LEN], suffix: &[u8]) -> Vec<u8> {
    if cluster::enabled() {
        [KEY_PREFIX, b"{", token, b"}", suffix].concat()
    } else {
        [KEY_PREFIX, &token[ID_RANGE], suffix].concat()
    }
}

struct KeyNames {
    signature: RedisString,
    payloads: RedisString,
}

impl KeyNames {
    fn of(ctx: &Context, token: &[u8; TOKEN_LEN]) -> Self {
        let name = |suffix| RedisString::create_from_slice(ctx.ctx, &key_name(token, suffix));
        KeyNames {
            signature: name(SIGNATURE_SUFFIX),
            payloads: name(PAYLOADS_SUFFIX),
        }
    }
}

/// Whether START may use a freshly minted token.
pub enum Availability {
    Free,
    Taken,
    /// In a cluster: this node does not serve the token's slot (any more).
    NotServedHere,
}

pub fn availability(ctx: &Context, token: &[u8; TOKEN_LEN]) -> Availability {
    let names = KeyNames::of(ctx, token);
    if cluster::enabled() {
        // In a cluster, RM_Call refuses a key that this node does not serve
        // (it returns NULL, which the SDK hands back as a non-integer).
        return match ctx.call("EXISTS", &[&names.signature]) {
            Ok(RedisValue::Integer(0)) => Availability::Free,
            Ok(RedisValue::Integer(_)) => Availability::Taken,
            _ => Availability::NotServedHere,
        };
    }
    if Key::open(ctx, &names.signature, Access::Read).exists() {
        Availability::Taken
    } else {
        Availability::Free
    }
}

/// Stores a new session's signature, to expire at `expires_at`.
pub fn create(ctx: &Context, token: &[u8; TOKEN_LEN], expires_at: i64) {
    let names = KeyNames::of(ctx, token);
    let signature = RedisString::create_from_slice(ctx.ctx, &token[SIGNATURE_RANGE]);
    let key = Key::open(ctx, &names.signature, Access::Write);
    key.set_string(&signature);
    key.set_expires_at(Some(expires_at));
    drop(key);
    let at = millis(ctx, expires_at);
    let pxat = RedisString::create_from_slice(ctx.ctx, b"PXAT");
    propagate(ctx, "SET", &[&names.signature, &signature, &pxat, &at]);
    signal_modified(ctx, &names.signature);
    notify(ctx, "sessiongate.start", &names.signature);
}

/// One payload, copied out of the hash.
pub type NameAndData = (Vec<u8>, Vec<u8>);

/// A session whose signature key exists, opened for a command.
pub struct Session<'c> {
    ctx: &'c Context,
    names: KeyNames,
    signature: Key,
}

impl<'c> Session<'c> {
    /// The token's session, or `None` if it does not exist (or expired).
    pub fn find(ctx: &'c Context, token: &Token, access: Access) -> Option<Self> {
        let names = KeyNames::of(ctx, token.bytes);
        let signature = Key::open(ctx, &names.signature, access);
        signature.exists().then_some(Session {
            ctx,
            names,
            signature,
        })
    }

    /// Whether the stored signature equals `given`, in constant time.
    pub fn stores_signature(&self, given: &Signature) -> bool {
        self.signature
            .string()
            .is_some_and(|stored| token::signatures_equal(stored, given))
    }

    /// Milliseconds left, or `None` for a session with no expiry (possible
    /// only in a dataset written by other means).
    pub fn remaining_ms(&self) -> Option<i64> {
        let at = self.signature.expires_at()?;
        Some(at.saturating_sub(now_ms()).max(0))
    }

    fn open_payloads(&self, access: Access) -> Result<Key, Rejection> {
        let payloads = Key::open(self.ctx, &self.names.payloads, access);
        match payloads.kind() {
            Kind::Hash | Kind::Missing => Ok(payloads),
            _ => Err(Rejection::WrongType),
        }
    }

    /// One payload per name, `None` where the session has no such payload.
    pub fn payloads<'n>(
        &self,
        names: impl Iterator<Item = &'n RedisString>,
    ) -> Result<Vec<Option<RedisString>>, Rejection> {
        let payloads = self.open_payloads(Access::Read)?;
        Ok(names.map(|name| payloads.hash_field(name)).collect())
    }

    /// Every payload, by name.
    pub fn all_payloads(&self) -> Result<Vec<NameAndData>, Rejection> {
        if self.open_payloads(Access::Read)?.kind() == Kind::Missing {
            return Ok(Vec::new());
        }
        let mut all = Vec::new();
        ScanKeyCursor::new(self.ctx.open_key(&self.names.payloads)).for_each(|_, name, data| {
            all.push((name.as_slice().to_vec(), data.as_slice().to_vec()));
        });
        Ok(all)
    }

    /// Sets payloads, all or none: none when they would take the session
    /// past `max_count` payloads (0: no limit). The payloads key takes the
    /// signature key's expiry.
    pub fn set_payloads(
        &self,
        pairs: &[(&RedisString, &RedisString)],
        max_count: usize,
    ) -> Result<(), Rejection> {
        let ctx = self.ctx;
        let payloads = self.open_payloads(Access::Write)?;
        if max_count > 0 {
            let mut added: Vec<&[u8]> = pairs
                .iter()
                .filter(|(name, _)| payloads.hash_field(name).is_none())
                .map(|(name, _)| name.as_slice())
                .collect();
            added.sort_unstable();
            added.dedup();
            if payloads.len() + added.len() > max_count {
                return Err(Rejection::TooManyPayloads);
            }
        }
        let expires_at = self.signature.expires_at();
        for (name, data) in pairs {
            payloads.set_hash_field(name, data);
        }
        payloads.set_expires_at(expires_at);
        drop(payloads);
        let mut hset: Vec<&RedisString> = vec![&self.names.payloads];
        hset.extend(pairs.iter().flat_map(|(name, data)| [*name, *data]));
        propagate(ctx, "HSET", &hset);
        match expires_at {
            Some(at) => propagate(ctx, "PEXPIREAT", &[&self.names.payloads, &millis(ctx, at)]),
            None => propagate(ctx, "PERSIST", &[&self.names.payloads]),
        }
        signal_modified(ctx, &self.names.payloads);
        self.notify("sessiongate.pset");
        Ok(())
    }

    /// Deletes one payload; true if it was there. `Err(NoPayload)` when the
    /// session has no payloads at all (SPEC 1.3).
    pub fn delete_payload(&self, name: &RedisString) -> Result<bool, Rejection> {
        let payloads = self.open_payloads(Access::Write)?;
        if payloads.kind() == Kind::Missing {
            return Err(Rejection::NoPayload);
        }
        let deleted = payloads.delete_hash_field(name);
        if deleted {
            drop(payloads);
            propagate(self.ctx, "HDEL", &[&self.names.payloads, name]);
            signal_modified(self.ctx, &self.names.payloads);
            self.notify("sessiongate.pdel");
        }
        Ok(deleted)
    }

    /// Moves both keys' expiry to `expires_at`. Needs `Access::Write`.
    pub fn expire_at(&self, expires_at: i64) {
        let ctx = self.ctx;
        let at = millis(ctx, expires_at);
        self.signature.set_expires_at(Some(expires_at));
        propagate(ctx, "PEXPIREAT", &[&self.names.signature, &at]);
        signal_modified(ctx, &self.names.signature);
        let payloads = Key::open(ctx, &self.names.payloads, Access::Write);
        if payloads.exists() {
            payloads.set_expires_at(Some(expires_at));
            drop(payloads);
            propagate(ctx, "PEXPIREAT", &[&self.names.payloads, &at]);
            signal_modified(ctx, &self.names.payloads);
        }
        self.notify("sessiongate.expire");
    }

    /// Deletes both keys. Needs `Access::Write`.
    pub fn end(self) {
        let ctx = self.ctx;
        self.signature.unlink();
        let payloads = Key::open(ctx, &self.names.payloads, Access::Write);
        let had_payloads = payloads.exists();
        payloads.unlink();
        drop(payloads);
        if had_payloads {
            propagate(
                ctx,
                "UNLINK",
                &[&self.names.signature, &self.names.payloads],
            );
            signal_modified(ctx, &self.names.payloads);
        } else {
            propagate(ctx, "UNLINK", &[&self.names.signature]);
        }
        signal_modified(ctx, &self.names.signature);
        self.notify("sessiongate.end");
    }

    fn notify(&self, event: &str) {
        notify(self.ctx, event, &self.names.signature);
    }
}

/// A lifecycle event, as a keyspace notification of the module class on the
/// session's signature key (`notify-keyspace-events` with `d` and `K`/`E`).
fn notify(ctx: &Context, event: &str, signature_key: &RedisString) {
    ctx.notify_keyspace_event(NotifyEvent::MODULE, event, signature_key);
}

fn millis(ctx: &Context, at: i64) -> RedisString {
    // SAFETY: ctx is live; the string is freed when the RedisString drops.
    let inner = unsafe { api!(RedisModule_CreateStringFromLongLong)(ctx.ctx, at) };
    RedisString::from_redis_module_string(ctx.ctx, inner)
}

fn propagate(ctx: &Context, command: &str, args: &[&RedisString]) {
    ctx.replicate(command, args);
}

/// The module turns off Redis' implicit signal on every key opened for
/// writing, so a failed check leaves WATCH alone; real writes signal here.
fn signal_modified(ctx: &Context, name: &RedisString) {
    // SAFETY: ctx and name are live.
    unsafe { api!(RedisModule_SignalModifiedKey)(ctx.ctx, name.inner) };
}
