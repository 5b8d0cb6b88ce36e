//! `make soak`: a bounded soak and memory test. One redis-server with the
//! release module (`SESSIONGATE_MODULE`), `--hz 100` so that active expiry
//! keeps up, and keyspace notifications on (no subscriber: the events are
//! still built). Several connections, each on its own thread, drive a
//! million sessions through every command in pipelines:
//!
//! * START, with a mix of short ttls (1–3 s: they expire by themselves),
//!   long ones (600–900 s) and a few ttl 0 (a session that never exists);
//!   the first half of the sessions with `sessiongate.token-version` 1, the
//!   second with 2, and in both 15% of the long ones with MAXLIFE, LABEL or
//!   both (always v2): v1 and v2 tokens alike, each checked (its shape, its
//!   HMAC, and for v2 a canonical slot tag);
//! * PSET and PMSET of ~100-byte binary payloads, PGET, PMGET, PGETALL,
//!   INSPECT, EXPIRE, TTL (clamped by the deadline where there is one), PDEL
//!   (of a payload the session has, and of one it has not), and END or
//!   EXPIRE 0 for a share;
//! * a few refused calls on purpose: a wrong sign key, a malformed token, a
//!   keyring that does not exist, a payload that was deleted;
//! * a second visit to the long sessions some batches later: their payloads
//!   are read back and overwritten; a quarter are rotated (v1 and v2 alike;
//!   the expiry kept, moved with TTL, or a few TTL 0, which ends the
//!   session): the new token must be v2 in the same slot, the old one must
//!   find no session at once, and the new one the payloads carried over;
//!   then they are ended, or given a ttl of 1–2 s to expire by themselves;
//! * a last visit to half of the sessions left to time out, once their ttl
//!   has passed: PGET (and sometimes PSET) must find no session;
//! * owners, one per 250 sessions (4,000 for a million), each with a LIMIT
//!   of 2 to 5 and a connection of its own, visited some twenty times each
//!   between batches (`visit_owners`): OSTART with LIMIT (EVICT or REJECT),
//!   MAXLIFE and LABEL, OLIST twice a visit, payloads on the owned
//!   sessions, ROTATE, EXPIRE, END, EXPIRE 0, OEND (all, EXCEPT, ID), an
//!   owned session left to time out (its stale index entry skipped, then
//!   pruned); at the end every owner's sessions are ended by OEND (or OEND
//!   EXCEPT and END), so that no index is left. A model of each owner's
//!   sessions decides every reply: which sessions an OSTART evicts (those
//!   that expire first, as OLIST showed their expiries), OEND's count, and
//!   OLIST's entries, oldest first, with their exact `created`, `expires`
//!   (OSTART's is `created` + min(ttl, maxlife)), deadline and label.
//!
//! Every reply is checked against what the session must hold. The one reply
//! that may stand in for the expected one is `the session id contained in
//! <token> does not exist`, and only for a session with a short ttl (it may
//! have timed out); once a session is gone it must stay gone. At the end the
//! module's INFO counters must equal what the replies add up to: the
//! rotations, the evictions the model predicted, the sessions OEND counted,
//! and one id drawn per token minted among them.
//!
//! Then every session has ended or is about to expire: DBSIZE must reach 0
//! (active expiry included) within a minute, and `used_memory`, once the
//! workers' connections are closed, must be back within 5% of what it was
//! before the run. "Before" is read after a warm-up of the same workload on
//! a few thousand sessions, so that what Redis allocates once and keeps is
//! in it (see `soak`); no leak hides there, as a leak grows with the million.
//! A redis.log line with `panic` or a module warning fails the run too.
//!
//! An ignored test, as it takes minutes: `make soak` runs it, through
//! `cargo test --release --test soak -- --ignored --nocapture`. The module
//! is `SESSIONGATE_MODULE`, else target/release's.
//!
//! Environment: `SOAK_SESSIONS` (1,000,000), `SOAK_CONNECTIONS` (4),
//! `SOAK_SEED` (from the clock; a failure prints it), `SOAK_DEADLINE` in
//! seconds for the drive (900).

mod common;

use common::errors::{unknown_ring, FORGED_SIGNATURE, MALFORMED_TOKEN, NO_PAYLOAD, NO_SESSION};
use common::slots::{canonical_tag, key_hash_slot};
use common::{info_field, Server, Value};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use redis::Connection;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Binary, as a real secret may be.
const SIGN_KEY: &[u8] = b"soak\0sign key\xff";
const WRONG_SIGN_KEY: &[u8] = b"not the soak sign key";
/// Sessions each connection starts in one pipeline.
const BATCH: usize = 250;
/// A long session is visited again this many batches after it started.
const REVISIT_AFTER: usize = 8;
/// A session left with a ttl of at most 3 s is visited once this has
/// passed since its last reply (Redis set the expiry before that reply).
const EXPIRED_AFTER: Duration = Duration::from_millis(3_300);
const DRAIN_DEADLINE: Duration = Duration::from_secs(60);
/// How long `used_memory` may take to settle once the keyspace is empty.
const SETTLE_DEADLINE: Duration = Duration::from_secs(20);
const MEMORY_TOLERANCE_PERCENT: f64 = 5.0;

const USER: &[u8] = b"user";
const CART: &[u8] = b"cart";
/// A binary payload name.
const PREFS: &[u8] = b"pr\0efs\xff";
const ABSENT: &[u8] = b"nope";

/// A keyref naming a ring, with no keyring loaded: refused at step 2.
const NOPE_RING: &[u8] = b"@soak-nope";
static UNKNOWN_RING: LazyLock<String> = LazyLock::new(|| unknown_ring("soak-nope"));
/// A v2 session started with MAXLIFE gets one of these many seconds: some
/// below the ttls given (600–900 s), so that EXPIRE and TTL show the clamp.
const MAXLIFE: std::ops::RangeInclusive<i64> = 600..=1200;
/// How far a `created` read back may be from the client's clock, in ms
/// (the server's clock is the same one).
const CLOCK_SLACK_MS: i64 = 1_000;

// ---------------------------------------------------------------------------
// Randomness: rand's StdRng, seeded (SOAK_SEED), so that a failing run can be
// replayed.

/// The payload `tag` of session `id`: 96 to 104 bytes of any value, derived
/// from the seed, so that nothing needs storing to check it later.
fn payload(seed: u64, id: u64, tag: u64) -> Vec<u8> {
    let mut rng =
        StdRng::seed_from_u64(seed ^ id.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ tag.rotate_left(48));
    let mut bytes = vec![0; rng.random_range(96..=104)];
    rng.fill(&mut bytes[..]);
    bytes
}

fn signature_hex(id: &[u8]) -> Vec<u8> {
    common::hmac_hex(SIGN_KEY, id).into_bytes()
}

/// A label of 1 to 64 bytes of any value, derived as a payload is.
fn label(seed: u64, id: u64, len: usize) -> Vec<u8> {
    let mut bytes = payload(seed, id, 9);
    bytes.truncate(len.clamp(1, 64));
    bytes
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

// ---------------------------------------------------------------------------
// Tokens, checked here from the docs/tokens.md, not from `src/`.

/// The id inside a v1 or v2 token: the 16 bytes before the last dot.
fn token_id(token: &[u8]) -> &[u8] {
    &token[token.len().saturating_sub(81)..token.len().saturating_sub(65)]
}

/// Whether `token` is `v1.<id>.<HMAC(id)>` under SIGN_KEY (docs/tokens.md).
fn is_v1(token: &[u8]) -> bool {
    token.len() == 84
        && token.starts_with(b"v1.")
        && token[3..19].iter().all(u8::is_ascii_alphanumeric)
        && token[19] == b'.'
        && token[20..] == signature_hex(&token[3..19])[..]
}

/// The tag of `token` if it is `v2.{<tag>}.<id>.<HMAC(v2.{<tag>}.<id>)>`
/// under SIGN_KEY with a canonical tag (docs/tokens.md#v2-tokens).
fn v2_tag(token: &[u8]) -> Option<&[u8]> {
    let rest = token.strip_prefix(b"v2.{")?;
    let close = rest.iter().position(|&b| b == b'}')?;
    let (tag, rest) = rest.split_at(close);
    let rest = rest.strip_prefix(b"}.")?;
    let alphanumeric = |bytes: &[u8]| bytes.iter().all(u8::is_ascii_alphanumeric);
    let well_formed = (1..=3).contains(&tag.len())
        && alphanumeric(tag)
        && rest.len() == 81
        && alphanumeric(&rest[..16])
        && rest[16] == b'.';
    let signed = &token[..token.len() - 65];
    (well_formed
        && rest[17..] == signature_hex(signed)[..]
        && canonical_tag(key_hash_slot(tag)).as_bytes() == tag)
        .then_some(tag)
}

/// The canonical tag of the slot a session is in: a v2 token's own; for
/// v1, the whole token's (it is its keys' hash tag in a cluster).
fn slot_tag(token: &[u8]) -> &[u8] {
    match v2_tag(token) {
        Some(tag) => tag,
        None => canonical_tag(key_hash_slot(token)).as_bytes(),
    }
}

/// A RESP2 map (a flat array of name, value, …) by name.
fn fields(reply: &Value) -> Option<BTreeMap<Vec<u8>, Value>> {
    let Value::Array(items) = reply else {
        return None;
    };
    if items.len() % 2 != 0 {
        return None;
    }
    let map: BTreeMap<Vec<u8>, Value> = items
        .chunks(2)
        .map(|pair| Some((bulk(&pair[0])?.to_vec(), pair[1].clone())))
        .collect::<Option<_>>()?;
    (map.len() * 2 == items.len()).then_some(map)
}

fn int_or_nil(value: Option<i64>) -> Value {
    value.map_or(Value::Nil, Value::Int)
}

fn bulk_or_nil(value: Option<&[u8]>) -> Value {
    value.map_or(Value::Nil, |b| Value::BulkString(b.to_vec()))
}

// ---------------------------------------------------------------------------
// What a reply must be, and what it adds to the module's counters.

#[derive(Default, Clone)]
struct Tally {
    operations: u64,
    by_command: BTreeMap<&'static str, u64>,
    sessions: u64,
    started: u64,
    ended: u64,
    ended_by_expire_0: u64,
    payloads_set: u64,
    payloads_read: u64,
    payloads_deleted: u64,
    signature_failures: u64,
    malformed_tokens: u64,
    missing_sessions: u64,
    /// Short sessions seen to time out before the driver was done with them.
    timed_out_early: u64,
    /// Sessions visited after their ttl had passed, and found gone.
    checked_expired: u64,
    /// Of `started`, the v2 tokens.
    v2_started: u64,
    unknown_rings: u64,
    rotated: u64,
    /// Of `rotated`, v1 sessions that became v2.
    rotated_v1: u64,
    /// Of `started`, by OSTART.
    owned_started: u64,
    evicted: u64,
    ended_by_owner: u64,
    owner_visits: u64,
    /// OLIST entries checked.
    listed: u64,
}

impl Tally {
    fn merge(&mut self, other: &Tally) {
        self.operations += other.operations;
        for (command, n) in &other.by_command {
            *self.by_command.entry(command).or_default() += n;
        }
        self.sessions += other.sessions;
        self.started += other.started;
        self.ended += other.ended;
        self.ended_by_expire_0 += other.ended_by_expire_0;
        self.payloads_set += other.payloads_set;
        self.payloads_read += other.payloads_read;
        self.payloads_deleted += other.payloads_deleted;
        self.signature_failures += other.signature_failures;
        self.malformed_tokens += other.malformed_tokens;
        self.missing_sessions += other.missing_sessions;
        self.timed_out_early += other.timed_out_early;
        self.checked_expired += other.checked_expired;
        self.v2_started += other.v2_started;
        self.unknown_rings += other.unknown_rings;
        self.rotated += other.rotated;
        self.rotated_v1 += other.rotated_v1;
        self.owned_started += other.owned_started;
        self.evicted += other.evicted;
        self.ended_by_owner += other.ended_by_owner;
        self.owner_visits += other.owner_visits;
        self.listed += other.listed;
    }
}

/// What a successful write adds to the counters.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Effect {
    None,
    Set(u64),
    Deleted(u64),
    Ended,
    EndedByExpire0,
}

