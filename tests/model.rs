//! A randomized model test. `Model` is an in-memory reference of the
//! contract, written from the docs (docs/errors.md, docs/tokens.md,
//! docs/keys.md, docs/keyrings.md, docs/events-and-info.md) and the README
//! (the extra commands TTL, PGETALL, PMGET and PMSET, the configurations
//! and the INFO counters), with no help from the module's code. A seeded
//! driver sends long random command sequences to a real redis-server with
//! the module, and every reply must be the one the model predicts: same
//! type, same bytes, same error text. Every few hundred operations the
//! keyspace itself (DBSIZE, each session's keys, their values and
//! PEXPIRETIME, a v2 session's record) and the INFO counters are compared
//! too.
//!
//! Both token versions live side by side: the driver flips
//! `sessiongate.token-version` now and then, so v1 and v2 sessions coexist
//! and every command meets both. Keyrefs are raw sign keys or `@<ring>`
//! of the keyring file the server loads (`keyring_at`), which the driver
//! rotates with `SESSIONGATE.KEYRING RELOAD`; a ring that does not exist,
//! or is another user's, is refused at step 2 (docs/errors.md#step-2).
//! Plain Redis writes sessions in either layout, and spoils a v2 session's
//! record (then puts it back), so that the unreadable-record error is met
//! and shown to change nothing.
//!
//! `SESSIONGATE_MODEL_SEED` replays a seed (a failure prints it), and
//! `SESSIONGATE_MODEL_OPS` sets how many operations to run.
//!
//! Time is never slept on: sessions meant to live get 1000 s or more, ttl 0
//! ends them at once, and each command's clock reading is bracketed by the
//! client's own readings before and after it (`t0 ≤ now ≤ t1`), so deadlines
//! are intervals that PEXPIRETIME later pins down.

mod common;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use common::errors::*;
use common::*;
use rand::distr::Alphanumeric;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};
use redis::Connection;
use sha2::{Digest, Sha256};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

const DEFAULT_OPS: usize = 10_000;
/// Every this many operations, the keyspace and INFO are compared.
const CHECK_EVERY: usize = 250;
/// `max-payload-name-len`'s default, the 200 of docs/errors.md#step-10. The
/// driver lowers it now and then, and puts it back.
const NAME_LIMIT: usize = 200;
/// `max-payload-data-len` is set this low at the start, so that the data
/// limit is hit with small payloads; the driver changes it now and then.
const INITIAL_DATA_LIMIT: usize = 64;
/// Live sessions get at least this many seconds: none times out in a run.
const LIVE_TTL_MIN: i64 = 1_000;
/// Ended tokens kept around to be sent again.
const ENDED_KEPT: usize = 200;
/// v2 sessions with a spoiled record at once, at most.
const DAMAGED_MAX: usize = 3;

const SIGN_KEYS: [&[u8]; 3] = [b"mykey", b"another key", b"\0bin\xffkey\r\n"];

/// docs/tokens.md#expiry: the latest expiry of a v2 session, in Unix ms.
const V2_MAX_EXPIRY_MS: i64 = 1 << 53;

// ---------------------------------------------------------------------------
// The keyring file the server loads (docs/keyrings.md#keyring-file). Ring
// `app` rotates on each RELOAD: at generation g its primary is
// `app_primary(g)`, its verify secrets `app_primary(g - 1)` (the primary
// before) and APP_VERIFY; so a token signed two rotations ago no longer
// verifies with `@app`, and still does with its secret as a raw key. Ring
// `staff` is for the ACL user `nobody` only: to the test's connections,
// user `default`, it does not exist (docs/errors.md#step-2).

const APP_VERIFY: &[u8] = b"\0app ring, verify-only secret\xff\r\n";
const STAFF_PRIMARY: &[u8] = b"staff ring primary, for the user nobody";

fn app_primary(generation: u32) -> Vec<u8> {
    [
        format!("app ring primary, generation {generation:05} ").as_bytes(),
        b"\x01\xfe",
    ]
    .concat()
}

/// Whether `key` is one of the secrets above, as a raw key verifies what
/// the ring's name does.
fn is_ring_secret(key: &[u8]) -> bool {
    key == APP_VERIFY || key == STAFF_PRIMARY || key.starts_with(b"app ring primary, ")
}

fn keyring_at(generation: u32) -> BTreeMap<Vec<u8>, Ring> {
    let mut app = vec![app_primary(generation)];
    if let Some(before) = generation.checked_sub(1) {
        app.push(app_primary(before));
    }
    app.push(APP_VERIFY.to_vec());
    BTreeMap::from([
        (
            b"app".to_vec(),
            Ring {
                secrets: app,
                open: true,
            },
        ),
        (
            b"staff".to_vec(),
            Ring {
                secrets: vec![STAFF_PRIMARY.to_vec()],
                open: false,
            },
        ),
    ])
}

/// The file of `keyring_at(generation)`: secrets in standard base64.
fn keyring_text(generation: u32) -> String {
    let mut text = format!("# the model test's keyring, generation {generation}\n");
    for (name, ring) in keyring_at(generation) {
        let name = String::from_utf8(name).expect("ASCII");
        for (i, secret) in ring.secrets.iter().enumerate() {
            let state = if i == 0 { "primary" } else { "verify" };
            let users = if ring.open { "" } else { " users=nobody" };
            let secret = BASE64.encode(secret);
            text.push_str(&format!("{name} {state}\t{secret}{users}\n"));
        }
    }
    text
}

/// docs/keyrings.md#fingerprint: the first 8 bytes of SHA-256, hex.
fn fingerprint(secret: &[u8]) -> String {
    Sha256::digest(secret)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

// ---------------------------------------------------------------------------
// Tokens, written from docs/tokens.md.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// Every character of an id or a tag, in byte order.
const ALNUM: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// CRC16 as Redis Cluster hashes keys (XMODEM: polynomial 0x1021, start 0),
/// bit by bit.
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// docs/tokens.md#canonical-tags: per slot, the first string of 1 to 3
/// characters of `[0-9A-Za-z]`, by length and then bytewise, that hashes to
/// it. Built once, by trying every candidate in that order.
fn canonical_tags() -> &'static [Vec<u8>] {
    static TABLE: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = vec![Vec::new(); 16384];
        for len in 1..=3u32 {
            for n in 0..62usize.pow(len) {
                let tag: Vec<u8> = (0..len)
                    .rev()
                    .map(|place| ALNUM[n / 62usize.pow(place) % 62])
                    .collect();
                let slot = usize::from(crc16(&tag)) % 16384;
                if table[slot].is_empty() {
                    table[slot] = tag;
                }
            }
        }
        assert!(table.iter().all(|t| !t.is_empty()), "every slot has a tag");
        table
    })
}

fn is_canonical(tag: &[u8]) -> bool {
    (1..=3).contains(&tag.len())
        && tag.iter().all(u8::is_ascii_alphanumeric)
        && canonical_tags()[usize::from(crc16(tag)) % 16384] == tag
}

fn is_id(id: &[u8]) -> bool {
    id.len() == 16 && id.iter().all(u8::is_ascii_alphanumeric)
}

fn is_signature(signature: &[u8]) -> bool {
    signature.len() == 64
        && signature
            .iter()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A well-formed token, in parts.
struct Parts<'a> {
    version: Version,
    /// Empty for v1.
    tag: &'a [u8],
    id: &'a [u8],
    /// What the signature signs: v1 the id, v2 everything before the last
    /// dot.
    signed: &'a [u8],
    signature: &'a [u8],
}

/// docs/tokens.md#shape (`^v1\.[0-9a-zA-Z]{16}\.[0-9a-f]{64}$`) and
/// #v2-tokens (`v2.{<tag>}.<id>.<signature>`, the tag canonical); `None`
/// for anything else, docs/errors.md#step-5.
fn parse(token: &[u8]) -> Option<Parts<'_>> {
    if token.len() == 84 && token.starts_with(b"v1.") {
        let (id, signature) = (&token[3..19], &token[20..]);
        return (token[19] == b'.' && is_id(id) && is_signature(signature)).then_some(Parts {
            version: Version::V1,
            tag: b"",
            id,
            signed: id,
            signature,
        });
    }
    let n = token.len();
    if !(88..=90).contains(&n) || !token.starts_with(b"v2.{") {
        return None;
    }
    let (signed, signature) = (&token[..n - 65], &token[n - 64..]);
    let (tag, id) = (&token[4..n - 83], &token[n - 81..n - 65]);
    let shaped = token[n - 65] == b'.'
        && &token[n - 83..n - 81] == b"}."
        && is_canonical(tag)
        && is_id(id)
        && is_signature(signature);
    shaped.then_some(Parts {
        version: Version::V2,
        tag,
        id,
        signed,
        signature,
    })
}

/// The token of `version` for `tag` (v2) and `id`, signed with `secret`.
fn mint(version: Version, secret: &[u8], tag: &[u8], id: &[u8]) -> Vec<u8> {
    let signed = match version {
        Version::V1 => id.to_vec(),
        Version::V2 => [b"v2.{", tag, b"}.", id].concat(),
    };
    let prefix = match version {
        Version::V1 => &b"v1."[..],
        Version::V2 => b"",
    };
    [prefix, &signed, b".", hmac_hex(secret, &signed).as_bytes()].concat()
}

/// Whether `secret` signs `token` (docs/errors.md#step-7).
fn signs(secret: &[u8], p: &Parts) -> bool {
    hmac_hex(secret, p.signed).as_bytes() == p.signature
}

/// What step 9 compares: v1 the whole signature, v2 the binding, its first
/// 32 hex characters (docs/tokens.md#binding).
fn stored_part<'a>(p: &Parts<'a>) -> &'a [u8] {
    match p.version {
        Version::V1 => p.signature,
        Version::V2 => &p.signature[..32],
    }
}

/// A session's one name in the model: v1 its signature key, v2 its hash
/// (docs/keys.md).
type Handle = Vec<u8>;

fn home(p: &Parts) -> Handle {
    match p.version {
        Version::V1 => signature_key(p.id),
        Version::V2 => v2_key(p.tag, p.id),
    }
}

fn signature_key(id: &[u8]) -> Vec<u8> {
    [b"sg-session:", id, b":signature"].concat()
}

fn payloads_key(id: &[u8]) -> Vec<u8> {
    [b"sg-session:", id, b":payloads"].concat()
}

/// docs/tokens.md#key: `sg-session:{<tag>}.<id>`.
fn v2_key(tag: &[u8], id: &[u8]) -> Vec<u8> {
    [b"sg-session:{", tag, b"}.", id].concat()
}

/// Every key a session of `token` has, or may have.
fn keys_of(token: &[u8]) -> Vec<Vec<u8>> {
    let p = parse(token).expect("a well-formed token");
    match p.version {
        Version::V1 => vec![signature_key(p.id), payloads_key(p.id)],
        Version::V2 => vec![v2_key(p.tag, p.id)],
    }
}

/// docs/keys.md#v2-record, as START writes it: format 1, the binding, the
/// creation time (Unix ms, big-endian).
fn record(binding: &[u8], created: i64) -> Vec<u8> {
    [&[1u8][..], binding, &created.to_be_bytes()].concat()
}

