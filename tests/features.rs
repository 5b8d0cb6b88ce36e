//! Beyond the C module: TTL, PGETALL, PMGET, PMSET, lifecycle events,
//! `INFO sessiongate` and the module's configurations.

mod common;

use common::errors::{
    payload_data_too_long, payload_name_too_long, too_many_payloads, EMPTY_PAYLOAD_DATA,
    EMPTY_PAYLOAD_NAME, EMPTY_SIGN_KEY, EMPTY_TOKEN, FORGED_SIGNATURE, MALFORMED_TOKEN, NO_SESSION,
    WRONG_ARITY,
};
use common::*;
use redis::Connection;
use std::collections::HashMap;
use std::time::Duration;

const KEY: &str = "feature-sign-key";

fn bulk(data: &str) -> Value {
    Value::BulkString(data.as_bytes().to_vec())
}

fn hgetall(con: &mut Connection, key: &str) -> HashMap<String, String> {
    redis::cmd("HGETALL").arg(key).query(con).unwrap()
}

fn pexpiretime(con: &mut Connection, key: &str) -> i64 {
    redis::cmd("PEXPIRETIME").arg(key).query(con).unwrap()
}

#[test]
fn ttl_reports_the_remaining_seconds_as_redis_rounds_them() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let token = start(&mut con, KEY, 100);
    assert_eq!(
        call(&mut con, &["SESSIONGATE.TTL", KEY, &token]),
        Ok(Value::Int(100))
    );
    ok_bytes(&mut con, &["SESSIONGATE.EXPIRE", KEY, &token, "7"]);
    let native: i64 = redis::cmd("TTL")
        .arg(signature_key(&token))
        .query(&mut con)
        .unwrap();
    assert_eq!(
        call(&mut con, &["SESSIONGATE.TTL", KEY, &token]),
        Ok(Value::Int(native))
    );

    // A session written without an expiry (not by this module) reads -1.
    let _: () = redis::cmd("PERSIST")
        .arg(signature_key(&token))
        .query(&mut con)
        .unwrap();
    assert_eq!(
        call(&mut con, &["SESSIONGATE.TTL", KEY, &token]),
        Ok(Value::Int(-1))
    );
}

#[test]
fn new_commands_share_the_checks_and_errors_of_spec_1_4() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let token = start(&mut con, KEY, 100);
    let unknown = format!("v1.ZZZZZZZZZZZZZZZZ.{}", &token[20..]);
    let commands = |sign_key: &str, token: &str| -> Vec<Vec<String>> {
        [
            vec!["SESSIONGATE.TTL", sign_key, token],
            vec!["SESSIONGATE.PGETALL", sign_key, token],
            vec!["SESSIONGATE.PMGET", sign_key, token, "a", "b"],
            vec!["SESSIONGATE.PMSET", sign_key, token, "a", "1", "b", "2"],
        ]
        .iter()
        .map(|args| args.iter().map(|a| a.to_string()).collect())
        .collect()
    };
    let cases = [
        ("", token.as_str(), EMPTY_SIGN_KEY),
        (KEY, "", EMPTY_TOKEN),
        (KEY, "v1.bad", MALFORMED_TOKEN),
        ("wrongkey", &token, FORGED_SIGNATURE),
        // A well-formed token whose HMAC fails: forged, before missing.
        (KEY, &unknown, FORGED_SIGNATURE),
    ];
    for (sign_key, token, expected) in cases {
        for args in commands(sign_key, token) {
            assert_eq!(err(&mut con, &args), expected, "{args:?}");
        }
    }
    ok_bytes(&mut con, &["SESSIONGATE.END", KEY, &token]);
    for args in commands(KEY, &token) {
        assert_eq!(err(&mut con, &args), NO_SESSION, "{args:?}");
    }
    let arity = [
        vec!["SESSIONGATE.TTL", KEY],
        vec!["SESSIONGATE.TTL", KEY, &token, "x"],
        vec!["SESSIONGATE.PGETALL", KEY],
        vec!["SESSIONGATE.PMGET", KEY, &token],
        vec!["SESSIONGATE.PMSET", KEY, &token],
        vec!["SESSIONGATE.PMSET", KEY, &token, "a"],
        vec!["SESSIONGATE.PMSET", KEY, &token, "a", "1", "b"],
    ];
    for args in arity {
        let error = err(&mut con, &args);
        assert!(error.starts_with(WRONG_ARITY), "{args:?}: {error}");
    }
}

