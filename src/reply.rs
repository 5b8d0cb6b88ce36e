//! What a command answers, written to the client through Redis' reply API
//! directly: no intermediate value, and no allocation for `OK`, a token or
//! a fixed error.

use crate::api::api;
use crate::error::Rejection;
use crate::token::Minted;
use redis_module::{raw, Context, RedisString};
use std::ffi::CString;
use std::os::raw::{c_int, c_long};

/// What a command callback hands back: an answer, or the error to send.
pub type Reply = Result<Answer, Rejection>;

/// One payload, copied out of the hash: its name and data.
pub type NameAndData = (Vec<u8>, Vec<u8>);

pub enum Answer {
    Ok,
    Token(Minted),
    Data(RedisString),
    Integer(i64),
    /// One entry per name asked for; nil where missing (PMGET).
    Each(Vec<Option<RedisString>>),
    /// Every payload, sorted by name: a map under RESP3, which Redis sends
    /// as a flat name/data array under RESP2 (PGETALL).
    Payloads(Vec<NameAndData>),
    /// An error whose text is made at run time (KEYRING RELOAD's, which
    /// names a line of the keyring file), sent as it is, code included.
    Error(CString),
    /// KEYRING LIST (docs/keyrings.md#keyring-list): an array with one
    /// `[name, [[state, fingerprint], …]]` per ring, in both protocols.
    Rings(Vec<RingListing>),
    /// Named facts: a map under RESP3, a flat name/value array under RESP2
    /// (INSPECT).
    Fields(Fields),
    /// An array of `Fields` (OLIST).
    EachFields(Vec<Fields>),
}

/// One value of `Fields`.
pub enum Field {
    Integer(i64),
    Bytes(Vec<u8>),
    Nil,
}

impl Field {
    pub fn integer_or_nil(value: Option<i64>) -> Field {
        value.map_or(Field::Nil, Field::Integer)
    }

    pub fn bytes_or_nil(value: Option<Vec<u8>>) -> Field {
        value.map_or(Field::Nil, Field::Bytes)
    }
}

pub type Fields = Vec<(&'static str, Field)>;

/// One ring as KEYRING LIST shows it: its name, and each secret's state and
/// fingerprint, primary first.
pub struct RingListing {
    pub name: String,
    pub secrets: Vec<(&'static str, String)>,
}

/// Writes the reply; returns what a command callback returns to Redis.
pub fn send(ctx: &Context, reply: Reply) -> c_int {
    let ctx = ctx.ctx;
    // SAFETY: ctx is the live command context; every pointer passed below
    // lives for its call.
    unsafe {
        match reply {
            Ok(Answer::Ok) => api!(RedisModule_ReplyWithSimpleString)(ctx, c"OK".as_ptr()),
            Ok(Answer::Token(token)) => bytes(ctx, &token),
            Ok(Answer::Data(data)) => api!(RedisModule_ReplyWithString)(ctx, data.inner),
            Ok(Answer::Integer(n)) => api!(RedisModule_ReplyWithLongLong)(ctx, n),
            Ok(Answer::Each(values)) => {
                api!(RedisModule_ReplyWithArray)(ctx, values.len() as c_long);
                for value in &values {
                    match value {
                        Some(data) => api!(RedisModule_ReplyWithString)(ctx, data.inner),
                        None => api!(RedisModule_ReplyWithNull)(ctx),
                    };
                }
                raw::REDISMODULE_OK as c_int
            }
            Ok(Answer::Payloads(mut payloads)) => {
                payloads.sort_unstable();
                api!(RedisModule_ReplyWithMap)(ctx, payloads.len() as c_long);
                for (name, data) in &payloads {
                    bytes(ctx, name);
                    bytes(ctx, data);
                }
                raw::REDISMODULE_OK as c_int
            }
            Ok(Answer::Error(message)) => api!(RedisModule_ReplyWithError)(ctx, message.as_ptr()),
            Ok(Answer::Rings(rings)) => {
                api!(RedisModule_ReplyWithArray)(ctx, rings.len() as c_long);
                for ring in &rings {
                    api!(RedisModule_ReplyWithArray)(ctx, 2);
                    bytes(ctx, ring.name.as_bytes());
                    api!(RedisModule_ReplyWithArray)(ctx, ring.secrets.len() as c_long);
                    for (state, fingerprint) in &ring.secrets {
                        api!(RedisModule_ReplyWithArray)(ctx, 2);
                        bytes(ctx, state.as_bytes());
                        bytes(ctx, fingerprint.as_bytes());
                    }
                }
                raw::REDISMODULE_OK as c_int
            }
            Ok(Answer::Fields(fields)) => fields_reply(ctx, &fields),
            Ok(Answer::EachFields(all)) => {
                api!(RedisModule_ReplyWithArray)(ctx, all.len() as c_long);
                for fields in &all {
                    fields_reply(ctx, fields);
                }
                raw::REDISMODULE_OK as c_int
            }
            Err(Rejection::WrongArity) => api!(RedisModule_WrongArity)(ctx),
            Err(rejection) => api!(RedisModule_ReplyWithError)(ctx, rejection.message().as_ptr()),
        }
    }
}

unsafe fn fields_reply(ctx: *mut raw::RedisModuleCtx, fields: &Fields) -> c_int {
    api!(RedisModule_ReplyWithMap)(ctx, fields.len() as c_long);
    for (name, value) in fields {
        bytes(ctx, name.as_bytes());
        match value {
            Field::Integer(n) => api!(RedisModule_ReplyWithLongLong)(ctx, *n),
            Field::Bytes(data) => bytes(ctx, data),
            Field::Nil => api!(RedisModule_ReplyWithNull)(ctx),
        };
    }
    raw::REDISMODULE_OK as c_int
}

/// A bulk string from bytes.
unsafe fn bytes(ctx: *mut raw::RedisModuleCtx, bytes: &[u8]) -> c_int {
    api!(RedisModule_ReplyWithStringBuffer)(ctx, bytes.as_ptr().cast(), bytes.len())
}
