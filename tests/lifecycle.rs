//! docs Part 6, the session lifecycle, against real servers: START's
//! MAXLIFE and LABEL, deadlines that clamp every expiry, ROTATE, the owner
//! index (OSTART with LIMIT, OLIST, OEND) and INSPECT, with their errors in
//! the order the docs fixes, their replies byte for byte in RESP2 and
//! RESP3, and what replicas, an AOF and an RDB hold of them.
//!
//! What the module computes is recomputed here without its code: slots and
//! canonical tags (CRC16), signatures and the raw-key namespace (HMAC), the
//! record's layout (src/store/record.rs's table), the index key's name.

mod common;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::errors::{
    too_many_sessions, unknown_ring, wrong_arity, BAD_ID, BAD_LIMIT, BAD_MAXLIFE, BAD_TTL,
    EMPTY_LABEL, EMPTY_OWNER, EMPTY_SIGN_KEY, EMPTY_TOKEN, FORGED_SIGNATURE, LABEL_TOO_LONG,
    MALFORMED_TOKEN, NOT_THE_OWNERS, NO_SESSION, OWNER_TOO_LONG, STALE_SIGNATURE,
    UNREADABLE_RECORD,
};
use common::slots::{canonical_tag, key_hash_slot};
use common::*;
use redis::Connection;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::thread::sleep;
use std::time::{Duration, Instant};

const KEY: &str = "lifecycle-sign-key-that-must-stay-secret";
const OTHER_KEY: &str = "another-application-sign-key-kept-secret";
/// docs/tokens.md#v2-tokens: v2 expiries are at most 2^53 ms.
const MAX_V2_EXPIRY_MS: i64 = 1 << 53;
/// Seconds that, from now, pass 2^53 ms (but not i64).
const PAST_2_53_SECONDS: &str = "9007199254740";

// ---------------------------------------------------------------------------
// Slots and canonical tags, as Redis Cluster computes them.

fn owner_tag(owner: &[u8]) -> &'static str {
    canonical_tag(key_hash_slot(owner))
}

// ---------------------------------------------------------------------------
// Tokens, keys and records, written here.

/// A v2 token's parts.
#[derive(Debug, Clone)]
struct V2 {
    tag: String,
    id: String,
    signature: String,
}

impl V2 {
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
        (alnum(id) && signature.len() == 64 && hex).then(|| V2 {
            tag: tag.into(),
            id: id.into(),
            signature: signature.into(),
        })
    }

    fn of(token: &str) -> V2 {
        V2::parse(token).unwrap_or_else(|| panic!("not a v2 token: {token:?}"))
    }

    /// The token for `tag` and `id`, signed with `secret`.
    fn forge(secret: &[u8], tag: &str, id: &str) -> String {
        let signed = format!("v2.{{{tag}}}.{id}");
        format!("{signed}.{}", hmac_hex(secret, signed.as_bytes()))
    }

    fn key(&self) -> String {
        format!("sg-session:{{{}}}.{}", self.tag, self.id)
    }

    fn signed_part(&self) -> String {
        format!("v2.{{{}}}.{}", self.tag, self.id)
    }
}

fn key_of(token: &str) -> String {
    V2::of(token).key()
}

fn id_of_v2(token: &str) -> String {
    V2::of(token).id
}

/// A v2 session's record, decoded by the table of src/store/record.rs:
/// format 1, 32 bytes of binding, `created` (8 bytes, big-endian), then
/// `d` + deadline, `o` + u16 + owner + u8 + namespace, `l` + u16 + label.
#[derive(Debug, Clone, PartialEq)]
struct Rec {
    binding: Vec<u8>,
    created: i64,
    deadline: Option<i64>,
    owner: Option<(Vec<u8>, Vec<u8>)>,
    label: Option<Vec<u8>>,
}

impl Rec {
    fn decode(bytes: &[u8]) -> Rec {
        assert!(bytes.len() >= 41 && bytes[0] == 1, "a record: {bytes:?}");
        let be = |b: &[u8]| i64::from_be_bytes(b.try_into().unwrap());
        let u16_at = |b: &[u8]| usize::from(u16::from_be_bytes([b[0], b[1]]));
        let mut rec = Rec {
            binding: bytes[1..33].to_vec(),
            created: be(&bytes[33..41]),
            deadline: None,
            owner: None,
            label: None,
        };
        let mut rest = &bytes[41..];
        if rest.first() == Some(&b'd') {
            rec.deadline = Some(be(&rest[1..9]));
            rest = &rest[9..];
        }
        if rest.first() == Some(&b'o') {
            let n = u16_at(&rest[1..3]);
            let name = rest[3..3 + n].to_vec();
            let m = usize::from(rest[3 + n]);
            let namespace = rest[4 + n..4 + n + m].to_vec();
            rec.owner = Some((name, namespace));
            rest = &rest[4 + n + m..];
        }
        if rest.first() == Some(&b'l') {
            let n = u16_at(&rest[1..3]);
            rec.label = Some(rest[3..3 + n].to_vec());
            rest = &rest[3 + n..];
        }
        assert!(rest.is_empty(), "bytes left in the record: {rest:?}");
        rec
    }
}

fn record(con: &mut Connection, token: &str) -> Rec {
    let bytes: Vec<u8> = redis::cmd("HGET")
        .arg(key_of(token))
        .arg("")
        .query(con)
        .unwrap();
    Rec::decode(&bytes)
}

/// docs/keys.md#owner-index: a raw key's namespace, `k.` and the first 8 bytes (hex) of
/// HMAC-SHA256(raw key, `sessiongate owner namespace`).
fn raw_namespace(raw_key: &[u8]) -> String {
    format!(
        "k.{}",
        &hmac_hex(raw_key, b"sessiongate owner namespace")[..16]
    )
}

/// docs/keys.md#owner-index: `sg-owner:{<tag>}:<ns>:<owner>`.
fn index_key(namespace: &str, owner: &[u8]) -> Vec<u8> {
    [
        format!("sg-owner:{{{}}}:{namespace}:", owner_tag(owner)).as_bytes(),
        owner,
    ]
    .concat()
}

// ---------------------------------------------------------------------------
// Plain Redis.

/// A command's arguments and the reply it must get.
type Case<'a> = (Vec<&'a [u8]>, Result<Value, String>);

/// Arguments of any byte-like types, as one list.
macro_rules! bs {
    ($($arg:expr),* $(,)?) => {
        vec![$(AsRef::<[u8]>::as_ref($arg)),*]
    };
}

fn q(con: &mut Connection, args: &[&[u8]]) -> Result<Value, String> {
    call(con, args)
}

fn tok(con: &mut Connection, args: &[&str]) -> String {
    String::from_utf8(ok_bytes(con, args)).expect("tokens are ASCII")
}

fn tok_b(con: &mut Connection, args: &[&[u8]]) -> String {
    String::from_utf8(ok_bytes(con, args)).expect("tokens are ASCII")
}

fn ok(con: &mut Connection, args: &[&str]) {
    assert_eq!(call(con, args), Ok(Value::Okay), "{args:?}");
}

fn int(con: &mut Connection, args: &[&str]) -> i64 {
    match call(con, args) {
        Ok(Value::Int(n)) => n,
        other => panic!("{args:?}: {other:?}"),
    }
}

fn now_ms(con: &mut Connection) -> i64 {
    let (secs, micros): (i64, i64) = redis::cmd("TIME").query(con).unwrap();
    secs * 1000 + micros / 1000
}

fn pexpiretime(con: &mut Connection, key: impl redis::ToRedisArgs) -> i64 {
    redis::cmd("PEXPIRETIME").arg(key).query(con).unwrap()
}

fn exists(con: &mut Connection, key: impl redis::ToRedisArgs) -> bool {
    redis::cmd("EXISTS").arg(key).query::<i64>(con).unwrap() == 1
}

fn dbsize(con: &mut Connection) -> i64 {
    redis::cmd("DBSIZE").query(con).unwrap()
}

fn keys(con: &mut Connection, pattern: &str) -> BTreeSet<Vec<u8>> {
    redis::cmd("KEYS").arg(pattern).query(con).unwrap()
}

/// An index's members and scores, by score.
fn zrange(con: &mut Connection, key: &[u8]) -> Vec<(String, i64)> {
    redis::cmd("ZRANGE")
        .arg(key)
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query(con)
        .unwrap()
}

fn members(con: &mut Connection, key: &[u8]) -> BTreeSet<String> {
    zrange(con, key).into_iter().map(|(id, _)| id).collect()
}

fn config_set(con: &mut Connection, name: &str, value: &str) {
    ok(con, &["CONFIG", "SET", name, value]);
}

fn config_get(con: &mut Connection, name: &str) -> String {
    let (_, value): (String, String) = redis::cmd("CONFIG")
        .arg("GET")
        .arg(name)
        .query(con)
        .unwrap();
    value
}

fn counter(con: &mut Connection, name: &str) -> i64 {
    info_field(con, "sessiongate", &format!("sessiongate_{name}"))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no sessiongate_{name} in INFO"))
}

fn pget(con: &mut Connection, keyref: &str, token: &str, name: &str) -> Result<Value, String> {
    call(con, &["SESSIONGATE.PGET", keyref, token, name])
}

/// PGETALL (RESP2) as sorted pairs.
fn pgetall(con: &mut Connection, keyref: &str, token: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let reply = call(con, &["SESSIONGATE.PGETALL", keyref, token]).expect("PGETALL");
    let Value::Array(flat) = reply else {
        panic!("PGETALL: {reply:?}")
    };
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = flat
        .chunks(2)
        .map(|pair| match pair {
            [Value::BulkString(n), Value::BulkString(d)] => (n.clone(), d.clone()),
            other => panic!("PGETALL pair: {other:?}"),
        })
        .collect();
    pairs.sort();
    pairs
}

/// A session's hash without its record.
fn payload_fields(con: &mut Connection, key: &str) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut all: BTreeMap<Vec<u8>, Vec<u8>> = redis::cmd("HGETALL").arg(key).query(con).unwrap();
    all.remove(&b""[..]);
    all
}

/// OLIST's ids, in the order given (RESP2: each entry a flat array).
fn olist_ids(con: &mut Connection, keyref: &[u8], owner: &[u8]) -> Vec<String> {
    let reply = q(con, &[b"SESSIONGATE.OLIST", keyref, owner]).expect("OLIST");
    let Value::Array(entries) = reply else {
        panic!("OLIST: {reply:?}")
    };
    entries
        .iter()
        .map(|entry| match entry {
            Value::Array(flat) => match (&flat[0], &flat[1]) {
                (Value::BulkString(name), Value::BulkString(id)) if name == b"id" => {
                    String::from_utf8(id.clone()).unwrap()
                }
                other => panic!("OLIST entry starts {other:?}"),
            },
            other => panic!("OLIST entry {other:?}"),
        })
        .collect()
}

fn olist_set(con: &mut Connection, keyref: &str, owner: &str) -> BTreeSet<String> {
    olist_ids(con, keyref.as_bytes(), owner.as_bytes())
        .into_iter()
        .collect()
}

fn ids(tokens: &[&String]) -> BTreeSet<String> {
    tokens.iter().map(|t| id_of_v2(t)).collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Waits until Redis' own clock is past `at_ms`.
fn sleep_past(con: &mut Connection, at_ms: i64) {
    loop {
        let now = now_ms(con);
        if now > at_ms {
            return;
        }
        sleep(Duration::from_millis((at_ms - now + 1) as u64));
    }
}

// ---------------------------------------------------------------------------
// Replies as bytes: RESP2 and RESP3, read off the socket.

/// A reply as the docs describes it, to encode in either protocol.
enum R {
    I(i64),
    B(Vec<u8>),
    Nil,
    Map(Vec<(&'static str, R)>),
    Arr(Vec<R>),
}

fn bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend(format!("${}\r\n", bytes.len()).as_bytes());
    out.extend(bytes);
    out.extend(b"\r\n");
}

fn encode(reply: &R, resp3: bool, out: &mut Vec<u8>) {
    match reply {
        R::I(n) => out.extend(format!(":{n}\r\n").as_bytes()),
        R::B(bytes) => bulk(out, bytes),
        R::Nil if resp3 => out.extend(b"_\r\n"),
        R::Nil => out.extend(b"$-1\r\n"),
        R::Map(fields) => {
            let head = if resp3 {
                format!("%{}\r\n", fields.len())
            } else {
                format!("*{}\r\n", fields.len() * 2)
            };
            out.extend(head.as_bytes());
            for (name, value) in fields {
                bulk(out, name.as_bytes());
                encode(value, resp3, out);
            }
        }
        R::Arr(items) => {
            out.extend(format!("*{}\r\n", items.len()).as_bytes());
            for item in items {
                encode(item, resp3, out);
            }
        }
    }
}

fn expected(reply: &R, resp3: bool) -> Vec<u8> {
    let mut out = Vec::new();
    encode(reply, resp3, &mut out);
    out
}

/// Reads one whole reply, every byte of it.
fn read_reply(reader: &mut impl BufRead, out: &mut Vec<u8>) {
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line).unwrap();
    assert!(line.ends_with(b"\r\n"), "a RESP line: {line:?}");
    out.extend(&line);
    let count = || -> i64 {
        std::str::from_utf8(&line[1..line.len() - 2])
            .unwrap()
            .parse()
            .unwrap()
    };
    match line[0] {
        b'$' | b'=' | b'!' => {
            let n = count();
            if n >= 0 {
                let mut data = vec![0; n as usize + 2];
                reader.read_exact(&mut data).unwrap();
                out.extend(data);
            }
        }
        b'*' | b'~' | b'>' => (0..count().max(0)).for_each(|_| read_reply(reader, out)),
        b'%' | b'|' => (0..count() * 2).for_each(|_| read_reply(reader, out)),
        _ => {}
    }
}

/// One command on a fresh connection in RESP2 or RESP3: the reply's bytes.
fn raw(server: &Server, resp3: bool, args: &[&[u8]]) -> Vec<u8> {
    let stream = UnixStream::connect(server.socket()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let send = |writer: &mut UnixStream, args: &[&[u8]]| {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            bulk(&mut out, arg);
        }
        writer.write_all(&out).unwrap();
    };
    if resp3 {
        send(&mut writer, &[b"HELLO", b"3"]);
        let mut hello = Vec::new();
        read_reply(&mut reader, &mut hello);
        assert!(hello.starts_with(b"%"), "HELLO 3: {hello:?}");
    }
    send(&mut writer, args);
    let mut reply = Vec::new();
    read_reply(&mut reader, &mut reply);
    reply
}

fn assert_raw_reply(server: &Server, args: &[&[u8]], reply: &R) {
    for resp3 in [false, true] {
        let got = raw(server, resp3, args);
        let want = expected(reply, resp3);
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "RESP{}",
            if resp3 { 3 } else { 2 }
        );
    }
}

fn opt_int(value: Option<i64>) -> R {
    value.map_or(R::Nil, R::I)
}

fn opt_bytes(value: Option<Vec<u8>>) -> R {
    value.map_or(R::Nil, R::B)
}

// ---------------------------------------------------------------------------
// Keyring files (as tests/keyring.rs writes them).

/// 32 bytes made from `seed`, and their base64.
fn secret(seed: &str) -> (Vec<u8>, String) {
    let bytes = Sha256::digest(seed.as_bytes()).to_vec();
    let base64 = STANDARD.encode(&bytes);
    (bytes, base64)
}