#[test]
fn pgetall_is_a_flat_array_in_resp2_and_a_map_in_resp3() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let token = start(&mut con, KEY, 100);
    assert_eq!(
        call(&mut con, &["SESSIONGATE.PGETALL", KEY, &token]),
        Ok(Value::Array(vec![]))
    );
    let binary: &[u8] = b"\0\xff";
    let pset: [&[u8]; 5] = [
        b"SESSIONGATE.PSET",
        KEY.as_bytes(),
        token.as_bytes(),
        b"bin",
        binary,
    ];
    ok_bytes(&mut con, &pset);
    ok_bytes(
        &mut con,
        &["SESSIONGATE.PSET", KEY, &token, "user", "alice"],
    );
    assert_eq!(
        call(&mut con, &["SESSIONGATE.PGETALL", KEY, &token]),
        Ok(Value::Array(vec![
            bulk("bin"),
            Value::BulkString(binary.to_vec()),
            bulk("user"),
            bulk("alice"),
        ]))
    );

    let mut resp3 = server.connection_resp3();
    assert_eq!(
        call(&mut resp3, &["SESSIONGATE.PGETALL", KEY, &token]),
        Ok(Value::Map(vec![
            (bulk("bin"), Value::BulkString(binary.to_vec())),
            (bulk("user"), bulk("alice")),
        ]))
    );
    let bare = start(&mut resp3, KEY, 100);
    assert_eq!(
        call(&mut resp3, &["SESSIONGATE.PGETALL", KEY, &bare]),
        Ok(Value::Map(vec![]))
    );
}

#[test]
fn pmget_answers_each_name_with_nil_where_missing() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let token = start(&mut con, KEY, 100);
    assert_eq!(
        call(&mut con, &["SESSIONGATE.PMGET", KEY, &token, "a", "b"]),
        Ok(Value::Array(vec![Value::Nil, Value::Nil])),
        "a session without payloads"
    );
    ok_bytes(
        &mut con,
        &["SESSIONGATE.PMSET", KEY, &token, "a", "1", "c", "3"],
    );
    assert_eq!(
        call(
            &mut con,
            &["SESSIONGATE.PMGET", KEY, &token, "a", "b", "c", "a"]
        ),
        Ok(Value::Array(vec![
            bulk("1"),
            Value::Nil,
            bulk("3"),
            bulk("1")
        ]))
    );
    let mut resp3 = server.connection_resp3();
    assert_eq!(
        call(&mut resp3, &["SESSIONGATE.PMGET", KEY, &token, "b", "c"]),
        Ok(Value::Array(vec![Value::Nil, bulk("3")]))
    );
    let long = "n".repeat(201);
    assert_eq!(
        err(&mut con, &["SESSIONGATE.PMGET", KEY, &token, "a", ""]),
        EMPTY_PAYLOAD_NAME
    );
    assert_eq!(
        err(&mut con, &["SESSIONGATE.PMGET", KEY, &token, &long, "a"]),
        payload_name_too_long(200)
    );
}

