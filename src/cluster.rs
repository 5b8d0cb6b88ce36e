//! Redis Cluster (docs/cluster.md): the hash slot of a token's keys, and the
//! slots this node serves, so that a keyless START mints tokens which the
//! cluster routes back to this node.
//!
//! Redis 7.0 gives a module no slot-ownership API, so the served slots come
//! from `CLUSTER SLOTS`, cached. The cache is re-read when it is a second
//! old (slots this node gained get used) and as soon as it proves stale:
//! START checks the keys it is about to create with `RM_Call`, which in a
//! cluster refuses keys this node does not serve (a slot migrated away, one
//! being migrated, or one being imported), and that slot is then skipped.
//! The same check tells a command that finds a session key missing whether
//! this node is importing the slot (`importing`).

use crate::token::tag::{slot_of, SLOT_COUNT};
use redis_module::{raw, Context, ContextFlags, RedisString, RedisValue};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// How long a read of `CLUSTER SLOTS` is trusted, in milliseconds.
const MAX_AGE_MS: i64 = 1000;

/// `MAX_AGE_MS`, or in debug builds the server's
/// `SESSIONGATE_TEST_SLOT_VIEW_MS`, so that a test can keep a stale view
/// for as long as it needs without racing the clock. Release builds do not
/// contain this.
fn max_age_ms() -> i64 {
    #[cfg(debug_assertions)]
    {
        static FROM_ENV: std::sync::OnceLock<Option<i64>> = std::sync::OnceLock::new();
        let from_env = FROM_ENV.get_or_init(|| {
            std::env::var("SESSIONGATE_TEST_SLOT_VIEW_MS")
                .ok()
                .and_then(|ms| ms.parse().ok())
        });
        if let Some(ms) = from_env {
            return *ms;
        }
    }
    MAX_AGE_MS
}
/// `RedisModule_GetMyClusterID` returns this many bytes, unterminated.
const NODE_ID_LEN: usize = 40;

static CLUSTER_MODE: AtomicBool = AtomicBool::new(false);
static SERVED: Mutex<Option<Snapshot>> = Mutex::new(None);

/// Reads `cluster-enabled` once, at load: it cannot change while Redis runs.
pub fn detect_mode(ctx: &Context) {
    let enabled = ctx.get_flags().contains(ContextFlags::CLUSTER);
    CLUSTER_MODE.store(enabled, Ordering::Relaxed);
}

pub fn enabled() -> bool {
    CLUSTER_MODE.load(Ordering::Relaxed)
}

/// Whether this node is importing the slot of `keys` (two different keys
/// of one slot, at least one of which the caller found missing): then the
/// missing key may still be on its way from the source, and the command
/// must reply TRYAGAIN instead of acting on its absence
/// (docs/cluster.md#during-a-migration). False outside a cluster.
///
/// How the module knows, with no slot API in Redis 7.0: it asks Redis' own
/// routing. In a cluster, `RM_Call` runs the check Redis runs on every
/// client command (`getNodeByQuery`), after copying the calling client's
/// ASKING and READONLY flags onto its own client. On a node importing a
/// slot, a command under ASKING passes that check if it names one key
/// (which is how the command at hand, whose one declared key is the token,
/// got to run here), but is refused if it names several keys of the slot
/// and any of them is missing: Redis' own TRYAGAIN case for multi-key
/// commands. So `EXISTS` of the two keys is refused exactly when this node
/// is importing the slot and a key is missing. Wherever else the command at
/// hand can run (a slot this node serves, a replica read under READONLY, a
/// cluster that is down but allows reads) the same check lets `EXISTS`
/// through. (A client without ASKING would have been sent to the source
/// with MOVED before the command ran.)
///
/// Never stale: this is no cache but the server's slot table and keyspace
/// as they are during this very command (Redis runs one command at a time,
/// and keeps the clock still within it, so neither changes in between). The
/// answer is "importing" for as long as the slot is open here with a key of
/// the session missing, that is until `CLUSTER SETSLOT <slot> NODE` closes
/// the import, which an operator (or `redis-cli --cluster reshard`) sends
/// after the last key has been migrated. Only the missing path asks, so a
/// command whose keys are all here makes no extra call.
pub fn importing(ctx: &Context, keys: &[&RedisString]) -> bool {
    enabled() && !matches!(ctx.call("EXISTS", keys), Ok(RedisValue::Integer(_)))
}

/// A set of slots, one bit each.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SlotSet {
    bits: Box<[u64; SLOT_COUNT / 64]>,
    len: usize,
}

