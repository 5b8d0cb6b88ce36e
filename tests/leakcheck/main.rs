//! `make leakcheck`: the module inside redis-servers run by valgrind's
//! memcheck (`scripts/valgrind-redis-server`, through `REDIS_SERVER`), a
//! workload through every command and every path, a clean `SHUTDOWN NOSAVE`
//! so that valgrind writes its report, and a verdict on those reports.
//!
//! The workload, one group of servers after another:
//!
//! * a master (module arguments at load, keyspace events with a subscriber,
//!   AOF on, every call in the slow log, MONITOR) and its replica: wrong
//!   arity and every argument error of every command; a session's whole life
//!   with binary names and data, a 1.5 MB payload, PMSET all-or-nothing,
//!   PGETALL and PMGET under RESP2 and RESP3, stale signatures, keys of the
//!   wrong type, a session with no expiry; the configurations at runtime and
//!   their refusals; the keyring (loaded at start, LIST, RELOAD of a good
//!   and a bad file, CONFIG SET of a good, bad, missing and empty path);
//!   MULTI/EXEC and Lua; COMMAND and INFO; a pipelined
//!   volume of sessions; lazy and active expiry; BGREWRITEAOF and DEBUG
//!   RELOAD; reads on the replica and its refusal of writes;
//! * a server whose module panics on purpose (debug builds; the guard turns
//!   the panic into an error reply), and MODULE UNLOAD / MODULE LOAD cycles,
//!   one before any command, with loads refused for a bad argument;
//! * a one-node cluster (`cluster-require-full-coverage no`): START in
//!   cluster mode, slots taken away under its cached view, and a node with
//!   no slot refusing START;
//! * the module refusing to load (bad arguments, a bad keyring file): the
//!   server exits.
//!
//! It fails on any reply of the workload that is not the expected one, and
//! on the verdict of `report` on valgrind's reports: any byte definitely or
//! indirectly lost, any memory error with the module in its stack, a server
//! that wrote no complete report (report.rs says what is listed and what
//! fails).
//!
//! An ignored test, run by `scripts/leakcheck` (`make leakcheck`), once per
//! build of the module, as `cargo test --test leakcheck -- --ignored
//! --nocapture`: this program is only the client; the module under test is
//! `SESSIONGATE_MODULE`. The report reader's own tests run with the others.
//!
//! Environment: `LEAKCHECK_DIR`, the directory the valgrind logs go to
//! (emptied by `scripts/leakcheck`), `REDIS_SERVER`, the wrapper, and
//! `SESSIONGATE_MODULE`.

#[path = "../common/mod.rs"]
mod common;
mod report;

use common::errors::*;
use common::{call, fresh_dir, info_field, Server, Value};
use redis::Connection;
use report::{judge, Launched};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

const KEY: &[u8] = b"leakcheck sign key";
const OTHER_KEY: &[u8] = b"another sign key";
/// The sign key that makes a debug build's command panic (entry.rs).
const PANIC_KEY: &str = "panic on purpose";
/// valgrind makes a server 20 to 50 times slower, and its leak search at
/// exit takes a while: generous deadlines.
const DEADLINE: Duration = Duration::from_secs(180);

const COMMANDS: [&str; 10] = [
    "SESSIONGATE.START",
    "SESSIONGATE.EXPIRE",
    "SESSIONGATE.PSET",
    "SESSIONGATE.PGET",
    "SESSIONGATE.PDEL",
    "SESSIONGATE.END",
    "SESSIONGATE.TTL",
    "SESSIONGATE.PGETALL",
    "SESSIONGATE.PMGET",
    "SESSIONGATE.PMSET",
];

/// A command's words, each anything that is bytes.
macro_rules! args {
    ($($word:expr),* $(,)?) => {
        &[$(AsRef::<[u8]>::as_ref(&$word)),*][..]
    };
}

/// Every command that takes a token, with valid other arguments.
fn token_commands<'a>(sign_key: &'a [u8], token: &'a [u8]) -> Vec<Vec<&'a [u8]>> {
    let with = |command: &'static str, rest: &[&'static str]| {
        let mut call = vec![command.as_bytes(), sign_key, token];
        call.extend(rest.iter().map(|word| word.as_bytes()));
        call
    };
    vec![
        with("SESSIONGATE.EXPIRE", &["10"]),
        with("SESSIONGATE.PSET", &["n", "d"]),
        with("SESSIONGATE.PGET", &["n"]),
        with("SESSIONGATE.PDEL", &["n"]),
        with("SESSIONGATE.END", &[]),
        with("SESSIONGATE.TTL", &[]),
        with("SESSIONGATE.PGETALL", &[]),
        with("SESSIONGATE.PMGET", &["n", "m"]),
        with("SESSIONGATE.PMSET", &["n", "d", "m", "e"]),
    ]
}

// ---------------------------------------------------------------------------
// Tokens, as docs/tokens.md makes them.

fn token_for(key: &[u8], id: &str) -> String {
    format!("v1.{id}.{}", common::hmac_hex(key, id.as_bytes()))
}

fn id_of(token: &str) -> &str {
    &token[3..19]
}

// ---------------------------------------------------------------------------
// Replies: each is checked, and a wrong one is recorded, not panicked on (a
// panic would kill the servers before valgrind could report).

