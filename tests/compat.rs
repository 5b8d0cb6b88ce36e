//! docs/compatibility.md#identical: a client of the C module must not notice
//! the switch. Tokens, keys, replies, every error string and the order of the
//! checks.

mod common;

use common::errors::{
    payload_data_too_long, payload_name_too_long, wrong_arity, BAD_TTL, EMPTY_PAYLOAD_DATA,
    EMPTY_PAYLOAD_NAME, EMPTY_SIGN_KEY, EMPTY_TOKEN, FORGED_SIGNATURE, MALFORMED_TOKEN, NO_PAYLOAD,
    NO_SESSION, STALE_SIGNATURE,
};
use common::*;
use redis::Connection;

const KEY: &str = "mykey";

/// A correctly signed token for any id, stored or not.
fn forge(sign_key: &str, id: &str) -> String {
    format!("v1.{id}.{}", hmac_hex(sign_key.as_bytes(), id.as_bytes()))
}

fn pexpiretime(con: &mut Connection, key: &str) -> i64 {
    redis::cmd("PEXPIRETIME").arg(key).query(con).unwrap()
}

fn exists(con: &mut Connection, key: &str) -> bool {
    redis::cmd("EXISTS").arg(key).query::<i64>(con).unwrap() == 1
}

fn key_type(con: &mut Connection, key: &str) -> String {
    redis::cmd("TYPE").arg(key).query(con).unwrap()
}

#[test]
fn start_mints_an_hmac_signed_token_and_stores_its_signature() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let token = start(&mut con, KEY, 60);
    assert_eq!(token.len(), 84);
    let (prefix, rest) = token.split_at(3);
    assert_eq!(prefix, "v1.");
    let (id, signature) = (&rest[..16], &rest[17..]);
    assert_eq!(&rest[16..17], ".");
    assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
    assert_eq!(signature, hmac_hex(KEY.as_bytes(), id.as_bytes()));

    let sig_key = signature_key(&token);
    assert_eq!(key_type(&mut con, &sig_key), "string");
    let stored: String = redis::cmd("GET").arg(&sig_key).query(&mut con).unwrap();
    assert_eq!(stored, signature);
    let pttl: i64 = redis::cmd("PTTL").arg(&sig_key).query(&mut con).unwrap();
    assert!((59_000..=60_000).contains(&pttl), "pttl {pttl}");
    assert!(
        !exists(&mut con, &payloads_key(&token)),
        "no payloads key before PSET"
    );
}

#[test]
fn pset_stores_a_hash_field_with_the_signature_keys_expiry() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let token = start(&mut con, KEY, 100);
    assert_eq!(
        ok_bytes(&mut con, &["SESSIONGATE.PSET", KEY, &token, "user", "42"]),
        b"OK"
    );
    assert_eq!(
        ok_bytes(&mut con, &["SESSIONGATE.PGET", KEY, &token, "user"]),
        b"42"
    );
    assert_eq!(
        ok_bytes(&mut con, &["SESSIONGATE.PSET", KEY, &token, "user", "43"]),
        b"OK"
    );
    assert_eq!(
        ok_bytes(&mut con, &["SESSIONGATE.PGET", KEY, &token, "user"]),
        b"43"
    );

    let payloads = payloads_key(&token);
    assert_eq!(key_type(&mut con, &payloads), "hash");
    let field: String = redis::cmd("HGET")
        .arg(&payloads)
        .arg("user")
        .query(&mut con)
        .unwrap();
    assert_eq!(field, "43");
    let signature_at = pexpiretime(&mut con, &signature_key(&token));
    assert!(signature_at > 0);
    assert_eq!(pexpiretime(&mut con, &payloads), signature_at);
}

#[test]
fn expire_moves_both_keys_or_only_the_signature_key() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let bare = start(&mut con, KEY, 10);
    assert_eq!(
        ok_bytes(&mut con, &["SESSIONGATE.EXPIRE", KEY, &bare, "500"]),
        b"OK"
    );
    let ttl: i64 = redis::cmd("TTL")
        .arg(signature_key(&bare))
        .query(&mut con)
        .unwrap();
    assert!((499..=500).contains(&ttl), "ttl {ttl}");
    assert!(
        !exists(&mut con, &payloads_key(&bare)),
        "EXPIRE creates no payloads key"
    );

    let full = start(&mut con, KEY, 10);
    ok_bytes(&mut con, &["SESSIONGATE.PSET", KEY, &full, "a", "1"]);
    assert_eq!(
        ok_bytes(&mut con, &["SESSIONGATE.EXPIRE", KEY, &full, "900"]),
        b"OK"
    );
    let signature_at = pexpiretime(&mut con, &signature_key(&full));
    assert_eq!(pexpiretime(&mut con, &payloads_key(&full)), signature_at);
    let ttl: i64 = redis::cmd("TTL")
        .arg(payloads_key(&full))
        .query(&mut con)
        .unwrap();
    assert!((899..=900).contains(&ttl), "ttl {ttl}");
}