impl SlotSet {
    fn new() -> Self {
        SlotSet {
            bits: Box::new([0; SLOT_COUNT / 64]),
            len: 0,
        }
    }

    pub fn contains(&self, slot: usize) -> bool {
        self.bits
            .get(slot / 64)
            .is_some_and(|word| word & (1 << (slot % 64)) != 0)
    }

    fn insert(&mut self, slot: usize) {
        if let Some(word) = self.bits.get_mut(slot / 64) {
            if *word & (1 << (slot % 64)) == 0 {
                *word |= 1 << (slot % 64);
                self.len += 1;
            }
        }
    }

    fn remove(&mut self, slot: usize) {
        if let Some(word) = self.bits.get_mut(slot / 64) {
            if *word & (1 << (slot % 64)) != 0 {
                *word &= !(1 << (slot % 64));
                self.len -= 1;
            }
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// The `n`th slot in the set, counting from 0 in slot order.
    fn nth(&self, n: usize) -> Option<usize> {
        let mut left = n;
        for (index, &word) in self.bits.iter().enumerate() {
            let count = word.count_ones() as usize;
            if left < count {
                let mut word = word;
                for _ in 0..left {
                    word &= word - 1;
                }
                return Some(index * 64 + word.trailing_zeros() as usize);
            }
            left -= count;
        }
        None
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The slots `CLUSTER SLOTS` assigns to the master `node_id`. Each entry
    /// is `[first, last, [ip, port, id, …] (master), replicas…]`.
    pub fn from_cluster_slots(reply: &RedisValue, node_id: &[u8]) -> Self {
        let mut set = SlotSet::new();
        let RedisValue::Array(ranges) = reply else {
            return set;
        };
        for range in ranges {
            let RedisValue::Array(range) = range else {
                continue;
            };
            let (Some(first), Some(last), Some(RedisValue::Array(master))) =
                (range.first(), range.get(1), range.get(2))
            else {
                continue;
            };
            let (RedisValue::Integer(first), RedisValue::Integer(last)) = (first, last) else {
                continue;
            };
            if master.get(2).and_then(string_bytes) != Some(node_id) {
                continue;
            }
            let (Ok(first), Ok(last)) = (usize::try_from(*first), usize::try_from(*last)) else {
                continue;
            };
            for slot in first..=last.min(SLOT_COUNT - 1) {
                set.insert(slot);
            }
        }
        set
    }
}

fn string_bytes(value: &RedisValue) -> Option<&[u8]> {
    match value {
        RedisValue::SimpleString(s) | RedisValue::BulkString(s) => Some(s.as_bytes()),
        RedisValue::StringBuffer(b) => Some(b),
        _ => None,
    }
}

#[derive(Clone)]
struct Snapshot {
    slots: Arc<SlotSet>,
    read_at: i64,
}

/// The slots one START may mint in, and how many more ids it may draw.
pub struct Served {
    /// `None` outside a cluster: every slot.
    slots: Option<Arc<SlotSet>>,
    draws_left: usize,
    reread: bool,
}

impl Served {
    /// What this node serves now, from the cache or a fresh read. `None`
    /// when the node, in a cluster, serves no slot at all.
    pub fn now(ctx: &Context, now_ms: i64) -> Option<Self> {
        if !enabled() {
            return Some(Served {
                slots: None,
                draws_left: usize::MAX,
                reread: false,
            });
        }
        let mut cache = SERVED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let fresh = cache.as_ref().is_some_and(|s| {
            now_ms.saturating_sub(s.read_at) < max_age_ms() && !s.slots.is_empty()
        });
        if !fresh {
            *cache = Some(read(ctx, now_ms));
        }
        let slots = cache.as_ref().map(|s| s.slots.clone())?;
        Self::within(slots, false)
    }

    fn within(slots: Arc<SlotSet>, reread: bool) -> Option<Self> {
        // On average a draw lands in a served slot once in 16384 / served
        // draws; 64 times that many fail with odds of e^-64.
        let draws_left = 64 * SLOT_COUNT / slots.len().max(1);
        (!slots.is_empty()).then_some(Served {
            slots: Some(slots),
            draws_left,
            reread,
        })
    }

    /// Whether another id may be drawn.
    pub fn next_draw(&mut self) -> bool {
        self.draws_left = self.draws_left.saturating_sub(1);
        self.draws_left > 0
    }

    /// A slot drawn uniformly from those served (from all of them outside a
    /// cluster): where a v2 START puts its session, with no draw of ids.
    pub fn random_slot<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> Option<usize> {
        use rand::RngExt;
        match &self.slots {
            None => Some(rng.random_range(0..SLOT_COUNT)),
            Some(slots) if slots.is_empty() => None,
            Some(slots) => slots.nth(rng.random_range(0..slots.len())),
        }
    }

    pub fn includes(&self, tag: &[u8]) -> bool {
        self.slots
            .as_ref()
            .is_none_or(|slots| slots.contains(slot_of(tag)))
    }

    /// `slot` proved not to be served here (moved away, or being
    /// migrated). The first time, the whole view is read again, for this
    /// START and the next ones; after that, only this slot is dropped. False
    /// when no slot is left.
    pub fn proved_stale(&mut self, ctx: &Context, slot: usize, now_ms: i64) -> bool {
        if !self.reread {
            let snapshot = read(ctx, now_ms);
            let slots = snapshot.slots.clone();
            *SERVED.lock().unwrap_or_else(|p| p.into_inner()) = Some(snapshot);
            match Self::within(slots, true) {
                Some(fresh) => *self = fresh,
                None => return false,
            }
        }
        if let Some(slots) = self.slots.as_mut() {
            Arc::make_mut(slots).remove(slot);
        }
        self.slots.as_ref().is_none_or(|slots| !slots.is_empty())
    }
}

fn read(ctx: &Context, now_ms: i64) -> Snapshot {
    Snapshot {
        slots: Arc::new(read_served_slots(ctx)),
        read_at: now_ms,
    }
}

fn read_served_slots(ctx: &Context) -> SlotSet {
    let Ok(reply) = ctx.call("CLUSTER", &["SLOTS"]) else {
        return SlotSet::new();
    };
    SlotSet::from_cluster_slots(&reply, my_node_id())
}

fn my_node_id() -> &'static [u8] {
    // SAFETY: Redis keeps its own node id for the life of the process; the
    // pointer is to NODE_ID_LEN bytes (not NUL-terminated).
    unsafe {
        match raw::RedisModule_GetMyClusterID {
            Some(get) => {
                let id = get();
                if id.is_null() {
                    &[]
                } else {
                    std::slice::from_raw_parts(id.cast::<u8>(), NODE_ID_LEN)
                }
            }
            None => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis_for_known_keys() {
        // Values from CLUSTER KEYSLOT on Redis 7.
        assert_eq!(slot_of(b"foo"), 12182);
        assert_eq!(slot_of(b"bar"), 5061);
        assert_eq!(slot_of(b"123456789"), 0x31c3); // the CRC16/XMODEM check value
    }

    #[test]
    fn cluster_slots_reply_is_read_for_this_node_only() {
        let node = |id: &str| {
            RedisValue::Array(vec![
                RedisValue::SimpleString("127.0.0.1".into()),
                RedisValue::Integer(7000),
                RedisValue::SimpleString(id.into()),
            ])
        };
        let range = |first, last, id| {
            RedisValue::Array(vec![
                RedisValue::Integer(first),
                RedisValue::Integer(last),
                node(id),
                node("replica-id"),
            ])
        };
        let reply = RedisValue::Array(vec![
            range(0, 99, "me"),
            range(100, 199, "other"),
            range(500, 500, "me"),
        ]);
        let set = SlotSet::from_cluster_slots(&reply, b"me");
        assert_eq!(set.len(), 101);
        assert!(set.contains(0) && set.contains(99) && set.contains(500));
        assert!(!set.contains(100) && !set.contains(499) && !set.contains(501));
        assert!(SlotSet::from_cluster_slots(&RedisValue::Null, b"me").is_empty());
        let listed: Vec<usize> = (0..set.len()).filter_map(|n| set.nth(n)).collect();
        assert_eq!(listed, (0..100).chain([500]).collect::<Vec<_>>());
        assert_eq!(set.nth(101), None);
    }

    #[test]
    fn a_random_slot_is_a_served_one() {
        let mut set = SlotSet::new();
        for slot in [3, 64, 16383] {
            set.insert(slot);
        }
        let served = Served::within(Arc::new(set), false).expect("slots");
        let mut rng = rand::rng();
        let drawn: std::collections::BTreeSet<usize> = (0..200)
            .filter_map(|_| served.random_slot(&mut rng))
            .collect();
        assert_eq!(drawn, [3, 64, 16383].into());
    }

    #[test]
    fn excluded_slots_are_gone() {
        let mut set = SlotSet::new();
        set.insert(7);
        set.insert(7);
        assert_eq!(set.len(), 1);
        set.remove(7);
        set.remove(7);
        assert!(set.is_empty());
        assert!(!set.contains(SLOT_COUNT + 1));
    }
}