struct KeyringFile {
    dir: PathBuf,
    path: PathBuf,
}

impl KeyringFile {
    fn new(text: &str) -> KeyringFile {
        let dir = fresh_dir();
        let file = KeyringFile {
            path: dir.join("keyring"),
            dir,
        };
        file.write(text);
        std::fs::set_permissions(&file.path, std::fs::Permissions::from_mode(0o600)).unwrap();
        file
    }

    fn write(&self, text: &str) {
        std::fs::write(&self.path, text).unwrap();
    }

    fn path(&self) -> &str {
        self.path.to_str().expect("test paths are UTF-8")
    }
}

impl Drop for KeyringFile {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn reload(con: &mut Connection) {
    ok(con, &["SESSIONGATE.KEYRING", "RELOAD"]);
}

/// INSPECT's `stale`.
fn stale(con: &mut Connection, keyref: impl AsRef<[u8]>, token: &str) -> i64 {
    let reply = q(
        con,
        &[b"SESSIONGATE.INSPECT", keyref.as_ref(), token.as_bytes()],
    )
    .expect("INSPECT");
    let Value::Array(flat) = reply else {
        panic!("INSPECT: {reply:?}")
    };
    match &flat[..] {
        [.., Value::BulkString(name), Value::Int(n)] if name == b"stale" => *n,
        other => panic!("INSPECT ends {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// 1. Errors: the arity rule, each new error, the order of checks.

#[test]
fn an_unknown_missing_or_repeated_option_is_the_arity_error() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let t = tok(&mut con, &["SESSIONGATE.START", KEY, "100", "LABEL", "x"]);
    let before = dbsize(&mut con);
    let cases: Vec<Vec<&str>> = vec![
        vec!["SESSIONGATE.START", KEY, "10", "x"],
        vec!["SESSIONGATE.START", KEY, "10", "MAXLIFE"],
        vec!["SESSIONGATE.START", KEY, "10", "LABEL"],
        vec![
            "SESSIONGATE.START",
            KEY,
            "10",
            "MAXLIFE",
            "5",
            "MAXLIFE",
            "6",
        ],
        vec!["SESSIONGATE.START", KEY, "10", "LABEL", "a", "label", "b"],
        vec!["SESSIONGATE.START", KEY, "10", "MAXLIFE", "5", "extra"],
        vec!["SESSIONGATE.START", KEY, "10", "TTL", "5"],
        vec!["SESSIONGATE.START", KEY, "10", "LIMIT", "5"],
        vec!["SESSIONGATE.START", KEY],
        vec!["SESSIONGATE.OSTART", KEY, "o"],
        vec!["SESSIONGATE.OSTART", KEY, "o", "10", "x"],
        vec!["SESSIONGATE.OSTART", KEY, "o", "10", "LIMIT"],
        vec![
            "SESSIONGATE.OSTART",
            KEY,
            "o",
            "10",
            "LIMIT",
            "1",
            "LIMIT",
            "2",
        ],
        vec![
            "SESSIONGATE.OSTART",
            KEY,
            "o",
            "10",
            "LIMIT",
            "1",
            "REJECT",
            "EVICT",
        ],
        vec!["SESSIONGATE.OSTART", KEY, "o", "10", "REJECT"],
        vec!["SESSIONGATE.OSTART", KEY, "o", "10", "TTL", "5"],
        vec![
            "SESSIONGATE.OSTART",
            KEY,
            "o",
            "10",
            "MAXLIFE",
            "5",
            "maxlife",
            "5",
        ],
        vec!["SESSIONGATE.OLIST", KEY],
        vec!["SESSIONGATE.OLIST", KEY, "o", "x"],
        vec!["SESSIONGATE.OEND", KEY],
        vec!["SESSIONGATE.OEND", KEY, "o", "EXCEPT"],
        vec!["SESSIONGATE.OEND", KEY, "o", "ID"],
        vec!["SESSIONGATE.OEND", KEY, "o", "EXCEPT", &t, "x"],
        vec!["SESSIONGATE.OEND", KEY, "o", "EXCEPT", &t, "ID", "x"],
        vec!["SESSIONGATE.OEND", KEY, "o", "ALL"],
        vec!["SESSIONGATE.ROTATE", KEY],
        vec!["SESSIONGATE.ROTATE", KEY, &t, "TTL"],
        vec!["SESSIONGATE.ROTATE", KEY, &t, "TTL", "5", "TTL", "6"],
        vec!["SESSIONGATE.ROTATE", KEY, &t, "MAXLIFE", "5"],
        vec!["SESSIONGATE.ROTATE", KEY, &t, "5"],
        vec!["SESSIONGATE.INSPECT", KEY],
        vec!["SESSIONGATE.INSPECT", KEY, &t, "x"],
        // Arity first: an empty keyref, a bad ttl and bad values change nothing.
        vec!["SESSIONGATE.START", "", "-1", "MAXLIFE", "0", "bogus"],
        vec![
            "SESSIONGATE.OSTART",
            "",
            "",
            "-1",
            "LIMIT",
            "0",
            "LIMIT",
            "0",
        ],
        vec!["SESSIONGATE.OEND", "", "", "EXCEPT"],
        vec!["SESSIONGATE.ROTATE", "", "", "TTL"],
    ];
    for args in &cases {
        // Redis names the command as registered, in lower case.
        let name = args[0].to_lowercase();
        assert_eq!(err(&mut con, args), wrong_arity(&name), "{args:?}");
    }
    assert_eq!(
        err(&mut con, &["sessiongate.Start", KEY, "10", "x"]),
        wrong_arity("sessiongate.start")
    );
    assert_eq!(dbsize(&mut con), before, "a refused call writes nothing");
    assert_eq!(stale(&mut con, KEY, &t), 0, "the session is untouched");
}

#[test]
fn options_are_keywords_in_any_case_and_any_order() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let t = tok(
        &mut con,
        &[
            "SESSIONGATE.START",
            KEY,
            "100",
            "label",
            "dev",
            "MaxLife",
            "50",
        ],
    );
    let rec = record(&mut con, &t);
    assert_eq!(rec.label.as_deref(), Some(&b"dev"[..]));
    assert_eq!(rec.deadline, Some(rec.created + 50_000));
    assert_eq!(pexpiretime(&mut con, key_of(&t)), rec.created + 50_000);
    // A label may spell a keyword: it is a value there.
    let k = tok(
        &mut con,
        &["SESSIONGATE.START", KEY, "100", "LABEL", "LIMIT"],
    );
    assert_eq!(record(&mut con, &k).label.as_deref(), Some(&b"LIMIT"[..]));

    let o = tok(
        &mut con,
        &[
            "SESSIONGATE.OSTART",
            KEY,
            "o",
            "100",
            "limit",
            "1",
            "Reject",
        ],
    );
    assert_eq!(
        err(
            &mut con,
            &[
                "SESSIONGATE.OSTART",
                KEY,
                "o",
                "100",
                "LiMiT",
                "1",
                "rEjEcT"
            ]
        ),
        too_many_sessions(1)
    );
    let o2 = tok(
        &mut con,
        &[
            "SESSIONGATE.OSTART",
            KEY,
            "o",
            "100",
            "limit",
            "1",
            "evict",
            "label",
            "x",
        ],
    );
    assert_eq!(olist_set(&mut con, KEY, "o"), ids(&[&o2]));
    assert_eq!(pget(&mut con, KEY, &o, "n"), Err(NO_SESSION.into()));
    let r = tok(&mut con, &["SESSIONGATE.ROTATE", KEY, &o2, "ttl", "30"]);
    let at = pexpiretime(&mut con, key_of(&r));
    let now = now_ms(&mut con);
    assert!((now + 29_000..=now + 30_000).contains(&at), "{at} vs {now}");
    let o3 = tok(&mut con, &["SESSIONGATE.OSTART", KEY, "o", "100"]);
    assert_eq!(
        int(&mut con, &["SESSIONGATE.OEND", KEY, "o", "except", &r]),
        1
    );
    let id = id_of_v2(&r);
    assert_eq!(int(&mut con, &["SESSIONGATE.OEND", KEY, "o", "Id", &id]), 1);
    assert_eq!(pget(&mut con, KEY, &o3, "n"), Err(NO_SESSION.into()));
}

#[test]
fn start_checks_the_keyref_then_the_ttl_then_each_option_left_to_right() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let start = |con: &mut Connection, args: &[&[u8]]| {
        let mut all: Vec<&[u8]> = bs![b"SESSIONGATE.START"];
        all.extend(args);
        q(con, &all)
    };
    let e = |s: &str| Err(s.to_string());
    let long_label = vec![b'l'; 513];
    let cases: Vec<Case> = vec![
        (
            bs![b"", b"-1", b"MAXLIFE", b"0", b"LABEL", b""],
            e(EMPTY_SIGN_KEY),
        ),
        (
            bs![b"@nope", b"-1", b"MAXLIFE", b"0"],
            Err(unknown_ring("nope")),
        ),
        (bs![KEY.as_bytes(), b"-1", b"MAXLIFE", b"0"], e(BAD_TTL)),
        (bs![KEY.as_bytes(), b"ten", b"LABEL", b""], e(BAD_TTL)),
        (
            bs![KEY.as_bytes(), b"10", b"MAXLIFE", b"0", b"LABEL", b""],
            e(BAD_MAXLIFE),
        ),
        (
            bs![KEY.as_bytes(), b"10", b"LABEL", b"", b"MAXLIFE", b"0"],
            e(EMPTY_LABEL),
        ),
        (
            bs![KEY.as_bytes(), b"10", b"MAXLIFE", b"-5"],
            e(BAD_MAXLIFE),
        ),
        (
            bs![KEY.as_bytes(), b"10", b"MAXLIFE", b"abc"],
            e(BAD_MAXLIFE),
        ),
        (
            bs![KEY.as_bytes(), b"10", b"MAXLIFE", b"1.5"],
            e(BAD_MAXLIFE),
        ),
        (
            bs![KEY.as_bytes(), b"10", b"MAXLIFE", b"9223372036854775807"],
            e(BAD_MAXLIFE),
        ),
        (
            bs![
                KEY.as_bytes(),
                b"10",
                b"MAXLIFE",
                PAST_2_53_SECONDS.as_bytes()
            ],
            e(BAD_MAXLIFE),
        ),
        (
            bs![KEY.as_bytes(), b"10", b"LABEL", &long_label],
            e(LABEL_TOO_LONG),
        ),
        (
            bs![
                KEY.as_bytes(),
                b"10",
                b"LABEL",
                &long_label,
                b"MAXLIFE",
                b"0"
            ],
            e(LABEL_TOO_LONG),
        ),
        // With an option the session is v2: past 2^53 ms is the ttl error.
        (
            bs![KEY.as_bytes(), PAST_2_53_SECONDS.as_bytes(), b"LABEL", b"x"],
            e(BAD_TTL),
        ),
    ];
    let now = now_ms(&mut con);
    assert!(PAST_2_53_SECONDS.parse::<i64>().unwrap() * 1000 + now > MAX_V2_EXPIRY_MS);
    for (args, want) in &cases {
        assert_eq!(&start(&mut con, args), want, "{args:?}");
    }
    assert_eq!(dbsize(&mut con), 0, "nothing written by a refused START");

    // The same ttl with no option is a v1 START, which takes it.
    let v1 = tok(&mut con, &["SESSIONGATE.START", KEY, PAST_2_53_SECONDS]);
    assert!(v1.starts_with("v1."), "{v1}");
    ok(&mut con, &["SESSIONGATE.END", KEY, &v1]);
    // A label of 512 bytes, any bytes, is kept as it is.
    let label: Vec<u8> = (0..512).map(|i| (i % 256) as u8).collect();
    let t = tok_b(
        &mut con,
        &[
            b"SESSIONGATE.START",
            KEY.as_bytes(),
            b"100",
            b"LABEL",
            &label,
        ],
    );
    assert_eq!(record(&mut con, &t).label, Some(label));
    // MAXLIFE 1 is the least; a long one far from 2^53 is taken.
    for maxlife in ["1", "100000000"] {
        let t = tok(
            &mut con,
            &["SESSIONGATE.START", KEY, "100", "MAXLIFE", maxlife],
        );
        let rec = record(&mut con, &t);
        assert_eq!(
            rec.deadline,
            Some(rec.created + maxlife.parse::<i64>().unwrap() * 1000)
        );
    }
    // ttl 0 with options: a v2 token, nothing stored.
    let before = dbsize(&mut con);
    let ghost = tok(&mut con, &["SESSIONGATE.START", KEY, "0", "MAXLIFE", "5"]);
    assert!(V2::parse(&ghost).is_some(), "{ghost}");
    assert_eq!(pget(&mut con, KEY, &ghost, "n"), Err(NO_SESSION.into()));
    assert_eq!(dbsize(&mut con), before);
}

#[test]
fn owner_commands_check_the_keyref_then_the_owner_then_the_rest() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let e = |s: &str| Err::<Value, String>(s.to_string());
    let long_owner = vec![b'o'; 513];
    let k = KEY.as_bytes();
    let cases: Vec<Case> = vec![
        // OSTART: arity, keyref, owner, ttl, options left to right.
        (
            bs![b"SESSIONGATE.OSTART", b"", b"", b"abc", b"LIMIT", b"0"],
            e(EMPTY_SIGN_KEY),
        ),
        (
            bs![b"SESSIONGATE.OSTART", b"@nope", b"", b"abc"],
            Err(unknown_ring("nope")),
        ),
        (
            bs![b"SESSIONGATE.OSTART", k, b"", b"abc", b"LIMIT", b"0"],
            e(EMPTY_OWNER),
        ),
        (
            bs![b"SESSIONGATE.OSTART", k, &long_owner, b"abc"],
            e(OWNER_TOO_LONG),
        ),
        (
            bs![b"SESSIONGATE.OSTART", k, b"o", b"abc", b"LIMIT", b"0"],
            e(BAD_TTL),
        ),
        (bs![b"SESSIONGATE.OSTART", k, b"o", b"-1"], e(BAD_TTL)),
        (
            bs![b"SESSIONGATE.OSTART", k, b"o", PAST_2_53_SECONDS.as_bytes()],
            e(BAD_TTL),
        ),
        (
            bs![b"SESSIONGATE.OSTART", k, b"o", b"10", b"LIMIT", b"0"],
            e(BAD_LIMIT),
        ),
        (
            bs![b"SESSIONGATE.OSTART", k, b"o", b"10", b"LIMIT", b"-1"],
            e(BAD_LIMIT),
        ),
        (
            bs![
                b"SESSIONGATE.OSTART",
                k,
                b"o",
                b"10",
                b"LIMIT",
                b"x",
                b"REJECT"
            ],
            e(BAD_LIMIT),
        ),
        (
            bs![b"SESSIONGATE.OSTART", k, b"o", b"10", b"LIMIT", b"1.5"],
            e(BAD_LIMIT),
        ),
        (
            bs![
                b"SESSIONGATE.OSTART",
                k,
                b"o",
                b"10",
                b"LIMIT",
                b"0",
                b"MAXLIFE",
                b"0"
            ],
            e(BAD_LIMIT),
        ),
        (
            bs![
                b"SESSIONGATE.OSTART",
                k,
                b"o",
                b"10",
                b"MAXLIFE",
                b"0",
                b"LIMIT",
                b"0"
            ],
            e(BAD_MAXLIFE),
        ),
        (
            bs![
                b"SESSIONGATE.OSTART",
                k,
                b"o",
                b"10",
                b"LABEL",
                b"",
                b"LIMIT",
                b"0"
            ],
            e(EMPTY_LABEL),
        ),
        (
            bs![
                b"SESSIONGATE.OSTART",
                k,
                b"o",
                b"10",
                b"LIMIT",
                b"2",
                b"LABEL",
                b""
            ],
            e(EMPTY_LABEL),
        ),
        // OLIST: arity, keyref, owner.
        (bs![b"SESSIONGATE.OLIST", b"", b""], e(EMPTY_SIGN_KEY)),
        (
            bs![b"SESSIONGATE.OLIST", b"@nope", b""],
            Err(unknown_ring("nope")),
        ),
        (bs![b"SESSIONGATE.OLIST", k, b""], e(EMPTY_OWNER)),
        (bs![b"SESSIONGATE.OLIST", k, &long_owner], e(OWNER_TOO_LONG)),
        // OEND: arity, keyref, owner, then the token or the ids.
        (
            bs![b"SESSIONGATE.OEND", b"", b"", b"ID", b"bad"],
            e(EMPTY_SIGN_KEY),
        ),
        (
            bs![b"SESSIONGATE.OEND", b"@nope", b"", b"ID", b"bad"],
            Err(unknown_ring("nope")),
        ),
        (
            bs![b"SESSIONGATE.OEND", k, b"", b"ID", b"bad"],
            e(EMPTY_OWNER),
        ),
        (
            bs![b"SESSIONGATE.OEND", k, &long_owner, b"EXCEPT", b""],
            e(OWNER_TOO_LONG),
        ),
        (bs![b"SESSIONGATE.OEND", k, b"o", b"ID", b"bad"], e(BAD_ID)),
        (
            bs![b"SESSIONGATE.OEND", k, b"o", b"ID", b"AbCdEfGh0123456"],
            e(BAD_ID),
        ),
        (
            bs![b"SESSIONGATE.OEND", k, b"o", b"ID", b"AbCdEfGh012345678"],
            e(BAD_ID),
        ),
        (
            bs![b"SESSIONGATE.OEND", k, b"o", b"ID", b"AbCdEfGh0123456-"],
            e(BAD_ID),
        ),
        (bs![b"SESSIONGATE.OEND", k, b"o", b"ID", b""], e(BAD_ID)),
        (
            bs![b"SESSIONGATE.OEND", k, b"o", b"EXCEPT", b""],
            e(EMPTY_TOKEN),
        ),
        (
            bs![b"SESSIONGATE.OEND", k, b"o", b"EXCEPT", b"v2.{x}.garbage"],
            e(MALFORMED_TOKEN),
        ),
    ];
    for (args, want) in &cases {
        assert_eq!(&q(&mut con, args), want, "{args:?}");
    }
    assert_eq!(dbsize(&mut con), 0, "nothing written by a refused call");