#[test]
fn pdel_deletes_one_payload_and_is_ok_for_an_absent_name() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let token = start(&mut con, KEY, 100);
    let pdel =
        |con: &mut Connection, name: &str| call(con, &["SESSIONGATE.PDEL", KEY, &token, name]);
    assert_eq!(pdel(&mut con, "a"), Err(NO_PAYLOAD.into()));
    ok_bytes(&mut con, &["SESSIONGATE.PSET", KEY, &token, "a", "1"]);
    ok_bytes(&mut con, &["SESSIONGATE.PSET", KEY, &token, "b", "2"]);
    assert_eq!(
        pdel(&mut con, "nope"),
        Ok(Value::Okay),
        "absent name in an existing hash"
    );
    assert_eq!(pdel(&mut con, "a"), Ok(Value::Okay));
    assert_eq!(
        err(&mut con, &["SESSIONGATE.PGET", KEY, &token, "a"]),
        NO_PAYLOAD
    );
    assert_eq!(
        ok_bytes(&mut con, &["SESSIONGATE.PGET", KEY, &token, "b"]),
        b"2"
    );
    assert_eq!(pdel(&mut con, "b"), Ok(Value::Okay));
    assert!(
        !exists(&mut con, &payloads_key(&token)),
        "the last PDEL removes the hash"
    );
    assert_eq!(pdel(&mut con, "b"), Err(NO_PAYLOAD.into()));
}

#[test]
fn end_deletes_both_keys() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let token = start(&mut con, KEY, 100);
    ok_bytes(&mut con, &["SESSIONGATE.PSET", KEY, &token, "a", "1"]);
    assert_eq!(ok_bytes(&mut con, &["SESSIONGATE.END", KEY, &token]), b"OK");
    assert!(!exists(&mut con, &signature_key(&token)));
    assert!(!exists(&mut con, &payloads_key(&token)));
    assert_eq!(err(&mut con, &["SESSIONGATE.END", KEY, &token]), NO_SESSION);
}

#[test]
fn sessions_really_expire() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let token = start(&mut con, KEY, 1);
    ok_bytes(&mut con, &["SESSIONGATE.PSET", KEY, &token, "a", "1"]);
    server.wait_for("the session to expire", || {
        call(&mut con, &["SESSIONGATE.PGET", KEY, &token, "a"]).is_err()
    });
    assert_eq!(
        err(&mut con, &["SESSIONGATE.PGET", KEY, &token, "a"]),
        NO_SESSION
    );
    assert!(!exists(&mut con, &signature_key(&token)));
    assert!(!exists(&mut con, &payloads_key(&token)));
}

#[test]
fn names_and_data_are_binary_safe() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let token = start(&mut con, KEY, 100);
    let name: &[u8] = b"n\0a\r\nm\xffe";
    let data: &[u8] = b"\0\x01\x02\r\n\xfe\xff end\0";
    let pset: [&[u8]; 5] = [
        b"SESSIONGATE.PSET",
        KEY.as_bytes(),
        token.as_bytes(),
        name,
        data,
    ];
    assert_eq!(ok_bytes(&mut con, &pset), b"OK");
    let pget: [&[u8]; 4] = [b"SESSIONGATE.PGET", KEY.as_bytes(), token.as_bytes(), name];
    assert_eq!(ok_bytes(&mut con, &pget), data);
    let raw: Vec<u8> = redis::cmd("HGET")
        .arg(payloads_key(&token))
        .arg(name)
        .query(&mut con)
        .unwrap();
    assert_eq!(raw, data);
    let pdel: [&[u8]; 4] = [b"SESSIONGATE.PDEL", KEY.as_bytes(), token.as_bytes(), name];
    assert_eq!(call(&mut con, &pdel), Ok(Value::Okay));

    // The sign key is binary too.
    let sign_key: &[u8] = b"k\0\xff";
    let token = ok_bytes(&mut con, &[&b"SESSIONGATE.START"[..], sign_key, b"100"]);
    let id = &token[3..19];
    assert_eq!(&token[20..], hmac_hex(sign_key, id).as_bytes());
    let end: [&[u8]; 3] = [b"SESSIONGATE.END", sign_key, &token];
    assert_eq!(call(&mut con, &end), Ok(Value::Okay));
}

