//! docs/tokens.md#v2-tokens, v2 sessions, against real servers: `sessiongate.token-version 2`
//! makes a three-argument START mint `v2.{<tag>}.<id>.<sig>`, whose session
//! is one hash `sg-session:{<tag>}.<id>` with its record in field `""`.
//! Everything the module computes is recomputed here without its code: the
//! CRC16 and the canonical tags, the HMAC, the record's layout
//! (src/store/record.rs's table, docs/keys.md#v2-record).

mod common;

use common::errors::{
    payload_data_too_long, payload_name_too_long, too_many_payloads, unknown_ring, BAD_TTL,
    EMPTY_PAYLOAD_DATA, EMPTY_PAYLOAD_NAME, EMPTY_SIGN_KEY, EMPTY_TOKEN, FORGED_SIGNATURE,
    MALFORMED_TOKEN, NO_PAYLOAD, NO_SESSION, STALE_SIGNATURE, UNREADABLE_RECORD, WRONG_ARITY,
};
use common::slots::{canonical_tag, canonical_tags, crc16, key_hash_slot};
use common::workload::snapshot;
use common::*;
use redis::Connection;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

const KEY: &str = "v2-sign-key-that-must-stay-secret";
/// Loadmodule arguments: every START on the server mints v2.
const V2: [&str; 2] = ["token-version", "2"];
/// docs/tokens.md#v2-tokens: v2 expiries are at most 2^53 ms.
const MAX_V2_EXPIRY_MS: i64 = 1 << 53;

// ---------------------------------------------------------------------------
// Slots and canonical tags, as Redis Cluster computes them, written here.

// ---------------------------------------------------------------------------
// v2 tokens, written here.

/// A v2 token's parts.
#[derive(Debug, Clone)]
struct V2 {
    tag: String,
    id: String,
    signature: String,
}

impl V2 {
    /// `^v2\.\{[0-9A-Za-z]{1,3}\}\.[0-9A-Za-z]{16}\.[0-9a-f]{64}$`, by hand.
    fn parse(token: &str) -> Option<V2> {
        let rest = token.strip_prefix("v2.{")?;
        let (tag, rest) = rest.split_once("}.")?;
        let alnum = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric());
        if !(1..=3).contains(&tag.len()) || !alnum(tag) {
            return None;
        }
        let (id, signature) = (rest.get(..16)?, rest.get(16..)?);
        let signature = signature.strip_prefix('.')?;
        let hex = signature
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        (alnum(id) && id.len() == 16 && signature.len() == 64 && hex).then(|| V2 {
            tag: tag.into(),
            id: id.into(),
            signature: signature.into(),
        })
    }

    fn of(token: &str) -> V2 {
        V2::parse(token).unwrap_or_else(|| panic!("not a v2 token: {token:?}"))
    }

    /// The token for `tag` and `id`, signed with `sign_key`.
    fn forge(sign_key: &str, tag: &str, id: &str) -> String {
        let signed = format!("v2.{{{tag}}}.{id}");
        format!(
            "{signed}.{}",
            hmac_hex(sign_key.as_bytes(), signed.as_bytes())
        )
    }

    /// `sg-session:{<tag>}.<id>`.
    fn key(&self) -> String {
        format!("sg-session:{{{}}}.{}", self.tag, self.id)
    }

    /// What the session's record keeps of the signature.
    fn binding(&self) -> &str {
        &self.signature[..32]
    }
}

fn key_of(token: &str) -> String {
    V2::of(token).key()
}

/// START on a server minting v2: the token, checked for its shape.
fn start_v2(con: &mut Connection, sign_key: &str, ttl: i64) -> String {
    let token = start(con, sign_key, ttl);
    assert!(
        V2::parse(&token).is_some(),
        "START minted {token:?}, not v2"
    );
    token
}

/// The record's layout (src/store/record.rs): format 1, the 32-byte
/// binding, `created` as 8 bytes big-endian, then optional fields.
#[derive(Debug, PartialEq)]
struct Record {
    format: u8,
    binding: Vec<u8>,
    created: i64,
    rest: Vec<u8>,
}

impl Record {
    fn decode(bytes: &[u8]) -> Record {
        assert!(bytes.len() >= 41, "a record of {} bytes", bytes.len());
        Record {
            format: bytes[0],
            binding: bytes[1..33].to_vec(),
            created: i64::from_be_bytes(bytes[33..41].try_into().unwrap()),
            rest: bytes[41..].to_vec(),
        }
    }

    fn encode(binding: &[u8], created: i64) -> Vec<u8> {
        assert_eq!(binding.len(), 32);
        [&[1u8][..], binding, &created.to_be_bytes()].concat()
    }
}

// ---------------------------------------------------------------------------
// Plain Redis, for looking at what the module wrote.

fn redis_now_ms(con: &mut Connection) -> i64 {
    let (secs, micros): (i64, i64) = redis::cmd("TIME").query(con).unwrap();
    secs * 1000 + micros / 1000
}

fn dbsize(con: &mut Connection) -> i64 {
    redis::cmd("DBSIZE").query(con).unwrap()
}

fn key_type(con: &mut Connection, key: &str) -> String {
    redis::cmd("TYPE").arg(key).query(con).unwrap()
}

fn pexpiretime(con: &mut Connection, key: &str) -> i64 {
    redis::cmd("PEXPIRETIME").arg(key).query(con).unwrap()
}

fn hgetall(con: &mut Connection, key: &str) -> BTreeMap<Vec<u8>, Vec<u8>> {
    redis::cmd("HGETALL").arg(key).query(con).unwrap()
}

fn record_bytes(con: &mut Connection, key: &str) -> Vec<u8> {
    redis::cmd("HGET").arg(key).arg("").query(con).unwrap()
}

fn hset(con: &mut Connection, key: &str, field: &[u8], value: &[u8]) {
    let _: i64 = redis::cmd("HSET")
        .arg(key)
        .arg(field)
        .arg(value)
        .query(con)
        .unwrap();
}

fn config_get(con: &mut Connection, name: &str) -> String {
    let (_, value): (String, String) = redis::cmd("CONFIG")
        .arg("GET")
        .arg(name)
        .query(con)
        .unwrap();
    value
}

fn set_token_version(con: &mut Connection, version: &str) -> Result<Value, String> {
    call(
        con,
        &["CONFIG", "SET", "sessiongate.token-version", version],
    )
}

fn dirty(con: &mut Connection) -> i64 {
    info_field(con, "persistence", "rdb_changes_since_last_save")
        .and_then(|v| v.parse().ok())
        .expect("rdb_changes_since_last_save")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every byte string the keyspace holds: each key's name, each field and
/// value (or a string's value), and each key's DUMP.
fn keyspace_bytes(con: &mut Connection) -> Vec<Vec<u8>> {
    let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg("*").query(con).unwrap();
    let mut all = Vec::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE").arg(&key).query(con).unwrap();
        match kind.as_str() {
            "hash" => {
                let fields: Vec<(Vec<u8>, Vec<u8>)> =
                    redis::cmd("HGETALL").arg(&key).query(con).unwrap();
                for (field, value) in fields {
                    all.push(field);
                    all.push(value);
                }
            }
            "string" => all.push(redis::cmd("GET").arg(&key).query(con).unwrap()),
            other => panic!("unexpected {other} key {key:?}"),
        }
        all.push(redis::cmd("DUMP").arg(&key).query(con).unwrap());
        all.push(key);
    }
    all
}

/// The arguments of every command that takes a token, with valid values
/// for the rest.
fn token_commands(keyref: &str, token: &str) -> Vec<Vec<String>> {
    [
        &["SESSIONGATE.EXPIRE", keyref, token, "100"][..],
        &["SESSIONGATE.PSET", keyref, token, "name", "data"],
        &["SESSIONGATE.PGET", keyref, token, "name"],
        &["SESSIONGATE.PDEL", keyref, token, "name"],
        &["SESSIONGATE.END", keyref, token],
        &["SESSIONGATE.TTL", keyref, token],
        &["SESSIONGATE.PGETALL", keyref, token],
        &["SESSIONGATE.PMGET", keyref, token, "name", "other"],
        &[
            "SESSIONGATE.PMSET",
            keyref,
            token,
            "name",
            "data",
            "n2",
            "d2",
        ],
    ]
    .iter()
    .map(|args| args.iter().map(|a| a.to_string()).collect())
    .collect()
}