    // An owner of 512 bytes, any bytes, is taken.
    let owner: Vec<u8> = (0..512).map(|i| (i % 256) as u8).collect();
    let t = tok_b(&mut con, &[b"SESSIONGATE.OSTART", k, &owner, b"100"]);
    assert_eq!(
        record(&mut con, &t).owner,
        Some((owner.clone(), raw_namespace(k).into_bytes()))
    );
    assert_eq!(olist_ids(&mut con, k, &owner), vec![id_of_v2(&t)]);

    // A bad id among good ones ends nothing.
    let a = tok(&mut con, &["SESSIONGATE.OSTART", KEY, "o", "100"]);
    let a_id = id_of_v2(&a);
    assert_eq!(
        err(
            &mut con,
            &["SESSIONGATE.OEND", KEY, "o", "ID", &a_id, "b@d"]
        ),
        BAD_ID
    );
    assert_eq!(olist_set(&mut con, KEY, "o"), ids(&[&a]));
}

#[test]
fn oend_except_checks_the_tag_before_the_signature_then_the_owner() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let a1 = tok(&mut con, &["SESSIONGATE.OSTART", KEY, "alice", "100"]);
    let a2 = tok(&mut con, &["SESSIONGATE.OSTART", KEY, "alice", "100"]);
    let tag = owner_tag(b"alice");
    assert_eq!(V2::of(&a1).tag, tag);
    // Another owner in the same slot: `{alice}x` hashes as `alice`.
    let b1 = tok(&mut con, &["SESSIONGATE.OSTART", KEY, "{alice}x", "100"]);
    assert_eq!(V2::of(&b1).tag, tag);
    // A session that is nobody's, in the owner's slot: a copy of a1's
    // record under another id, with the owner taken out, is what a
    // START that drew this tag would hold.
    let v1 = start(&mut con, KEY, 100);
    let other_tag = canonical_tag((key_hash_slot(b"alice") + 1) % 16384);
    let id = "AAAAAAAAAAAAAAAA";

    let except = |con: &mut Connection, token: &str| {
        call(con, &["SESSIONGATE.OEND", KEY, "alice", "EXCEPT", token])
    };
    let e = |s: &str| Err::<Value, String>(s.to_string());
    // Not v2, or v2 of another slot: refused before any signature check.
    assert_eq!(except(&mut con, &v1), e(NOT_THE_OWNERS));
    let elsewhere = V2::forge(b"not the key", other_tag, id);
    assert_eq!(except(&mut con, &elsewhere), e(NOT_THE_OWNERS));
    // The owner's tag: then steps 7 to 9.
    assert_eq!(
        except(&mut con, &V2::forge(b"not the key", tag, id)),
        e(FORGED_SIGNATURE)
    );
    assert_eq!(
        except(&mut con, &V2::forge(KEY.as_bytes(), tag, id)),
        e(NO_SESSION)
    );
    // Step 9: a session whose record binds another token.
    let copy = format!("sg-session:{{{tag}}}.{id}");
    let a1_record: Vec<u8> = redis::cmd("HGET")
        .arg(key_of(&a1))
        .arg("")
        .query(&mut con)
        .unwrap();
    let _: i64 = redis::cmd("HSET")
        .arg(&copy)
        .arg("")
        .arg(&a1_record)
        .query(&mut con)
        .unwrap();
    assert_eq!(
        except(&mut con, &V2::forge(KEY.as_bytes(), tag, id)),
        e(STALE_SIGNATURE)
    );
    let _: i64 = redis::cmd("DEL").arg(&copy).query(&mut con).unwrap();
    // Then the owner: another owner's session in the same slot.
    assert_eq!(except(&mut con, &b1), e(NOT_THE_OWNERS));
    // A session of the same owner name under another application's key
    // does not verify under this one.
    let c1 = tok(&mut con, &["SESSIONGATE.OSTART", OTHER_KEY, "alice", "100"]);
    assert_eq!(except(&mut con, &c1), e(FORGED_SIGNATURE));

    // None of that ended anything.
    assert_eq!(olist_set(&mut con, KEY, "alice"), ids(&[&a1, &a2]));
    assert_eq!(olist_set(&mut con, KEY, "{alice}x"), ids(&[&b1]));
    assert_eq!(olist_set(&mut con, OTHER_KEY, "alice"), ids(&[&c1]));
    assert_eq!(except(&mut con, &a2), Ok(Value::Int(1)));
    assert_eq!(olist_set(&mut con, KEY, "alice"), ids(&[&a2]));
    // An EXCEPT token that has ended: step 8.
    assert_eq!(except(&mut con, &a1), e(NO_SESSION));
}

#[test]
fn rotate_and_inspect_check_their_arguments_in_the_specs_order() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let t = tok(&mut con, &["SESSIONGATE.START", KEY, "100", "LABEL", "x"]);
    let v = V2::of(&t);
    let forged = V2::forge(b"not the key", &v.tag, &v.id);
    let missing = V2::forge(KEY.as_bytes(), &v.tag, "AAAAAAAAAAAAAAAA");
    let e = |s: &str| Err::<Value, String>(s.to_string());
    let rotate = |con: &mut Connection, args: &[&str]| {
        let mut all = vec!["SESSIONGATE.ROTATE"];
        all.extend(args);
        call(con, &all)
    };
    let cases: Vec<(Vec<&str>, Result<Value, String>)> = vec![
        (vec!["", "", "TTL", "x"], e(EMPTY_SIGN_KEY)),
        (vec!["@nope", "", "TTL", "x"], Err(unknown_ring("nope"))),
        (vec![KEY, "", "TTL", "x"], e(EMPTY_TOKEN)),
        (vec![KEY, "v2.{x}.bad", "TTL", "x"], e(MALFORMED_TOKEN)),
        // TTL comes after the token's shape, before its signature.
        (vec![KEY, &forged, "TTL", "x"], e(BAD_TTL)),
        (vec![KEY, &forged, "TTL", "-1"], e(BAD_TTL)),
        (vec![KEY, &forged, "TTL", PAST_2_53_SECONDS], e(BAD_TTL)),
        (vec![KEY, &forged, "TTL", "5"], e(FORGED_SIGNATURE)),
        (vec![KEY, &forged], e(FORGED_SIGNATURE)),
        (vec![KEY, &missing], e(NO_SESSION)),
    ];
    for (args, want) in &cases {
        assert_eq!(&rotate(&mut con, args), want, "ROTATE {args:?}");
    }
    let inspect = |con: &mut Connection, keyref: &str, token: &str| {
        call(con, &["SESSIONGATE.INSPECT", keyref, token])
    };
    assert_eq!(inspect(&mut con, "", ""), e(EMPTY_SIGN_KEY));
    assert_eq!(inspect(&mut con, "@nope", ""), Err(unknown_ring("nope")));
    assert_eq!(inspect(&mut con, KEY, ""), e(EMPTY_TOKEN));
    assert_eq!(inspect(&mut con, KEY, "v1.short"), e(MALFORMED_TOKEN));
    assert_eq!(inspect(&mut con, KEY, &forged), e(FORGED_SIGNATURE));
    assert_eq!(inspect(&mut con, KEY, &missing), e(NO_SESSION));

    // A v1 token: ROTATE's TTL is a v2 expiry, capped at 2^53 ms.
    let v1 = start(&mut con, KEY, 100);
    assert_eq!(
        rotate(&mut con, &[KEY, &v1, "TTL", PAST_2_53_SECONDS]),
        e(BAD_TTL)
    );
    // Step 9 for v1 and v2: a session that holds another signature.
    let sig_key = signature_key(&v1);
    let _: () = redis::cmd("SET")
        .arg(&sig_key)
        .arg("0".repeat(64))
        .query(&mut con)
        .unwrap();
    assert_eq!(rotate(&mut con, &[KEY, &v1]), e(STALE_SIGNATURE));
    assert_eq!(inspect(&mut con, KEY, &v1), e(STALE_SIGNATURE));
    let stolen = V2::forge(KEY.as_bytes(), &v.tag, "BBBBBBBBBBBBBBBB");
    let copy = V2::of(&stolen).key();
    let rec: Vec<u8> = redis::cmd("HGET")
        .arg(key_of(&t))
        .arg("")
        .query(&mut con)
        .unwrap();
    let _: i64 = redis::cmd("HSET")
        .arg(&copy)
        .arg("")
        .arg(&rec)
        .query(&mut con)
        .unwrap();
    assert_eq!(rotate(&mut con, &[KEY, &stolen]), e(STALE_SIGNATURE));
    assert_eq!(inspect(&mut con, KEY, &stolen), e(STALE_SIGNATURE));
    // After step 8, a record that does not read.
    let _: i64 = redis::cmd("HSET")
        .arg(&copy)
        .arg("")
        .arg("garbage")
        .query(&mut con)
        .unwrap();
    assert_eq!(rotate(&mut con, &[KEY, &stolen]), e(UNREADABLE_RECORD));
    assert_eq!(inspect(&mut con, KEY, &stolen), e(UNREADABLE_RECORD));
    let dirty: Vec<u8> = redis::cmd("HGET")
        .arg(&copy)
        .arg("")
        .query(&mut con)
        .unwrap();
    assert_eq!(dirty, b"garbage", "the refused ROTATE changed nothing");
    // The real session was never touched.
    assert!(inspect(&mut con, KEY, &t).is_ok());
    assert_eq!(dbsize(&mut con), 3);
}

// ---------------------------------------------------------------------------
// Replies, byte for byte.

#[test]
fn inspect_replies_exactly_in_resp2_and_resp3() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let k = KEY.as_bytes();

    // An owned session with everything: deadline, owner, label, payloads.
    let label = b"ph\0ne \xff\r\n".to_vec();
    let t = tok_b(
        &mut con,
        &[
            b"SESSIONGATE.OSTART",
            k,
            b"al{i}ce",
            b"100",
            b"MAXLIFE",
            b"50",
            b"LABEL",
            &label,
        ],
    );
    ok(
        &mut con,
        &["SESSIONGATE.PMSET", KEY, &t, "a", "1", "b", "2"],
    );
    let rec = record(&mut con, &t);
    let expires = pexpiretime(&mut con, key_of(&t));
    assert_eq!(rec.deadline, Some(rec.created + 50_000));
    assert_eq!(
        expires,
        rec.created + 50_000,
        "ttl 100 clamped at MAXLIFE 50"
    );
    assert_raw_reply(
        &server,
        &[b"SESSIONGATE.INSPECT", k, t.as_bytes()],
        &R::Map(vec![
            ("version", R::I(2)),
            ("id", R::B(id_of_v2(&t).into_bytes())),
            ("created", R::I(rec.created)),
            ("expires", R::I(expires)),
            ("deadline", opt_int(rec.deadline)),
            ("owner", R::B(b"al{i}ce".to_vec())),
            ("label", R::B(label.clone())),
            ("payloads", R::I(2)),
            ("stale", R::I(0)),
        ]),
    );

    // A plain v2 session: no deadline, owner or label.
    config_set(&mut con, "sessiongate.token-version", "2");
    let plain = start(&mut con, KEY, 100);
    let rec = record(&mut con, &plain);
    assert_eq!((rec.deadline, &rec.owner, &rec.label), (None, &None, &None));
    let expires = pexpiretime(&mut con, key_of(&plain));
    assert_raw_reply(
        &server,
        &[b"SESSIONGATE.INSPECT", k, plain.as_bytes()],
        &R::Map(vec![
            ("version", R::I(2)),
            ("id", R::B(id_of_v2(&plain).into_bytes())),
            ("created", R::I(rec.created)),
            ("expires", R::I(expires)),
            ("deadline", R::Nil),
            ("owner", R::Nil),
            ("label", R::Nil),
            ("payloads", R::I(0)),
            ("stale", R::I(0)),
        ]),
    );

    // v1: nil for everything a v1 session has no record of.
    config_set(&mut con, "sessiongate.token-version", "1");
    let v1 = start(&mut con, KEY, 100);
    ok(&mut con, &["SESSIONGATE.PSET", KEY, &v1, "x", "y"]);
    let expires = pexpiretime(&mut con, signature_key(&v1));
    assert!(expires > 0);
    assert_raw_reply(
        &server,
        &[b"SESSIONGATE.INSPECT", k, v1.as_bytes()],
        &R::Map(vec![
            ("version", R::I(1)),
            ("id", R::B(id_of(&v1).as_bytes().to_vec())),
            ("created", R::Nil),
            ("expires", R::I(expires)),
            ("deadline", R::Nil),
            ("owner", R::Nil),
            ("label", R::Nil),
            ("payloads", R::I(1)),
            ("stale", R::I(0)),
        ]),
    );
    // And redis-rs reads RESP3's as a map.
    let mut resp3 = server.connection_resp3();
    assert!(matches!(
        call(&mut resp3, &["SESSIONGATE.INSPECT", KEY, &v1]),
        Ok(Value::Map(fields)) if fields.len() == 9
    ));
}

