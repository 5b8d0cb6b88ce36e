//! Counters for `INFO sessiongate`, for dashboards to graph. They count
//! since the server started, like Redis' own commandstats.

use crate::error::Rejection;
use redis_module::InfoContext;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct Counter(AtomicU64);

impl Counter {
    const fn new() -> Self {
        Counter(AtomicU64::new(0))
    }

    pub fn add(&self, n: usize) {
        self.0.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn incr(&self) {
        self.add(1);
    }

    fn get(&self) -> i64 {
        i64::try_from(self.0.load(Ordering::Relaxed)).unwrap_or(i64::MAX)
    }
}

pub static SESSIONS_STARTED: Counter = Counter::new();
pub static SESSIONS_ENDED: Counter = Counter::new();
pub static SESSIONS_ENDED_BY_EXPIRE_0: Counter = Counter::new();
pub static PAYLOADS_SET: Counter = Counter::new();
pub static PAYLOADS_READ: Counter = Counter::new();
pub static PAYLOADS_DELETED: Counter = Counter::new();
pub static IDS_DRAWN: Counter = Counter::new();
pub static SESSIONS_ROTATED: Counter = Counter::new();
pub static SESSIONS_EVICTED: Counter = Counter::new();
pub static SESSIONS_ENDED_BY_OWNER: Counter = Counter::new();
static SIGNATURE_FAILURES: Counter = Counter::new();
static MALFORMED_TOKENS: Counter = Counter::new();
static MISSING_SESSIONS: Counter = Counter::new();
static UNKNOWN_RINGS: Counter = Counter::new();

/// Counts a failed call that says something about the caller or the token.
pub fn count_rejection(rejection: Rejection) {
    match rejection {
        Rejection::ForgedSignature | Rejection::StaleSignature => SIGNATURE_FAILURES.incr(),
        Rejection::EmptyToken | Rejection::MalformedToken => MALFORMED_TOKENS.incr(),
        Rejection::NoSession => MISSING_SESSIONS.incr(),
        Rejection::UnknownRing(_) => UNKNOWN_RINGS.incr(),
        _ => {}
    }
}

/// The module's default INFO section, `INFO sessiongate`. Redis prefixes
/// each field with the module's name: `sessiongate_sessions_started`.
pub fn add_info(ctx: &InfoContext, _for_crash_report: bool) {
    let fields = [
        ("sessions_started", &SESSIONS_STARTED),
        ("sessions_ended", &SESSIONS_ENDED),
        ("sessions_ended_by_expire_0", &SESSIONS_ENDED_BY_EXPIRE_0),
        ("payloads_set", &PAYLOADS_SET),
        ("payloads_read", &PAYLOADS_READ),
        ("payloads_deleted", &PAYLOADS_DELETED),
        ("signature_failures", &SIGNATURE_FAILURES),
        ("malformed_tokens", &MALFORMED_TOKENS),
        ("missing_sessions", &MISSING_SESSIONS),
        ("unknown_rings", &UNKNOWN_RINGS),
        ("ids_drawn", &IDS_DRAWN),
        ("sessions_rotated", &SESSIONS_ROTATED),
        ("sessions_evicted", &SESSIONS_EVICTED),
        ("sessions_ended_by_owner", &SESSIONS_ENDED_BY_OWNER),
    ];
    // An empty name is the module's default section.
    let built = fields
        .into_iter()
        .try_fold(ctx.builder().add_section(""), |section, (name, counter)| {
            section.field(name, counter.get())
        })
        .and_then(|section| section.build_section())
        .and_then(|info| info.build_info());
    if let Err(e) = built {
        redis_module::logging::log_warning(format!("sessiongate INFO: {e}"));
    }
}