fn bulk(data: &[u8]) -> Value {
    Value::BulkString(data.to_vec())
}

/// Payloads as (name, data), sorted by name.
type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// PGETALL's RESP2 reply as pairs, sorted by name.
fn pgetall(con: &mut Connection, sign_key: &str, token: &str) -> Pairs {
    let reply = call(con, &["SESSIONGATE.PGETALL", sign_key, token]).expect("PGETALL");
    let Value::Array(flat) = reply else {
        panic!("PGETALL: {reply:?}")
    };
    assert_eq!(flat.len() % 2, 0, "{flat:?}");
    let mut pairs: Pairs = flat
        .chunks(2)
        .map(|pair| match pair {
            [Value::BulkString(name), Value::BulkString(data)] => (name.clone(), data.clone()),
            other => panic!("PGETALL pair: {other:?}"),
        })
        .collect();
    pairs.sort();
    pairs
}

// ---------------------------------------------------------------------------
// 1. The token.

#[test]
fn the_independent_crc16_and_tags_agree_with_redis_cluster() {
    // Known values: the CRC16 check value, and CLUSTER KEYSLOT of well-known keys.
    assert_eq!(crc16(b"123456789"), 0x31C3);
    assert_eq!(key_hash_slot(b"foo"), 12182);
    assert_eq!(key_hash_slot(b"bar"), 5061);
    assert_eq!(
        key_hash_slot(b"{user1000}.following"),
        key_hash_slot(b"user1000")
    );
    assert_eq!(key_hash_slot(b"somekey"), 11058);
    // An empty first {} hashes the whole key.
    assert_eq!(
        key_hash_slot(b"foo{}{bar}"),
        usize::from(crc16(b"foo{}{bar}")) % 16384
    );
    // Every slot has a tag of 1 to 3 characters, and each is in its slot.
    let tags = canonical_tags();
    assert_eq!(tags.len(), 16384);
    for (slot, tag) in tags.iter().enumerate() {
        assert!((1..=3).contains(&tag.len()), "{slot}: {tag}");
        assert_eq!(key_hash_slot(tag.as_bytes()), slot);
    }
    assert_eq!(
        canonical_tag(key_hash_slot(b"0")),
        "0",
        "the very first candidate"
    );
}

#[test]
fn start_mints_a_canonical_tag_and_an_hmac_over_everything_before_the_last_dot() {
    let server = Server::start(&V2);
    let mut con = server.connection();
    let mut slots = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for _ in 0..60 {
        let token = start_v2(&mut con, KEY, 100);
        let v2 = V2::of(&token);
        assert!((88..=90).contains(&token.len()), "{token}");
        let slot = key_hash_slot(v2.tag.as_bytes());
        assert_eq!(
            v2.tag,
            canonical_tag(slot),
            "{token}: not the slot's canonical tag"
        );
        let signed = &token[..token.rfind('.').unwrap()];
        assert_eq!(signed, format!("v2.{{{}}}.{}", v2.tag, v2.id));
        assert_eq!(
            v2.signature,
            hmac_hex(KEY.as_bytes(), signed.as_bytes()),
            "{token}"
        );
        assert_ne!(v2.signature, hmac_hex(KEY.as_bytes(), v2.id.as_bytes()));
        // A cluster client routes the token, and Redis files the key, in
        // the tag's slot.
        assert_eq!(key_hash_slot(token.as_bytes()), slot);
        assert_eq!(key_hash_slot(v2.key().as_bytes()), slot);
        slots.insert(slot);
        ids.insert(v2.id);
    }
    assert_eq!(ids.len(), 60, "ids are not reused");
    // A random slot per START: 60 draws over 16384 slots all but never repeat.
    assert!(slots.len() >= 55, "only {} distinct slots", slots.len());
    assert_eq!(dbsize(&mut con), 60);
}

// ---------------------------------------------------------------------------
// 2. The one key.

#[test]
fn a_v2_session_is_one_hash_whose_record_keeps_only_half_the_signature() {
    let server = Server::start(&V2);
    let mut con = server.connection();
    let before = redis_now_ms(&mut con);
    let token = start_v2(&mut con, KEY, 100);
    let after = redis_now_ms(&mut con);
    let v2 = V2::of(&token);
    let key = v2.key();

    assert_eq!(dbsize(&mut con), 1);
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut con).unwrap();
    assert_eq!(keys, vec![key.clone()]);
    assert_eq!(key_type(&mut con, &key), "hash");
    let pttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut con).unwrap();
    assert!((99_000..=100_000).contains(&pttl), "pttl {pttl}");
    let at = pexpiretime(&mut con, &key);
    assert!((before + 100_000..=after + 100_000).contains(&at), "{at}");

    let fields = hgetall(&mut con, &key);
    assert_eq!(fields.len(), 1, "the record and nothing else: {fields:?}");
    let bytes = &fields[&Vec::new()];
    assert_eq!(bytes.len(), 41, "a record with no optional field");
    let record = Record::decode(bytes);
    assert_eq!(record.format, 1);
    assert_eq!(record.binding, v2.binding().as_bytes());
    assert!(
        (before..=after).contains(&record.created),
        "created {} not in [{before}, {after}]",
        record.created
    );
    assert!(record.rest.is_empty());

    // With payloads too, the keyspace holds half the signature (the
    // binding, which the search finds) and never the whole of it.
    let pset: [&[u8]; 5] = [
        b"SESSIONGATE.PSET",
        KEY.as_bytes(),
        token.as_bytes(),
        b"user",
        b"alice\0\xff",
    ];
    ok_bytes(&mut con, &pset);
    ok_bytes(
        &mut con,
        &["SESSIONGATE.PMSET", KEY, &token, "a", "1", "b", "2"],
    );
    let everything = keyspace_bytes(&mut con);
    assert!(
        everything
            .iter()
            .any(|b| contains(b, v2.binding().as_bytes())),
        "the search sees the binding"
    );
    for needle in [&v2.signature, &v2.signature[32..], &token, KEY] {
        assert!(
            !everything.iter().any(|b| contains(b, needle.as_bytes())),
            "the keyspace holds {needle}"
        );
    }

    // START 0 mints a v2 token and stores nothing.
    let ghost = start_v2(&mut con, KEY, 0);
    assert_eq!(dbsize(&mut con), 1);
    assert_eq!(err(&mut con, &["SESSIONGATE.TTL", KEY, &ghost]), NO_SESSION);
}

#[test]
fn a_v2_session_really_expires() {
    let server = Server::start(&V2);
    let mut con = server.connection();
    let token = start_v2(&mut con, KEY, 1);
    ok_bytes(&mut con, &["SESSIONGATE.PSET", KEY, &token, "a", "1"]);
    server.wait_up_to(Duration::from_secs(5), "the session to expire", || {
        call(&mut con, &["SESSIONGATE.PGET", KEY, &token, "a"]) == Err(NO_SESSION.into())
    });
    assert_eq!(dbsize(&mut con), 0);
}

// ---------------------------------------------------------------------------
// 3. Payloads beside the record.

