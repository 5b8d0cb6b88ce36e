//! `SESSIONGATE.KEYRING LIST` and `SESSIONGATE.KEYRING RELOAD`
//! (docs/keyrings.md#keyring-list, docs/keyrings.md#reload): what an
//! operator sees of the keyring this node holds, and re-reading its file.
//! Both act on this node only: they write nothing to the keyspace and call
//! no `RM_Replicate`, so nothing of them reaches a replica or the AOF.

use crate::arg::Arg;
use crate::config;
use crate::error::Rejection;
use crate::keyring;
use crate::reply::{Answer, Reply, RingListing};
use redis_module::Context;
use std::ffi::CString;

/// SESSIONGATE.KEYRING <LIST | RELOAD>
pub fn run(ctx: &Context, args: &[Arg]) -> Reply {
    let [_, subcommand] = args else {
        return Err(Rejection::WrongArity);
    };
    let subcommand = subcommand.as_slice();
    if subcommand.eq_ignore_ascii_case(b"LIST") {
        Ok(list())
    } else if subcommand.eq_ignore_ascii_case(b"RELOAD") {
        Ok(reload(ctx))
    } else {
        // The argument is not echoed: whatever was sent there stays out of
        // the reply, as it stays out of SLOWLOG and MONITOR.
        Ok(error(
            "ERR unknown subcommand of SESSIONGATE.KEYRING: use LIST or RELOAD",
        ))
    }
}

/// Every ring by name, each with its secrets' states and fingerprints,
/// primary first; an empty array when no keyring is loaded.
fn list() -> Answer {
    let rings = keyring::current()
        .map(|keyring| {
            keyring
                .rings()
                .map(|(name, ring)| RingListing {
                    name: name.to_owned(),
                    secrets: ring
                        .secrets()
                        .map(|(state, secret)| (state.as_str(), secret.fingerprint()))
                        .collect(),
                })
                .collect()
        })
        .unwrap_or_default();
    Answer::Rings(rings)
}

/// Re-reads the file `sessiongate.keyring-file` names, all or nothing: OK
/// with the new keyring in place, or the error with the old one kept.
fn reload(ctx: &Context) -> Answer {
    let path = config::keyring_file();
    if path.is_empty() {
        return error("ERR no keyring file is configured (sessiongate.keyring-file is empty)");
    }
    match keyring::load(Some(ctx), &path) {
        Ok(()) => Answer::Ok,
        Err(why) => error(&format!("ERR {why}")),
    }
}

fn error(message: &str) -> Answer {
    // Our own words, and a Refusal's or an OS error's, none with a NUL.
    Answer::Error(CString::new(message.replace('\0', "")).unwrap_or_default())
}
