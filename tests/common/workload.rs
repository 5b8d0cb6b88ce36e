//! A mix of all six commands, and a snapshot of everything in the keyspace,
//! so that a replica or a restarted server can be compared with the master.

use super::errors::{NO_PAYLOAD, NO_SESSION};
use super::*;
use redis::Connection;
use std::collections::BTreeMap;

/// What the mix leaves behind: sessions that must be there, and sessions
/// that were ended and must stay ended.
pub struct Mixed {
    pub live: Vec<String>,
    pub ended: Vec<String>,
}

/// Every command, with every write path: START (and START 0), PSET (binary
/// and overwriting), EXPIRE (with and without payloads, and 0), PDEL (one
/// field, and the last), END.
pub fn run_mix(con: &mut Connection, sign_key: &str) -> Mixed {
    let t: Vec<String> = (0..6).map(|_| start(con, sign_key, 1000)).collect();
    let _ghost = start(con, sign_key, 0);
    let pset = |con: &mut Connection, token: &str, name: &[u8], data: &[u8]| {
        let args: [&[u8]; 5] = [
            b"SESSIONGATE.PSET",
            sign_key.as_bytes(),
            token.as_bytes(),
            name,
            data,
        ];
        assert_eq!(call(con, &args), Ok(Value::Okay));
    };
    let ok = |con: &mut Connection, args: &[&str]| {
        assert_eq!(call(con, args), Ok(Value::Okay), "{args:?}")
    };
    pset(con, &t[0], b"user", b"alice");
    pset(con, &t[0], b"bin\0name", b"\0\xff\r\n");
    pset(con, &t[0], b"user", b"bob");
    pset(con, &t[1], b"cart", b"3 items");
    ok(con, &["SESSIONGATE.EXPIRE", sign_key, &t[1], "5000"]);
    ok(con, &["SESSIONGATE.EXPIRE", sign_key, &t[2], "7000"]);
    pset(con, &t[3], b"a", b"1");
    pset(con, &t[3], b"b", b"2");
    ok(con, &["SESSIONGATE.PDEL", sign_key, &t[3], "a"]);
    pset(con, &t[4], b"only", b"1");
    ok(con, &["SESSIONGATE.PDEL", sign_key, &t[4], "only"]);
    pset(con, &t[5], b"x", b"y");
    ok(con, &["SESSIONGATE.END", sign_key, &t[5]]);
    let expired_at_once = start(con, sign_key, 1000);
    pset(con, &expired_at_once, b"x", b"y");
    ok(
        con,
        &["SESSIONGATE.EXPIRE", sign_key, &expired_at_once, "0"],
    );
    let ended_bare = start(con, sign_key, 1000);
    ok(con, &["SESSIONGATE.END", sign_key, &ended_bare]);
    Mixed {
        live: t[..5].to_vec(),
        ended: vec![t[5].clone(), expired_at_once, ended_bare],
    }
}

/// One key as compared across servers: type, value, absolute expiry.
#[derive(Debug, PartialEq, Eq)]
pub struct KeyState {
    pub kind: String,
    pub value: Vec<(Vec<u8>, Vec<u8>)>,
    pub expires_at: i64,
}

pub fn snapshot(con: &mut Connection) -> BTreeMap<Vec<u8>, KeyState> {
    let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg("*").query(con).unwrap();
    keys.into_iter()
        .map(|key| {
            let kind: String = redis::cmd("TYPE").arg(&key).query(con).unwrap();
            let value = match kind.as_str() {
                "string" => vec![(Vec::new(), redis::cmd("GET").arg(&key).query(con).unwrap())],
                "hash" => {
                    let mut fields: Vec<(Vec<u8>, Vec<u8>)> =
                        redis::cmd("HGETALL").arg(&key).query(con).unwrap();
                    fields.sort();
                    fields
                }
                other => panic!("unexpected {other} key {key:?}"),
            };
            let expires_at = redis::cmd("PEXPIRETIME").arg(&key).query(con).unwrap();
            (
                key.clone(),
                KeyState {
                    kind,
                    value,
                    expires_at,
                },
            )
        })
        .collect()
}

/// The mix's sessions read back through the module on `con`.
pub fn assert_sessions_readable(con: &mut Connection, sign_key: &str, mixed: &Mixed) {
    let pget = |con: &mut Connection, token: &str, name: &[u8]| {
        let args: [&[u8]; 4] = [
            b"SESSIONGATE.PGET",
            sign_key.as_bytes(),
            token.as_bytes(),
            name,
        ];
        call(con, &args)
    };
    assert_eq!(
        pget(con, &mixed.live[0], b"user"),
        Ok(Value::BulkString(b"bob".to_vec()))
    );
    assert_eq!(
        pget(con, &mixed.live[0], b"bin\0name"),
        Ok(Value::BulkString(b"\0\xff\r\n".to_vec()))
    );
    assert_eq!(
        pget(con, &mixed.live[1], b"cart"),
        Ok(Value::BulkString(b"3 items".to_vec()))
    );
    assert_eq!(
        pget(con, &mixed.live[3], b"b"),
        Ok(Value::BulkString(b"2".to_vec()))
    );
    assert_eq!(pget(con, &mixed.live[3], b"a"), Err(NO_PAYLOAD.into()));
    for token in &mixed.ended {
        assert_eq!(
            pget(con, token, b"x"),
            Err(NO_SESSION.into()),
            "an ended session came back"
        );
    }
}
