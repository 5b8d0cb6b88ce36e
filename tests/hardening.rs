//! docs/compatibility.md#differences: where this module is deliberately
//! better than the C one.

mod common;

use common::errors::{BAD_TTL, FORGED_SIGNATURE, INTERNAL, NO_SESSION};
use common::*;
use redis::Connection;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

const KEY: &str = "mykey";

fn dbsize(con: &mut Connection) -> i64 {
    redis::cmd("DBSIZE").query(con).unwrap()
}

#[test]
fn a_ttl_that_overflows_now_plus_milliseconds_is_rejected() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let token = start(&mut con, KEY, 100);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // Seconds whose milliseconds fit in an i64 but not once now is added.
    let past_the_end = (i64::MAX - now_ms) / 1000 + 1;
    // Seconds whose milliseconds alone do not fit.
    let too_many_ms = i64::MAX / 1000 + 1;
    for ttl in [past_the_end, too_many_ms, i64::MAX] {
        let ttl = ttl.to_string();
        assert_eq!(
            err(&mut con, &["SESSIONGATE.START", KEY, &ttl]),
            BAD_TTL,
            "START {ttl}"
        );
        assert_eq!(
            err(&mut con, &["SESSIONGATE.EXPIRE", KEY, &token, &ttl]),
            BAD_TTL,
            "EXPIRE {ttl}"
        );
    }
    // A far but representable expiry is fine: a thousand years.
    let millennium = (1000 * 365 * 24 * 3600_i64).to_string();
    let long = ok_bytes(&mut con, &["SESSIONGATE.START", KEY, &millennium]);
    assert_eq!(long.len(), 84);
    assert_eq!(
        call(&mut con, &["SESSIONGATE.EXPIRE", KEY, &token, &millennium]),
        Ok(Value::Okay)
    );
}

#[test]
fn ttl_zero_means_gone_at_once() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let token = start(&mut con, KEY, 0);
    assert_eq!(token.len(), 84, "START 0 still replies with a token");
    assert_eq!(dbsize(&mut con), 0, "and stores nothing");
    assert_eq!(
        err(&mut con, &["SESSIONGATE.PGET", KEY, &token, "a"]),
        NO_SESSION
    );

    let token = start(&mut con, KEY, 100);
    ok_bytes(&mut con, &["SESSIONGATE.PSET", KEY, &token, "a", "1"]);
    assert_eq!(dbsize(&mut con), 2);
    assert_eq!(
        call(&mut con, &["SESSIONGATE.EXPIRE", KEY, &token, "0"]),
        Ok(Value::Okay)
    );
    assert_eq!(dbsize(&mut con), 0, "EXPIRE 0 deletes both keys");
    assert_eq!(
        err(&mut con, &["SESSIONGATE.PGET", KEY, &token, "a"]),
        NO_SESSION
    );
}

/// One command's flags and key positions as COMMAND INFO reports them.
fn command_info(con: &mut Connection, name: &str) -> (HashSet<String>, i64, i64, i64) {
    let info: Vec<Value> = redis::cmd("COMMAND")
        .arg("INFO")
        .arg(name)
        .query(con)
        .unwrap();
    let Some(Value::Array(fields)) = info.first() else {
        panic!("no COMMAND INFO for {name}: {info:?}")
    };
    let flags = match &fields[2] {
        Value::Array(flags) | Value::Set(flags) => flags
            .iter()
            .map(|f| redis::from_redis_value_ref::<String>(f).unwrap())
            .collect(),
        other => panic!("flags: {other:?}"),
    };
    let int = |v: &Value| redis::from_redis_value_ref::<i64>(v).unwrap();
    (flags, int(&fields[3]), int(&fields[4]), int(&fields[5]))
}

#[test]
fn flags_and_key_positions_are_declared() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let expected = [
        (
            "sessiongate.start",
            &["write", "denyoom", "fast"][..],
            &["readonly"][..],
            (0, 0, 0),
        ),
        (
            "sessiongate.expire",
            &["write", "fast"],
            &["readonly", "denyoom"],
            (2, 2, 1),
        ),
        (
            "sessiongate.pset",
            &["write", "denyoom", "fast"],
            &["readonly"],
            (2, 2, 1),
        ),
        (
            "sessiongate.pget",
            &["readonly", "fast"],
            &["write", "denyoom"],
            (2, 2, 1),
        ),
        (
            "sessiongate.pdel",
            &["write", "fast"],
            &["readonly", "denyoom"],
            (2, 2, 1),
        ),
        (
            "sessiongate.end",
            &["write", "fast"],
            &["readonly", "denyoom"],
            (2, 2, 1),
        ),
    ];
    for (name, has, lacks, keys) in expected {
        let (flags, first, last, step) = command_info(&mut con, name);
        for flag in has {
            assert!(flags.contains(*flag), "{name} lacks {flag}: {flags:?}");
        }
        for flag in lacks {
            assert!(!flags.contains(*flag), "{name} has {flag}: {flags:?}");
        }
        assert_eq!((first, last, step), keys, "{name} key positions");
    }
}

