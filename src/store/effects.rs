//! How the store's writes reach replicas and the AOF, and what else each
//! write tells Redis (docs/replication.md).
//!
//! Writes go through the key API, then each one propagates its effect, never
//! the command: START is random, and verbatim replication would also copy the
//! sign key into the AOF. Expiries travel as absolute times so that a replica
//! or an AOF replay ends up with the master's `PEXPIRETIME`.

use crate::api::api;
use redis_module::{raw, Context, RedisString};
use std::ffi::CStr;

/// Propagates one effect with `RM_Replicate` and its own argument formats
/// (`s` a Redis string, `l` an integer, `c` a C string, `v` a vector and its
/// length), so no string is made just to be replicated.
macro_rules! replicate {
    ($ctx:expr, $command:literal, $format:literal $(, $arg:expr)* $(,)?) => {
        // SAFETY: each letter of the format has its argument, of its type.
        // It fails only for an unknown command or format; both are fixed here.
        {
            let _ = unsafe {
                $crate::api::api!(RedisModule_Replicate)(
                    $ctx.ctx,
                    concat!($command, "\0").as_ptr().cast(),
                    concat!($format, "\0").as_ptr().cast(),
                    $($arg),*
                )
            };
        }
    };
}

pub(super) use replicate;

/// Unix time in milliseconds, as Redis' own clock reads it.
pub fn now_ms() -> i64 {
    // SAFETY: a plain clock read with no arguments.
    unsafe { api!(RedisModule_Milliseconds)() }
}

/// A lifecycle event, as a keyspace notification of the module class on the
/// session's key (v1: its signature key) (`notify-keyspace-events` with `d` and `K`/`E`).
pub(super) fn notify(ctx: &Context, event: &CStr, key: &RedisString) {
    // SAFETY: ctx, event and key are live for the call.
    unsafe {
        api!(RedisModule_NotifyKeyspaceEvent)(
            ctx.ctx,
            raw::REDISMODULE_NOTIFY_MODULE,
            event.as_ptr(),
            key.inner,
        )
    };
}

/// The module turns off Redis' implicit signal on every key opened for
/// writing, so a failed check leaves WATCH alone; real writes signal here.
pub(super) fn signal_modified(ctx: &Context, name: &RedisString) {
    // SAFETY: ctx and name are live.
    unsafe { api!(RedisModule_SignalModifiedKey)(ctx.ctx, name.inner) };
}