#[test]
fn payload_names_never_collide_with_the_record() {
    let server = Server::start(&V2);
    let mut con = server.connection();
    let token = start_v2(&mut con, KEY, 100);
    let key = key_of(&token);
    let record = record_bytes(&mut con, &key);
    let t = token.as_bytes();
    let k = KEY.as_bytes();

    // PDEL on a session with no payloads at all.
    assert_eq!(
        err(&mut con, &["SESSIONGATE.PDEL", KEY, &token, "x"]),
        NO_PAYLOAD
    );
    // The record's name is no payload name.
    assert_eq!(
        err(&mut con, &["SESSIONGATE.PSET", KEY, &token, "", "x"]),
        EMPTY_PAYLOAD_NAME
    );
    assert_eq!(
        err(
            &mut con,
            &["SESSIONGATE.PMSET", KEY, &token, "a", "1", "", "x"]
        ),
        EMPTY_PAYLOAD_NAME
    );
    assert_eq!(
        err(&mut con, &["SESSIONGATE.PGET", KEY, &token, ""]),
        EMPTY_PAYLOAD_NAME
    );
    assert_eq!(
        err(&mut con, &["SESSIONGATE.PMGET", KEY, &token, "a", ""]),
        EMPTY_PAYLOAD_NAME
    );
    assert_eq!(
        err(&mut con, &["SESSIONGATE.PDEL", KEY, &token, ""]),
        EMPTY_PAYLOAD_NAME
    );

    let longest: Vec<u8> = [&b"\x01"[..], &record, &[b'r'; 200]].concat()[..200].to_vec();
    let mut payloads: Pairs = vec![
        (record.clone(), record.clone()),
        (longest.clone(), record.clone()),
        (b"\x01".to_vec(), b"\x01".to_vec()),
        (b"\0".to_vec(), b"\0".to_vec()),
        (b"\0\0".to_vec(), b"nul nul".to_vec()),
        ([&b"\x01"[..], &record[1..33]].concat(), b"binding".to_vec()),
        (b"\xff\xfe\r\n".to_vec(), b"\0\xff".to_vec()),
        (b" ".to_vec(), b" ".to_vec()),
    ];
    let (first, rest) = payloads.split_at(4);
    for (name, data) in first {
        let args: [&[u8]; 5] = [b"SESSIONGATE.PSET", k, t, name, data];
        assert_eq!(call(&mut con, &args), Ok(Value::Okay), "{name:?}");
    }
    let mut pmset: Vec<&[u8]> = vec![b"SESSIONGATE.PMSET", k, t];
    for (name, data) in rest {
        pmset.push(name);
        pmset.push(data);
    }
    assert_eq!(call(&mut con, &pmset), Ok(Value::Okay));
    let too_long = [&longest[..], b"x"].concat();
    let args: [&[u8]; 5] = [b"SESSIONGATE.PSET", k, t, &too_long, b"x"];
    assert_eq!(call(&mut con, &args), Err(payload_name_too_long(200)));

    assert_eq!(
        record_bytes(&mut con, &key),
        record,
        "the record is untouched"
    );
    let hlen: usize = redis::cmd("HLEN").arg(&key).query(&mut con).unwrap();
    assert_eq!(hlen, payloads.len() + 1);
    for (name, data) in &payloads {
        let args: [&[u8]; 4] = [b"SESSIONGATE.PGET", k, t, name];
        assert_eq!(call(&mut con, &args), Ok(bulk(data)), "{name:?}");
    }
    payloads.sort();
    assert_eq!(pgetall(&mut con, KEY, &token), payloads, "never field \"\"");
    let mut pmget: Vec<&[u8]> = vec![b"SESSIONGATE.PMGET", k, t];
    pmget.extend(payloads.iter().map(|(name, _)| &name[..]));
    pmget.push(b"absent");
    let mut expected: Vec<Value> = payloads.iter().map(|(_, data)| bulk(data)).collect();
    expected.push(Value::Nil);
    assert_eq!(call(&mut con, &pmget), Ok(Value::Array(expected)));
    let mut resp3 = server.connection_resp3();
    let Ok(Value::Map(map)) = call(&mut resp3, &["SESSIONGATE.PGETALL", KEY, &token]) else {
        panic!("PGETALL in RESP3 is a map")
    };
    assert_eq!(map.len(), payloads.len());
    assert!(map.iter().all(|(name, _)| name != &bulk(b"")), "{map:?}");

    // Deleting every payload leaves the session, with its record.
    for (name, _) in &payloads {
        let args: [&[u8]; 4] = [b"SESSIONGATE.PDEL", k, t, name];
        assert_eq!(call(&mut con, &args), Ok(Value::Okay), "{name:?}");
        let args: [&[u8]; 4] = [b"SESSIONGATE.PGET", k, t, name];
        assert_eq!(call(&mut con, &args), Err(NO_PAYLOAD.into()), "{name:?}");
        assert_eq!(record_bytes(&mut con, &key), record);
    }
    assert_eq!(pgetall(&mut con, KEY, &token), vec![]);
    assert_eq!(
        err(&mut con, &["SESSIONGATE.PDEL", KEY, &token, "x"]),
        NO_PAYLOAD,
        "no payloads at all, the record not counted"
    );
    assert_eq!(hgetall(&mut con, &key).len(), 1);
    let ttl = call(&mut con, &["SESSIONGATE.TTL", KEY, &token]);
    assert!(matches!(ttl, Ok(Value::Int(90..=100))), "{ttl:?}");
}

#[test]
fn the_payload_limit_counts_payloads_not_the_record() {
    let server = Server::start(&["token-version", "2", "max-payloads-per-session", "2"]);
    let mut con = server.connection();
    let token = start_v2(&mut con, KEY, 100);
    ok_bytes(&mut con, &["SESSIONGATE.PSET", KEY, &token, "a", "1"]);
    ok_bytes(&mut con, &["SESSIONGATE.PSET", KEY, &token, "b", "2"]);
    assert_eq!(
        err(&mut con, &["SESSIONGATE.PSET", KEY, &token, "c", "3"]),
        too_many_payloads(2)
    );
    assert_eq!(
        err(
            &mut con,
            &["SESSIONGATE.PMSET", KEY, &token, "a", "9", "c", "3"]
        ),
        too_many_payloads(2)
    );
    ok_bytes(
        &mut con,
        &["SESSIONGATE.PMSET", KEY, &token, "a", "9", "b", "8"],
    );
    assert_eq!(
        pgetall(&mut con, KEY, &token),
        vec![
            (b"a".to_vec(), b"9".to_vec()),
            (b"b".to_vec(), b"8".to_vec())
        ]
    );
    ok_bytes(&mut con, &["SESSIONGATE.PDEL", KEY, &token, "a"]);
    ok_bytes(
        &mut con,
        &["SESSIONGATE.PMSET", KEY, &token, "c", "3", "c", "4"],
    );
    assert_eq!(hgetall(&mut con, &key_of(&token)).len(), 3);

    // A limit of 1: one payload fits beside the record.
    let one = call(
        &mut con,
        &["CONFIG", "SET", "sessiongate.max-payloads-per-session", "1"],
    );
    assert_eq!(one, Ok(Value::Okay));
    let fresh = start_v2(&mut con, KEY, 100);
    ok_bytes(&mut con, &["SESSIONGATE.PSET", KEY, &fresh, "only", "1"]);
    assert_eq!(
        err(&mut con, &["SESSIONGATE.PSET", KEY, &fresh, "two", "2"]),
        too_many_payloads(1)
    );
}

// ---------------------------------------------------------------------------
// 4. v1 and v2 side by side.

/// START a v1 session, switch the server to v2, START a v2 session.
fn one_of_each(con: &mut Connection) -> (String, String) {
    assert_eq!(config_get(con, "sessiongate.token-version"), "1");
    let v1 = start(con, KEY, 100);
    assert!(v1.starts_with("v1.") && v1.len() == 84, "{v1}");
    assert_eq!(set_token_version(con, "2"), Ok(Value::Okay));
    let v2 = start_v2(con, KEY, 100);
    (v1, v2)
}