/// A ring name as docs/errors.md#step-2 shows it in the unknown-ring error.
fn shown_ring(name: &[u8]) -> String {
    let mut shown: String = name
        .iter()
        .take(64)
        .map(|&b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' => char::from(b),
            _ => '?',
        })
        .collect();
    if name.len() > 64 {
        shown.push_str("...");
    }
    shown
}

/// An integer as Redis reads one (`string2ll`, what a module's
/// `StringToLongLong` uses, as the C module does): an optional `-`, digits
/// with no leading zero, no `+`, no spaces, within i64.
fn redis_integer(s: &[u8]) -> Option<i64> {
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty()
        || digits.len() > 19
        || !(b'1'..=b'9').contains(&digits[0])
        || !digits.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    let magnitude = digits
        .iter()
        .fold(0i128, |v, d| v * 10 + i128::from(d - b'0'));
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

// ---------------------------------------------------------------------------
// The model.

/// Why a command is refused: docs/errors.md#check-order's steps, the
/// unreadable record of docs/errors.md#unreadable-record, and the payload
/// limit of docs/errors.md#other-errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Rej {
    Arity,
    EmptySignKey,
    UnknownRing,
    BadTtl,
    EmptyToken,
    BadFormat,
    Forged,
    Missing,
    Unreadable,
    Stale,
    EmptyName,
    LongName,
    EmptyData,
    LongData,
    TooMany,
    NoPayload,
}

#[derive(Debug, Clone, Copy)]
enum Ttl {
    Zero,
    Ms(i64),
}

/// A command that passed every check, and what it does.
enum Plan {
    Start {
        keyref: Vec<u8>,
        /// The secret that must sign the new token: the raw key, or the
        /// ring's primary.
        secret: Vec<u8>,
        version: Version,
        ttl: Ttl,
    },
    Expire {
        handle: Handle,
        ttl: Ttl,
    },
    Set {
        handle: Handle,
        pairs: Vec<(Vec<u8>, Vec<u8>)>,
    },
    Get {
        handle: Handle,
        name: Vec<u8>,
    },
    MGet {
        handle: Handle,
        names: Vec<Vec<u8>>,
    },
    GetAll {
        handle: Handle,
    },
    Del {
        handle: Handle,
        name: Vec<u8>,
    },
    End {
        handle: Handle,
    },
    Ttl {
        handle: Handle,
    },
}

struct Session {
    /// The keyref the session was started with.
    keyref: Vec<u8>,
    /// The secret that signed its token.
    secret: Vec<u8>,
    token: Vec<u8>,
    /// The absolute expiry in Unix ms lies in `[lo, hi]`; exact once the
    /// keyspace check has read PEXPIRETIME. `None`: no expiry, which only a
    /// dataset written by other means can have.
    deadline: Option<(i64, i64)>,
    payloads: BTreeMap<Vec<u8>, Vec<u8>>,
    /// v2: when the session was created, in `[lo, hi]` (the record's
    /// `created`), exact once the keyspace check has read it.
    created: (i64, i64),
    /// v2: a record spoiled by plain Redis.
    damage: Option<Damage>,
}

/// What plain Redis did to a v2 session's record (docs/keys.md#v2-record).
struct Damage {
    /// The record as the module wrote it, to put back.
    original: Vec<u8>,
    /// What field `""` holds now; `None`: the field was deleted.
    garbage: Option<Vec<u8>>,
}

impl Session {
    fn version(&self) -> Version {
        parse(&self.token).expect("a session's token").version
    }
}

/// docs/events-and-info.md#info-fields: `INFO sessiongate`.
#[derive(Default, Debug, Clone, PartialEq)]
struct Counters {
    sessions_started: u64,
    sessions_ended: u64,
    sessions_ended_by_expire_0: u64,
    payloads_set: u64,
    payloads_read: u64,
    payloads_deleted: u64,
    signature_failures: u64,
    malformed_tokens: u64,
    missing_sessions: u64,
    unknown_rings: u64,
    ids_drawn: u64,
}

impl Counters {
    fn fields(&self) -> [(&'static str, u64); 11] {
        [
            ("sessions_started", self.sessions_started),
            ("sessions_ended", self.sessions_ended),
            (
                "sessions_ended_by_expire_0",
                self.sessions_ended_by_expire_0,
            ),
            ("payloads_set", self.payloads_set),
            ("payloads_read", self.payloads_read),
            ("payloads_deleted", self.payloads_deleted),
            ("signature_failures", self.signature_failures),
            ("malformed_tokens", self.malformed_tokens),
            ("missing_sessions", self.missing_sessions),
            ("unknown_rings", self.unknown_rings),
            ("ids_drawn", self.ids_drawn),
        ]
    }
}

/// A ring of the loaded keyring (docs/keyrings.md): its secrets as they
/// decode, the primary first; `open` unless its `users=` list leaves out the
/// test's connections' ACL user, `default`.
#[derive(Clone)]
struct Ring {
    secrets: Vec<Vec<u8>>,
    open: bool,
}

struct Model {
    sessions: HashMap<Handle, Session>,
    /// Handles of `sessions` in a deterministic order, for the generator.
    live: Vec<Handle>,
    /// Tokens (with their keyref) of sessions that ended or never existed.
    ended: VecDeque<(Vec<u8>, Vec<u8>)>,
    name_limit: usize,
    data_limit: usize,
    max_payloads: usize,
    /// `sessiongate.token-version`: what START mints.
    token_version: Version,
    /// The keyring loaded, by ring name; `None`: none is.
    keyring: Option<BTreeMap<Vec<u8>, Ring>>,
    counters: Counters,
    /// Outcomes seen, per command: the test fails if a path was never taken.
    coverage: BTreeMap<String, u64>,
    /// Whether the command being judged is about a v2 token (for coverage).
    v2_context: bool,
    /// ttl checks whose clock reading could fall either side of overflow.
    ambiguous_ttls: Cell<u64>,
    /// What the check of the command being judged went through, for
    /// coverage: a ttl refused only for v2's limit, a verify secret, ...
    notes: RefCell<Vec<&'static str>>,
    /// How many times ring `app` rotated (`keyring_at`).
    generation: u32,
    /// Tags of the v2 tokens START minted, and how many it minted.
    v2_tags: BTreeSet<Vec<u8>>,
    v2_minted: u64,
    /// Whether the last command changed its session's keys (for WATCH).
    wrote: bool,
}

fn short(cmd: &str) -> &str {
    cmd.strip_prefix("sessiongate.").unwrap_or(cmd)
}

fn arity_ok(cmd: &str, words: usize) -> bool {
    match short(cmd) {
        "start" | "end" | "ttl" | "pgetall" => words == 3,
        "expire" | "pget" | "pdel" => words == 4,
        "pset" => words == 5,
        "pmget" => words >= 4,
        "pmset" => words >= 5 && words % 2 == 1,
        other => panic!("the generator sent an unknown command {other}"),
    }
}

impl Model {
    fn new(data_limit: usize) -> Self {
        Model {
            sessions: HashMap::new(),
            live: Vec::new(),
            ended: VecDeque::new(),
            name_limit: NAME_LIMIT,
            data_limit,
            max_payloads: 0,
            token_version: Version::V1,
            keyring: None,
            counters: Counters::default(),
            coverage: BTreeMap::new(),
            v2_context: false,
            ambiguous_ttls: Cell::new(0),
            notes: RefCell::new(Vec::new()),
            generation: 0,
            v2_tags: BTreeSet::new(),
            v2_minted: 0,
            wrote: false,
        }
    }

    fn message(&self, rej: Rej, cmd: &str, args: &[Vec<u8>]) -> String {
        match rej {
            Rej::Arity => wrong_arity(cmd),
            Rej::EmptySignKey => EMPTY_SIGN_KEY.into(),
            Rej::UnknownRing => unknown_ring(shown_ring(&args[1][1..])),
            Rej::BadTtl => BAD_TTL.into(),
            Rej::EmptyToken => EMPTY_TOKEN.into(),
            Rej::BadFormat => MALFORMED_TOKEN.into(),
            Rej::Forged => FORGED_SIGNATURE.into(),
            Rej::Missing => NO_SESSION.into(),
            Rej::Unreadable => UNREADABLE_RECORD.into(),
            Rej::Stale => STALE_SIGNATURE.into(),
            Rej::EmptyName => EMPTY_PAYLOAD_NAME.into(),
            Rej::LongName => payload_name_too_long(self.name_limit),
            Rej::EmptyData => EMPTY_PAYLOAD_DATA.into(),
            Rej::LongData => payload_data_too_long(self.data_limit),
            Rej::TooMany => too_many_payloads(self.max_payloads),
            Rej::NoPayload => NO_PAYLOAD.into(),
        }
    }

    /// docs/errors.md#step-2, after the empty check: the secrets a keyref
    /// verifies with, the one that signs first. `@<ring>` is always a ring
    /// (docs/keyrings.md): unknown when no keyring is loaded, when the ring
    /// does not exist, or when its `users=` leaves this user out.
    fn secrets_of(&self, keyref: &[u8]) -> Result<Vec<Vec<u8>>, Rej> {
        let Some(name) = keyref.strip_prefix(b"@") else {
            return Ok(vec![keyref.to_vec()]);
        };
        match self.keyring.as_ref().and_then(|rings| rings.get(name)) {
            Some(ring) if ring.open => Ok(ring.secrets.clone()),
            _ => Err(Rej::UnknownRing),
        }
    }

    /// What START signs with for `keyref` (docs/tokens.md#minting); a
    /// keyref that names no ring gets its own bytes, which nothing uses.
    fn signing_secret(&self, keyref: &[u8]) -> Vec<u8> {
        self.secrets_of(keyref)
            .map_or_else(|_| keyref.to_vec(), |mut s| s.swap_remove(0))
    }

    /// The keyrefs sessions are started with: the raw keys, and every ring
    /// this user may use.
    fn keyrefs(&self) -> Vec<Vec<u8>> {
        let rings = self.keyring.iter().flatten();
        SIGN_KEYS
            .iter()
            .map(|k| k.to_vec())
            .chain(
                rings
                    .filter(|(_, ring)| ring.open)
                    .map(|(name, _)| [b"@", &name[..]].concat()),
            )
            .collect()
    }

    /// docs/errors.md#step-3 and #step-6, docs/compatibility.md#ttl-overflow:
    /// not an integer, negative, or whose milliseconds added to the server's
    /// now overflow i64, or, for a v2 session, pass 2^53 ms
    /// (docs/tokens.md#expiry). The server read its clock somewhere in
    /// `[t0, t1]`; only when the answer depends on where does the reply
    /// itself decide (both answers keep the contract).
    fn ttl_of(
        &self,
        arg: &[u8],
        version: Version,
        got: &Result<Value, String>,
        t0: i64,
        t1: i64,
    ) -> Result<Ttl, Rej> {
        let seconds = redis_integer(arg).ok_or(Rej::BadTtl)?;
        if seconds < 0 {
            return Err(Rej::BadTtl);
        }
        if seconds == 0 {
            return Ok(Ttl::Zero);
        }
        let ms = seconds.checked_mul(1000).ok_or(Rej::BadTtl)?;
        let latest = match version {
            Version::V1 => i64::MAX,
            Version::V2 => V2_MAX_EXPIRY_MS,
        };
        // now + ms must be at most `latest`.
        if ms > latest - t0 {
            if ms <= i64::MAX - t1 {
                self.note("ttl past 2^53");
            }
            return Err(Rej::BadTtl);
        }
        if ms <= latest - t1 {
            return Ok(Ttl::Ms(ms));
        }
        self.ambiguous_ttls.set(self.ambiguous_ttls.get() + 1);
        match got {
            Err(e) if e == BAD_TTL => Err(Rej::BadTtl),
            _ => Ok(Ttl::Ms(ms)),
        }
    }