#[test]
fn olist_replies_exactly_oldest_first_and_never_shows_a_token() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let k = KEY.as_bytes();
    // Created in this order, expiring in the other: the list follows
    // `created`, not the index's scores.
    let mut tokens = Vec::new();
    for (ttl, extra) in [
        ("300", bs![b"LABEL", b"laptop\0"]),
        ("200", bs![b"MAXLIFE", b"100"]),
        ("100", bs![]),
    ] {
        let mut args: Vec<&[u8]> = bs![b"SESSIONGATE.OSTART", k, b"bob", ttl.as_bytes()];
        args.extend(extra);
        tokens.push(tok_b(&mut con, &args));
        sleep(Duration::from_millis(3));
    }
    let mut entries: Vec<(Rec, String, i64)> = tokens
        .iter()
        .map(|t| {
            let rec = record(&mut con, t);
            let at = pexpiretime(&mut con, key_of(t));
            (rec, id_of_v2(t), at)
        })
        .collect();
    let by_score: Vec<String> = zrange(&mut con, &index_key(&raw_namespace(k), b"bob"))
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    entries.sort_by_key(|(rec, id, _)| (rec.created, id.clone()));
    let by_created: Vec<String> = entries.iter().map(|(_, id, _)| id.clone()).collect();
    assert_eq!(
        by_created,
        tokens.iter().map(|t| id_of_v2(t)).collect::<Vec<_>>()
    );
    assert_ne!(by_created, by_score, "the test orders them apart");
    let reply = R::Arr(
        entries
            .iter()
            .map(|(rec, id, at)| {
                R::Map(vec![
                    ("id", R::B(id.clone().into_bytes())),
                    ("created", R::I(rec.created)),
                    ("expires", R::I(*at)),
                    ("deadline", opt_int(rec.deadline)),
                    ("label", opt_bytes(rec.label.clone())),
                ])
            })
            .collect(),
    );
    assert_raw_reply(&server, &[b"SESSIONGATE.OLIST", k, b"bob"], &reply);
    // An owner with no sessions: an empty array.
    assert_raw_reply(
        &server,
        &[b"SESSIONGATE.OLIST", k, b"nobody"],
        &R::Arr(vec![]),
    );

    // Never a token, a signature, a binding, nor the other half.
    for resp3 in [false, true] {
        let bytes = raw(&server, resp3, &[b"SESSIONGATE.OLIST", k, b"bob"]);
        for t in &tokens {
            let v = V2::of(t);
            for secret in [
                t.as_str(),
                &v.signature,
                &v.signature[..32],
                &v.signature[32..],
                &v.signature[..16],
                &v.signature[48..],
            ] {
                assert!(!contains(&bytes, secret.as_bytes()), "{secret} in OLIST");
            }
            assert!(!contains(&bytes, &record(&mut con, t).binding));
        }
        assert!(!contains(&bytes, b"v2."), "no token prefix");
        assert!(!contains(&bytes, k), "no key");
    }
}

// ---------------------------------------------------------------------------
// 2. Deadlines.

#[test]
fn expire_past_the_deadline_is_clamped_and_the_session_ends_at_its_deadline() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    // Short of it, an EXPIRE is taken as it is.
    let long = tok(
        &mut con,
        &["SESSIONGATE.START", KEY, "100", "MAXLIFE", "100"],
    );
    let deadline = record(&mut con, &long).deadline.unwrap();
    ok(&mut con, &["SESSIONGATE.EXPIRE", KEY, &long, "50"]);
    let at = pexpiretime(&mut con, key_of(&long));
    assert!(at < deadline - 40_000, "{at} < {deadline}");
    ok(&mut con, &["SESSIONGATE.EXPIRE", KEY, &long, "101"]);
    assert_eq!(pexpiretime(&mut con, key_of(&long)), deadline);
    let t = tok(&mut con, &["SESSIONGATE.START", KEY, "100", "MAXLIFE", "3"]);
    let o = tok(
        &mut con,
        &["SESSIONGATE.OSTART", KEY, "alice", "100", "MAXLIFE", "3"],
    );
    let index = index_key(&raw_namespace(KEY.as_bytes()), b"alice");
    let mut deadlines = Vec::new();
    for token in [&t, &o] {
        let rec = record(&mut con, token);
        let deadline = rec.created + 3000;
        assert_eq!(rec.deadline, Some(deadline));
        assert_eq!(
            pexpiretime(&mut con, key_of(token)),
            deadline,
            "START clamps"
        );
        // Past it: OK, and clamped.
        ok(&mut con, &["SESSIONGATE.EXPIRE", KEY, token, "1000"]);
        assert_eq!(pexpiretime(&mut con, key_of(token)), deadline);
        let ttl = int(&mut con, &["SESSIONGATE.TTL", KEY, token]);
        assert!((1..=3).contains(&ttl), "TTL shows the clamped {ttl}");
        deadlines.push(deadline);
    }
    assert_eq!(zrange(&mut con, &index), vec![(id_of_v2(&o), deadlines[1])]);
    // ROTATE with a TTL past the deadline: clamped too.
    let r = tok(&mut con, &["SESSIONGATE.ROTATE", KEY, &o, "TTL", "1000"]);
    assert_eq!(pexpiretime(&mut con, key_of(&r)), deadlines[1]);
    assert_eq!(record(&mut con, &r).deadline, Some(deadlines[1]));
    assert_eq!(zrange(&mut con, &index), vec![(id_of_v2(&r), deadlines[1])]);
    let inspected = call(&mut con, &["SESSIONGATE.INSPECT", KEY, &r]).unwrap();
    let Value::Array(flat) = inspected else {
        panic!("{inspected:?}")
    };
    assert_eq!(flat[7], Value::Int(deadlines[1]), "INSPECT's expires");
    assert_eq!(flat[9], Value::Int(deadlines[1]), "INSPECT's deadline");

    // Redis' own expiry ends them there.
    sleep_past(&mut con, deadlines[0].max(deadlines[1]) + 20);
    for token in [&t, &r] {
        assert_eq!(pget(&mut con, KEY, token, "n"), Err(NO_SESSION.into()));
        assert!(!exists(&mut con, key_of(token)));
    }
    assert!(olist_ids(&mut con, KEY.as_bytes(), b"alice").is_empty());
    assert!(
        !exists(&mut con, &index),
        "the index went with its last score"
    );
}

#[test]
fn default_max_lifetime_gives_every_new_v2_session_a_deadline() {
    let server = Server::start(&["default-max-lifetime", "3"]);
    let mut con = server.connection();
    assert_eq!(
        config_get(&mut con, "sessiongate.default-max-lifetime"),
        "3"
    );
    // A v1 session has no deadline.
    let v1 = start(&mut con, KEY, 100);
    let v1_at = pexpiretime(&mut con, signature_key(&v1));
    assert!(v1_at > now_ms(&mut con) + 90_000);

    let with_default = |con: &mut Connection, token: &str| {
        let rec = record(con, token);
        assert_eq!(rec.deadline, Some(rec.created + 3000), "{token}");
        assert_eq!(pexpiretime(con, key_of(token)), rec.created + 3000);
        rec.created + 3000
    };
    // A three-argument START under token-version 2.
    config_set(&mut con, "sessiongate.token-version", "2");
    let s = start(&mut con, KEY, 100);
    let mut latest = with_default(&mut con, &s);
    // START with an option, and OSTART.
    let l = tok(&mut con, &["SESSIONGATE.START", KEY, "100", "LABEL", "x"]);
    latest = latest.max(with_default(&mut con, &l));
    let o = tok(&mut con, &["SESSIONGATE.OSTART", KEY, "alice", "100"]);
    latest = latest.max(with_default(&mut con, &o));
    // MAXLIFE instead of the default, longer or shorter.
    let m = tok(
        &mut con,
        &["SESSIONGATE.START", KEY, "100", "MAXLIFE", "50"],
    );
    let rec = record(&mut con, &m);
    assert_eq!(rec.deadline, Some(rec.created + 50_000));
    // A v1 session rotated into v2, counted from the ROTATE.
    config_set(&mut con, "sessiongate.token-version", "1");
    let v1b = start(&mut con, KEY, 100);
    ok(&mut con, &["SESSIONGATE.PSET", KEY, &v1b, "x", "y"]);
    let before = now_ms(&mut con);
    let r = tok(&mut con, &["SESSIONGATE.ROTATE", KEY, &v1b]);
    let after = now_ms(&mut con);
    let rec = record(&mut con, &r);
    assert!(
        (before..=after).contains(&rec.created),
        "created = the ROTATE"
    );
    latest = latest.max(with_default(&mut con, &r));
    // With the config back at 0, a new v2 session has none.
    config_set(&mut con, "sessiongate.default-max-lifetime", "0");
    let none = tok(&mut con, &["SESSIONGATE.START", KEY, "100", "LABEL", "x"]);
    assert_eq!(record(&mut con, &none).deadline, None);

    sleep_past(&mut con, latest + 20);
    for token in [&s, &l, &o, &r] {
        assert_eq!(pget(&mut con, KEY, token, "x"), Err(NO_SESSION.into()));
        assert!(!exists(&mut con, key_of(token)));
    }
    for token in [&m, &none] {
        assert!(exists(&mut con, key_of(token)));
    }
    assert_eq!(pexpiretime(&mut con, signature_key(&v1)), v1_at);
}

#[test]
fn a_deadline_is_exactly_maxlife_after_created_and_the_expiry_from_the_same_instant() {
    let server = Server::start(&["default-max-lifetime", "700"]);
    let mut con = server.connection();
    config_set(&mut con, "sessiongate.token-version", "2");
    // Many, pipelined, so that some straddle a millisecond boundary
    // inside the call: one clock reading must serve them all.
    for (args, life, count) in [
        (
            &["SESSIONGATE.START", KEY, "60", "MAXLIFE", "500"][..],
            500_000,
            1000,
        ),
        (&["SESSIONGATE.START", KEY, "60"], 700_000, 1000),
        // Each OSTART reads the owner's other sessions: fewer.
        (
            &["SESSIONGATE.OSTART", KEY, "o", "60", "MAXLIFE", "500"],
            500_000,
            200,
        ),
    ] {
        let mut pipe = redis::pipe();
        for _ in 0..count {
            pipe.cmd(args[0]).arg(&args[1..]);
        }
        let tokens: Vec<String> = pipe.query(&mut con).unwrap();
        let mut pipe = redis::pipe();
        for t in &tokens {
            pipe.cmd("HGET").arg(key_of(t)).arg("");
            pipe.cmd("PEXPIRETIME").arg(key_of(t));
        }
        let read: Vec<(Vec<u8>, i64)> = pipe.query(&mut con).unwrap();
        for (bytes, at) in read {
            let rec = Rec::decode(&bytes);
            assert_eq!(rec.deadline, Some(rec.created + life), "{args:?}");
            assert_eq!(at, rec.created + 60_000, "{args:?}");
        }
        let _: () = redis::cmd("FLUSHALL").query(&mut con).unwrap();
    }
}

// ---------------------------------------------------------------------------
// 3. ROTATE.

#[test]
fn rotate_carries_payloads_record_and_expiry_and_the_old_token_dies() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let t = tok(
        &mut con,
        &[
            "SESSIONGATE.START",
            KEY,
            "500",
            "MAXLIFE",
            "1000",
            "LABEL",
            "dev",
        ],
    );
    let big = vec![b'z'; 100_000];
    let args: [&[u8]; 9] = [
        b"SESSIONGATE.PMSET",
        KEY.as_bytes(),
        t.as_bytes(),
        b"a",
        b"1",
        b"bin\0",
        b"\0\xff\r\n",
        b"big",
        &big,
    ];
    assert_eq!(q(&mut con, &args), Ok(Value::Okay));
    ok(&mut con, &["SESSIONGATE.EXPIRE", KEY, &t, "300"]);
    let payloads = pgetall(&mut con, KEY, &t);
    assert_eq!(payloads.len(), 3);
    let rec = record(&mut con, &t);
    let at = pexpiretime(&mut con, key_of(&t));

    let r = tok(&mut con, &["SESSIONGATE.ROTATE", KEY, &t]);
    let (old, new) = (V2::of(&t), V2::of(&r));
    assert_eq!(new.tag, old.tag, "the same slot");
    assert_ne!(new.id, old.id);
    assert_eq!(
        new.signature,
        hmac_hex(KEY.as_bytes(), new.signed_part().as_bytes())
    );
    assert_eq!(pgetall(&mut con, KEY, &r), payloads);
    let new_rec = record(&mut con, &r);
    assert_eq!(new_rec.binding, new.signature.as_bytes()[..32].to_vec());
    assert_eq!(
        (
            new_rec.created,
            new_rec.deadline,
            &new_rec.owner,
            &new_rec.label
        ),
        (rec.created, rec.deadline, &None, &Some(b"dev".to_vec()))
    );
    assert_eq!(pexpiretime(&mut con, new.key()), at, "the expiry is kept");
    assert!(!exists(&mut con, old.key()));
    assert_eq!(dbsize(&mut con), 1);
    // Every command on the old token: step 8.
    for args in [
        vec!["SESSIONGATE.PGET", KEY, &t, "a"],
        vec!["SESSIONGATE.PSET", KEY, &t, "a", "2"],
        vec!["SESSIONGATE.PGETALL", KEY, &t],
        vec!["SESSIONGATE.EXPIRE", KEY, &t, "10"],
        vec!["SESSIONGATE.TTL", KEY, &t],
        vec!["SESSIONGATE.INSPECT", KEY, &t],
        vec!["SESSIONGATE.ROTATE", KEY, &t],
        vec!["SESSIONGATE.END", KEY, &t],
    ] {
        assert_eq!(err(&mut con, &args), NO_SESSION, "{args:?}");
    }
    assert_eq!(pgetall(&mut con, KEY, &r), payloads, "untouched by those");

    // TTL sets the expiry, within the deadline.
    let r2 = tok(&mut con, &["SESSIONGATE.ROTATE", KEY, &r, "TTL", "50"]);
    let now = now_ms(&mut con);
    let at = pexpiretime(&mut con, key_of(&r2));
    assert!((now + 49_000..=now + 50_000).contains(&at), "{at} vs {now}");
    let r3 = tok(&mut con, &["SESSIONGATE.ROTATE", KEY, &r2, "TTL", "5000"]);
    assert_eq!(pexpiretime(&mut con, key_of(&r3)), rec.deadline.unwrap());
    assert_eq!(pgetall(&mut con, KEY, &r3), payloads);
    // TTL 0 ends it: a token whose session does not exist.
    let r4 = tok(&mut con, &["SESSIONGATE.ROTATE", KEY, &r3, "TTL", "0"]);
    assert_eq!(V2::of(&r4).tag, old.tag);
    assert_eq!(pget(&mut con, KEY, &r4, "a"), Err(NO_SESSION.into()));
    assert_eq!(pget(&mut con, KEY, &r3, "a"), Err(NO_SESSION.into()));
    assert_eq!(dbsize(&mut con), 0);
}