#[test]
fn v1_and_v2_sessions_answer_every_command_alike() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let (v1, v2) = one_of_each(&mut con);
    let mut resp3 = server.connection_resp3();
    let steps: &[(&[&str], Result<Value, String>)] = &[
        (&["PSET", "n", "d"], Ok(Value::Okay)),
        (&["PGET", "n"], Ok(bulk(b"d"))),
        (&["PMSET", "a", "1", "b", "2", "a", "3"], Ok(Value::Okay)),
        (
            &["PMGET", "a", "x", "b", "n"],
            Ok(Value::Array(vec![
                bulk(b"3"),
                Value::Nil,
                bulk(b"2"),
                bulk(b"d"),
            ])),
        ),
        (&["PDEL", "a"], Ok(Value::Okay)),
        (&["PDEL", "never-set"], Ok(Value::Okay)),
        (&["PGET", "a"], Err(NO_PAYLOAD.into())),
        // Right after EXPIRE, so that a slow machine reads the same.
        (&["EXPIRE", "50"], Ok(Value::Okay)),
        (&["TTL"], Ok(Value::Int(50))),
        (&["PDEL", "n"], Ok(Value::Okay)),
        (&["PDEL", "b"], Ok(Value::Okay)),
        (&["PDEL", "b"], Err(NO_PAYLOAD.into())),
        (&["PGETALL"], Ok(Value::Array(vec![]))),
        (&["PSET", "z", "26"], Ok(Value::Okay)),
    ];
    for (words, expected) in steps {
        for token in [&v1, &v2] {
            let mut args = vec![
                format!("SESSIONGATE.{}", words[0]),
                KEY.into(),
                token.clone(),
            ];
            args.extend(words[1..].iter().map(|w| w.to_string()));
            assert_eq!(&call(&mut con, &args), expected, "{args:?}");
        }
    }
    for token in [&v1, &v2] {
        assert_eq!(
            pgetall(&mut con, KEY, token),
            vec![(b"z".to_vec(), b"26".to_vec())]
        );
        assert_eq!(
            call(&mut resp3, &["SESSIONGATE.PGETALL", KEY, token]),
            Ok(Value::Map(vec![(bulk(b"z"), bulk(b"26"))]))
        );
    }
    // Both sessions' expiries moved alike.
    let v1_at = pexpiretime(&mut con, &signature_key(&v1));
    let v2_at = pexpiretime(&mut con, &key_of(&v2));
    assert!((v1_at - v2_at).abs() < 1000, "{v1_at} vs {v2_at}");
    assert_eq!(pexpiretime(&mut con, &payloads_key(&v1)), v1_at);

    // Back to version 1: both sessions keep working.
    assert_eq!(set_token_version(&mut con, "1"), Ok(Value::Okay));
    let again = start(&mut con, KEY, 100);
    assert!(again.starts_with("v1."), "{again}");
    for token in [&v1, &v2] {
        assert_eq!(
            call(&mut con, &["SESSIONGATE.PGET", KEY, token, "z"]),
            Ok(bulk(b"26"))
        );
    }
    for token in [&v1, &v2] {
        assert_eq!(
            call(&mut con, &["SESSIONGATE.END", KEY, token]),
            Ok(Value::Okay)
        );
        assert_eq!(
            err(&mut con, &["SESSIONGATE.PGET", KEY, token, "z"]),
            NO_SESSION
        );
    }
    assert_eq!(dbsize(&mut con), 1, "only the last v1 session is left");

    // EXPIRE 0 ends either at once.
    assert_eq!(set_token_version(&mut con, "2"), Ok(Value::Okay));
    let v2 = start_v2(&mut con, KEY, 100);
    ok_bytes(&mut con, &["SESSIONGATE.PSET", KEY, &v2, "a", "1"]);
    for token in [&again, &v2] {
        assert_eq!(
            call(&mut con, &["SESSIONGATE.EXPIRE", KEY, token, "0"]),
            Ok(Value::Okay)
        );
        assert_eq!(err(&mut con, &["SESSIONGATE.TTL", KEY, token]), NO_SESSION);
    }
    assert_eq!(dbsize(&mut con), 0);
}

/// A tag of 1–3 alphanumerics that is not its slot's canonical tag.
fn non_canonical_tag() -> String {
    let tags = canonical_tags();
    ["zzz", "zzy", "Zz", "zz9"]
        .iter()
        .find(|t| tags[key_hash_slot(t.as_bytes())] != **t)
        .expect("one of them is not canonical")
        .to_string()
}

/// The same token with its last hex digit changed: the same binding, a
/// wrong HMAC.
fn last_digit_changed(token: &str) -> String {
    let (head, last) = token.split_at(token.len() - 1);
    format!("{head}{}", if last == "0" { "1" } else { "0" })
}

