//! The keyring this server holds (docs/keyrings.md): loaded from the file
//! `sessiongate.keyring-file` names, at load and on `SESSIONGATE.KEYRING
//! RELOAD`, and read by every command that gets an `@<ring>` keyref.

use crate::keyring_file::Keyring;
use std::sync::{Arc, RwLock};

/// `None` until a file is loaded. Replaced whole, never changed in place.
static LOADED: RwLock<Option<Arc<Keyring>>> = RwLock::new(None);

/// The keyring as it is now; `None` when no file is loaded.
pub fn current() -> Option<Arc<Keyring>> {
    LOADED.read().unwrap_or_else(|p| p.into_inner()).clone()
}