    fn note(&self, note: &'static str) {
        self.notes.borrow_mut().push(note);
    }

    fn check_name(&self, name: &[u8]) -> Result<(), Rej> {
        if name.is_empty() {
            Err(Rej::EmptyName)
        } else if name.len() > self.name_limit {
            Err(Rej::LongName)
        } else {
            Ok(())
        }
    }

    fn check_data(&self, data: &[u8]) -> Result<(), Rej> {
        if data.is_empty() {
            Err(Rej::EmptyData)
        } else if data.len() > self.data_limit {
            Err(Rej::LongData)
        } else {
            Ok(())
        }
    }

    /// Every check of docs/errors.md#by-command, in its order; the first
    /// failure is the reply.
    fn check(
        &self,
        cmd: &str,
        args: &[Vec<u8>],
        got: &Result<Value, String>,
        t0: i64,
        t1: i64,
    ) -> Result<Plan, Rej> {
        // 1. arity
        if !arity_ok(cmd, args.len()) {
            return Err(Rej::Arity);
        }
        // 2. the keyref: not empty, then a ring this user may use or a raw key
        let keyref = &args[1];
        if keyref.is_empty() {
            return Err(Rej::EmptySignKey);
        }
        let ring = keyref.strip_prefix(b"@");
        let secrets = self.secrets_of(keyref).inspect_err(|_| {
            let rings = self.keyring.as_ref();
            if ring.is_some_and(|name| rings.is_some_and(|rings| rings.contains_key(name))) {
                self.note("a ring of another user");
            }
        })?;
        // 3. START's ttl, for the version it mints
        if short(cmd) == "start" {
            if ring.is_some() {
                self.note("with a ring");
            }
            let ttl = self.ttl_of(&args[2], self.token_version, got, t0, t1)?;
            return Ok(Plan::Start {
                keyref: keyref.clone(),
                secret: secrets[0].clone(),
                version: self.token_version,
                ttl,
            });
        }
        // 4., 5. the token
        let token = &args[2];
        if token.is_empty() {
            return Err(Rej::EmptyToken);
        }
        let parts = parse(token).ok_or(Rej::BadFormat)?;
        // 6. EXPIRE's ttl, for the token's version
        let ttl = if short(cmd) == "expire" {
            Some(self.ttl_of(&args[3], parts.version, got, t0, t1)?)
        } else {
            None
        };
        // 7. HMAC, under any of the keyref's secrets
        match secrets.iter().position(|secret| signs(secret, &parts)) {
            None => {
                // A token its session's own secret signed, which the ring
                // no longer holds.
                let session = self.sessions.get(&home(&parts));
                if ring.is_some() && session.is_some_and(|s| signs(&s.secret, &parts)) {
                    self.note("a retired ring secret");
                }
                return Err(Rej::Forged);
            }
            Some(0) => {}
            Some(_) => self.note("via a verify secret"),
        }
        if ring.is_none() && is_ring_secret(keyref) {
            self.note("raw ring secret");
        }
        // 8. the session exists
        let handle = home(&parts);
        let session = self.sessions.get(&handle).ok_or(Rej::Missing)?;
        // its record reads (v2)
        if session.damage.is_some() {
            return Err(Rej::Unreadable);
        }
        // 9. it stores this token's signature (v1) or binding (v2)
        let own = parse(&session.token).expect("a session's token");
        if stored_part(&own) != stored_part(&parts) {
            return Err(Rej::Stale);
        }
        let rest = &args[3..];
        Ok(match short(cmd) {
            "expire" => Plan::Expire {
                handle,
                ttl: ttl.expect("parsed above"),
            },
            "end" => Plan::End { handle },
            "ttl" => Plan::Ttl { handle },
            "pgetall" => Plan::GetAll { handle },
            "pget" => {
                self.check_name(&rest[0])?;
                if !session.payloads.contains_key(&rest[0]) {
                    return Err(Rej::NoPayload);
                }
                Plan::Get {
                    handle,
                    name: rest[0].clone(),
                }
            }
            "pdel" => {
                self.check_name(&rest[0])?;
                // docs/errors.md#step-12: an error only when the session has
                // no payload.
                if session.payloads.is_empty() {
                    return Err(Rej::NoPayload);
                }
                Plan::Del {
                    handle,
                    name: rest[0].clone(),
                }
            }
            "pmget" => {
                for name in rest {
                    self.check_name(name)?;
                }
                Plan::MGet {
                    handle,
                    names: rest.to_vec(),
                }
            }
            "pset" | "pmset" => {
                // Pair by pair: the name, then its data.
                for pair in rest.chunks(2) {
                    self.check_name(&pair[0])?;
                    self.check_data(&pair[1])?;
                }
                let pairs: Vec<(Vec<u8>, Vec<u8>)> = rest
                    .chunks(2)
                    .map(|p| (p[0].clone(), p[1].clone()))
                    .collect();
                // README: past max-payloads-per-session only by adding a
                // payload; overwriting an existing name always works.
                if self.max_payloads > 0 {
                    let mut added: Vec<&Vec<u8>> = pairs
                        .iter()
                        .map(|(name, _)| name)
                        .filter(|name| !session.payloads.contains_key(*name))
                        .collect();
                    added.sort();
                    added.dedup();
                    if !added.is_empty() && session.payloads.len() + added.len() > self.max_payloads
                    {
                        return Err(Rej::TooMany);
                    }
                }
                Plan::Set { handle, pairs }
            }
            other => panic!("no plan for {other}"),
        })
    }

    /// Counts an outcome, and once more as a v2 one when the command was
    /// about a v2 token (or START minted one).
    fn tally(&mut self, cmd: &str, outcome: &str) {
        let outcome = format!("{} {outcome}", short(cmd));
        if self.v2_context {
            *self.coverage.entry(format!("v2 {outcome}")).or_default() += 1;
        }
        *self.coverage.entry(outcome).or_default() += 1;
    }

    /// One command: what the model predicts, against what the server sent.
    fn step(
        &mut self,
        args: &[Vec<u8>],
        resp3: bool,
        got: &Result<Value, String>,
        t0: i64,
        t1: i64,
    ) -> Result<(), String> {
        let cmd = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
        let before = self.describe_target(args);
        self.wrote = false;
        self.v2_context = if short(&cmd) == "start" {
            self.token_version == Version::V2
        } else {
            args.get(2).is_some_and(|t| t.starts_with(b"v2."))
        };
        self.judge(&cmd, args, resp3, got, t0, t1)
            .map_err(|why| format!("{why}\n  model before it: {before}"))
    }