#[test]
fn every_check_fails_alike_for_v1_and_v2_tokens_at_its_step() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let (v1, v2) = one_of_each(&mut con);
    for token in [&v1, &v2] {
        ok_bytes(&mut con, &["SESSIONGATE.PSET", KEY, token, "name", "data"]);
    }
    let parts = V2::of(&v2);
    let before = snapshot(&mut con);

    // Per step, a v1 and a v2 case (keyref, token) that must fail there.
    let v1_id = id_of(&v1).to_string();
    let forge_v1 = |sign_key: &str, id: &str| {
        format!("v1.{id}.{}", hmac_hex(sign_key.as_bytes(), id.as_bytes()))
    };
    let other_tag = canonical_tag((key_hash_slot(parts.tag.as_bytes()) + 1) % 16384);
    let odd_tag = non_canonical_tag();
    let mut uppercase = v2.clone();
    uppercase.replace_range(v2.len() - 64.., &parts.signature.to_uppercase());
    assert_ne!(uppercase, v2, "the signature has a letter");
    let cases: Vec<(&str, String, String, String)> = vec![
        ("step 2", "".into(), v1.clone(), EMPTY_SIGN_KEY.into()),
        ("step 2", "".into(), v2.clone(), EMPTY_SIGN_KEY.into()),
        ("step 2", "@nope".into(), v1.clone(), unknown_ring("nope")),
        ("step 2", "@nope".into(), v2.clone(), unknown_ring("nope")),
        ("step 4", KEY.into(), "".into(), EMPTY_TOKEN.into()),
        (
            "step 5",
            KEY.into(),
            v1[..83].into(),
            MALFORMED_TOKEN.into(),
        ),
        (
            "step 5",
            KEY.into(),
            v2[..v2.len() - 1].into(),
            MALFORMED_TOKEN.into(),
        ),
        (
            "step 5",
            KEY.into(),
            format!("{v2}0"),
            MALFORMED_TOKEN.into(),
        ),
        ("step 5", KEY.into(), uppercase, MALFORMED_TOKEN.into()),
        (
            "step 5",
            KEY.into(),
            v2.replacen("v2.", "v3.", 1),
            MALFORMED_TOKEN.into(),
        ),
        (
            "step 5",
            KEY.into(),
            v2.replacen('{', "", 1),
            MALFORMED_TOKEN.into(),
        ),
        (
            "step 5",
            KEY.into(),
            format!("v2.{{}}.{}.{}", parts.id, parts.signature),
            MALFORMED_TOKEN.into(),
        ),
        (
            "step 5",
            KEY.into(),
            format!("v2.{}.{}.{}", parts.tag, parts.id, parts.signature),
            MALFORMED_TOKEN.into(),
        ),
        (
            "step 5",
            KEY.into(),
            V2::forge(KEY, "zzzz", &parts.id),
            MALFORMED_TOKEN.into(),
        ),
        // Signed right, but a tag that is not canonical.
        (
            "step 5",
            KEY.into(),
            V2::forge(KEY, &odd_tag, &parts.id),
            MALFORMED_TOKEN.into(),
        ),
        // A v1 token of the v2 token's id and signature: well formed, not signed.
        (
            "step 7",
            KEY.into(),
            format!("v1.{}.{}", parts.id, parts.signature),
            FORGED_SIGNATURE.into(),
        ),
        (
            "step 7",
            KEY.into(),
            last_digit_changed(&v1),
            FORGED_SIGNATURE.into(),
        ),
        // The binding is right, the rest of the HMAC is not.
        (
            "step 7",
            KEY.into(),
            last_digit_changed(&v2),
            FORGED_SIGNATURE.into(),
        ),
        (
            "step 7",
            "wrongkey".into(),
            v1.clone(),
            FORGED_SIGNATURE.into(),
        ),
        (
            "step 7",
            "wrongkey".into(),
            v2.clone(),
            FORGED_SIGNATURE.into(),
        ),
        (
            "step 7",
            KEY.into(),
            forge_v1("otherkey", &v1_id),
            FORGED_SIGNATURE.into(),
        ),
        (
            "step 7",
            KEY.into(),
            V2::forge("otherkey", &parts.tag, &parts.id),
            FORGED_SIGNATURE.into(),
        ),
        // A v1 signature over the id does not sign a v2 token.
        (
            "step 7",
            KEY.into(),
            format!(
                "v2.{{{}}}.{}.{}",
                parts.tag,
                parts.id,
                hmac_hex(KEY.as_bytes(), parts.id.as_bytes())
            ),
            FORGED_SIGNATURE.into(),
        ),
        (
            "step 8",
            KEY.into(),
            forge_v1(KEY, "ZZZZZZZZZZZZZZZZ"),
            NO_SESSION.into(),
        ),
        (
            "step 8",
            KEY.into(),
            V2::forge(KEY, &parts.tag, "ZZZZZZZZZZZZZZZZ"),
            NO_SESSION.into(),
        ),
        // The same id in another slot is another session.
        (
            "step 8",
            KEY.into(),
            V2::forge(KEY, other_tag, &parts.id),
            NO_SESSION.into(),
        ),
        // The v1 token's id as v2, the v2 token's id as v1: other keys.
        (
            "step 8",
            KEY.into(),
            V2::forge(KEY, &parts.tag, &v1_id),
            NO_SESSION.into(),
        ),
        (
            "step 8",
            KEY.into(),
            forge_v1(KEY, &parts.id),
            NO_SESSION.into(),
        ),
        // Signed by another key for the same session: valid, not the stored one.
        (
            "step 9",
            "otherkey".into(),
            forge_v1("otherkey", &v1_id),
            STALE_SIGNATURE.into(),
        ),
        (
            "step 9",
            "otherkey".into(),
            V2::forge("otherkey", &parts.tag, &parts.id),
            STALE_SIGNATURE.into(),
        ),
    ];
    for (step, keyref, token, expected) in &cases {
        for args in token_commands(keyref, token) {
            assert_eq!(&err(&mut con, &args), expected, "{step}: {args:?}");
        }
    }

    // Step 6 (EXPIRE's ttl) comes before 7, after 5, for both versions.
    for token in [&v1, &v2] {
        let forged = last_digit_changed(token);
        for ttl in ["-1", "x", "1.5"] {
            assert_eq!(
                err(&mut con, &["SESSIONGATE.EXPIRE", KEY, &forged, ttl]),
                BAD_TTL
            );
            assert_eq!(
                err(&mut con, &["SESSIONGATE.EXPIRE", KEY, &token[..20], ttl]),
                MALFORMED_TOKEN
            );
        }
    }
    // Steps 10 to 12 come after 9, for both versions.
    for (keyref, token) in [
        ("otherkey", forge_v1("otherkey", &v1_id)),
        ("otherkey", V2::forge("otherkey", &parts.tag, &parts.id)),
    ] {
        for args in [
            vec!["SESSIONGATE.PSET", keyref, &token, "", ""],
            vec!["SESSIONGATE.PGET", keyref, &token, ""],
            vec!["SESSIONGATE.PDEL", keyref, &token, ""],
            vec!["SESSIONGATE.PMGET", keyref, &token, ""],
            vec!["SESSIONGATE.PMSET", keyref, &token, "", ""],
        ] {
            assert_eq!(err(&mut con, &args), STALE_SIGNATURE, "{args:?}");
        }
    }
    let set = |con: &mut Connection, name: &str, value: &str| {
        let config = format!("sessiongate.{name}");
        assert_eq!(
            call(con, &["CONFIG", "SET", &config, value]),
            Ok(Value::Okay)
        );
    };
    set(&mut con, "max-payload-data-len", "4");
    let long_name = "n".repeat(201);
    for token in [&v1, &v2] {
        let payload_cases: [(&[&str], String); 8] = [
            (&["PSET", "", ""], EMPTY_PAYLOAD_NAME.into()),
            (
                &["PSET", long_name.as_str(), ""],
                payload_name_too_long(200),
            ),
            (&["PSET", "n", ""], EMPTY_PAYLOAD_DATA.into()),
            (&["PSET", "n", "12345"], payload_data_too_long(4)),
            (&["PMSET", "a", "1", "n", "12345"], payload_data_too_long(4)),
            (&["PGET", long_name.as_str()], payload_name_too_long(200)),
            (&["PGET", "absent"], NO_PAYLOAD.into()),
            (&["PMSET", "a", "1", "b"], WRONG_ARITY.into()),
        ];
        for (words, expected) in payload_cases {
            let mut args = vec![
                format!("SESSIONGATE.{}", words[0]),
                KEY.into(),
                token.clone(),
            ];
            args.extend(words[1..].iter().map(|w| w.to_string()));
            let error = err(&mut con, &args);
            assert!(error.starts_with(&expected), "{args:?}: {error}");
        }
    }
    set(&mut con, "max-payload-data-len", "8000000");
    assert_eq!(
        snapshot(&mut con),
        before,
        "no failed check changed anything"
    );

    // Step 9 for a stored binding (v2) or signature (v1) that is not the
    // token's: the session rewritten by hand.
    let record = record_bytes(&mut con, &parts.key());
    let created = Record::decode(&record).created;
    let other_binding = &V2::of(&V2::forge("otherkey", &parts.tag, &parts.id)).signature[..32];
    hset(
        &mut con,
        &parts.key(),
        b"",
        &Record::encode(other_binding.as_bytes(), created),
    );
    let other_signature = &forge_v1("otherkey", &v1_id)[20..];
    let _: () = redis::cmd("SET")
        .arg(signature_key(&v1))
        .arg(other_signature)
        .arg("KEEPTTL")
        .query(&mut con)
        .unwrap();
    let rewritten = snapshot(&mut con);
    for token in [&v1, &v2] {
        for args in token_commands(KEY, token) {
            assert_eq!(err(&mut con, &args), STALE_SIGNATURE, "{args:?}");
        }
    }
    assert_eq!(snapshot(&mut con), rewritten);
    // The token that signed the stored binding is now the session's.
    let now_bound = V2::forge("otherkey", &parts.tag, &parts.id);
    assert_eq!(
        call(
            &mut con,
            &["SESSIONGATE.PGET", "otherkey", &now_bound, "name"]
        ),
        Ok(bulk(b"data"))
    );
}

// ---------------------------------------------------------------------------
// 5. Unreadable records.

/// WATCH `key` on `watcher`, run `during`, then whether a MULTI/EXEC still
/// runs (nothing signalled the key).
fn watch_survives(watcher: &mut Connection, key: &str, during: impl FnOnce()) -> bool {
    let _: () = redis::cmd("WATCH").arg(key).query(watcher).unwrap();
    during();
    let _: () = redis::cmd("MULTI").query(watcher).unwrap();
    let _: () = redis::cmd("PING").query(watcher).unwrap();
    let exec: Value = redis::cmd("EXEC").query(watcher).unwrap();
    exec != Value::Nil
}

/// Every key's DUMP and absolute expiry, whatever its type.
fn dumps(con: &mut Connection) -> BTreeMap<Vec<u8>, (Vec<u8>, i64)> {
    let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg("*").query(con).unwrap();
    keys.into_iter()
        .map(|key| {
            let dump: Vec<u8> = redis::cmd("DUMP").arg(&key).query(con).unwrap();
            let at: i64 = redis::cmd("PEXPIRETIME").arg(&key).query(con).unwrap();
            (key, (dump, at))
        })
        .collect()
}