#[test]
fn pmset_writes_all_pairs_or_none() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let token = start(&mut con, KEY, 100);
    ok_bytes(&mut con, &["SESSIONGATE.PSET", KEY, &token, "kept", "0"]);
    let long = "n".repeat(201);
    let long_name = payload_name_too_long(200);
    let rejected = [
        (vec!["a", "1", "", "2"], EMPTY_PAYLOAD_NAME),
        (vec!["a", "1", "b", ""], EMPTY_PAYLOAD_DATA),
        (vec!["", "1", "b", "2"], EMPTY_PAYLOAD_NAME),
        (vec!["a", "1", "b", "2", &long, "3"], &long_name),
    ];
    for (pairs, expected) in rejected {
        let mut args = vec!["SESSIONGATE.PMSET", KEY, &token];
        args.extend(&pairs);
        assert_eq!(err(&mut con, &args), expected, "{pairs:?}");
        assert_eq!(
            hgetall(&mut con, &payloads_key(&token)),
            HashMap::from([("kept".into(), "0".into())]),
            "a rejected PMSET wrote something"
        );
    }
    ok_bytes(
        &mut con,
        &[
            "SESSIONGATE.PMSET",
            KEY,
            &token,
            "a",
            "1",
            "b",
            "2",
            "kept",
            "new",
        ],
    );
    assert_eq!(
        hgetall(&mut con, &payloads_key(&token)),
        HashMap::from([
            ("a".into(), "1".into()),
            ("b".into(), "2".into()),
            ("kept".into(), "new".into())
        ])
    );
    let signature_at = pexpiretime(&mut con, &signature_key(&token));
    assert_eq!(pexpiretime(&mut con, &payloads_key(&token)), signature_at);
}

#[test]
fn pmset_reaches_a_replica() {
    let master = Server::start(&[]);
    let replica = Server::start(&["--replicaof", "127.0.0.1", &master.port.to_string()]);
    let mut on_replica = replica.connection();
    replica.wait_for("the replica to sync", || {
        info_field(&mut on_replica, "replication", "master_link_status").as_deref() == Some("up")
    });
    let mut on_master = master.connection();
    let token = start(&mut on_master, KEY, 100);
    ok_bytes(
        &mut on_master,
        &["SESSIONGATE.PMSET", KEY, &token, "a", "1", "b", "2"],
    );
    wait_for_replica(&mut on_master);
    let payloads = payloads_key(&token);
    assert_eq!(
        hgetall(&mut on_replica, &payloads),
        hgetall(&mut on_master, &payloads)
    );
    assert_eq!(
        pexpiretime(&mut on_replica, &payloads),
        pexpiretime(&mut on_master, &payloads)
    );
    assert_eq!(
        call(
            &mut on_replica,
            &["SESSIONGATE.PMGET", KEY, &token, "a", "b"]
        ),
        Ok(Value::Array(vec![bulk("1"), bulk("2")]))
    );
    assert_eq!(
        call(&mut on_replica, &["SESSIONGATE.TTL", KEY, &token]),
        Ok(Value::Int(100))
    );
}

#[test]
fn every_lifecycle_change_is_a_keyspace_event() {
    let server = Server::start(&["--notify-keyspace-events", "KEdx"]);
    let mut subscriber = server.connection();
    let mut pubsub = subscriber.as_pubsub();
    pubsub.psubscribe("__keyevent@0__:*").unwrap();
    pubsub.psubscribe("__keyspace@0__:sg-session:*").unwrap();
    pubsub
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();

    let mut con = server.connection();
    let token = start(&mut con, KEY, 100);
    let sig = signature_key(&token);
    ok_bytes(&mut con, &["SESSIONGATE.PSET", KEY, &token, "a", "1"]);
    ok_bytes(
        &mut con,
        &["SESSIONGATE.PMSET", KEY, &token, "b", "2", "c", "3"],
    );
    ok_bytes(&mut con, &["SESSIONGATE.PDEL", KEY, &token, "nope"]); // nothing deleted: no event
    ok_bytes(&mut con, &["SESSIONGATE.PDEL", KEY, &token, "a"]);
    ok_bytes(&mut con, &["SESSIONGATE.EXPIRE", KEY, &token, "50"]);
    ok_bytes(&mut con, &["SESSIONGATE.END", KEY, &token]);
    let zeroed = start(&mut con, KEY, 100);
    ok_bytes(&mut con, &["SESSIONGATE.EXPIRE", KEY, &zeroed, "0"]);
    let timed_out = start(&mut con, KEY, 1);

    let mut expected = vec![
        ("sessiongate.start", sig.clone()),
        ("sessiongate.pset", sig.clone()),
        ("sessiongate.pset", sig.clone()),
        ("sessiongate.pdel", sig.clone()),
        ("sessiongate.expire", sig.clone()),
        ("sessiongate.end", sig.clone()),
        ("sessiongate.start", signature_key(&zeroed)),
        ("sessiongate.end", signature_key(&zeroed)),
        ("sessiongate.start", signature_key(&timed_out)),
        // Redis' own event when the session times out.
        ("expired", signature_key(&timed_out)),
    ];
    expected.reverse();
    let mut keyspace_seen = 0;
    while let Some((event, key)) = expected.pop() {
        loop {
            let message = pubsub.get_message().expect("an event within 10 seconds");
            let channel = message.get_channel_name().to_string();
            let payload: String = message.get_payload().unwrap();
            if channel.starts_with("__keyspace@0__:") {
                // The same event, by key: the payload names the event.
                assert!(
                    payload.starts_with("sessiongate.") || payload == "expired",
                    "{payload}"
                );
                keyspace_seen += 1;
                continue;
            }
            if channel == "__keyevent@0__:del" {
                continue; // the payloads hash expiring at the same time
            }
            assert_eq!(
                (channel.as_str(), payload.as_str()),
                (format!("__keyevent@0__:{event}").as_str(), key.as_str())
            );
            break;
        }
    }
    assert!(
        keyspace_seen >= 9,
        "keyspace channel: {keyspace_seen} events"
    );
}