#[test]
fn payload_limits_hold_at_exactly_the_limit_and_one_over() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let token = start(&mut con, KEY, 100);
    let name_200 = "n".repeat(200);
    let name_201 = "n".repeat(201);
    let data_max = vec![b'd'; 8_000_000];
    let data_over = vec![b'd'; 8_000_001];
    let t = token.as_bytes();
    let pset = |con: &mut Connection, name: &[u8], data: &[u8]| {
        call(
            con,
            &[&b"SESSIONGATE.PSET"[..], KEY.as_bytes(), t, name, data],
        )
    };
    assert_eq!(pset(&mut con, name_200.as_bytes(), b"x"), Ok(Value::Okay));
    assert_eq!(
        pset(&mut con, name_201.as_bytes(), b"x"),
        Err(payload_name_too_long(200))
    );
    assert_eq!(pset(&mut con, b"big", &data_max), Ok(Value::Okay));
    assert_eq!(
        pset(&mut con, b"bigger", &data_over),
        Err(payload_data_too_long(8_000_000))
    );
    assert_eq!(
        ok_bytes(
            &mut con,
            &[&b"SESSIONGATE.PGET"[..], KEY.as_bytes(), t, b"big"]
        )
        .len(),
        8_000_000
    );
    for command in ["SESSIONGATE.PGET", "SESSIONGATE.PDEL"] {
        assert_eq!(
            call(&mut con, &[command, KEY, &token, &name_201]),
            Err(payload_name_too_long(200))
        );
    }
    assert_eq!(
        call(&mut con, &["SESSIONGATE.PDEL", KEY, &token, &name_200]),
        Ok(Value::Okay)
    );
    assert_eq!(
        err(&mut con, &["SESSIONGATE.PGET", KEY, &token, "bigger"]),
        NO_PAYLOAD,
        "a rejected PSET writes nothing"
    );
}

/// The arguments after the command name for each token command, with the
/// given sign key and token and valid values for the rest.
fn token_commands<'a>(sign_key: &'a str, token: &'a str) -> Vec<Vec<&'a str>> {
    vec![
        vec!["SESSIONGATE.EXPIRE", sign_key, token, "100"],
        vec!["SESSIONGATE.PSET", sign_key, token, "name", "data"],
        vec!["SESSIONGATE.PGET", sign_key, token, "name"],
        vec!["SESSIONGATE.PDEL", sign_key, token, "name"],
        vec!["SESSIONGATE.END", sign_key, token],
    ]
}

#[test]
fn every_token_command_replies_each_token_error_exactly() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let token = start(&mut con, KEY, 100);
    ok_bytes(&mut con, &["SESSIONGATE.PSET", KEY, &token, "name", "data"]);
    let mut bad_format = token.clone();
    bad_format.replace_range(0..2, "v2");
    let mut forged = token.clone();
    forged.replace_range(83..84, if token.ends_with('0') { "1" } else { "0" });
    let unknown = forge(KEY, "ZZZZZZZZZZZZZZZZ");
    // Signed with another key for the same id: the HMAC checks out under
    // that key, but the stored signature is the one made with KEY.
    let stale = forge("otherkey", id_of(&token));
    let cases = [
        ("", token.as_str(), EMPTY_SIGN_KEY),
        (KEY, "", EMPTY_TOKEN),
        (KEY, &bad_format, MALFORMED_TOKEN),
        (KEY, &token[..83], MALFORMED_TOKEN),
        (KEY, &forged, FORGED_SIGNATURE),
        ("wrongkey", &token, FORGED_SIGNATURE),
        (KEY, &unknown, NO_SESSION),
        ("otherkey", &stale, STALE_SIGNATURE),
    ];
    for (sign_key, token, expected) in cases {
        for command in token_commands(sign_key, token) {
            assert_eq!(err(&mut con, &command), expected, "{command:?}");
        }
    }
    // None of the failures touched the session.
    assert_eq!(
        ok_bytes(&mut con, &["SESSIONGATE.PGET", KEY, &token, "name"]),
        b"data"
    );
}

#[test]
fn payload_checks_follow_the_session_checks() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let token = start(&mut con, KEY, 100);
    for command in ["SESSIONGATE.PSET", "SESSIONGATE.PGET", "SESSIONGATE.PDEL"] {
        let mut args = vec![command, KEY, &token, ""];
        if command == "SESSIONGATE.PSET" {
            args.push("data");
        }
        assert_eq!(err(&mut con, &args), EMPTY_PAYLOAD_NAME, "{command}");
        // A forged token outranks the bad name.
        args[1] = "wrongkey";
        assert_eq!(err(&mut con, &args), FORGED_SIGNATURE, "{command}");
    }
    assert_eq!(
        err(&mut con, &["SESSIONGATE.PSET", KEY, &token, "n", ""]),
        EMPTY_PAYLOAD_DATA
    );
    assert_eq!(
        err(&mut con, &["SESSIONGATE.PSET", KEY, &token, "", ""]),
        EMPTY_PAYLOAD_NAME
    );
    assert_eq!(
        err(&mut con, &["SESSIONGATE.PGET", KEY, &token, "n"]),
        NO_PAYLOAD
    );
    assert_eq!(
        err(&mut con, &["SESSIONGATE.PDEL", KEY, &token, "n"]),
        NO_PAYLOAD
    );
}

