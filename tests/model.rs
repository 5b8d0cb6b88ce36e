//! A randomized model test. `Model` is an in-memory reference of the
//! contract, written from the docs (docs/errors.md, docs/tokens.md,
//! docs/keys.md, docs/keyrings.md, docs/events-and-info.md,
//! docs/commands.md#session-lifecycle) and the README
//! (the extra commands TTL, PGETALL, PMGET and PMSET, the configurations
//! and the INFO counters), with no help from the module's code. A seeded
//! driver sends long random command sequences to a real redis-server with
//! the module, and every reply must be the one the model predicts: same
//! type, same bytes, same error text. Every few hundred operations the
//! keyspace itself (DBSIZE, each session's keys, their values and
//! PEXPIRETIME, a v2 session's record, each owner's index) and the INFO
//! counters are compared too.
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
//! The session lifecycle (docs/commands.md#session-lifecycle) runs among
//! the older commands: START with MAXLIFE and LABEL, deadlines clamping
//! every expiry, `default-max-lifetime` flipping; ROTATE of v1 and v2
//! sessions; OSTART, OLIST and OEND over a few owners (braces included),
//! with LIMIT, EVICT, REJECT and `max-sessions-per-owner`, each owner's
//! index kept in the model and compared with the keyspace; INSPECT. Plain
//! Redis also deletes sessions outright, as `maxmemory` eviction would,
//! leaving index entries behind.
//!
//! `SESSIONGATE_MODEL_SEED` replays a seed (a failure prints it), and
//! `SESSIONGATE_MODEL_OPS` sets how many operations to run.
//!
//! Time is hardly slept on: sessions meant to live get 1000 s or more (and
//! deadlines as much), ttl 0 ends them at once, and each command's clock
//! reading is bracketed by the client's own readings before and after it
//! (`t0 ≤ now ≤ t1`), so expiries, `created` and deadlines are intervals
//! that PEXPIRETIME and the record later pin down. A command that shows
//! them (INSPECT, OLIST) or orders by them (LIMIT's eviction) is preceded
//! by that pinning. The one session meant to expire, every 5,000
//! operations, is an owner's with a ttl of 1 s, left alone for 3,000
//! operations (`doom`, `resolve`), which usually outlast the second.

mod common;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use common::errors::*;
use common::slots::{canonical_tag, key_hash_slot};
use common::*;
use rand::distr::Alphanumeric;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{RngExt, SeedableRng};
use redis::Connection;
use sha2::{Digest, Sha256};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
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
/// Every this many operations, from operation EPISODE_AT on, an owner's
/// session is started with a ttl of 1 s, and EPISODE_WINDOW operations
/// later it has expired (`doom`, `resolve`).
const EPISODE_EVERY: usize = 5_000;
const EPISODE_AT: usize = 500;
const EPISODE_WINDOW: usize = 3_000;

const SIGN_KEYS: [&[u8]; 3] = [b"mykey", b"another key", b"\0bin\xffkey\r\n"];

/// docs/tokens.md#expiry: the latest expiry of a v2 session, in Unix ms.
const V2_MAX_EXPIRY_MS: i64 = 1 << 53;

/// The owners of owner commands: few, so that they gather sessions, and
/// some with braces, whose slot is their hash tag's as Redis Cluster
/// hashes keys (docs/commands.md#owner-commands): `a{b}c` and `{b}` share
/// a slot, `{}` and `x{}y` hash whole, `a{b{c}d}` as `b{c`.
const OWNERS: [&[u8]; 8] = [
    b"user:42",
    b"user:7",
    b"a{b}c",
    b"{b}",
    b"{}",
    b"x{}y",
    b"a{b{c}d}",
    b"\0bin\xff{owner",
];

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

