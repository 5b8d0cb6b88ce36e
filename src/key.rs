//! A safe handle on one key through Redis' low-level key API: the fastest
//! way in, binary-safe, and silent (it neither propagates nor signals; the
//! store does both for the writes it makes).

use crate::api::api;
use crate::arg::ModuleString;
use redis_module::{raw, Context, RedisString};
use std::ffi::CStr;
use std::os::raw::c_int;
use std::ptr;

/// What `RedisModule_GetAbsExpire` answers for a key with no expire.
const NO_EXPIRE: i64 = -1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Missing,
    String,
    Hash,
    Other,
}

/// An open key. Opened for reading, a key that does not exist is a null
/// handle, which Redis' functions do not all accept: every read below checks.
pub struct Key {
    inner: *mut raw::RedisModuleKey,
}

impl Key {
    pub fn open(ctx: &Context, name: &RedisString, access: Access) -> Self {
        let mode = match access {
            Access::Read => raw::REDISMODULE_READ,
            Access::Write => raw::REDISMODULE_READ | raw::REDISMODULE_WRITE,
        };
        // SAFETY: ctx and name are live for this call; the key is closed on drop.
        let inner = unsafe { api!(RedisModule_OpenKey)(ctx.ctx, name.inner, mode as c_int) };
        Key {
            inner: inner.cast(),
        }
    }

    pub fn kind(&self) -> Kind {
        if self.is_missing() {
            return Kind::Missing;
        }
        // SAFETY: self.inner is an open key.
        let kind = unsafe { api!(RedisModule_KeyType)(self.inner) } as isize;
        match kind {
            raw::REDISMODULE_KEYTYPE_EMPTY => Kind::Missing,
            raw::REDISMODULE_KEYTYPE_STRING => Kind::String,
            raw::REDISMODULE_KEYTYPE_HASH => Kind::Hash,
            _ => Kind::Other,
        }
    }

    pub fn exists(&self) -> bool {
        self.kind() != Kind::Missing
    }

    /// Whether the key is a sorted set (an owner's index).
    pub fn is_sorted_set(&self) -> bool {
        // SAFETY: self.inner is an open key, checked not null first.
        !self.is_missing()
            && unsafe { api!(RedisModule_KeyType)(self.inner) } as isize
                == raw::REDISMODULE_KEYTYPE_ZSET
    }

    fn is_missing(&self) -> bool {
        self.inner.is_null()
    }

    /// The value of a string key; `None` for any other kind.
    pub fn string(&self) -> Option<&[u8]> {
        if self.is_missing() || self.kind() != Kind::String {
            return None;
        }
        let mut len = 0;
        // SAFETY: a string key; the slice lives no longer than &self, and
        // nothing writes to the key while it is borrowed.
        unsafe {
            let data =
                api!(RedisModule_StringDMA)(self.inner, &mut len, raw::REDISMODULE_READ as c_int);
            (!data.is_null()).then(|| std::slice::from_raw_parts(data.cast::<u8>(), len))
        }
    }

    pub fn set_string(&self, value: &RedisString) {
        // SAFETY: open for writing (callers open with Access::Write).
        unsafe { api!(RedisModule_StringSet)(self.inner, value.inner) };
    }

    /// The absolute expire time in Unix milliseconds, if the key has one.
    pub fn expires_at(&self) -> Option<i64> {
        if self.is_missing() {
            return None;
        }
        // SAFETY: self.inner is an open key.
        let at = unsafe { api!(RedisModule_GetAbsExpire)(self.inner) };
        (at != NO_EXPIRE).then_some(at)
    }

    pub fn set_expires_at(&self, at: Option<i64>) {
        // SAFETY: open for writing, and the key exists.
        unsafe { api!(RedisModule_SetAbsExpire)(self.inner, at.unwrap_or(NO_EXPIRE)) };
    }