#[test]
fn rotate_turns_a_v1_session_into_v2_with_its_payloads_in_its_slot() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let v1 = start(&mut con, KEY, 300);
    let args: [&[u8]; 7] = [
        b"SESSIONGATE.PMSET",
        KEY.as_bytes(),
        v1.as_bytes(),
        b"a",
        b"1",
        b"b\0",
        b"\0",
    ];
    assert_eq!(q(&mut con, &args), Ok(Value::Okay));
    ok(&mut con, &["SESSIONGATE.EXPIRE", KEY, &v1, "200"]);
    let payloads = pgetall(&mut con, KEY, &v1);
    let at = pexpiretime(&mut con, signature_key(&v1));
    let before = now_ms(&mut con);
    let r = tok(&mut con, &["SESSIONGATE.ROTATE", KEY, &v1]);
    let after = now_ms(&mut con);
    let v = V2::of(&r);
    // The canonical tag of the v1 token's slot (its keys' slot in a cluster).
    assert_eq!(v.tag, canonical_tag(key_hash_slot(v1.as_bytes())));
    assert_eq!(
        v.signature,
        hmac_hex(KEY.as_bytes(), v.signed_part().as_bytes())
    );
    assert_eq!(pgetall(&mut con, KEY, &r), payloads);
    let rec = record(&mut con, &r);
    assert!((before..=after).contains(&rec.created));
    assert_eq!((rec.deadline, rec.owner, rec.label), (None, None, None));
    assert_eq!(pexpiretime(&mut con, v.key()), at);
    assert!(!exists(&mut con, signature_key(&v1)));
    assert!(!exists(&mut con, payloads_key(&v1)));
    assert_eq!(dbsize(&mut con), 1);
    assert_eq!(pget(&mut con, KEY, &v1, "a"), Err(NO_SESSION.into()));

    // A v1 session with no payloads: a v2 session of its record only.
    let bare = start(&mut con, KEY, 300);
    let at = pexpiretime(&mut con, signature_key(&bare));
    let r = tok(&mut con, &["SESSIONGATE.ROTATE", KEY, &bare, "TTL", "100"]);
    assert!(pgetall(&mut con, KEY, &r).is_empty());
    assert!(payload_fields(&mut con, &key_of(&r)).is_empty());
    let new_at = pexpiretime(&mut con, key_of(&r));
    assert!(new_at < at && new_at > now_ms(&mut con) + 90_000);
    assert!(!exists(&mut con, signature_key(&bare)));
    assert_eq!(dbsize(&mut con), 2);
}

#[test]
fn rotate_moves_a_session_to_a_rings_new_primary_and_stale_says_when() {
    let (old, old64) = secret("lifecycle-ring-old");
    let (new, new64) = secret("lifecycle-ring-new");
    let file = KeyringFile::new(&format!("app primary {old64}\n"));
    let server = Server::start(&["keyring-file", file.path()]);
    let mut con = server.connection();
    let t = tok(
        &mut con,
        &["SESSIONGATE.START", "@app", "300", "LABEL", "x"],
    );
    ok(&mut con, &["SESSIONGATE.PSET", "@app", &t, "a", "1"]);
    let v1 = start(&mut con, "@app", 300);
    ok(&mut con, &["SESSIONGATE.PSET", "@app", &v1, "b", "2"]);
    assert_eq!(stale(&mut con, "@app", &t), 0);
    assert_eq!(stale(&mut con, "@app", &v1), 0);
    // The same secret as a raw key verifies, and is never stale.
    assert_eq!(stale(&mut con, &old, &t), 0);

    file.write(&format!("app primary {new64}\napp verify {old64}\n"));
    reload(&mut con);
    assert_eq!(stale(&mut con, "@app", &t), 1);
    assert_eq!(stale(&mut con, "@app", &v1), 1);
    for (token, name, data) in [(&t, "a", b"1"), (&v1, "b", b"2")] {
        let r = tok(&mut con, &["SESSIONGATE.ROTATE", "@app", token]);
        let v = V2::of(&r);
        assert_eq!(v.signature, hmac_hex(&new, v.signed_part().as_bytes()));
        assert_eq!(stale(&mut con, "@app", &r), 0);
        assert_eq!(
            pget(&mut con, "@app", &r, name),
            Ok(Value::BulkString(data.to_vec()))
        );
        assert_eq!(pget(&mut con, "@app", token, name), Err(NO_SESSION.into()));
        // Once the old secret is dropped, the rotated token still works.
        file.write(&format!("app primary {new64}\n"));
        reload(&mut con);
        assert_eq!(stale(&mut con, "@app", &r), 0);
        file.write(&format!("app primary {new64}\napp verify {old64}\n"));
        reload(&mut con);
    }
}

#[test]
fn an_owned_session_rotated_is_listed_once_under_its_new_id() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let k = KEY.as_bytes();
    let index = index_key(&raw_namespace(k), b"carol");
    let a = tok(
        &mut con,
        &["SESSIONGATE.OSTART", KEY, "carol", "300", "LABEL", "tv"],
    );
    sleep(Duration::from_millis(3));
    let b = tok(&mut con, &["SESSIONGATE.OSTART", KEY, "carol", "200"]);
    ok(&mut con, &["SESSIONGATE.PSET", KEY, &a, "n", "v"]);
    let rec = record(&mut con, &a);
    let r = tok(&mut con, &["SESSIONGATE.ROTATE", KEY, &a]);
    assert_eq!(V2::of(&r).tag, owner_tag(b"carol"));
    assert_eq!(
        olist_ids(&mut con, k, b"carol"),
        vec![id_of_v2(&r), id_of_v2(&b)],
        "oldest first: the rotated session keeps its created"
    );
    let new_rec = record(&mut con, &r);
    assert_eq!(
        (new_rec.created, &new_rec.owner, &new_rec.label),
        (rec.created, &rec.owner, &rec.label)
    );
    let scores: BTreeMap<String, i64> = zrange(&mut con, &index).into_iter().collect();
    assert_eq!(
        scores,
        BTreeMap::from([
            (id_of_v2(&r), pexpiretime(&mut con, key_of(&r))),
            (id_of_v2(&b), pexpiretime(&mut con, key_of(&b))),
        ])
    );
    assert_eq!(
        stale(&mut con, KEY, &r),
        0,
        "INSPECT works on the new token"
    );
    // With a TTL, the index's score follows.
    let r2 = tok(&mut con, &["SESSIONGATE.ROTATE", KEY, &r, "TTL", "1000"]);
    let at = pexpiretime(&mut con, key_of(&r2));
    assert!(zrange(&mut con, &index).contains(&(id_of_v2(&r2), at)));
    assert!(
        pexpiretime(&mut con, &index) >= at,
        "the index lives as long"
    );
    assert_eq!(members(&mut con, &index), ids(&[&r2, &b]));
    // TTL 0 takes it out of the index; the last one takes the index.
    tok(&mut con, &["SESSIONGATE.ROTATE", KEY, &r2, "TTL", "0"]);
    assert_eq!(members(&mut con, &index), ids(&[&b]));
    tok(&mut con, &["SESSIONGATE.ROTATE", KEY, &b, "TTL", "0"]);
    assert!(!exists(&mut con, &index));
    assert_eq!(dbsize(&mut con), 0);
}

#[test]
fn a_raw_key_application_moves_its_owned_sessions_onto_a_ring_by_rotate() {
    let raw_key = "raw-key-of-the-legacy-application-32";
    let (_, ring64) = secret("lifecycle-migration-ring");
    let file = KeyringFile::new(&format!(
        "app primary {ring64}\napp verify {}\n",
        STANDARD.encode(raw_key)
    ));
    let server = Server::start(&["keyring-file", file.path()]);
    let mut con = server.connection();
    let raw_index = index_key(&raw_namespace(raw_key.as_bytes()), b"alice");
    let ring_index = index_key("r.app", b"alice");

    let o = tok(
        &mut con,
        &[
            "SESSIONGATE.OSTART",
            raw_key,
            "alice",
            "300",
            "LABEL",
            "phone",
        ],
    );
    ok(&mut con, &["SESSIONGATE.PSET", raw_key, &o, "n", "v"]);
    let kept = tok(&mut con, &["SESSIONGATE.OSTART", raw_key, "alice", "300"]);
    let ended_by_ring = tok(&mut con, &["SESSIONGATE.OSTART", raw_key, "alice", "300"]);
    assert_eq!(
        members(&mut con, &raw_index),
        ids(&[&o, &kept, &ended_by_ring])
    );

    let r = tok(&mut con, &["SESSIONGATE.ROTATE", "@app", &o]);
    assert_eq!(olist_set(&mut con, "@app", "alice"), ids(&[&r]));
    assert_eq!(
        olist_set(&mut con, raw_key, "alice"),
        ids(&[&kept, &ended_by_ring])
    );
    assert_eq!(
        zrange(&mut con, &ring_index),
        vec![(id_of_v2(&r), pexpiretime(&mut con, key_of(&r)))]
    );
    assert_eq!(members(&mut con, &raw_index), ids(&[&kept, &ended_by_ring]));
    let rec = record(&mut con, &r);
    assert_eq!(rec.owner, Some((b"alice".to_vec(), b"r.app".to_vec())));
    assert_eq!(rec.label, Some(b"phone".to_vec()));
    assert_eq!(stale(&mut con, "@app", &r), 0);
    assert_eq!(
        pget(&mut con, "@app", &r, "n"),
        Ok(Value::BulkString(b"v".to_vec()))
    );
    // END through the ring, of a session the raw key started: the index
    // its record names loses it, whatever keyref the call uses.
    ok(&mut con, &["SESSIONGATE.END", "@app", &ended_by_ring]);
    assert_eq!(members(&mut con, &raw_index), ids(&[&kept]));
    // Each application's OEND sees its own.
    assert_eq!(int(&mut con, &["SESSIONGATE.OEND", raw_key, "alice"]), 1);
    assert!(!exists(&mut con, &raw_index));
    assert_eq!(olist_set(&mut con, "@app", "alice"), ids(&[&r]));
    ok(&mut con, &["SESSIONGATE.END", "@app", &r]);
    assert!(!exists(&mut con, &ring_index));
    assert_eq!(dbsize(&mut con), 0);
}

// ---------------------------------------------------------------------------
// 4. The owner index.

/// `threads` connections, each sending `each` OSTARTs with `options`:
/// every reply.
fn concurrent_ostarts(
    server: &Server,
    owner: &str,
    threads: usize,
    each: usize,
    options: &[&str],
) -> Vec<Result<Value, String>> {
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let mut con = server.connection();
            let owner = owner.to_string();
            let options: Vec<String> = options.iter().map(|s| s.to_string()).collect();
            std::thread::spawn(move || {
                (0..each)
                    .map(|_| {
                        let mut args = vec!["SESSIONGATE.OSTART", KEY, &owner, "300"];
                        args.extend(options.iter().map(String::as_str));
                        call(&mut con, &args)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().expect("a client thread"))
        .collect()
}

#[test]
fn limit_holds_under_concurrent_ostarts_for_evict_and_reject() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let k = KEY.as_bytes();

    let replies = concurrent_ostarts(&server, "alice", 4, 25, &["LIMIT", "5"]);
    let tokens: Vec<String> = replies
        .into_iter()
        .map(|reply| match reply {
            Ok(Value::BulkString(t)) => String::from_utf8(t).unwrap(),
            other => panic!("OSTART LIMIT 5 (EVICT): {other:?}"),
        })
        .collect();
    assert_eq!(tokens.len(), 100);
    let listed: BTreeSet<String> = olist_ids(&mut con, k, b"alice").into_iter().collect();
    let index = index_key(&raw_namespace(k), b"alice");
    assert_eq!(listed.len(), 5);
    assert_eq!(members(&mut con, &index), listed);
    for id in &listed {
        let tag = owner_tag(b"alice");
        assert!(exists(&mut con, format!("sg-session:{{{tag}}}.{id}")));
    }
    let alive: Vec<&String> = tokens
        .iter()
        .filter(|t| pget(&mut con, KEY, t, "n") != Err(NO_SESSION.into()))
        .collect();
    assert_eq!(ids(&alive), listed);
    assert_eq!(keys(&mut con, "sg-session:*").len(), 5);
    assert_eq!(counter(&mut con, "sessions_evicted"), 95);
    assert_eq!(counter(&mut con, "sessions_started"), 100);

    let replies = concurrent_ostarts(&server, "bob", 4, 25, &["LIMIT", "5", "REJECT"]);
    let started: Vec<String> = replies
        .iter()
        .filter_map(|reply| match reply {
            Ok(Value::BulkString(t)) => Some(String::from_utf8(t.clone()).unwrap()),
            Err(e) => {
                assert_eq!(e, &too_many_sessions(5));
                None
            }
            other => panic!("OSTART LIMIT 5 REJECT: {other:?}"),
        })
        .collect();
    assert_eq!(started.len(), 5, "exactly the limit started");
    let refs: Vec<&String> = started.iter().collect();
    assert_eq!(olist_set(&mut con, KEY, "bob"), ids(&refs));
    assert_eq!(
        members(&mut con, &index_key(&raw_namespace(k), b"bob")),
        ids(&refs)
    );
    assert_eq!(
        counter(&mut con, "sessions_evicted"),
        95,
        "REJECT evicts none"
    );
    assert_eq!(keys(&mut con, "sg-session:*").len(), 10);
}

#[test]
fn evict_ends_the_sessions_that_expire_first_until_the_new_one_fits() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let ostart = |con: &mut Connection, ttl: &str, options: &[&str]| {
        let mut args = vec!["SESSIONGATE.OSTART", KEY, "alice", ttl];
        args.extend(options);
        tok(con, &args)
    };
    let a = ostart(&mut con, "300", &["LIMIT", "3"]);
    let b = ostart(&mut con, "100", &["LIMIT", "3"]);
    let c = ostart(&mut con, "200", &["LIMIT", "3"]);
    // Not the oldest (a): the one that expires first (b).
    let d = ostart(&mut con, "400", &["LIMIT", "3"]);
    assert_eq!(olist_set(&mut con, KEY, "alice"), ids(&[&a, &c, &d]));
    assert_eq!(pget(&mut con, KEY, &b, "n"), Err(NO_SESSION.into()));
    // LIMIT 2 with three live: the two that expire first go.
    let e = ostart(&mut con, "500", &["LIMIT", "2", "EVICT"]);
    assert_eq!(olist_set(&mut con, KEY, "alice"), ids(&[&d, &e]));
    let f = ostart(&mut con, "50", &["LIMIT", "2"]);
    assert_eq!(olist_set(&mut con, KEY, "alice"), ids(&[&e, &f]));
    // With sliding expiry, the least recently active goes.
    ok(&mut con, &["SESSIONGATE.EXPIRE", KEY, &e, "10"]);
    let g = ostart(&mut con, "600", &["LIMIT", "2"]);
    assert_eq!(olist_set(&mut con, KEY, "alice"), ids(&[&f, &g]));
    // REJECT: nothing started, nothing ended.
    let before = dbsize(&mut con);
    assert_eq!(
        err(
            &mut con,
            &[
                "SESSIONGATE.OSTART",
                KEY,
                "alice",
                "100",
                "LIMIT",
                "2",
                "REJECT"
            ]
        ),
        too_many_sessions(2)
    );
    assert_eq!(
        err(
            &mut con,
            &[
                "SESSIONGATE.OSTART",
                KEY,
                "alice",
                "100",
                "LIMIT",
                "1",
                "REJECT"
            ]
        ),
        too_many_sessions(1)
    );
    assert_eq!(dbsize(&mut con), before);
    assert_eq!(olist_set(&mut con, KEY, "alice"), ids(&[&f, &g]));
    let h = ostart(&mut con, "100", &["LIMIT", "3", "REJECT"]);
    assert_eq!(olist_set(&mut con, KEY, "alice"), ids(&[&f, &g, &h]));
    assert_eq!(counter(&mut con, "sessions_evicted"), 5);
}

#[test]
fn ostart_with_ttl_0_stores_nothing_and_evicts_nothing() {
    let server = Server::start(&["max-sessions-per-owner", "1"]);
    let mut con = server.connection();
    let a = tok(
        &mut con,
        &["SESSIONGATE.OSTART", KEY, "alice", "300", "LIMIT", "1"],
    );
    let before = dbsize(&mut con);
    for options in [&["LIMIT", "1"][..], &["LIMIT", "1", "REJECT"], &[]] {
        let mut args = vec!["SESSIONGATE.OSTART", KEY, "alice", "0"];
        args.extend(options);
        let z = tok(&mut con, &args);
        assert_eq!(V2::of(&z).tag, owner_tag(b"alice"), "{options:?}");
        assert_eq!(pget(&mut con, KEY, &z, "n"), Err(NO_SESSION.into()));
        assert_eq!(dbsize(&mut con), before);
        assert_eq!(olist_set(&mut con, KEY, "alice"), ids(&[&a]));
    }
    assert_eq!(counter(&mut con, "sessions_evicted"), 0);
}

#[test]
fn max_sessions_per_owner_refuses_beyond_it_limit_or_not() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    assert_eq!(
        config_get(&mut con, "sessiongate.max-sessions-per-owner"),
        "1000"
    );
    config_set(&mut con, "sessiongate.max-sessions-per-owner", "3");
    let ostart = |con: &mut Connection, owner: &str, options: &[&str]| {
        let mut args = vec!["SESSIONGATE.OSTART", KEY, owner, "300"];
        args.extend(options);
        call(con, &args)
    };
    let mut alive = Vec::new();
    for _ in 0..3 {
        alive.push(match ostart(&mut con, "alice", &[]) {
            Ok(Value::BulkString(t)) => String::from_utf8(t).unwrap(),
            other => panic!("{other:?}"),
        });
    }
    for options in [&[][..], &["LIMIT", "10"], &["LIMIT", "10", "REJECT"]] {
        assert_eq!(
            ostart(&mut con, "alice", options),
            Err(too_many_sessions(3)),
            "{options:?}"
        );
    }
    let refs: Vec<&String> = alive.iter().collect();
    assert_eq!(olist_set(&mut con, KEY, "alice"), ids(&refs));
    // A LIMIT within it evicts to make room.
    assert!(ostart(&mut con, "alice", &["LIMIT", "3"]).is_ok());
    assert_eq!(olist_set(&mut con, KEY, "alice").len(), 3);
    // Per owner: another owner has its own three.
    for _ in 0..3 {
        assert!(ostart(&mut con, "bob", &[]).is_ok());
    }
    // 0 means none.
    config_set(&mut con, "sessiongate.max-sessions-per-owner", "0");
    for _ in 0..5 {
        assert!(ostart(&mut con, "alice", &[]).is_ok());
    }
    assert_eq!(olist_set(&mut con, KEY, "alice").len(), 8);

    // Set at load, as a module argument.
    let server = Server::start(&["max-sessions-per-owner", "1"]);
    let mut con = server.connection();
    assert!(ostart(&mut con, "alice", &[]).is_ok());
    assert_eq!(ostart(&mut con, "alice", &[]), Err(too_many_sessions(1)));
}