fn is_canonical(tag: &[u8]) -> bool {
    (1..=3).contains(&tag.len())
        && tag.iter().all(u8::is_ascii_alphanumeric)
        && canonical_tag(key_hash_slot(tag)).as_bytes() == tag
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

/// docs/commands.md#rotate: the canonical tag of a v1 token's slot, the
/// whole token hashed (it has no brace).
fn slot_tag(token: &[u8]) -> Vec<u8> {
    canonical_tag(key_hash_slot(token)).as_bytes().to_vec()
}

/// The canonical tag of the owner's slot: its index's, and its sessions'.
fn owner_tag(owner: &[u8]) -> Vec<u8> {
    canonical_tag(key_hash_slot(owner)).as_bytes().to_vec()
}

/// docs/keys.md#owner-index: `r.<ring>` for `@<ring>`; for a raw key `k.`
/// and the first 8 bytes, hex, of HMAC-SHA256(key, `sessiongate owner
/// namespace`).
fn namespace(keyref: &[u8]) -> Vec<u8> {
    match keyref.strip_prefix(b"@") {
        Some(ring) => [b"r.", ring].concat(),
        None => {
            let mac = hmac_hex(keyref, b"sessiongate owner namespace");
            [b"k.", &mac.as_bytes()[..16]].concat()
        }
    }
}

/// `sg-owner:{<tag>}:<ns>:<owner>`.
fn index_name(owner: &[u8], ns: &[u8]) -> Vec<u8> {
    [b"sg-owner:{", &owner_tag(owner)[..], b"}:", ns, b":", owner].concat()
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

/// docs/keys.md#v2-record: format 1, the binding, the creation time, then
/// each optional part the session has, in this order: `d` and the deadline,
/// `o` and the owner (2-byte length) with its namespace (1-byte length),
/// `l` and the label (2-byte length); integers big-endian.
fn record(
    binding: &[u8],
    created: i64,
    deadline: Option<i64>,
    owner: Option<&(Vec<u8>, Vec<u8>)>,
    label: Option<&[u8]>,
) -> Vec<u8> {
    let mut bytes = [&[1u8][..], binding, &created.to_be_bytes()].concat();
    if let Some(deadline) = deadline {
        bytes.push(b'd');
        bytes.extend_from_slice(&deadline.to_be_bytes());
    }
    if let Some((name, namespace)) = owner {
        bytes.push(b'o');
        bytes.extend_from_slice(&(name.len() as u16).to_be_bytes());
        bytes.extend_from_slice(name);
        bytes.push(namespace.len() as u8);
        bytes.extend_from_slice(namespace);
    }
    if let Some(label) = label {
        bytes.push(b'l');
        bytes.extend_from_slice(&(label.len() as u16).to_be_bytes());
        bytes.extend_from_slice(label);
    }
    bytes
}

/// Steps 4 and 5 (docs/errors.md#check-order): a token of either version's
/// exact shape.
fn token_of(token: &[u8]) -> Result<Parts<'_>, Rej> {
    if token.is_empty() {
        return Err(Rej::EmptyToken);
    }
    parse(token).ok_or(Rej::BadFormat)
}

/// Whether `expiry` certainly passes the deadline, so that it is clamped.
fn clamped(expiry: (i64, i64), deadline: Option<(i64, i64)>) -> bool {
    deadline.is_some_and(|(_, hi)| expiry.0 > hi)
}

/// The earlier of two instants known as intervals: an expiry no later than
/// the deadline (docs/commands.md#maxlife).
fn clamp(expiry: (i64, i64), deadline: Option<(i64, i64)>) -> (i64, i64) {
    match deadline {
        Some((lo, hi)) => (expiry.0.min(lo), expiry.1.min(hi)),
        None => expiry,
    }
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
    // docs/errors.md#lifecycle-errors
    BadMaxlife,
    EmptyLabel,
    LongLabel,
    EmptyOwner,
    LongOwner,
    BadLimit,
    BadId,
    NotTheOwners,
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
        /// v2: the deadline (MAXLIFE's, or default-max-lifetime's).
        deadline: Option<(i64, i64)>,
        label: Option<Vec<u8>>,
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
    Inspect {
        handle: Handle,
        /// The token verified only with a `verify` secret of its ring.
        stale: bool,
    },
    OStart {
        keyref: Vec<u8>,
        secret: Vec<u8>,
        owner: Vec<u8>,
        ttl: Ttl,
        deadline: Option<(i64, i64)>,
        label: Option<Vec<u8>>,
        /// LIMIT's n, and whether it said REJECT.
        limit: Option<(usize, bool)>,
    },
    OList {
        owner: Vec<u8>,
        ns: Vec<u8>,
    },
    OEnd {
        owner: Vec<u8>,
        ns: Vec<u8>,
        which: Which,
    },
    Rotate {
        handle: Handle,
        keyref: Vec<u8>,
        /// What signs the new token: the raw key, or the ring's primary.
        secret: Vec<u8>,
        /// `None`: the expiry is kept.
        ttl: Option<Ttl>,
    },
}

/// Which of an owner's sessions OEND ends (docs/commands.md#oend).
enum Which {
    All,
    AllBut(Vec<u8>),
    These(Vec<Vec<u8>>),
}

/// An owner's index as the model knows it (docs/keys.md#owner-index).
struct OwnerIndex {
    /// Session id → its score, the session's expiry, in `[lo, hi]`.
    members: BTreeMap<Vec<u8>, (i64, i64)>,
    /// The key's own expiry: the latest score it held since it was made.
    expires: (i64, i64),
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
    expires: Option<(i64, i64)>,
    payloads: BTreeMap<Vec<u8>, Vec<u8>>,
    /// v2: when the session was created, in `[lo, hi]` (the record's
    /// `created`), exact once the keyspace check has read it.
    created: (i64, i64),
    /// v2: a record spoiled by plain Redis.
    damage: Option<Damage>,
    /// v2: the deadline no expiry passes (docs/commands.md#maxlife), in
    /// `[lo, hi]`, exact once the record has been read.
    deadline: Option<(i64, i64)>,
    /// v2: the owner and the namespace of its index (docs/keys.md#owner-index).
    owner: Option<(Vec<u8>, Vec<u8>)>,
    label: Option<Vec<u8>>,
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
    sessions_rotated: u64,
    sessions_evicted: u64,
    sessions_ended_by_owner: u64,
}

impl Counters {
    fn fields(&self) -> [(&'static str, u64); 14] {
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
            ("sessions_rotated", self.sessions_rotated),
            ("sessions_evicted", self.sessions_evicted),
            ("sessions_ended_by_owner", self.sessions_ended_by_owner),
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
    /// `sessiongate.default-max-lifetime`, seconds; 0: none.
    default_max_lifetime: i64,
    /// `sessiongate.max-sessions-per-owner`; 0: none.
    max_sessions: usize,
    /// Owners' indexes, by key name.
    indexes: BTreeMap<Vec<u8>, OwnerIndex>,
    /// The owners the generator sends.
    owners: Vec<Vec<u8>>,
    /// The session OSTART last started, for the driver.
    started: Option<Handle>,
    /// A session left to expire: the model cannot tell when it is gone
    /// until the episode's end, so nothing touches it or its owner.
    doomed: Option<Doomed>,
}

/// An expiry episode under way (`doom`, `resolve`).
struct Doomed {
    handle: Handle,
    keyref: Vec<u8>,
    owner: Vec<u8>,
    /// Whether a long-lived session of the same owner keeps the index
    /// alive; without one, the index expires with the doomed session.
    companion: bool,
    /// The operation at which it has expired.
    until: usize,
}

/// The session lifecycle's commands (docs/commands.md#session-lifecycle),
/// after common's COMMANDS in the generator's table.
const LIFECYCLE_COMMANDS: [&str; 5] = [
    "sessiongate.inspect",
    "sessiongate.rotate",
    "sessiongate.ostart",
    "sessiongate.olist",
    "sessiongate.oend",
];

fn short(cmd: &str) -> &str {
    cmd.strip_prefix("sessiongate.").unwrap_or(cmd)
}

fn arity_ok(cmd: &str, args: &[Vec<u8>]) -> bool {
    let words = args.len();
    match short(cmd) {
        // docs/commands.md#options: the options' shape is step 1 too.
        "start" => words >= 3 && options(&args[3..], START_OPTIONS).is_some(),
        "rotate" => words >= 3 && options(&args[3..], ROTATE_OPTIONS).is_some(),
        "ostart" => words >= 4 && options(&args[4..], OSTART_OPTIONS).is_some(),
        // docs/commands.md#oend: EXCEPT and one token, or ID and ids.
        "oend" => match &args[3.min(words)..] {
            [] => true,
            [word, _] if word.eq_ignore_ascii_case(b"EXCEPT") => true,
            [word, _, ..] => word.eq_ignore_ascii_case(b"ID"),
            _ => false,
        },
        "end" | "ttl" | "pgetall" | "inspect" | "olist" => words == 3,
        "expire" | "pget" | "pdel" => words == 4,
        "pset" => words == 5,
        "pmget" => words >= 4,
        "pmset" => words >= 5 && words % 2 == 1,
        other => panic!("the generator sent an unknown command {other}"),
    }
}

/// A keyword option (docs/commands.md#options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keyword {
    Maxlife,
    Label,
    Limit,
    Ttl,
}

impl Keyword {
    fn name(self) -> &'static str {
        match self {
            Keyword::Maxlife => "maxlife",
            Keyword::Label => "label",
            Keyword::Limit => "limit",
            Keyword::Ttl => "ttl",
        }
    }
}

const START_OPTIONS: &[Keyword] = &[Keyword::Maxlife, Keyword::Label];
const ROTATE_OPTIONS: &[Keyword] = &[Keyword::Ttl];
const OSTART_OPTIONS: &[Keyword] = &[Keyword::Maxlife, Keyword::Label, Keyword::Limit];

/// The options of a command, as given: each keyword with its value, in
/// the order sent, and whether LIMIT said REJECT.
struct Given {
    values: Vec<(Keyword, Vec<u8>)>,
    reject: bool,
}

/// docs/commands.md#options: keywords of `allowed` in any case and order,
/// each with exactly one value (taken as it is, even one that spells a
/// keyword), LIMIT's followed by an optional EVICT or REJECT; `None` for an
/// unknown keyword, a missing value or an option given twice, which is the
/// arity error.
fn options(words: &[Vec<u8>], allowed: &[Keyword]) -> Option<Given> {
    let mut given = Given {
        values: Vec::new(),
        reject: false,
    };
    let mut at = 0;
    while at < words.len() {
        let keyword = *allowed
            .iter()
            .find(|k| words[at].eq_ignore_ascii_case(k.name().as_bytes()))?;
        if given.values.iter().any(|(k, _)| *k == keyword) {
            return None;
        }
        let value = words.get(at + 1)?.clone();
        at += 2;
        if keyword == Keyword::Limit {
            match words.get(at) {
                Some(w) if w.eq_ignore_ascii_case(b"EVICT") => at += 1,
                Some(w) if w.eq_ignore_ascii_case(b"REJECT") => {
                    given.reject = true;
                    at += 1;
                }
                _ => {}
            }
        }
        given.values.push((keyword, value));
    }
    Some(given)
}

/// The options' values, checked.
#[derive(Default)]
struct Values {
    deadline: Option<(i64, i64)>,
    label: Option<Vec<u8>>,
    ttl: Option<Ttl>,
    limit: Option<(usize, bool)>,
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
            default_max_lifetime: 0,
            max_sessions: 1000,
            indexes: BTreeMap::new(),
            owners: OWNERS.iter().map(|o| o.to_vec()).collect(),
            started: None,
            doomed: None,
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
            Rej::BadMaxlife => BAD_MAXLIFE.into(),
            Rej::EmptyOwner => EMPTY_OWNER.into(),
            Rej::LongOwner => OWNER_TOO_LONG.into(),
            Rej::BadLimit => BAD_LIMIT.into(),
            Rej::BadId => BAD_ID.into(),
            Rej::NotTheOwners => NOT_THE_OWNERS.into(),
            Rej::EmptyLabel => EMPTY_LABEL.into(),
            Rej::LongLabel => LABEL_TOO_LONG.into(),
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
        if self.fits(ms, latest, BAD_TTL, got, t0, t1) {
            return Ok(Ttl::Ms(ms));
        }
        if ms <= i64::MAX - t1 {
            self.note("ttl past 2^53");
        }
        Err(Rej::BadTtl)
    }

    /// Whether the server's now plus `ms` is at most `latest`. The server
    /// read its clock somewhere in `[t0, t1]`; only when the answer depends
    /// on where does the reply decide, by being the error `refused` or not
    /// (both answers keep the contract).
    fn fits(
        &self,
        ms: i64,
        latest: i64,
        refused: &str,
        got: &Result<Value, String>,
        t0: i64,
        t1: i64,
    ) -> bool {
        if ms > latest - t0 {
            return false;
        }
        if ms <= latest - t1 {
            return true;
        }
        self.ambiguous_ttls.set(self.ambiguous_ttls.get() + 1);
        !matches!(got, Err(e) if e == refused)
    }

    /// docs/commands.md#maxlife: an integer of at least 1, whose deadline,
    /// now + it, is at most 2^53 ms.
    fn maxlife_of(
        &self,
        arg: &[u8],
        got: &Result<Value, String>,
        t0: i64,
        t1: i64,
    ) -> Result<(i64, i64), Rej> {
        let seconds = redis_integer(arg)
            .filter(|s| *s >= 1)
            .ok_or(Rej::BadMaxlife)?;
        let ms = seconds.checked_mul(1000).ok_or(Rej::BadMaxlife)?;
        if !self.fits(ms, V2_MAX_EXPIRY_MS, BAD_MAXLIFE, got, t0, t1) {
            if ms <= i64::MAX - t1 {
                self.note("maxlife past 2^53");
            }
            return Err(Rej::BadMaxlife);
        }
        Ok((t0 + ms, (t1 + ms).min(V2_MAX_EXPIRY_MS)))
    }

    /// The options' values, left to right (docs/commands.md#options): the
    /// first bad one is the reply.
    fn values_of(
        &self,
        given: &Given,
        got: &Result<Value, String>,
        t0: i64,
        t1: i64,
    ) -> Result<Values, Rej> {
        let mut values = Values::default();
        for (keyword, value) in &given.values {
            match keyword {
                Keyword::Maxlife => values.deadline = Some(self.maxlife_of(value, got, t0, t1)?),
                Keyword::Label => {
                    if value.is_empty() {
                        return Err(Rej::EmptyLabel);
                    }
                    if value.len() > 512 {
                        return Err(Rej::LongLabel);
                    }
                    values.label = Some(value.clone());
                }
                // docs/commands.md#rotate: checked as a v2 session's EXPIRE
                // ttl, whatever the token's version.
                Keyword::Ttl => values.ttl = Some(self.ttl_of(value, Version::V2, got, t0, t1)?),
                Keyword::Limit => {
                    let n = redis_integer(value).filter(|n| *n >= 1);
                    let n = n.ok_or(Rej::BadLimit)? as usize;
                    values.limit = Some((n, given.reject));
                }
            }
        }
        Ok(values)
    }

    /// docs/configuration.md#default-max-lifetime: a new v2 session's
    /// deadline when no MAXLIFE is given, capped at 2^53 ms.
    fn default_deadline(&self, t0: i64, t1: i64) -> Option<(i64, i64)> {
        let ms = self.default_max_lifetime * 1000;
        (ms > 0).then(|| {
            (
                (t0 + ms).min(V2_MAX_EXPIRY_MS),
                (t1 + ms).min(V2_MAX_EXPIRY_MS),
            )
        })
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
        if !arity_ok(cmd, args) {
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
        // 3. START's ttl, for the version it mints: with any option, v2
        // (docs/commands.md#start); then the options' values
        if short(cmd) == "start" {
            if ring.is_some() {
                self.note("with a ring");
            }
            let version = if args.len() > 3 {
                self.note("with options");
                Version::V2
            } else {
                self.token_version
            };
            let ttl = self.ttl_of(&args[2], version, got, t0, t1)?;
            let given = options(&args[3..], START_OPTIONS).expect("checked at step 1");
            let values = self.values_of(&given, got, t0, t1)?;
            let deadline = match (version, values.deadline) {
                (Version::V1, _) => None,
                (Version::V2, Some(deadline)) => Some(deadline),
                (Version::V2, None) => {
                    let deadline = self.default_deadline(t0, t1);
                    if deadline.is_some() {
                        self.note("with the default deadline");
                    }
                    deadline
                }
            };
            return Ok(Plan::Start {
                keyref: keyref.clone(),
                secret: secrets[0].clone(),
                version,
                ttl,
                deadline,
                label: values.label,
            });
        }
        if matches!(short(cmd), "ostart" | "olist" | "oend") {
            return self.check_owner_command(cmd, args, &secrets, got, t0, t1);
        }
        // 4., 5. the token
        let parts = token_of(&args[2])?;
        // 6. EXPIRE's ttl, for the token's version; ROTATE's TTL
        let ttl = match short(cmd) {
            "expire" => Some(self.ttl_of(&args[3], parts.version, got, t0, t1)?),
            "rotate" => {
                let given = options(&args[3..], ROTATE_OPTIONS).expect("checked at step 1");
                self.values_of(&given, got, t0, t1)?.ttl
            }
            _ => None,
        };
        // 7. to 9.
        let (handle, verified) = self.authenticate(keyref, &secrets, &parts)?;
        let session = &self.sessions[&handle];
        let rest = &args[3..];
        Ok(match short(cmd) {
            "expire" => Plan::Expire {
                handle,
                ttl: ttl.expect("parsed above"),
            },
            "end" => Plan::End { handle },
            "ttl" => Plan::Ttl { handle },
            "inspect" => Plan::Inspect {
                handle,
                stale: verified > 0,
            },
            "rotate" => Plan::Rotate {
                handle,
                keyref: keyref.clone(),
                secret: secrets[0].clone(),
                ttl,
            },
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

    /// Steps 7 to 9 (docs/errors.md#check-order): a secret of the keyref
    /// signs the token, its session exists with a record that reads, and
    /// it holds what this token carries; the session, and which secret
    /// verified (0: the signing one).
    fn authenticate(
        &self,
        keyref: &[u8],
        secrets: &[Vec<u8>],
        parts: &Parts,
    ) -> Result<(Handle, usize), Rej> {
        let ring = keyref.starts_with(b"@");
        // 7. HMAC, under any of the keyref's secrets
        let verified = match secrets.iter().position(|secret| signs(secret, parts)) {
            None => {
                // A token its session's own secret signed, which the ring
                // no longer holds.
                let session = self.sessions.get(&home(parts));
                if ring && session.is_some_and(|s| signs(&s.secret, parts)) {
                    self.note("a retired ring secret");
                }
                return Err(Rej::Forged);
            }
            Some(0) => 0,
            Some(i) => {
                self.note("via a verify secret");
                i
            }
        };
        if !ring && is_ring_secret(keyref) {
            self.note("raw ring secret");
        }
        // 8. the session exists
        let handle = home(parts);
        let session = self.sessions.get(&handle).ok_or(Rej::Missing)?;
        // its record reads (v2)
        if session.damage.is_some() {
            return Err(Rej::Unreadable);
        }
        // 9. it stores this token's signature (v1) or binding (v2)
        let own = parse(&session.token).expect("a session's token");
        if stored_part(&own) != stored_part(parts) {
            return Err(Rej::Stale);
        }
        Ok((handle, verified))
    }

    /// docs/errors.md#check-order-of-the-lifecycle-commands for OSTART,
    /// OLIST and OEND, after steps 1 and 2: the owner, then OSTART's ttl
    /// and options, or OEND's EXCEPT token or ids. OSTART's limits are
    /// decided when it is applied, as the module decides them: last.
    fn check_owner_command(
        &self,
        cmd: &str,
        args: &[Vec<u8>],
        secrets: &[Vec<u8>],
        got: &Result<Value, String>,
        t0: i64,
        t1: i64,
    ) -> Result<Plan, Rej> {
        let (keyref, owner) = (&args[1], &args[2]);
        if owner.is_empty() {
            return Err(Rej::EmptyOwner);
        }
        if owner.len() > 512 {
            return Err(Rej::LongOwner);
        }
        let ns = namespace(keyref);
        match short(cmd) {
            "ostart" => {
                let ttl = self.ttl_of(&args[3], Version::V2, got, t0, t1)?;
                let given = options(&args[4..], OSTART_OPTIONS).expect("checked at step 1");
                let values = self.values_of(&given, got, t0, t1)?;
                Ok(Plan::OStart {
                    keyref: keyref.clone(),
                    secret: secrets[0].clone(),
                    owner: owner.clone(),
                    ttl,
                    deadline: values.deadline.or_else(|| self.default_deadline(t0, t1)),
                    label: values.label,
                    limit: values.limit,
                })
            }
            "olist" => Ok(Plan::OList {
                owner: owner.clone(),
                ns,
            }),
            _ => {
                let which = match &args[3..] {
                    [] => Which::All,
                    [word, token] if word.eq_ignore_ascii_case(b"EXCEPT") => {
                        // 4., 5., then the tag before any key is opened,
                        // 7. to 9., then the session's owner.
                        let parts = token_of(token)?;
                        if parts.version != Version::V2 || parts.tag != owner_tag(owner) {
                            self.note("except a token of another slot");
                            return Err(Rej::NotTheOwners);
                        }
                        let (handle, _) = self.authenticate(keyref, secrets, &parts)?;
                        let session = &self.sessions[&handle];
                        if session.owner.as_ref() != Some(&(owner.clone(), ns.clone())) {
                            self.note("except a session of another owner");
                            return Err(Rej::NotTheOwners);
                        }
                        Which::AllBut(parts.id.to_vec())
                    }
                    [_, ids @ ..] => {
                        if let Some(bad) = ids.iter().find(|id| !is_id(id)) {
                            if bad.is_empty() {
                                self.note("an empty id");
                            }
                            return Err(Rej::BadId);
                        }
                        Which::These(ids.to_vec())
                    }
                };
                Ok(Plan::OEnd {
                    owner: owner.clone(),
                    ns,
                    which,
                })
            }
        }
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
        self.v2_context = match short(&cmd) {
            "start" => self.token_version == Version::V2 || args.len() > 3,
            // Always about v2 sessions: no second tally.
            "ostart" | "olist" | "oend" => false,
            _ => args.get(2).is_some_and(|t| t.starts_with(b"v2.")),
        };
        self.judge(&cmd, args, resp3, got, t0, t1)
            .map_err(|why| format!("{why}\n  model before it: {before}"))
    }

    /// What the model knew of the session a command names, for failures.
    fn describe_target(&self, args: &[Vec<u8>]) -> String {
        let limits = format!(
            "max-payload-name-len {}, max-payload-data-len {}, max-payloads-per-session {}, \
             token-version {:?}, default-max-lifetime {}, max-sessions-per-owner {}",
            self.name_limit,
            self.data_limit,
            self.max_payloads,
            self.token_version,
            self.default_max_lifetime,
            self.max_sessions
        );
        let cmd = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
        if let ("ostart" | "olist" | "oend", Some(keyref), Some(owner)) =
            (short(&cmd), args.get(1), args.get(2))
        {
            let name = index_name(owner, &namespace(keyref));
            let tag = owner_tag(owner);
            let members = self.indexes.get(&name).map(|index| {
                index
                    .members
                    .iter()
                    .map(|(id, score)| {
                        let session = self.sessions.get(&v2_key(&tag, id));
                        format!(
                            "{} score {score:?} ({})",
                            show(id),
                            match session {
                                Some(s) if s.damage.is_some() => "record spoiled".to_string(),
                                Some(s) => format!(
                                    "created {:?}, deadline {:?}, owner {:?}",
                                    s.created,
                                    s.deadline,
                                    s.owner.as_ref().map(|(o, ns)| (show(o), show(ns)))
                                ),
                                None => "no session".to_string(),
                            }
                        )
                    })
                    .collect::<Vec<_>>()
            });
            return format!("{limits}; index {}: {members:?}", show(&name));
        }
        let session = args
            .get(2)
            .and_then(|t| parse(t))
            .and_then(|p| self.sessions.get(&home(&p)));
        match session {
            Some(s) => format!(
                "{limits}; session {} live ({}), started with {}, expires {:?}{}, deadline {:?}, \
                 owner {:?}, label {:?}, {} payloads: {}",
                show(&s.token),
                if s.damage.is_some() {
                    "record spoiled"
                } else {
                    "record intact"
                },
                show(&s.keyref),
                s.expires,
                if s.version() == Version::V2 {
                    format!(", created {:?}", s.created)
                } else {
                    String::new()
                },
                s.deadline,
                s.owner.as_ref().map(|(o, ns)| (show(o), show(ns))),
                s.label.as_deref().map(show),
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
                // OSTART may still be refused at its limits: it counts its
                // own outcome.
                if !matches!(plan, Plan::OStart { .. }) {
                    self.tally(cmd, "ok");
                }
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
        let expiry = |ms: i64| (t0.saturating_add(ms), t1.saturating_add(ms));
        match plan {
            Plan::Start {
                keyref,
                secret,
                version,
                ttl,
                deadline,
                label,
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
                        let expires = expiry(ms);
                        if clamped(expires, deadline) {
                            self.tally("start", "clamped by the deadline");
                        }
                        self.live.push(handle.clone());
                        self.sessions.insert(
                            handle,
                            Session {
                                keyref,
                                secret,
                                token,
                                expires: Some(clamp(expires, deadline)),
                                payloads: BTreeMap::new(),
                                created: (t0, t1),
                                damage: None,
                                deadline,
                                owner: None,
                                label,
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
                    Ttl::Ms(ms) => {
                        // docs/commands.md#maxlife: clamped, and OK.
                        let deadline = self.sessions[&handle].deadline;
                        if clamped(expiry(ms), deadline) {
                            self.tally("expire", "clamped by the deadline");
                        }
                        let expires = clamp(expiry(ms), deadline);
                        self.session(&handle).expires = Some(expires);
                        // docs/keys.md#owner-index: the score follows, and
                        // an entry pruned before comes back.
                        let session = &self.sessions[&handle];
                        let id = parse(&session.token).expect("a token").id.to_vec();
                        if let Some((owner, ns)) = session.owner.clone() {
                            self.tally("expire", "ok, owned");
                            self.index_set(index_name(&owner, &ns), id, expires);
                        }
                    }
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
            Plan::Inspect { handle, stale } => {
                // docs/commands.md#inspect: nine pairs, in this order; the
                // driver pinned the session's instants just before.
                let s = &self.sessions[&handle];
                let v2 = s.version() == Version::V2;
                let exact = |known: Option<(i64, i64)>| match known {
                    Some((lo, hi)) if lo == hi => Ok(Value::Int(lo)),
                    None => Ok(Value::Nil),
                    Some(interval) => Err(format!("INSPECT of an unpinned instant {interval:?}")),
                };
                let bytes =
                    |b: Option<&[u8]>| b.map_or(Value::Nil, |b| Value::BulkString(b.to_vec()));
                let id = parse(&s.token).expect("a session's token").id.to_vec();
                let expected = fields(
                    vec![
                        ("version", Value::Int(if v2 { 2 } else { 1 })),
                        ("id", Value::BulkString(id)),
                        ("created", exact(Some(s.created).filter(|_| v2))?),
                        ("expires", exact(s.expires)?),
                        ("deadline", exact(s.deadline)?),
                        ("owner", bytes(s.owner.as_ref().map(|(o, _)| &o[..]))),
                        ("label", bytes(s.label.as_deref())),
                        ("payloads", Value::Int(s.payloads.len() as i64)),
                        ("stale", Value::Int(i64::from(stale))),
                    ],
                    resp3,
                );
                let lifecycle = s.deadline.is_some() || s.label.is_some();
                if stale {
                    self.tally("inspect", "ok, stale");
                }
                if lifecycle {
                    self.tally("inspect", "ok, with a deadline or label");
                }
                expect(got, &Ok(expected))
            }
            Plan::Rotate {
                handle,
                keyref,
                secret,
                ttl,
            } => {
                self.wrote = true;
                self.counters.sessions_rotated += 1;
                self.counters.ids_drawn += 1;
                // docs/commands.md#rotate: a v2 token in the old session's
                // slot, signed with the keyref's signing secret.
                let old = parse(&self.sessions[&handle].token).expect("a session's token");
                let tag = match old.version {
                    Version::V1 => slot_tag(&self.sessions[&handle].token),
                    Version::V2 => old.tag.to_vec(),
                };
                let token = match got {
                    Ok(Value::BulkString(token)) => token.clone(),
                    other => return Err(format!("expected a new token, got {}", reply(other))),
                };
                let minted = parse(&token).filter(|p| p.version == Version::V2 && p.tag == tag);
                let Some(parts) = minted else {
                    return Err(format!(
                        "ROTATE minted {}, not a v2 token with tag {}",
                        show(&token),
                        show(&tag)
                    ));
                };
                if !signs(&secret, &parts) {
                    return Err(format!(
                        "ROTATE's token {} is not signed with the keyref's signing secret {}",
                        show(&token),
                        show(&secret)
                    ));
                }
                let new = home(&parts);
                if self.sessions.contains_key(&new) {
                    return Err(format!(
                        "ROTATE reused the key of a live session: {}",
                        show(&new)
                    ));
                }
                let mut old = self.remove(&handle);
                let v1 = old.version() == Version::V1;
                // docs/commands.md#rotate: the entry leaves the index its
                // record names, and enters its keyref's under the new id.
                if let Some((owner, ns)) = old.owner.take() {
                    let old_id = parse(&old.token).expect("a token").id.to_vec();
                    self.index_remove(&index_name(&owner, &ns), &old_id);
                    let moved = namespace(&keyref);
                    self.tally(
                        "rotate",
                        if moved == ns {
                            "owned"
                        } else {
                            "owned, into another namespace"
                        },
                    );
                    old.owner = Some((owner, moved));
                }
                if v1 {
                    self.tally("rotate", "v1 to v2");
                }
                if keyref != old.keyref {
                    self.tally("rotate", "with another keyref");
                }
                self.forget(old.keyref.clone(), old.token.clone());
                // A v1 session starts its record now, with the default
                // deadline if one is set; a v2 one carries its own.
                let (created, deadline) = if v1 {
                    ((t0, t1), self.default_deadline(t0, t1))
                } else {
                    (old.created, old.deadline)
                };
                let expires = match ttl {
                    None => old.expires,
                    Some(Ttl::Ms(ms)) => Some(expiry(ms)),
                    Some(Ttl::Zero) => {
                        // The session ends; the new token's never starts.
                        self.tally("rotate", "ttl 0");
                        self.forget(keyref, token);
                        return Ok(());
                    }
                };
                if expires.is_some_and(|e| clamped(e, deadline)) {
                    self.tally("rotate", "clamped by the deadline");
                }
                // docs/commands.md#maxlife: the deadline bounds the expiry,
                // and is the expiry of a session that had none (a v1 one
                // written by other means, given the default deadline).
                let expires = match (expires, deadline) {
                    (Some(e), _) => Some(clamp(e, deadline)),
                    (None, Some(deadline)) => {
                        self.tally("rotate", "no expiry, now its deadline");
                        Some(deadline)
                    }
                    (None, None) => None,
                };
                if let (Some((owner, ns)), Some(at)) = (&old.owner, expires) {
                    self.index_set(index_name(owner, ns), parts.id.to_vec(), at);
                }
                self.live.push(new.clone());
                self.sessions.insert(
                    new,
                    Session {
                        keyref,
                        secret,
                        token,
                        expires,
                        payloads: old.payloads,
                        created,
                        damage: None,
                        deadline,
                        owner: old.owner,
                        label: old.label,
                    },
                );
                Ok(())
            }
            Plan::OStart {
                keyref,
                secret,
                owner,
                ttl,
                deadline,
                label,
                limit,
            } => {
                let tag = owner_tag(&owner);
                let ns = namespace(&keyref);
                let ms = match ttl {
                    // docs/commands.md#ostart: START's ttl 0, no limit
                    // looked at.
                    Ttl::Zero => {
                        let token = Self::owned_token(got, &tag, &secret)?;
                        self.tally("ostart", "ttl 0");
                        self.counters.sessions_started += 1;
                        self.counters.ids_drawn += 1;
                        self.forget(keyref, token);
                        return Ok(());
                    }
                    Ttl::Ms(ms) => ms,
                };
                let name = index_name(&owner, &ns);
                let mut live = self.live_entries(&owner, &ns, "ostart", true, t0, t1)?;
                if let Some((n, reject)) = limit {
                    if live.len() >= n {
                        if reject {
                            self.tally("ostart", "refused by LIMIT REJECT");
                            return expect(got, &Err(too_many_sessions(n)));
                        }
                        // The sessions that expire first, until n - 1 remain.
                        for id in live.drain(..=live.len() - n) {
                            self.end(&v2_key(&tag, &id));
                            self.counters.sessions_evicted += 1;
                        }
                        self.tally("ostart", "evicted");
                    }
                }
                if self.max_sessions > 0 && live.len() >= self.max_sessions {
                    self.tally("ostart", "refused by max-sessions-per-owner");
                    return expect(got, &Err(too_many_sessions(self.max_sessions)));
                }
                let token = Self::owned_token(got, &tag, &secret)?;
                let parts = parse(&token).expect("checked");
                let handle = home(&parts);
                if self.sessions.contains_key(&handle) {
                    return Err(format!(
                        "OSTART reused the key of a live session: {}",
                        show(&handle)
                    ));
                }
                self.tally("ostart", "ok");
                self.counters.sessions_started += 1;
                self.counters.ids_drawn += 1;
                let expires = clamp(expiry(ms), deadline);
                if clamped(expiry(ms), deadline) {
                    self.tally("ostart", "clamped by the deadline");
                }
                self.index_set(name, parts.id.to_vec(), expires);
                self.started = Some(handle.clone());
                self.live.push(handle.clone());
                self.sessions.insert(
                    handle,
                    Session {
                        keyref,
                        secret,
                        token,
                        expires: Some(expires),
                        payloads: BTreeMap::new(),
                        created: (t0, t1),
                        damage: None,
                        deadline,
                        owner: Some((owner, ns)),
                        label,
                    },
                );
                Ok(())
            }
            Plan::OList { owner, ns } => {
                // docs/commands.md#olist: live sessions, by created then id;
                // the driver pinned their instants just before.
                let tag = owner_tag(&owner);
                let live = self.live_entries(&owner, &ns, "olist", false, t0, t1)?;
                let mut listed = Vec::new();
                for id in live {
                    let s = &self.sessions[&v2_key(&tag, &id)];
                    let pinned = |(lo, hi): (i64, i64)| {
                        (lo == hi).then_some(lo).ok_or_else(|| {
                            format!("OLIST of an unpinned instant of {}", show(&s.token))
                        })
                    };
                    let created = pinned(s.created)?;
                    let expires = pinned(s.expires.expect("an owned session expires"))?;
                    let deadline = s.deadline.map(pinned).transpose()?;
                    let entry = fields(
                        vec![
                            ("id", Value::BulkString(id.clone())),
                            ("created", Value::Int(created)),
                            ("expires", Value::Int(expires)),
                            ("deadline", deadline.map_or(Value::Nil, Value::Int)),
                            (
                                "label",
                                s.label.clone().map_or(Value::Nil, Value::BulkString),
                            ),
                        ],
                        resp3,
                    );
                    listed.push(((created, id), entry));
                }
                listed.sort_by(|a, b| a.0.cmp(&b.0));
                let outcome = match listed.len() {
                    0 => "ok, none",
                    1 => "ok, one",
                    _ => "ok, several",
                };
                self.tally("olist", outcome);
                let entries = listed.into_iter().map(|(_, entry)| entry).collect();
                expect(got, &Ok(Value::Array(entries)))
            }
            Plan::OEnd { owner, ns, which } => {
                let tag = owner_tag(&owner);
                let live = self.live_entries(&owner, &ns, "oend", true, t0, t1)?;
                let chosen: Vec<Vec<u8>> = live
                    .into_iter()
                    .filter(|id| match &which {
                        Which::All => true,
                        Which::AllBut(kept) => id != kept,
                        Which::These(ids) => ids.contains(id),
                    })
                    .collect();
                let outcome = match (&which, chosen.len()) {
                    (_, 0) => "ok, none ended",
                    (Which::All, _) => "ok, all",
                    (Which::AllBut(_), _) => "ok, all but one",
                    (Which::These(_), _) => "ok, by id",
                };
                self.tally("oend", outcome);
                for id in &chosen {
                    self.end(&v2_key(&tag, id));
                }
                self.counters.sessions_ended_by_owner += chosen.len() as u64;
                expect(got, &Ok(Value::Int(chosen.len() as i64)))
            }
            Plan::Ttl { handle } => {
                // Redis' TTL rounding of the ms left when the server read its
                // clock, somewhere in [t0, t1].
                let round = |left: i64| (left.max(0) + 500) / 1000;
                let (min, max) = match self.session(&handle).expires {
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
            expires: at.map(|at| (at, at)),
            payloads: payloads.into_iter().collect(),
            created: (created, created),
            damage: None,
            deadline: None,
            owner: None,
            label: None,
        };
        self.sessions.insert(handle, session);
    }

    fn session(&mut self, handle: &[u8]) -> &mut Session {
        self.sessions.get_mut(handle).expect("a live session")
    }

    /// A session ended by a command: gone, and out of its owner's index.
    fn end(&mut self, handle: &[u8]) {
        let session = self.remove(handle);
        if let Some((owner, ns)) = &session.owner {
            let id = parse(&session.token).expect("a token").id;
            self.index_remove(&index_name(owner, ns), id);
        }
        self.forget(session.keyref, session.token);
    }

    /// docs/keys.md#owner-index: adds or moves `id`, and raises the index's
    /// own expiry to its score if that is later.
    fn index_set(&mut self, name: Vec<u8>, id: Vec<u8>, at: (i64, i64)) {
        let index = self.indexes.entry(name).or_insert(OwnerIndex {
            members: BTreeMap::new(),
            expires: at,
        });
        index.members.insert(id, at);
        index.expires = (index.expires.0.max(at.0), index.expires.1.max(at.1));
    }

    /// Removes `id`; the index goes with its last member.
    fn index_remove(&mut self, name: &[u8], id: &[u8]) {
        if let Some(index) = self.indexes.get_mut(name) {
            index.members.remove(id);
            if index.members.is_empty() {
                self.indexes.remove(name);
            }
        }
    }

    /// docs/commands.md#owner-commands: the ids of the owner's live
    /// sessions in `ns`, the ones that expire first first (the index's
    /// order: score, then id); with `prune`, the dead entries leave the
    /// index. A live session is one whose score is not past and whose key
    /// is there with a record naming this owner and namespace.
    fn live_entries(
        &mut self,
        owner: &[u8],
        ns: &[u8],
        cmd: &str,
        prune: bool,
        t0: i64,
        t1: i64,
    ) -> Result<Vec<Vec<u8>>, String> {
        let name = index_name(owner, ns);
        let tag = owner_tag(owner);
        let Some(index) = self.indexes.get(&name) else {
            return Ok(Vec::new());
        };
        let (mut live, mut dead) = (Vec::new(), Vec::new());
        for (id, &(lo, hi)) in &index.members {
            let why = if hi < t0 {
                "an expired entry"
            } else if lo < t1 {
                return Err(format!(
                    "the index entry {} may or may not be past",
                    show(id)
                ));
            } else {
                match self.sessions.get(&v2_key(&tag, id)) {
                    Some(s) if s.damage.is_some() => "a spoiled record",
                    Some(s) if s.owner.as_ref().is_some_and(|(o, n)| o == owner && n == ns) => {
                        if lo != hi {
                            return Err(format!("the index entry {} is not pinned", show(id)));
                        }
                        live.push((lo, id.clone()));
                        continue;
                    }
                    Some(_) => "a session of another owner",
                    None => "a session gone by other means",
                }
            };
            dead.push((id.clone(), why));
        }
        for (id, why) in dead {
            if prune {
                self.tally(cmd, &format!("pruned {why}"));
                self.index_remove(&name, &id);
            } else {
                self.tally(cmd, &format!("skipped {why}"));
            }
        }
        live.sort();
        Ok(live.into_iter().map(|(_, id)| id).collect())
    }

    /// An owner's new token: v2, in the owner's slot, signed with `secret`.
    fn owned_token(
        got: &Result<Value, String>,
        tag: &[u8],
        secret: &[u8],
    ) -> Result<Vec<u8>, String> {
        let token = match got {
            Ok(Value::BulkString(token)) => token.clone(),
            other => return Err(format!("expected a new token, got {}", reply(other))),
        };
        match parse(&token) {
            Some(p) if p.version == Version::V2 && p.tag == tag && signs(secret, &p) => Ok(token),
            _ => Err(format!(
                "OSTART minted {}, not a v2 token with tag {} signed with {}",
                show(&token),
                show(tag),
                show(secret)
            )),
        }
    }

    /// Takes a session out of the model.
    fn remove(&mut self, handle: &[u8]) -> Session {
        let session = self.sessions.remove(handle).expect("a live session");
        let at = self.live.iter().position(|l| l == handle).expect("listed");
        self.live.swap_remove(at);
        session
    }

    fn forget(&mut self, keyref: Vec<u8>, token: Vec<u8>) {
        self.ended.push_back((keyref, token));
        if self.ended.len() > ENDED_KEPT {
            self.ended.pop_front();
        }
    }

    /// A v2 record the module wrote for `session` (docs/keys.md#v2-record):
    /// format 1, the token's binding, a `created` and a deadline within what
    /// the model knows, then exactly the owner and label the model has;
    /// that `created` and deadline, or why not.
    fn check_record(session: &Session, bytes: &[u8]) -> Result<(i64, Option<i64>), String> {
        let token = parse(&session.token).expect("a session's token");
        let binding = stored_part(&token);
        let instant = |at: usize| {
            let b = bytes.get(at..at + 8)?;
            Some(i64::from_be_bytes(b.try_into().expect("8 bytes")))
        };
        let within = |at: Option<i64>, (lo, hi): (i64, i64)| at.filter(|at| (lo..=hi).contains(at));
        let created = within(instant(33), session.created);
        let deadline = match session.deadline {
            None => Some(None),
            Some(known) => {
                within(instant(42).filter(|_| bytes.get(41) == Some(&b'd')), known).map(Some)
            }
        };
        let (owner, label) = (session.owner.as_ref(), session.label.as_deref());
        match created.zip(deadline) {
            Some((created, deadline))
                if bytes == record(binding, created, deadline, owner, label) =>
            {
                Ok((created, deadline))
            }
            _ => Err(format!(
                "record {} is not format 1, binding {}, created in {:?}, deadline in {:?}, \
                 owner {:?}, label {:?}",
                show(bytes),
                show(binding),
                session.created,
                session.deadline,
                owner.map(|(o, ns)| (show(o), show(ns))),
                label.map(show)
            )),
        }
    }

    /// The live sessions whose instants (created, expiry, deadline) the
    /// command `args` would show or order by: INSPECT's session, and an
    /// owner command's owner's sessions in the keyref's namespace.
    fn shown_by(&self, args: &[Vec<u8>]) -> Vec<Handle> {
        let cmd = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
        let readable = |handle: Handle| match self.sessions.get(&handle) {
            Some(s) if s.damage.is_none() => Some(handle),
            _ => None,
        };
        match (short(&cmd), args.get(1), args.get(2)) {
            ("inspect", _, Some(token)) => parse(token)
                .and_then(|parts| readable(home(&parts)))
                .into_iter()
                .collect(),
            ("ostart" | "olist" | "oend", Some(keyref), Some(owner)) => {
                let index = self.indexes.get(&index_name(owner, &namespace(keyref)));
                let ids = index.into_iter().flat_map(|index| index.members.keys());
                let tag = owner_tag(owner);
                ids.filter_map(|id| readable(v2_key(&tag, id))).collect()
            }
            _ => Vec::new(),
        }
    }

    /// Reads what the server holds of these live sessions (PEXPIRETIME,
    /// and a v2 record) and, once it lies within what the model knows, pins
    /// the model's intervals to it: a reply that shows them is then
    /// predicted exactly.
    fn pin(&mut self, con: &mut Connection, handles: &[Handle]) -> Result<(), String> {
        if handles.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for handle in handles {
            pipe.cmd("PEXPIRETIME").arg(handle);
            if self.sessions[handle].version() == Version::V2 {
                pipe.cmd("HGET").arg(handle).arg("");
            }
        }
        let replies: Vec<Value> = pipe.query(con).map_err(|e| format!("pin: {e}"))?;
        let mut replies = replies.into_iter();
        for handle in handles {
            let session = self.session(handle);
            let who = show(&session.token);
            let at = match (replies.next().expect("PEXPIRETIME's"), session.expires) {
                (Value::Int(at), Some((lo, hi))) if (lo..=hi).contains(&at) => {
                    session.expires = Some((at, at));
                    at
                }
                (Value::Int(-1), None) => -1,
                (other, expires) => {
                    return Err(format!(
                        "session {who}: PEXPIRETIME {other:?}, the model has {expires:?}"
                    ))
                }
            };
            if session.version() == Version::V2 {
                let Some(Value::BulkString(bytes)) = replies.next() else {
                    return Err(format!("session {who}: its record is not a string"));
                };
                let (created, deadline) = Self::check_record(session, &bytes)
                    .map_err(|why| format!("session {who}: {why}"))?;
                session.created = (created, created);
                session.deadline = deadline.map(|d| (d, d));
            }
            self.pin_entry(handle, at)?;
        }
        Ok(())
    }

    /// Pins a session's index entry to its expiry `at`, now exact: the
    /// module keeps the two equal (docs/keys.md#owner-index).
    fn pin_entry(&mut self, handle: &[u8], at: i64) -> Result<(), String> {
        let session = &self.sessions[handle];
        let Some((owner, ns)) = &session.owner else {
            return Ok(());
        };
        let id = parse(&session.token).expect("a token").id;
        let name = index_name(owner, ns);
        if let Some(score) = self
            .indexes
            .get_mut(&name)
            .and_then(|index| index.members.get_mut(id))
        {
            if !(score.0..=score.1).contains(&at) {
                return Err(format!(
                    "session {}: expiry {at}, its index entry's score in {score:?}",
                    show(&session.token)
                ));
            }
            *score = (at, at);
        }
        Ok(())
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
            .sum::<usize>()
            + self.indexes.len();
        // The doomed session's key, and without a companion its index, may
        // be gone already, or not yet.
        let maybe_gone = self
            .doomed
            .as_ref()
            .map_or(0, |d| 1 + usize::from(!d.companion));
        if !(expected_keys - maybe_gone..=expected_keys).contains(&(dbsize as usize)) {
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
        let mut expiries = Vec::new();
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
            let at = match (next(), session.expires) {
                (Value::Int(at), Some((lo, hi))) if (lo..=hi).contains(&at) => at,
                (Value::Int(-1), None) => -1,
                (other, expires) => {
                    return Err(format!(
                        "session {who}: PEXPIRETIME {other:?}, the model has {expires:?}"
                    ))
                }
            };
            if at != -1 {
                session.expires = Some((at, at));
                expiries.push((handle.clone(), at));
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
                        let (created, deadline) = Self::check_record(session, &record)
                            .map_err(|why| format!("session {who}: {why}"))?;
                        session.created = (created, created);
                        session.deadline = deadline.map(|d| (d, d));
                        // docs/commands.md#maxlife: Redis' own expiry
                        // enforces the deadline.
                        if deadline.is_some_and(|d| at == -1 || at > d) {
                            return Err(format!(
                                "session {who}: PEXPIRETIME {at}, past its deadline {deadline:?}"
                            ));
                        }
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
        for (handle, at) in expiries {
            self.pin_entry(&handle, at)?;
        }
        self.check_indexes(con)?;
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

impl Model {
    /// docs/keys.md#owner-index against the keyspace: exactly the model's
    /// indexes exist (one with no member does not), each a sorted set of
    /// exactly its entries, a live session's score its expiry, and the
    /// key's expiry the latest score it held.
    fn check_indexes(&mut self, con: &mut Connection) -> Result<(), String> {
        let uncertain = self
            .doomed
            .as_ref()
            .filter(|d| !d.companion)
            .map(|d| index_name(&d.owner, &namespace(&d.keyref)));
        let mut names: Vec<Vec<u8>> = redis::cmd("KEYS").arg("sg-owner:*").query(con).unwrap();
        names.retain(|name| Some(name) != uncertain.as_ref());
        names.sort();
        let expected: Vec<&Vec<u8>> = self
            .indexes
            .keys()
            .filter(|name| Some(*name) != uncertain.as_ref())
            .collect();
        if names.iter().ne(expected.iter().copied()) {
            return Err(format!(
                "the owner indexes are {:?}, the model has {:?}",
                names.iter().map(|n| show(n)).collect::<Vec<_>>(),
                expected.iter().map(|n| show(n)).collect::<Vec<_>>()
            ));
        }
        if names.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for name in &names {
            pipe.cmd("TYPE").arg(name);
            pipe.cmd("ZRANGE")
                .arg(name)
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES");
            pipe.cmd("PEXPIRETIME").arg(name);
        }
        let replies: Vec<Value> = pipe.query(con).unwrap();
        for (name, replies) in names.iter().zip(replies.chunks(3)) {
            let who = show(name);
            if replies[0] != Value::SimpleString("zset".into()) {
                return Err(format!("index {who} is a {:?}", replies[0]));
            }
            let Some(entries) = scores_of(&replies[1]) else {
                return Err(format!("index {who}: ZRANGE replied {:?}", replies[1]));
            };
            let tag = name[b"sg-owner:{".len()..]
                .split(|&b| b == b'}')
                .next()
                .unwrap_or_default()
                .to_vec();
            let index = self.indexes.get_mut(name).expect("listed");
            let known: Vec<&Vec<u8>> = index.members.keys().collect();
            if entries.keys().ne(known.iter().copied()) {
                return Err(format!(
                    "index {who} holds {:?}, the model has {:?}",
                    entries.keys().map(|id| show(id)).collect::<Vec<_>>(),
                    known.iter().map(|id| show(id)).collect::<Vec<_>>()
                ));
            }
            for (id, score) in entries {
                let known = index.members.get_mut(&id).expect("compared");
                // A live session's score is its expiry, which the session
                // check above pinned.
                let live = self
                    .sessions
                    .get(&v2_key(&tag, &id))
                    .and_then(|s| s.expires);
                let exact = live.filter(|(lo, hi)| lo == hi).map(|(at, _)| at);
                if !(known.0..=known.1).contains(&score) || exact.is_some_and(|at| at != score) {
                    return Err(format!(
                        "index {who}: {} scores {score}, the model has {known:?}, its session \
                         expires at {live:?}",
                        show(&id)
                    ));
                }
                *known = (score, score);
            }
            let (lo, hi) = index.expires;
            match replies[2] {
                Value::Int(at) if (lo..=hi).contains(&at) => index.expires = (at, at),
                ref other => {
                    return Err(format!(
                        "index {who}: PEXPIRETIME {other:?}, the model has {:?}",
                        index.expires
                    ))
                }
            }
        }
        Ok(())
    }
}

/// A ZRANGE … WITHSCORES reply (RESP2) as member → integer score.
fn scores_of(value: &Value) -> Option<BTreeMap<Vec<u8>, i64>> {
    let Value::Array(items) = value else {
        return None;
    };
    let mut map = BTreeMap::new();
    for pair in items.chunks(2) {
        let [Value::BulkString(member), Value::BulkString(score)] = pair else {
            return None;
        };
        let score: f64 = std::str::from_utf8(score).ok()?.parse().ok()?;
        map.insert(member.clone(), score as i64);
    }
    Some(map)
}

/// Named values as the module replies them (docs/commands.md#inspect): a
/// map under RESP3, a flat name/value array under RESP2.
fn fields(pairs: Vec<(&str, Value)>, resp3: bool) -> Value {
    let pairs = pairs
        .into_iter()
        .map(|(name, value)| (Value::BulkString(name.as_bytes().to_vec()), value));
    if resp3 {
        Value::Map(pairs.collect())
    } else {
        Value::Array(pairs.flat_map(|(n, v)| [n, v]).collect())
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
    canonical_tag(rng.random_range(0..16384))
        .as_bytes()
        .to_vec()
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
    /// Plain Redis deletes a session's keys, as `maxmemory` eviction may
    /// (docs/commands.md#owner-commands): its index entry stays behind.
    Vanish {
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
        if roll < 14 {
            // default-max-lifetime: long enough that no deadline passes in
            // a run; its maximum (2^53 ms, a deadline capped at that) and
            // values out of range, which change nothing.
            let (name, values): (_, &[i64]) = match rng.random_range(0..7) {
                0 => ("sessiongate.max-payload-name-len", &[200, 200, 200, 16]),
                1 => ("sessiongate.max-payload-data-len", &[1, 8, 64, 64, 100]),
                2 => ("sessiongate.max-payloads-per-session", &[0, 0, 1, 2, 3, 8]),
                3 | 4 => (
                    "sessiongate.max-sessions-per-owner",
                    &[1000, 1000, 0, 2, 2, 3, 3, 5, 1_000_001, -1],
                ),
                _ => (
                    "sessiongate.default-max-lifetime",
                    &[
                        0,
                        0,
                        0,
                        3_600,
                        2_000_000,
                        9_007_199_254_740,
                        9_007_199_254_741,
                        -1,
                        i64::MAX,
                    ],
                ),
            };
            let value = *values.choose(rng).unwrap();
            return Op::Config { name, value };
        }
        if roll < 26 {
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
        if roll < 32 && damaged.len() < DAMAGED_MAX {
            let intact: Vec<&Handle> = self
                .live
                .iter()
                .filter(|h| {
                    let s = &self.sessions[*h];
                    s.damage.is_none() && s.version() == Version::V2
                })
                .collect();
            // Mostly an owner's, which owner commands then skip and prune.
            let owned: Vec<&Handle> = intact
                .iter()
                .copied()
                .filter(|h| self.sessions[*h].owner.is_some())
                .collect();
            let handle = match owned.choose(rng) {
                Some(handle) if rng.random_ratio(2, 3) => Some(handle),
                _ => intact.choose(rng),
            };
            if let Some(handle) = handle {
                let has_payloads = !self.sessions[*handle].payloads.is_empty();
                return Op::Damage {
                    handle: handle.to_vec(),
                    harm: Harm::random(rng, has_payloads),
                };
            }
        }
        if roll < 44 && !damaged.is_empty() {
            return Op::Repair {
                handle: damaged.choose(rng).unwrap().to_vec(),
            };
        }
        if (44..47).contains(&roll) {
            return Op::Reload {
                good: rng.random_ratio(4, 5),
            };
        }
        let live = self.live.len();
        if rng.random_ratio(1, 200) {
            // Mostly an owner's session, whose index entry then outlives it.
            let owned: Vec<&Handle> = self
                .live
                .iter()
                .filter(|h| self.sessions[*h].owner.is_some())
                .collect();
            let handle = match owned.choose(rng) {
                Some(handle) if rng.random_ratio(3, 4) => Some(handle.to_vec()),
                _ => self.live.choose(rng).cloned(),
            };
            if let Some(handle) = handle {
                return Op::Vanish { handle };
            }
        }
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
            5,                                // inspect
            5,                                // rotate
            7,                                // ostart
            4,                                // olist
            4,                                // oend
        ];
        let mut roll = rng.random_range(0..weights.iter().sum::<usize>());
        let mut which = 0;
        while roll >= weights[which] {
            roll -= weights[which];
            which += 1;
        }
        let cmd = *COMMANDS
            .iter()
            .chain(&LIFECYCLE_COMMANDS)
            .nth(which)
            .unwrap();
        let mut args = vec![spell(rng, cmd)];
        if cmd == "sessiongate.start" {
            args.push(self.keyref(rng, None, None));
            args.push(ttl_arg(rng, 8));
            if rng.random_ratio(30, 100) {
                args.extend(self.options_args(rng, START_OPTIONS));
            }
        } else if matches!(short(cmd), "ostart" | "olist" | "oend") {
            args.extend(self.owner_args(rng, cmd));
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
                "rotate" => {
                    if rng.random_ratio(3, 5) {
                        args.extend(self.options_args(rng, ROTATE_OPTIONS));
                    }
                    // An owner's session rotated under another name of its
                    // secret (`@app` and its secret as a raw key): its
                    // index entry moves to that namespace.
                    if let Some(s) = session.filter(|s| s.owner.is_some()) {
                        if rng.random_ratio(1, 2) {
                            if s.keyref.starts_with(b"@") {
                                args[1] = s.secret.clone();
                            } else if is_ring_secret(&s.keyref) {
                                args[1] = b"@app".to_vec();
                            }
                        }
                    }
                    // ...and now and then such a session picked on purpose.
                    if rng.random_ratio(1, 10) {
                        let named: Vec<&Session> = self
                            .live
                            .iter()
                            .map(|h| &self.sessions[h])
                            .filter(|s| s.owner.is_some() && s.keyref.starts_with(b"@"))
                            .collect();
                        if let Some(s) = named.choose(rng) {
                            args[1] = s.secret.clone();
                            args[2] = s.token.clone();
                        }
                    }
                }
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
            args = loop {
                let words = rng.random_range(0..args.len() + 4) + 1;
                let mut wrong = args.clone();
                while wrong.len() < words {
                    wrong.push(self.name(rng, None));
                }
                wrong.truncate(words);
                if !arity_ok(cmd, &wrong) {
                    break wrong;
                }
            };
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

    /// An owner: mostly one of a few, sometimes empty or too long, or the
    /// longest allowed.
    fn owner(&self, rng: &mut StdRng) -> Vec<u8> {
        match rng.random_range(0..100) {
            0..=3 => Vec::new(),
            4..=7 => vec![*b"o{".choose(rng).unwrap(); 513],
            8 => vec![*b"o{".choose(rng).unwrap(); 512],
            _ => self.owners.choose(rng).unwrap().clone(),
        }
    }

    /// OSTART's, OLIST's or OEND's arguments after the command's name.
    fn owner_args(&self, rng: &mut StdRng, cmd: &str) -> Vec<Vec<u8>> {
        if short(cmd) == "oend" && rng.random_ratio(2, 5) {
            if let Some((keyref, owner, token)) = self.except_scenario(rng) {
                return vec![keyref, owner, spell(rng, "except"), token];
            }
        }
        // A third of OSTARTs add to an owner's sessions in a namespace that
        // has some, so that LIMIT and max-sessions-per-owner are reached.
        if short(cmd) == "ostart" && rng.random_ratio(1, 3) {
            let pool = self.live.iter().map(|h| &self.sessions[h]).filter_map(|s| {
                let (owner, _) = s.owner.as_ref()?;
                self.owners
                    .contains(owner)
                    .then(|| (s.keyref.clone(), owner.clone()))
            });
            if let Some((keyref, owner)) = pool.collect::<Vec<_>>().choose(rng).cloned() {
                let mut args = vec![keyref, owner, ttl_arg(rng, 4)];
                if rng.random_ratio(60, 100) {
                    args.extend(self.options_args(rng, OSTART_OPTIONS));
                }
                return args;
            }
        }
        let owner = self.owner(rng);
        // Mostly the keyref of one of the owner's sessions, so that every
        // namespace ROTATE moved one into is visited.
        let owned: Vec<&Session> = self
            .live
            .iter()
            .map(|h| &self.sessions[h])
            .filter(|s| s.owner.as_ref().is_some_and(|(o, _)| *o == owner))
            .collect();
        let usual = match owned.choose(rng) {
            Some(s) if rng.random_ratio(3, 4) => s.keyref.clone(),
            _ => self.keyrefs().choose(rng).unwrap().clone(),
        };
        let mut args = vec![self.keyref(rng, Some(&usual), None), owner.clone()];
        match short(cmd) {
            "ostart" => {
                args.push(ttl_arg(rng, 4));
                if rng.random_ratio(60, 100) {
                    args.extend(self.options_args(rng, OSTART_OPTIONS));
                }
            }
            "oend" => {
                let words = self.oend_words(rng, &args[0], &owner, &owned);
                args.extend(words);
            }
            _ => {}
        }
        args
    }

    /// OEND EXCEPT cases that random choices seldom line up, each with a
    /// keyref and an owner that carry its token as far as it goes: the
    /// owner's own session (all but it end); an empty or malformed token
    /// (steps 4, 5); a session with a spoiled record; a session of another
    /// owner of the same slot, or of the same owner in another namespace
    /// (the same secret under another name); a token re-signed with another
    /// key and sent with it (step 9); an ended session's token (step 8).
    fn except_scenario(&self, rng: &mut StdRng) -> Option<(Vec<u8>, Vec<u8>, Vec<u8>)> {
        // Owners of the generator's pool only: not an expiry episode's.
        let owned: Vec<&Session> = self
            .live
            .iter()
            .map(|h| &self.sessions[h])
            .filter(|s| {
                s.owner
                    .as_ref()
                    .is_some_and(|(o, _)| self.owners.contains(o))
            })
            .collect();
        let owner_of = |s: &Session| s.owner.as_ref().expect("owned").0.clone();
        match rng.random_range(0..8) {
            4 => {
                let s = owned.choose(rng)?;
                Some((s.keyref.clone(), owner_of(s), s.token.clone()))
            }
            5 => {
                let s = owned.choose(rng)?;
                let token = match rng.random_ratio(1, 3) {
                    true => Vec::new(),
                    false => malformed(rng, &s.token),
                };
                Some((s.keyref.clone(), owner_of(s), token))
            }
            0 => {
                let spoiled: Vec<&&Session> = owned.iter().filter(|s| s.damage.is_some()).collect();
                let s = spoiled.choose(rng)?;
                Some((s.keyref.clone(), owner_of(s), s.token.clone()))
            }
            1 | 7 => {
                let s = owned.choose(rng)?;
                let owner = owner_of(s);
                let tag = owner_tag(&owner);
                let others: Vec<&Vec<u8>> = self
                    .owners
                    .iter()
                    .filter(|o| **o != owner && owner_tag(o) == tag)
                    .collect();
                match others.choose(rng) {
                    Some(other) if rng.random_ratio(1, 2) => {
                        Some((s.keyref.clone(), other.to_vec(), s.token.clone()))
                    }
                    _ if s.keyref.starts_with(b"@") => {
                        Some((s.secret.clone(), owner, s.token.clone()))
                    }
                    _ if is_ring_secret(&s.keyref) => {
                        Some((b"@app".to_vec(), owner, s.token.clone()))
                    }
                    _ => None,
                }
            }
            2 => {
                let s = owned
                    .iter()
                    .filter(|s| s.damage.is_none())
                    .collect::<Vec<_>>();
                let s = s.choose(rng)?;
                let others: Vec<&&[u8]> = SIGN_KEYS.iter().filter(|k| **k != s.secret).collect();
                let key = others.choose(rng)?.to_vec();
                let parts = parse(&s.token).expect("a token");
                let token = mint(Version::V2, &key, parts.tag, parts.id);
                Some((key, owner_of(s), token))
            }
            _ => {
                // The pool's owners whose slot is the token's.
                let owners_of = |token: &[u8]| -> Vec<&Vec<u8>> {
                    let tag = parse(token).filter(|p| p.version == Version::V2);
                    let tag = tag.map_or(Vec::new(), |p| p.tag.to_vec());
                    self.owners.iter().filter(|o| owner_tag(o) == tag).collect()
                };
                let ended: Vec<&(Vec<u8>, Vec<u8>)> = self
                    .ended
                    .iter()
                    .filter(|(_, token)| !owners_of(token).is_empty())
                    .collect();
                let (keyref, token) = ended.choose(rng)?;
                let owner = owners_of(token).choose(rng)?.to_vec();
                Some((keyref.clone(), owner, token.clone()))
            }
        }
    }

    /// What follows OEND's owner: nothing, EXCEPT and a token, ID and ids,
    /// or now and then a shape that is the arity error.
    fn oend_words(
        &self,
        rng: &mut StdRng,
        keyref: &[u8],
        owner: &[u8],
        owned: &[&Session],
    ) -> Vec<Vec<u8>> {
        match rng.random_range(0..100) {
            0..=34 => Vec::new(),
            35..=64 => {
                // Mostly the owner's own session's; or, in the owner's
                // slot, an ended session's, one re-signed with the keyref's
                // secret (step 9), one not this owner's in this namespace;
                // or any token at all.
                // Those past step 7: in the owner's slot, and signed by a
                // secret of the keyref.
                let tag = owner_tag(owner);
                let secrets = self.secrets_of(keyref).unwrap_or_default();
                let verified = |t: &Vec<u8>| {
                    parse(t).is_some_and(|p| p.tag == tag && secrets.iter().any(|s| signs(s, &p)))
                };
                let mine = (owner.to_vec(), namespace(keyref));
                let same_slot: Vec<&Vec<u8>> = self
                    .live
                    .iter()
                    .map(|h| &self.sessions[h])
                    .filter(|s| s.owner.as_ref() != Some(&mine))
                    .map(|s| &s.token)
                    .filter(|t| verified(t))
                    .collect();
                let ended: Vec<&Vec<u8>> = self
                    .ended
                    .iter()
                    .map(|(_, t)| t)
                    .filter(|t| verified(t))
                    .collect();
                let spoiled: Vec<&&Session> = owned
                    .iter()
                    .filter(|s| s.damage.is_some() && verified(&s.token))
                    .collect();
                let own = owned.choose(rng);
                let token = match rng.random_range(0..12) {
                    0..=3 if own.is_some() => own.unwrap().token.clone(),
                    4 if !ended.is_empty() => ended.choose(rng).unwrap().to_vec(),
                    5 if own.is_some() => {
                        let id = parse(&own.unwrap().token).expect("a token").id.to_vec();
                        mint(Version::V2, &self.signing_secret(keyref), &tag, &id)
                    }
                    6 | 7 if !same_slot.is_empty() => same_slot.choose(rng).unwrap().to_vec(),
                    8 if own.is_some() => {
                        let token = &own.unwrap().token;
                        if rng.random_ratio(1, 3) {
                            Vec::new()
                        } else {
                            malformed(rng, token)
                        }
                    }
                    9 if !spoiled.is_empty() => spoiled.choose(rng).unwrap().token.clone(),
                    _ => self.target(rng).token,
                };
                vec![spell(rng, "except"), token]
            }
            65..=95 => {
                let mut words = vec![spell(rng, "id")];
                for _ in 0..rng.random_range(1..=3) {
                    words.push(self.oend_id(rng, owner));
                }
                words
            }
            _ => {
                let shapes: [&[&str]; 4] = [&["except"], &["except", "a", "b"], &["id"], &["all"]];
                shapes
                    .choose(rng)
                    .unwrap()
                    .iter()
                    .map(|w| spell(rng, w))
                    .collect()
            }
        }
    }

    /// An OEND ID: mostly one of the owner's index entries (in any
    /// namespace), or any session's id, a random one, an ended one, or one
    /// that is not 16 of `[A-Za-z0-9]`.
    fn oend_id(&self, rng: &mut StdRng, owner: &[u8]) -> Vec<u8> {
        let entries: Vec<&Vec<u8>> = self
            .indexes
            .iter()
            .filter(|(name, _)| name.ends_with(&[b":", owner].concat()))
            .flat_map(|(_, index)| index.members.keys())
            .collect();
        let id_of = |token: &[u8]| parse(token).map(|p| p.id.to_vec());
        let id = match rng.random_range(0..10) {
            0..=4 => entries.choose(rng).map(|id| id.to_vec()),
            5 => self
                .live
                .choose(rng)
                .and_then(|h| id_of(&self.sessions[h].token)),
            6..=7 => self
                .ended
                .iter()
                .rev()
                .take(20)
                .collect::<Vec<_>>()
                .choose(rng)
                .and_then(|(_, t)| id_of(t)),
            8 => {
                let bad: [&[u8]; 5] = [
                    b"",
                    b"AbCdEfGh0123456",
                    b"AbCdEfGh012345678",
                    b"AbCdEfGh0123456-",
                    b"AbCdEfGh{123456}",
                ];
                Some(bad.choose(rng).unwrap().to_vec())
            }
            _ => None,
        };
        id.unwrap_or_else(|| random_id(rng))
    }

    /// Options of `allowed` (docs/commands.md#options), in any order and
    /// case: mostly good values, sometimes a bad one, and now and then a
    /// shape that is the arity error (an unknown word, a missing value, an
    /// option given twice).
    fn options_args(&self, rng: &mut StdRng, allowed: &[Keyword]) -> Vec<Vec<u8>> {
        let mut chosen: Vec<Keyword> = allowed
            .iter()
            .copied()
            .filter(|_| rng.random_ratio(1, 2))
            .collect();
        if chosen.is_empty() {
            chosen.push(*allowed.choose(rng).unwrap());
        }
        chosen.shuffle(rng);
        let mut words = Vec::new();
        for keyword in chosen {
            words.push(spell(rng, keyword.name()));
            words.push(option_value(rng, keyword));
            if keyword == Keyword::Limit && rng.random_ratio(3, 4) {
                let policy = *["evict", "reject", "reject"].choose(rng).unwrap();
                words.push(spell(rng, policy));
            }
        }
        match rng.random_range(0..100) {
            0..=2 => {
                let word = [&b"x"[..], b"MAXLIFEX", b"EXCEPT", b"ttl", b"limit", b""];
                let at = rng.random_range(0..=words.len() / 2) * 2;
                words.insert(at, word.choose(rng).unwrap().to_vec());
            }
            3..=4 => {
                words.pop();
            }
            5..=6 => {
                let again = words[..2].to_vec();
                words.extend(again);
            }
            _ => {}
        }
        words
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

/// A value for an option: mostly a good one, and every kind of wrong
/// (docs/errors.md#lifecycle-errors).
fn option_value(rng: &mut StdRng, keyword: Keyword) -> Vec<u8> {
    let roll = rng.random_range(0..100);
    match keyword {
        // Mostly long enough to outlive the run, and often shorter than the
        // ttl, which it then clamps.
        Keyword::Maxlife => {
            let t = now_ms();
            let value = match roll {
                0..=75 => rng.random_range(LIVE_TTL_MIN..=100_000_000).to_string(),
                76..=80 => ["0", "-1", "", "abc", "1.5", "+60", "01000", " 60"]
                    .choose(rng)
                    .unwrap()
                    .to_string(),
                81..=82 => i64::MAX.to_string(),
                83 => (i64::MAX / 1000 + 1).to_string(),
                // Just past 2^53 ms, and just short of it.
                84..=93 => {
                    ((V2_MAX_EXPIRY_MS - t) / 1000 + 1 + rng.random_range(0..=1000)).to_string()
                }
                94..=96 => ((V2_MAX_EXPIRY_MS - t - 600_000) / 1000 - rng.random_range(0..=1000))
                    .to_string(),
                _ => rng
                    .random_range(1_000_000_000..=1_000_000_000_000_i64)
                    .to_string(),
            };
            value.into_bytes()
        }
        // Binary-safe, some spelling a keyword (a value is taken as it is).
        Keyword::Label => match roll {
            0..=53 => {
                let len = rng.random_range(1..=20);
                random_bytes(rng, len)
            }
            54..=73 => [
                &b"phone"[..],
                b"Firefox on Linux",
                b"LIMIT",
                b"maxlife",
                b"EVICT",
                b"\0",
            ]
            .choose(rng)
            .unwrap()
            .to_vec(),
            74..=80 => vec![*b"l\0".choose(rng).unwrap(); 512],
            81..=90 => vec![*b"l\0".choose(rng).unwrap(); 513],
            _ => Vec::new(),
        },
        // Just past 2^53 ms more often than ttl_arg has it: any TTL is
        // checked as a v2 session's.
        Keyword::Ttl if roll < 10 => {
            let past = (V2_MAX_EXPIRY_MS - now_ms()) / 1000 + 1 + rng.random_range(0..=1000);
            past.to_string().into_bytes()
        }
        Keyword::Ttl => ttl_arg(rng, 10),
        // Mostly small, so that owners reach it.
        Keyword::Limit => match roll {
            0..=79 => rng.random_range(1..=3).to_string().into_bytes(),
            80..=84 => rng.random_range(5..=10).to_string().into_bytes(),
            _ => [
                &b"0"[..],
                b"-1",
                b"",
                b"x",
                b"1.5",
                b"+2",
                b"99999999999999999999",
            ]
            .choose(rng)
            .unwrap()
            .to_vec(),
        },
    }
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
        Op::Vanish { handle } => format!("(plain Redis) DEL of the session {}", show(handle)),
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
    // Every command that takes a token, the lifecycle's ROTATE and INSPECT
    // included.
    for cmd in COMMANDS.iter().chain(&LIFECYCLE_COMMANDS[..2]) {
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
    required.extend(lifecycle_coverage());
    required
}

/// The session lifecycle's outcomes (docs/commands.md#session-lifecycle)
/// every default-length run must reach, besides ROTATE's and INSPECT's
/// token checks above.
fn lifecycle_coverage() -> Vec<String> {
    let required = vec![
        // MAXLIFE and LABEL
        "start with options",
        "v2 start with options",
        "start BadMaxlife",
        "start clamped by the deadline",
        "start with the default deadline",
        "expire clamped by the deadline",
        "config default-max-lifetime refused",
        // ROTATE
        "rotate BadTtl",
        "v2 rotate BadTtl",
        "rotate ttl past 2^53",
        "rotate ttl 0",
        "v2 rotate ttl 0",
        "rotate v1 to v2",
        "rotate with another keyref",
        "rotate clamped by the deadline",
        "rotate owned",
        "rotate owned, into another namespace",
        // the owner commands and the index
        "expire ok, owned",
        "config max-sessions-per-owner refused",
        "vanish owned",
        "vanish not owned",
        "episode expired, its index kept",
        "episode expired with its index",
        "ostart ok",
        "ostart ttl 0",
        "ostart BadTtl",
        "ostart ttl past 2^53",
        "ostart BadMaxlife",
        "ostart maxlife past 2^53",
        "ostart EmptyLabel",
        "ostart LongLabel",
        "ostart BadLimit",
        "ostart UnknownRing",
        "ostart clamped by the deadline",
        "ostart evicted",
        "ostart refused by LIMIT REJECT",
        "ostart refused by max-sessions-per-owner",
        "ostart pruned a session gone by other means",
        "ostart pruned a spoiled record",
        "ostart pruned an expired entry",
        "olist ok, none",
        "olist ok, one",
        "olist ok, several",
        "olist skipped a session gone by other means",
        "olist skipped an expired entry",
        "oend ok, all",
        "oend ok, all but one",
        "oend ok, by id",
        "oend ok, none ended",
        "oend BadId",
        "oend NotTheOwners",
        "oend except a token of another slot",
        "oend except a session of another owner",
        "oend EmptyToken",
        "oend BadFormat",
        "oend Forged",
        "oend Missing",
        "oend Unreadable",
        "oend Stale",
        "oend pruned a session gone by other means",
        // INSPECT
        "inspect ok, stale",
        "inspect ok, with a deadline or label",
    ];
    let mut required: Vec<String> = required.into_iter().map(String::from).collect();
    for cmd in ["ostart", "olist", "oend"] {
        for outcome in ["ok", "Arity", "EmptyOwner", "LongOwner"] {
            required.push(format!("{cmd} {outcome}"));
        }
    }
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
    let shown = model.shown_by(args);
    model.pin(con, &shown)?;
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
            hset.push(record(&binding, created, None, None, None));
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
    let (created, deadline) = Model::check_record(session, &original)?;
    session.created = (created, created);
    session.deadline = deadline.map(|d| (d, d));
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

/// Starts an expiry episode: a new owner's session with a ttl of 1 s,
/// after, every other time, a long-lived one of the same owner and keyref
/// that keeps the index alive. Until `resolve`, nothing touches them but
/// the companion's own commands (docs/keys.md#owner-index: a session that
/// simply expires keeps its entry until an owner command comes by).
fn doom(
    con: &mut Connection,
    model: &mut Model,
    rng: &mut StdRng,
    episode: usize,
    until: usize,
    recent: &mut VecDeque<String>,
) -> Result<(), String> {
    let owner = format!("ephemeral:{episode}").into_bytes();
    let keyref = model.keyrefs().choose(rng).unwrap().clone();
    let companion = episode.is_multiple_of(2);
    let ostart = |ttl: &str| {
        let args = [b"SESSIONGATE.OSTART", &keyref[..], &owner, ttl.as_bytes()];
        args.map(<[u8]>::to_vec).to_vec()
    };
    let mut run = |model: &mut Model, args: Vec<Vec<u8>>| {
        recent.push_back(format!(
            "(episode {episode}) {}",
            describe(&Op::Command {
                args: args.clone(),
                resp3: false,
                watch: false,
            })
        ));
        run_command(con, model, &args, false, false)
    };
    if companion {
        run(model, ostart("100000"))?;
    }
    model.started = None;
    run(model, ostart("1"))?;
    let handle = model
        .started
        .take()
        .ok_or("the doomed OSTART started nothing")?;
    // Out of the generator's list, kept for the keyspace check's count.
    let session = model.remove(&handle);
    model.sessions.insert(handle.clone(), session);
    model.doomed = Some(Doomed {
        handle,
        keyref,
        owner,
        companion,
        until,
    });
    Ok(())
}

/// Ends an expiry episode: once the doomed session's expiry has passed
/// (its window of operations usually took longer than that), its key is
/// gone, and so is its index unless the companion kept it; then OLIST must
/// skip the expired entry and OSTART prune it.
fn resolve(
    con: &mut Connection,
    model: &mut Model,
    recent: &mut VecDeque<String>,
) -> Result<(), String> {
    let doomed = model.doomed.take().expect("an episode under way");
    let session = model.sessions.remove(&doomed.handle).expect("doomed");
    let (_, hi) = session.expires.expect("a ttl of 1 s");
    model.v2_context = false;
    let wait = hi + 5 - now_ms();
    if wait > 0 {
        model.tally("episode", "waited");
        std::thread::sleep(std::time::Duration::from_millis(wait as u64));
    }
    expect(
        &call(con, &[&b"EXISTS"[..], &doomed.handle]),
        &Ok(Value::Int(0)),
    )
    .map_err(|e| format!("the doomed session {}: {e}", show(&session.token)))?;
    let name = index_name(&doomed.owner, &namespace(&doomed.keyref));
    let index_left = i64::from(doomed.companion);
    expect(
        &call(con, &[&b"EXISTS"[..], &name]),
        &Ok(Value::Int(index_left)),
    )
    .map_err(|e| format!("the doomed session's index {}: {e}", show(&name)))?;
    if !doomed.companion {
        model.indexes.remove(&name);
    }
    model.v2_context = false;
    model.tally(
        "episode",
        if doomed.companion {
            "expired, its index kept"
        } else {
            "expired with its index"
        },
    );
    model.forget(session.keyref, session.token);
    model.owners.push(doomed.owner.clone());
    for cmd in ["SESSIONGATE.OLIST", "SESSIONGATE.OSTART"] {
        let mut args = vec![
            cmd.as_bytes().to_vec(),
            doomed.keyref.clone(),
            doomed.owner.clone(),
        ];
        if cmd.ends_with("OSTART") {
            args.push(b"100000".to_vec());
        }
        recent.push_back(format!(
            "(episode's end) {}",
            describe(&Op::Command {
                args: args.clone(),
                resp3: false,
                watch: false,
            })
        ));
        run_command(con, model, &args, false, false)?;
    }
    Ok(())
}

/// Deletes a session's keys with plain Redis; an owner's index keeps its
/// entry, which owner commands then skip or prune.
fn vanish(con: &mut Connection, model: &mut Model, handle: Handle) -> Result<(), String> {
    let session = model.remove(&handle);
    let mut del = vec![b"DEL".to_vec()];
    del.extend(keys_of(&session.token));
    let keys = match session.version() {
        Version::V1 => 1 + i64::from(!session.payloads.is_empty()),
        Version::V2 => 1,
    };
    expect(&call(con, &del), &Ok(Value::Int(keys)))?;
    model.v2_context = session.version() == Version::V2;
    let owned = session.owner.is_some();
    model.tally("vanish", if owned { "owned" } else { "not owned" });
    model.forget(session.keyref, session.token);
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
        if i % EPISODE_EVERY == EPISODE_AT && i + EPISODE_WINDOW < ops {
            let episode = i / EPISODE_EVERY;
            let until = i + EPISODE_WINDOW;
            if let Err(why) = doom(
                &mut resp2,
                &mut model,
                &mut rng,
                episode,
                until,
                &mut recent,
            ) {
                fail(i, &recent, &replay, why);
            }
        }
        if model.doomed.as_ref().is_some_and(|d| d.until == i) {
            if let Err(why) = resolve(&mut resp2, &mut model, &mut recent) {
                fail(i, &recent, &replay, why);
            }
        }
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
            Op::Vanish { handle } => vanish(&mut resp2, &mut model, handle),
            Op::Reload { good } => reload(&mut resp2, &mut model, &keyring_file, good),
            Op::Config { name, value } => {
                let got = call(&mut resp2, &["CONFIG", "SET", name, &value.to_string()]);
                // docs/configuration.md#settings: the ranges.
                let range = match name {
                    "sessiongate.token-version" => 1..=2,
                    "sessiongate.default-max-lifetime" => 0..=9_007_199_254_740,
                    "sessiongate.max-sessions-per-owner" => 0..=1_000_000,
                    _ => 0..=i64::MAX,
                };
                if !range.contains(&value) {
                    // docs/configuration.md#refused-values: Redis' own
                    // error, and the old value kept.
                    model.v2_context = false;
                    model.tally("config", &format!("{} refused", short(name)));
                    let refused = matches!(&got, Err(e) if e.starts_with("ERR CONFIG SET failed"));
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
                let count = usize::try_from(value).unwrap_or(0);
                match name {
                    "sessiongate.token-version" if value == 1 => model.token_version = Version::V1,
                    "sessiongate.token-version" => model.token_version = Version::V2,
                    "sessiongate.max-payload-name-len" => model.name_limit = count,
                    "sessiongate.max-payload-data-len" => model.data_limit = count,
                    "sessiongate.default-max-lifetime" => model.default_max_lifetime = value,
                    "sessiongate.max-sessions-per-owner" => model.max_sessions = count,
                    _ => model.max_payloads = count,
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