#[test]
fn command_getkeys_names_the_token() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let token = start(&mut con, KEY, 100);
    let cases: [&[&str]; 5] = [
        &["SESSIONGATE.EXPIRE", KEY, &token, "10"],
        &["SESSIONGATE.PSET", KEY, &token, "n", "d"],
        &["SESSIONGATE.PGET", KEY, &token, "n"],
        &["SESSIONGATE.PDEL", KEY, &token, "n"],
        &["SESSIONGATE.END", KEY, &token],
    ];
    for args in cases {
        let keys: Vec<String> = redis::cmd("COMMAND")
            .arg("GETKEYS")
            .arg(args)
            .query(&mut con)
            .unwrap();
        assert_eq!(keys, vec![token.clone()], "{}", args[0]);
    }
    let start_keys = call(
        &mut con,
        &["COMMAND", "GETKEYS", "SESSIONGATE.START", KEY, "10"],
    );
    assert!(start_keys.is_err(), "START declares no key: {start_keys:?}");
}

const SECRET: &str = "s3cr3t-sign-key-do-not-log";

/// Successful, failing and wrong-arity calls of every command, all with SECRET.
fn calls_with_the_secret(con: &mut Connection) {
    let token = start(con, SECRET, 100);
    ok_bytes(con, &["SESSIONGATE.PSET", SECRET, &token, "n", "d"]);
    ok_bytes(con, &["SESSIONGATE.PGET", SECRET, &token, "n"]);
    ok_bytes(con, &["SESSIONGATE.EXPIRE", SECRET, &token, "100"]);
    ok_bytes(con, &["SESSIONGATE.PDEL", SECRET, &token, "n"]);
    ok_bytes(con, &["SESSIONGATE.END", SECRET, &token]);
    let failing: [&[&str]; 8] = [
        &["SESSIONGATE.START", SECRET, "bad-ttl"],
        &["SESSIONGATE.EXPIRE", SECRET, "bad-token", "1"],
        &["SESSIONGATE.PSET", SECRET, &token, "n", "d"],
        &["SESSIONGATE.PGET", SECRET, &token, ""],
        &["SESSIONGATE.PDEL", SECRET, "", "n"],
        &["SESSIONGATE.END", SECRET, &token],
        &["SESSIONGATE.START", SECRET],
        &["SESSIONGATE.PGET", SECRET, &token, "n", "extra"],
    ];
    for args in failing {
        err(con, args);
    }
}

#[test]
fn the_sign_key_never_reaches_the_slowlog() {
    let server = Server::start(&[
        "--slowlog-log-slower-than",
        "0",
        "--slowlog-max-len",
        "1000",
    ]);
    let mut con = server.connection();
    calls_with_the_secret(&mut con);
    let entries: Vec<Value> = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(1000)
        .query(&mut con)
        .unwrap();
    let dump = format!("{entries:?}");
    assert!(!dump.contains(SECRET), "the sign key is in SLOWLOG: {dump}");
    let redacted = dump.matches("(redacted)").count();
    assert!(
        redacted >= 14,
        "expected every call redacted, saw {redacted}: {dump}"
    );
}

#[test]
fn the_sign_key_never_reaches_monitor() {
    let server = Server::start(&[]);
    let mut monitor = UnixStream::connect(server.socket()).unwrap();
    monitor
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    monitor.write_all(b"MONITOR\r\n").unwrap();
    let mut lines = BufReader::new(monitor);
    let mut first = String::new();
    lines.read_line(&mut first).unwrap();
    assert_eq!(first, "+OK\r\n");

    let mut con = server.connection();
    calls_with_the_secret(&mut con);
    let _: () = redis::cmd("SET")
        .arg("monitor-end")
        .arg("1")
        .query(&mut con)
        .unwrap();

    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let mut line = String::new();
        lines.read_line(&mut line).unwrap();
        if line.contains("monitor-end") {
            break;
        }
        seen.push(line);
    }
    let dump = seen.concat();
    assert!(!dump.contains(SECRET), "the sign key is in MONITOR: {dump}");
    assert!(dump.matches("(redacted)").count() >= 14, "{dump}");
}