#[test]
fn ttl_errors_and_their_place_in_the_order() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let token = start(&mut con, KEY, 100);
    for ttl in ["abc", "-1", "1.5", "", " 1", "1 ", "99999999999999999999"] {
        assert_eq!(
            err(&mut con, &["SESSIONGATE.START", KEY, ttl]),
            BAD_TTL,
            "START {ttl:?}"
        );
        assert_eq!(
            err(&mut con, &["SESSIONGATE.EXPIRE", KEY, &token, ttl]),
            BAD_TTL,
            "EXPIRE {ttl:?}"
        );
    }
    // START: the sign key is checked before the ttl.
    assert_eq!(
        err(&mut con, &["SESSIONGATE.START", "", "abc"]),
        EMPTY_SIGN_KEY
    );
    // EXPIRE: the token before the ttl, the ttl before the signature.
    assert_eq!(
        err(&mut con, &["SESSIONGATE.EXPIRE", KEY, "", "abc"]),
        EMPTY_TOKEN
    );
    assert_eq!(
        err(&mut con, &["SESSIONGATE.EXPIRE", KEY, "v1.x", "abc"]),
        MALFORMED_TOKEN
    );
    assert_eq!(
        err(&mut con, &["SESSIONGATE.EXPIRE", "wrongkey", &token, "abc"]),
        BAD_TTL
    );
    assert_eq!(
        err(&mut con, &["SESSIONGATE.EXPIRE", "", "", "abc"]),
        EMPTY_SIGN_KEY
    );
}

/// Arity is Redis' own error. Redis 7 names the command in lowercase
/// (its registered name), Redis 6.2 as typed; a native command typed in mixed
/// case shows which this server does, and the module must do the same.
#[test]
fn wrong_arity_is_redis_own_error() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let native = err(&mut con, &["GeT"]);
    let as_redis_names = |typed: &str| match native.as_str() {
        "ERR wrong number of arguments for 'get' command" => typed.to_lowercase(),
        "ERR wrong number of arguments for 'GeT' command" => typed.to_string(),
        other => panic!("unexpected native arity error: {other}"),
    };
    let arity = [
        ("SESSIONGATE.START", 3),
        ("SessionGate.Expire", 4),
        ("sessiongate.pset", 5),
        ("SESSIONGATE.PGET", 4),
        ("SESSIONGATE.PDEL", 4),
        ("sEsSiOnGaTe.EnD", 3),
    ];
    for (command, words) in arity {
        for count in [1, words - 1, words + 1] {
            let mut args = vec![command];
            args.extend(std::iter::repeat_n("x", count - 1));
            assert_eq!(
                err(&mut con, &args),
                wrong_arity(&as_redis_names(command)),
                "{count} words"
            );
        }
    }
}

#[test]
fn commands_are_case_insensitive() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let token = start(&mut con, KEY, 100);
    assert_eq!(
        ok_bytes(&mut con, &["sessiongate.pset", KEY, &token, "a", "1"]),
        b"OK"
    );
    assert_eq!(
        ok_bytes(&mut con, &["SessionGate.PGet", KEY, &token, "a"]),
        b"1"
    );
}

#[test]
fn a_dataset_written_by_the_c_module_keeps_working() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    // What the C module leaves behind, written with plain commands.
    let id = "CmoduleSession01";
    let token = forge(KEY, id);
    let signature = &token[20..];
    let sig_key = format!("sg-session:{id}:signature");
    let payloads = format!("sg-session:{id}:payloads");
    let _: () = redis::cmd("SET")
        .arg(&sig_key)
        .arg(signature)
        .arg("EX")
        .arg(300)
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("HSET")
        .arg(&payloads)
        .arg("user")
        .arg("alice")
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("EXPIRE")
        .arg(&payloads)
        .arg(300)
        .query(&mut con)
        .unwrap();

    assert_eq!(
        ok_bytes(&mut con, &["SESSIONGATE.PGET", KEY, &token, "user"]),
        b"alice"
    );
    assert_eq!(
        ok_bytes(
            &mut con,
            &["SESSIONGATE.PSET", KEY, &token, "role", "admin"]
        ),
        b"OK"
    );
    assert_eq!(
        ok_bytes(&mut con, &["SESSIONGATE.EXPIRE", KEY, &token, "1000"]),
        b"OK"
    );
    let ttl: i64 = redis::cmd("TTL").arg(&payloads).query(&mut con).unwrap();
    assert!((999..=1000).contains(&ttl), "ttl {ttl}");
    assert_eq!(ok_bytes(&mut con, &["SESSIONGATE.END", KEY, &token]), b"OK");
    assert!(!exists(&mut con, &sig_key));
    assert!(!exists(&mut con, &payloads));
}
