//! sessiongate: HMAC-signed session tokens with their payloads kept in Redis
//! under native TTLs. This file holds the module table and one line per
//! command; the logic lives in the modules below.

mod cluster;
mod commands;
mod config;
mod entry;
mod error;
mod key;
mod signer;
mod stats;
mod store;
pub mod token;

use redis_module::{
    redis_module, Context, InfoContext, ModuleOptions, RedisResult, RedisString, Status,
};
use stats::add_info;

/// SESSIONGATE.START <sign_key> <ttl>
fn start(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    entry::run(ctx, &args, commands::start)
}

/// SESSIONGATE.EXPIRE <sign_key> <token> <ttl>
fn expire(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    entry::run(ctx, &args, commands::expire)
}

/// SESSIONGATE.PSET <sign_key> <token> <payload_name> <payload_data>
fn pset(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    entry::run(ctx, &args, commands::pset)
}

/// SESSIONGATE.PGET <sign_key> <token> <payload_name>
fn pget(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    entry::run(ctx, &args, commands::pget)
}

/// SESSIONGATE.PDEL <sign_key> <token> <payload_name>
fn pdel(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    entry::run(ctx, &args, commands::pdel)
}

/// SESSIONGATE.END <sign_key> <token>
fn end(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    entry::run(ctx, &args, commands::end)
}

/// SESSIONGATE.TTL <sign_key> <token>
fn ttl(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    entry::run(ctx, &args, commands::ttl)
}

/// SESSIONGATE.PGETALL <sign_key> <token>
fn pgetall(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    entry::run(ctx, &args, commands::pgetall)
}

/// SESSIONGATE.PMGET <sign_key> <token> <name> [<name> …]
fn pmget(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    entry::run(ctx, &args, commands::pmget)
}

/// SESSIONGATE.PMSET <sign_key> <token> <name> <data> [<name> <data> …]
fn pmset(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    entry::run(ctx, &args, commands::pmset)
}

fn init(ctx: &Context, args: &[RedisString]) -> Status {
    if let Some(missing) = key::missing_api() {
        ctx.log_warning(&format!(
            "sessiongate needs Redis 6.2.2 or newer: this server lacks {missing}"
        ));
        return Status::Err;
    }
    // Redis would otherwise signal WATCHers for every key opened for writing,
    // even when a check then fails; the store signals its real writes itself.
    ctx.set_module_options(ModuleOptions::NO_IMPLICIT_SIGNAL_MODIFIED);
    cluster::detect_mode(ctx);
    if let Err(problem) = config::register(ctx, args) {
        ctx.log_warning(&format!("sessiongate cannot load: {problem}"));
        return Status::Err;
    }
    entry::log_panics();
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

// Redis' allocator exists only inside Redis: unit tests use the system one.
#[cfg(not(test))]
macro_rules! allocator {
    () => {
        redis_module::alloc::RedisAlloc
    };
}
#[cfg(test)]
macro_rules! allocator {
    () => {
        std::alloc::System
    };
}

// Registered with the command table rather than `#[command]` so that the
// module loads on Redis 7.0. Key positions: the token (argument 2) is each
// session command's one key, so Redis Cluster routes by it (SPEC Part 4).
redis_module! {
    name: "sessiongate",
    version: module_version(),
    allocator: (allocator!(), allocator!()),
    data_types: [],
    init: init,
    info: add_info,
    commands: [
        ["sessiongate.start", start, "write deny-oom fast", 0, 0, 0, ""],
        ["sessiongate.expire", expire, "write fast", 2, 2, 1, ""],
        ["sessiongate.pset", pset, "write deny-oom fast", 2, 2, 1, ""],
        ["sessiongate.pget", pget, "readonly fast", 2, 2, 1, ""],
        ["sessiongate.pdel", pdel, "write fast", 2, 2, 1, ""],
        ["sessiongate.end", end, "write fast", 2, 2, 1, ""],
        ["sessiongate.ttl", ttl, "readonly fast", 2, 2, 1, ""],
        ["sessiongate.pgetall", pgetall, "readonly fast", 2, 2, 1, ""],
        ["sessiongate.pmget", pmget, "readonly fast", 2, 2, 1, ""],
        ["sessiongate.pmset", pmset, "write deny-oom", 2, 2, 1, ""],
    ],
}
