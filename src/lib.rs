//! sessiongate: HMAC-signed session tokens with their payloads kept in Redis
//! under native TTLs. This file holds the module table and one line per
//! command; the logic lives in the modules below.

mod api;
mod arg;
mod cluster;
mod command_info;
mod commands;
mod config;
mod entry;
pub mod error;
mod key;
mod keyed_hmac;
pub mod keyref;
mod keyring;
mod keyring_command;
pub mod keyring_file;
mod lifecycle;
mod mint;
pub mod options;
mod reply;
mod requirements;
mod stats;
mod steps;
mod store;
pub mod token;
pub mod validate;

/// The v2 record's encoding, for the fuzz targets.
pub use store::record;

use command_info::{docs, Doc};
use entry::Command;
use redis_module::raw::{RedisModuleCtx as Ctx, RedisModuleString as Str};
use redis_module::{
    redis_module, Context, InfoContext, ModuleOptions, RedisResult, RedisString, Status,
};
use stats::add_info;
use std::ffi::CStr;
use std::os::raw::c_int;

/// SESSIONGATE.START <sign_key> <ttl>
extern "C" fn start(ctx: *mut Ctx, argv: *mut *mut Str, argc: c_int) -> c_int {
    entry::dispatch(ctx, argv, argc, commands::start)
}

/// SESSIONGATE.EXPIRE <sign_key> <token> <ttl>
extern "C" fn expire(ctx: *mut Ctx, argv: *mut *mut Str, argc: c_int) -> c_int {
    entry::dispatch(ctx, argv, argc, commands::expire)
}

/// SESSIONGATE.PSET <sign_key> <token> <payload_name> <payload_data>
extern "C" fn pset(ctx: *mut Ctx, argv: *mut *mut Str, argc: c_int) -> c_int {
    entry::dispatch(ctx, argv, argc, commands::pset)
}

/// SESSIONGATE.PGET <sign_key> <token> <payload_name>
extern "C" fn pget(ctx: *mut Ctx, argv: *mut *mut Str, argc: c_int) -> c_int {
    entry::dispatch(ctx, argv, argc, commands::pget)
}

/// SESSIONGATE.PDEL <sign_key> <token> <payload_name>
extern "C" fn pdel(ctx: *mut Ctx, argv: *mut *mut Str, argc: c_int) -> c_int {
    entry::dispatch(ctx, argv, argc, commands::pdel)
}

/// SESSIONGATE.END <sign_key> <token>
extern "C" fn end(ctx: *mut Ctx, argv: *mut *mut Str, argc: c_int) -> c_int {
    entry::dispatch(ctx, argv, argc, commands::end)
}

/// SESSIONGATE.TTL <sign_key> <token>
extern "C" fn ttl(ctx: *mut Ctx, argv: *mut *mut Str, argc: c_int) -> c_int {
    entry::dispatch(ctx, argv, argc, commands::ttl)
}

/// SESSIONGATE.PGETALL <sign_key> <token>
extern "C" fn pgetall(ctx: *mut Ctx, argv: *mut *mut Str, argc: c_int) -> c_int {
    entry::dispatch(ctx, argv, argc, commands::pgetall)
}

/// SESSIONGATE.PMGET <sign_key> <token> <name> [<name> …]
extern "C" fn pmget(ctx: *mut Ctx, argv: *mut *mut Str, argc: c_int) -> c_int {
    entry::dispatch(ctx, argv, argc, commands::pmget)
}

/// SESSIONGATE.PMSET <sign_key> <token> <name> <data> [<name> <data> …]
extern "C" fn pmset(ctx: *mut Ctx, argv: *mut *mut Str, argc: c_int) -> c_int {
    entry::dispatch(ctx, argv, argc, commands::pmset)
}

/// SESSIONGATE.OSTART <keyref> <owner> <ttl> [options]
extern "C" fn ostart(ctx: *mut Ctx, argv: *mut *mut Str, argc: c_int) -> c_int {
    entry::dispatch(ctx, argv, argc, lifecycle::ostart)
}

/// SESSIONGATE.OLIST <keyref> <owner>
extern "C" fn olist(ctx: *mut Ctx, argv: *mut *mut Str, argc: c_int) -> c_int {
    entry::dispatch(ctx, argv, argc, lifecycle::olist)
}

/// SESSIONGATE.OEND <keyref> <owner> [EXCEPT <token> | ID <id> …]
extern "C" fn oend(ctx: *mut Ctx, argv: *mut *mut Str, argc: c_int) -> c_int {
    entry::dispatch(ctx, argv, argc, lifecycle::oend)
}

/// SESSIONGATE.ROTATE <keyref> <token> [TTL <seconds>]
extern "C" fn rotate(ctx: *mut Ctx, argv: *mut *mut Str, argc: c_int) -> c_int {
    entry::dispatch(ctx, argv, argc, lifecycle::rotate)
}

/// SESSIONGATE.INSPECT <keyref> <token>
extern "C" fn inspect(ctx: *mut Ctx, argv: *mut *mut Str, argc: c_int) -> c_int {
    entry::dispatch(ctx, argv, argc, lifecycle::inspect)
}

/// SESSIONGATE.KEYRING <LIST | RELOAD>
extern "C" fn keyring(ctx: *mut Ctx, argv: *mut *mut Str, argc: c_int) -> c_int {
    entry::dispatch(ctx, argv, argc, keyring_command::run)
}