fn counters(con: &mut Connection) -> HashMap<String, i64> {
    let info: String = redis::cmd("INFO").arg("sessiongate").query(con).unwrap();
    info.lines()
        .filter_map(|line| line.strip_prefix("sessiongate_"))
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.to_string(), value.trim().parse().unwrap()))
        .collect()
}

#[test]
fn info_counters_move_by_exactly_what_happened() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let before = counters(&mut con);
    assert_eq!(before.len(), 14, "{before:?}");
    assert!(before.values().all(|v| *v == 0));

    let a = start(&mut con, KEY, 100);
    let b = start(&mut con, KEY, 100);
    let _ghost = start(&mut con, KEY, 0);
    ok_bytes(&mut con, &["SESSIONGATE.PSET", KEY, &a, "x", "1"]);
    ok_bytes(
        &mut con,
        &["SESSIONGATE.PMSET", KEY, &a, "y", "2", "z", "3"],
    );
    ok_bytes(&mut con, &["SESSIONGATE.PGET", KEY, &a, "x"]);
    call(&mut con, &["SESSIONGATE.PMGET", KEY, &a, "x", "nope", "y"]).unwrap();
    call(&mut con, &["SESSIONGATE.PGETALL", KEY, &a]).unwrap();
    ok_bytes(&mut con, &["SESSIONGATE.PDEL", KEY, &a, "z"]);
    ok_bytes(&mut con, &["SESSIONGATE.PDEL", KEY, &a, "gone"]);
    ok_bytes(&mut con, &["SESSIONGATE.EXPIRE", KEY, &b, "0"]);
    ok_bytes(&mut con, &["SESSIONGATE.END", KEY, &a]);
    err(&mut con, &["SESSIONGATE.PGET", "wrongkey", &a, "x"]);
    err(
        &mut con,
        &[
            "SESSIONGATE.PGET",
            "otherkey",
            &format!("v1.{}.{}", &a[3..19], "0".repeat(64)),
            "x",
        ],
    );
    err(&mut con, &["SESSIONGATE.PGET", KEY, "not-a-token", "x"]);
    err(&mut con, &["SESSIONGATE.PGET", KEY, "", "x"]);
    err(&mut con, &["SESSIONGATE.PGET", KEY, &a, "x"]);
    err(&mut con, &["SESSIONGATE.END", KEY, &b]);
    err(&mut con, &["SESSIONGATE.START", KEY, "-1"]);

    let after = counters(&mut con);
    let expected = HashMap::from([
        ("sessions_started".to_string(), 3),
        ("sessions_ended".to_string(), 1),
        ("sessions_ended_by_expire_0".to_string(), 1),
        ("payloads_set".to_string(), 3),
        ("payloads_read".to_string(), 1 + 2 + 3),
        ("payloads_deleted".to_string(), 1),
        ("signature_failures".to_string(), 2),
        ("malformed_tokens".to_string(), 2),
        ("missing_sessions".to_string(), 2),
        ("unknown_rings".to_string(), 0),
        // Standalone, every START draws one id, ttl 0 included.
        ("ids_drawn".to_string(), 3),
        ("sessions_rotated".to_string(), 0),
        ("sessions_evicted".to_string(), 0),
        ("sessions_ended_by_owner".to_string(), 0),
    ]);
    assert_eq!(after, expected);
}

