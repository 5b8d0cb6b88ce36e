//! A v1 session: the C module's two keys, `…:signature` and `…:payloads`
//! (docs/keys.md#v1-keys).

use super::effects::{notify, replicate, signal_modified};
use super::Claim;
use crate::arg::{Arg, ModuleString};
use crate::cluster;
use crate::error::Rejection;
use crate::key::{Access, Key, Kind};
use crate::reply::NameAndData;
use crate::token::{self, Signature, Token, ID_RANGE, SIGNATURE_RANGE, TOKEN_LEN};
use redis_module::{raw, Context, RedisString, RedisValue, ScanKeyCursor};
use std::ffi::CStr;
use std::os::raw::c_longlong;

const KEY_PREFIX: &[u8] = b"sg-session:";
const SIGNATURE_SUFFIX: &[u8] = b":signature";
const PAYLOADS_SUFFIX: &[u8] = b":payloads";
/// The longest name: a cluster's, with the whole token and `:signature`.
const MAX_KEY_NAME: usize = KEY_PREFIX.len() + 1 + TOKEN_LEN + 1 + SIGNATURE_SUFFIX.len();

/// The one place key names are made. Standalone keeps the C module's
/// `sg-session:<id>:…`, so its datasets keep working; a cluster names keys
/// `sg-session:{<token>}:…`, so both of a session's keys hash to the slot of
/// the token, the key that every command declares.
fn key_name(ctx: &Context, token: &[u8; TOKEN_LEN], suffix: &[u8]) -> RedisString {
    let parts: [&[u8]; 5] = if cluster::enabled() {
        [KEY_PREFIX, b"{", token, b"}", suffix]
    } else {
        [KEY_PREFIX, &token[ID_RANGE], b"", b"", suffix]
    };
    let mut name = [0; MAX_KEY_NAME];
    let mut len = 0;
    for part in parts {
        name[len..len + part.len()].copy_from_slice(part);
        len += part.len();
    }
    RedisString::create_from_slice(ctx.ctx, &name[..len])
}

struct KeyNames {
    signature: RedisString,
    payloads: RedisString,
}

impl KeyNames {
    fn of(ctx: &Context, token: &[u8; TOKEN_LEN]) -> Self {
        KeyNames {
            signature: key_name(ctx, token, SIGNATURE_SUFFIX),
            payloads: key_name(ctx, token, PAYLOADS_SUFFIX),
        }
    }

    /// Called when a command finds one of the session's keys missing, before
    /// it acts on that: `Err(TryAgain)` if this node is importing the
    /// session's slot (`cluster::importing`), where the key may still be on
    /// its way from the source. Nothing is written before this is asked.
    ///
    /// Which key each command needs here while the slot is being imported,
    /// and so when it replies TRYAGAIN (in place of step 8 of docs/errors.md#check-order for
    /// the signature key; after the payload argument checks, steps 10 and
    /// 11, for the payloads key):
    ///
    /// | command | needs | why the payloads key |
    /// |---|---|---|
    /// | TTL | signature | - |
    /// | PGET, PMGET, PGETALL, PDEL | signature, payloads | a missing payloads key cannot be told from a session without payloads |
    /// | PSET, PMSET | signature, payloads | a payloads key created here would make the MIGRATE of the source's fail with BUSYKEY, stopping the reshard |
    /// | EXPIRE | signature, payloads | the source's payloads key would arrive later with the old expiry (with EXPIRE 0, as an orphan) |
    /// | END | signature, payloads | the source's payloads key would arrive later, an orphan |
    /// | START | none (keyless) | it creates keys only in slots this node serves, and an importing slot is not one (see `claim`) |
    ///
    /// So a session without payloads gets TRYAGAIN from every command but TTL
    /// until its slot's import ends, which is the moment this node can tell.
    fn settle(&self, ctx: &Context) -> Result<(), Rejection> {
        if cluster::importing(ctx, &[&self.signature, &self.payloads]) {
            return Err(Rejection::TryAgain);
        }
        Ok(())
    }
}