/// Every command on `token` gets the unreadable-record error, and nothing
/// changes: keyspace, dirty counter, WATCH.
fn assert_unreadable(server: &Server, con: &mut Connection, token: &str, why: &str) {
    let key = key_of(token);
    let before = dumps(con);
    let dirty_before = dirty(con);
    let mut watcher = server.connection();
    let survived = watch_survives(&mut watcher, &key, || {
        for args in token_commands(KEY, token) {
            assert_eq!(err(con, &args), UNREADABLE_RECORD, "{why}: {args:?}");
        }
        let zero = ["SESSIONGATE.EXPIRE", KEY, token, "0"];
        assert_eq!(err(con, &zero), UNREADABLE_RECORD, "{why}: EXPIRE 0");
        // After step 8, before 9 and 10.
        let stale = V2::of(token);
        let other = V2::forge("otherkey", &stale.tag, &stale.id);
        assert_eq!(
            err(con, &["SESSIONGATE.PGET", "otherkey", &other, "x"]),
            UNREADABLE_RECORD,
            "{why}: stale"
        );
        assert_eq!(
            err(con, &["SESSIONGATE.PSET", KEY, token, "", ""]),
            UNREADABLE_RECORD,
            "{why}: empty name"
        );
        // Steps up to 7 come first.
        assert_eq!(
            err(con, &["SESSIONGATE.PGET", "wrongkey", token, "x"]),
            FORGED_SIGNATURE,
            "{why}"
        );
        assert_eq!(
            err(con, &["SESSIONGATE.EXPIRE", KEY, token, "-1"]),
            BAD_TTL,
            "{why}"
        );
    });
    assert!(survived, "{why}: a failed command signalled the key");
    assert_eq!(dumps(con), before, "{why}: the keyspace changed");
    assert_eq!(dirty(con), dirty_before, "{why}: a failed command wrote");
}

#[test]
fn an_unreadable_record_is_an_error_after_step_8_and_changes_nothing() {
    let server = Server::start(&V2);
    let mut con = server.connection();
    let token = start_v2(&mut con, KEY, 100);
    let key = key_of(&token);
    ok_bytes(&mut con, &["SESSIONGATE.PSET", KEY, &token, "name", "data"]);
    let good = record_bytes(&mut con, &key);
    let mut format_2 = good.clone();
    format_2[0] = 2;
    let unreadable: [(&str, Vec<u8>); 6] = [
        ("garbage", b"garbage".to_vec()),
        ("empty", Vec::new()),
        ("one byte short", good[..40].to_vec()),
        ("one byte more", [&good[..], b"\0"].concat()),
        ("format 2", format_2),
        ("an unknown field", [&good[..], b"x"].concat()),
    ];
    for (why, bytes) in unreadable {
        hset(&mut con, &key, b"", &bytes);
        assert_unreadable(&server, &mut con, &token, why);
        assert_eq!(dbsize(&mut con), 1);
        assert_eq!(hgetall(&mut con, &key).len(), 2);
    }
    // The record put back, the session works again, and a write that
    // succeeds does signal WATCH and count as a change: the checks above
    // can fail.
    hset(&mut con, &key, b"", &good);
    assert_eq!(
        call(&mut con, &["SESSIONGATE.PGET", KEY, &token, "name"]),
        Ok(bulk(b"data"))
    );
    let dirty_before = dirty(&mut con);
    let mut watcher = server.connection();
    let survived = watch_survives(&mut watcher, &key, || {
        ok_bytes(&mut con, &["SESSIONGATE.PSET", KEY, &token, "n", "d"]);
    });
    assert!(!survived, "a PSET must abort a WATCHing transaction");
    assert!(dirty(&mut con) > dirty_before);
    assert_eq!(
        call(&mut con, &["SESSIONGATE.END", KEY, &token]),
        Ok(Value::Okay)
    );
    assert_eq!(dbsize(&mut con), 0);
}

#[test]
fn a_v2_key_name_holding_no_record_or_no_hash_is_unreadable() {
    let server = Server::start(&V2);
    let mut con = server.connection();
    let tag = canonical_tag(4242);
    let token = V2::forge(KEY, tag, "NoRecordHere0000");
    let key = key_of(&token);
    assert_eq!(
        err(&mut con, &["SESSIONGATE.PGET", KEY, &token, "x"]),
        NO_SESSION
    );

    // A hash with payload-like fields and no field "".
    hset(&mut con, &key, b"name", b"data");
    let _: () = redis::cmd("EXPIRE")
        .arg(&key)
        .arg(100)
        .query(&mut con)
        .unwrap();
    assert_unreadable(&server, &mut con, &token, "a hash without a record");

    // A string, a list, a set.
    let _: () = redis::cmd("DEL").arg(&key).query(&mut con).unwrap();
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("x")
        .query(&mut con)
        .unwrap();
    assert_unreadable(&server, &mut con, &token, "a string");
    let _: () = redis::cmd("DEL").arg(&key).query(&mut con).unwrap();
    let _: () = redis::cmd("RPUSH")
        .arg(&key)
        .arg("")
        .query(&mut con)
        .unwrap();
    assert_unreadable(&server, &mut con, &token, "a list");
    let _: () = redis::cmd("DEL").arg(&key).query(&mut con).unwrap();
    let _: () = redis::cmd("SADD")
        .arg(&key)
        .arg("")
        .query(&mut con)
        .unwrap();
    assert_unreadable(&server, &mut con, &token, "a set");
    assert_eq!(dbsize(&mut con), 1);
}

// ---------------------------------------------------------------------------
// 6. The 2^53 cap.

#[test]
fn v2_expiries_stop_at_two_to_the_53_ms_and_v1_expiries_do_not() {
    let server = Server::start(&V2);
    let mut con = server.connection();
    let now = redis_now_ms(&mut con);
    // now + over s is past 2^53 ms whenever the server reads its clock.
    let over = ((MAX_V2_EXPIRY_MS - now) / 1000 + 2).to_string();
    // now + under s stays a minute short of 2^53 ms.
    let under = ((MAX_V2_EXPIRY_MS - now) / 1000 - 60).to_string();

    assert_eq!(err(&mut con, &["SESSIONGATE.START", KEY, &over]), BAD_TTL);
    assert_eq!(dbsize(&mut con), 0, "a refused START stores nothing");
    let far = ok_bytes(&mut con, &["SESSIONGATE.START", KEY, &under]);
    let far = String::from_utf8(far).unwrap();
    let at = pexpiretime(&mut con, &key_of(&far));
    assert!(
        (MAX_V2_EXPIRY_MS - 61_000..=MAX_V2_EXPIRY_MS).contains(&at),
        "{at}"
    );

    let token = start_v2(&mut con, KEY, 100);
    let at = pexpiretime(&mut con, &key_of(&token));
    assert_eq!(
        err(&mut con, &["SESSIONGATE.EXPIRE", KEY, &token, &over]),
        BAD_TTL
    );
    assert_eq!(pexpiretime(&mut con, &key_of(&token)), at, "unchanged");
    assert_eq!(
        call(&mut con, &["SESSIONGATE.EXPIRE", KEY, &token, &under]),
        Ok(Value::Okay)
    );
    let moved = pexpiretime(&mut con, &key_of(&token));
    assert!(moved <= MAX_V2_EXPIRY_MS && moved > at, "{moved}");

    // Version 1: no cap, for START and for EXPIRE of a v1 token whatever
    // the config says; a v2 token keeps its cap under version 1.
    assert_eq!(set_token_version(&mut con, "1"), Ok(Value::Okay));
    let v1 = ok_bytes(&mut con, &["SESSIONGATE.START", KEY, &over]);
    let v1 = String::from_utf8(v1).unwrap();
    assert!(v1.starts_with("v1."), "{v1}");
    assert!(pexpiretime(&mut con, &signature_key(&v1)) > MAX_V2_EXPIRY_MS);
    assert_eq!(
        err(&mut con, &["SESSIONGATE.EXPIRE", KEY, &token, &over]),
        BAD_TTL
    );
    let short_v1 = start(&mut con, KEY, 100);
    assert_eq!(set_token_version(&mut con, "2"), Ok(Value::Okay));
    assert_eq!(
        call(&mut con, &["SESSIONGATE.EXPIRE", KEY, &short_v1, &over]),
        Ok(Value::Okay)
    );
    assert!(pexpiretime(&mut con, &signature_key(&short_v1)) > MAX_V2_EXPIRY_MS);
}

