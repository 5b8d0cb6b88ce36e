//! Every error text the tests expect, written here once, from the docs
//! (docs/errors.md) and not from `src/`: a change of wording in the module
//! must fail the tests, not follow them. The C module's texts
//! (docs/errors.md#check-order) come with no `ERR ` prefix, and clients
//! match on them byte for byte.

use std::fmt::Display;

/// docs/errors.md#step-2: an empty `<sign_key>`.
pub const EMPTY_SIGN_KEY: &str = "<sign_key> must have at least one character";
/// docs/errors.md#step-3 (START) and #step-6 (EXPIRE): a `<ttl>` that is
/// not a valid number of seconds.
pub const BAD_TTL: &str = "<ttl> must be a valid integer that represents seconds";
/// docs/errors.md#step-4: an empty `<token>`.
pub const EMPTY_TOKEN: &str = "<token> must have at least one character";
/// docs/errors.md#step-5: a token not of the shape of docs/tokens.md#shape.
pub const MALFORMED_TOKEN: &str = "<token> format is invalid";
/// docs/errors.md#step-7: a signature that is not the HMAC of the id under
/// the sign key sent.
pub const FORGED_SIGNATURE: &str = "the signature contained in <token> is invalid";
/// docs/errors.md#step-8: a token whose session does not exist (never
/// started, ended, or expired).
pub const NO_SESSION: &str = "the session id contained in <token> does not exist";
/// docs/errors.md#step-9: a valid HMAC, but not the one the session stores.
pub const STALE_SIGNATURE: &str = "the signature contained in <token> seems to be valid, but is different from the stored signature in the session";
/// docs/errors.md#step-10: an empty `<payload_name>`.
pub const EMPTY_PAYLOAD_NAME: &str = "<payload_name> must have at least one character";
/// docs/errors.md#step-11: an empty `<payload_data>`.
pub const EMPTY_PAYLOAD_DATA: &str = "<payload_data> must have at least one character";
/// docs/errors.md#step-12: PGET of a name the session does not have, PDEL
/// on a session with no payloads.
pub const NO_PAYLOAD: &str = "the requested <payload_name> does not exist";

/// docs/errors.md#step-10: a `<payload_name>` longer than `limit`
/// (max-payload-name-len).
pub fn payload_name_too_long(limit: impl Display) -> String {
    format!("<payload_name> length exceeds the maximum value allowed of {limit}")
}

/// docs/errors.md#step-11: a `<payload_data>` longer than `limit`
/// (max-payload-data-len).
pub fn payload_data_too_long(limit: impl Display) -> String {
    format!("<payload_data> length exceeds the maximum value allowed of {limit}")
}

/// docs/errors.md#other-errors: a write that would leave the session with
/// more than `limit` payloads (max-payloads-per-session).
pub fn too_many_payloads(limit: impl Display) -> String {
    format!("the session has reached the maximum number of payloads allowed of {limit}")
}

/// docs/errors.md#step-1: Redis' own arity error, as native commands send
/// it: this much, then ` for '<command>' command`.
pub const WRONG_ARITY: &str = "ERR wrong number of arguments";

/// Redis' own arity error for `command` as the client spelled it.
pub fn wrong_arity(command: &str) -> String {
    format!("{WRONG_ARITY} for '{command}' command")
}

/// docs/errors.md#other-errors: Redis' own, for a payloads key that is not a
/// hash: this much, then the rest.
pub const WRONG_TYPE: &str = "WRONGTYPE";

/// docs/errors.md#other-errors, not the C module's: a command that panicked,
/// the panic caught and written to the Redis log.
pub const INTERNAL: &str = "ERR sessiongate internal error (details in the Redis log)";

/// docs/errors.md#other-errors, not the C module's (docs/cluster.md#start):
/// START on a cluster node that serves no hash slot.
pub const NO_SERVED_SLOT: &str = "ERR this cluster node serves no hash slot, so it cannot start a session: send SESSIONGATE.START to a master that serves slots";

/// A node importing the session's slot that lacks some of its keys yet
/// (docs/cluster.md#during-a-migration): Redis' own error code, retried by
/// cluster clients.
pub const TRY_AGAIN: &str =
    "TRYAGAIN the session's slot is being imported to this node and its keys are not all here yet";

/// docs/keyrings.md#keyrefs (docs/keyrings.md), step 2: an `@<ring>` keyref naming
/// no ring this caller may use, or any `@` keyref with no keyring loaded.
pub fn unknown_ring(ring: impl Display) -> String {
    format!("the keyring {ring} does not exist")
}

/// docs/keyrings.md#keyrefs (docs/keyrings.md), step 2: a raw sign key while
/// `sessiongate.allow-raw-keys` is `no`.
pub const RAW_KEYS_DISABLED: &str = "raw sign keys are disabled: use a keyring (@<ring>)";

/// docs/tokens.md#v2-tokens: a v2 session whose record (field `""`) the module cannot
/// read, after step 8.
pub const UNREADABLE_RECORD: &str = "the session contained in <token> has an unreadable record";

// docs Part 6, the session lifecycle's errors, as its table words them.

/// docs/commands.md#session-lifecycle: an empty `<owner>` (OSTART, OLIST, OEND).
pub const EMPTY_OWNER: &str = "<owner> must have at least one character";
/// docs/commands.md#session-lifecycle: an `<owner>` longer than 512 bytes.
pub const OWNER_TOO_LONG: &str = "<owner> length exceeds the maximum value allowed of 512";
/// docs/commands.md#session-lifecycle: an empty LABEL.
pub const EMPTY_LABEL: &str = "<label> must have at least one character";
/// docs/commands.md#session-lifecycle: a LABEL longer than 512 bytes.
pub const LABEL_TOO_LONG: &str = "<label> length exceeds the maximum value allowed of 512";
/// docs/commands.md#session-lifecycle: MAXLIFE not an integer of at least 1, or overflowing.
pub const BAD_MAXLIFE: &str = "<maxlife> must be a valid integer that represents seconds";
/// docs/commands.md#session-lifecycle: LIMIT not an integer of at least 1.
pub const BAD_LIMIT: &str = "<limit> must be a positive integer";
/// docs/commands.md#session-lifecycle: an OEND ID that is not 16 of `[A-Za-z0-9]`.
pub const BAD_ID: &str = "<id> format is invalid";
/// docs/commands.md#session-lifecycle: an OEND EXCEPT token that is not one of the owner's sessions.
pub const NOT_THE_OWNERS: &str = "the session contained in <token> does not belong to <owner>";

/// docs/keys.md#owner-index: LIMIT `n` REJECT reached, or `max-sessions-per-owner` (`n`).
pub fn too_many_sessions(n: impl Display) -> String {
    format!("the owner has reached the maximum number of sessions allowed of {n}")
}
