//! What every command does before and around its own work: hide the sign
//! key from SLOWLOG and MONITOR, and keep a panic from reaching Redis.

use crate::commands::Reply;
use crate::error::INTERNAL_ERROR;
use crate::stats;
use redis_module::{raw, Context, RedisError, RedisResult, RedisString};
use std::panic::{self, AssertUnwindSafe};

/// Position of `<sign_key>` in every command's arguments.
const SIGN_KEY_POS: usize = 1;

/// Runs `command` on `args`. The sign key is redacted first, so that even
/// a call with the wrong arity or a bad argument never shows it.
pub fn run(
    ctx: &Context,
    args: &[RedisString],
    command: fn(&Context, &[RedisString]) -> Reply,
) -> RedisResult {
    redact_sign_key(ctx, args.len());
    guarded(|| {
        #[cfg(debug_assertions)]
        panic_on_test_trigger(args);
        command(ctx, args).map_err(|rejection| {
            stats::count_rejection(rejection);
            rejection.into()
        })
    })
}

/// A panic unwinding into Redis would abort the server, and with it the
/// user's data. This turns one into an error reply; the hook installed by
/// `log_panics` has already written it to the Redis log.
pub fn guarded(command: impl FnOnce() -> RedisResult) -> RedisResult {
    panic::catch_unwind(AssertUnwindSafe(command)).unwrap_or(Err(RedisError::Str(INTERNAL_ERROR)))
}

/// Sends panic messages to the Redis log instead of a stderr nobody reads,
/// then to whatever hook was there before (another module's, or Rust's).
pub fn log_panics() {
    let previous = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        let message =
            format!("panic in a module command (sessiongate replies with an error): {info}");
        redis_module::logging::log_warning(message.replace('\0', "\\0"));
        previous(info);
    }));
}

/// Debug builds only: panics when the sign key equals the server's
/// `SESSIONGATE_TEST_PANIC_SIGN_KEY`, so that a test can prove the guard.
/// Release builds do not contain this.
#[cfg(debug_assertions)]
fn panic_on_test_trigger(args: &[RedisString]) {
    static TRIGGER: std::sync::OnceLock<Option<std::ffi::OsString>> = std::sync::OnceLock::new();
    let trigger = TRIGGER.get_or_init(|| std::env::var_os("SESSIONGATE_TEST_PANIC_SIGN_KEY"));
    if let (Some(trigger), Some(sign_key)) = (trigger, args.get(SIGN_KEY_POS)) {
        if trigger.as_encoded_bytes() == sign_key.as_slice() {
            panic!("test trigger: a panic on purpose");
        }
    }
}

fn redact_sign_key(ctx: &Context, argc: usize) {
    // Redis 6.2 has no redaction API: there the commands run unredacted.
    // SAFETY: a read of a pointer that Redis set at load.
    if let Some(redact) = unsafe { raw::RedisModule_RedactClientCommandArgument } {
        if argc > SIGN_KEY_POS {
            // SAFETY: ctx is the live command context and the position exists.
            unsafe { redact(ctx.ctx, SIGN_KEY_POS as i32) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis_module::RedisValue;

    #[test]
    fn guarded_turns_a_panic_into_an_error_reply() {
        let reply = guarded(|| panic!("boom"));
        assert!(matches!(reply, Err(RedisError::Str(INTERNAL_ERROR))));
    }

    #[test]
    fn guarded_passes_replies_through() {
        let reply = guarded(|| Ok(RedisValue::Integer(7)));
        assert!(matches!(reply, Ok(RedisValue::Integer(7))));
    }
}