// ---------------------------------------------------------------------------
// 7. Replication and persistence.

/// What the v2 mix leaves: each live session's payloads, the ended
/// sessions, and every token minted.
struct V2Mix {
    live: Vec<(String, Pairs)>,
    ended: Vec<String>,
    minted: Vec<String>,
}

fn ok(con: &mut Connection, args: &[&[u8]]) {
    assert_eq!(call(con, args), Ok(Value::Okay), "{args:?}");
}

/// Every write path of a v2 session: START (and START 0), PSET (binary,
/// overwriting), PMSET, PDEL (one field, the last), EXPIRE, END, EXPIRE 0.
fn run_v2_mix(con: &mut Connection) -> V2Mix {
    let t: Vec<String> = (0..6).map(|_| start_v2(con, KEY, 1000)).collect();
    let ghost = start_v2(con, KEY, 0);
    let (k, s) = (KEY.as_bytes(), |i: usize| t[i].as_bytes());
    ok(con, &[b"SESSIONGATE.PSET", k, s(0), b"user", b"alice"]);
    ok(
        con,
        &[b"SESSIONGATE.PSET", k, s(0), b"bin\0name", b"\0\xff\r\n"],
    );
    ok(con, &[b"SESSIONGATE.PSET", k, s(0), b"user", b"bob"]);
    ok(
        con,
        &[
            b"SESSIONGATE.PMSET",
            k,
            s(1),
            b"cart",
            b"3 items",
            b"a",
            b"1",
            b"b",
            b"2",
        ],
    );
    ok(con, &[b"SESSIONGATE.PDEL", k, s(1), b"a"]);
    ok(con, &[b"SESSIONGATE.EXPIRE", k, s(1), b"5000"]);
    ok(con, &[b"SESSIONGATE.EXPIRE", k, s(2), b"7000"]);
    ok(con, &[b"SESSIONGATE.PSET", k, s(3), b"only", b"1"]);
    ok(con, &[b"SESSIONGATE.PDEL", k, s(3), b"only"]);
    ok(
        con,
        &[b"SESSIONGATE.PMSET", k, s(4), b"x", b"y", b"\x01", b"\0"],
    );
    ok(con, &[b"SESSIONGATE.END", k, s(4)]);
    ok(con, &[b"SESSIONGATE.PSET", k, s(5), b"x", b"y"]);
    ok(con, &[b"SESSIONGATE.EXPIRE", k, s(5), b"0"]);
    let pairs = |p: &[(&[u8], &[u8])]| -> Pairs {
        p.iter().map(|(n, d)| (n.to_vec(), d.to_vec())).collect()
    };
    let live = vec![
        (
            t[0].clone(),
            pairs(&[(b"bin\0name", b"\0\xff\r\n"), (b"user", b"bob")]),
        ),
        (t[1].clone(), pairs(&[(b"b", b"2"), (b"cart", b"3 items")])),
        (t[2].clone(), vec![]),
        (t[3].clone(), vec![]),
    ];
    let mut minted = t.clone();
    minted.push(ghost.clone());
    V2Mix {
        live,
        ended: vec![t[4].clone(), t[5].clone(), ghost],
        minted,
    }
}

/// The mix's sessions, read back through the module on `con`.
fn assert_mix_readable(con: &mut Connection, mix: &V2Mix) {
    for (token, payloads) in &mix.live {
        assert_eq!(&pgetall(con, KEY, token), payloads, "{token}");
    }
    let ttl = call(con, &["SESSIONGATE.TTL", KEY, &mix.live[1].0]);
    assert!(
        matches!(ttl, Ok(Value::Int(4990..=5000))),
        "EXPIRE 5000 moved it: {ttl:?}"
    );
    for token in &mix.ended {
        assert_eq!(
            err(con, &["SESSIONGATE.PGETALL", KEY, token]),
            NO_SESSION,
            "an ended session came back"
        );
    }
}

/// The snapshot of a server after the mix: its four live sessions, each
/// one v2 key with its record.
fn assert_mix_snapshot(
    con: &mut Connection,
    mix: &V2Mix,
) -> BTreeMap<Vec<u8>, common::workload::KeyState> {
    let state = snapshot(con);
    let keys: BTreeSet<Vec<u8>> = mix
        .live
        .iter()
        .map(|(t, _)| key_of(t).into_bytes())
        .collect();
    assert_eq!(state.keys().cloned().collect::<BTreeSet<_>>(), keys);
    for (token, payloads) in &mix.live {
        let key = state.get(key_of(token).as_bytes()).unwrap();
        assert_eq!(key.kind, "hash");
        assert_eq!(key.value.len(), payloads.len() + 1);
        assert_eq!(key.value[0].0, b"", "the record sorts first");
        let record = Record::decode(&key.value[0].1);
        assert_eq!(record.binding, V2::of(token).binding().as_bytes());
    }
    state
}

/// Every token minted, whole or by its whole signature, and the sign key:
/// none may be in `bytes`.
fn assert_no_secret_in(bytes: &[u8], mix: &V2Mix, where_: &str) {
    assert!(
        !contains(bytes, KEY.as_bytes()),
        "the sign key is in {where_}"
    );
    for token in &mix.minted {
        let v2 = V2::of(token);
        assert!(!contains(bytes, token.as_bytes()), "a token is in {where_}");
        assert!(
            !contains(bytes, v2.signature.as_bytes()),
            "a whole signature is in {where_}"
        );
        assert!(
            !contains(bytes, &v2.signature.as_bytes()[32..]),
            "the unbound half of a signature is in {where_}"
        );
    }
}

fn wait_for_sync(replica: &Server, con: &mut Connection) {
    replica.wait_for("the replica to sync", || {
        info_field(con, "replication", "master_link_status").as_deref() == Some("up")
    });
}

#[test]
fn a_replica_holds_exactly_what_the_master_holds_for_v2_sessions() {
    let master = Server::start(&V2);
    let port = master.port.to_string();
    let replica = Server::start(&["--replicaof", "127.0.0.1", &port]);
    let mut on_replica = replica.connection();
    wait_for_sync(&replica, &mut on_replica);

    // MONITOR on the replica sees the replication stream.
    let monitor = UnixStream::connect(replica.socket()).unwrap();
    monitor
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    (&monitor).write_all(b"MONITOR\r\n").unwrap();
    let mut lines = BufReader::new(monitor);
    let mut first = Vec::new();
    lines.read_until(b'\n', &mut first).unwrap();
    assert_eq!(first, b"+OK\r\n");

    let mut on_master = master.connection();
    let mix = run_v2_mix(&mut on_master);
    let _: () = redis::cmd("SET")
        .arg("v2-monitor-end")
        .arg("1")
        .query(&mut on_master)
        .unwrap();
    let _: i64 = redis::cmd("DEL")
        .arg("v2-monitor-end")
        .query(&mut on_master)
        .unwrap();
    wait_for_replica(&mut on_master);

    let expected = assert_mix_snapshot(&mut on_master, &mix);
    assert_eq!(snapshot(&mut on_replica), expected);
    assert_mix_readable(&mut on_replica, &mix);

    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "no end marker in MONITOR");
        let mut line = Vec::new();
        lines.read_until(b'\n', &mut line).unwrap();
        if contains(&line, b"v2-monitor-end") {
            break;
        }
        seen.extend(line);
    }
    let stream = String::from_utf8_lossy(&seen);
    for effect in ["\"HSET\"", "\"PEXPIREAT\"", "\"HDEL\"", "\"UNLINK\""] {
        assert!(stream.contains(effect), "no {effect} in {stream}");
    }
    assert!(!stream.contains("SESSIONGATE"), "never verbatim: {stream}");
    assert!(
        stream.contains(V2::of(&mix.live[0].0).binding()),
        "the record travels: {stream}"
    );
    assert_no_secret_in(&seen, &mix, "the replica's MONITOR");

    // A replica that syncs after the writes (a full sync, through an RDB).
    let late = Server::start(&["--replicaof", "127.0.0.1", &port]);
    let mut on_late = late.connection();
    wait_for_sync(&late, &mut on_late);
    assert_eq!(snapshot(&mut on_late), expected);
    assert_mix_readable(&mut on_late, &mix);
}