#[test]
fn oend_ends_all_all_but_one_or_the_ids_named() {
    let server = Server::start(&["--notify-keyspace-events", "Ed"]);
    let mut con = server.connection();
    let ostart =
        |con: &mut Connection, owner: &str| tok(con, &["SESSIONGATE.OSTART", KEY, owner, "300"]);
    let [a, b, c, d] = [0; 4].map(|_| ostart(&mut con, "alice"));
    let bob = ostart(&mut con, "bob");
    let unknown = "AAAAAAAAAAAAAAAA".to_string();
    assert_eq!(
        int(
            &mut con,
            &[
                "SESSIONGATE.OEND",
                KEY,
                "alice",
                "ID",
                &id_of_v2(&a),
                &unknown,
                &id_of_v2(&b),
                &id_of_v2(&bob),
                &id_of_v2(&a),
            ]
        ),
        2,
        "unknown and other owners' ids skipped"
    );
    assert_eq!(olist_set(&mut con, KEY, "alice"), ids(&[&c, &d]));
    assert_eq!(olist_set(&mut con, KEY, "bob"), ids(&[&bob]));
    for token in [&a, &b] {
        assert_eq!(pget(&mut con, KEY, token, "n"), Err(NO_SESSION.into()));
    }
    assert_eq!(
        int(
            &mut con,
            &["SESSIONGATE.OEND", KEY, "alice", "ID", &id_of_v2(&a)]
        ),
        0
    );
    let e = ostart(&mut con, "alice");
    assert_eq!(
        int(&mut con, &["SESSIONGATE.OEND", KEY, "alice", "EXCEPT", &c]),
        2
    );
    assert_eq!(olist_set(&mut con, KEY, "alice"), ids(&[&c]));
    assert_eq!(pget(&mut con, KEY, &e, "n"), Err(NO_SESSION.into()));
    assert_eq!(int(&mut con, &["SESSIONGATE.OEND", KEY, "alice"]), 1);
    assert!(olist_ids(&mut con, KEY.as_bytes(), b"alice").is_empty());
    let index = index_key(&raw_namespace(KEY.as_bytes()), b"alice");
    assert!(!exists(&mut con, &index));
    assert_eq!(int(&mut con, &["SESSIONGATE.OEND", KEY, "alice"]), 0);
    assert_eq!(olist_set(&mut con, KEY, "bob"), ids(&[&bob]));
    assert_eq!(counter(&mut con, "sessions_ended_by_owner"), 5);
    assert_eq!(dbsize(&mut con), 2, "bob's session and index");
}

#[test]
fn two_applications_with_the_same_owner_never_see_each_others_sessions() {
    let (_, one64) = secret("lifecycle-app-one");
    let (_, two64) = secret("lifecycle-app-two");
    let file = KeyringFile::new(&format!("one primary {one64}\ntwo primary {two64}\n"));
    let server = Server::start(&["keyring-file", file.path()]);
    let mut con = server.connection();
    let keyrefs = [KEY, OTHER_KEY, "@one", "@two"];
    let namespaces = [
        raw_namespace(KEY.as_bytes()),
        raw_namespace(OTHER_KEY.as_bytes()),
        "r.one".to_string(),
        "r.two".to_string(),
    ];
    assert_ne!(namespaces[0], namespaces[1]);
    let tokens: Vec<String> = keyrefs
        .iter()
        .map(|keyref| tok(&mut con, &["SESSIONGATE.OSTART", keyref, "alice", "300"]))
        .collect();
    let expected_indexes: BTreeSet<Vec<u8>> = namespaces
        .iter()
        .map(|ns| index_key(ns, b"alice"))
        .collect();
    assert_eq!(keys(&mut con, "sg-owner:*"), expected_indexes);
    for (i, keyref) in keyrefs.iter().enumerate() {
        assert_eq!(olist_set(&mut con, keyref, "alice"), ids(&[&tokens[i]]));
        let rec = record(&mut con, &tokens[i]);
        assert_eq!(
            rec.owner,
            Some((b"alice".to_vec(), namespaces[i].clone().into_bytes()))
        );
    }
    // LIMIT counts only the application's own.
    let again = tok(
        &mut con,
        &["SESSIONGATE.OSTART", KEY, "alice", "300", "LIMIT", "1"],
    );
    assert_eq!(pget(&mut con, KEY, &tokens[0], "n"), Err(NO_SESSION.into()));
    for (i, keyref) in keyrefs.iter().enumerate().skip(1) {
        assert_eq!(olist_set(&mut con, keyref, "alice"), ids(&[&tokens[i]]));
    }
    // OEND too, and another application's token is no EXCEPT here.
    assert_eq!(
        err(
            &mut con,
            &["SESSIONGATE.OEND", KEY, "alice", "EXCEPT", &tokens[2]]
        ),
        FORGED_SIGNATURE
    );
    assert_eq!(
        int(
            &mut con,
            &[
                "SESSIONGATE.OEND",
                KEY,
                "alice",
                "ID",
                &id_of_v2(&tokens[1])
            ]
        ),
        0
    );
    assert_eq!(int(&mut con, &["SESSIONGATE.OEND", "@two", "alice"]), 1);
    assert_eq!(olist_set(&mut con, KEY, "alice"), ids(&[&again]));
    assert_eq!(olist_set(&mut con, OTHER_KEY, "alice"), ids(&[&tokens[1]]));
    assert_eq!(olist_set(&mut con, "@one", "alice"), ids(&[&tokens[2]]));
    assert!(olist_ids(&mut con, b"@two", b"alice").is_empty());
}

#[test]
fn an_owners_sessions_and_index_sit_in_the_owners_slot_by_hash_tag_rules() {
    // One node that serves every slot: CLUSTER KEYSLOT answers, and the
    // module runs in cluster mode.
    let server = Server::start(&[
        "--cluster-enabled",
        "yes",
        "--cluster-port",
        FREE_PORT,
        "--cluster-config-file",
        "nodes.conf",
    ]);
    let mut con = server.connection();
    ok(&mut con, &["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]);
    server.wait_for("cluster_state:ok", || {
        let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut con).unwrap();
        info.contains("cluster_state:ok")
    });
    let keyslot = |con: &mut Connection, key: &[u8]| -> usize {
        redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(con)
            .unwrap()
    };
    let ns = raw_namespace(KEY.as_bytes());
    for owner in [
        &b"{}"[..],
        b"a{b}c",
        b"a{b{c}d}",
        b"{a}",
        b"b",
        b"plain owner",
        b"}{x}",
        b"\0bin{\xff}",
    ] {
        let slot = keyslot(&mut con, owner);
        assert_eq!(slot, key_hash_slot(owner), "{owner:?}");
        let t = tok_b(
            &mut con,
            &[b"SESSIONGATE.OSTART", KEY.as_bytes(), owner, b"300"],
        );
        let v = V2::of(&t);
        assert_eq!(v.tag, canonical_tag(slot), "{owner:?}");
        assert_eq!(keyslot(&mut con, v.key().as_bytes()), slot);
        let index = index_key(&ns, owner);
        assert!(exists(&mut con, &index), "{owner:?}");
        assert_eq!(keyslot(&mut con, &index), slot);
        assert_eq!(
            olist_ids(&mut con, KEY.as_bytes(), owner),
            vec![v.id.clone()]
        );
        let count: i64 = redis::cmd("CLUSTER")
            .arg("COUNTKEYSINSLOT")
            .arg(slot)
            .query(&mut con)
            .unwrap();
        assert!(count >= 2, "{owner:?}: session and index in slot {slot}");
    }
    // `a{b}c` and `b` share a slot, not an index.
    assert_eq!(owner_tag(b"a{b}c"), owner_tag(b"b"));
    assert_ne!(index_key(&ns, b"a{b}c"), index_key(&ns, b"b"));
    assert_eq!(olist_ids(&mut con, KEY.as_bytes(), b"b").len(), 1);

    // ROTATE in cluster mode keeps the session in its slot: a v1 session's
    // keys are named with the whole token as hash tag (docs/cluster.md), and the v2
    // session it becomes takes that slot's canonical tag.
    let v1 = start(&mut con, KEY, 300);
    ok(&mut con, &["SESSIONGATE.PSET", KEY, &v1, "n", "v"]);
    let v1_payloads = format!("sg-session:{{{v1}}}:payloads");
    assert!(exists(&mut con, &v1_payloads));
    let slot = keyslot(&mut con, v1.as_bytes());
    assert_eq!(keyslot(&mut con, v1_payloads.as_bytes()), slot);
    let r = tok(&mut con, &["SESSIONGATE.ROTATE", KEY, &v1]);
    assert_eq!(V2::of(&r).tag, canonical_tag(slot));
    assert_eq!(keyslot(&mut con, key_of(&r).as_bytes()), slot);
    assert_eq!(
        pgetall(&mut con, KEY, &r),
        vec![(b"n".to_vec(), b"v".to_vec())]
    );
    assert!(!exists(&mut con, &v1_payloads));
    assert!(!exists(&mut con, format!("sg-session:{{{v1}}}:signature")));
    let owned = tok(&mut con, &["SESSIONGATE.OSTART", KEY, "a{b}c", "300"]);
    let rotated = tok(&mut con, &["SESSIONGATE.ROTATE", KEY, &owned]);
    assert_eq!(V2::of(&rotated).tag, owner_tag(b"b"));
    assert_eq!(olist_set(&mut con, KEY, "a{b}c").len(), 2);
    assert!(olist_set(&mut con, KEY, "a{b}c").contains(&id_of_v2(&rotated)));
    assert!(!olist_set(&mut con, KEY, "a{b}c").contains(&id_of_v2(&owned)));
    // An EXCEPT token of another slot is refused, not looked up.
    assert_eq!(
        err(&mut con, &["SESSIONGATE.OEND", KEY, "a{b}c", "EXCEPT", &r]),
        NOT_THE_OWNERS
    );
}

/// WATCH `key` on `watcher`, run `during`, then whether a MULTI/EXEC still
/// runs (nothing signalled the key).
fn watch_survives(watcher: &mut Connection, key: &[u8], during: impl FnOnce()) -> bool {
    let _: () = redis::cmd("WATCH").arg(key).query(watcher).unwrap();
    during();
    let _: () = redis::cmd("MULTI").query(watcher).unwrap();
    let _: () = redis::cmd("PING").query(watcher).unwrap();
    let exec: Value = redis::cmd("EXEC").query(watcher).unwrap();
    exec != Value::Nil
}

fn dirty(con: &mut Connection) -> i64 {
    info_field(con, "persistence", "rdb_changes_since_last_save")
        .and_then(|v| v.parse().ok())
        .expect("rdb_changes_since_last_save")
}

#[test]
fn lifecycle_writes_signal_watchers_and_count_as_changes_and_reads_do_not() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let mut watcher = server.connection();
    let index = index_key(&raw_namespace(KEY.as_bytes()), b"alice");
    let a = tok(&mut con, &["SESSIONGATE.OSTART", KEY, "alice", "300"]);
    let v = V2::of(&a);
    let forged = V2::forge(b"not the key", &v.tag, &v.id);

    // Reads and refusals: no signal, no change.
    let before = dirty(&mut con);
    for args in [
        vec!["SESSIONGATE.OLIST", KEY, "alice"],
        vec!["SESSIONGATE.INSPECT", KEY, &a],
        vec!["SESSIONGATE.ROTATE", KEY, &forged],
        vec!["SESSIONGATE.ROTATE", KEY, &a, "TTL", "x"],
        vec![
            "SESSIONGATE.OSTART",
            KEY,
            "alice",
            "300",
            "LIMIT",
            "1",
            "REJECT",
        ],
        vec!["SESSIONGATE.OEND", KEY, "alice", "EXCEPT", &forged],
        vec!["SESSIONGATE.OEND", KEY, "alice", "ID", "AAAAAAAAAAAAAAAA"],
    ] {
        for key in [v.key().as_bytes(), &index[..]] {
            let survived = watch_survives(&mut watcher, key, || {
                let _ = call(&mut con, &args);
            });
            assert!(
                survived,
                "{args:?} signalled {:?}",
                String::from_utf8_lossy(key)
            );
        }
    }
    assert_eq!(dirty(&mut con), before, "no change counted");

    // ROTATE signals the old session and the index.
    let before = dirty(&mut con);
    let mut rotated = String::new();
    let survived = watch_survives(&mut watcher, v.key().as_bytes(), || {
        rotated = tok(&mut con, &["SESSIONGATE.ROTATE", KEY, &a]);
    });
    assert!(!survived, "ROTATE signals the old session");
    assert!(dirty(&mut con) > before);
    let before = dirty(&mut con);
    let survived = watch_survives(&mut watcher, &index, || {
        tok(
            &mut con,
            &["SESSIONGATE.ROTATE", KEY, &rotated, "TTL", "100"],
        );
    });
    assert!(!survived, "ROTATE signals the index");
    assert!(dirty(&mut con) > before);
    for args in [
        vec!["SESSIONGATE.OSTART", KEY, "alice", "300"],
        vec!["SESSIONGATE.OSTART", KEY, "alice", "300", "LIMIT", "1"],
        vec!["SESSIONGATE.OEND", KEY, "alice"],
    ] {
        let before = dirty(&mut con);
        let survived = watch_survives(&mut watcher, &index, || {
            call(&mut con, &args).expect("a write");
        });
        assert!(!survived, "{args:?} signals the index");
        assert!(dirty(&mut con) > before, "{args:?}");
    }
}