#[test]
fn failed_checks_leave_watch_alone_and_writes_trigger_it() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let token = start(&mut con, KEY, 100);
    let sig = signature_key(&token);
    let exec_after = |con: &mut Connection, during: &mut dyn FnMut()| -> Value {
        let _: () = redis::cmd("WATCH").arg(&sig).query(con).unwrap();
        during();
        let _: () = redis::cmd("MULTI").query(con).unwrap();
        let _: () = redis::cmd("PING").query(con).unwrap();
        redis::cmd("EXEC").query(con).unwrap()
    };
    let mut other = server.connection();
    let untouched = exec_after(&mut con, &mut || {
        err(
            &mut other,
            &["SESSIONGATE.EXPIRE", "wrongkey", &token, "10"],
        );
    });
    assert_ne!(
        untouched,
        Value::Nil,
        "a failed EXPIRE must not abort the transaction"
    );
    let touched = exec_after(&mut con, &mut || {
        ok_bytes(&mut other, &["SESSIONGATE.EXPIRE", KEY, &token, "10"]);
    });
    assert_eq!(
        touched,
        Value::Nil,
        "a real EXPIRE must abort a WATCHing transaction"
    );
}

#[test]
fn ids_are_uniform_over_the_62_characters() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let sessions = 7_000; // 112,000 id characters
    let mut pipe = redis::pipe();
    for _ in 0..sessions {
        pipe.cmd("SESSIONGATE.START").arg(KEY).arg(0);
    }
    let tokens: Vec<String> = pipe.query(&mut con).unwrap();
    let ids: HashSet<&str> = tokens.iter().map(|t| id_of(t)).collect();
    assert_eq!(ids.len(), sessions, "ids repeat");

    let mut counts: HashMap<u8, u64> = HashMap::new();
    for id in &ids {
        for b in id.bytes() {
            *counts.entry(b).or_default() += 1;
        }
    }
    assert_eq!(counts.len(), 62, "every one of the 62 characters appears");
    assert!(counts.keys().all(u8::is_ascii_alphanumeric));
    let total = (sessions * 16) as f64;
    let expected = total / 62.0;
    let chi_square: f64 = counts
        .values()
        .map(|&n| (n as f64 - expected).powi(2) / expected)
        .sum();
    // 61 degrees of freedom: P(chi2 > 125) is about 1e-6, so a fair
    // generator fails this once in a million runs; `byte % 62` scores ~700.
    assert!(
        chi_square < 125.0,
        "chi-square {chi_square:.1} over {total} characters"
    );
}

#[test]
fn garbage_arguments_get_error_replies_and_change_nothing() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let token = start(&mut con, KEY, 100);
    ok_bytes(&mut con, &["SESSIONGATE.PSET", KEY, &token, "n", "d"]);
    let commands = ["START", "EXPIRE", "PSET", "PGET", "PDEL", "END"];
    let garbage: [&[u8]; 9] = [
        b"",
        b"\0",
        b"-1",
        b"9223372036854775808",
        b"v1.",
        &[0xff; 84],
        token.as_bytes(),
        &token.as_bytes()[..83],
        b"v1.AAAAAAAAAAAAAAAA.zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
    ];
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed as usize
    };
    for _ in 0..3_000 {
        let command = format!("SESSIONGATE.{}", commands[next() % commands.len()]);
        let mut args: Vec<&[u8]> = vec![command.as_bytes()];
        for _ in 0..next() % 7 {
            args.push(garbage[next() % garbage.len()]);
        }
        // No garbage is a valid ttl, nor a valid token for any garbage key.
        let reply = call(&mut con, &args);
        assert!(reply.is_err(), "{args:?} -> {reply:?}");
    }
    assert_eq!(dbsize(&mut con), 2);
    assert_eq!(
        ok_bytes(&mut con, &["SESSIONGATE.PGET", KEY, &token, "n"]),
        b"d"
    );
    let pong: String = redis::cmd("PING").query(&mut con).unwrap();
    assert_eq!(pong, "PONG");
}