/// Every file under `dir`, concatenated.
fn all_files(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                all.extend(bytes);
                all.push(b'\n');
            }
        }
    }
    all
}

fn persistence_info(con: &mut Connection, field: &str) -> i64 {
    info_field(con, "persistence", field)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in INFO persistence"))
}

const AOF: [&str; 6] = [
    "token-version",
    "2",
    "--appendonly",
    "yes",
    "--appendfsync",
    "always",
];

#[test]
fn an_aof_restart_restores_v2_sessions_exactly_and_the_aof_holds_no_token() {
    let server = Server::start(&AOF);
    let mut con = server.connection();
    server.wait_for("the first AOF rewrite", || {
        persistence_info(&mut con, "aof_rewrite_in_progress") == 0
            && persistence_info(&mut con, "aof_rewrite_scheduled") == 0
    });
    let mix = run_v2_mix(&mut con);
    let expected = assert_mix_snapshot(&mut con, &mix);
    let dir = server.kill();

    let files = all_files(&dir);
    for effect in [&b"PEXPIREAT"[..], b"HSET", b"HDEL", b"UNLINK", b"MULTI"] {
        assert!(
            contains(&files, effect),
            "{}",
            String::from_utf8_lossy(effect)
        );
    }
    assert!(!contains(&files, b"SESSIONGATE"), "never verbatim");
    assert_no_secret_in(&files, &mix, "the AOF");

    let restarted = Server::start_in(dir, &AOF);
    let mut con = restarted.connection();
    assert_eq!(snapshot(&mut con), expected);
    assert_mix_readable(&mut con, &mix);

    // Once more on top of a rewritten AOF.
    let _: String = redis::cmd("BGREWRITEAOF").query(&mut con).unwrap();
    restarted.wait_for("the AOF rewrite", || {
        persistence_info(&mut con, "aof_rewrite_in_progress") == 0
            && persistence_info(&mut con, "aof_rewrite_scheduled") == 0
    });
    let more = run_v2_mix(&mut con);
    let expected = snapshot(&mut con);
    assert_eq!(expected.len(), 8);
    let dir = restarted.kill();
    assert_no_secret_in(&all_files(&dir), &more, "the rewritten AOF");
    let again = Server::start_in(dir, &AOF);
    let mut con = again.connection();
    assert_eq!(snapshot(&mut con), expected);
    assert_mix_readable(&mut con, &mix);
    assert_mix_readable(&mut con, &more);
}

#[test]
fn an_rdb_restart_restores_v2_sessions_exactly() {
    let server = Server::start(&V2);
    let mut con = server.connection();
    let mix = run_v2_mix(&mut con);
    let expected = assert_mix_snapshot(&mut con, &mix);
    let _: () = redis::cmd("SAVE").query(&mut con).unwrap();
    let dir = server.kill();
    assert!(dir.join("dump.rdb").exists());
    assert_no_secret_in(&all_files(&dir), &mix, "the RDB");

    let restarted = Server::start_in(dir, &[]);
    let mut con = restarted.connection();
    assert_eq!(snapshot(&mut con), expected);
    assert_mix_readable(&mut con, &mix);
}

// ---------------------------------------------------------------------------
// 8. The token-version config.

#[test]
fn token_version_defaults_to_1_and_takes_only_1_or_2() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    assert_eq!(config_get(&mut con, "sessiongate.token-version"), "1");
    let v1 = start(&mut con, KEY, 100);
    assert!(v1.starts_with("v1.") && v1.len() == 84, "{v1}");
    assert!(V2::parse(&v1).is_none());
    for bad in ["3", "0", "-1", "abc", "2.0", ""] {
        let refused = set_token_version(&mut con, bad);
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.starts_with("ERR CONFIG SET failed")),
            "{bad}: {refused:?}"
        );
        assert_eq!(config_get(&mut con, "sessiongate.token-version"), "1");
    }
    assert_eq!(set_token_version(&mut con, "2"), Ok(Value::Okay));
    assert_eq!(config_get(&mut con, "sessiongate.token-version"), "2");
    let v2 = start_v2(&mut con, KEY, 100);
    assert_eq!(dbsize(&mut con), 2);
    assert_eq!(key_type(&mut con, &key_of(&v2)), "hash");
    assert_eq!(set_token_version(&mut con, "1"), Ok(Value::Okay));
    assert!(start(&mut con, KEY, 100).starts_with("v1."));
}

#[test]
fn token_version_is_set_at_load_as_an_argument_or_a_config_line() {
    for args in [&V2[..], &["--sessiongate.token-version", "2"]] {
        let server = Server::start(args);
        let mut con = server.connection();
        assert_eq!(
            config_get(&mut con, "sessiongate.token-version"),
            "2",
            "{args:?}"
        );
        start_v2(&mut con, KEY, 100);
    }
    let log = Server::fails_to_start(&["token-version", "3"]);
    assert!(
        log.contains("sessiongate cannot load: token-version must be between 1 and 2, not 3"),
        "{log}"
    );
}

// ---------------------------------------------------------------------------
// Events.

#[test]
fn every_v2_lifecycle_change_is_an_event_on_the_one_key() {
    let server = Server::start(&["token-version", "2", "--notify-keyspace-events", "Edx"]);
    let mut subscriber = server.connection();
    let mut pubsub = subscriber.as_pubsub();
    pubsub.psubscribe("__keyevent@0__:*").unwrap();
    pubsub
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();

    let mut con = server.connection();
    let token = start_v2(&mut con, KEY, 100);
    let key = key_of(&token);
    ok_bytes(&mut con, &["SESSIONGATE.PSET", KEY, &token, "a", "1"]);
    ok_bytes(
        &mut con,
        &["SESSIONGATE.PMSET", KEY, &token, "b", "2", "c", "3"],
    );
    ok_bytes(&mut con, &["SESSIONGATE.PDEL", KEY, &token, "nope"]);
    ok_bytes(&mut con, &["SESSIONGATE.PDEL", KEY, &token, "a"]);
    ok_bytes(&mut con, &["SESSIONGATE.EXPIRE", KEY, &token, "50"]);
    err(&mut con, &["SESSIONGATE.PGET", "wrongkey", &token, "b"]);
    ok_bytes(&mut con, &["SESSIONGATE.END", KEY, &token]);
    let _ghost = start_v2(&mut con, KEY, 0);
    let zeroed = start_v2(&mut con, KEY, 100);
    ok_bytes(&mut con, &["SESSIONGATE.EXPIRE", KEY, &zeroed, "0"]);
    let timed_out = start_v2(&mut con, KEY, 1);

    let expected = [
        ("sessiongate.start", key.clone()),
        ("sessiongate.pset", key.clone()),
        ("sessiongate.pset", key.clone()),
        ("sessiongate.pdel", key.clone()),
        ("sessiongate.expire", key.clone()),
        ("sessiongate.end", key.clone()),
        ("sessiongate.start", key_of(&zeroed)),
        ("sessiongate.end", key_of(&zeroed)),
        ("sessiongate.start", key_of(&timed_out)),
        ("expired", key_of(&timed_out)),
    ];
    for (event, key) in expected {
        let message = pubsub.get_message().expect("an event within 10 seconds");
        let payload: String = message.get_payload().unwrap();
        assert_eq!(
            (message.get_channel_name(), payload.as_str()),
            (format!("__keyevent@0__:{event}").as_str(), key.as_str())
        );
    }
}
