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
    /// An `@<ring>` keyref naming no ring this caller may use
    /// (docs/errors.md#step-2): the name as the reply shows it.
    UnknownRing(ShownName),
    /// A raw sign key while `sessiongate.allow-raw-keys` is `no`.
    RawKeysDisabled,
    /// A v2 session whose record (field `""`) the module cannot read
    /// (docs/keys.md#v2-record).
    UnreadableRecord,
    // The session lifecycle's (docs/errors.md#lifecycle-errors).
    EmptyOwner,
    /// The owner exceeds the limit it carries.
    OwnerTooLong(usize),
    EmptyLabel,
    /// The label exceeds the limit it carries.
    LabelTooLong(usize),
    InvalidMaxlife,
    InvalidLimit,
    InvalidId,
    /// An OEND EXCEPT token whose session is not the owner's.
    NotTheOwners,
    /// LIMIT n REJECT, or `max-sessions-per-owner`, reached: the n.
    TooManySessions(usize),
    /// The command panicked; the panic is in the Redis log.
    Internal,
}

/// A name a client sent, as an error reply may show it: at most
/// `SHOWN_NAME_LEN` bytes, each outside `[A-Za-z0-9_.-]` (the ring name
/// bytes, docs/keyrings.md) shown as `?`, and `...` after a cut. So a
/// reply stays one short line whatever was sent, and every real ring name
/// is shown as it is.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ShownName {
    bytes: [u8; SHOWN_NAME_LEN + 3],
    len: u8,
}

pub const SHOWN_NAME_LEN: usize = 64;

impl ShownName {
    pub fn of(name: &[u8]) -> Self {
        let mut shown = ShownName {
            bytes: [0; SHOWN_NAME_LEN + 3],
            len: 0,
        };
        let cut = name.len() > SHOWN_NAME_LEN;
        let kept = name.iter().take(SHOWN_NAME_LEN).map(|&b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' => b,
            _ => b'?',
        });
        let dots = if cut { &b"..."[..] } else { b"" };
        for (slot, b) in shown.bytes.iter_mut().zip(kept.chain(dots.iter().copied())) {
            *slot = b;
            shown.len += 1;
        }
        shown
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl std::fmt::Debug for ShownName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
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
            UnknownRing(name) => {
                let text = format!(
                    "the keyring {} does not exist",
                    String::from_utf8_lossy(name.as_bytes())
                );
                // Shown names hold no NUL (ShownName::of).
                return Cow::Owned(CString::new(text).unwrap_or_default());
            }
            OwnerTooLong(max) => {
                return limit("<owner> length exceeds the maximum value allowed of ", max)
            }
            LabelTooLong(max) => {
                return limit("<label> length exceeds the maximum value allowed of ", max)
            }
            TooManySessions(max) => {
                return limit(
                    "the owner has reached the maximum number of sessions allowed of ",
                    max,
                )
            }
            EmptyOwner => c"<owner> must have at least one character",
            EmptyLabel => c"<label> must have at least one character",
            InvalidMaxlife => c"<maxlife> must be a valid integer that represents seconds",
            InvalidLimit => c"<limit> must be a positive integer",
            InvalidId => c"<id> format is invalid",
            NotTheOwners => c"the session contained in <token> does not belong to <owner>",
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
            RawKeysDisabled => c"raw sign keys are disabled: use a keyring (@<ring>)",
            UnreadableRecord => c"the session contained in <token> has an unreadable record",
            Internal => c"ERR sessiongate internal error (details in the Redis log)",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shown_name_is_short_and_plain() {
        let shown = |name: &[u8]| ShownName::of(name).as_bytes().to_vec();
        assert_eq!(shown(b"billing.v2_x-1"), b"billing.v2_x-1");
        assert_eq!(shown(b"a b\r\n\0{}"), b"a?b?????");
        let long = [b'x'; 65];
        assert_eq!(shown(&long), [&[b'x'; 64][..], b"..."].concat());
        assert_eq!(shown(&long[..64]), &long[..64]);
        assert_eq!(
            &*Rejection::UnknownRing(ShownName::of(b"app")).message(),
            c"the keyring app does not exist"
        );
    }
}
