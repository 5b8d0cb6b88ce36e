//! A randomized model test. `Model` is an in-memory reference of the
//! contract, written from docs/compatibility.md (#identical and
//! #differences) and the README (the extra commands TTL, PGETALL, PMGET and
//! PMSET, the configurations and the INFO counters), with no help from the
//! module's code. A seeded driver sends long random command sequences to a
//! real redis-server with the module, and every reply must be the one the
//! model predicts: same type, same bytes, same error text. Every few hundred
//! operations the keyspace itself (DBSIZE, each session's keys, their values
//! and PEXPIRETIME) and the INFO counters are compared too.
//!
//! `SESSIONGATE_MODEL_SEED` replays a seed (a failure prints it), and
//! `SESSIONGATE_MODEL_OPS` sets how many operations to run.
//!
//! Time is never slept on: sessions meant to live get 1000 s or more, ttl 0
//! ends them at once, and each command's clock reading is bracketed by the
//! client's own readings before and after it (`t0 ≤ now ≤ t1`), so deadlines
//! are intervals that PEXPIRETIME later pins down.

mod common;

use common::errors::*;
use common::*;
use rand::distr::Alphanumeric;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};
use redis::Connection;
use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, VecDeque};
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

const SIGN_KEYS: [&[u8]; 3] = [b"mykey", b"another key", b"\0bin\xffkey\r\n"];

// ---------------------------------------------------------------------------
// Tokens, written from docs/tokens.md.

fn token_for(sign_key: &[u8], id: &[u8]) -> Vec<u8> {
    [b"v1.", id, b".", &hmac_hex(sign_key, id).into_bytes()].concat()
}

/// `^v1\.[0-9a-zA-Z]{16}\.[0-9a-f]{64}$`
fn well_formed(token: &[u8]) -> bool {
    token.len() == 84
        && token.starts_with(b"v1.")
        && token[3..19].iter().all(u8::is_ascii_alphanumeric)
        && token[19] == b'.'
        && token[20..]
            .iter()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn id_of(token: &[u8]) -> &[u8] {
    &token[3..19]
}

fn signature_of(token: &[u8]) -> &[u8] {
    &token[20..]
}

fn signature_key(id: &[u8]) -> Vec<u8> {
    [b"sg-session:", id, b":signature"].concat()
}

fn payloads_key(id: &[u8]) -> Vec<u8> {
    [b"sg-session:", id, b":payloads"].concat()
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

/// Why a command is refused: docs/errors.md#check-order's steps, and the
/// payload limit of docs/errors.md#other-errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Rej {
    Arity,
    EmptySignKey,
    BadTtl,
    EmptyToken,
    BadFormat,
    Forged,
    Missing,
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
        sign_key: Vec<u8>,
        ttl: Ttl,
    },
    Expire {
        id: Vec<u8>,
        ttl: Ttl,
    },
    Set {
        id: Vec<u8>,
        pairs: Vec<(Vec<u8>, Vec<u8>)>,
    },
    Get {
        id: Vec<u8>,
        name: Vec<u8>,
    },
    MGet {
        id: Vec<u8>,
        names: Vec<Vec<u8>>,
    },
    GetAll {
        id: Vec<u8>,
    },
    Del {
        id: Vec<u8>,
        name: Vec<u8>,
    },
    End {
        id: Vec<u8>,
    },
    Ttl {
        id: Vec<u8>,
    },
}

struct Session {
    sign_key: Vec<u8>,
    token: Vec<u8>,
    /// The absolute expiry in Unix ms lies in `[lo, hi]`; exact once the
    /// keyspace check has read PEXPIRETIME. `None`: no expiry, which only a
    /// dataset written by other means (the C module's layout) can have.
    deadline: Option<(i64, i64)>,
    payloads: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// README "INFO": `INFO sessiongate`.
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
}

impl Counters {
    fn fields(&self) -> [(&'static str, u64); 9] {
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
        ]
    }
}