// Key positions: the token (argument 2) is each session command's one key,
// so Redis Cluster routes by it (docs/cluster.md#routing); START has none.
// ACL categories follow from the flags, where the server has them
// (command_info.rs), so that the module loads on Redis 7.0. KEYRING acts
// on this node's keyring, not on the keyspace: no key, and `admin`, so that
// only an operator's ACL user may run it (docs/keyrings.md#keyring-list).
const COMMANDS: [Command; 16] = [
    command(
        c"sessiongate.start",
        start,
        c"write deny-oom fast",
        KEYLESS,
        &docs::START,
    ),
    command(
        c"sessiongate.expire",
        expire,
        c"write fast",
        TOKEN,
        &docs::EXPIRE,
    ),
    command(
        c"sessiongate.pset",
        pset,
        c"write deny-oom fast",
        TOKEN,
        &docs::PSET,
    ),
    command(
        c"sessiongate.pget",
        pget,
        c"readonly fast",
        TOKEN,
        &docs::PGET,
    ),
    command(c"sessiongate.pdel", pdel, c"write fast", TOKEN, &docs::PDEL),
    command(c"sessiongate.end", end, c"write fast", TOKEN, &docs::END),
    command(c"sessiongate.ttl", ttl, c"readonly fast", TOKEN, &docs::TTL),
    command(
        c"sessiongate.pgetall",
        pgetall,
        c"readonly fast",
        TOKEN,
        &docs::PGETALL,
    ),
    command(
        c"sessiongate.pmget",
        pmget,
        c"readonly fast",
        TOKEN,
        &docs::PMGET,
    ),
    command(
        c"sessiongate.pmset",
        pmset,
        c"write deny-oom",
        TOKEN,
        &docs::PMSET,
    ),
    command(
        c"sessiongate.ostart",
        ostart,
        c"write deny-oom",
        OWNER,
        &docs::OSTART,
    ),
    command(
        c"sessiongate.olist",
        olist,
        c"readonly",
        OWNER,
        &docs::OLIST,
    ),
    command(c"sessiongate.oend", oend, c"write", OWNER, &docs::OEND),
    command(
        c"sessiongate.rotate",
        rotate,
        c"write deny-oom fast",
        TOKEN,
        &docs::ROTATE,
    ),
    command(
        c"sessiongate.inspect",
        inspect,
        c"readonly fast",
        TOKEN,
        &docs::INSPECT,
    ),
    command(
        c"sessiongate.keyring",
        keyring,
        c"admin",
        KEYLESS,
        &docs::KEYRING,
    ),
];
const TOKEN: (c_int, c_int, c_int) = (2, 2, 1);
/// The owner commands declare the owner (argument 2), so Redis Cluster
/// routes them to its slot, where its index and sessions are.
const OWNER: (c_int, c_int, c_int) = (2, 2, 1);
const KEYLESS: (c_int, c_int, c_int) = (0, 0, 0);

const fn command(
    name: &'static CStr,
    callback: entry::Callback,
    flags: &'static CStr,
    keys: (c_int, c_int, c_int),
    doc: &'static Doc,
) -> Command {
    Command {
        name,
        callback,
        flags,
        keys,
        doc,
    }
}

fn init(ctx: &Context, args: &[RedisString]) -> Status {
    if let Err(problem) = requirements::check(ctx) {
        ctx.log_warning(&problem);
        return Status::Err;
    }
    // Redis would otherwise signal WATCHers for every key opened for writing,
    // even when a check then fails; the store signals its real writes itself.
    ctx.set_module_options(ModuleOptions::NO_IMPLICIT_SIGNAL_MODIFIED);
    cluster::detect_mode(ctx);
    // Built here, not by the first v2 command, which would stall the server
    // for the few milliseconds it takes (docs/tokens.md#canonical-tags).
    token::tag::build_table();
    if entry::register(ctx, &COMMANDS) == Status::Err {
        return Status::Err;
    }
    if let Err(problem) = config::register(ctx, args) {
        config::release();
        // RedisModule_Log reads the message as a printf format, and the
        // problem may quote an argument: `%` must not reach it as is.
        let problem = problem.replace('%', "%%");
        ctx.log_warning(&format!("sessiongate cannot load: {problem}"));
        return Status::Err;
    }
    entry::log_panics();
    Status::Ok
}

fn deinit(_ctx: &Context) -> Status {
    config::release();
    entry::stop_logging_panics();
    Status::Ok
}

/// `major.minor.patch` of Cargo.toml as the integer `MODULE LIST` shows:
/// 1.2.3 is 10203.
const fn module_version() -> i32 {
    const fn number(digits: &str) -> i32 {
        let bytes = digits.as_bytes();
        let mut value = 0;
        let mut i = 0;
        while i < bytes.len() {
            value = value * 10 + (bytes[i] - b'0') as i32;
            i += 1;
        }
        value
    }
    number(env!("CARGO_PKG_VERSION_MAJOR")) * 10000
        + number(env!("CARGO_PKG_VERSION_MINOR")) * 100
        + number(env!("CARGO_PKG_VERSION_PATCH"))
}

// Redis' allocator exists only inside Redis: unit tests and the token
// benchmarks use the system one.
#[cfg(not(any(test, feature = "system-alloc")))]
macro_rules! allocator {
    () => {
        redis_module::alloc::RedisAlloc
    };
}
#[cfg(any(test, feature = "system-alloc"))]
macro_rules! allocator {
    () => {
        std::alloc::System
    };
}

// The commands are registered by `init` from COMMANDS above (see
// entry::register for why not with this macro's table).
redis_module! {
    name: "sessiongate",
    version: module_version(),
    allocator: (allocator!(), allocator!()),
    data_types: [],
    init: init,
    deinit: deinit,
    info: add_info,
}
