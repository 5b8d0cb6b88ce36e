//! Every error a command replies with, worded exactly as the C module words
//! it (SPEC 1.4): clients match on these strings. Redis sends them with no
//! `ERR ` prefix.

use redis_module::RedisError;

pub const MAX_PAYLOAD_NAME_LEN: usize = 200;
pub const MAX_PAYLOAD_DATA_LEN: usize = 8_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    EmptySignKey,
    InvalidTtl,
    EmptyToken,
    MalformedToken,
    ForgedSignature,
    NoSession,
    StaleSignature,
    EmptyPayloadName,
    PayloadNameTooLong,
    EmptyPayloadData,
    PayloadDataTooLong,
    NoPayload,
    NoServedSlot,
    NoFreeId,
}

impl Rejection {
    pub const fn message(self) -> &'static str {
        match self {
            Self::EmptySignKey => "<sign_key> must have at least one character",
            Self::InvalidTtl => "<ttl> must be a valid integer that represents seconds",
            Self::EmptyToken => "<token> must have at least one character",
            Self::MalformedToken => "<token> format is invalid",
            Self::ForgedSignature => "the signature contained in <token> is invalid",
            Self::NoSession => "the session id contained in <token> does not exist",
            Self::StaleSignature => "the signature contained in <token> seems to be valid, but is different from the stored signature in the session",
            Self::EmptyPayloadName => "<payload_name> must have at least one character",
            Self::PayloadNameTooLong => "<payload_name> length exceeds the maximum value allowed of 200",
            Self::EmptyPayloadData => "<payload_data> must have at least one character",
            Self::PayloadDataTooLong => "<payload_data> length exceeds the maximum value allowed of 8000000",
            Self::NoPayload => "the requested <payload_name> does not exist",
            // Not in the C module, which knows no cluster: Redis' own style.
            Self::NoServedSlot => "ERR this cluster node serves no hash slot, so it cannot start a session: send SESSIONGATE.START to a master that serves slots",
            Self::NoFreeId => "ERR no unused session id found in the slots this node serves; try again",
        }
    }
}

impl From<Rejection> for RedisError {
    fn from(rejection: Rejection) -> Self {
        RedisError::Str(rejection.message())
    }
}

/// The reply when a command panicked; the panic itself goes to the Redis log.
pub const INTERNAL_ERROR: &str = "ERR sessiongate internal error (details in the Redis log)";