    /// What the model knew of the session a command names, for failures.
    fn describe_target(&self, args: &[Vec<u8>]) -> String {
        let limits = format!(
            "max-payload-name-len {}, max-payload-data-len {}, max-payloads-per-session {}, \
             token-version {:?}",
            self.name_limit, self.data_limit, self.max_payloads, self.token_version
        );
        let session = args
            .get(2)
            .and_then(|t| parse(t))
            .and_then(|p| self.sessions.get(&home(&p)));
        match session {
            Some(s) => format!(
                "{limits}; session {} live ({}), started with {}, deadline {:?}{}, {} payloads: {}",
                show(&s.token),
                if s.damage.is_some() {
                    "record spoiled"
                } else {
                    "record intact"
                },
                show(&s.keyref),
                s.deadline,
                if s.version() == Version::V2 {
                    format!(", created {:?}", s.created)
                } else {
                    String::new()
                },
                s.payloads.len(),
                s.payloads
                    .iter()
                    .take(8)
                    .map(|(n, d)| format!("{} = {}", show(n), show(d)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => format!("{limits}; no live session for this token"),
        }
    }

    fn judge(
        &mut self,
        cmd: &str,
        args: &[Vec<u8>],
        resp3: bool,
        got: &Result<Value, String>,
        t0: i64,
        t1: i64,
    ) -> Result<(), String> {
        let checked = self.check(cmd, args, got, t0, t1);
        for note in self.notes.take() {
            self.tally(cmd, note);
        }
        match checked {
            Err(rej) => {
                match rej {
                    Rej::Forged | Rej::Stale => self.counters.signature_failures += 1,
                    Rej::EmptyToken | Rej::BadFormat => self.counters.malformed_tokens += 1,
                    Rej::Missing => self.counters.missing_sessions += 1,
                    Rej::UnknownRing => self.counters.unknown_rings += 1,
                    _ => {}
                }
                self.tally(cmd, &format!("{rej:?}"));
                expect(got, &Err(self.message(rej, cmd, args)))
            }
            Ok(plan) => {
                self.tally(cmd, "ok");
                self.apply(plan, resp3, got, t0, t1)
            }
        }
    }

    fn apply(
        &mut self,
        plan: Plan,
        resp3: bool,
        got: &Result<Value, String>,
        t0: i64,
        t1: i64,
    ) -> Result<(), String> {
        let deadline = |ms: i64| Some((t0.saturating_add(ms), t1.saturating_add(ms)));
        match plan {
            Plan::Start {
                keyref,
                secret,
                version,
                ttl,
            } => {
                let token = match got {
                    Ok(Value::BulkString(token)) => token.clone(),
                    other => return Err(format!("expected a new token, got {}", reply(other))),
                };
                let Some(parts) = parse(&token) else {
                    return Err(format!("START minted a malformed token {}", show(&token)));
                };
                if parts.version != version {
                    return Err(format!(
                        "START minted {} while token-version is {version:?}",
                        show(&token)
                    ));
                }
                if !signs(&secret, &parts) {
                    return Err(format!(
                        "START's token {} is not signed with the keyref's signing secret {}",
                        show(&token),
                        show(&secret)
                    ));
                }
                let handle = home(&parts);
                if self.sessions.contains_key(&handle) {
                    return Err(format!(
                        "START reused the key of a live session: {}",
                        show(&handle)
                    ));
                }
                if version == Version::V2 {
                    self.v2_tags.insert(parts.tag.to_vec());
                    self.v2_minted += 1;
                }
                // docs/tokens.md#minting: standalone, one id per START.
                self.counters.ids_drawn += 1;
                self.counters.sessions_started += 1;
                match ttl {
                    // docs/commands.md#start: a token whose session does not
                    // exist.
                    Ttl::Zero => {
                        self.tally("start", "ttl 0");
                        self.forget(keyref, token);
                    }
                    Ttl::Ms(ms) => {
                        self.live.push(handle.clone());
                        self.sessions.insert(
                            handle,
                            Session {
                                keyref,
                                secret,
                                token,
                                deadline: deadline(ms),
                                payloads: BTreeMap::new(),
                                created: (t0, t1),
                                damage: None,
                            },
                        );
                    }
                }
                Ok(())
            }
            Plan::Expire { handle, ttl } => {
                self.wrote = true;
                match ttl {
                    Ttl::Zero => {
                        self.tally("expire", "ttl 0");
                        self.end(&handle);
                        self.counters.sessions_ended_by_expire_0 += 1;
                    }
                    Ttl::Ms(ms) => self.session(&handle).deadline = deadline(ms),
                }
                expect(got, &Ok(Value::Okay))
            }
            Plan::End { handle } => {
                self.wrote = true;
                self.end(&handle);
                self.counters.sessions_ended += 1;
                expect(got, &Ok(Value::Okay))
            }
            Plan::Set { handle, pairs } => {
                self.wrote = true;
                self.counters.payloads_set += pairs.len() as u64;
                let count = self.sessions[&handle].payloads.len();
                if self.max_payloads > 0 && count > self.max_payloads {
                    // The limit was lowered under this session: overwriting
                    // still works (README, Configuration).
                    self.tally("set", "ok past the payload limit");
                }
                let session = self.session(&handle);
                for (name, data) in pairs {
                    session.payloads.insert(name, data);
                }
                expect(got, &Ok(Value::Okay))
            }
            Plan::Get { handle, name } => {
                self.counters.payloads_read += 1;
                let data = self.session(&handle).payloads[&name].clone();
                expect(got, &Ok(Value::BulkString(data)))
            }
            Plan::MGet { handle, names } => {
                let session = &self.sessions[&handle];
                let found: Vec<Value> = names
                    .iter()
                    .map(|name| {
                        session
                            .payloads
                            .get(name)
                            .map_or(Value::Nil, |data| Value::BulkString(data.clone()))
                    })
                    .collect();
                self.counters.payloads_read +=
                    found.iter().filter(|v| **v != Value::Nil).count() as u64;
                expect(got, &Ok(Value::Array(found)))
            }
            Plan::GetAll { handle } => {
                let session = &self.sessions[&handle];
                let pairs = session
                    .payloads
                    .iter()
                    .map(|(n, d)| (Value::BulkString(n.clone()), Value::BulkString(d.clone())));
                let expected = if resp3 {
                    Value::Map(pairs.collect())
                } else {
                    Value::Array(pairs.flat_map(|(n, d)| [n, d]).collect())
                };
                self.counters.payloads_read += session.payloads.len() as u64;
                expect(got, &Ok(expected))
            }
            Plan::Del { handle, name } => {
                if self.session(&handle).payloads.remove(&name).is_some() {
                    self.wrote = true;
                    self.counters.payloads_deleted += 1;
                } else {
                    self.tally("pdel", "ok, no such name");
                }
                expect(got, &Ok(Value::Okay))
            }
            Plan::Ttl { handle } => {
                // Redis' TTL rounding of the ms left when the server read its
                // clock, somewhere in [t0, t1].
                let round = |left: i64| (left.max(0) + 500) / 1000;
                let (min, max) = match self.session(&handle).deadline {
                    Some((lo, hi)) => (round(lo - t1), round(hi - t0)),
                    None => {
                        self.tally("ttl", "ok, no expiry");
                        (-1, -1)
                    }
                };
                match got {
                    Ok(Value::Int(s)) if (min..=max).contains(s) => Ok(()),
                    other => Err(format!(
                        "expected an integer in {min}..={max}, got {}",
                        reply(other)
                    )),
                }
            }
        }
    }

    /// A session written by other means (docs/keys.md#keys-written-by-other-means):
    /// the C module's layout for v1, START's record for v2.
    fn inject(
        &mut self,
        keyref: Vec<u8>,
        secret: Vec<u8>,
        token: Vec<u8>,
        at: Option<i64>,
        created: i64,
        payloads: Vec<(Vec<u8>, Vec<u8>)>,
    ) {
        let handle = home(&parse(&token).expect("a well-formed token"));
        self.v2_context = token.starts_with(b"v2.");
        self.tally(
            "inject",
            if at.is_some() {
                "with expiry"
            } else {
                "without expiry"
            },
        );
        self.live.push(handle.clone());
        let session = Session {
            keyref,
            secret,
            token,
            deadline: at.map(|at| (at, at)),
            payloads: payloads.into_iter().collect(),
            created: (created, created),
            damage: None,
        };
        self.sessions.insert(handle, session);
    }

    fn session(&mut self, handle: &[u8]) -> &mut Session {
        self.sessions.get_mut(handle).expect("a live session")
    }

    fn end(&mut self, handle: &[u8]) {
        let session = self.sessions.remove(handle).expect("a live session");
        let at = self.live.iter().position(|l| l == handle).expect("listed");
        self.live.swap_remove(at);
        self.forget(session.keyref, session.token);
    }

    fn forget(&mut self, keyref: Vec<u8>, token: Vec<u8>) {
        self.ended.push_back((keyref, token));
        if self.ended.len() > ENDED_KEPT {
            self.ended.pop_front();
        }
    }

    /// A v2 record the module wrote for `session` (docs/keys.md#v2-record):
    /// format 1, the token's binding, and a `created` within what the model
    /// knows; that `created`, or why not.
    fn check_record(session: &Session, bytes: &[u8]) -> Result<i64, String> {
        let token = parse(&session.token).expect("a session's token");
        let binding = stored_part(&token);
        let (lo, hi) = session.created;
        let created = (bytes.len() == 41 && bytes[0] == 1 && &bytes[1..33] == binding)
            .then(|| i64::from_be_bytes(bytes[33..41].try_into().expect("8 bytes")))
            .filter(|created| (lo..=hi).contains(created));
        created.ok_or_else(|| {
            format!(
                "record {} is not format 1, binding {}, created in {lo}..={hi}",
                show(bytes),
                show(binding)
            )
        })
    }

    /// docs/keys.md and docs/replication.md against the keyspace itself, and
    /// docs/events-and-info.md#info-fields' counters against the model's.
    fn check_keyspace(&mut self, con: &mut Connection) -> Result<(), String> {
        let dbsize: i64 = redis::cmd("DBSIZE").query(con).unwrap();
        let expected_keys: usize = self
            .sessions
            .values()
            .map(|s| match s.version() {
                Version::V1 => 1 + usize::from(!s.payloads.is_empty()),
                Version::V2 => 1,
            })
            .sum();
        if dbsize != expected_keys as i64 {
            return Err(format!(
                "DBSIZE is {dbsize}, the model has {expected_keys} keys"
            ));
        }
        let mut pipe = redis::pipe();
        for handle in &self.live {
            let session = &self.sessions[handle];
            match session.version() {
                Version::V1 => {
                    let id = &parse(&session.token).expect("a token").id.to_vec();
                    let (sig, pay) = (signature_key(id), payloads_key(id));
                    pipe.cmd("TYPE").arg(&sig);
                    pipe.cmd("GET").arg(&sig);
                    pipe.cmd("PEXPIRETIME").arg(&sig);
                    pipe.cmd("HGETALL").arg(&pay);
                    pipe.cmd("PEXPIRETIME").arg(&pay);
                }
                Version::V2 => {
                    pipe.cmd("TYPE").arg(handle);
                    pipe.cmd("PEXPIRETIME").arg(handle);
                    pipe.cmd("HGETALL").arg(handle);
                }
            }
        }
        for (_, token) in self.ended.iter().rev().take(20) {
            pipe.cmd("EXISTS").arg(keys_of(token));
        }
        let replies: Vec<Value> = pipe.query(con).unwrap();
        let mut replies = replies.into_iter();
        for handle in &self.live {
            let session = self.sessions.get_mut(handle).expect("listed");
            let who = show(&session.token);
            let mut next = || replies.next().expect("one reply per command");
            let version = session.version();
            let kind = next();
            let want_kind = match version {
                Version::V1 => "string",
                Version::V2 => "hash",
            };
            if kind != Value::SimpleString(want_kind.into()) {
                return Err(format!("session {who}: its key is a {kind:?}"));
            }
            if version == Version::V1 {
                let stored = next();
                if stored != Value::BulkString(session.token[20..].to_vec()) {
                    return Err(format!("session {who}: signature key holds {stored:?}"));
                }
            }
            let at = match (next(), session.deadline) {
                (Value::Int(at), Some((lo, hi))) if (lo..=hi).contains(&at) => at,
                (Value::Int(-1), None) => -1,
                (other, deadline) => {
                    return Err(format!(
                        "session {who}: PEXPIRETIME {other:?}, the model has {deadline:?}"
                    ))
                }
            };
            if at != -1 {
                session.deadline = Some((at, at));
            }
            let hash = next();
            let Some(mut fields) = hash_of(&hash) else {
                return Err(format!("session {who}: HGETALL replied {hash:?}"));
            };
            if version == Version::V2 {
                let record = fields.remove(&b""[..]);
                let expected = session.damage.as_ref().map(|d| d.garbage.clone());
                match (record, expected) {
                    (Some(record), None) => {
                        let created = Self::check_record(session, &record)
                            .map_err(|why| format!("session {who}: {why}"))?;
                        session.created = (created, created);
                    }
                    (record, Some(garbage)) if record == garbage => {}
                    (record, expected) => {
                        return Err(format!(
                            "session {who}: field \"\" holds {:?}, the model has {:?}",
                            record.as_deref().map(show),
                            expected.map(|g| g.as_deref().map(show)),
                        ))
                    }
                }
            }
            if fields != session.payloads {
                return Err(format!(
                    "session {who}: payloads {hash:?}, the model has {:?}",
                    session.payloads
                ));
            }
            if version == Version::V1 {
                // The payloads key has the session's expiry, or does not exist.
                let payloads_at = next();
                let want = if session.payloads.is_empty() { -2 } else { at };
                if payloads_at != Value::Int(want) {
                    return Err(format!(
                        "session {who}: payloads PEXPIRETIME {payloads_at:?}, expected {want}"
                    ));
                }
            }
        }
        for (_, token) in self.ended.iter().rev().take(20) {
            let exists = replies.next().expect("one reply per command");
            if exists != Value::Int(0) {
                return Err(format!(
                    "ended session {}: {exists:?} of its keys exist",
                    show(token)
                ));
            }
        }
        let info: String = redis::cmd("INFO").arg("sessiongate").query(con).unwrap();
        for (field, value) in self.counters.fields() {
            let line = format!("sessiongate_{field}:");
            let got = info
                .lines()
                .find_map(|l| l.strip_prefix(&line))
                .map(|v| v.trim().to_string());
            if got != Some(value.to_string()) {
                return Err(format!(
                    "INFO {line} is {got:?}, the model counted {value}\n{info}"
                ));
            }
        }
        Ok(())
    }
}

/// An HGETALL reply (RESP2) as a map; `None` if it is not one.
fn hash_of(value: &Value) -> Option<BTreeMap<Vec<u8>, Vec<u8>>> {
    let Value::Array(items) = value else {
        return None;
    };
    if items.len() % 2 != 0 {
        return None;
    }
    let mut map = BTreeMap::new();
    for pair in items.chunks(2) {
        match pair {
            [Value::BulkString(n), Value::BulkString(d)] => {
                if map.insert(n.clone(), d.clone()).is_some() {
                    return None;
                }
            }
            _ => return None,
        }
    }
    Some(map)
}

fn expect(got: &Result<Value, String>, expected: &Result<Value, String>) -> Result<(), String> {
    if got == expected {
        Ok(())
    } else {
        Err(format!(
            "expected {}\n     got {}",
            reply(expected),
            reply(got)
        ))
    }
}

fn show(bytes: &[u8]) -> String {
    let escaped = |b: &[u8]| b.escape_ascii().to_string();
    if bytes.len() > 100 {
        format!("\"{}…\" ({} bytes)", escaped(&bytes[..32]), bytes.len())
    } else {
        format!("\"{}\"", escaped(bytes))
    }
}

fn show_value(value: &Value) -> String {
    match value {
        Value::BulkString(b) => format!("bulk {}", show(b)),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(show_value).collect::<Vec<_>>().join(", ")
        ),
        Value::Map(pairs) => format!(
            "{{{}}}",
            pairs
                .iter()
                .map(|(k, v)| format!("{}: {}", show_value(k), show_value(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => format!("{other:?}"),
    }
}

fn reply(reply: &Result<Value, String>) -> String {
    match reply {
        Ok(value) => show_value(value),
        Err(e) => format!("error {e:?}"),
    }
}

// ---------------------------------------------------------------------------
// The generator.

/// `len` random bytes.
fn random_bytes(rng: &mut StdRng, len: usize) -> Vec<u8> {
    let mut bytes = vec![0; len];
    rng.fill(&mut bytes[..]);
    bytes
}

/// A session id as the module draws them: 16 characters of `[0-9A-Za-z]`.
fn random_id(rng: &mut StdRng) -> Vec<u8> {
    (0..16).map(|_| rng.sample(Alphanumeric)).collect()
}

/// The canonical tag of a random slot, as a v2 START picks one.
fn random_tag(rng: &mut StdRng) -> Vec<u8> {
    canonical_tags()[rng.random_range(0..16384)].clone()
}

/// 1 to 3 alphanumerics that are not their slot's canonical tag: a v2
/// token with it is malformed however it is signed (docs/tokens.md#v2-tokens).
fn uncanonical_tag(rng: &mut StdRng) -> Vec<u8> {
    loop {
        let len = rng.random_range(2..=3);
        let tag: Vec<u8> = (0..len).map(|_| *ALNUM.choose(rng).unwrap()).collect();
        if !is_canonical(&tag) {
            return tag;
        }
    }
}

fn random_version(rng: &mut StdRng) -> Version {
    if rng.random_ratio(1, 2) {
        Version::V1
    } else {
        Version::V2
    }
}

enum Op {
    /// A command; with `watch`, framed by WATCH of the session's keys and an
    /// empty MULTI/EXEC, which must abort exactly when the command wrote.
    Command {
        args: Vec<Vec<u8>>,
        resp3: bool,
        watch: bool,
    },
    Config {
        name: &'static str,
        value: i64,
    },
    /// A session written with plain Redis commands
    /// (docs/keys.md#keys-written-by-other-means): the C module's layout for
    /// v1, START's hash and record for v2; with or without an expiry.
    Inject(Injection),
    /// Plain Redis spoils a v2 session's record (docs/keys.md#v2-record).
    Damage {
        handle: Handle,
        harm: Harm,
    },
    /// ...and puts the record back as it was.
    Repair {
        handle: Handle,
    },
    /// `SESSIONGATE.KEYRING RELOAD` of the next generation of the keyring
    /// file, or of a file it must refuse.
    Reload {
        good: bool,
    },
}

/// A session for plain Redis to write: the C module's layout for v1,
/// START's hash and record for v2; with or without an expiry.
struct Injection {
    keyref: Vec<u8>,
    version: Version,
    tag: Vec<u8>,
    id: Vec<u8>,
    ttl: Option<i64>,
    payloads: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Ways a record stops reading (docs/keys.md#v2-record), each from the
/// record the module wrote.
#[derive(Debug, Clone)]
enum Harm {
    Empty,
    /// Fewer bytes than a record's first three parts.
    Short(Vec<u8>),
    /// Another format byte.
    Format(u8),
    /// The first `n` bytes only.
    CutShort(usize),
    /// One byte left over.
    LeftOver(u8),
    /// A label before a deadline.
    OutOfOrder,
    /// What a v1 signature key holds: 64 hex characters.
    Signature,
    /// `HDEL` of field `""`.
    NoRecord,
}

impl Harm {
    /// What field `""` holds after the harm; `None`: no field.
    fn apply(&self, original: &[u8]) -> Option<Vec<u8>> {
        Some(match self {
            Harm::Empty => Vec::new(),
            Harm::Short(bytes) => bytes.clone(),
            Harm::Format(format) => [&[*format][..], &original[1..]].concat(),
            Harm::CutShort(n) => original[..*n].to_vec(),
            Harm::LeftOver(b) => [original, &[*b]].concat(),
            Harm::OutOfOrder => [original, b"l\0\x01a", b"d", &[0, 0, 1, 0, 0, 0, 0, 0]].concat(),
            Harm::Signature => b"0123456789abcdef".repeat(4),
            Harm::NoRecord => return None,
        })
    }

    fn random(rng: &mut StdRng, has_payloads: bool) -> Self {
        match rng.random_range(0..10) {
            0 => Harm::Empty,
            1 => {
                let len = rng.random_range(1..=40);
                Harm::Short(random_bytes(rng, len))
            }
            2 => Harm::Format(*[0u8, 2, b'1', 0xff].choose(rng).unwrap()),
            3 => Harm::CutShort(rng.random_range(1..41)),
            4 => Harm::LeftOver(rng.random()),
            5 => Harm::OutOfOrder,
            6 => Harm::Signature,
            // Without payloads the hash would go with its last field.
            _ if has_payloads => Harm::NoRecord,
            _ => Harm::Empty,
        }
    }
}

/// Who a command is about: a keyref and a token, the live session the
/// token names if any (for its payload names), and the secret that signed
/// it if known.
struct Target {
    keyref: Vec<u8>,
    token: Vec<u8>,
    handle: Option<Handle>,
    secret: Option<Vec<u8>>,
}

impl Model {
    fn generate(&self, rng: &mut StdRng) -> Op {
        let roll = rng.random_range(0..1000);
        if roll < 10 {
            let (name, values): (_, &[i64]) = match rng.random_range(0..3) {
                0 => ("sessiongate.max-payload-name-len", &[200, 200, 200, 16]),
                1 => ("sessiongate.max-payload-data-len", &[1, 8, 64, 64, 100]),
                _ => ("sessiongate.max-payloads-per-session", &[0, 0, 1, 2, 3, 8]),
            };
            let value = *values.choose(rng).unwrap();
            return Op::Config { name, value };
        }
        if roll < 22 {
            // Mostly a flip, so v1 and v2 sessions pile up side by side;
            // now and then a value out of range, which changes nothing.
            let value = *[1, 2, 1, 2, 1, 2, 1, 2, 0, 3].choose(rng).unwrap();
            let name = "sessiongate.token-version";
            return Op::Config { name, value };
        }
        let damaged: Vec<&Handle> = self
            .live
            .iter()
            .filter(|h| self.sessions[*h].damage.is_some())
            .collect();
        if roll < 28 && damaged.len() < DAMAGED_MAX {
            let intact: Vec<&Handle> = self
                .live
                .iter()
                .filter(|h| {
                    let s = &self.sessions[*h];
                    s.damage.is_none() && s.version() == Version::V2
                })
                .collect();
            if let Some(handle) = intact.choose(rng) {
                let has_payloads = !self.sessions[*handle].payloads.is_empty();
                return Op::Damage {
                    handle: handle.to_vec(),
                    harm: Harm::random(rng, has_payloads),
                };
            }
        }
        if roll < 40 && !damaged.is_empty() {
            return Op::Repair {
                handle: damaged.choose(rng).unwrap().to_vec(),
            };
        }
        if (40..43).contains(&roll) {
            return Op::Reload {
                good: rng.random_ratio(4, 5),
            };
        }
        let live = self.live.len();
        if live < 80 && rng.random_ratio(2, 100) {
            let pairs = rng.random_range(0..4);
            return Op::Inject(Injection {
                keyref: self.keyrefs().choose(rng).unwrap().clone(),
                version: random_version(rng),
                tag: random_tag(rng),
                id: random_id(rng),
                ttl: rng
                    .random_ratio(50, 100)
                    .then(|| rng.random_range(LIVE_TTL_MIN..=100_000_000)),
                payloads: (0..pairs)
                    .map(|_| {
                        let (n, d) = (rng.random_range(0..8) + 1, rng.random_range(0..8) + 1);
                        (random_bytes(rng, n), random_bytes(rng, d))
                    })
                    .collect(),
            });
        }
        let weights = [
            (if live < 8 {
                30
            } else if live > 60 {
                2
            } else {
                8
            }), // start
            8,                                // expire
            18,                               // pset
            14,                               // pget
            10,                               // pdel
            (if live > 60 { 15 } else { 4 }), // end
            7,                                // ttl
            7,                                // pgetall
            7,                                // pmget
            8,                                // pmset
        ];
        let mut roll = rng.random_range(0..weights.iter().sum::<usize>());
        let mut which = 0;
        while roll >= weights[which] {
            roll -= weights[which];
            which += 1;
        }
        let cmd = COMMANDS[which];
        let mut args = vec![spell(rng, cmd)];
        if cmd == "sessiongate.start" {
            args.push(self.keyref(rng, None, None));
            args.push(ttl_arg(rng, 8));
        } else {
            let target = self.target(rng);
            let session = target.handle.as_ref().and_then(|h| self.sessions.get(h));
            args.push(target.keyref);
            args.push(target.token);
            match short(cmd) {
                "expire" => args.push(ttl_arg(rng, 8)),
                "pset" => {
                    args.push(self.name(rng, session));
                    args.push(self.data(rng));
                }
                "pget" | "pdel" => args.push(self.name(rng, session)),
                "pmget" => {
                    for _ in 0..rng.random_range(1..=5) {
                        args.push(self.name(rng, session));
                    }
                }
                "pmset" => {
                    for _ in 0..rng.random_range(1..=4) {
                        args.push(self.name(rng, session));
                        args.push(self.data(rng));
                    }
                }
                _ => {}
            }
        }
        // Wrong arity, with otherwise plausible words.
        if rng.random_ratio(4, 100) {
            let words = loop {
                let words = rng.random_range(0..args.len() + 4) + 1;
                if !arity_ok(cmd, words) {
                    break words;
                }
            };
            while args.len() < words {
                args.push(self.name(rng, None));
            }
            args.truncate(words);
        }
        let watch = cmd != "sessiongate.start" && rng.random_ratio(6, 100);
        Op::Command {
            args,
            resp3: !watch && rng.random_ratio(20, 100),
            watch,
        }
    }

    /// A keyref: mostly `usual` (a session's own), sometimes the raw secret
    /// that signed the token (which verifies what its ring's name does),
    /// and every kind of wrong: empty, random bytes, another known keyref,
    /// a ring that does not exist (docs/errors.md#step-2).
    fn keyref(&self, rng: &mut StdRng, usual: Option<&[u8]>, secret: Option<&[u8]>) -> Vec<u8> {
        let keyrefs = self.keyrefs();
        let known = |rng: &mut StdRng| keyrefs.choose(rng).unwrap().clone();
        match rng.random_range(0..100) {
            0..=2 => Vec::new(),
            3..=4 => {
                let len = rng.random_range(0..8) + 1;
                random_bytes(rng, len)
            }
            5..=7 => known(rng),
            8..=10 => odd_ring(rng),
            11..=13 => match secret {
                Some(s) if !s.is_empty() && !s.starts_with(b"@") => s.to_vec(),
                _ => usual.map_or_else(|| known(rng), <[u8]>::to_vec),
            },
            _ => usual.map_or_else(|| known(rng), <[u8]>::to_vec),
        }
    }

    fn target(&self, rng: &mut StdRng) -> Target {
        // Sessions with a spoiled record are few: they get picked more often
        // than the others, so every command meets one.
        let damaged: Vec<&Handle> = self
            .live
            .iter()
            .filter(|h| self.sessions[*h].damage.is_some())
            .collect();
        let live = (!self.live.is_empty()).then(|| {
            let handle = match damaged.choose(rng) {
                Some(handle) if rng.random_ratio(1, 12) => handle.to_vec(),
                _ => self.live[rng.random_range(0..self.live.len())].clone(),
            };
            let session = &self.sessions[&handle];
            // A session whose secret its ring dropped is one the application
            // has not rotated (docs/commands.md#rotate): it goes on with the secret as a raw
            // key, and now and then still tries the ring.
            let retired = self
                .secrets_of(&session.keyref)
                .is_ok_and(|secrets| !secrets.contains(&session.secret));
            let keyref = if retired && rng.random_ratio(4, 5) {
                &session.secret
            } else {
                &session.keyref
            };
            Target {
                keyref: keyref.clone(),
                token: session.token.clone(),
                handle: Some(handle),
                secret: Some(session.secret.clone()),
            }
        });
        let roll = rng.random_range(0..100);
        let mut target = if let (Some(live), true) = (&live, roll < 64) {
            Target {
                keyref: live.keyref.clone(),
                token: live.token.clone(),
                handle: live.handle.clone(),
                secret: live.secret.clone(),
            }
        } else if (64..72).contains(&roll) && !self.ended.is_empty() {
            let (keyref, token) = self.ended[rng.random_range(0..self.ended.len())].clone();
            Target {
                keyref,
                token,
                handle: None,
                secret: None,
            }
        } else {
            self.odd_target(rng, live)
        };
        target.keyref = self.keyref(rng, Some(&target.keyref), target.secret.as_deref());
        target
    }

    /// Tokens that must be refused, at step 4, 5, 7, 8 or 9, of either
    /// version, derived from a live session's token when there is one.
    fn odd_target(&self, rng: &mut StdRng, live: Option<Target>) -> Target {
        let (keyref, secret, token) = match live {
            Some(Target {
                keyref,
                token,
                secret: Some(secret),
                ..
            }) => (keyref, secret, token),
            _ => {
                let keyref = self.keyrefs().choose(rng).unwrap().clone();
                let secret = self.signing_secret(&keyref);
                let version = random_version(rng);
                let token = mint(version, &secret, &random_tag(rng), &random_id(rng));
                (keyref, secret, token)
            }
        };
        let parts = parse(&token).expect("a well-formed token");
        let (version, tag, id) = (parts.version, parts.tag.to_vec(), parts.id.to_vec());
        let (other_keyref, other_secret) = loop {
            let other = self.keyrefs().choose(rng).unwrap().clone();
            let other_secret = self.signing_secret(&other);
            if other_secret != secret {
                break (other, other_secret);
            }
        };
        let sig_at = token.len() - 64;
        let fresh_tag = |rng: &mut StdRng| loop {
            let other = random_tag(rng);
            if other != tag {
                break other;
            }
        };
        let (keyref, token) = match rng.random_range(0..20) {
            // A good token, sent with another keyref: step 7.
            0 => (other_keyref, token),
            // The same session signed with another secret, sent with its
            // keyref: a valid HMAC whose signature (v1) or binding (v2) is
            // not the stored one, step 9.
            1 | 12 | 13 => (other_keyref, mint(version, &other_secret, &tag, &id)),
            // ...sent with the session's own keyref: step 7.
            2 => (keyref, mint(version, &other_secret, &tag, &id)),
            // Signed right, never started: step 8.
            3 => (keyref, mint(version, &secret, &tag, &random_id(rng))),
            // A random signature: step 7.
            4 => {
                let hex: Vec<u8> = (0..64)
                    .map(|_| b"0123456789abcdef"[rng.random_range(0..16)])
                    .collect();
                (keyref, [&token[..sig_at], &hex].concat())
            }
            // One signature character changed to another hex digit.
            5 => {
                let mut t = token;
                let at = sig_at + rng.random_range(0..64);
                t[at] = if t[at] == b'0' { b'1' } else { b'0' };
                (keyref, t)
            }
            6 | 14 | 15 => (keyref, Vec::new()),
            7..=10 => (keyref, malformed(rng, &token)),
            // v2: another slot's tag with the signature kept, step 7; signed
            // right, step 8.
            16 if version == Version::V2 => {
                let t = [
                    b"v2.{",
                    &fresh_tag(rng)[..],
                    b"}.",
                    &id,
                    b".",
                    &token[sig_at..],
                ];
                (keyref, t.concat())
            }
            17 if version == Version::V2 => (keyref, mint(version, &secret, &fresh_tag(rng), &id)),
            // The same id as a token of the other version, signed right: the
            // other version's keys, step 8.
            16..=18 => {
                let other = match version {
                    Version::V1 => Version::V2,
                    Version::V2 => Version::V1,
                };
                (keyref, mint(other, &secret, &random_tag(rng), &id))
            }
            // A tag of 1 to 3 alphanumerics that is not its slot's canonical
            // one, signed right: step 5.
            19 => (
                keyref,
                mint(Version::V2, &secret, &uncanonical_tag(rng), &id),
            ),
            _ => {
                let len = rng.random_range(0..100);
                (keyref, random_bytes(rng, len))
            }
        };
        let handle = parse(&token).map(|p| home(&p));
        Target {
            keyref,
            token,
            handle,
            secret: None,
        }
    }

    fn name(&self, rng: &mut StdRng, session: Option<&Session>) -> Vec<u8> {
        let roll = rng.random_range(0..100);
        match session {
            Some(s) if roll < 45 && !s.payloads.is_empty() => s
                .payloads
                .keys()
                .nth(rng.random_range(0..s.payloads.len()))
                .unwrap()
                .clone(),
            _ => match roll % 50 {
                // Few short names, so that they collide.
                0..=24 => {
                    let len = rng.random_range(0..3) + 1;
                    (0..len)
                        .map(|_| *b"ab\0\xff".choose(rng).unwrap())
                        .collect()
                }
                25..=36 => {
                    let len = rng.random_range(0..24) + 1;
                    random_bytes(rng, len)
                }
                37..=39 => vec![*b"n\0".choose(rng).unwrap(); self.name_limit],
                40..=42 => vec![*b"n\0".choose(rng).unwrap(); self.name_limit + 1],
                43..=45 => Vec::new(),
                _ => {
                    let len = rng.random_range(0..NAME_LIMIT) + 1;
                    random_bytes(rng, len)
                }
            },
        }
    }

    fn data(&self, rng: &mut StdRng) -> Vec<u8> {
        let len = match rng.random_range(0..100) {
            0..=79 => rng.random_range(0..16.min(self.data_limit)) + 1,
            80..=85 => self.data_limit,
            86..=90 => self.data_limit + 1,
            91..=94 => 0,
            _ => rng.random_range(0..self.data_limit) + 1,
        };
        random_bytes(rng, len)
    }
}

/// An `@` keyref that names no ring (with no keyring loaded, none does),
/// with names the unknown-ring error shows as they are, with `?` for odd
/// bytes, or cut at 64 bytes (docs/errors.md#step-2).
fn odd_ring(rng: &mut StdRng) -> Vec<u8> {
    match rng.random_range(0..7) {
        0 => b"@nope".to_vec(),
        1 => b"@".to_vec(),
        2 => b"@app".to_vec(),
        3 => b"@staff".to_vec(),
        4 => b"@@app".to_vec(),
        5 => {
            let len = rng.random_range(1..=12);
            [&b"@"[..], &random_bytes(rng, len)].concat()
        }
        _ => {
            let len = *[63, 64, 65, 200].choose(rng).unwrap();
            [&b"@"[..], &vec![*b"r.-_ \0".choose(rng).unwrap(); len]].concat()
        }
    }
}

/// The command's name, mostly as written, sometimes in mixed case.
fn spell(rng: &mut StdRng, cmd: &str) -> Vec<u8> {
    if rng.random_ratio(80, 100) {
        return cmd.to_ascii_uppercase().into_bytes();
    }
    cmd.bytes()
        .map(|b| {
            if rng.random_ratio(50, 100) {
                b.to_ascii_uppercase()
            } else {
                b
            }
        })
        .collect()
}

/// A `<ttl>`: mostly long enough to outlive the run, sometimes 0, and every
/// kind of wrong, including both sides of the overflow of
/// docs/compatibility.md#ttl-overflow and of v2's limit of 2^53 ms
/// (docs/tokens.md#expiry).
fn ttl_arg(rng: &mut StdRng, zero_percent: usize) -> Vec<u8> {
    let roll = rng.random_range(0..100);
    let t = now_ms();
    // The latest expiry of one version or the other.
    let latest = if rng.random_ratio(1, 2) {
        i64::MAX
    } else {
        V2_MAX_EXPIRY_MS
    };
    let ttl: String = if roll < zero_percent {
        "0".into()
    } else {
        match roll - zero_percent {
            0..=69 => rng.random_range(LIVE_TTL_MIN..=100_000_000).to_string(),
            70..=72 => {
                let some_negative = -rng.random_range(1..=1 << 40);
                [-1, -1000, i64::MIN, some_negative]
                    .choose(rng)
                    .unwrap()
                    .to_string()
            }
            73..=77 => [
                "",
                "abc",
                "1.5",
                "1e4",
                "+1000",
                " 1000",
                "1000 ",
                "0x10",
                "-0",
                "01000",
                "9223372036854775808",
                "-9223372036854775809",
                "1000\0",
                "１０００",
            ]
            .choose(rng)
            .unwrap()
            .to_string(),
            78..=79 => i64::MAX.to_string(),
            // Parses, and overflows only once multiplied by 1000.
            80 => (i64::MAX / 1000 + 1).to_string(),
            // ms within i64, but past it once added to now.
            81 => (i64::MAX / 1000).to_string(),
            // Just past the latest expiry: whatever the server's clock says,
            // as it reads it after `t`.
            82..=85 => ((latest - t) / 1000 + 1 + rng.random_range(0..=1000)).to_string(),
            // Just short of it, with ten minutes to spare.
            86..=88 => ((latest - t - 600_000) / 1000 - rng.random_range(0..=1000)).to_string(),
            _ => rng
                .random_range(1_000_000_000..=1_000_000_000_000_i64)
                .to_string(),
        }
    };
    ttl.into_bytes()
}

/// A token that fails docs/tokens.md#shape (v1) or #v2-tokens (v2) in one
/// way.
fn malformed(rng: &mut StdRng, token: &[u8]) -> Vec<u8> {
    match parse(token).map(|p| p.version) {
        Some(Version::V2) => malformed_v2(rng, token),
        _ => malformed_v1(rng, token),
    }
}

fn malformed_v1(rng: &mut StdRng, token: &[u8]) -> Vec<u8> {
    let mut t = token.to_vec();
    match rng.random_range(0..11) {
        0 => {
            t.pop();
        }
        1 => t.push(*b"0a.".choose(rng).unwrap()),
        2 => t[..3].copy_from_slice(
            *[b"v2.", b"V1.", b"v1-", b"x1.", b"1v."]
                .choose(rng)
                .unwrap(),
        ),
        3 => t[19] = *b"-_:,/ \0".choose(rng).unwrap(),
        // An uppercase hex letter in the signature.
        4 => uppercase_hex(rng, &mut t, 20),
        5 => t[3 + rng.random_range(0..16)] = *b"-_. \0\xff\x80+/=".choose(rng).unwrap(),
        6 => t[20 + rng.random_range(0..64)] = *b"gGzAF \0\xff.".choose(rng).unwrap(),
        7 => t.make_ascii_uppercase(),
        8 => {
            if rng.random_ratio(50, 100) {
                t.insert(0, b' ');
            } else {
                t.push(b' ');
            }
        }
        9 => t.truncate(rng.random_range(0..84)),
        _ => t.extend_from_slice(token),
    }
    t
}

/// An uppercase hex letter in the signature that starts at `from`.
fn uppercase_hex(rng: &mut StdRng, t: &mut [u8], from: usize) {
    let start = rng.random_range(0..64);
    let at = (0..64)
        .map(|i| from + (start + i) % 64)
        .find(|&i| t[i].is_ascii_lowercase())
        .unwrap_or(from);
    t[at] = t[at].to_ascii_uppercase().max(b'A');
}

/// `v2.{<tag>}.<id>.<signature>` broken in one place.
fn malformed_v2(rng: &mut StdRng, token: &[u8]) -> Vec<u8> {
    let mut t = token.to_vec();
    let n = t.len();
    // Where the tag ends (its `}`), the id starts, the signature starts.
    let (brace, id_at, sig_at) = (n - 83, n - 81, n - 64);
    match rng.random_range(0..16) {
        0 => {
            t.pop();
        }
        1 => t.push(*b"0a.}".choose(rng).unwrap()),
        2 => t[..4].copy_from_slice(
            *[b"v3.{", b"V2.{", b"v2.[", b"v2:{", b"v1.{", b"v2{."]
                .choose(rng)
                .unwrap(),
        ),
        3 => t[brace] = *b")]:-{".choose(rng).unwrap(),
        4 => uppercase_hex(rng, &mut t, sig_at),
        5 => t[id_at + rng.random_range(0..16)] = *b"-_. \0\xff{}".choose(rng).unwrap(),
        6 => t[sig_at + rng.random_range(0..64)] = *b"gGzAF \0\xff.".choose(rng).unwrap(),
        7 => t.make_ascii_uppercase(),
        8 => {
            if rng.random_ratio(50, 100) {
                t.insert(0, b' ');
            } else {
                t.push(b' ');
            }
        }
        9 => t.truncate(rng.random_range(0..n)),
        10 => t.extend_from_slice(token),
        // No tag at all.
        11 => t = [&b"v2.{"[..], &token[brace..]].concat(),
        // Four characters of tag.
        12 => t.insert(brace, *ALNUM.choose(rng).unwrap()),
        13 => t[4 + rng.random_range(0..brace - 4)] = *b"_-{}. \0".choose(rng).unwrap(),
        // An id one character short.
        14 => {
            t.remove(id_at + rng.random_range(0..16));
        }
        _ => t[sig_at - 1] = *b"-_:,/ \0".choose(rng).unwrap(),
    }
    t
}

// ---------------------------------------------------------------------------
// The driver.

fn describe(op: &Op) -> String {
    match op {
        Op::Command { args, resp3, watch } => format!(
            "{}{}{}",
            if *resp3 { "[resp3] " } else { "" },
            if *watch { "[watched] " } else { "" },
            args.iter().map(|a| show(a)).collect::<Vec<_>>().join(" ")
        ),
        Op::Config { name, value } => format!("CONFIG SET {name} {value}"),
        Op::Inject(Injection {
            keyref,
            version,
            tag,
            id,
            ttl,
            payloads,
        }) => format!(
            "(plain Redis) {version:?} session {}{} of {} with ttl {ttl:?}, payloads {}",
            if *version == Version::V2 {
                format!("{{{}}}.", String::from_utf8_lossy(tag))
            } else {
                String::new()
            },
            show(id),
            show(keyref),
            payloads
                .iter()
                .map(|(n, d)| format!("{} = {}", show(n), show(d)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Op::Damage { handle, harm } => {
            format!("(plain Redis) {harm:?} to the record of {}", show(handle))
        }
        Op::Repair { handle } => format!("(plain Redis) record of {} put back", show(handle)),
        Op::Reload { good: true } => "SESSIONGATE.KEYRING RELOAD of the next generation".into(),
        Op::Reload { good: false } => "SESSIONGATE.KEYRING RELOAD of a bad file".into(),
    }
}

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    let value = value.trim();
    let parsed = match value.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => value.parse(),
    };
    Some(parsed.unwrap_or_else(|e| panic!("{name}={value}: {e}")))
}

/// Outcomes every default-length run must reach, or the generator has a
/// blind spot and a pass would mean less than it says.
fn required_coverage() -> Vec<String> {
    let mut required = vec![
        "start ttl 0".to_string(),
        "expire ttl 0".into(),
        "pdel ok, no such name".into(),
        "start BadTtl".into(),
        "start EmptySignKey".into(),
        "start UnknownRing".into(),
        "v2 start ok".into(),
        "v2 start ttl 0".into(),
        "start ttl past 2^53".into(),
        "expire ttl past 2^53".into(),
        "v2 expire ttl 0".into(),
        "v2 expire BadTtl".into(),
    ];
    for cmd in COMMANDS {
        let cmd = short(cmd);
        required.push(format!("{cmd} ok"));
        required.push(format!("{cmd} Arity"));
        if cmd == "start" {
            continue;
        }
        required.push(format!("{cmd} UnknownRing"));
        required.push(format!("{cmd} Unreadable"));
        for rej in [
            "EmptySignKey",
            "EmptyToken",
            "BadFormat",
            "Forged",
            "Missing",
            "Stale",
        ] {
            required.push(format!("{cmd} {rej}"));
        }
        for outcome in ["ok", "BadFormat", "Forged", "Missing", "Stale"] {
            required.push(format!("v2 {cmd} {outcome}"));
        }
    }
    required.push("expire BadTtl".into());
    for cmd in ["pset", "pget", "pdel", "pmget", "pmset"] {
        required.push(format!("{cmd} EmptyName"));
        required.push(format!("{cmd} LongName"));
    }
    for cmd in ["pset", "pmset"] {
        for rej in ["EmptyData", "LongData", "TooMany"] {
            required.push(format!("{cmd} {rej}"));
        }
    }
    required.push("set ok past the payload limit".into());
    required.push("ttl ok, no expiry".into());
    required.push("v2 ttl ok, no expiry".into());
    required.push("watch aborted".into());
    required.push("watch kept".into());
    required.push("v2 watch aborted".into());
    required.push("inject with expiry".into());
    required.push("inject without expiry".into());
    required.push("v2 inject with expiry".into());
    required.push("v2 inject without expiry".into());
    required.push("pget NoPayload".into());
    required.push("pdel NoPayload".into());
    required.push("v2 pdel NoPayload".into());
    required.push("damage garbage".into());
    required.push("damage no record".into());
    required.push("repair record".into());
    required.push("config token-version refused".into());
    required.push("keyring reload".into());
    required.push("keyring reload refused".into());
    required.push("start with a ring".into());
    required.push("v2 start with a ring".into());
    required
}

/// Notes of `Model::check` every default-length run must reach, with any
/// command, for a v1 token and for a v2 one.
const REQUIRED_NOTES: [&str; 4] = [
    "via a verify secret",
    "raw ring secret",
    "a retired ring secret",
    "a ring of another user",
];

fn run_command(
    con: &mut Connection,
    model: &mut Model,
    args: &[Vec<u8>],
    resp3: bool,
    watch: bool,
) -> Result<(), String> {
    let watched = args
        .get(2)
        .filter(|token| watch && parse(token).is_some())
        .map(|token| keys_of(token));
    if let Some(keys) = &watched {
        let mut cmd = vec![b"WATCH".to_vec()];
        cmd.extend(keys.iter().cloned());
        expect(&call(con, &cmd), &Ok(Value::Okay))?;
    }
    let t0 = now_ms();
    let got = call(con, args);
    let t1 = now_ms();
    model.step(args, resp3, &got, t0, t1)?;
    if watched.is_some() {
        // README: a failed check (or a read) leaves WATCH alone; a write
        // signals the keys it changed.
        expect(&call(con, &["MULTI"]), &Ok(Value::Okay))?;
        let (expected, outcome) = if model.wrote {
            (Value::Nil, "aborted")
        } else {
            (Value::Array(vec![]), "kept")
        };
        model.tally("watch", outcome);
        expect(&call(con, &["EXEC"]), &Ok(expected))
            .map_err(|e| format!("EXEC after WATCH of the session's keys: {e}"))?;
    }
    Ok(())
}

/// Writes a session with plain Redis: v1 in the C module's layout, v2 as
/// START's hash with its record (docs/keys.md#v2-record).
fn inject(con: &mut Connection, model: &mut Model, injection: Injection) -> Result<(), String> {
    let Injection {
        keyref,
        version,
        tag,
        id,
        ttl,
        payloads,
    } = injection;
    let secret = model.signing_secret(&keyref);
    let token = mint(version, &secret, &tag, &id);
    let created = now_ms();
    let at = ttl.map(|seconds| created + seconds * 1000);
    let at_arg = |at: i64| at.to_string().into_bytes();
    let fields = payloads.iter().flat_map(|(n, d)| [n.clone(), d.clone()]);
    match version {
        Version::V1 => {
            let mut set = vec![
                b"SET".to_vec(),
                signature_key(&id),
                token[20..].to_vec(),
                b"NX".to_vec(),
            ];
            if let Some(at) = at {
                set.extend([b"PXAT".to_vec(), at_arg(at)]);
            }
            expect(&call(con, &set), &Ok(Value::Okay))?;
            if !payloads.is_empty() {
                let mut hset = vec![b"HSET".to_vec(), payloads_key(&id)];
                hset.extend(fields);
                call(con, &hset).map_err(|e| format!("HSET: {e}"))?;
                if let Some(at) = at {
                    let pexpireat = [b"PEXPIREAT".to_vec(), payloads_key(&id), at_arg(at)];
                    expect(&call(con, &pexpireat), &Ok(Value::Int(1)))?;
                }
            }
        }
        Version::V2 => {
            let key = v2_key(&tag, &id);
            let binding = stored_part(&parse(&token).expect("minted")).to_vec();
            let mut hset = vec![b"HSET".to_vec(), key.clone(), Vec::new()];
            hset.push(record(&binding, created));
            hset.extend(fields);
            call(con, &hset).map_err(|e| format!("HSET: {e}"))?;
            if let Some(at) = at {
                let pexpireat = [b"PEXPIREAT".to_vec(), key, at_arg(at)];
                expect(&call(con, &pexpireat), &Ok(Value::Int(1)))?;
            }
        }
    }
    model.inject(keyref, secret, token, at, created, payloads);
    Ok(())
}

/// Spoils the record of the v2 session `handle` with plain Redis, after
/// checking that it is the one the module wrote.
fn damage(
    con: &mut Connection,
    model: &mut Model,
    handle: Handle,
    harm: Harm,
) -> Result<(), String> {
    let got = call(con, &[&b"HGET"[..], &handle, b""]);
    let Ok(Value::BulkString(original)) = got else {
        return Err(format!("HGET of the record: {}", reply(&got)));
    };
    let session = model.session(&handle);
    let created = Model::check_record(session, &original)?;
    session.created = (created, created);
    let garbage = harm.apply(&original);
    match &garbage {
        Some(garbage) => expect(
            &call(con, &[&b"HSET"[..], &handle, b"", garbage]),
            &Ok(Value::Int(0)),
        )?,
        None => expect(
            &call(con, &[&b"HDEL"[..], &handle, b""]),
            &Ok(Value::Int(1)),
        )?,
    }
    model.v2_context = false;
    model.tally(
        "damage",
        if garbage.is_some() {
            "garbage"
        } else {
            "no record"
        },
    );
    model.session(&handle).damage = Some(Damage { original, garbage });
    Ok(())
}

/// Puts back the record `damage` took: the session reads again, as it was.
fn repair(con: &mut Connection, model: &mut Model, handle: Handle) -> Result<(), String> {
    let damage = model
        .session(&handle)
        .damage
        .take()
        .expect("a damaged session");
    let added = i64::from(damage.garbage.is_none());
    expect(
        &call(con, &[&b"HSET"[..], &handle, b"", &damage.original]),
        &Ok(Value::Int(added)),
    )?;
    model.v2_context = false;
    model.tally("repair", "record");
    Ok(())
}

/// Rotates ring `app` (`keyring_at`) with a RELOAD of the next generation's
/// file; or RELOADs a file that breaks a rule, which must be refused with
/// its line and leave the keyring as it was (docs/keyrings.md#reload).
fn reload(con: &mut Connection, model: &mut Model, path: &Path, good: bool) -> Result<(), String> {
    let reload = || ["SESSIONGATE.KEYRING", "RELOAD"];
    model.v2_context = false;
    if good {
        let generation = model.generation + 1;
        std::fs::write(path, keyring_text(generation)).expect("write the keyring file");
        expect(&call(con, &reload()), &Ok(Value::Okay))?;
        model.generation = generation;
        model.keyring = Some(keyring_at(generation));
        model.tally("keyring", "reload");
    } else {
        let next = BASE64.encode(app_primary(model.generation + 1));
        let text = format!("app primary {next}\napp verify not*base64=\n");
        std::fs::write(path, text).expect("write the keyring file");
        let refused = "ERR keyring file line 2: <secret> is not standard base64 with padding";
        expect(&call(con, &reload()), &Err(refused.into()))?;
        model.tally("keyring", "reload refused");
    }
    check_list(con, model)
}

/// docs/keyrings.md#keyring-list: per ring in name order, its name and each
/// secret's state and fingerprint, the primary first.
fn check_list(con: &mut Connection, model: &Model) -> Result<(), String> {
    let bulk = |s: &[u8]| Value::BulkString(s.to_vec());
    let rings = model.keyring.iter().flatten().map(|(name, ring)| {
        let secrets = ring.secrets.iter().enumerate().map(|(i, secret)| {
            let state = if i == 0 { "primary" } else { "verify" };
            Value::Array(vec![
                bulk(state.as_bytes()),
                bulk(fingerprint(secret).as_bytes()),
            ])
        });
        Value::Array(vec![bulk(name), Value::Array(secrets.collect())])
    });
    let got = call(con, &["SESSIONGATE.KEYRING", "LIST"]);
    expect(&got, &Ok(Value::Array(rings.collect()))).map_err(|e| format!("KEYRING LIST: {e}"))
}

fn fail(i: usize, recent: &VecDeque<String>, replay: &str, why: String) -> ! {
    panic!(
        "the module and the model disagree at operation {i}: {why}\n\
         last operations, oldest first:\n  {}\n\
         replay: {replay} cargo test --test model",
        recent.iter().cloned().collect::<Vec<_>>().join("\n  ")
    )
}

#[test]
fn the_module_replies_as_the_model_predicts_to_random_command_sequences() {
    let seed = env_number("SESSIONGATE_MODEL_SEED").unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            ^ u64::from(std::process::id()) << 32
    });
    let ops = env_number("SESSIONGATE_MODEL_OPS").map_or(DEFAULT_OPS, |n| n as usize);
    let replay = format!("SESSIONGATE_MODEL_SEED={seed} SESSIONGATE_MODEL_OPS={ops}");
    eprintln!("model test: {replay}");
    let began = Instant::now();

    // The keyring file, in the server's directory, read as it loads.
    let dir = fresh_dir();
    let keyring_file = dir.join("keyring");
    std::fs::write(&keyring_file, keyring_text(0)).expect("write the keyring file");
    std::fs::set_permissions(&keyring_file, std::fs::Permissions::from_mode(0o600))
        .expect("chmod the keyring file");
    let keyring_arg = keyring_file.to_str().expect("test paths are UTF-8");
    let server = Server::start_in(dir.clone(), &["keyring-file", keyring_arg]);
    let mut resp2 = server.connection();
    let mut resp3 = server.connection_resp3();
    let limit = INITIAL_DATA_LIMIT.to_string();
    assert_eq!(
        call(
            &mut resp2,
            &["CONFIG", "SET", "sessiongate.max-payload-data-len", &limit]
        ),
        Ok(Value::Okay)
    );
    let mut model = Model::new(INITIAL_DATA_LIMIT);
    model.keyring = Some(keyring_at(0));
    if let Err(why) = check_list(&mut resp2, &model) {
        panic!("{}", server.failure(&why));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut recent: VecDeque<String> = VecDeque::new();
    if rng.random_ratio(1, 2) {
        assert_eq!(
            call(
                &mut resp2,
                &["CONFIG", "SET", "sessiongate.token-version", "2"]
            ),
            Ok(Value::Okay)
        );
        model.token_version = Version::V2;
        recent.push_back("CONFIG SET sessiongate.token-version 2".into());
    }

    for i in 0..ops {
        let op = model.generate(&mut rng);
        recent.push_back(format!("#{i} {}", describe(&op)));
        if recent.len() > 12 {
            recent.pop_front();
        }
        let outcome = match op {
            Op::Command {
                args,
                resp3: on_resp3,
                watch,
            } => {
                let con = if on_resp3 { &mut resp3 } else { &mut resp2 };
                run_command(con, &mut model, &args, on_resp3, watch)
            }
            Op::Inject(injection) => inject(&mut resp2, &mut model, injection),
            Op::Damage { handle, harm } => damage(&mut resp2, &mut model, handle, harm),
            Op::Repair { handle } => repair(&mut resp2, &mut model, handle),
            Op::Reload { good } => reload(&mut resp2, &mut model, &keyring_file, good),
            Op::Config { name, value } => {
                let got = call(&mut resp2, &["CONFIG", "SET", name, &value.to_string()]);
                let value = usize::try_from(value).unwrap_or(0);
                match name {
                    "sessiongate.token-version" => match value {
                        1 => model.token_version = Version::V1,
                        2 => model.token_version = Version::V2,
                        _ => {
                            // docs/configuration.md#refused-values: Redis'
                            // own error, and the old value kept.
                            model.v2_context = false;
                            model.tally("config", "token-version refused");
                            let refused =
                                matches!(&got, Err(e) if e.starts_with("ERR CONFIG SET failed"));
                            if !refused {
                                fail(
                                    i,
                                    &recent,
                                    &replay,
                                    format!("expected Redis' refusal, got {}", reply(&got)),
                                );
                            }
                            continue;
                        }
                    },
                    "sessiongate.max-payload-name-len" => model.name_limit = value,
                    "sessiongate.max-payload-data-len" => model.data_limit = value,
                    _ => model.max_payloads = value,
                }
                expect(&got, &Ok(Value::Okay))
            }
        };
        if let Err(why) = outcome {
            fail(i, &recent, &replay, why);
        }
        if (i + 1) % CHECK_EVERY == 0 || i + 1 == ops {
            if let Err(why) = model.check_keyspace(&mut resp2) {
                fail(i, &recent, &replay, format!("keyspace check: {why}"));
            }
        }
    }

    let elapsed = began.elapsed();
    eprintln!(
        "model test: {ops} operations in {elapsed:.1?}, {} live sessions at the end, \
         {} ambiguous overflow checks, {} v2 tokens minted in {} slots; outcomes:",
        model.live.len(),
        model.ambiguous_ttls.get(),
        model.v2_minted,
        model.v2_tags.len()
    );
    for (outcome, n) in &model.coverage {
        eprintln!("  {outcome:<32} {n}");
    }
    // docs/tokens.md#minting: a v2 START takes a random slot. n tokens in
    // uniformly random slots fill 16384 (1 - (1 - 1/16384)^n) of them on
    // average, with a spread far below 5% of that.
    if model.v2_minted >= 100 {
        let expected = 16384.0 * (1.0 - (1.0 - 1.0 / 16384.0_f64).powf(model.v2_minted as f64));
        assert!(
            model.v2_tags.len() as f64 >= 0.95 * expected,
            "{} v2 tokens fell in only {} slots, {expected:.0} expected ({replay})",
            model.v2_minted,
            model.v2_tags.len()
        );
    }
    if ops >= DEFAULT_OPS {
        let notes = REQUIRED_NOTES.iter().filter(|note| {
            let for_v2 = |k: &&String| k.starts_with("v2 ");
            let mut seen = model.coverage.keys().filter(|k| k.ends_with(*note));
            !(seen.clone().any(|k| !for_v2(&k)) && seen.any(|k| for_v2(&k)))
        });
        let missing: Vec<String> = required_coverage()
            .into_iter()
            .filter(|o| !model.coverage.contains_key(o))
            .chain(notes.map(|note| format!("any command {note}")))
            .collect();
        assert!(
            missing.is_empty(),
            "{ops} operations never reached {missing:?} ({replay})"
        );
    }
}