#[test]
fn expired_sessions_vanish_from_olist_and_the_index_goes_with_the_last() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let k = KEY.as_bytes();
    let a = tok(&mut con, &["SESSIONGATE.OSTART", KEY, "alice", "1"]);
    let b = tok(&mut con, &["SESSIONGATE.OSTART", KEY, "alice", "1"]);
    let d = tok(&mut con, &["SESSIONGATE.OSTART", KEY, "alice", "100"]);
    let c = tok(&mut con, &["SESSIONGATE.OSTART", KEY, "bob", "1"]);
    let alice = index_key(&raw_namespace(k), b"alice");
    let bob = index_key(&raw_namespace(k), b"bob");
    let short = [&a, &b, &c]
        .iter()
        .map(|t| pexpiretime(&mut con, key_of(t)))
        .max()
        .unwrap();
    assert_eq!(
        pexpiretime(&mut con, &bob),
        pexpiretime(&mut con, key_of(&c))
    );
    sleep_past(&mut con, short + 20);
    // Reads skip them without writing.
    assert_eq!(olist_ids(&mut con, k, b"alice"), vec![id_of_v2(&d)]);
    assert_eq!(members(&mut con, &alice).len(), 3);
    assert!(olist_ids(&mut con, k, b"bob").is_empty());
    assert!(
        !exists(&mut con, &bob),
        "bob's index expired with his session"
    );
    // The next owner command prunes them.
    assert_eq!(
        int(
            &mut con,
            &["SESSIONGATE.OEND", KEY, "alice", "ID", "AAAAAAAAAAAAAAAA"]
        ),
        0
    );
    assert_eq!(members(&mut con, &alice), ids(&[&d]));
    let e = tok(&mut con, &["SESSIONGATE.OSTART", KEY, "alice", "1"]);
    let at = pexpiretime(&mut con, key_of(&e));
    assert!(pexpiretime(&mut con, &alice) > at, "never lowered to e's");
    ok(&mut con, &["SESSIONGATE.END", KEY, &d]);
    sleep_past(&mut con, at + 20);
    assert!(olist_ids(&mut con, k, b"alice").is_empty());
}

#[test]
fn a_session_deleted_behind_the_modules_back_is_not_listed_and_is_pruned() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let k = KEY.as_bytes();
    let index = index_key(&raw_namespace(k), b"alice");
    let [a, b, c] = [0; 3].map(|_| tok(&mut con, &["SESSIONGATE.OSTART", KEY, "alice", "300"]));
    // As `maxmemory` eviction would.
    let _: i64 = redis::cmd("DEL").arg(key_of(&b)).query(&mut con).unwrap();
    assert_eq!(olist_set(&mut con, KEY, "alice"), ids(&[&a, &c]));
    assert_eq!(members(&mut con, &index).len(), 3, "OLIST only reads");
    assert_eq!(
        int(
            &mut con,
            &["SESSIONGATE.OEND", KEY, "alice", "ID", &id_of_v2(&b)]
        ),
        0
    );
    // A key of that name that is not the owner's session does not count.
    let _: i64 = redis::cmd("HSET")
        .arg(key_of(&c))
        .arg("")
        .arg("garbage")
        .query(&mut con)
        .unwrap();
    assert_eq!(olist_set(&mut con, KEY, "alice"), ids(&[&a]));
    let d = tok(
        &mut con,
        &["SESSIONGATE.OSTART", KEY, "alice", "300", "LIMIT", "2"],
    );
    assert_eq!(
        members(&mut con, &index),
        ids(&[&a, &d]),
        "pruned, none evicted"
    );
    assert_eq!(counter(&mut con, "sessions_evicted"), 0);
}

/// docs/errors.md#other-errors: Redis' own, for a key of the wrong type.
const WRONG_TYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

#[test]
fn an_index_key_of_another_type_is_wrongtype_and_nothing_starts_unlisted() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let index = index_key(&raw_namespace(KEY.as_bytes()), b"alice");
    let a = tok(&mut con, &["SESSIONGATE.OSTART", KEY, "alice", "300"]);
    // A client overwrites the index with a string.
    let _: () = redis::cmd("SET")
        .arg(&index)
        .arg("not an index")
        .query(&mut con)
        .unwrap();
    let before = dbsize(&mut con);
    // Were OSTART to answer a token, its session would be in no index:
    // beyond LIMIT, and out of reach of OEND ("log out everywhere").
    for args in [
        vec!["SESSIONGATE.OSTART", KEY, "alice", "300"],
        vec![
            "SESSIONGATE.OSTART",
            KEY,
            "alice",
            "300",
            "LIMIT",
            "1",
            "REJECT",
        ],
        vec!["SESSIONGATE.OLIST", KEY, "alice"],
        vec!["SESSIONGATE.OEND", KEY, "alice"],
        vec!["SESSIONGATE.OEND", KEY, "alice", "ID", "AAAAAAAAAAAAAAAA"],
    ] {
        assert_eq!(err(&mut con, &args), WRONG_TYPE, "{args:?}");
    }
    assert_eq!(dbsize(&mut con), before, "nothing started");
    let value: String = redis::cmd("GET").arg(&index).query(&mut con).unwrap();
    assert_eq!(value, "not an index");
    // The session itself still answers, and ends.
    assert_eq!(stale(&mut con, KEY, &a), 0);
    ok(&mut con, &["SESSIONGATE.END", KEY, &a]);
    // Argument errors still come first.
    assert_eq!(
        err(&mut con, &["SESSIONGATE.OSTART", KEY, "alice", "-1"]),
        BAD_TTL
    );
}

#[test]
fn end_expire_and_rotate_keep_the_index_right() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let index = index_key(&raw_namespace(KEY.as_bytes()), b"alice");
    let score = |con: &mut Connection, token: &str| -> Option<i64> {
        redis::cmd("ZSCORE")
            .arg(&index)
            .arg(id_of_v2(token))
            .query::<Option<f64>>(con)
            .unwrap()
            .map(|s| s as i64)
    };
    let a = tok(&mut con, &["SESSIONGATE.OSTART", KEY, "alice", "100"]);
    let at = pexpiretime(&mut con, key_of(&a));
    assert_eq!(score(&mut con, &a), Some(at));
    assert_eq!(pexpiretime(&mut con, &index), at);
    ok(&mut con, &["SESSIONGATE.EXPIRE", KEY, &a, "500"]);
    let later = pexpiretime(&mut con, key_of(&a));
    assert_eq!(score(&mut con, &a), Some(later));
    assert_eq!(pexpiretime(&mut con, &index), later, "raised");
    ok(&mut con, &["SESSIONGATE.EXPIRE", KEY, &a, "50"]);
    let sooner = pexpiretime(&mut con, key_of(&a));
    assert!(sooner < later);
    assert_eq!(score(&mut con, &a), Some(sooner));
    assert_eq!(pexpiretime(&mut con, &index), later, "never lowered");
    let b = tok(&mut con, &["SESSIONGATE.OSTART", KEY, "alice", "200"]);
    ok(&mut con, &["SESSIONGATE.END", KEY, &b]);
    assert_eq!(score(&mut con, &b), None);
    assert_eq!(members(&mut con, &index), ids(&[&a]));
    ok(&mut con, &["SESSIONGATE.EXPIRE", KEY, &a, "0"]);
    assert!(!exists(&mut con, &index), "the last member took the index");
    assert_eq!(dbsize(&mut con), 0);
    let c = tok(&mut con, &["SESSIONGATE.OSTART", KEY, "alice", "100"]);
    ok(&mut con, &["SESSIONGATE.END", KEY, &c]);
    assert_eq!(dbsize(&mut con), 0);
}

// ---------------------------------------------------------------------------
// Replicas, AOF, RDB.

/// One key as compared across servers: type, value, absolute expiry.
#[derive(Debug, PartialEq)]
struct KeyState {
    kind: String,
    value: Vec<(Vec<u8>, Vec<u8>)>,
    expires_at: i64,
}

/// Every key, DUMP-free: strings, hashes and sorted sets read out.
fn snapshot(con: &mut Connection) -> BTreeMap<Vec<u8>, KeyState> {
    let all: Vec<Vec<u8>> = redis::cmd("KEYS").arg("*").query(con).unwrap();
    all.into_iter()
        .map(|key| {
            let kind: String = redis::cmd("TYPE").arg(&key).query(con).unwrap();
            let mut value: Vec<(Vec<u8>, Vec<u8>)> = match kind.as_str() {
                "string" => vec![(Vec::new(), redis::cmd("GET").arg(&key).query(con).unwrap())],
                "hash" => redis::cmd("HGETALL").arg(&key).query(con).unwrap(),
                "zset" => redis::cmd("ZRANGE")
                    .arg(&key)
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES")
                    .query(con)
                    .unwrap(),
                other => panic!("unexpected {other} key {key:?}"),
            };
            value.sort();
            let expires_at = redis::cmd("PEXPIRETIME").arg(&key).query(con).unwrap();
            (
                key,
                KeyState {
                    kind,
                    value,
                    expires_at,
                },
            )
        })
        .collect()
}

/// What the lifecycle mix leaves, to read back anywhere.
struct Mix {
    clamped: String,
    deadline: i64,
    owned: Vec<String>,
    rotated_v1: String,
    payloads: Vec<(Vec<u8>, Vec<u8>)>,
    dead: Vec<String>,
}

fn run_lifecycle_mix(con: &mut Connection) -> Mix {
    let clamped = tok(
        con,
        &[
            "SESSIONGATE.START",
            KEY,
            "1000",
            "MAXLIFE",
            "500",
            "LABEL",
            "phone",
        ],
    );
    ok(con, &["SESSIONGATE.PSET", KEY, &clamped, "a", "1"]);
    ok(con, &["SESSIONGATE.EXPIRE", KEY, &clamped, "100000"]);
    let deadline = record(con, &clamped).deadline.expect("a deadline");
    let o: Vec<String> = ["1000", "1100", "1200"]
        .iter()
        .map(|ttl| {
            tok(
                con,
                &["SESSIONGATE.OSTART", KEY, "alice", ttl, "LIMIT", "3"],
            )
        })
        .collect();
    // Evicts o[0], the first to expire.
    let o4 = tok(
        con,
        &[
            "SESSIONGATE.OSTART",
            KEY,
            "alice",
            "2000",
            "LIMIT",
            "3",
            "LABEL",
            "tv",
        ],
    );
    let pmset: [&[u8]; 7] = [
        b"SESSIONGATE.PMSET",
        KEY.as_bytes(),
        o[1].as_bytes(),
        b"cart",
        b"3 items",
        b"b\0",
        b"\0\xff",
    ];
    assert_eq!(q(con, &pmset), Ok(Value::Okay));
    let o2r = tok(con, &["SESSIONGATE.ROTATE", KEY, &o[1]]);
    let payloads = pgetall(con, KEY, &o2r);
    let v1 = start(con, KEY, 1000);
    ok(con, &["SESSIONGATE.PSET", KEY, &v1, "v", "1"]);
    let rotated_v1 = tok(con, &["SESSIONGATE.ROTATE", KEY, &v1, "TTL", "900"]);
    assert_eq!(
        int(
            con,
            &["SESSIONGATE.OEND", KEY, "alice", "ID", &id_of_v2(&o[2])]
        ),
        1
    );
    ok(con, &["SESSIONGATE.EXPIRE", KEY, &o4, "1500"]);
    let bob = tok(con, &["SESSIONGATE.OSTART", KEY, "bob", "1000"]);
    ok(con, &["SESSIONGATE.END", KEY, &bob]);
    let carol = tok(con, &["SESSIONGATE.OSTART", KEY, "carol", "1000"]);
    ok(con, &["SESSIONGATE.EXPIRE", KEY, &carol, "0"]);
    let dan = tok(
        con,
        &["SESSIONGATE.OSTART", KEY, "dan", "1000", "MAXLIFE", "700"],
    );
    let dan_r = tok(con, &["SESSIONGATE.ROTATE", KEY, &dan, "TTL", "5000"]);
    Mix {
        clamped,
        deadline,
        owned: vec![o2r, o4, dan_r],
        rotated_v1,
        payloads,
        dead: vec![
            o[0].clone(),
            o[1].clone(),
            o[2].clone(),
            v1,
            bob,
            carol,
            dan,
        ],
    }
}

fn assert_mix_readable(con: &mut Connection, mix: &Mix) {
    assert_eq!(pexpiretime(con, key_of(&mix.clamped)), mix.deadline);
    assert_eq!(
        pget(con, KEY, &mix.clamped, "a"),
        Ok(Value::BulkString(b"1".to_vec()))
    );
    assert_eq!(pgetall(con, KEY, &mix.owned[0]), mix.payloads);
    assert_eq!(
        pget(con, KEY, &mix.rotated_v1, "v"),
        Ok(Value::BulkString(b"1".to_vec()))
    );
    assert_eq!(
        olist_set(con, KEY, "alice"),
        ids(&[&mix.owned[0], &mix.owned[1]])
    );
    assert_eq!(olist_set(con, KEY, "dan"), ids(&[&mix.owned[2]]));
    let dan_deadline = record(con, &mix.owned[2]).deadline.unwrap();
    assert_eq!(pexpiretime(con, key_of(&mix.owned[2])), dan_deadline);
    for token in &mix.dead {
        assert_eq!(
            pget(con, KEY, token, "a"),
            Err(NO_SESSION.into()),
            "{token}"
        );
    }
    for owner in ["bob", "carol"] {
        assert!(olist_ids(con, KEY.as_bytes(), owner.as_bytes()).is_empty());
    }
}

fn persistence_info(con: &mut Connection, field: &str) -> i64 {
    info_field(con, "persistence", field)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in INFO persistence"))
}