struct Model {
    sessions: HashMap<Vec<u8>, Session>,
    /// Ids of `sessions` in a deterministic order, for the generator.
    live: Vec<Vec<u8>>,
    /// Tokens (with their sign key) of sessions that ended or never existed.
    ended: VecDeque<(Vec<u8>, Vec<u8>)>,
    name_limit: usize,
    data_limit: usize,
    max_payloads: usize,
    counters: Counters,
    /// Outcomes seen, per command: the test fails if a path was never taken.
    coverage: BTreeMap<String, u64>,
    /// ttl checks whose clock reading could fall either side of overflow.
    ambiguous_ttls: Cell<u64>,
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
            counters: Counters::default(),
            coverage: BTreeMap::new(),
            ambiguous_ttls: Cell::new(0),
            wrote: false,
        }
    }

    fn message(&self, rej: Rej, cmd: &str) -> String {
        match rej {
            Rej::Arity => wrong_arity(cmd),
            Rej::EmptySignKey => EMPTY_SIGN_KEY.into(),
            Rej::BadTtl => BAD_TTL.into(),
            Rej::EmptyToken => EMPTY_TOKEN.into(),
            Rej::BadFormat => MALFORMED_TOKEN.into(),
            Rej::Forged => FORGED_SIGNATURE.into(),
            Rej::Missing => NO_SESSION.into(),
            Rej::Stale => STALE_SIGNATURE.into(),
            Rej::EmptyName => EMPTY_PAYLOAD_NAME.into(),
            Rej::LongName => payload_name_too_long(self.name_limit),
            Rej::EmptyData => EMPTY_PAYLOAD_DATA.into(),
            Rej::LongData => payload_data_too_long(self.data_limit),
            Rej::TooMany => too_many_payloads(self.max_payloads),
            Rej::NoPayload => NO_PAYLOAD.into(),
        }
    }

    /// docs/errors.md#step-3 and #step-6, docs/compatibility.md#ttl-overflow:
    /// not an integer, negative, or whose milliseconds added to the server's
    /// now overflow i64. The server read its clock somewhere in `[t0, t1]`;
    /// only when overflow depends on where does the reply itself decide (both
    /// answers keep the contract).
    fn ttl_of(
        &self,
        arg: &[u8],
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
        if ms > i64::MAX - t0 {
            return Err(Rej::BadTtl);
        }
        if ms <= i64::MAX - t1 {
            return Ok(Ttl::Ms(ms));
        }
        self.ambiguous_ttls.set(self.ambiguous_ttls.get() + 1);
        match got {
            Err(e) if e == BAD_TTL => Err(Rej::BadTtl),
            _ => Ok(Ttl::Ms(ms)),
        }
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

    /// Every check of docs/errors.md#check-order, in its order; the first
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
        // 2. sign key
        let sign_key = &args[1];
        if sign_key.is_empty() {
            return Err(Rej::EmptySignKey);
        }
        // 3. START's ttl
        if short(cmd) == "start" {
            let ttl = self.ttl_of(&args[2], got, t0, t1)?;
            return Ok(Plan::Start {
                sign_key: sign_key.clone(),
                ttl,
            });
        }
        // 4., 5. the token
        let token = &args[2];
        if token.is_empty() {
            return Err(Rej::EmptyToken);
        }
        if !well_formed(token) {
            return Err(Rej::BadFormat);
        }
        // 6. EXPIRE's ttl
        let ttl = if short(cmd) == "expire" {
            Some(self.ttl_of(&args[3], got, t0, t1)?)
        } else {
            None
        };
        // 7. HMAC
        let id = id_of(token).to_vec();
        if hmac_hex(sign_key, &id).into_bytes() != signature_of(token) {
            return Err(Rej::Forged);
        }
        // 8. the session exists
        let session = self.sessions.get(&id).ok_or(Rej::Missing)?;
        // 9. it stores this signature
        if session.token[20..] != token[20..] {
            return Err(Rej::Stale);
        }
        let rest = &args[3..];
        Ok(match short(cmd) {
            "expire" => Plan::Expire {
                id,
                ttl: ttl.expect("parsed above"),
            },
            "end" => Plan::End { id },
            "ttl" => Plan::Ttl { id },
            "pgetall" => Plan::GetAll { id },
            "pget" => {
                self.check_name(&rest[0])?;
                if !session.payloads.contains_key(&rest[0]) {
                    return Err(Rej::NoPayload);
                }
                Plan::Get {
                    id,
                    name: rest[0].clone(),
                }
            }
            "pdel" => {
                self.check_name(&rest[0])?;
                // docs/commands.md#pdel: an error only when the session has no
                // payload.
                if session.payloads.is_empty() {
                    return Err(Rej::NoPayload);
                }
                Plan::Del {
                    id,
                    name: rest[0].clone(),
                }
            }
            "pmget" => {
                for name in rest {
                    self.check_name(name)?;
                }
                Plan::MGet {
                    id,
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
                Plan::Set { id, pairs }
            }
            other => panic!("no plan for {other}"),
        })
    }

    fn tally(&mut self, cmd: &str, outcome: &str) {
        *self
            .coverage
            .entry(format!("{} {outcome}", short(cmd)))
            .or_default() += 1;
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
        self.judge(&cmd, args, resp3, got, t0, t1)
            .map_err(|why| format!("{why}\n  model before it: {before}"))
    }

    /// What the model knew of the session a command names, for failures.
    fn describe_target(&self, args: &[Vec<u8>]) -> String {
        let limits = format!(
            "max-payload-name-len {}, max-payload-data-len {}, max-payloads-per-session {}",
            self.name_limit, self.data_limit, self.max_payloads
        );
        let session = args
            .get(2)
            .filter(|t| well_formed(t))
            .and_then(|t| self.sessions.get(id_of(t)));
        match session {
            Some(s) => format!(
                "{limits}; session {} live, deadline {:?}, {} payloads: {}",
                show(&s.token[3..19]),
                s.deadline,
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
        match self.check(cmd, args, got, t0, t1) {
            Err(rej) => {
                match rej {
                    Rej::Forged | Rej::Stale => self.counters.signature_failures += 1,
                    Rej::EmptyToken | Rej::BadFormat => self.counters.malformed_tokens += 1,
                    Rej::Missing => self.counters.missing_sessions += 1,
                    _ => {}
                }
                self.tally(cmd, &format!("{rej:?}"));
                expect(got, &Err(self.message(rej, cmd)))
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
            Plan::Start { sign_key, ttl } => {
                let token = match got {
                    Ok(Value::BulkString(token)) => token.clone(),
                    other => return Err(format!("expected a new token, got {}", reply(other))),
                };
                if !well_formed(&token) {
                    return Err(format!("START minted a malformed token {}", show(&token)));
                }
                let id = id_of(&token).to_vec();
                if signature_of(&token) != hmac_hex(&sign_key, &id).into_bytes() {
                    return Err(format!(
                        "START's token {} is not signed with HMAC-SHA256(sign_key, id)",
                        show(&token)
                    ));
                }
                if self.sessions.contains_key(&id) {
                    return Err(format!(
                        "START reused the id of a live session: {}",
                        show(&id)
                    ));
                }
                self.counters.sessions_started += 1;
                match ttl {
                    // docs/compatibility.md#ttl-0: a token whose session does
                    // not exist.
                    Ttl::Zero => {
                        self.tally("start", "ttl 0");
                        self.forget(sign_key, token);
                    }
                    Ttl::Ms(ms) => {
                        self.live.push(id.clone());
                        self.sessions.insert(
                            id,
                            Session {
                                sign_key,
                                token,
                                deadline: deadline(ms),
                                payloads: BTreeMap::new(),
                            },
                        );
                    }
                }
                Ok(())
            }
            Plan::Expire { id, ttl } => {
                self.wrote = true;
                match ttl {
                    Ttl::Zero => {
                        self.tally("expire", "ttl 0");
                        self.end(&id);
                        self.counters.sessions_ended_by_expire_0 += 1;
                    }
                    Ttl::Ms(ms) => self.session(&id).deadline = deadline(ms),
                }
                expect(got, &Ok(Value::Okay))
            }
            Plan::End { id } => {
                self.wrote = true;
                self.end(&id);
                self.counters.sessions_ended += 1;
                expect(got, &Ok(Value::Okay))
            }
            Plan::Set { id, pairs } => {
                self.wrote = true;
                self.counters.payloads_set += pairs.len() as u64;
                let count = self.sessions[&id].payloads.len();
                if self.max_payloads > 0 && count > self.max_payloads {
                    // The limit was lowered under this session: overwriting
                    // still works (README, Configuration).
                    self.tally("set", "ok past the payload limit");
                }
                let session = self.session(&id);
                for (name, data) in pairs {
                    session.payloads.insert(name, data);
                }
                expect(got, &Ok(Value::Okay))
            }
            Plan::Get { id, name } => {
                self.counters.payloads_read += 1;
                let data = self.session(&id).payloads[&name].clone();
                expect(got, &Ok(Value::BulkString(data)))
            }
            Plan::MGet { id, names } => {
                let session = &self.sessions[&id];
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
            Plan::GetAll { id } => {
                let session = &self.sessions[&id];
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
            Plan::Del { id, name } => {
                if self.session(&id).payloads.remove(&name).is_some() {
                    self.wrote = true;
                    self.counters.payloads_deleted += 1;
                } else {
                    self.tally("pdel", "ok, no such name");
                }
                expect(got, &Ok(Value::Okay))
            }
            Plan::Ttl { id } => {
                // Redis' TTL rounding of the ms left when the server read its
                // clock, somewhere in [t0, t1].
                let round = |left: i64| (left.max(0) + 500) / 1000;
                let (min, max) = match self.session(&id).deadline {
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

    /// A session the C module wrote (or anything else, in its layout).
    fn inject(
        &mut self,
        sign_key: Vec<u8>,
        id: Vec<u8>,
        at: Option<i64>,
        payloads: Vec<(Vec<u8>, Vec<u8>)>,
    ) {
        self.tally(
            "inject",
            if at.is_some() {
                "with expiry"
            } else {
                "without expiry"
            },
        );
        self.live.push(id.clone());
        let session = Session {
            token: token_for(&sign_key, &id),
            sign_key,
            deadline: at.map(|at| (at, at)),
            payloads: payloads.into_iter().collect(),
        };
        self.sessions.insert(id, session);
    }

    fn session(&mut self, id: &[u8]) -> &mut Session {
        self.sessions.get_mut(id).expect("a live session")
    }

    fn end(&mut self, id: &[u8]) {
        let session = self.sessions.remove(id).expect("a live session");
        let at = self.live.iter().position(|l| l == id).expect("listed");
        self.live.swap_remove(at);
        self.forget(session.sign_key, session.token);
    }

    fn forget(&mut self, sign_key: Vec<u8>, token: Vec<u8>) {
        self.ended.push_back((sign_key, token));
        if self.ended.len() > ENDED_KEPT {
            self.ended.pop_front();
        }
    }

    /// docs/keys.md and docs/replication.md against the keyspace itself, and
    /// docs/events-and-info.md#info-fields' counters against the model's.
    fn check_keyspace(&mut self, con: &mut Connection) -> Result<(), String> {
        let dbsize: i64 = redis::cmd("DBSIZE").query(con).unwrap();
        let expected_keys: usize = self
            .sessions
            .values()
            .map(|s| 1 + usize::from(!s.payloads.is_empty()))
            .sum();
        if dbsize != expected_keys as i64 {
            return Err(format!(
                "DBSIZE is {dbsize}, the model has {expected_keys} keys"
            ));
        }
        let mut pipe = redis::pipe();
        for id in &self.live {
            let (sig, pay) = (signature_key(id), payloads_key(id));
            pipe.cmd("TYPE").arg(&sig);
            pipe.cmd("GET").arg(&sig);
            pipe.cmd("PEXPIRETIME").arg(&sig);
            pipe.cmd("HGETALL").arg(&pay);
            pipe.cmd("PEXPIRETIME").arg(&pay);
        }
        for (_, token) in self.ended.iter().rev().take(20) {
            pipe.cmd("EXISTS")
                .arg(signature_key(id_of(token)))
                .arg(payloads_key(id_of(token)));
        }
        let replies: Vec<Value> = pipe.query(con).unwrap();
        let mut replies = replies.into_iter();
        for id in &self.live {
            let session = self.sessions.get_mut(id).expect("listed");
            let who = String::from_utf8_lossy(id).into_owned();
            let mut next = || replies.next().expect("one reply per command");
            let kind = next();
            if kind != Value::SimpleString("string".into()) {
                return Err(format!("session {who}: signature key is a {kind:?}"));
            }
            let stored = next();
            if stored != Value::BulkString(session.token[20..].to_vec()) {
                return Err(format!("session {who}: signature key holds {stored:?}"));
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
            let expected: Vec<Value> = session
                .payloads
                .iter()
                .flat_map(|(n, d)| [Value::BulkString(n.clone()), Value::BulkString(d.clone())])
                .collect();
            if !same_hash(&hash, &expected) {
                return Err(format!(
                    "session {who}: payloads key holds {hash:?}, the model has {expected:?}"
                ));
            }
            // The payloads key has the session's expiry, or does not exist.
            let payloads_at = next();
            let want = if session.payloads.is_empty() { -2 } else { at };
            if payloads_at != Value::Int(want) {
                return Err(format!(
                    "session {who}: payloads PEXPIRETIME {payloads_at:?}, expected {want}"
                ));
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

/// HGETALL order is the hash's own: compare as sets of pairs.
fn same_hash(got: &Value, expected: &[Value]) -> bool {
    let Value::Array(items) = got else {
        return false;
    };
    let pairs = |items: &[Value]| {
        let mut pairs: Vec<(Value, Value)> = items
            .chunks(2)
            .map(|p| (p[0].clone(), p.get(1).cloned().unwrap_or(Value::Nil)))
            .collect();
        pairs.sort_by_key(|p| format!("{p:?}"));
        pairs
    };
    items.len() == expected.len() && pairs(items) == pairs(expected)
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
    if bytes.len() > 48 {
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
        value: usize,
    },
    /// A session written with plain Redis commands in the C module's layout
    /// (docs/keys.md#keys-written-by-other-means), with or without an expiry.
    Inject {
        sign_key: Vec<u8>,
        id: Vec<u8>,
        ttl: Option<i64>,
        payloads: Vec<(Vec<u8>, Vec<u8>)>,
    },
}

/// Who a command is about: a sign key and a token, and the live session the
/// token names if any (for its payload names).
struct Target {
    sign_key: Vec<u8>,
    token: Vec<u8>,
    id: Option<Vec<u8>>,
}

impl Model {
    fn generate(&self, rng: &mut StdRng) -> Op {
        if rng.random_range(0..1000) < 10 {
            let (name, values): (_, &[usize]) = match rng.random_range(0..3) {
                0 => ("sessiongate.max-payload-name-len", &[200, 200, 200, 16]),
                1 => ("sessiongate.max-payload-data-len", &[1, 8, 64, 64, 100]),
                _ => ("sessiongate.max-payloads-per-session", &[0, 0, 1, 2, 3, 8]),
            };
            let value = *values.choose(rng).unwrap();
            return Op::Config { name, value };
        }
        let live = self.live.len();
        if live < 80 && rng.random_ratio(2, 100) {
            let pairs = rng.random_range(0..4);
            return Op::Inject {
                sign_key: SIGN_KEYS.choose(rng).unwrap().to_vec(),
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
            };
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
            args.push(self.sign_key(rng, None));
            args.push(ttl_arg(rng, 8));
        } else {
            let target = self.target(rng);
            let session = target.id.as_ref().and_then(|id| self.sessions.get(id));
            args.push(target.sign_key);
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

    fn sign_key(&self, rng: &mut StdRng, usual: Option<&[u8]>) -> Vec<u8> {
        match rng.random_range(0..100) {
            0..=2 => Vec::new(),
            3..=4 => {
                let len = rng.random_range(0..8) + 1;
                random_bytes(rng, len)
            }
            5..=7 => SIGN_KEYS.choose(rng).unwrap().to_vec(),
            _ => usual.map_or_else(|| SIGN_KEYS.choose(rng).unwrap().to_vec(), <[u8]>::to_vec),
        }
    }

    fn target(&self, rng: &mut StdRng) -> Target {
        let live = (!self.live.is_empty()).then(|| {
            let id = self.live[rng.random_range(0..self.live.len())].clone();
            let session = &self.sessions[&id];
            (id, session.sign_key.clone(), session.token.clone())
        });
        let roll = rng.random_range(0..100);
        let mut target = if let (Some((id, key, token)), true) = (&live, roll < 64) {
            Target {
                sign_key: key.clone(),
                token: token.clone(),
                id: Some(id.clone()),
            }
        } else if (64..72).contains(&roll) && !self.ended.is_empty() {
            let (key, token) = self.ended[rng.random_range(0..self.ended.len())].clone();
            Target {
                sign_key: key,
                token,
                id: None,
            }
        } else {
            self.odd_target(rng, live)
        };
        target.sign_key = self.sign_key(rng, Some(&target.sign_key));
        target
    }

    /// Tokens that must be refused, at step 4, 5, 7, 8 or 9.
    fn odd_target(&self, rng: &mut StdRng, live: Option<(Vec<u8>, Vec<u8>, Vec<u8>)>) -> Target {
        let (id, key, token) = live.unwrap_or_else(|| {
            let key = SIGN_KEYS.choose(rng).unwrap().to_vec();
            let id = random_id(rng);
            let token = token_for(&key, &id);
            (id, key, token)
        });
        let other_key = loop {
            let other = *SIGN_KEYS.choose(rng).unwrap();
            if other != key.as_slice() {
                break other.to_vec();
            }
        };
        let (sign_key, token) = match rng.random_range(0..16) {
            // A good token, sent with another key: step 7.
            0 => (other_key, token),
            // The same id signed with another key, sent with that key: a
            // valid HMAC that is not the stored signature, step 9.
            1 | 12 | 13 => (other_key.clone(), token_for(&other_key, &id)),
            // ...sent with the session's own key: step 7.
            2 => (key, token_for(&other_key, &id)),
            // Signed right, never started: step 8.
            3 => {
                let fresh = random_id(rng);
                (key.clone(), token_for(&key, &fresh))
            }
            // A random signature: step 7.
            4 => {
                let hex: Vec<u8> = (0..64)
                    .map(|_| b"0123456789abcdef"[rng.random_range(0..16)])
                    .collect();
                (key, [&token[..20], &hex].concat())
            }
            // One signature character changed to another hex digit.
            5 => {
                let mut t = token;
                let at = 20 + rng.random_range(0..64);
                t[at] = if t[at] == b'0' { b'1' } else { b'0' };
                (key, t)
            }
            6 | 14 | 15 => (key, Vec::new()),
            7..=10 => (key, malformed(rng, &token)),
            _ => {
                let len = rng.random_range(0..100);
                (key, random_bytes(rng, len))
            }
        };
        let id = well_formed(&token).then(|| id_of(&token).to_vec());
        Target {
            sign_key,
            token,
            id,
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
/// docs/compatibility.md#ttl-overflow.
fn ttl_arg(rng: &mut StdRng, zero_percent: usize) -> Vec<u8> {
    let roll = rng.random_range(0..100);
    let t = now_ms();
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
            // Just past overflow: whatever the server's clock says, as it
            // reads it after `t`.
            82..=85 => ((i64::MAX - t) / 1000 + 1 + rng.random_range(0..=1000)).to_string(),
            // Just short of it, with ten minutes to spare.
            86..=88 => ((i64::MAX - t - 600_000) / 1000 - rng.random_range(0..=1000)).to_string(),
            _ => rng
                .random_range(1_000_000_000..=1_000_000_000_000_i64)
                .to_string(),
        }
    };
    ttl.into_bytes()
}

/// A token that fails docs/tokens.md#shape in one way.
fn malformed(rng: &mut StdRng, token: &[u8]) -> Vec<u8> {
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
        4 => {
            let from = rng.random_range(0..64);
            let at = (0..64)
                .map(|i| 20 + (from + i) % 64)
                .find(|&i| t[i].is_ascii_lowercase())
                .unwrap_or(20);
            t[at] = t[at].to_ascii_uppercase().max(b'A');
        }
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
        Op::Inject {
            sign_key,
            id,
            ttl,
            payloads,
        } => format!(
            "(plain Redis) session {} of {} with ttl {ttl:?}, payloads {}",
            show(id),
            show(sign_key),
            payloads
                .iter()
                .map(|(n, d)| format!("{} = {}", show(n), show(d)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
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
    ];
    for cmd in COMMANDS {
        let cmd = short(cmd);
        required.push(format!("{cmd} ok"));
        required.push(format!("{cmd} Arity"));
        if cmd == "start" {
            continue;
        }
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
    required.push("watch aborted".into());
    required.push("watch kept".into());
    required.push("inject with expiry".into());
    required.push("inject without expiry".into());
    required.push("pget NoPayload".into());
    required.push("pdel NoPayload".into());
    required
}

fn run_command(
    con: &mut Connection,
    model: &mut Model,
    args: &[Vec<u8>],
    resp3: bool,
    watch: bool,
) -> Result<(), String> {
    let watched = args
        .get(2)
        .filter(|token| watch && well_formed(token))
        .map(|token| id_of(token).to_vec());
    if let Some(id) = &watched {
        let got = call(
            con,
            &[b"WATCH".to_vec(), signature_key(id), payloads_key(id)],
        );
        expect(&got, &Ok(Value::Okay))?;
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

fn inject(
    con: &mut Connection,
    model: &mut Model,
    sign_key: Vec<u8>,
    id: Vec<u8>,
    ttl: Option<i64>,
    payloads: Vec<(Vec<u8>, Vec<u8>)>,
) -> Result<(), String> {
    let at = ttl.map(|seconds| now_ms() + seconds * 1000);
    let at_arg = |at: i64| at.to_string().into_bytes();
    let mut set = vec![
        b"SET".to_vec(),
        signature_key(&id),
        hmac_hex(&sign_key, &id).into_bytes(),
        b"NX".to_vec(),
    ];
    if let Some(at) = at {
        set.extend([b"PXAT".to_vec(), at_arg(at)]);
    }
    expect(&call(con, &set), &Ok(Value::Okay))?;
    if !payloads.is_empty() {
        let mut hset = vec![b"HSET".to_vec(), payloads_key(&id)];
        hset.extend(payloads.iter().flat_map(|(n, d)| [n.clone(), d.clone()]));
        call(con, &hset).map_err(|e| format!("HSET: {e}"))?;
        if let Some(at) = at {
            let pexpireat = [b"PEXPIREAT".to_vec(), payloads_key(&id), at_arg(at)];
            expect(&call(con, &pexpireat), &Ok(Value::Int(1)))?;
        }
    }
    model.inject(sign_key, id, at, payloads);
    Ok(())
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

    let server = Server::start(&[]);
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
    let mut rng = StdRng::seed_from_u64(seed);
    let mut recent: VecDeque<String> = VecDeque::new();

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
            Op::Inject {
                sign_key,
                id,
                ttl,
                payloads,
            } => inject(&mut resp2, &mut model, sign_key, id, ttl, payloads),
            Op::Config { name, value } => {
                let got = call(&mut resp2, &["CONFIG", "SET", name, &value.to_string()]);
                match name {
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
         {} ambiguous overflow checks; outcomes:",
        model.live.len(),
        model.ambiguous_ttls.get()
    );
    for (outcome, n) in &model.coverage {
        eprintln!("  {outcome:<28} {n}");
    }
    if ops >= DEFAULT_OPS {
        let missing: Vec<String> = required_coverage()
            .into_iter()
            .filter(|o| !model.coverage.contains_key(o))
            .collect();
        assert!(
            missing.is_empty(),
            "{ops} operations never reached {missing:?} ({replay})"
        );
    }
}