fn config_get(con: &mut Connection, name: &str) -> String {
    let (_, value): (String, String) = redis::cmd("CONFIG")
        .arg("GET")
        .arg(name)
        .query(con)
        .unwrap();
    value
}

#[test]
fn configs_default_to_the_spec_limits() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    assert_eq!(
        config_get(&mut con, "sessiongate.max-payload-name-len"),
        "200"
    );
    assert_eq!(
        config_get(&mut con, "sessiongate.max-payload-data-len"),
        "8000000"
    );
    assert_eq!(
        config_get(&mut con, "sessiongate.max-payloads-per-session"),
        "0"
    );
}

#[test]
fn configs_set_at_load_apply_with_their_number_in_the_error() {
    // As loadmodule arguments, and as redis.conf lines.
    let server = Server::start(&[
        "max-payload-name-len",
        "5",
        "--sessiongate.max-payload-data-len",
        "10",
    ]);
    let mut con = server.connection();
    assert_eq!(
        config_get(&mut con, "sessiongate.max-payload-name-len"),
        "5"
    );
    assert_eq!(
        config_get(&mut con, "sessiongate.max-payload-data-len"),
        "10"
    );
    let token = start(&mut con, KEY, 100);
    ok_bytes(
        &mut con,
        &["SESSIONGATE.PSET", KEY, &token, "12345", "0123456789"],
    );
    assert_eq!(
        err(&mut con, &["SESSIONGATE.PSET", KEY, &token, "123456", "x"]),
        payload_name_too_long(5)
    );
    assert_eq!(
        err(
            &mut con,
            &["SESSIONGATE.PSET", KEY, &token, "n", "0123456789A"]
        ),
        payload_data_too_long(10)
    );
}

#[test]
fn a_bad_value_at_load_keeps_the_module_from_loading() {
    let log = Server::fails_to_start(&["max-payload-name-len", "0"]);
    assert!(
        log.contains("sessiongate cannot load: max-payload-name-len must be between 1"),
        "{log}"
    );
}

#[test]
fn unknown_missing_or_repeated_load_arguments_keep_the_module_from_loading() {
    for (args, expected) in [
        (
            &["max-payload-data-length", "1000"][..],
            "unknown argument 'max-payload-data-length'",
        ),
        (
            &["max-payload-name-len"][..],
            "'max-payload-name-len' needs a value",
        ),
        (
            &["max-payload-name-len", "5", "max-payload-name-len", "6"][..],
            "'max-payload-name-len' is given twice",
        ),
        // Quoted in the log, whose API reads a printf format: once a crash.
        (&["%s%s%s%n", "1"][..], "unknown argument '%s%s%s%n'"),
    ] {
        let log = Server::fails_to_start(args);
        assert!(
            log.contains(&format!("sessiongate cannot load: {expected}")),
            "{args:?}: {log}"
        );
    }
}

