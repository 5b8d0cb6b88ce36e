//! How Redis calls a command, and what every command does before and around
//! its own work: hide the sign key from SLOWLOG and MONITOR, keep a panic
//! from reaching Redis, and reply.

use crate::api::api;
use crate::arg::Arg;
use crate::command_info::{self, Doc};
use crate::error::Rejection;
use crate::reply::{self, Reply};
use crate::stats;
use redis_module::{raw, Context, Status};
use std::ffi::CStr;
use std::os::raw::c_int;
use std::panic::{self, AssertUnwindSafe};

/// What Redis calls for a command.
pub type Callback =
    extern "C" fn(*mut raw::RedisModuleCtx, *mut *mut raw::RedisModuleString, c_int) -> c_int;

/// A command as Redis registers it: name, flags and key positions (first,
/// last, step) exactly as for `RedisModule_CreateCommand`, and what
/// `COMMAND DOCS` shows of it.
pub struct Command {
    pub name: &'static CStr,
    pub callback: Callback,
    pub flags: &'static CStr,
    pub keys: (c_int, c_int, c_int),
    pub doc: &'static Doc,
}

/// Registers every command. The module does this itself rather than with
/// `redis_module!`'s table, whose wrapper copies every argument into a
/// vector of retained strings on each call: by callgrind, about 15% of what
/// PGET costs besides the HMAC.
pub fn register(ctx: &redis_module::Context, commands: &[Command]) -> Status {
    for command in commands {
        let (first, last, step) = command.keys;
        // SAFETY: called from RedisModule_OnLoad with its context; the
        // strings are static.
        let status = unsafe {
            api!(RedisModule_CreateCommand)(
                ctx.ctx,
                command.name.as_ptr(),
                Some(command.callback),
                command.flags.as_ptr(),
                first,
                last,
                step,
            )
        };
        if status != raw::REDISMODULE_OK as c_int {
            ctx.log_warning(&format!("sessiongate: cannot register {:?}", command.name));
            return Status::Err;
        }
    }
    let described: Vec<_> = commands.iter().map(|c| (c.name, c.flags, c.doc)).collect();
    command_info::describe(ctx, &described);
    Status::Ok
}

/// The body of every command's callback: reads `argv` in place, runs the
/// command and replies.
pub fn dispatch(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
    command: fn(&Context, &[Arg]) -> Reply,
) -> c_int {
    let ctx = Context::new(ctx);
    let args: &[Arg] = match usize::try_from(argc) {
        // SAFETY: Redis passes argc strings at argv, alive for the call;
        // Arg is a transparent wrapper of the pointer.
        Ok(len) if !argv.is_null() => unsafe { std::slice::from_raw_parts(argv.cast(), len) },
        _ => &[],
    };
    reply::send(&ctx, run(&ctx, args, command))
}

/// Position of `<sign_key>` in every command's arguments.
const SIGN_KEY_POS: usize = 1;

/// Runs `command` on `args`. The sign key is redacted first, so that even
/// a call with the wrong arity or a bad argument never shows it.
fn run(ctx: &Context, args: &[Arg], command: fn(&Context, &[Arg]) -> Reply) -> Reply {
    redact_sign_key(ctx, args.len());
    let reply = guarded(|| {
        #[cfg(debug_assertions)]
        panic_on_test_trigger(args);
        command(ctx, args)
    });
    if let Err(rejection) = reply {
        stats::count_rejection(rejection);
    }
    reply
}

/// A panic unwinding into Redis would abort the server, and with it the
/// user's data. This turns one into an error reply; the hook installed by
/// `log_panics` has already written it to the Redis log.
pub fn guarded(command: impl FnOnce() -> Reply) -> Reply {
    panic::catch_unwind(AssertUnwindSafe(command)).unwrap_or(Err(Rejection::Internal))
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

/// Takes the hook back when Redis unloads the module: the hook lives in the
/// module's own copy of std, which is about to go away.
pub fn stop_logging_panics() {
    drop(panic::take_hook());
}

/// Debug builds only: panics when the sign key equals the server's
/// `SESSIONGATE_TEST_PANIC_SIGN_KEY`, so that a test can prove the guard.
/// Release builds do not contain this.
#[cfg(debug_assertions)]
fn panic_on_test_trigger(args: &[Arg]) {
    static TRIGGER: std::sync::OnceLock<Option<std::ffi::OsString>> = std::sync::OnceLock::new();
    let trigger = TRIGGER.get_or_init(|| std::env::var_os("SESSIONGATE_TEST_PANIC_SIGN_KEY"));
    if let (Some(trigger), Some(sign_key)) = (trigger, args.get(SIGN_KEY_POS)) {
        if trigger.as_encoded_bytes() == sign_key.as_slice() {
            panic!("test trigger: a panic on purpose");
        }
    }
}

fn redact_sign_key(ctx: &Context, argc: usize) {
    if argc > SIGN_KEY_POS {
        // SAFETY: ctx is the live command context and the position exists.
        unsafe { api!(RedisModule_RedactClientCommandArgument)(ctx.ctx, SIGN_KEY_POS as i32) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::Answer;

    #[test]
    fn guarded_turns_a_panic_into_an_error_reply() {
        let reply = guarded(|| panic!("boom"));
        assert!(matches!(reply, Err(Rejection::Internal)));
    }

    #[test]
    fn guarded_passes_replies_through() {
        let reply = guarded(|| Ok(Answer::Integer(7)));
        assert!(matches!(reply, Ok(Answer::Integer(7))));
    }
}