#[derive(Debug)]
enum Expect {
    /// A well-formed token signed with SIGN_KEY, of the session's version;
    /// it becomes the session's.
    Token,
    /// INSPECT: what the session is, with this many payloads.
    Inspect(i64),
    /// ROTATE: a v2 token in the session's slot; it becomes the session's
    /// (and with `ends`, a TTL of 0, the session is over).
    Rotated {
        ends: bool,
    },
    Ok(Effect),
    Data(Vec<u8>),
    Many(Vec<Option<Vec<u8>>>),
    /// PGETALL under RESP2: name, data, … sorted by name.
    All(Vec<(Vec<u8>, Vec<u8>)>),
    /// TTL: seconds within these bounds.
    Seconds(i64, i64),
    Error(&'static str),
}

impl Expect {
    /// Refused before the session is looked up (docs/errors.md#step-4 to
    /// #step-7): the reply does not depend on whether the session still
    /// exists.
    fn before_lookup(&self) -> bool {
        matches!(self, Expect::Error(e)
            if *e == FORGED_SIGNATURE || *e == MALFORMED_TOKEN || *e == UNKNOWN_RING.as_str())
    }
}

struct Session {
    /// Global index, from which its payloads derive.
    id: u64,
    token: Vec<u8>,
    /// A ttl of a few seconds: it may time out at any point.
    short: bool,
    /// Ended, expired with 0, timed out, or started with ttl 0.
    gone: bool,
    /// Kept for a second visit.
    revisit: bool,
    /// Left to time out with a ttl of at most 3 s, and to be visited once
    /// that has passed: it must be gone.
    visit_when_expired: bool,
    /// A v2 token: START with an option, or with token-version 2.
    v2: bool,
    /// START's MAXLIFE: the session's deadline is this long after it began.
    maxlife: Option<i64>,
    label: Option<Vec<u8>>,
    /// The highest TTL the session may show once the driver set its expiry.
    ttl_high: i64,
}

/// One pipeline and what each of its replies must be.
struct Round {
    pipe: redis::Pipeline,
    checks: Vec<(usize, &'static str, Expect)>,
}

impl Round {
    fn new() -> Self {
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        Round {
            pipe,
            checks: Vec::new(),
        }
    }

    /// Queues `command` for session `index` (of the slice `run` gets).
    fn push(&mut self, index: usize, command: &'static str, args: &[&[u8]], expect: Expect) {
        let cmd = self.pipe.cmd(command);
        for arg in args {
            cmd.arg(*arg);
        }
        self.checks.push((index, command, expect));
    }

