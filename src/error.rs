//! Every error a command replies with. Those of docs/errors.md are worded exactly
//! as the C module words them (clients match on these strings) and sent with
//! no `ERR ` prefix; the limits name the number the check used. Depends on
//! nothing else in the crate.

use std::borrow::Cow;
use std::ffi::{CStr, CString};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Redis' own arity error, `RedisModule_WrongArity`.
    WrongArity,
    EmptySignKey,
    InvalidTtl,
    EmptyToken,
    MalformedToken,
    ForgedSignature,
    NoSession,
    StaleSignature,
    EmptyPayloadName,
    /// The name exceeds the limit it carries.
    PayloadNameTooLong(usize),
    EmptyPayloadData,
    /// The data exceeds the limit it carries.
    PayloadDataTooLong(usize),
    NoPayload,
    /// The session would exceed the payload count it carries.
    TooManyPayloads(usize),
    WrongType,
    NoServedSlot,
    NoFreeId,
    /// A session key is missing on a node importing the session's slot: it
    /// may still be on its way (docs/cluster.md#during-a-migration).
    TryAgain,
    /// The command panicked; the panic is in the Redis log.
    Internal,
}

impl Rejection {
    pub fn message(self) -> Cow<'static, CStr> {
        use Rejection::*;
        let limit = |what: &str, n: usize| {
            // The text is ours and a number: it has no NUL.
            Cow::Owned(CString::new(format!("{what}{n}")).unwrap_or_default())
        };
        Cow::Borrowed(match self {
            PayloadNameTooLong(max) => {
                return limit("<payload_name> length exceeds the maximum value allowed of ", max)
            }
            PayloadDataTooLong(max) => {
                return limit("<payload_data> length exceeds the maximum value allowed of ", max)
            }
            TooManyPayloads(max) => {
                return limit(
                    "the session has reached the maximum number of payloads allowed of ",
                    max,
                )
            }
            WrongArity => c"ERR wrong number of arguments",
            EmptySignKey => c"<sign_key> must have at least one character",
            InvalidTtl => c"<ttl> must be a valid integer that represents seconds",
            EmptyToken => c"<token> must have at least one character",
            MalformedToken => c"<token> format is invalid",
            ForgedSignature => c"the signature contained in <token> is invalid",
            NoSession => c"the session id contained in <token> does not exist",
            StaleSignature => c"the signature contained in <token> seems to be valid, but is different from the stored signature in the session",
            EmptyPayloadName => c"<payload_name> must have at least one character",
            EmptyPayloadData => c"<payload_data> must have at least one character",
            NoPayload => c"the requested <payload_name> does not exist",
            // Redis' own, as native commands send it.
            WrongType => c"WRONGTYPE Operation against a key holding the wrong kind of value",
            // Not in the C module, which knows no cluster: Redis' own style.
            NoServedSlot => c"ERR this cluster node serves no hash slot, so it cannot start a session: send SESSIONGATE.START to a master that serves slots",
            NoFreeId => c"ERR no unused session id found in the slots this node serves; try again",
            // Redis' own code for "retry this command", which cluster clients retry.
            TryAgain => c"TRYAGAIN the session's slot is being imported to this node and its keys are not all here yet",
            Internal => c"ERR sessiongate internal error (details in the Redis log)",
        })
    }
}