/// Creates the session of a new token if its id is free, to expire at
/// `expires_at`; `None` (a ttl of 0) only checks that the id is free.
pub fn claim(ctx: &Context, token: &[u8; TOKEN_LEN], expires_at: Option<i64>) -> Claim {
    let name = key_name(ctx, token, SIGNATURE_SUFFIX);
    // In a cluster, RM_Call refuses keys that this node does not serve (it
    // returns NULL, which the SDK hands back as a non-integer). Both keys are
    // named, so that a slot this node is importing is refused even when the
    // client sent ASKING before START (see cluster::importing).
    if cluster::enabled() {
        let payloads = key_name(ctx, token, PAYLOADS_SUFFIX);
        if !matches!(
            ctx.call("EXISTS", &[&name, &payloads]),
            Ok(RedisValue::Integer(_))
        ) {
            return Claim::NotServedHere;
        }
    }
    let key = Key::open(ctx, &name, Access::Write);
    if key.exists() {
        return Claim::Taken;
    }
    let Some(expires_at) = expires_at else {
        return Claim::Created;
    };
    let signature = RedisString::create_from_slice(ctx.ctx, &token[SIGNATURE_RANGE]);
    key.set_string(&signature);
    key.set_expires_at(Some(expires_at));
    drop(key);
    replicate!(
        ctx,
        "SET",
        "sscl",
        name.inner,
        signature.inner,
        c"PXAT".as_ptr(),
        expires_at as c_longlong
    );
    signal_modified(ctx, &name);
    notify(ctx, c"sessiongate.start", &name);
    Claim::Created
}

/// A v1 session whose signature key exists, opened for a command.
pub struct Session<'c> {
    ctx: &'c Context,
    names: KeyNames,
    signature: Key,
}