    fn run(
        self,
        con: &mut Connection,
        sessions: &mut [Session],
        tally: &mut Tally,
    ) -> Result<(), String> {
        let replies: Vec<Value> = self
            .pipe
            .query(con)
            .map_err(|e| format!("transport error: {e}"))?;
        if replies.len() != self.checks.len() {
            return Err(format!(
                "{} replies to {} commands",
                replies.len(),
                self.checks.len()
            ));
        }
        for ((index, command, expect), reply) in self.checks.into_iter().zip(replies) {
            let session = &mut sessions[index];
            tally.operations += 1;
            *tally.by_command.entry(command).or_default() += 1;
            check(session, &expect, reply, tally).map_err(|problem| {
                format!(
                    "{command} on session {} ({} ttl{}, token {}): {problem}",
                    session.id,
                    if session.short { "short" } else { "long" },
                    if session.gone { ", gone" } else { "" },
                    String::from_utf8_lossy(&session.token),
                )
            })?;
        }
        Ok(())
    }
}

fn error_text(e: &redis::ServerError) -> String {
    match e.details() {
        Some(details) => format!("{} {details}", e.code()),
        None => e.code().to_string(),
    }
}

fn bulk(value: &Value) -> Option<&[u8]> {
    match value {
        Value::BulkString(b) => Some(b),
        _ => None,
    }
}

fn check(
    session: &mut Session,
    expect: &Expect,
    reply: Value,
    tally: &mut Tally,
) -> Result<(), String> {
    let error = match &reply {
        Value::ServerError(e) => Some(error_text(e)),
        _ => None,
    };
    // A session that is gone must stay gone; a short one may go at any time.
    if !expect.before_lookup() && !matches!(expect, Expect::Token) {
        let missing = error.as_deref() == Some(NO_SESSION);
        if session.gone {
            if !missing {
                return Err(format!("the session is gone, but the reply is {reply:?}"));
            }
            tally.missing_sessions += 1;
            return Ok(());
        }
        if missing && session.short {
            session.gone = true;
            tally.timed_out_early += 1;
            tally.missing_sessions += 1;
            return Ok(());
        }
    }
    let unexpected = || Err(format!("expected {expect:?}, got {reply:?}"));
    match expect {
        Expect::Token => {
            let Some(token) = bulk(&reply) else {
                return unexpected();
            };
            let good = match session.v2 {
                false => is_v1(token),
                true => v2_tag(token).is_some(),
            };
            if !good {
                return unexpected();
            }
            session.token = token.to_vec();
            tally.started += 1;
            tally.v2_started += u64::from(session.v2);
        }
        Expect::Rotated { ends } => {
            let Some(token) = bulk(&reply) else {
                return unexpected();
            };
            match v2_tag(token) {
                Some(tag) if tag == slot_tag(&session.token) => {}
                _ => return unexpected(),
            }
            tally.rotated += 1;
            tally.rotated_v1 += u64::from(!session.v2);
            session.token = token.to_vec();
            session.v2 = true;
            session.gone = *ends;
        }
        Expect::Inspect(payloads) => {
            let Some(got) = fields(&reply) else {
                return unexpected();
            };
            let created = match got.get(&b"created"[..]) {
                Some(Value::Int(at)) if session.v2 => Some(*at),
                Some(Value::Nil) if !session.v2 => None,
                _ => return unexpected(),
            };
            let recent = created
                .is_none_or(|at| (now_ms() - 3_600_000..=now_ms() + CLOCK_SLACK_MS).contains(&at));
            let live = matches!(got.get(&b"expires"[..]),
                Some(Value::Int(at)) if *at >= now_ms() - CLOCK_SLACK_MS);
            // deadline = created + MAXLIFE exactly: START reads the clock once.
            let deadline_agrees = match (created, session.maxlife, got.get(&b"deadline"[..])) {
                (Some(at), Some(s), Some(Value::Int(deadline))) => *deadline == at + s * 1000,
                (_, None, Some(Value::Nil)) => true,
                _ => false,
            };
            let want = [
                ("version", Value::Int(if session.v2 { 2 } else { 1 })),
                ("id", Value::BulkString(token_id(&session.token).to_vec())),
                ("owner", Value::Nil),
                ("label", bulk_or_nil(session.label.as_deref())),
                ("payloads", Value::Int(*payloads)),
                ("stale", Value::Int(0)),
            ];
            let same = got.len() == 9
                && want
                    .iter()
                    .all(|(name, value)| got.get(name.as_bytes()) == Some(value));
            if !same || !recent || !live || !deadline_agrees {
                return unexpected();
            }
        }
        Expect::Ok(effect) => {
            if !matches!(reply, Value::Okay) {
                return unexpected();
            }
            match effect {
                Effect::None => {}
                Effect::Set(n) => tally.payloads_set += n,
                Effect::Deleted(n) => tally.payloads_deleted += n,
                Effect::Ended => {
                    tally.ended += 1;
                    session.gone = true;
                }
                Effect::EndedByExpire0 => {
                    tally.ended_by_expire_0 += 1;
                    session.gone = true;
                }
            }
        }
        Expect::Data(data) => {
            if bulk(&reply) != Some(data.as_slice()) {
                return unexpected();
            }
            tally.payloads_read += 1;
        }
        Expect::Many(entries) => {
            let Value::Array(items) = &reply else {
                return unexpected();
            };
            let same = items.len() == entries.len()
                && items.iter().zip(entries).all(|(item, entry)| match entry {
                    Some(data) => bulk(item) == Some(data.as_slice()),
                    None => matches!(item, Value::Nil),
                });
            if !same {
                return unexpected();
            }
            tally.payloads_read += entries.iter().flatten().count() as u64;
        }
        Expect::All(pairs) => {
            let Value::Array(items) = &reply else {
                return unexpected();
            };
            let same = items.len() == 2 * pairs.len()
                && items.chunks(2).zip(pairs).all(|(item, (name, data))| {
                    bulk(&item[0]) == Some(name.as_slice()) && bulk(&item[1]) == Some(data)
                });
            if !same {
                return unexpected();
            }
            tally.payloads_read += pairs.len() as u64;
        }
        Expect::Seconds(lo, hi) => match reply {
            Value::Int(s) if (*lo..=*hi).contains(&s) => {}
            _ => return unexpected(),
        },
        Expect::Error(text) => {
            if error.as_deref() != Some(*text) {
                return unexpected();
            }
            match *text {
                NO_SESSION => tally.missing_sessions += 1,
                FORGED_SIGNATURE => tally.signature_failures += 1,
                MALFORMED_TOKEN => tally.malformed_tokens += 1,
                _ if *text == UNKNOWN_RING.as_str() => tally.unknown_rings += 1,
                _ => {}
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// One connection's share of the sessions.

struct Worker {
    seed: u64,
    rng: StdRng,
    con: Connection,
    tally: Tally,
    /// The server's token-version is 2 for this drive.
    v2: bool,
    owners: Vec<Owner>,
    /// The owner visited next.
    next_owner: usize,
}

impl Worker {
    fn run(
        &mut self,
        ids: std::ops::Range<u64>,
        abort: &AtomicBool,
        progress: &AtomicU64,
    ) -> Result<(), String> {
        let mut waiting: VecDeque<Vec<Session>> = VecDeque::new();
        let mut expiring: VecDeque<(Instant, Vec<Session>)> = VecDeque::new();
        let mut next = ids.start;
        while next < ids.end {
            if abort.load(Ordering::Relaxed) {
                return Err("stopped: another connection failed, or the deadline passed".into());
            }
            let end = (next + BATCH as u64).min(ids.end);
            let mut batch = self.start_batch(next..end)?;
            self.drive(&mut batch)?;
            let (revisit, expire): (Vec<Session>, Vec<Session>) = batch
                .into_iter()
                .filter(|s| s.revisit || s.visit_when_expired)
                .partition(|s| s.revisit);
            waiting.push_back(revisit);
            expiring.push_back((Instant::now() + EXPIRED_AFTER, expire));
            if waiting.len() > REVISIT_AFTER {
                let mut old = waiting.pop_front().unwrap_or_default();
                self.revisit(&mut old)?;
                expiring.push_back((Instant::now() + EXPIRED_AFTER, take_expiring(old)));
            }
            while let Some((at, _)) = expiring.front() {
                if *at > Instant::now() {
                    break;
                }
                if let Some((_, mut gone)) = expiring.pop_front() {
                    self.visit_expired(&mut gone)?;
                }
            }
            self.visit_owners()?;
            progress.fetch_add(end - next, Ordering::Relaxed);
            next = end;
        }
        // The sessions still waiting: each ends, or gets a ttl of 1–2 s.
        while let Some(mut old) = waiting.pop_front() {
            self.revisit(&mut old)?;
            expiring.push_back((Instant::now() + EXPIRED_AFTER, take_expiring(old)));
        }
        while let Some((at, mut gone)) = expiring.pop_front() {
            sleep(at.saturating_duration_since(Instant::now()));
            self.visit_expired(&mut gone)?;
        }
        self.close_owners()
    }

    /// Sessions whose ttl of at most 3 s has passed: every command on them
    /// must find no session, a write as much as a read, and a write must not
    /// bring one back.
    fn visit_expired(&mut self, sessions: &mut [Session]) -> Result<(), String> {
        let mut round = Round::new();
        for (i, session) in sessions.iter_mut().enumerate() {
            session.gone = true;
            let t = session.token.as_slice();
            if self.rng.random_ratio(20, 100) {
                round.push(
                    i,
                    "SESSIONGATE.PSET",
                    &[SIGN_KEY, t, USER, b"after its end"],
                    Expect::Error(NO_SESSION),
                );
            }
            round.push(
                i,
                "SESSIONGATE.PGET",
                &[SIGN_KEY, t, USER],
                Expect::Error(NO_SESSION),
            );
        }
        self.tally.checked_expired += sessions.len() as u64;
        round.run(&mut self.con, sessions, &mut self.tally)
    }

    /// START for each id: 1% with ttl 0, 35% short, the rest long; 15% of
    /// the long ones with MAXLIFE, LABEL or both (in either order), which
    /// makes them v2 whatever the token-version. The others are v2 when the
    /// run's token-version is 2.
    fn start_batch(&mut self, ids: std::ops::Range<u64>) -> Result<Vec<Session>, String> {
        let seed = self.seed;
        let rng = &mut self.rng;
        let mut round = Round::new();
        let mut sessions = Vec::with_capacity(BATCH);
        for (index, id) in ids.enumerate() {
            let draw = rng.random_range(0..100);
            let (ttl, short, gone) = match draw {
                0 => (0, false, true),
                1..=35 => (rng.random_range(1..=3), true, false),
                _ => (rng.random_range(600..=900), false, false),
            };
            let (mut maxlife, mut label_text) = (None, None);
            if !short && !gone && rng.random_ratio(15, 100) {
                match rng.random_range(0..3) {
                    0 => maxlife = Some(rng.random_range(MAXLIFE)),
                    1 => label_text = Some(label(seed, id, rng.random_range(1..=64))),
                    _ => {
                        maxlife = Some(rng.random_range(MAXLIFE));
                        label_text = Some(label(seed, id, rng.random_range(1..=64)));
                    }
                }
            }
            let ttl = ttl.to_string();
            let maxlife_arg = maxlife.map(|s| s.to_string());
            let mut args: Vec<&[u8]> = vec![SIGN_KEY, ttl.as_bytes()];
            let mut options: Vec<[&[u8]; 2]> = Vec::new();
            if let Some(s) = &maxlife_arg {
                options.push([b"MAXLIFE", s.as_bytes()]);
            }
            if let Some(l) = &label_text {
                options.push([b"label", l]);
            }
            if rng.random_ratio(1, 2) {
                options.reverse();
            }
            args.extend(options.iter().flatten());
            sessions.push(Session {
                id,
                token: Vec::new(),
                short,
                gone,
                revisit: false,
                visit_when_expired: false,
                v2: self.v2 || args.len() > 2,
                maxlife,
                label: label_text.clone(),
                ttl_high: 0,
            });
            round.push(index, "SESSIONGATE.START", &args, Expect::Token);
        }
        self.tally.sessions += sessions.len() as u64;
        round.run(&mut self.con, &mut sessions, &mut self.tally)?;
        Ok(sessions)
    }

    /// Every command on each session of a batch just started.
    fn drive(&mut self, sessions: &mut [Session]) -> Result<(), String> {
        let seed = self.seed;
        let rng = &mut self.rng;
        let mut round = Round::new();
        for (i, session) in sessions.iter_mut().enumerate() {
            let token = session.token.clone();
            let t = token.as_slice();
            if session.gone {
                // ttl 0: the token is fine, its session never existed.
                round.push(
                    i,
                    "SESSIONGATE.PGET",
                    &[SIGN_KEY, t, USER],
                    Expect::Error(NO_SESSION),
                );
                continue;
            }
            let user = payload(seed, session.id, 0);
            let cart = payload(seed, session.id, 1);
            let prefs = payload(seed, session.id, 2);
            round.push(
                i,
                "SESSIONGATE.PSET",
                &[SIGN_KEY, t, USER, &user],
                Expect::Ok(Effect::Set(1)),
            );
            round.push(
                i,
                "SESSIONGATE.PMSET",
                &[SIGN_KEY, t, CART, &cart, PREFS, &prefs],
                Expect::Ok(Effect::Set(2)),
            );
            round.push(
                i,
                "SESSIONGATE.PGET",
                &[SIGN_KEY, t, USER],
                Expect::Data(user.clone()),
            );
            round.push(
                i,
                "SESSIONGATE.PMGET",
                &[SIGN_KEY, t, USER, CART, ABSENT],
                Expect::Many(vec![Some(user.clone()), Some(cart.clone()), None]),
            );
            let mut all = vec![
                (USER.to_vec(), user.clone()),
                (CART.to_vec(), cart),
                (PREFS.to_vec(), prefs.clone()),
            ];
            all.sort();
            round.push(i, "SESSIONGATE.PGETALL", &[SIGN_KEY, t], Expect::All(all));
            if rng.random_ratio(4, 100) {
                round.push(i, "SESSIONGATE.INSPECT", &[SIGN_KEY, t], Expect::Inspect(3));
            }
            let ttl = if session.short {
                rng.random_range(1..=3)
            } else {
                rng.random_range(600..=900)
            };
            round.push(
                i,
                "SESSIONGATE.EXPIRE",
                &[SIGN_KEY, t, ttl.to_string().as_bytes()],
                Expect::Ok(Effect::None),
            );
            // The deadline clamps the expiry (docs/commands.md#maxlife). Rounded to the
            // second; a loaded machine may take a while.
            let highest = session.maxlife.map_or(ttl, |s| s.min(ttl));
            session.ttl_high = highest;
            let lowest = if session.short { 0 } else { highest - 30 };
            round.push(
                i,
                "SESSIONGATE.TTL",
                &[SIGN_KEY, t],
                Expect::Seconds(lowest, highest),
            );
            round.push(
                i,
                "SESSIONGATE.PDEL",
                &[SIGN_KEY, t, CART],
                Expect::Ok(Effect::Deleted(1)),
            );
            round.push(
                i,
                "SESSIONGATE.PGET",
                &[SIGN_KEY, t, CART],
                Expect::Error(NO_PAYLOAD),
            );
            if rng.random_ratio(20, 100) {
                round.push(
                    i,
                    "SESSIONGATE.PDEL",
                    &[SIGN_KEY, t, ABSENT],
                    Expect::Ok(Effect::Deleted(0)),
                );
            }
            if rng.random_ratio(5, 100) {
                round.push(
                    i,
                    "SESSIONGATE.PGET",
                    &[WRONG_SIGN_KEY, t, USER],
                    Expect::Error(FORGED_SIGNATURE),
                );
            }
            if rng.random_ratio(2, 100) {
                let mut bad = token.clone();
                if let Some(last) = bad.last_mut() {
                    *last = b'Z'; // not lowercase hex
                }
                round.push(
                    i,
                    "SESSIONGATE.PGET",
                    &[SIGN_KEY, &bad, USER],
                    Expect::Error(MALFORMED_TOKEN),
                );
            }
            if rng.random_ratio(1, 100) {
                round.push(
                    i,
                    "SESSIONGATE.PGET",
                    &[NOPE_RING, t, USER],
                    Expect::Error(UNKNOWN_RING.as_str()),
                );
            }
            match rng.random_range(0..100) {
                0..=24 => {
                    round.push(
                        i,
                        "SESSIONGATE.END",
                        &[SIGN_KEY, t],
                        Expect::Ok(Effect::Ended),
                    );
                    if rng.random_ratio(50, 100) {
                        round.push(
                            i,
                            "SESSIONGATE.PGETALL",
                            &[SIGN_KEY, t],
                            Expect::Error(NO_SESSION),
                        );
                    }
                }
                25..=34 => round.push(
                    i,
                    "SESSIONGATE.EXPIRE",
                    &[SIGN_KEY, t, b"0"],
                    Expect::Ok(Effect::EndedByExpire0),
                ),
                // Short sessions time out by themselves (half are visited
                // once they have); long ones wait.
                _ if session.short => session.visit_when_expired = rng.random_ratio(50, 100),
                _ => session.revisit = true,
            }
        }
        round.run(&mut self.con, sessions, &mut self.tally)
    }

    /// A long session, batches later: its payloads read back and one
    /// overwritten; then, for 25%, ROTATE (keeping the expiry, with TTL 600–900
    /// s, or a few with TTL 0, which ends it): the old token must find no
    /// session at once, and, in a second round, the new one the payloads
    /// carried over (and its expiry, and what INSPECT shows). Then END
    /// (40%), EXPIRE 0 (20%) or a ttl of 1–2 s (40%), with the token the
    /// session has by then.
    fn revisit(&mut self, sessions: &mut [Session]) -> Result<(), String> {
        let seed = self.seed;
        let rng = &mut self.rng;
        let mut round = Round::new();
        let mut rotated = Vec::new();
        for (i, session) in sessions.iter_mut().enumerate() {
            let t = session.token.as_slice();
            let user = payload(seed, session.id, 0);
            let prefs = payload(seed, session.id, 2);
            let user2 = payload(seed, session.id, 3);
            round.push(
                i,
                "SESSIONGATE.PGET",
                &[SIGN_KEY, t, USER],
                Expect::Data(user.clone()),
            );
            let mut all = vec![(USER.to_vec(), user), (PREFS.to_vec(), prefs)];
            all.sort();
            round.push(i, "SESSIONGATE.PGETALL", &[SIGN_KEY, t], Expect::All(all));
            round.push(
                i,
                "SESSIONGATE.PSET",
                &[SIGN_KEY, t, USER, &user2],
                Expect::Ok(Effect::Set(1)),
            );
            round.push(
                i,
                "SESSIONGATE.PGET",
                &[SIGN_KEY, t, USER],
                Expect::Data(user2),
            );
            if !rng.random_ratio(25, 100) {
                finish(rng, &mut round, i, session);
                continue;
            }
            let ttl = match rng.random_range(0..100) {
                0..=2 => Some(0),
                3..=32 => Some(rng.random_range(600..=900)),
                _ => None,
            };
            let ttl_arg = ttl.map(|s| s.to_string());
            let mut args: Vec<&[u8]> = vec![SIGN_KEY, t];
            if let Some(s) = &ttl_arg {
                args.extend([&b"TTL"[..], s.as_bytes()]);
            }
            round.push(
                i,
                "SESSIONGATE.ROTATE",
                &args,
                Expect::Rotated {
                    ends: ttl == Some(0),
                },
            );
            round.push(
                i,
                "SESSIONGATE.PGET",
                &[SIGN_KEY, t, USER],
                Expect::Error(NO_SESSION),
            );
            if rng.random_ratio(20, 100) {
                round.push(
                    i,
                    "SESSIONGATE.PSET",
                    &[SIGN_KEY, t, USER, b"with the old token"],
                    Expect::Error(NO_SESSION),
                );
            }
            // The expiry the new token must show: kept, or TTL's.
            if let Some(s) = ttl.filter(|&s| s > 0) {
                session.ttl_high = session.maxlife.map_or(s, |m| m.min(s));
            }
            rotated.push(i);
        }
        round.run(&mut self.con, sessions, &mut self.tally)?;
        if rotated.is_empty() {
            return Ok(());
        }
        let rng = &mut self.rng;
        let mut round = Round::new();
        for i in rotated {
            let session = &mut sessions[i];
            let t = session.token.as_slice();
            if session.gone {
                // ROTATE TTL 0: the new token's session never began.
                round.push(
                    i,
                    "SESSIONGATE.PGET",
                    &[SIGN_KEY, t, USER],
                    Expect::Error(NO_SESSION),
                );
                continue;
            }
            let mut all = vec![
                (USER.to_vec(), payload(seed, session.id, 3)),
                (PREFS.to_vec(), payload(seed, session.id, 2)),
            ];
            all.sort();
            round.push(i, "SESSIONGATE.PGETALL", &[SIGN_KEY, t], Expect::All(all));
            let high = session.ttl_high;
            round.push(
                i,
                "SESSIONGATE.TTL",
                &[SIGN_KEY, t],
                Expect::Seconds(high - 120, high),
            );
            if rng.random_ratio(30, 100) {
                round.push(i, "SESSIONGATE.INSPECT", &[SIGN_KEY, t], Expect::Inspect(2));
            }
            finish(rng, &mut round, i, session);
        }
        round.run(&mut self.con, sessions, &mut self.tally)
    }
}

impl Worker {
    /// Up to OWNER_VISITS owners, in turn, each visited in one pipeline:
    ///
    /// 1. the tokens of its sessions that are over must find none;
    /// 2. payloads set on its sessions that have none, read back on some,
    ///    and INSPECT on a few;
    /// 3. at most one change: ROTATE (the old token then finds nothing),
    ///    EXPIRE 600–900 s, END, EXPIRE 0, or OEND (all, EXCEPT a token, ID
    ///    some ids and one that is no one's, or a malformed id);
    /// 4. OLIST, which must list exactly the live sessions;
    /// 5. OSTART with LIMIT (EVICT, said or not, 90%; REJECT 10%), MAXLIFE
    ///    and LABEL for some, in any order, and ttl 0 for a few;
    /// 6. OLIST again: the new session there, the evicted ones gone;
    /// 7. for a few, EXPIRE 1 s on a session, and the owner rests until it
    ///    has surely timed out (then its index entry is stale, which OLIST
    ///    must skip and the next OSTART or OEND prune).
    fn visit_owners(&mut self) -> Result<(), String> {
        let n = self.owners.len();
        let now = Instant::now();
        let mut round = OwnerRound::new();
        let mut visited = 0;
        for _ in 0..n {
            if visited == OWNER_VISITS {
                break;
            }
            let o = self.next_owner;
            self.next_owner = (o + 1) % n;
            if self.owners[o].quiet_until.is_some_and(|at| at > now) {
                continue;
            }
            self.owners[o].quiet_until = None;
            self.visit_owner(&mut round, o);
            visited += 1;
        }
        round.run(&mut self.con, &mut self.owners, self.seed, &mut self.tally)
    }

    fn visit_owner(&mut self, round: &mut OwnerRound, o: usize) {
        let seed = self.seed;
        let rng = &mut self.rng;
        let owner = &mut self.owners[o];
        self.tally.owner_visits += 1;
        let name = owner.name.as_slice();
        for token in owner.dead.drain(..) {
            round.push(
                o,
                "SESSIONGATE.PGET",
                &[SIGN_KEY, &token, USER],
                OwnerExpect::Gone,
            );
        }
        for s in owner.live.iter().filter(|s| !s.payloads) {
            let all = owned_payloads(seed, owner.number, s.serial);
            let mut args: Vec<&[u8]> = vec![SIGN_KEY, &s.token];
            for (name, data) in &all {
                args.extend([name.as_slice(), data.as_slice()]);
            }
            round.push(
                o,
                "SESSIONGATE.PMSET",
                &args,
                OwnerExpect::Pmset(s.token.clone()),
            );
        }
        let tokens: Vec<Vec<u8>> = owner.live.iter().map(|s| s.token.clone()).collect();
        let pick = |rng: &mut StdRng| tokens[rng.random_range(0..tokens.len())].clone();
        if !tokens.is_empty() && rng.random_ratio(40, 100) {
            let t = pick(rng);
            round.push(
                o,
                "SESSIONGATE.PGETALL",
                &[SIGN_KEY, &t],
                OwnerExpect::Pgetall(t.clone()),
            );
        }
        if !tokens.is_empty() && rng.random_ratio(5, 100) {
            let t = pick(rng);
            round.push(
                o,
                "SESSIONGATE.INSPECT",
                &[SIGN_KEY, &t],
                OwnerExpect::Inspect(t.clone()),
            );
        }
        let draw = rng.random_range(0..100);
        match draw {
            _ if tokens.is_empty() && draw < 31 => {}
            0..=14 => {
                let t = pick(rng);
                let ttl = rng
                    .random_ratio(30, 100)
                    .then(|| rng.random_range(600..=900));
                let ttl_arg = ttl.map(|s| s.to_string());
                let mut args: Vec<&[u8]> = vec![SIGN_KEY, &t];
                if let Some(s) = &ttl_arg {
                    args.extend([&b"ttl"[..], s.as_bytes()]);
                }
                round.push(
                    o,
                    "SESSIONGATE.ROTATE",
                    &args,
                    OwnerExpect::Rotate(t.clone(), ttl),
                );
                round.push(
                    o,
                    "SESSIONGATE.PGET",
                    &[SIGN_KEY, &t, USER],
                    OwnerExpect::Gone,
                );
            }
            15..=22 => {
                let t = pick(rng);
                let ttl = rng.random_range(600..=900);
                round.push(
                    o,
                    "SESSIONGATE.EXPIRE",
                    &[SIGN_KEY, &t, ttl.to_string().as_bytes()],
                    OwnerExpect::Expire(t.clone(), ttl),
                );
            }
            23..=27 => {
                let t = pick(rng);
                round.push(
                    o,
                    "SESSIONGATE.END",
                    &[SIGN_KEY, &t],
                    OwnerExpect::End(t.clone()),
                );
            }
            28..=30 => {
                let t = pick(rng);
                round.push(
                    o,
                    "SESSIONGATE.EXPIRE",
                    &[SIGN_KEY, &t, b"0"],
                    OwnerExpect::Expire(t.clone(), 0),
                );
            }
            31..=32 => round.push(
                o,
                "SESSIONGATE.OEND",
                &[SIGN_KEY, name],
                OwnerExpect::Oend(Oend::All),
            ),
            33..=34 if !tokens.is_empty() => {
                let t = pick(rng);
                round.push(
                    o,
                    "SESSIONGATE.OEND",
                    &[SIGN_KEY, name, b"EXCEPT", &t],
                    OwnerExpect::Oend(Oend::Except(t.clone())),
                );
            }
            35..=37 if !tokens.is_empty() => {
                let mut ids: Vec<Vec<u8>> = tokens
                    .iter()
                    .filter(|_| rng.random_ratio(1, 2))
                    .map(|t| token_id(t).to_vec())
                    .collect();
                // An id that is no session's: skipped.
                ids.push(
                    (0..16)
                        .map(|_| {
                            b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                [rng.random_range(0..62)]
                        })
                        .collect(),
                );
                let mut args: Vec<&[u8]> = vec![SIGN_KEY, name, b"id"];
                args.extend(ids.iter().map(Vec::as_slice));
                round.push(
                    o,
                    "SESSIONGATE.OEND",
                    &args,
                    OwnerExpect::Oend(Oend::Ids(ids.clone())),
                );
            }
            38 => round.push(
                o,
                "SESSIONGATE.OEND",
                &[SIGN_KEY, name, b"ID", b"not-an-id!"],
                OwnerExpect::BadId,
            ),
            _ => {}
        }
        round.push(
            o,
            "SESSIONGATE.OLIST",
            &[SIGN_KEY, name],
            OwnerExpect::Olist,
        );
        let ttl = match rng.random_ratio(3, 100) {
            true => 0,
            false => rng.random_range(600..=900),
        };
        let maxlife = rng.random_ratio(30, 100).then(|| rng.random_range(MAXLIFE));
        let label_text = rng.random_ratio(50, 100).then(|| {
            let id = OWNED | (owner.number << 24) | (owner.serials + 1);
            label(seed, id, rng.random_range(1..=64))
        });
        let reject = rng.random_ratio(10, 100);
        let (ttl_arg, maxlife_arg) = (ttl.to_string(), maxlife.map(|m| m.to_string()));
        let limit = owner.limit.to_string();
        let mut options: Vec<Vec<&[u8]>> = vec![match (reject, rng.random_range(0..2)) {
            (true, _) => vec![b"LIMIT", limit.as_bytes(), b"REJECT"],
            (false, 0) => vec![b"limit", limit.as_bytes()],
            (false, _) => vec![b"LIMIT", limit.as_bytes(), b"evict"],
        }];
        if let Some(m) = &maxlife_arg {
            options.push(vec![b"MAXLIFE", m.as_bytes()]);
        }
        if let Some(l) = &label_text {
            options.push(vec![b"LABEL", l]);
        }
        let turn = rng.random_range(0..options.len());
        options.rotate_left(turn);
        let mut args: Vec<&[u8]> = vec![SIGN_KEY, name, ttl_arg.as_bytes()];
        args.extend(options.iter().flatten());
        round.push(
            o,
            "SESSIONGATE.OSTART",
            &args,
            OwnerExpect::Ostart {
                ttl,
                maxlife,
                label: label_text.clone(),
                reject,
            },
        );
        round.push(
            o,
            "SESSIONGATE.OLIST",
            &[SIGN_KEY, name],
            OwnerExpect::Olist,
        );
        if !tokens.is_empty() && rng.random_ratio(4, 100) {
            let t = pick(rng);
            round.push(
                o,
                "SESSIONGATE.EXPIRE",
                &[SIGN_KEY, &t, b"1"],
                OwnerExpect::Expire(t.clone(), 1),
            );
        }
    }

    /// The end of a drive: once every owner's short session has timed out,
    /// each owner's sessions are ended, by OEND (70%) or by OEND EXCEPT one
    /// and END of that one (the index then loses its last member through
    /// END), and OLIST must list none: no session and no index is left.
    fn close_owners(&mut self) -> Result<(), String> {
        if let Some(at) = self.owners.iter().filter_map(|o| o.quiet_until).max() {
            sleep(at.saturating_duration_since(Instant::now()));
        }
        let n = self.owners.len();
        for first in (0..n).step_by(OWNERS_CLOSED_PER_ROUND) {
            let mut round = OwnerRound::new();
            for o in first..n.min(first + OWNERS_CLOSED_PER_ROUND) {
                let owner = &mut self.owners[o];
                let name = owner.name.as_slice();
                for token in owner.dead.drain(..) {
                    round.push(
                        o,
                        "SESSIONGATE.PGET",
                        &[SIGN_KEY, &token, USER],
                        OwnerExpect::Gone,
                    );
                }
                if !owner.live.is_empty() && self.rng.random_ratio(30, 100) {
                    let t = owner.live[self.rng.random_range(0..owner.live.len())]
                        .token
                        .clone();
                    round.push(
                        o,
                        "SESSIONGATE.OEND",
                        &[SIGN_KEY, name, b"except", &t],
                        OwnerExpect::Oend(Oend::Except(t.clone())),
                    );
                    round.push(
                        o,
                        "SESSIONGATE.END",
                        &[SIGN_KEY, &t],
                        OwnerExpect::End(t.clone()),
                    );
                } else {
                    round.push(
                        o,
                        "SESSIONGATE.OEND",
                        &[SIGN_KEY, name],
                        OwnerExpect::Oend(Oend::All),
                    );
                }
                round.push(
                    o,
                    "SESSIONGATE.OLIST",
                    &[SIGN_KEY, name],
                    OwnerExpect::Olist,
                );
            }
            round.run(&mut self.con, &mut self.owners, self.seed, &mut self.tally)?;
        }
        Ok(())
    }
}

/// A revisited session's end: END (40%), EXPIRE 0 (20%) or a ttl of 1–2 s
/// (40%), half of those visited again once it has passed.
fn finish(rng: &mut StdRng, round: &mut Round, i: usize, session: &mut Session) {
    let t = session.token.as_slice();
    match rng.random_range(0..100) {
        0..=39 => round.push(
            i,
            "SESSIONGATE.END",
            &[SIGN_KEY, t],
            Expect::Ok(Effect::Ended),
        ),
        40..=59 => round.push(
            i,
            "SESSIONGATE.EXPIRE",
            &[SIGN_KEY, t, b"0"],
            Expect::Ok(Effect::EndedByExpire0),
        ),
        _ => {
            let ttl = rng.random_range(1..=2).to_string();
            round.push(
                i,
                "SESSIONGATE.EXPIRE",
                &[SIGN_KEY, t, ttl.as_bytes()],
                Expect::Ok(Effect::None),
            );
            session.visit_when_expired = rng.random_ratio(50, 100);
        }
    }
}

/// The sessions of a revisit that were left to time out.
fn take_expiring(sessions: Vec<Session>) -> Vec<Session> {
    sessions
        .into_iter()
        .filter(|s| s.visit_when_expired)
        .collect()
}

// ---------------------------------------------------------------------------
// Owners (docs/keys.md#owner-index). Each connection has owners of its own, so what an
// owner holds is known exactly between its visits, and every OSTART's
// evictions, OEND's count and OLIST's entries are decided by the model.

/// Sessions of a drive per owner: a million sessions give 4,000 owners.
const SESSIONS_PER_OWNER: u64 = 250;
/// Owners a connection visits after each batch (owners waiting for a
/// session of theirs to time out are skipped).
const OWNER_VISITS: usize = 20;
/// Owners closed in one pipeline at the end.
const OWNERS_CLOSED_PER_ROUND: usize = 100;
/// Owned sessions' payloads derive from ids past any session's.
const OWNED: u64 = 1 << 62;
/// docs/commands.md#session-lifecycle: an OEND ID that is not 16 of [A-Za-z0-9].
const BAD_ID: &str = "<id> format is invalid";

/// docs/commands.md#session-lifecycle: LIMIT reached with REJECT.
fn too_many_sessions(limit: usize) -> String {
    format!("the owner has reached the maximum number of sessions allowed of {limit}")
}

/// Owner `k` of a drive whose names start with `prefix`: plain, with a hash
/// tag some owners share (so their indexes share a slot), binary, with
/// `{}` (the whole name is hashed) and with nested braces.
fn owner_name(prefix: &str, k: u64) -> Vec<u8> {
    match k % 5 {
        0 => format!("{prefix}-user-{k}").into_bytes(),
        1 => format!("{prefix}-u{{team{}}}-{k}", k / 10).into_bytes(),
        2 => [&b"\xff\0"[..], format!("{prefix} {k}").as_bytes()].concat(),
        3 => format!("{{}}{prefix}-{k}").into_bytes(),
        _ => format!("{prefix}-a{{b{{c}}d}}-{k}").into_bytes(),
    }
}

/// When an owned session expires, as far as the model knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expiry {
    /// As OLIST or INSPECT showed it, Unix ms.
    Exact(i64),
    /// Set by a call between these client times (plus the ttl).
    Between(i64, i64),
}

struct Owned {
    /// Its payloads derive from this, which ROTATE does not change.
    serial: u64,
    token: Vec<u8>,
    /// Unix ms, once OLIST has shown it.
    created: Option<i64>,
    /// The client's clock around the OSTART.
    started: (i64, i64),
    expires: Expiry,
    /// Until OLIST first shows it: OSTART set the expiry this many ms after
    /// `created` (min(ttl, maxlife)), exactly.
    fresh: Option<i64>,
    maxlife: Option<i64>,
    label: Option<Vec<u8>>,
    /// USER and CART set.
    payloads: bool,
}

impl Owned {
    fn id(&self) -> &[u8] {
        token_id(&self.token)
    }

    fn deadline(&self) -> Option<i64> {
        Some(self.created? + self.maxlife? * 1000)
    }

    /// An expiry `ttl` s after a call made between `t0` and `t1`, clamped
    /// by the deadline.
    fn moved(&self, ttl: i64, (t0, t1): (i64, i64)) -> Expiry {
        let clamp = |at: i64| self.deadline().map_or(at, |d| at.min(d));
        Expiry::Between(clamp(t0 + ttl * 1000), clamp(t1 + ttl * 1000))
    }
}

struct Owner {
    name: Vec<u8>,
    /// The canonical tag of the owner's slot: every session of the owner's
    /// must carry it.
    tag: &'static [u8],
    /// OSTART's LIMIT for this owner: 2 to 5.
    limit: usize,
    number: u64,
    serials: u64,
    /// The live sessions, oldest first.
    live: Vec<Owned>,
    /// Tokens whose sessions are over (evicted, ended, timed out, or never
    /// began): the next visit checks that they find none.
    dead: Vec<Vec<u8>>,
    /// A session of the owner's was given a ttl of 1 s: not visited before
    /// this, when it has surely expired.
    quiet_until: Option<Instant>,
}

impl Owner {
    fn new(prefix: &str, k: u64) -> Self {
        let name = owner_name(prefix, k);
        Owner {
            tag: canonical_tag(key_hash_slot(&name)).as_bytes(),
            name,
            limit: 2 + (k % 4) as usize,
            number: k,
            serials: 0,
            live: Vec::new(),
            dead: Vec::new(),
            quiet_until: None,
        }
    }
}

/// The payloads of owned session `serial`: (name, data) by name.
fn owned_payloads(seed: u64, number: u64, serial: u64) -> Vec<(Vec<u8>, Vec<u8>)> {
    let id = OWNED | (number << 24) | serial;
    let mut all = vec![
        (USER.to_vec(), payload(seed, id, 0)),
        (CART.to_vec(), payload(seed, id, 1)),
    ];
    all.sort();
    all
}

#[derive(Debug)]
enum Oend {
    All,
    Except(Vec<u8>),
    Ids(Vec<Vec<u8>>),
}

/// What an owner command's reply must be. Where a command is sent with an
/// owned session's token, what it must do is decided when its reply is
/// checked: a session the model no longer has live (an earlier command of
/// the pipeline evicted, ended or rotated it) must not be found.
#[derive(Debug)]
enum OwnerExpect {
    /// The token's session is over.
    Gone,
    Pmset(Vec<u8>),
    Pgetall(Vec<u8>),
    Inspect(Vec<u8>),
    Rotate(Vec<u8>, Option<i64>),
    Expire(Vec<u8>, i64),
    End(Vec<u8>),
    Oend(Oend),
    BadId,
    Ostart {
        ttl: i64,
        maxlife: Option<i64>,
        label: Option<Vec<u8>>,
        reject: bool,
    },
    Olist,
}

impl OwnerExpect {
    fn token(&self) -> Option<&[u8]> {
        use OwnerExpect::*;
        match self {
            Pmset(t) | Pgetall(t) | Inspect(t) | Rotate(t, _) | Expire(t, _) | End(t) => Some(t),
            Oend(self::Oend::Except(t)) => Some(t),
            _ => None,
        }
    }
}

/// One pipeline of owner commands and what each reply must be.
struct OwnerRound {
    pipe: redis::Pipeline,
    checks: Vec<(usize, &'static str, OwnerExpect)>,
}

impl OwnerRound {
    fn new() -> Self {
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        OwnerRound {
            pipe,
            checks: Vec::new(),
        }
    }

    /// Queues `command` for owner `index` (of the slice `run` gets).
    fn push(&mut self, index: usize, command: &'static str, args: &[&[u8]], expect: OwnerExpect) {
        let cmd = self.pipe.cmd(command);
        for arg in args {
            cmd.arg(*arg);
        }
        self.checks.push((index, command, expect));
    }

    fn run(
        self,
        con: &mut Connection,
        owners: &mut [Owner],
        seed: u64,
        tally: &mut Tally,
    ) -> Result<(), String> {
        if self.checks.is_empty() {
            return Ok(());
        }
        let before = now_ms();
        let replies: Vec<Value> = self
            .pipe
            .query(con)
            .map_err(|e| format!("transport error: {e}"))?;
        let window = (before, now_ms());
        if replies.len() != self.checks.len() {
            return Err(format!(
                "{} replies to {} commands",
                replies.len(),
                self.checks.len()
            ));
        }
        for ((index, command, expect), reply) in self.checks.into_iter().zip(replies) {
            let owner = &mut owners[index];
            tally.operations += 1;
            *tally.by_command.entry(command).or_default() += 1;
            check_owned(owner, &expect, reply, window, seed, tally).map_err(|problem| {
                format!(
                    "{command} for owner {:?} (limit {}, {} live sessions in the model): {problem}",
                    String::from_utf8_lossy(&owner.name),
                    owner.limit,
                    owner.live.len(),
                )
            })?;
        }
        Ok(())
    }
}

fn check_owned(
    owner: &mut Owner,
    expect: &OwnerExpect,
    reply: Value,
    window: (i64, i64),
    seed: u64,
    tally: &mut Tally,
) -> Result<(), String> {
    let error = match &reply {
        Value::ServerError(e) => Some(error_text(e)),
        _ => None,
    };
    let unexpected = |what: &dyn std::fmt::Debug| Err(format!("expected {what:?}, got {reply:?}"));
    let at = match expect.token() {
        None => 0,
        Some(token) => match owner.live.iter().position(|s| s.token == token) {
            Some(at) => at,
            None => {
                if error.as_deref() != Some(NO_SESSION) {
                    return unexpected(&format!("{NO_SESSION}: the owner has no such session"));
                }
                tally.missing_sessions += 1;
                return Ok(());
            }
        },
    };
    match expect {
        OwnerExpect::Gone => {
            if error.as_deref() != Some(NO_SESSION) {
                return unexpected(&NO_SESSION);
            }
            tally.missing_sessions += 1;
        }
        OwnerExpect::BadId => {
            if error.as_deref() != Some(BAD_ID) {
                return unexpected(&BAD_ID);
            }
        }
        OwnerExpect::Pmset(_) => {
            if reply != Value::Okay {
                return unexpected(&"OK");
            }
            owner.live[at].payloads = true;
            tally.payloads_set += 2;
        }
        OwnerExpect::Pgetall(_) => {
            let s = &owner.live[at];
            let want = match s.payloads {
                true => owned_payloads(seed, owner.number, s.serial),
                false => Vec::new(),
            };
            let same = matches!(&reply, Value::Array(items)
            if items.len() == 2 * want.len()
                && items.chunks(2).zip(&want).all(|(item, (name, data))| {
                    bulk(&item[0]) == Some(name.as_slice()) && bulk(&item[1]) == Some(data)
                }));
            if !same {
                return unexpected(&want);
            }
            tally.payloads_read += want.len() as u64;
        }
        OwnerExpect::Inspect(_) => {
            let s = &mut owner.live[at];
            let got = fields(&reply).filter(|f| f.len() == 9);
            let expires = match got.as_ref().and_then(|f| f.get(&b"expires"[..])) {
                Some(Value::Int(at)) => *at,
                _ => return unexpected(&"INSPECT's 9 fields"),
            };
            let want = [
                ("version", Value::Int(2)),
                ("id", Value::BulkString(s.id().to_vec())),
                ("created", int_or_nil(s.created)),
                ("deadline", int_or_nil(s.deadline())),
                ("owner", Value::BulkString(owner.name.clone())),
                ("label", bulk_or_nil(s.label.as_deref())),
                ("payloads", Value::Int(if s.payloads { 2 } else { 0 })),
                ("stale", Value::Int(0)),
            ];
            let same = got.is_some_and(|got| {
                want.iter()
                    .all(|(name, value)| got.get(name.as_bytes()) == Some(value))
            });
            if !same || !expiry_agrees(s.expires, expires) {
                return unexpected(&(want, s.expires));
            }
            s.expires = Expiry::Exact(expires);
        }
        OwnerExpect::Rotate(_, ttl) => {
            let token = match bulk(&reply) {
                Some(token) if v2_tag(token) == Some(owner.tag) => token,
                _ => return unexpected(&"a v2 token in the owner's slot"),
            };
            let s = &mut owner.live[at];
            s.token = token.to_vec();
            if let Some(ttl) = ttl {
                s.expires = s.moved(*ttl, window);
                s.fresh = None;
            }
            tally.rotated += 1;
        }
        OwnerExpect::Expire(_, ttl) => {
            if reply != Value::Okay {
                return unexpected(&"OK");
            }
            match ttl {
                0 => {
                    owner.dead.push(owner.live.remove(at).token);
                    tally.ended_by_expire_0 += 1;
                }
                1..=3 => {
                    owner.dead.push(owner.live.remove(at).token);
                    owner.quiet_until = Some(Instant::now() + EXPIRED_AFTER);
                }
                _ => {
                    let s = &mut owner.live[at];
                    s.expires = s.moved(*ttl, window);
                    s.fresh = None;
                }
            }
        }
        OwnerExpect::End(_) => {
            if reply != Value::Okay {
                return unexpected(&"OK");
            }
            owner.dead.push(owner.live.remove(at).token);
            tally.ended += 1;
        }
        OwnerExpect::Oend(which) => {
            let ends = |s: &Owned| match which {
                Oend::All => true,
                Oend::Except(kept) => s.token != *kept,
                Oend::Ids(ids) => ids.iter().any(|id| id == s.id()),
            };
            let n = owner.live.iter().filter(|s| ends(s)).count();
            if reply != Value::Int(n as i64) {
                return unexpected(&n);
            }
            let (ended, kept): (Vec<Owned>, Vec<Owned>) =
                std::mem::take(&mut owner.live).into_iter().partition(ends);
            owner.live = kept;
            owner.dead.extend(ended.into_iter().map(|s| s.token));
            tally.ended_by_owner += n as u64;
        }
        OwnerExpect::Ostart {
            ttl,
            maxlife,
            label,
            reject,
        } => {
            let minted = |reply: &Value| {
                bulk(reply)
                    .filter(|token| v2_tag(token) == Some(owner.tag))
                    .map(<[u8]>::to_vec)
            };
            if *ttl == 0 {
                // START's ttl 0: a token, nothing stored, nothing evicted.
                let Some(token) = minted(&reply) else {
                    return unexpected(&"a v2 token in the owner's slot");
                };
                owner.dead.push(token);
                tally.started += 1;
                tally.v2_started += 1;
                tally.owned_started += 1;
                return Ok(());
            }
            let live = owner.live.len();
            if live >= owner.limit && *reject {
                let text = too_many_sessions(owner.limit);
                if error.as_deref() != Some(text.as_str()) {
                    return unexpected(&text);
                }
                return Ok(());
            }
            let Some(token) = minted(&reply) else {
                return unexpected(&"a v2 token in the owner's slot");
            };
            if live >= owner.limit {
                // EVICT: the sessions that expire first, as the index
                // orders them (score, then id), until the new one fits.
                let mut order = Vec::with_capacity(live);
                for (i, s) in owner.live.iter().enumerate() {
                    let Expiry::Exact(at) = s.expires else {
                        return Err(
                            "the model does not know an expiry exactly before an eviction".into(),
                        );
                    };
                    order.push((at, s.id().to_vec(), i));
                }
                order.sort();
                let mut evicted: Vec<usize> =
                    order[..=live - owner.limit].iter().map(|e| e.2).collect();
                evicted.sort_unstable_by(|a, b| b.cmp(a));
                for i in evicted {
                    owner.dead.push(owner.live.remove(i).token);
                    tally.evicted += 1;
                }
            }
            let lifetime = maxlife.map_or(*ttl, |m| m.min(*ttl)) * 1000;
            owner.serials += 1;
            owner.live.push(Owned {
                serial: owner.serials,
                token,
                created: None,
                started: window,
                expires: Expiry::Between(window.0 + lifetime, window.1 + lifetime),
                fresh: Some(lifetime),
                maxlife: *maxlife,
                label: label.clone(),
                payloads: false,
            });
            tally.started += 1;
            tally.v2_started += 1;
            tally.owned_started += 1;
        }
        OwnerExpect::Olist => check_olist(owner, &reply, tally)?,
    }
    Ok(())
}

/// An expiry read back against what the model knows.
fn expiry_agrees(known: Expiry, at: i64) -> bool {
    match known {
        Expiry::Exact(known) => at == known,
        Expiry::Between(lo, hi) => (lo - CLOCK_SLACK_MS..=hi + CLOCK_SLACK_MS).contains(&at),
    }
}

/// OLIST: every live session of the owner's and no other, oldest first,
/// each with what the model knows of it; what it did not know exactly yet
/// (a new session's `created`, an expiry that was moved), it learns.
fn check_olist(owner: &mut Owner, reply: &Value, tally: &mut Tally) -> Result<(), String> {
    let Value::Array(entries) = reply else {
        return Err(format!("expected an array, got {reply:?}"));
    };
    if entries.len() != owner.live.len() {
        return Err(format!(
            "{} sessions listed, the owner has {}: {reply:?}",
            entries.len(),
            owner.live.len()
        ));
    }
    let mut previous: Option<(i64, Vec<u8>)> = None;
    for entry in entries {
        let bad = || format!("entry {entry:?} of {reply:?}");
        let f = fields(entry).filter(|f| f.len() == 5).ok_or_else(bad)?;
        let (Some(Value::BulkString(id)), Some(Value::Int(created)), Some(Value::Int(expires))) = (
            f.get(&b"id"[..]),
            f.get(&b"created"[..]),
            f.get(&b"expires"[..]),
        ) else {
            return Err(bad());
        };
        if previous
            .as_ref()
            .is_some_and(|(at, first)| (*at, first.as_slice()) >= (*created, id.as_slice()))
        {
            return Err(format!("not oldest first: {reply:?}"));
        }
        previous = Some((*created, id.clone()));
        let Some(s) = owner.live.iter_mut().find(|s| s.id() == id.as_slice()) else {
            return Err(format!(
                "{} is not a live session of the owner's: {reply:?}",
                String::from_utf8_lossy(id)
            ));
        };
        let was = s.created;
        let created_agrees = match was {
            Some(known) => known == *created,
            None => (s.started.0 - CLOCK_SLACK_MS..=s.started.1 + CLOCK_SLACK_MS).contains(created),
        };
        s.created = Some(*created);
        let fresh_agrees = s.fresh.take().is_none_or(|ms| *expires == created + ms);
        let same = created_agrees
            && fresh_agrees
            && expiry_agrees(s.expires, *expires)
            && f.get(&b"deadline"[..]) == Some(&int_or_nil(s.deadline()))
            && f.get(&b"label"[..]) == Some(&bulk_or_nil(s.label.as_deref()));
        if !same {
            return Err(format!(
                "{} (created {:?}, {:?}, maxlife {:?}, label {:?}) listed as {entry:?}",
                String::from_utf8_lossy(id),
                was,
                s.expires,
                s.maxlife,
                s.label
            ));
        }
        s.expires = Expiry::Exact(*expires);
        tally.listed += 1;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The run.

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number")),
        Err(_) => default,
    }
}

fn used_memory(con: &mut Connection) -> u64 {
    memory_field(con, "used_memory")
}

fn memory_field(con: &mut Connection, field: &str) -> u64 {
    info_field(con, "memory", field)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in INFO memory"))
}

fn dbsize(con: &mut Connection) -> u64 {
    redis::cmd("DBSIZE").query(con).expect("DBSIZE")
}

fn mib(bytes: u64) -> String {
    format!("{:.2} MiB ({bytes} B)", bytes as f64 / (1024.0 * 1024.0))
}

/// Waits until used_memory reads the same five times in a row, 200 ms
/// apart (Redis shrinks its emptied hash tables in its cron), or until the
/// deadline; returns the last reading.
fn settled_memory(con: &mut Connection) -> u64 {
    let started = Instant::now();
    let mut last = used_memory(con);
    let mut same = 0;
    while same < 5 && started.elapsed() < SETTLE_DEADLINE {
        sleep(Duration::from_millis(200));
        let now = used_memory(con);
        same = if now == last { same + 1 } else { 0 };
        last = now;
    }
    last
}

#[test]
#[ignore = "make soak: a million sessions against the release module, minutes long"]
fn a_million_sessions_through_every_command_leave_memory_where_it_started() {
    let sessions = env_number("SOAK_SESSIONS", 1_000_000);
    let connections = env_number("SOAK_CONNECTIONS", 4).max(1);
    let deadline = Duration::from_secs(env_number("SOAK_DEADLINE", 900));
    let seed = env_number(
        "SOAK_SEED",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    );
    if std::env::var_os("SESSIONGATE_MODULE").is_none() {
        // The harness defaults to the debug build; a soak wants the release one.
        let target = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .expect("target dir")
            .to_path_buf();
        std::env::set_var(
            "SESSIONGATE_MODULE",
            target.join("release/libsessiongate.so"),
        );
    }
    let server = Server::start(&["--hz", "100", "--notify-keyspace-events", "KEA"]);
    let failures = soak(&server, sessions, connections, deadline, seed);
    if failures.is_empty() {
        println!("\nsoak: PASS");
        return;
    }
    eprintln!("{}", server.failure("soak: FAIL"));
    for failure in &failures {
        eprintln!("  - {failure}");
    }
    eprintln!(
        "replay with SOAK_SEED={seed} SOAK_SESSIONS={sessions} SOAK_CONNECTIONS={connections}"
    );
    // The server's directory is kept for its log; the server itself is not.
    let dir = server.kill();
    eprintln!("server directory kept: {}", dir.display());
    panic!("soak: {} failures (listed above)", failures.len());
}

/// Sessions of the warm-up run, not counted: see `soak`.
const WARMUP_SESSIONS: u64 = 4_000;

const COUNTERS: &[&str] = &[
    "sessions_started",
    "sessions_ended",
    "sessions_ended_by_expire_0",
    "payloads_set",
    "payloads_read",
    "payloads_deleted",
    "signature_failures",
    "malformed_tokens",
    "missing_sessions",
    "unknown_rings",
    "ids_drawn",
    "sessions_rotated",
    "sessions_evicted",
    "sessions_ended_by_owner",
];

fn counters(con: &mut Connection) -> Vec<u64> {
    COUNTERS
        .iter()
        .map(|field| {
            info_field(con, "sessiongate", &format!("sessiongate_{field}"))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no sessiongate_{field} in INFO sessiongate"))
        })
        .collect()
}

/// What a drive did, as INFO sessiongate counts it (COUNTERS' order).
fn expected_counters(tally: &Tally) -> [u64; COUNTERS.len()] {
    [
        tally.started,
        tally.ended,
        tally.ended_by_expire_0,
        tally.payloads_set,
        tally.payloads_read,
        tally.payloads_deleted,
        tally.signature_failures,
        tally.malformed_tokens,
        tally.missing_sessions,
        tally.unknown_rings,
        // One id drawn per token minted: in standalone a drawn id is taken
        // only when it collides with a live one, which for ids of 62^16
        // values and at most a million sessions does not happen.
        tally.started + tally.rotated,
        tally.rotated,
        tally.evicted,
        tally.ended_by_owner,
    ]
}

/// Waits until the keyspace is empty, or the deadline; the keys left.
fn drain(con: &mut Connection) -> u64 {
    let started = Instant::now();
    while dbsize(con) > 0 && started.elapsed() < DRAIN_DEADLINE {
        sleep(Duration::from_millis(100));
    }
    dbsize(con)
}

/// Sessions `ids` in two halves: the first with `sessiongate.token-version`
/// 1, the second with 2 (each its own `drive`, as the config is the whole
/// server's). What the halves add up to, as `drive`.
fn drive_both_versions(
    server: &Server,
    ids: std::ops::Range<u64>,
    connections: u64,
    deadline: Duration,
    seed: u64,
    report: bool,
) -> (Tally, Vec<String>, u64) {
    let started = Instant::now();
    let middle = ids.start + (ids.end - ids.start) / 2;
    let mut control = server.connection();
    let mut tally = Tally::default();
    let mut failures = Vec::new();
    let mut peak_keys = 0;
    for (version, half) in [(1, ids.start..middle), (2, middle..ids.end)] {
        let set: redis::RedisResult<Value> = redis::cmd("CONFIG")
            .arg("SET")
            .arg("sessiongate.token-version")
            .arg(version)
            .query(&mut control);
        if let Err(e) = set {
            failures.push(format!(
                "CONFIG SET sessiongate.token-version {version}: {e}"
            ));
            break;
        }
        if report {
            println!("  token-version {version}: sessions {half:?}");
        }
        let left = deadline.saturating_sub(started.elapsed());
        let (t, f, peak) = drive(server, half, connections, left, seed, report, version == 2);
        tally.merge(&t);
        peak_keys = peak_keys.max(peak);
        failures.extend(f);
        if !failures.is_empty() {
            break;
        }
    }
    (tally, failures, peak_keys)
}

/// Sessions `ids` spread over `connections` connections, each on a thread;
/// progress every 10 s if `report`; `v2` when the server's token-version
/// is 2. The sum of the tallies, each connection's failure, and the
/// largest DBSIZE seen.
fn drive(
    server: &Server,
    ids: std::ops::Range<u64>,
    connections: u64,
    deadline: Duration,
    seed: u64,
    report: bool,
    v2: bool,
) -> (Tally, Vec<String>, u64) {
    let abort = AtomicBool::new(false);
    let progress = AtomicU64::new(0);
    let peak_keys = AtomicU64::new(0);
    let url = format!("unix://{}", server.socket().display());
    let results: Mutex<Vec<Result<Tally, String>>> = Mutex::new(Vec::new());
    let started = Instant::now();
    let count = ids.end - ids.start;
    let owners = (count / SESSIONS_PER_OWNER).max(connections);
    // Owner names of this drive's own: the warm-up's and each half's differ.
    let prefix = format!("o{}", ids.start);
    std::thread::scope(|scope| {
        for n in 0..connections {
            let (abort, progress, results, url, prefix) =
                (&abort, &progress, &results, &url, &prefix);
            let first = ids.start + count * n / connections;
            let last = ids.start + count * (n + 1) / connections;
            scope.spawn(move || {
                let outcome = redis::Client::open(url.as_str())
                    .and_then(|c| c.get_connection())
                    .map_err(|e| format!("connect: {e}"))
                    .and_then(|con| {
                        let mut worker = Worker {
                            seed,
                            rng: StdRng::seed_from_u64(
                                seed ^ (first + 1).wrapping_mul(0xA076_1D64_78BD_642F),
                            ),
                            con,
                            tally: Tally::default(),
                            v2,
                            owners: (owners * n / connections..owners * (n + 1) / connections)
                                .map(|k| Owner::new(prefix, k))
                                .collect(),
                            next_owner: 0,
                        };
                        worker
                            .run(first..last, abort, progress)
                            .map(|()| worker.tally)
                    });
                if outcome.is_err() {
                    abort.store(true, Ordering::Relaxed);
                }
                results.lock().unwrap().push(outcome);
            });
        }
        // Progress, the deadline, and the largest keyspace seen.
        let (abort, progress, peak_keys, results) = (&abort, &progress, &peak_keys, &results);
        let mut watch = server.connection();
        scope.spawn(move || {
            let mut last_print = Instant::now();
            while results.lock().unwrap().len() < connections as usize {
                let keys = dbsize(&mut watch);
                peak_keys.fetch_max(keys, Ordering::Relaxed);
                if report && last_print.elapsed() >= Duration::from_secs(10) {
                    last_print = Instant::now();
                    println!(
                        "  {:>4.0} s: {:>8} sessions started, {keys} keys, used_memory {}",
                        started.elapsed().as_secs_f64(),
                        progress.load(Ordering::Relaxed),
                        mib(used_memory(&mut watch)),
                    );
                }
                if started.elapsed() > deadline && !abort.load(Ordering::Relaxed) {
                    println!("  deadline of {} s passed: stopping", deadline.as_secs());
                    abort.store(true, Ordering::Relaxed);
                }
                sleep(Duration::from_millis(100));
            }
        });
    });
    let mut tally = Tally::default();
    let mut failures = Vec::new();
    for result in results.into_inner().unwrap() {
        match result {
            Ok(t) => tally.merge(&t),
            Err(e) => failures.push(e),
        }
    }
    if tally.sessions != count && failures.is_empty() {
        failures.push(format!("{} sessions driven of {count}", tally.sessions));
    }
    (tally, failures, peak_keys.load(Ordering::Relaxed))
}

fn soak(
    server: &Server,
    sessions: u64,
    connections: u64,
    deadline: Duration,
    seed: u64,
) -> Vec<String> {
    let mut control = server.connection();
    let version = info_field(&mut control, "server", "redis_version").unwrap_or_default();
    println!(
        "sessiongate soak: Redis {version}, module {}, {sessions} sessions over {connections} \
         connections (pipelines of {BATCH} sessions), seed {seed}",
        common::module_path().display()
    );
    let log_path = server.dir.join("redis.log");
    let log_at_start = std::fs::metadata(&log_path).map_or(0, |m| m.len() as usize);

    // Warm-up, the same workload on a few thousand sessions (ids past the
    // run's), so that what Redis allocates once and keeps is in the
    // baseline: above all Redis 7's per-command latency histogram
    // (`latency-tracking`, on by default), about 72 KB for each command the
    // first time it is called: the 15 module commands (ROTATE, INSPECT and
    // the owner commands too: each is certain to be called by a few
    // thousand sessions and a dozen owners), CONFIG SET (token-version)
    // and the ones used here.
    let warmup = sessions..sessions + WARMUP_SESSIONS;
    let (_, warmup_failures, _) =
        drive_both_versions(server, warmup, connections, deadline, seed, false);
    if !warmup_failures.is_empty() {
        return warmup_failures;
    }
    let left = drain(&mut control);
    if left > 0 {
        return vec![format!(
            "warm-up: {left} keys left after {} s",
            DRAIN_DEADLINE.as_secs()
        )];
    }
    // Every command the measurement itself uses, once.
    let _: redis::RedisResult<Value> = redis::cmd("SLOWLOG").arg("LEN").query(&mut control);
    let _: redis::RedisResult<Value> = redis::cmd("SLOWLOG").arg("RESET").query(&mut control);
    let _: redis::RedisResult<Value> = redis::cmd("MEMORY").arg("PURGE").query(&mut control);
    let _ = info_field(&mut control, "stats", "expired_keys");
    let base = counters(&mut control);
    let before = settled_memory(&mut control);
    let rss_before = memory_field(&mut control, "used_memory_rss");
    println!(
        "warm-up of {WARMUP_SESSIONS} sessions done; used_memory before: {}",
        mib(before)
    );

    let started = Instant::now();
    let (tally, mut failures, peak_keys) =
        drive_both_versions(server, 0..sessions, connections, deadline, seed, true);
    let elapsed = started.elapsed();

    // The module's counters against what the replies add up to.
    let now = counters(&mut control);
    for (i, expected) in expected_counters(&tally).into_iter().enumerate() {
        let got = now[i] - base[i];
        if got != expected {
            failures.push(format!(
                "INFO sessiongate_{} moved by {got}, the replies add up to {expected}",
                COUNTERS[i]
            ));
        }
    }

    // Every session has ended or expires within seconds.
    let drain_started = Instant::now();
    let keys_at_end = dbsize(&mut control);
    let keys_left = drain(&mut control);
    let drain_time = drain_started.elapsed();
    if keys_left > 0 {
        failures.push(format!(
            "{keys_left} keys left {} s after the drive",
            DRAIN_DEADLINE.as_secs()
        ));
    }
    let expired_keys = info_field(&mut control, "stats", "expired_keys").unwrap_or_default();
    let peak = memory_field(&mut control, "used_memory_peak");
    // The slow log keeps up to 128 entries of Redis' own memory: calls that
    // took over 10 ms on a loaded machine. Not the module's.
    let slowlog: u64 = redis::cmd("SLOWLOG")
        .arg("LEN")
        .query(&mut control)
        .unwrap_or(0);
    let _: redis::RedisResult<Value> = redis::cmd("SLOWLOG").arg("RESET").query(&mut control);
    // MEMORY PURGE hands jemalloc's dirty pages back to the OS: it moves RSS,
    // not used_memory (the bytes allocated), which is what is compared.
    let _: redis::RedisResult<Value> = redis::cmd("MEMORY").arg("PURGE").query(&mut control);
    let after = settled_memory(&mut control);
    let rss_after = memory_field(&mut control, "used_memory_rss");
    let difference = (after as f64 - before as f64) * 100.0 / before as f64;
    if difference.abs() > MEMORY_TOLERANCE_PERCENT {
        failures.push(format!(
            "used_memory after ({after} B) is {difference:+.2}% from before ({before} B): \
             more than {MEMORY_TOLERANCE_PERCENT}%"
        ));
    }
    // A module warning or a caught panic in the log since the module loaded.
    let log = std::fs::read(&log_path).unwrap_or_default();
    let log = String::from_utf8_lossy(log.get(log_at_start..).unwrap_or_default());
    for line in log.lines() {
        if line.contains("panic") || line.contains("# <sessiongate>") {
            failures.push(format!("redis.log: {line}"));
        }
    }

    let secs = elapsed.as_secs_f64();
    let row = |what: &str, value: String| println!("{what:<34} {value}");
    println!();
    row("sessions", tally.sessions.to_string());
    row("operations (replies checked)", tally.operations.to_string());
    for (command, n) in &tally.by_command {
        row(&format!("  {command}"), n.to_string());
    }
    row("drive time", format!("{secs:.1} s"));
    row(
        "operations per second",
        format!("{:.0}", tally.operations as f64 / secs),
    );
    row(
        "sessions per second",
        format!("{:.0}", tally.sessions as f64 / secs),
    );
    row(
        "sessions started",
        format!(
            "{} (ended {}, expire 0 {}; timed out before the driver was done {})",
            tally.started, tally.ended, tally.ended_by_expire_0, tally.timed_out_early
        ),
    );
    row(
        "tokens",
        format!(
            "v1 {}, v2 {}",
            tally.started - tally.v2_started,
            tally.v2_started
        ),
    );
    row(
        "rotated",
        format!(
            "{} (of them v1, now v2: {})",
            tally.rotated, tally.rotated_v1
        ),
    );
    row(
        "owners",
        format!(
            "{} visits, OLIST entries checked {}",
            tally.owner_visits, tally.listed
        ),
    );
    row(
        "owned sessions",
        format!(
            "started {}, evicted {}, ended by OEND {}",
            tally.owned_started, tally.evicted, tally.ended_by_owner
        ),
    );
    row(
        "visited after their ttl, gone",
        tally.checked_expired.to_string(),
    );
    row(
        "payloads",
        format!(
            "set {}, read {}, deleted {}",
            tally.payloads_set, tally.payloads_read, tally.payloads_deleted
        ),
    );
    row(
        "errors (all expected)",
        format!(
            "no session {}, forged {}, malformed {}, unknown ring {}",
            tally.missing_sessions,
            tally.signature_failures,
            tally.malformed_tokens,
            tally.unknown_rings
        ),
    );
    row(
        "INFO sessiongate counters",
        "equal to the replies' sums".into(),
    );
    row("largest DBSIZE seen", peak_keys.to_string());
    row(
        "keys after the drive",
        // The drive ends with its visits to expired sessions, which wait
        // out the last ttls: active expiry has usually emptied it by then.
        format!(
            "{keys_at_end} -> {keys_left} in {:.1} s more (expired_keys {expired_keys})",
            drain_time.as_secs_f64()
        ),
    );
    row(
        "slowlog entries",
        format!("{slowlog} (reset before measuring)"),
    );
    row("used_memory before", mib(before));
    row("used_memory peak", mib(peak));
    row("used_memory after", mib(after));
    row(
        "difference",
        format!("{difference:+.2}% (limit ±{MEMORY_TOLERANCE_PERCENT}%)"),
    );
    row(
        "used_memory_rss before -> after",
        format!("{} -> {}", mib(rss_before), mib(rss_after)),
    );
    failures
}