    pub fn unlink(&self) {
        // SAFETY: open for writing.
        unsafe { api!(RedisModule_UnlinkKey)(self.inner) };
    }

    /// How many fields a hash has (elements of other kinds, 0 if missing).
    pub fn len(&self) -> usize {
        if self.is_missing() {
            return 0;
        }
        // SAFETY: self.inner is an open key.
        unsafe { api!(RedisModule_ValueLength)(self.inner) }
    }

    pub fn hash_field(&self, field: &impl ModuleString) -> Option<RedisString> {
        self.hash_get(raw::REDISMODULE_HASH_NONE, field.ptr().cast_const().cast())
    }

    /// One field, named by a Redis string (`REDISMODULE_HASH_NONE`) or a C
    /// string (`REDISMODULE_HASH_CFIELDS`), as `flags` says.
    fn hash_get(&self, flags: u32, field: *const std::os::raw::c_void) -> Option<RedisString> {
        if self.is_missing() || self.kind() != Kind::Hash {
            return None;
        }
        let mut value: *mut raw::RedisModuleString = ptr::null_mut();
        // SAFETY: the variadic list is one (field, out-pointer) pair and a
        // NULL terminator, as RedisModule_HashGet requires; `flags` says
        // what the field pointer is.
        unsafe {
            api!(RedisModule_HashGet)(
                self.inner,
                flags as c_int,
                field,
                &mut value as *mut *mut raw::RedisModuleString,
                ptr::null_mut::<raw::RedisModuleString>(),
            )
        };
        // The reply string is ours to free, which RedisString does on drop.
        (!value.is_null()).then(|| RedisString::from_redis_module_string(ptr::null_mut(), value))
    }

    pub fn set_hash_field(&self, field: &impl ModuleString, value: &impl ModuleString) {
        // SAFETY: one (field, value) pair and a NULL terminator.
        unsafe {
            api!(RedisModule_HashSet)(
                self.inner,
                raw::REDISMODULE_HASH_NONE as c_int,
                field.ptr(),
                value.ptr(),
                ptr::null_mut::<raw::RedisModuleString>(),
            )
        };
    }

    /// A field named by a C string (`REDISMODULE_HASH_CFIELDS`), such as
    /// the empty name of a v2 session's record: no Redis string is made.
    pub fn hash_cfield(&self, field: &CStr) -> Option<RedisString> {
        self.hash_get(raw::REDISMODULE_HASH_CFIELDS, field.as_ptr().cast())
    }

    pub fn set_hash_cfield(&self, field: &CStr, value: &impl ModuleString) {
        // SAFETY: one (C string field, value) pair and a NULL terminator.
        unsafe {
            api!(RedisModule_HashSet)(
                self.inner,
                raw::REDISMODULE_HASH_CFIELDS as c_int,
                field.as_ptr(),
                value.ptr(),
                ptr::null_mut::<raw::RedisModuleString>(),
            )
        };
    }

    /// Deletes one field; true if it was there. Redis removes the key when
    /// its last field goes.
    pub fn delete_hash_field(&self, field: &impl ModuleString) -> bool {
        // SAFETY: one (field, REDISMODULE_HASH_DELETE) pair and a NULL terminator.
        let deleted = unsafe {
            api!(RedisModule_HashSet)(
                self.inner,
                raw::REDISMODULE_HASH_NONE as c_int,
                field.ptr(),
                hash_delete_marker(),
                ptr::null_mut::<raw::RedisModuleString>(),
            )
        };
        deleted == 1
    }
}

/// `REDISMODULE_HASH_DELETE`, a sentinel pointer value from redismodule.h.
fn hash_delete_marker() -> *mut raw::RedisModuleString {
    std::ptr::without_provenance_mut(1)
}

impl Drop for Key {
    fn drop(&mut self) {
        // SAFETY: opened by Key::open and closed exactly once, here.
        unsafe { api!(RedisModule_CloseKey)(self.inner) };
    }
}