impl<'c> Session<'c> {
    /// The token's session; `Err(NoSession)` if it does not exist (or
    /// expired), `Err(TryAgain)` if it may still be on its way here.
    pub fn find(ctx: &'c Context, token: &Token, access: Access) -> Result<Self, Rejection> {
        let names = KeyNames::of(ctx, token.bytes);
        let signature = Key::open(ctx, &names.signature, access);
        if !signature.exists() {
            names.settle(ctx)?;
            return Err(Rejection::NoSession);
        }
        Ok(Session {
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

    pub fn expires_at(&self) -> Option<i64> {
        self.signature.expires_at()
    }

    fn open_payloads(&self, access: Access) -> Result<Key, Rejection> {
        let payloads = Key::open(self.ctx, &self.names.payloads, access);
        match payloads.kind() {
            Kind::Hash => Ok(payloads),
            Kind::Missing => self.names.settle(self.ctx).map(|()| payloads),
            _ => Err(Rejection::WrongType),
        }
    }

    /// One payload, `None` where the session has no such payload.
    pub fn payload(&self, name: &Arg) -> Result<Option<RedisString>, Rejection> {
        Ok(self.open_payloads(Access::Read)?.hash_field(name))
    }

    /// One payload per name, `None` where the session has no such payload.
    pub fn payloads<'n>(
        &self,
        names: impl Iterator<Item = &'n Arg>,
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
    pub fn set_payloads(&self, pairs: &[(&Arg, &Arg)], max_count: usize) -> Result<(), Rejection> {
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
            if !added.is_empty() && payloads.len() + added.len() > max_count {
                return Err(Rejection::TooManyPayloads(max_count));
            }
        }
        let expires_at = self.signature.expires_at();
        // Usually the payloads key already expires with the session: then
        // only the fields change, and only they are propagated.
        let expiry_set = payloads.exists() && payloads.expires_at() == expires_at;
        for (name, data) in pairs {
            payloads.set_hash_field(name, data);
        }
        if !expiry_set {
            payloads.set_expires_at(expires_at);
        }
        drop(payloads);
        let payloads_key = self.names.payloads.inner;
        if let [(name, data)] = pairs {
            replicate!(ctx, "HSET", "sss", payloads_key, name.ptr(), data.ptr());
        } else {
            let mut fields: Vec<*mut raw::RedisModuleString> = pairs
                .iter()
                .flat_map(|(name, data)| [name.ptr(), data.ptr()])
                .collect();
            replicate!(
                ctx,
                "HSET",
                "sv",
                payloads_key,
                fields.as_mut_ptr(),
                fields.len()
            );
        }
        match expires_at {
            _ if expiry_set => {}
            Some(at) => replicate!(ctx, "PEXPIREAT", "sl", payloads_key, at as c_longlong),
            None => replicate!(ctx, "PERSIST", "s", payloads_key),
        }
        signal_modified(ctx, &self.names.payloads);
        self.notify(c"sessiongate.pset");
        Ok(())
    }

    /// Deletes one payload; true if it was there. `Err(NoPayload)` when the
    /// session has no payloads at all (docs/commands.md#pdel).
    pub fn delete_payload(&self, name: &Arg) -> Result<bool, Rejection> {
        let payloads = self.open_payloads(Access::Write)?;
        if payloads.kind() == Kind::Missing {
            return Err(Rejection::NoPayload);
        }
        let deleted = payloads.delete_hash_field(name);
        if deleted {
            drop(payloads);
            replicate!(
                self.ctx,
                "HDEL",
                "ss",
                self.names.payloads.inner,
                name.ptr()
            );
            signal_modified(self.ctx, &self.names.payloads);
            self.notify(c"sessiongate.pdel");
        }
        Ok(deleted)
    }

    /// Moves both keys' expiry to `expires_at`. Needs `Access::Write`.
    pub fn expire_at(&self, expires_at: i64) -> Result<(), Rejection> {
        let ctx = self.ctx;
        let payloads = Key::open(ctx, &self.names.payloads, Access::Write);
        if !payloads.exists() {
            self.names.settle(ctx)?;
        }
        let at = expires_at as c_longlong;
        self.signature.set_expires_at(Some(expires_at));
        replicate!(ctx, "PEXPIREAT", "sl", self.names.signature.inner, at);
        signal_modified(ctx, &self.names.signature);
        if payloads.exists() {
            payloads.set_expires_at(Some(expires_at));
            drop(payloads);
            replicate!(ctx, "PEXPIREAT", "sl", self.names.payloads.inner, at);
            signal_modified(ctx, &self.names.payloads);
        }
        self.notify(c"sessiongate.expire");
        Ok(())
    }

    /// How many payloads the session has.
    pub fn payload_count(&self) -> Result<usize, Rejection> {
        Ok(self.open_payloads(Access::Read)?.len())
    }

    /// What ROTATE carries over, with the keys closed: the signature key's
    /// name, the payloads key's if it exists, and the expiry.
    pub fn into_parts(self) -> Result<(RedisString, Option<RedisString>, Option<i64>), Rejection> {
        let has_payloads = self.open_payloads(Access::Read)?.kind() != Kind::Missing;
        let expires_at = self.signature.expires_at();
        let Session {
            names, signature, ..
        } = self;
        drop(signature);
        let payloads = has_payloads.then_some(names.payloads);
        Ok((names.signature, payloads, expires_at))
    }

    /// Deletes both keys. Needs `Access::Write`.
    pub fn end(self) -> Result<(), Rejection> {
        let ctx = self.ctx;
        let payloads = Key::open(ctx, &self.names.payloads, Access::Write);
        let had_payloads = payloads.exists();
        if !had_payloads {
            self.names.settle(ctx)?;
        }
        self.signature.unlink();
        payloads.unlink();
        drop(payloads);
        let (signature_key, payloads_key) = (self.names.signature.inner, self.names.payloads.inner);
        if had_payloads {
            replicate!(ctx, "UNLINK", "ss", signature_key, payloads_key);
            signal_modified(ctx, &self.names.payloads);
        } else {
            replicate!(ctx, "UNLINK", "s", signature_key);
        }
        signal_modified(ctx, &self.names.signature);
        self.notify(c"sessiongate.end");
        Ok(())
    }

    fn notify(&self, event: &CStr) {
        notify(self.ctx, event, &self.names.signature);
    }
}
