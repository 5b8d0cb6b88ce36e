//! Every error a command replies with. Those of SPEC 1.4 are worded exactly
//! as the C module words them (clients match on these strings) and sent with
//! no `ERR ` prefix; the limits name the configured number.

use crate::config;
use redis_module::RedisError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    WrongArity,
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
    TooManyPayloads,
    WrongType,
    NoServedSlot,
    NoFreeId,
}

impl From<Rejection> for RedisError {
    fn from(rejection: Rejection) -> Self {
        use Rejection::*;
        let fixed = match rejection {
            WrongArity => return RedisError::WrongArity,
            WrongType => return RedisError::WrongType,
            PayloadNameTooLong => {
                return RedisError::String(format!(
                    "<payload_name> length exceeds the maximum value allowed of {}",
                    config::max_payload_name_len()
                ))
            }
            PayloadDataTooLong => {
                return RedisError::String(format!(
                    "<payload_data> length exceeds the maximum value allowed of {}",
                    config::max_payload_data_len()
                ))
            }
            TooManyPayloads => {
                return RedisError::String(format!(
                    "the session has reached the maximum number of payloads allowed of {}",
                    config::max_payloads_per_session()
                ))
            }
            EmptySignKey => "<sign_key> must have at least one character",
            InvalidTtl => "<ttl> must be a valid integer that represents seconds",
            EmptyToken => "<token> must have at least one character",
            MalformedToken => "<token> format is invalid",
            ForgedSignature => "the signature contained in <token> is invalid",
            NoSession => "the session id contained in <token> does not exist",
            StaleSignature => "the signature contained in <token> seems to be valid, but is different from the stored signature in the session",
            EmptyPayloadName => "<payload_name> must have at least one character",
            EmptyPayloadData => "<payload_data> must have at least one character",
            NoPayload => "the requested <payload_name> does not exist",
            // Not in the C module, which knows no cluster: Redis' own style.
            NoServedSlot => "ERR this cluster node serves no hash slot, so it cannot start a session: send SESSIONGATE.START to a master that serves slots",
            NoFreeId => "ERR no unused session id found in the slots this node serves; try again",
        };
        RedisError::Str(fixed)
    }
}

/// The reply when a command panicked; the panic itself goes to the Redis log.
pub const INTERNAL_ERROR: &str = "ERR sessiongate internal error (details in the Redis log)";