#[derive(Debug)]
enum Want<'a> {
    Ok,
    Bulk(&'a [u8]),
    Token,
    /// A v2 token (88 to 90 bytes).
    TokenV2,
    Int,
    Array(usize),
    Error(&'a str),
    ErrorStarting(&'a str),
    Any,
}

#[derive(Default)]
struct Checks {
    calls: u64,
    failures: Vec<String>,
    notes: Vec<String>,
}

fn show(args: &[&[u8]]) -> String {
    let words: Vec<String> = args
        .iter()
        .map(|a| {
            let s = String::from_utf8_lossy(a);
            if s.len() > 60 {
                format!("<{} bytes>", a.len())
            } else {
                format!("{s:?}")
            }
        })
        .collect();
    words.join(" ")
}

impl Checks {
    fn expect(&mut self, con: &mut Connection, args: &[&[u8]], want: Want) -> Option<Value> {
        self.calls += 1;
        let got = call(con, args);
        let fine = match (&want, &got) {
            (Want::Any, _) => true,
            (Want::Ok, Ok(Value::Okay)) => true,
            (Want::Bulk(b), Ok(Value::BulkString(v))) => v == b,
            (Want::Token, Ok(Value::BulkString(v))) => v.len() == 84 && v.starts_with(b"v1."),
            (Want::TokenV2, Ok(Value::BulkString(v))) => {
                (88..=90).contains(&v.len()) && v.starts_with(b"v2.")
            }
            (Want::Int, Ok(Value::Int(_))) => true,
            (Want::Array(n), Ok(Value::Array(v))) => v.len() == *n,
            (Want::Array(n), Ok(Value::Map(v))) => 2 * v.len() == *n,
            (Want::Error(e), Err(g)) => g == e,
            (Want::ErrorStarting(e), Err(g)) => g.starts_with(e),
            _ => false,
        };
        if !fine {
            let shown = match &got {
                Ok(Value::BulkString(b)) if b.len() > 100 => format!("<{} bytes>", b.len()),
                other => format!("{other:?}"),
            };
            self.failures
                .push(format!("{}: wanted {want:?}, got {shown}", show(args)));
        }
        got.ok()
    }

    fn ok(&mut self, con: &mut Connection, args: &[&[u8]]) {
        self.expect(con, args, Want::Ok);
    }

    fn err(&mut self, con: &mut Connection, args: &[&[u8]], text: &str) {
        self.expect(con, args, Want::Error(text));
    }

    fn start(&mut self, con: &mut Connection, key: &[u8], ttl: &str) -> String {
        match self.expect(con, args!["SESSIONGATE.START", key, ttl], Want::Token) {
            Some(Value::BulkString(token)) => String::from_utf8_lossy(&token).into_owned(),
            _ => token_for(key, "0000000000000000"),
        }
    }

    fn check(&mut self, fine: bool, what: impl Into<String>) {
        if !fine {
            self.failures.push(what.into());
        }
    }
}

// ---------------------------------------------------------------------------
// The servers, and where their reports are.

fn wait_until(what: &str, checks: &mut Checks, mut predicate: impl FnMut() -> bool) {
    let started = Instant::now();
    while !predicate() {
        if started.elapsed() > DEADLINE {
            checks
                .failures
                .push(format!("timed out waiting for {what}"));
            return;
        }
        sleep(Duration::from_millis(100));
    }
}

fn stop(server: Server, checks: &mut Checks) {
    match server.shutdown(DEADLINE) {
        Ok(dir) => {
            let _ = std::fs::remove_dir_all(dir);
        }
        Err(failure) => checks.failures.push(failure),
    }
}

fn launch(role: &'static str, server: Server, launched: &mut Vec<Launched>) -> Server {
    launched.push(Launched {
        role,
        marker: server.socket().display().to_string(),
    });
    server
}

// ---------------------------------------------------------------------------
// The workload.

/// Every argument error of every command, before any session exists.
fn argument_errors(c: &mut Connection, k: &mut Checks) {
    for command in COMMANDS {
        k.expect(c, args![command], Want::ErrorStarting(WRONG_ARITY));
        // PMGET takes any number of names: this one is a bad token.
        let want = match command {
            "SESSIONGATE.PMGET" => Want::Error(MALFORMED_TOKEN),
            _ => Want::ErrorStarting(WRONG_ARITY),
        };
        k.expect(c, args![command, KEY, "a", "b", "c", "d"], want);
    }
    k.expect(
        c,
        args!["SESSIONGATE.PMGET", KEY, "tok"],
        Want::ErrorStarting(WRONG_ARITY),
    );
    k.expect(
        c,
        args!["SESSIONGATE.PMSET", KEY, "tok", "name"],
        Want::ErrorStarting(WRONG_ARITY),
    );
    k.expect(
        c,
        args!["SESSIONGATE.PMSET", KEY, "tok", "a", "1", "b"],
        Want::ErrorStarting(WRONG_ARITY),
    );
    let t = token_for(KEY, "AAAAAAAAAAAAAAAA");
    let empty_key: [&[&[u8]]; 10] = [
        args!["SESSIONGATE.START", "", "10"],
        args!["SESSIONGATE.EXPIRE", "", t, "10"],
        args!["SESSIONGATE.PSET", "", t, "n", "d"],
        args!["SESSIONGATE.PGET", "", t, "n"],
        args!["SESSIONGATE.PDEL", "", t, "n"],
        args!["SESSIONGATE.END", "", t],
        args!["SESSIONGATE.TTL", "", t],
        args!["SESSIONGATE.PGETALL", "", t],
        args!["SESSIONGATE.PMGET", "", t, "n"],
        args!["SESSIONGATE.PMSET", "", t, "n", "d"],
    ];
    for call in empty_key {
        k.err(c, call, EMPTY_SIGN_KEY);
    }
    for ttl in [
        "abc",
        "-1",
        "1.5",
        "",
        " 1",
        "+1",
        "01",
        "9223372036854775807",
        "99999999999999999999",
    ] {
        k.err(c, args!["SESSIONGATE.START", KEY, ttl], BAD_TTL);
    }
    let mut upper = t.clone();
    upper.replace_range(83..84, "A");
    let bad_tokens: [(&[u8], &str); 7] = [
        (b"", EMPTY_TOKEN),
        (b"garbage", MALFORMED_TOKEN),
        (&t.as_bytes()[..83], MALFORMED_TOKEN),
        (upper.as_bytes(), MALFORMED_TOKEN),
        (
            b"v2.AAAAAAAAAAAAAAAA.0000000000000000000000000000000000000000000000000000000000000000",
            MALFORMED_TOKEN,
        ),
        (
            b"v1.AAAAAAA-AAAAAAAA.0000000000000000000000000000000000000000000000000000000000000000",
            MALFORMED_TOKEN,
        ),
        (
            b"v1.AAAAAAAAAAAAAAAA.0000000000000000000000000000000000000000000000000000000000000000",
            FORGED_SIGNATURE,
        ),
    ];
    for (token, error) in bad_tokens {
        for call in token_commands(KEY, token) {
            k.err(c, &call, error);
        }
    }
    // A well-formed token of a session that does not exist.
    k.err(c, args!["SESSIONGATE.PGET", KEY, t, "n"], NO_SESSION);
    k.err(c, args!["SESSIONGATE.EXPIRE", KEY, t, "abc"], BAD_TTL);
    k.err(c, args!["SESSIONGATE.EXPIRE", KEY, t, "10"], NO_SESSION);
}

/// A session's whole life, every success path and the errors that need a
/// session. The master was loaded with max-payload-name-len 64 and
/// max-payload-data-len 2000000.
fn session_life(c: &mut Connection, c3: &mut Connection, k: &mut Checks) -> String {
    let t = k.start(c, KEY, "1000");
    let t = t.as_str();
    k.expect(c, args!["SESSIONGATE.TTL", KEY, t], Want::Int);
    k.expect(c, args!["SESSIONGATE.PGETALL", KEY, t], Want::Array(0));
    k.expect(c3, args!["SESSIONGATE.PGETALL", KEY, t], Want::Array(0));
    k.expect(
        c,
        args!["SESSIONGATE.PMGET", KEY, t, "a", "b"],
        Want::Array(2),
    );
    k.err(c, args!["SESSIONGATE.PDEL", KEY, t, "a"], NO_PAYLOAD);
    k.err(c, args!["SESSIONGATE.PGET", KEY, t, "a"], NO_PAYLOAD);
    k.err(
        c,
        args!["SESSIONGATE.PSET", KEY, t, "", "d"],
        EMPTY_PAYLOAD_NAME,
    );
    k.err(
        c,
        args!["SESSIONGATE.PSET", KEY, t, "n".repeat(65), "d"],
        &payload_name_too_long(64),
    );
    k.err(
        c,
        args!["SESSIONGATE.PSET", KEY, t, "n", ""],
        EMPTY_PAYLOAD_DATA,
    );
    k.err(
        c,
        args!["SESSIONGATE.PSET", KEY, t, "n", vec![b'x'; 2_000_001]],
        &payload_data_too_long(2_000_000),
    );
    k.err(c, args!["SESSIONGATE.PGET", KEY, t, ""], EMPTY_PAYLOAD_NAME);
    k.err(
        c,
        args!["SESSIONGATE.PMGET", KEY, t, "a", ""],
        EMPTY_PAYLOAD_NAME,
    );
    k.err(
        c,
        args!["SESSIONGATE.PDEL", KEY, t, "n".repeat(65)],
        &payload_name_too_long(64),
    );
    // Binary names and data, overwritten; a large payload.
    let name: &[u8] = b"bin\0name\xff\r\n";
    let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    k.ok(c, args!["SESSIONGATE.PSET", KEY, t, name, b"first"]);
    k.ok(c, args!["SESSIONGATE.PSET", KEY, t, name, data]);
    k.expect(
        c,
        args!["SESSIONGATE.PGET", KEY, t, name],
        Want::Bulk(&data),
    );
    let big = vec![0xA5u8; 1_500_000];
    k.ok(c, args!["SESSIONGATE.PSET", KEY, t, "big", big]);
    k.expect(
        c,
        args!["SESSIONGATE.PGET", KEY, t, "big"],
        Want::Bulk(&big),
    );
    k.ok(c, args!["SESSIONGATE.PDEL", KEY, t, "big"]);
    // PMSET: all or nothing, duplicates, one bad pair anywhere.
    k.ok(
        c,
        args!["SESSIONGATE.PMSET", KEY, t, "a", "1", "b", "2", "c", "3"],
    );
    k.err(
        c,
        args!["SESSIONGATE.PMSET", KEY, t, "x", "1", "", "2"],
        EMPTY_PAYLOAD_NAME,
    );
    k.err(
        c,
        args!["SESSIONGATE.PMSET", KEY, t, "x", "1", "y", ""],
        EMPTY_PAYLOAD_DATA,
    );
    k.err(c, args!["SESSIONGATE.PGET", KEY, t, "x"], NO_PAYLOAD);
    k.ok(c, args!["SESSIONGATE.PMSET", KEY, t, "d", "1", "d", "2"]);
    k.expect(c, args!["SESSIONGATE.PGET", KEY, t, "d"], Want::Bulk(b"2"));
    k.expect(
        c,
        args!["SESSIONGATE.PMGET", KEY, t, "a", "zz", name, "c"],
        Want::Array(4),
    );
    k.expect(
        c3,
        args!["SESSIONGATE.PMGET", KEY, t, "a", "zz"],
        Want::Array(2),
    );
    k.expect(c, args!["SESSIONGATE.PGETALL", KEY, t], Want::Array(10));
    k.expect(c3, args!["SESSIONGATE.PGETALL", KEY, t], Want::Array(10));
    k.ok(c, args!["SESSIONGATE.PDEL", KEY, t, "a"]);
    k.ok(c, args!["SESSIONGATE.PDEL", KEY, t, "absent"]);
    k.ok(c, args!["SESSIONGATE.EXPIRE", KEY, t, "2000"]);
    k.expect(c, args!["SESSIONGATE.TTL", KEY, t], Want::Int);
    // The right HMAC under another key, for an id whose session has another.
    let stale = token_for(OTHER_KEY, id_of(t));
    k.err(
        c,
        args!["SESSIONGATE.PGET", OTHER_KEY, stale, "b"],
        STALE_SIGNATURE,
    );
    k.err(
        c,
        args!["SESSIONGATE.END", OTHER_KEY, stale],
        STALE_SIGNATURE,
    );
    k.err(
        c,
        args!["SESSIONGATE.PGET", OTHER_KEY, t, "b"],
        FORGED_SIGNATURE,
    );

    // A session whose payloads key is a string, then one whose signature
    // key is a hash: written by other means.
    let w = k.start(c, KEY, "1000");
    let w = w.as_str();
    let payloads_key = format!("sg-session:{}:payloads", id_of(w));
    k.ok(c, args!["SET", payloads_key, "not a hash"]);
    for call in [
        args!["SESSIONGATE.PGET", KEY, w, "a"],
        args!["SESSIONGATE.PSET", KEY, w, "a", "1"],
        args!["SESSIONGATE.PMSET", KEY, w, "a", "1", "b", "2"],
        args!["SESSIONGATE.PMGET", KEY, w, "a"],
        args!["SESSIONGATE.PGETALL", KEY, w],
        args!["SESSIONGATE.PDEL", KEY, w, "a"],
    ] {
        k.expect(c, call, Want::ErrorStarting(WRONG_TYPE));
    }
    k.ok(c, args!["SESSIONGATE.EXPIRE", KEY, w, "100"]);
    k.ok(c, args!["SESSIONGATE.END", KEY, w]);
    let h = token_for(KEY, "HashHashHashHash");
    let signature_key = format!("sg-session:{}:signature", id_of(&h));
    k.expect(c, args!["HSET", signature_key, "f", "v"], Want::Int);
    k.err(c, args!["SESSIONGATE.PGET", KEY, h, "a"], STALE_SIGNATURE);
    k.expect(c, args!["DEL", signature_key], Want::Int);
    // A session with no expiry (only a dataset written by other means has
    // one): TTL -1, and PSET propagates PERSIST.
    let p = token_for(KEY, "PersistPersist00");
    let signature_key = format!("sg-session:{}:signature", id_of(&p));
    k.ok(c, args!["SET", signature_key, &p[20..]]);
    k.expect(c, args!["SESSIONGATE.TTL", KEY, p], Want::Int);
    k.ok(c, args!["SESSIONGATE.PSET", KEY, p, "a", "1"]);
    k.ok(c, args!["SESSIONGATE.PMSET", KEY, p, "b", "1", "c", "2"]);
    k.ok(c, args!["SESSIONGATE.EXPIRE", KEY, p, "100"]);
    k.ok(c, args!["SESSIONGATE.END", KEY, p]);

    // Ends: END, EXPIRE 0 with and without payloads, START 0.
    let e = k.start(c, KEY, "1000");
    k.ok(c, args!["SESSIONGATE.PSET", KEY, e, "a", "1"]);
    k.ok(c, args!["SESSIONGATE.END", KEY, e]);
    k.err(c, args!["SESSIONGATE.END", KEY, e], NO_SESSION);
    k.err(c, args!["SESSIONGATE.PGET", KEY, e, "a"], NO_SESSION);
    let e = k.start(c, KEY, "1000");
    k.ok(c, args!["SESSIONGATE.END", KEY, e]);
    let e = k.start(c, KEY, "1000");
    k.ok(c, args!["SESSIONGATE.PSET", KEY, e, "a", "1"]);
    k.ok(c, args!["SESSIONGATE.EXPIRE", KEY, e, "0"]);
    k.err(c, args!["SESSIONGATE.TTL", KEY, e], NO_SESSION);
    let e = k.start(c, KEY, "1000");
    k.ok(c, args!["SESSIONGATE.EXPIRE", KEY, e, "0"]);
    let z = k.start(c, KEY, "0");
    k.err(c, args!["SESSIONGATE.PGETALL", KEY, z], NO_SESSION);
    t.to_string()
}

/// The configurations at runtime, their limits hit, and their refusals.
fn configurations(c: &mut Connection, k: &mut Checks) {
    k.ok(
        c,
        args!["CONFIG", "SET", "sessiongate.max-payloads-per-session", "2"],
    );
    let t = k.start(c, KEY, "1000");
    k.ok(c, args!["SESSIONGATE.PSET", KEY, t, "a", "1"]);
    k.ok(c, args!["SESSIONGATE.PSET", KEY, t, "b", "1"]);
    let full = too_many_payloads(2);
    k.err(c, args!["SESSIONGATE.PSET", KEY, t, "c", "1"], &full);
    k.err(
        c,
        args!["SESSIONGATE.PMSET", KEY, t, "c", "1", "d", "1"],
        &full,
    );
    k.ok(c, args!["SESSIONGATE.PSET", KEY, t, "a", "2"]);
    k.ok(c, args!["SESSIONGATE.PMSET", KEY, t, "a", "3", "b", "3"]);
    k.ok(
        c,
        args!["CONFIG", "SET", "sessiongate.max-payloads-per-session", "0"],
    );
    k.ok(
        c,
        args!["CONFIG", "SET", "sessiongate.max-payload-data-len", "10"],
    );
    k.err(
        c,
        args!["SESSIONGATE.PSET", KEY, t, "a", "x".repeat(11)],
        &payload_data_too_long(10),
    );
    k.ok(
        c,
        args!["CONFIG", "SET", "sessiongate.max-payload-name-len", "3"],
    );
    k.err(
        c,
        args!["SESSIONGATE.PGET", KEY, t, "abcd"],
        &payload_name_too_long(3),
    );
    for (name, value) in [
        ("sessiongate.max-payload-name-len", "0"),
        ("sessiongate.max-payload-name-len", "536870913"),
        ("sessiongate.max-payload-data-len", "abc"),
        ("sessiongate.max-payloads-per-session", "-1"),
        ("sessiongate.max-payloads-per-session", "4294967296"),
    ] {
        k.expect(
            c,
            args!["CONFIG", "SET", name, value],
            Want::ErrorStarting("ERR CONFIG SET failed"),
        );
    }
    // Six configs, name and value each.
    k.expect(c, args!["CONFIG", "GET", "sessiongate.*"], Want::Array(16));
    k.ok(
        c,
        args!["CONFIG", "SET", "sessiongate.max-payload-name-len", "64"],
    );
    k.ok(
        c,
        args![
            "CONFIG",
            "SET",
            "sessiongate.max-payload-data-len",
            "2000000"
        ],
    );
    k.ok(c, args!["SESSIONGATE.END", KEY, t]);
}

/// SESSIONGATE.KEYRING and the keyring-file config (docs/keyrings.md):
/// LIST, RELOAD of a good and a bad file, CONFIG SET of a good, a bad, a
/// missing and no file, so that every path that reads, refuses, swaps or
/// drops a keyring runs. `file` is the one the server loaded at start.
fn keyrings(c: &mut Connection, k: &mut Checks, file: &Path) {
    let path = file.display().to_string();
    let secret = |n: u8| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode([n; 32])
    };
    k.expect(c, args!["SESSIONGATE.KEYRING", "LIST"], Want::Array(2));
    k.expect(c, args!["SESSIONGATE.KEYRING", "list"], Want::Array(2));
    k.ok(c, args!["SESSIONGATE.KEYRING", "RELOAD"]);
    let good = std::fs::read_to_string(file).unwrap_or_default();
    let _ = std::fs::write(
        file,
        format!(
            "{good}app verify {}\nnew primary {}\n",
            secret(7),
            secret(8)
        ),
    );
    k.ok(c, args!["SESSIONGATE.KEYRING", "RELOAD"]);
    k.expect(c, args!["SESSIONGATE.KEYRING", "LIST"], Want::Array(3));
    let _ = std::fs::write(
        file,
        format!("app primary {}\napp primary {}\n", secret(1), secret(2)),
    );
    k.err(
        c,
        args!["SESSIONGATE.KEYRING", "RELOAD"],
        "ERR keyring file line 1: this line's ring has a second primary, on line 2",
    );
    let bad = file.with_extension("bad");
    let _ = std::fs::write(&bad, format!("app primary {}\n", &secret(3)[..20]));
    k.expect(
        c,
        args![
            "CONFIG",
            "SET",
            "sessiongate.keyring-file",
            bad.display().to_string()
        ],
        Want::ErrorStarting("ERR CONFIG SET failed"),
    );
    k.expect(
        c,
        args![
            "CONFIG",
            "SET",
            "sessiongate.keyring-file",
            format!("{path}.missing")
        ],
        Want::ErrorStarting("ERR CONFIG SET failed"),
    );
    k.expect(c, args!["SESSIONGATE.KEYRING", "LIST"], Want::Array(3));
    k.expect(
        c,
        args!["CONFIG", "GET", "sessiongate.keyring-file"],
        Want::Array(2),
    );
    k.ok(c, args!["CONFIG", "SET", "sessiongate.keyring-file", ""]);
    k.expect(c, args!["SESSIONGATE.KEYRING", "LIST"], Want::Array(0));
    k.expect(
        c,
        args!["SESSIONGATE.KEYRING", "RELOAD"],
        Want::ErrorStarting("ERR no keyring file is configured"),
    );
    let _ = std::fs::write(file, good);
    k.ok(c, args!["CONFIG", "SET", "sessiongate.keyring-file", path]);
    k.expect(c, args!["SESSIONGATE.KEYRING", "LIST"], Want::Array(2));
    k.expect(
        c,
        args!["SESSIONGATE.KEYRING", "nope"],
        Want::ErrorStarting("ERR unknown subcommand"),
    );
    k.expect(
        c,
        args!["SESSIONGATE.KEYRING"],
        Want::ErrorStarting(WRONG_ARITY),
    );
    k.expect(
        c,
        args!["COMMAND", "INFO", "SESSIONGATE.KEYRING"],
        Want::Array(1),
    );
    k.expect(
        c,
        args!["COMMAND", "DOCS", "SESSIONGATE.KEYRING"],
        Want::Any,
    );
    k.ok(
        c,
        args!["CONFIG", "SET", "sessiongate.allow-raw-keys", "no"],
    );
    k.ok(
        c,
        args!["CONFIG", "SET", "sessiongate.allow-raw-keys", "yes"],
    );
    k.ok(c, args!["CONFIG", "SET", "sessiongate.token-version", "2"]);
    k.ok(c, args!["CONFIG", "SET", "sessiongate.token-version", "1"]);
}

/// v2 sessions, `@ring` keyrefs and the lifecycle commands, with their
/// errors: START options, ROTATE (v1 and v2), the owner index (OSTART with
/// LIMIT, OLIST in both protocols, OEND's three forms), INSPECT.
fn lifecycle(c: &mut Connection, c3: &mut Connection, k: &mut Checks) {
    let v2_token = |k: &mut Checks, c: &mut Connection, args: &[&[u8]]| -> String {
        match k.expect(c, args, Want::TokenV2) {
            Some(Value::BulkString(token)) => String::from_utf8_lossy(&token).into_owned(),
            _ => String::new(),
        }
    };
    k.err(
        c,
        args!["SESSIONGATE.START", "@nope", "10"],
        "the keyring nope does not exist",
    );
    let ring = v2_token(
        k,
        c,
        args![
            "SESSIONGATE.START",
            "@app",
            "100",
            "MAXLIFE",
            "50",
            "LABEL",
            "phone"
        ],
    );
    k.ok(c, args!["SESSIONGATE.PSET", "@app", ring, "n", "d"]);
    k.ok(c, args!["SESSIONGATE.EXPIRE", "@app", ring, "1000"]);
    k.expect(
        c,
        args!["SESSIONGATE.INSPECT", "@app", ring],
        Want::Array(18),
    );
    k.expect(
        c3,
        args!["SESSIONGATE.INSPECT", "@app", ring],
        Want::Array(18),
    );
    k.expect(
        c,
        args!["SESSIONGATE.START", KEY, "10", "x"],
        Want::ErrorStarting(WRONG_ARITY),
    );
    k.err(
        c,
        args!["SESSIONGATE.START", KEY, "10", "MAXLIFE", "0"],
        "<maxlife> must be a valid integer that represents seconds",
    );
    k.err(
        c,
        args!["SESSIONGATE.START", KEY, "10", "LABEL", ""],
        "<label> must have at least one character",
    );
    let rotated = v2_token(k, c, args!["SESSIONGATE.ROTATE", "@app", ring, "TTL", "60"]);
    k.err(c, args!["SESSIONGATE.PGET", "@app", ring, "n"], NO_SESSION);
    k.expect(
        c,
        args!["SESSIONGATE.PGET", "@app", rotated, "n"],
        Want::Bulk(b"d"),
    );
    let one = k.start(c, KEY, "100");
    k.ok(c, args!["SESSIONGATE.PMSET", KEY, one, "a", "1", "b", "2"]);
    let two = v2_token(k, c, args!["SESSIONGATE.ROTATE", KEY, one]);
    k.expect(c3, args!["SESSIONGATE.PGETALL", KEY, two], Want::Array(4));
    let ghost = v2_token(k, c, args!["SESSIONGATE.ROTATE", KEY, two, "TTL", "0"]);
    k.err(c, args!["SESSIONGATE.TTL", KEY, ghost], NO_SESSION);

    let mut owned = Vec::new();
    for label in ["a", "b", "c"] {
        owned.push(v2_token(
            k,
            c,
            args![
                "SESSIONGATE.OSTART",
                KEY,
                "user{1}",
                "100",
                "LABEL",
                label,
                "LIMIT",
                "2"
            ],
        ));
    }
    k.err(
        c,
        args![
            "SESSIONGATE.OSTART",
            KEY,
            "user{1}",
            "100",
            "LIMIT",
            "2",
            "REJECT"
        ],
        "the owner has reached the maximum number of sessions allowed of 2",
    );
    k.err(
        c,
        args!["SESSIONGATE.OSTART", KEY, "", "100"],
        "<owner> must have at least one character",
    );
    k.err(
        c,
        args!["SESSIONGATE.OSTART", KEY, "o", "100", "LIMIT", "0"],
        "<limit> must be a positive integer",
    );
    k.expect(
        c,
        args!["SESSIONGATE.OLIST", KEY, "user{1}"],
        Want::Array(2),
    );
    k.expect(
        c3,
        args!["SESSIONGATE.OLIST", KEY, "user{1}"],
        Want::Array(2),
    );
    let last = owned.last().cloned().unwrap_or_default();
    let moved = v2_token(k, c, args!["SESSIONGATE.ROTATE", KEY, last]);
    k.expect(
        c,
        args!["SESSIONGATE.OLIST", KEY, "user{1}"],
        Want::Array(2),
    );
    k.expect(
        c,
        args!["SESSIONGATE.OLIST", "@app", "user{1}"],
        Want::Array(0),
    );
    k.err(
        c,
        args!["SESSIONGATE.OEND", KEY, "user{1}", "ID", "short"],
        "<id> format is invalid",
    );
    k.err(
        c,
        args!["SESSIONGATE.OEND", "@app", "user{1}", "EXCEPT", rotated],
        "the session contained in <token> does not belong to <owner>",
    );
    k.expect(
        c,
        args!["SESSIONGATE.OEND", KEY, "user{1}", "ID", "AbCdEfGh01234567"],
        Want::Int,
    );
    k.expect(
        c,
        args!["SESSIONGATE.OEND", KEY, "user{1}", "EXCEPT", moved],
        Want::Int,
    );
    k.expect(c, args!["SESSIONGATE.OEND", KEY, "user{1}"], Want::Int);
    k.ok(c, args!["SESSIONGATE.END", "@app", rotated]);
    k.err(c, args!["SESSIONGATE.END", KEY, two], NO_SESSION);
}

/// A keyring file of two rings, in a directory of its own.
fn keyring_file() -> PathBuf {
    use base64::Engine;
    let secret = |n: u8| base64::engine::general_purpose::STANDARD.encode([n; 32]);
    let path = fresh_dir().join("keyring");
    let _ = std::fs::write(
        &path,
        format!(
            "app primary {}\napp verify {}\nother primary {}\n",
            secret(4),
            secret(5),
            secret(6)
        ),
    );
    path
}

/// MULTI/EXEC, Lua, COMMAND, INFO, the slow log.
fn around_the_commands(c: &mut Connection, k: &mut Checks, live: &str) {
    k.ok(c, args!["MULTI"]);
    k.expect(c, args!["SESSIONGATE.START", KEY, "100"], Want::Any);
    k.expect(c, args!["SESSIONGATE.PSET", KEY, live, "m", "1"], Want::Any);
    k.expect(c, args!["SESSIONGATE.PGET", KEY, live, "m"], Want::Any);
    k.expect(c, args!["EXEC"], Want::Array(3));
    let script = "local t = redis.call('SESSIONGATE.START', ARGV[1], '100') \
                  redis.call('SESSIONGATE.PMSET', ARGV[1], t, 'a', '1', 'b', '2') \
                  local all = redis.call('SESSIONGATE.PGETALL', ARGV[1], t) \
                  local e = redis.pcall('SESSIONGATE.PGET', ARGV[1], t, 'zz') \
                  redis.call('SESSIONGATE.END', ARGV[1], t) \
                  return {t, #all, e['err']}";
    k.expect(c, args!["EVAL", script, "0", KEY], Want::Array(3));
    k.expect(
        c,
        args![
            "EVAL",
            "return redis.call('SESSIONGATE.PGET', ARGV[1], KEYS[1], 'b')",
            "1",
            live,
            KEY
        ],
        Want::Any,
    );
    k.expect(
        c,
        args!["EVAL", "return redis.call('SESSIONGATE.START')", "0"],
        Want::ErrorStarting("ERR"),
    );
    for command in COMMANDS {
        k.expect(c, args!["COMMAND", "INFO", command], Want::Array(1));
        k.expect(c, args!["COMMAND", "DOCS", command], Want::Any);
    }
    k.expect(
        c,
        args!["COMMAND", "GETKEYS", "SESSIONGATE.PGET", KEY, live, "a"],
        Want::Array(1),
    );
    k.expect(
        c,
        args!["COMMAND", "LIST", "FILTERBY", "MODULE", "sessiongate"],
        Want::Array(16),
    );
    k.expect(c, args!["COMMAND", "COUNT"], Want::Int);
    for section in [
        "sessiongate",
        "modules",
        "everything",
        "all",
        "commandstats",
    ] {
        k.expect(c, args!["INFO", section], Want::Any);
    }
    k.expect(c, args!["MODULE", "LIST"], Want::Array(1));
    // Every call was logged (slowlog-log-slower-than 0), the module's own
    // and those from Lua, with the sign key redacted. (Other commands, EVAL
    // for one, show their arguments as they are.)
    if let Some(Value::Array(entries)) = k.expect(c, args!["SLOWLOG", "GET", "1000"], Want::Any) {
        let mut module_calls = 0;
        for entry in &entries {
            let Value::Array(fields) = entry else {
                continue;
            };
            let Some(Value::Array(words)) = fields.get(3) else {
                continue;
            };
            let words: Vec<&[u8]> = words
                .iter()
                .filter_map(|w| match w {
                    Value::BulkString(b) => Some(b.as_slice()),
                    _ => None,
                })
                .collect();
            if words
                .first()
                .is_some_and(|w| w.to_ascii_lowercase().starts_with(b"sessiongate."))
            {
                module_calls += 1;
                k.check(
                    !words.contains(&KEY),
                    format!("the sign key is in SLOWLOG: {}", show(&words)),
                );
            }
        }
        k.check(
            module_calls > 10,
            format!("SLOWLOG has {module_calls} module calls"),
        );
    }
    k.ok(c, args!["SLOWLOG", "RESET"]);
}

/// Sessions by the hundred, pipelined: a leak per call shows as hundreds of
/// blocks.
fn volume(c: &mut Connection, k: &mut Checks, rounds: usize, per_round: usize) {
    for round in 0..rounds {
        let mut pipe = redis::pipe();
        for _ in 0..per_round {
            pipe.cmd("SESSIONGATE.START").arg(KEY).arg(1000);
        }
        let tokens: Vec<String> = match pipe.query(c) {
            Ok(tokens) => tokens,
            Err(e) => {
                k.failures.push(format!("volume START: {e}"));
                return;
            }
        };
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        let mut expected_errors = 0;
        for (i, t) in tokens.iter().enumerate() {
            let data = format!("{round}-{i}-{}", "x".repeat(100));
            pipe.cmd("SESSIONGATE.PSET")
                .arg(KEY)
                .arg(t)
                .arg("user")
                .arg(&data);
            pipe.cmd("SESSIONGATE.PMSET")
                .arg(KEY)
                .arg(t)
                .arg("a")
                .arg(&data)
                .arg("b")
                .arg(&data);
            pipe.cmd("SESSIONGATE.PGET").arg(KEY).arg(t).arg("user");
            pipe.cmd("SESSIONGATE.PMGET")
                .arg(KEY)
                .arg(t)
                .arg("a")
                .arg("b")
                .arg("c");
            pipe.cmd("SESSIONGATE.PGETALL").arg(KEY).arg(t);
            pipe.cmd("SESSIONGATE.TTL").arg(KEY).arg(t);
            pipe.cmd("SESSIONGATE.EXPIRE").arg(KEY).arg(t).arg(500);
            pipe.cmd("SESSIONGATE.PDEL").arg(KEY).arg(t).arg("a");
            pipe.cmd("SESSIONGATE.PGET").arg(KEY).arg(t).arg("a"); // no payload
            pipe.cmd("SESSIONGATE.PGET").arg(OTHER_KEY).arg(t).arg("a"); // forged
            expected_errors += 2;
            match i % 3 {
                0 => {
                    pipe.cmd("SESSIONGATE.END").arg(KEY).arg(t);
                }
                1 => {
                    pipe.cmd("SESSIONGATE.EXPIRE").arg(KEY).arg(t).arg(0);
                }
                _ => {}
            }
        }
        match pipe.query::<Vec<Value>>(c) {
            Ok(replies) => {
                let errors = replies
                    .iter()
                    .filter(|v| matches!(v, Value::ServerError(_)))
                    .count();
                k.calls += replies.len() as u64;
                k.check(
                    errors == expected_errors,
                    format!("volume: {errors} error replies, {expected_errors} expected"),
                );
            }
            Err(e) => k.failures.push(format!("volume: {e}")),
        }
    }
}

/// Sessions that time out: found gone by lazy expiry, and reclaimed by
/// active expiry.
fn expiry(c: &mut Connection, k: &mut Checks) {
    let before: u64 = redis::cmd("DBSIZE").query(c).unwrap_or(0);
    let tokens: Vec<String> = (0..40).map(|_| k.start(c, KEY, "1")).collect();
    for t in &tokens {
        k.ok(c, args!["SESSIONGATE.PMSET", KEY, t, "a", "1", "b", "2"]);
    }
    sleep(Duration::from_millis(2500));
    for t in &tokens[..10] {
        k.err(c, args!["SESSIONGATE.PGET", KEY, t, "a"], NO_SESSION);
        k.err(c, args!["SESSIONGATE.EXPIRE", KEY, t, "100"], NO_SESSION);
    }
    wait_until("active expiry", k, || {
        redis::cmd("DBSIZE").query::<u64>(c).unwrap_or(u64::MAX) <= before
    });
}

fn persistence(c: &mut Connection, k: &mut Checks) {
    k.expect(c, args!["BGREWRITEAOF"], Want::Any);
    wait_until("BGREWRITEAOF", k, || {
        info_field(c, "persistence", "aof_rewrite_in_progress").as_deref() == Some("0")
            && info_field(c, "persistence", "aof_rewrite_scheduled").as_deref() == Some("0")
    });
    k.expect(c, args!["DEBUG", "RELOAD"], Want::Ok);
}

/// Master and replica: everything above, events, MONITOR, and the replica.
fn master_and_replica(k: &mut Checks, launched: &mut Vec<Launched>) {
    let keyring = keyring_file();
    let master = launch(
        "master",
        Server::start(&[
            "max-payload-name-len",
            "64",
            "max-payload-data-len",
            "2000000",
            "keyring-file",
            &keyring.display().to_string(),
            "--enable-protected-configs",
            "yes",
            "--notify-keyspace-events",
            "KEA",
            "--appendonly",
            "yes",
            "--slowlog-log-slower-than",
            "0",
            "--enable-debug-command",
            "local",
        ]),
        launched,
    );
    let port = master.port.to_string();
    let replica = launch(
        "replica",
        Server::start(&["--replicaof", "127.0.0.1", &port]),
        launched,
    );
    let mut r = replica.connection();
    wait_until("the replica's link", k, || {
        info_field(&mut r, "replication", "master_link_status").as_deref() == Some("up")
    });

    // A subscriber to every event, and a MONITOR, each on its own thread.
    let mut subscriber = master.connection();
    let events = std::thread::spawn(move || {
        let mut seen = BTreeSet::new();
        let mut pubsub = subscriber.as_pubsub();
        let _ = pubsub.set_read_timeout(Some(DEADLINE));
        if pubsub.psubscribe("__keyevent@0__:*").is_err()
            || pubsub.subscribe("leakcheck-done").is_err()
        {
            return seen;
        }
        while let Ok(message) = pubsub.get_message() {
            let channel = message.get_channel_name().to_string();
            if channel == "leakcheck-done" {
                break;
            }
            seen.insert(channel.trim_start_matches("__keyevent@0__:").to_string());
        }
        seen
    });
    let mut monitor = master.connection();
    let monitored = std::thread::spawn(move || {
        let mut lines = 0u64;
        let mut sign_key_seen = false;
        let _ = monitor.set_read_timeout(Some(Duration::from_secs(30)));
        if redis::cmd("MONITOR").query::<Value>(&mut monitor).is_err() {
            return (lines, sign_key_seen);
        }
        // `<time> [<db> <client>] "<command>" "<argument>" …`; the sign key
        // must show in no module command (EVAL shows its own arguments).
        while let Ok(Value::SimpleString(line)) = monitor.recv_response() {
            if line.contains("leakcheck-monitor-done") {
                break;
            }
            let words = line.split_once("] ").map_or("", |(_, words)| words);
            if words.to_ascii_lowercase().starts_with("\"sessiongate.") {
                sign_key_seen |= words.contains(&*String::from_utf8_lossy(KEY));
            }
            lines += 1;
        }
        (lines, sign_key_seen)
    });
    sleep(Duration::from_millis(500));

    let mut c = master.connection();
    let mut c3 = master.connection_resp3();
    argument_errors(&mut c, k);
    let live = session_life(&mut c, &mut c3, k);
    configurations(&mut c, k);
    keyrings(&mut c, k, &keyring);
    lifecycle(&mut c, &mut c3, k);
    around_the_commands(&mut c, k, &live);
    k.expect(
        &mut c,
        args!["ECHO", "leakcheck-monitor-done"],
        Want::Bulk(b"leakcheck-monitor-done"),
    );
    volume(&mut c, k, 3, 300);
    expiry(&mut c, k);
    persistence(&mut c, k);

    // The replica has every session, serves reads, refuses writes.
    k.expect(&mut c, args!["WAIT", "1", "60000"], Want::Int);
    let (m, rr): (u64, u64) = (
        redis::cmd("DBSIZE").query(&mut c).unwrap_or(0),
        redis::cmd("DBSIZE").query(&mut r).unwrap_or(1),
    );
    k.check(m == rr, format!("DBSIZE: master {m}, replica {rr}"));
    k.expect(
        &mut r,
        args!["SESSIONGATE.PGET", KEY, live, "b"],
        Want::Bulk(b"2"),
    );
    k.expect(
        &mut r,
        args!["SESSIONGATE.PMGET", KEY, live, "b", "c", "x"],
        Want::Array(3),
    );
    k.expect(&mut r, args!["SESSIONGATE.PGETALL", KEY, live], Want::Any);
    k.expect(&mut r, args!["SESSIONGATE.TTL", KEY, live], Want::Int);
    k.err(
        &mut r,
        args!["SESSIONGATE.PGET", KEY, live, "zz"],
        NO_PAYLOAD,
    );
    k.expect(
        &mut r,
        args!["SESSIONGATE.PSET", KEY, live, "a", "1"],
        Want::ErrorStarting("READONLY"),
    );
    k.expect(
        &mut r,
        args!["SESSIONGATE.START", KEY, "10"],
        Want::ErrorStarting("READONLY"),
    );

    k.expect(&mut c, args!["PUBLISH", "leakcheck-done", "1"], Want::Int);
    let seen = events.join().unwrap_or_default();
    for event in [
        "sessiongate.start",
        "sessiongate.pset",
        "sessiongate.pdel",
        "sessiongate.expire",
        "sessiongate.end",
        "expired",
    ] {
        k.check(seen.contains(event), format!("no {event} event received"));
    }
    let (lines, sign_key_seen) = monitored.join().unwrap_or((0, true));
    k.check(lines > 100, format!("MONITOR saw {lines} commands"));
    k.check(!sign_key_seen, "the sign key is in MONITOR's feed");

    // Empty at exit: what is left allocated is then not a session.
    k.ok(&mut c, args!["FLUSHALL", "SYNC"]);
    k.expect(&mut c, args!["WAIT", "1", "60000"], Want::Int);
    drop((c, c3, r));
    stop(replica, k);
    stop(master, k);
    if let Some(dir) = keyring.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// A module that panics on purpose (debug builds), then MODULE UNLOAD and
/// MODULE LOAD, twice.
fn panics_and_reloads(k: &mut Checks, launched: &mut Vec<Launched>) {
    let server = launch(
        "panics+reload",
        Server::start_with_env(
            fresh_dir(),
            &["--enable-module-command", "local"],
            &[("SESSIONGATE_TEST_PANIC_SIGN_KEY", PANIC_KEY)],
        ),
        launched,
    );
    let mut c = server.connection();
    let module = common::module_path().display().to_string();
    // Before any command: unloaded, then a load with a bad argument refused
    // on a running server, then loaded again.
    k.ok(&mut c, args!["MODULE", "UNLOAD", "sessiongate"]);
    k.expect(
        &mut c,
        args!["MODULE", "LOAD", module, "max-payload-name-len", "0"],
        Want::ErrorStarting("ERR Error loading the extension"),
    );
    k.ok(&mut c, args!["MODULE", "LOAD", module]);
    let t = k.start(&mut c, KEY, "100");
    let debug_build = matches!(
        call(&mut c, args!["SESSIONGATE.START", PANIC_KEY, "100"]),
        Err(e) if e == INTERNAL
    );
    if debug_build {
        for call in token_commands(PANIC_KEY.as_ref(), t.as_ref()) {
            k.err(&mut c, &call, INTERNAL);
        }
        // The trigger fires before any check, wrong arity included.
        k.err(&mut c, args!["SESSIONGATE.PGET", PANIC_KEY], INTERNAL);
        let log = std::fs::read_to_string(server.dir.join("redis.log")).unwrap_or_default();
        let logged = log.matches("panic in a module command").count();
        k.check(
            logged == 11,
            format!("{logged} panics in the log, 11 expected"),
        );
        k.notes
            .push(format!("panic guard: {logged} panics caught and logged"));
    } else {
        k.notes
            .push("panic guard not exercised: a release build has no test trigger".into());
    }
    k.expect(&mut c, args!["PING"], Want::Any);
    k.ok(&mut c, args!["SESSIONGATE.PSET", KEY, t, "a", "1"]);
    for round in 0..2 {
        k.ok(&mut c, args!["MODULE", "UNLOAD", "sessiongate"]);
        k.expect(
            &mut c,
            args!["SESSIONGATE.PGET", KEY, t, "a"],
            Want::ErrorStarting("ERR unknown command"),
        );
        if round == 0 {
            k.ok(
                &mut c,
                args!["MODULE", "LOAD", module, "max-payload-name-len", "10"],
            );
        } else {
            // Refused, on a running server that does not have the module.
            k.expect(
                &mut c,
                args!["MODULE", "LOAD", module, "max-payload-data-len", "abc"],
                Want::ErrorStarting("ERR Error loading the extension"),
            );
            k.ok(&mut c, args!["MODULE", "LOAD", module]);
        }
        k.expect(
            &mut c,
            args!["SESSIONGATE.PGET", KEY, t, "a"],
            Want::Bulk(b"1"),
        );
        let u = k.start(&mut c, KEY, "100");
        k.ok(
            &mut c,
            args!["SESSIONGATE.PMSET", KEY, u, "x", "1", "y", "2"],
        );
        k.expect(&mut c, args!["SESSIONGATE.PGETALL", KEY, u], Want::Array(4));
        k.ok(&mut c, args!["SESSIONGATE.END", KEY, u]);
        k.expect(&mut c, args!["INFO", "sessiongate"], Want::Any);
    }
    // Loaded already: refused by Redis before the module's own checks.
    k.expect(
        &mut c,
        args!["MODULE", "LOAD", module, "max-payload-name-len", "0"],
        Want::ErrorStarting("ERR Error loading the extension"),
    );
    k.expect(
        &mut c,
        args!["SESSIONGATE.PGET", KEY, t, "a"],
        Want::Bulk(b"1"),
    );
    k.ok(&mut c, args!["FLUSHALL", "SYNC"]);
    drop(c);
    stop(server, k);
}

fn cluster_state_ok(c: &mut Connection) -> bool {
    redis::cmd("CLUSTER")
        .arg("INFO")
        .query::<String>(c)
        .is_ok_and(|info| info.contains("cluster_state:ok"))
}

/// A one-node cluster: START's cluster path (slots read with CLUSTER SLOTS
/// through RM_Call, keys checked with EXISTS), slots taken away under its
/// cached view, and a node with no slot.
fn cluster(k: &mut Checks, launched: &mut Vec<Launched>) {
    let options = [
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-require-full-coverage",
        "no",
    ];
    let node = launch("cluster node", Server::start(&options), launched);
    let empty = launch("cluster node, no slot", Server::start(&options), launched);
    let mut c = node.connection();
    k.ok(&mut c, args!["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]);
    wait_until("cluster_state:ok", k, || cluster_state_ok(&mut c));
    let mut tokens = Vec::new();
    for _ in 0..20 {
        tokens.push(k.start(&mut c, KEY, "1000"));
    }
    for t in &tokens {
        k.ok(&mut c, args!["SESSIONGATE.PSET", KEY, t, "a", "1"]);
        k.ok(
            &mut c,
            args!["SESSIONGATE.PMSET", KEY, t, "b", "1", "c", "2"],
        );
        k.expect(
            &mut c,
            args!["SESSIONGATE.PGET", KEY, t, "a"],
            Want::Bulk(b"1"),
        );
        k.expect(&mut c, args!["SESSIONGATE.PGETALL", KEY, t], Want::Array(6));
        k.ok(&mut c, args!["SESSIONGATE.PDEL", KEY, t, "b"]);
        k.ok(&mut c, args!["SESSIONGATE.EXPIRE", KEY, t, "500"]);
    }
    // Most slots go, while the module's view (cached for a second) still
    // has them: START must find out through EXISTS and read the slots again.
    k.ok(&mut c, args!["CLUSTER", "DELSLOTSRANGE", "0", "16000"]);
    for _ in 0..10 {
        k.start(&mut c, KEY, "1000");
    }
    sleep(Duration::from_millis(1200));
    for _ in 0..10 {
        k.start(&mut c, KEY, "1000");
    }
    for t in &tokens {
        k.expect(&mut c, args!["SESSIONGATE.END", KEY, t], Want::Any);
    }
    let mut e = empty.connection();
    k.expect(
        &mut e,
        args!["SESSIONGATE.START", KEY, "100"],
        Want::ErrorStarting(NO_SERVED_SLOT),
    );
    k.expect(
        &mut e,
        args!["SESSIONGATE.PGET", KEY, tokens[0], "a"],
        Want::Any,
    );
    k.ok(&mut c, args!["FLUSHALL", "SYNC"]);
    drop((c, e));
    stop(empty, k);
    stop(node, k);
}

/// The module refuses to load: the server exits by itself.
fn refused_loads(k: &mut Checks, launched: &mut Vec<Launched>) {
    // A keyring file that parses but breaks a rule: refused in the set
    // callback, inside RedisModule_LoadConfigs, after every registration.
    let bad_keyring = fresh_dir().join("keyring");
    let _ = std::fs::write(&bad_keyring, "app verify AAECAwQFBgcICQoLDA0ODw==\n");
    for (role, extra) in [
        (
            "refused load: limit 0",
            ["max-payload-name-len".to_string(), "0".into()],
        ),
        (
            "refused load: not a number",
            ["max-payload-data-len".into(), "abc".into()],
        ),
        (
            "refused load: bad keyring file",
            ["keyring-file".into(), bad_keyring.display().to_string()],
        ),
    ] {
        launched.push(Launched {
            role,
            marker: format!("libsessiongate.so {}", extra.join(" ")),
        });
        let extra = extra.each_ref().map(String::as_str);
        let failure = Server::fails_to_start(&extra);
        k.check(
            failure.contains("exited at start-up"),
            format!("{role}: {failure}"),
        );
    }
    if let Some(dir) = bad_keyring.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
#[ignore = "make leakcheck: needs redis-servers under valgrind (scripts/leakcheck), minutes long"]
fn every_command_and_path_under_valgrind_loses_no_byte_and_makes_no_memory_error() {
    let dir =
        PathBuf::from(std::env::var_os("LEAKCHECK_DIR").expect(
            "LEAKCHECK_DIR: where valgrind writes its logs (run this with `make leakcheck`)",
        ));
    let server = std::env::var("REDIS_SERVER").unwrap_or_default();
    println!(
        "sessiongate leakcheck: module {}, servers run by {server}, valgrind logs in {}",
        common::module_path().display(),
        dir.display()
    );
    let started = Instant::now();
    let mut k = Checks::default();
    let mut launched = Vec::new();
    type Step = fn(&mut Checks, &mut Vec<Launched>);
    let steps: [(&str, Step); 4] = [
        ("master and replica", master_and_replica),
        ("panics and reloads", panics_and_reloads),
        ("cluster", cluster),
        ("refused loads", refused_loads),
    ];
    for (name, step) in steps {
        let t = Instant::now();
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| step(&mut k, &mut launched)));
        if outcome.is_err() {
            k.failures
                .push(format!("{name}: the workload panicked (see above)"));
        }
        println!("  {name}: {:.0} s", t.elapsed().as_secs_f64());
    }
    let allow_known = !std::env::var("LEAKCHECK_STRICT").is_ok_and(|v| v == "1");
    let mut failures = std::mem::take(&mut k.failures);
    failures.extend(judge(&dir, &launched, allow_known));
    println!(
        "workload: {} calls checked, {:.0} s",
        k.calls,
        started.elapsed().as_secs_f64()
    );
    for note in &k.notes {
        println!("  {note}");
    }
    if failures.is_empty() {
        println!("\nleakcheck: PASS (no byte definitely or indirectly lost, no memory error in the module)");
        return;
    }
    println!("\nleakcheck: FAIL");
    for failure in &failures {
        println!("  - {failure}");
    }
    panic!("leakcheck: {} failures (listed above)", failures.len());
}