fn wait_for_rewrite(server: &Server, con: &mut Connection) {
    server.wait_for("the AOF rewrite", || {
        persistence_info(con, "aof_rewrite_in_progress") == 0
            && persistence_info(con, "aof_rewrite_scheduled") == 0
    });
}

const AOF: [&str; 4] = ["--appendonly", "yes", "--appendfsync", "always"];

#[test]
fn replica_aof_and_rdb_hold_exactly_what_the_master_holds_after_the_lifecycle() {
    let master = Server::start(&AOF);
    let mut on_master = master.connection();
    wait_for_rewrite(&master, &mut on_master);
    let port = master.port.to_string();
    let replica = Server::start(&["--replicaof", "127.0.0.1", &port]);
    let mut on_replica = replica.connection();
    replica.wait_for("the replica to sync", || {
        info_field(&mut on_replica, "replication", "master_link_status").as_deref() == Some("up")
    });
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

    let mix = run_lifecycle_mix(&mut on_master);
    let _: () = redis::cmd("SET")
        .arg("lifecycle-end")
        .arg("1")
        .query(&mut on_master)
        .unwrap();
    let _: i64 = redis::cmd("DEL")
        .arg("lifecycle-end")
        .query(&mut on_master)
        .unwrap();
    wait_for_replica(&mut on_master);
    let expected = snapshot(&mut on_master);
    let zsets = expected.values().filter(|s| s.kind == "zset").count();
    assert_eq!(zsets, 2, "alice's and dan's indexes: {expected:?}");
    assert_eq!(snapshot(&mut on_replica), expected);
    assert_mix_readable(&mut on_replica, &mix);
    // The replica serves the read-only commands, and refuses writes.
    assert_eq!(stale(&mut on_replica, KEY, &mix.owned[0]), 0);
    let refused = err(&mut on_replica, &["SESSIONGATE.OSTART", KEY, "alice", "10"]);
    assert!(refused.starts_with("READONLY"), "{refused}");

    let mut seen = Vec::new();
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < until, "no end marker in MONITOR");
        let mut line = Vec::new();
        lines.read_until(b'\n', &mut line).unwrap();
        if contains(&line, b"lifecycle-end") {
            break;
        }
        seen.extend(line);
    }
    let stream = String::from_utf8_lossy(&seen);
    for effect in [
        "\"RENAME\"",
        "\"HSET\"",
        "\"PEXPIREAT\"",
        "\"ZADD\"",
        "\"ZREM\"",
        "\"UNLINK\"",
        "\"MULTI\"",
    ] {
        assert!(stream.contains(effect), "no {effect} in {stream}");
    }
    assert!(!stream.contains("SESSIONGATE"), "never verbatim: {stream}");
    assert!(!stream.contains(KEY), "never the key");
    for token in mix.owned.iter().chain([&mix.clamped, &mix.rotated_v1]) {
        assert!(!stream.contains(token.as_str()), "a token in the stream");
    }

    // An AOF replay.
    drop(replica);
    let dir = master.kill();
    let restarted = Server::start_in(dir, &AOF);
    let mut con = restarted.connection();
    assert_eq!(snapshot(&mut con), expected);
    assert_mix_readable(&mut con, &mix);
    // An RDB.
    let _: () = redis::cmd("SAVE").query(&mut con).unwrap();
    let dir = restarted.kill();
    let from_rdb = Server::start_in(dir, &[]);
    let mut con = from_rdb.connection();
    assert_eq!(snapshot(&mut con), expected);
    assert_mix_readable(&mut con, &mix);
}

// ---------------------------------------------------------------------------
// 5. Events and INFO.

#[test]
fn rotate_evict_and_owner_ends_are_events_and_counted_in_info() {
    let server = Server::start(&["--notify-keyspace-events", "Ed"]);
    let mut subscriber = server.connection();
    let mut pubsub = subscriber.as_pubsub();
    pubsub.psubscribe("__keyevent@0__:sessiongate.*").unwrap();
    pubsub
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut con = server.connection();
    let ostart = |con: &mut Connection, ttl: &str| {
        tok(
            con,
            &["SESSIONGATE.OSTART", KEY, "alice", ttl, "LIMIT", "2"],
        )
    };
    // A ttl of 0 starts nothing, evicts nothing, and says nothing.
    ostart(&mut con, "0");
    let a = ostart(&mut con, "100");
    let b = ostart(&mut con, "200");
    ostart(&mut con, "0");
    let c = ostart(&mut con, "300");
    let r = tok(&mut con, &["SESSIONGATE.ROTATE", KEY, &b]);
    let v1 = start(&mut con, KEY, 100);
    let r1 = tok(&mut con, &["SESSIONGATE.ROTATE", KEY, &v1]);
    let d = ostart(&mut con, "400");
    assert_eq!(
        int(&mut con, &["SESSIONGATE.OEND", KEY, "alice", "EXCEPT", &d]),
        1
    );
    assert_eq!(int(&mut con, &["SESSIONGATE.OEND", KEY, "alice"]), 1);
    let expected = [
        ("sessiongate.start", key_of(&a)),
        ("sessiongate.start", key_of(&b)),
        ("sessiongate.evict", key_of(&a)),
        ("sessiongate.start", key_of(&c)),
        ("sessiongate.rotate", key_of(&r)),
        ("sessiongate.start", signature_key(&v1)),
        ("sessiongate.rotate", key_of(&r1)),
        ("sessiongate.evict", key_of(&r)),
        ("sessiongate.start", key_of(&d)),
        ("sessiongate.end", key_of(&c)),
        ("sessiongate.end", key_of(&d)),
    ];
    for (event, key) in expected {
        let message = pubsub.get_message().expect("an event within 10 seconds");
        let payload: String = message.get_payload().unwrap();
        assert_eq!(
            (message.get_channel_name(), payload.as_str()),
            (format!("__keyevent@0__:{event}").as_str(), key.as_str())
        );
    }
    assert_eq!(counter(&mut con, "sessions_rotated"), 2);
    assert_eq!(counter(&mut con, "sessions_evicted"), 2);
    assert_eq!(counter(&mut con, "sessions_ended_by_owner"), 2);
    assert_eq!(counter(&mut con, "sessions_started"), 7, "ttl 0 included");
}

// ---------------------------------------------------------------------------
// Effects, as a replica receives them.

/// MONITOR on a replica: the replication stream, command by command.
struct Monitor {
    lines: BufReader<UnixStream>,
}

impl Monitor {
    fn on(server: &Server) -> Monitor {
        let stream = UnixStream::connect(server.socket()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        (&stream).write_all(b"MONITOR\r\n").unwrap();
        let mut lines = BufReader::new(stream);
        let mut first = Vec::new();
        lines.read_until(b'\n', &mut first).unwrap();
        assert_eq!(first, b"+OK\r\n");
        Monitor { lines }
    }

    /// Every command seen up to `SET <mark> …` (which the master sends
    /// after the commands under test), each as its words.
    fn until(&mut self, mark: &str) -> Vec<Vec<String>> {
        let mut seen = Vec::new();
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            assert!(Instant::now() < until, "no {mark} in MONITOR");
            let mut line = Vec::new();
            self.lines.read_until(b'\n', &mut line).unwrap();
            let words = monitor_words(&String::from_utf8_lossy(&line));
            if words.first().map(String::as_str) == Some("SET") && words[1] == mark {
                return seen;
            }
            seen.push(words);
        }
    }
}

/// The quoted words of a MONITOR line, escapes left as they are.
fn monitor_words(line: &str) -> Vec<String> {
    let Some((_, rest)) = line.split_once("] ") else {
        return Vec::new();
    };
    let mut words = Vec::new();
    let mut chars = rest.trim_end().chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut word = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    word.push(c);
                    word.extend(chars.next());
                }
                '"' => break,
                c => word.push(c),
            }
        }
        words.push(word);
    }
    words
}

/// Runs `op` on the master, then a marker; the effects the replica got.
fn effects_of(
    master: &mut Connection,
    monitor: &mut Monitor,
    mark: &str,
    op: impl FnOnce(&mut Connection),
) -> Vec<Vec<String>> {
    op(master);
    let _: () = redis::cmd("SET").arg(mark).arg("1").query(master).unwrap();
    monitor.until(mark)
}

/// One MULTI/EXEC: its commands, as (name, words after the name).
fn one_transaction(effects: &[Vec<String>]) -> Vec<(String, Vec<String>)> {
    let names: Vec<&str> = effects.iter().map(|w| w[0].as_str()).collect();
    assert_eq!(names.first(), Some(&"MULTI"), "{effects:?}");
    assert_eq!(names.last(), Some(&"EXEC"), "{effects:?}");
    assert_eq!(
        names.iter().filter(|n| **n == "MULTI").count(),
        1,
        "{effects:?}"
    );
    effects[1..effects.len() - 1]
        .iter()
        .map(|w| (w[0].clone(), w[1..].to_vec()))
        .collect()
}

fn position(commands: &[(String, Vec<String>)], name: &str, key: &str) -> usize {
    commands
        .iter()
        .position(|(n, words)| n == name && words[0] == key)
        .unwrap_or_else(|| panic!("no {name} {key} in {commands:?}"))
}

#[test]
fn each_lifecycle_write_reaches_a_replica_as_its_effects_in_one_transaction() {
    let master = Server::start(&[]);
    let port = master.port.to_string();
    let replica = Server::start(&["--replicaof", "127.0.0.1", &port]);
    let mut on_replica = replica.connection();
    replica.wait_for("the replica to sync", || {
        info_field(&mut on_replica, "replication", "master_link_status").as_deref() == Some("up")
    });
    let mut monitor = Monitor::on(&replica);
    let mut con = master.connection();
    let index = String::from_utf8(index_key(&raw_namespace(KEY.as_bytes()), b"alice")).unwrap();
    let at_of = |con: &mut Connection, token: &str| pexpiretime(con, key_of(token)).to_string();

    // ROTATE of an owned session: its hash renamed, then the new record
    // and expiry, the index moved from the old id to the new.
    let mut o = String::new();
    effects_of(&mut con, &mut monitor, "mark-0", |con| {
        o = tok(con, &["SESSIONGATE.OSTART", KEY, "alice", "300"]);
        ok(con, &["SESSIONGATE.PSET", KEY, &o, "n", "v"]);
    });
    let mut r = String::new();
    let effects = effects_of(&mut con, &mut monitor, "mark-1", |con| {
        r = tok(con, &["SESSIONGATE.ROTATE", KEY, &o]);
    });
    let commands = one_transaction(&effects);
    let at = at_of(&mut con, &r);
    let (old, new) = (key_of(&o), key_of(&r));
    let rename = position(&commands, "RENAME", &old);
    assert_eq!(commands[rename].1, [old.clone(), new.clone()]);
    let hset = position(&commands, "HSET", &new);
    assert_eq!(commands[hset].1[1], "", "the record's field");
    let pexpireat = position(&commands, "PEXPIREAT", &new);
    assert_eq!(commands[pexpireat].1[1], at);
    assert!(
        rename < hset && rename < pexpireat,
        "renamed first: {commands:?}"
    );
    let zrem = position(&commands, "ZREM", &index);
    assert_eq!(commands[zrem].1[1..], [id_of_v2(&o)]);
    let zadd = position(&commands, "ZADD", &index);
    assert_eq!(commands[zadd].1[1..], [at.clone(), id_of_v2(&r)]);
    assert!(zrem < zadd, "{commands:?}");
    // The index lost its one member, so it is made anew with its expiry.
    assert_eq!(commands[position(&commands, "PEXPIREAT", &index)].1[1], at);
    assert_eq!(commands.len(), 6, "{commands:?}");

    // ROTATE of a v1 session: its payloads key renamed, its signature key
    // unlinked.
    let mut v1 = String::new();
    effects_of(&mut con, &mut monitor, "mark-2", |con| {
        v1 = start(con, KEY, 300);
        ok(con, &["SESSIONGATE.PSET", KEY, &v1, "n", "v"]);
    });
    let effects = effects_of(&mut con, &mut monitor, "mark-3", |con| {
        r = tok(con, &["SESSIONGATE.ROTATE", KEY, &v1, "TTL", "100"]);
    });
    let commands = one_transaction(&effects);
    let new = key_of(&r);
    let rename = position(&commands, "RENAME", &payloads_key(&v1));
    assert_eq!(commands[rename].1[1], new);
    let hset = position(&commands, "HSET", &new);
    let pexpireat = position(&commands, "PEXPIREAT", &new);
    assert_eq!(commands[pexpireat].1[1], at_of(&mut con, &r));
    assert!(rename < hset && rename < pexpireat, "{commands:?}");
    position(&commands, "UNLINK", &signature_key(&v1));
    assert_eq!(commands.len(), 4, "{commands:?}");

    // OSTART with LIMIT: the evicted session and its index entry go, the
    // new one comes, in one transaction.
    let mut n = String::new();
    let effects = effects_of(&mut con, &mut monitor, "mark-4", |con| {
        n = tok(
            con,
            &["SESSIONGATE.OSTART", KEY, "alice", "400", "LIMIT", "1"],
        );
    });
    assert_eq!(olist_set(&mut con, KEY, "alice"), ids(&[&n]));
    let commands = one_transaction(&effects);
    let names: BTreeSet<(String, String)> = commands
        .iter()
        .map(|(name, words)| (name.clone(), words[0].clone()))
        .collect();
    let new = key_of(&n);
    let evicted_key = commands
        .iter()
        .find(|(name, _)| name == "UNLINK")
        .map(|(_, words)| words[0].clone())
        .expect("an UNLINK");
    let expected: BTreeSet<(String, String)> = [
        ("UNLINK", evicted_key.as_str()),
        ("ZREM", &index),
        ("HSET", &new),
        ("PEXPIREAT", &new),
        ("ZADD", &index),
        ("PEXPIREAT", &index),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(names, expected, "{commands:?}");

    // EXPIRE of an owned session: the session's expiry and the index score.
    let effects = effects_of(&mut con, &mut monitor, "mark-5", |con| {
        ok(con, &["SESSIONGATE.EXPIRE", KEY, &n, "50"]);
    });
    let commands = one_transaction(&effects);
    let at = at_of(&mut con, &n);
    assert_eq!(commands[position(&commands, "PEXPIREAT", &new)].1[1], at);
    assert_eq!(
        commands[position(&commands, "ZADD", &index)].1[1..],
        [at.clone(), id_of_v2(&n)]
    );
    assert_eq!(commands.len(), 2, "lowered: the index keeps its expiry");

    // OEND: each session unlinked and taken out of the index.
    let mut m = String::new();
    effects_of(&mut con, &mut monitor, "mark-6", |con| {
        m = tok(con, &["SESSIONGATE.OSTART", KEY, "alice", "300"]);
    });
    let effects = effects_of(&mut con, &mut monitor, "mark-7", |con| {
        assert_eq!(int(con, &["SESSIONGATE.OEND", KEY, "alice"]), 2);
    });
    let commands = one_transaction(&effects);
    for token in [&n, &m] {
        position(&commands, "UNLINK", &key_of(token));
    }
    assert_eq!(
        commands.iter().filter(|(name, _)| name == "ZREM").count(),
        2,
        "{commands:?}"
    );
    assert_eq!(commands.len(), 4, "{commands:?}");
    wait_for_replica(&mut con);
    assert_eq!(snapshot(&mut on_replica), snapshot(&mut con));
}