#[test]
fn configs_change_at_runtime_and_refuse_bad_values() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let token = start(&mut con, KEY, 100);
    let set = |con: &mut Connection, name: &str, value: &str| {
        call(
            con,
            &["CONFIG", "SET", &format!("sessiongate.{name}"), value],
        )
    };
    assert_eq!(set(&mut con, "max-payload-name-len", "3"), Ok(Value::Okay));
    assert_eq!(
        err(
            &mut con,
            &["SESSIONGATE.PMSET", KEY, &token, "abc", "1", "abcd", "2"]
        ),
        payload_name_too_long(3)
    );
    assert_eq!(set(&mut con, "max-payload-data-len", "2"), Ok(Value::Okay));
    assert_eq!(
        err(&mut con, &["SESSIONGATE.PSET", KEY, &token, "abc", "123"]),
        payload_data_too_long(2)
    );
    for (name, bad) in [
        ("max-payload-name-len", "0"),
        ("max-payload-name-len", "abc"),
        ("max-payload-data-len", "-1"),
        ("max-payload-data-len", "999999999999"),
        ("max-payloads-per-session", "-1"),
    ] {
        let refused = set(&mut con, name, bad);
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.starts_with("ERR CONFIG SET failed")),
            "{name} {bad}: {refused:?}"
        );
    }
    assert_eq!(
        config_get(&mut con, "sessiongate.max-payload-name-len"),
        "3"
    );
}

#[test]
fn the_payload_count_limit_counts_new_names_only() {
    let server = Server::start(&["--sessiongate.max-payloads-per-session", "2"]);
    let mut con = server.connection();
    let token = start(&mut con, KEY, 100);
    let full = too_many_payloads(2);
    ok_bytes(&mut con, &["SESSIONGATE.PSET", KEY, &token, "a", "1"]);
    ok_bytes(
        &mut con,
        &[
            "SESSIONGATE.PMSET",
            KEY,
            &token,
            "a",
            "2",
            "b",
            "2",
            "b",
            "3",
        ],
    );
    assert_eq!(
        err(&mut con, &["SESSIONGATE.PSET", KEY, &token, "c", "1"]),
        full
    );
    assert_eq!(
        err(
            &mut con,
            &["SESSIONGATE.PMSET", KEY, &token, "a", "9", "c", "1"]
        ),
        full
    );
    assert_eq!(
        hgetall(&mut con, &payloads_key(&token)),
        HashMap::from([("a".into(), "2".into()), ("b".into(), "3".into())]),
        "a refused write changes nothing"
    );
    ok_bytes(
        &mut con,
        &["SESSIONGATE.PSET", KEY, &token, "a", "overwrite"],
    );
    ok_bytes(&mut con, &["SESSIONGATE.PDEL", KEY, &token, "b"]);
    ok_bytes(&mut con, &["SESSIONGATE.PSET", KEY, &token, "c", "1"]);
    assert_eq!(
        call(
            &mut con,
            &["CONFIG", "SET", "sessiongate.max-payloads-per-session", "0"]
        ),
        Ok(Value::Okay)
    );
    ok_bytes(
        &mut con,
        &["SESSIONGATE.PMSET", KEY, &token, "d", "1", "e", "1"],
    );
}

#[test]
fn new_commands_have_their_flags() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    for (name, has, lacks) in [
        ("sessiongate.ttl", &["readonly", "fast"][..], &["write"][..]),
        ("sessiongate.pgetall", &["readonly", "fast"], &["write"]),
        ("sessiongate.pmget", &["readonly", "fast"], &["write"]),
        ("sessiongate.pmset", &["write", "denyoom"], &["readonly"]),
    ] {
        let info: Vec<Vec<Value>> = redis::cmd("COMMAND")
            .arg("INFO")
            .arg(name)
            .query(&mut con)
            .unwrap();
        let flags: Vec<String> = redis::from_redis_value_ref(&info[0][2]).unwrap();
        let first_key: i64 = redis::from_redis_value_ref(&info[0][3]).unwrap();
        assert_eq!(first_key, 2, "{name} declares the token as its key");
        for flag in has {
            assert!(
                flags.iter().any(|f| f == flag),
                "{name} lacks {flag}: {flags:?}"
            );
        }
        for flag in lacks {
            assert!(
                !flags.iter().any(|f| f == flag),
                "{name} has {flag}: {flags:?}"
            );
        }
    }
}
