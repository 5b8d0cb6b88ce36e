//! An owner's index (docs/keys.md#owner-index): the sorted set
//! `sg-owner:{<tag>}:<ns>:<owner>`, member = session id, score = the
//! session's expiry in Unix ms. `<tag>` is the canonical tag of the owner's
//! slot, which the owner's sessions carry too, so the index and every
//! session it lists share one slot.
//!
//! The index is read and written with `RM_Call`: owner commands are not on
//! the fast path, and each write goes out to replicas and the AOF as the
//! very command run here (`!`), an effect with an absolute score.

use crate::cluster;
use crate::key::{Access, Key, Kind};
use crate::token::{Id, Tag};
use redis_module::{CallOptionsBuilder, CallResult, Context, RedisString, RedisValue};

pub struct Index<'c> {
    ctx: &'c Context,
    name: RedisString,
    tag: Tag,
}

/// One member: a session id and its expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub id: Id,
    pub expires_at: i64,
}

impl<'c> Index<'c> {
    pub fn of(ctx: &'c Context, tag: Tag, namespace: &[u8], owner: &[u8]) -> Self {
        let name = [
            &b"sg-owner:{"[..],
            tag.as_bytes(),
            b"}:",
            namespace,
            b":",
            owner,
        ]
        .concat();
        Index {
            ctx,
            name: RedisString::create_from_slice(ctx.ctx, &name),
            tag,
        }
    }

    /// Before an owner command reads or writes the index: `Err(WrongType)`
    /// when a key of another type holds its name (else its sessions would
    /// be in no index, beyond LIMIT and out of OEND's reach), and
    /// `Err(TryAgain)` when it is missing on a node importing its slot: it
    /// may still be on its way (docs/cluster.md#during-a-migration).
    pub fn settle(&self) -> Result<(), crate::error::Rejection> {
        let key = Key::open(self.ctx, &self.name, Access::Read);
        if key.is_sorted_set() {
            return Ok(());
        }
        if key.kind() != Kind::Missing {
            return Err(crate::error::Rejection::WrongType);
        }
        drop(key);
        if self.slot_importing() {
            return Err(crate::error::Rejection::TryAgain);
        }
        Ok(())
    }

    /// Whether this node is importing the index's slot: `EXISTS` of the
    /// index and a name of its slot that is never a key is a two-key
    /// command with a key missing, which Redis refuses exactly there
    /// (`cluster::importing`).
    fn slot_importing(&self) -> bool {
        let sibling = [&b"sg-owner:{"[..], self.tag.as_bytes(), b"}"].concat();
        let sibling = RedisString::create_from_slice(self.ctx.ctx, &sibling);
        cluster::importing(self.ctx, &[&self.name, &sibling])
    }

    /// Every member, by score (expiry) ascending; members that are not
    /// session ids (written by other means) are left out.
    pub fn entries(&self) -> Vec<Entry> {
        let args: [&[u8]; 4] = [self.name.as_slice(), b"0", b"-1", b"WITHSCORES"];
        let reply = self.ctx.call("ZRANGE", &args[..]);
        let Ok(RedisValue::Array(items)) = reply else {
            return Vec::new();
        };
        items
            .chunks_exact(2)
            .filter_map(|pair| {
                let id: Id = bytes_of(&pair[0])?.try_into().ok()?;
                let score = std::str::from_utf8(&bytes_of(&pair[1])?)
                    .ok()?
                    .parse::<f64>()
                    .ok()?;
                Some(Entry {
                    id,
                    expires_at: score as i64,
                })
            })
            .collect()
    }

    /// Adds or moves `id` to `expires_at`, and raises the index's own
    /// expiry to it if that is later: the index lives as long as its
    /// latest session may.
    pub fn set(&self, id: &Id, expires_at: i64) {
        let score = expires_at.to_string();
        self.write(&[b"ZADD", self.name.as_slice(), score.as_bytes(), id]);
        let current = Key::open(self.ctx, &self.name, Access::Read).expires_at();
        if current.is_none_or(|at| at < expires_at) {
            self.write(&[b"PEXPIREAT", self.name.as_slice(), score.as_bytes()]);
        }
    }

    /// Removes these ids; Redis deletes the index with its last member.
    pub fn remove(&self, ids: &[Id]) {
        if ids.is_empty() {
            return;
        }
        let mut args: Vec<&[u8]> = vec![b"ZREM", self.name.as_slice()];
        args.extend(ids.iter().map(|id| &id[..]));
        self.write(&args);
    }

    /// Runs a write, propagated as itself.
    fn write(&self, words: &[&[u8]]) {
        let options = CallOptionsBuilder::new()
            .replicate()
            .errors_as_replies()
            .build();
        let (command, args) = words
            .split_first()
            .map_or((&b""[..], &[][..]), |(c, a)| (*c, a));
        let command = String::from_utf8_lossy(command);
        let _: CallResult = self.ctx.call_ext(&command, &options, args);
    }
}

fn bytes_of(value: &RedisValue) -> Option<Vec<u8>> {
    match value {
        RedisValue::StringBuffer(bytes) => Some(bytes.clone()),
        RedisValue::SimpleString(text) | RedisValue::BulkString(text) => {
            Some(text.as_bytes().to_vec())
        }
        RedisValue::BulkRedisString(string) => Some(string.as_slice().to_vec()),
        _ => None,
    }
}