/// Debug builds of the module panic on purpose for the sign key named in
/// the server's environment: the guard must turn that into an error reply
/// and a line in the Redis log, and Redis must carry on.
#[test]
fn a_panic_becomes_an_error_reply_and_a_log_line() {
    let trigger = "panic-please";
    let server = Server::start_with_env(
        fresh_dir(),
        &[],
        &[("SESSIONGATE_TEST_PANIC_SIGN_KEY", trigger)],
    );
    let mut con = server.connection();
    let token = start(&mut con, KEY, 100);
    for args in [
        vec!["SESSIONGATE.START", trigger, "10"],
        vec!["SESSIONGATE.PGET", trigger, &token, "n"],
    ] {
        assert_eq!(err(&mut con, &args), INTERNAL);
    }
    server.wait_for("the panic in the log", || {
        server.log_tail().contains("panic in a module command")
    });
    assert!(server.log_tail().contains("a panic on purpose"));
    ok_bytes(&mut con, &["SESSIONGATE.PSET", KEY, &token, "n", "d"]);
    assert_eq!(
        ok_bytes(&mut con, &["SESSIONGATE.PGET", KEY, &token, "n"]),
        b"d"
    );
}

/// A payloads key that is not a hash (written by something else) gets
/// Redis' own WRONGTYPE error from every payload command, and is left alone.
#[test]
fn a_payloads_key_of_another_type_is_wrongtype() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let token = start(&mut con, KEY, 100);
    let _: () = redis::cmd("SET")
        .arg(payloads_key(&token))
        .arg("not a hash")
        .query(&mut con)
        .unwrap();
    let wrongtype = "WRONGTYPE Operation against a key holding the wrong kind of value";
    for args in [
        vec!["SESSIONGATE.PSET", KEY, &token, "n", "d"],
        vec!["SESSIONGATE.PMSET", KEY, &token, "n", "d"],
        vec!["SESSIONGATE.PGET", KEY, &token, "n"],
        vec!["SESSIONGATE.PMGET", KEY, &token, "n"],
        vec!["SESSIONGATE.PGETALL", KEY, &token],
        vec!["SESSIONGATE.PDEL", KEY, &token, "n"],
    ] {
        assert_eq!(err(&mut con, &args), wrongtype, "{args:?}");
    }
    let kept: String = redis::cmd("GET")
        .arg(payloads_key(&token))
        .query(&mut con)
        .unwrap();
    assert_eq!(kept, "not a hash");
}

/// Anyone who may run the commands chooses the sign key, forged calls
/// included: huge sign keys must not make the module hold memory that
/// evicts sessions (the shipped redis.conf's policy is volatile-ttl).
#[test]
fn huge_sign_keys_are_not_held_and_evict_no_session() {
    let server = Server::start(&["--maxmemory", "20mb", "--maxmemory-policy", "volatile-ttl"]);
    let mut con = server.connection();
    for _ in 0..400 {
        let token = start(&mut con, KEY, 600);
        ok_bytes(&mut con, &["SESSIONGATE.PSET", KEY, &token, "user", "42"]);
    }
    let used = |con: &mut Connection| -> i64 {
        info_field(con, "memory", "used_memory")
            .and_then(|v| v.parse().ok())
            .expect("used_memory")
    };
    let baseline = used(&mut con);
    let forged = format!("v1.{}.{}", "A".repeat(16), "0".repeat(64));
    {
        // Its own connection, closed before measuring: a 3 MB argument
        // leaves a 3 MB query buffer behind while the client lives.
        let mut hostile = server.connection();
        for round in 0..8u8 {
            let sign_key = vec![b'a' + round; 3 << 20];
            let args: [&[u8]; 4] = [b"SESSIONGATE.PGET", &sign_key, forged.as_bytes(), b"user"];
            assert_eq!(err(&mut hostile, &args), FORGED_SIGNATURE);
        }
    }
    server.wait_for("the hostile client to be gone", || {
        info_field(&mut con, "clients", "connected_clients").as_deref() == Some("1")
    });
    assert_eq!(dbsize(&mut con), 800, "every session and its payloads");
    assert_eq!(
        info_field(&mut con, "stats", "evicted_keys").as_deref(),
        Some("0")
    );
    let after = used(&mut con);
    assert!(
        after - baseline < 1 << 20,
        "used_memory grew by {} bytes (from {baseline} to {after})",
        after - baseline
    );
    assert_eq!(start(&mut con, KEY, 60).len(), 84, "START still works");
}
