//! The keyring this server holds (docs/keyrings.md): loaded from the file
//! `sessiongate.keyring-file` names, at load and on `SESSIONGATE.KEYRING
//! RELOAD`, and read by every command that gets an `@<ring>` keyref.
//!
//! Who touches it, and when (docs/keyrings.md#reload): module commands and
//! config set callbacks all run on Redis' main thread, holding its global
//! lock, one at a time; this module starts no thread and uses no
//! thread-safe context. So the lock below is never contended, and a swap
//! (a config set or a RELOAD) never runs while a command does. Besides, a
//! command that has taken `current()` holds its own `Arc` of the keyring it
//! started with until it returns: a swap could only ever replace the ring a
//! later command sees, never change one in the middle of a command.

use crate::keyed_hmac;
use crate::keyring_file::{self, Keyring};
use redis_module::logging::RedisLogLevel;
use redis_module::Context;
use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, RwLock};

/// `None` until a file is loaded. Replaced whole, never changed in place.
static LOADED: RwLock<Option<Arc<Keyring>>> = RwLock::new(None);

/// The largest keyring file read: far above any real one (a ring of 8
/// secrets of the longest kind is about 11 KB), and low enough that a path
/// set to a device or a huge file by mistake costs no more than this.
pub const MAX_FILE_LEN: u64 = 16 << 20;

/// The keyring as it is now; `None` when no file is loaded.
pub fn current() -> Option<Arc<Keyring>> {
    LOADED.read().unwrap_or_else(|p| p.into_inner()).clone()
}

/// A file read and parsed, not yet installed.
pub struct Loaded {
    pub keyring: Keyring,
    /// Its group or others may read it: loaded, with a warning.
    pub readable_by_others: bool,
}

/// Reads and parses the keyring file at `path`, all or nothing. `Err` says
/// why in words that hold nothing of the file's content: the OS error, or
/// the line and field of a `keyring_file::Refusal`.
pub fn read_file(path: &Path) -> Result<Loaded, String> {
    let unreadable = |error: std::io::Error| format!("keyring file cannot be read: {error}");
    let file = File::open(path).map_err(unreadable)?;
    let metadata = file.metadata().map_err(unreadable)?;
    // A FIFO or a device could block the main thread, or never end.
    if !metadata.is_file() {
        return Err("keyring file is not a regular file".into());
    }
    if metadata.len() > MAX_FILE_LEN {
        return Err(too_large());
    }
    let mut text = Vec::new();
    let read = file.take(MAX_FILE_LEN + 1).read_to_end(&mut text);
    let parsed = match read {
        Err(error) => Err(unreadable(error)),
        Ok(_) if text.len() as u64 > MAX_FILE_LEN => Err(too_large()),
        Ok(_) => keyring_file::parse(&text).map_err(|refusal| refusal.to_string()),
    };
    // The parsed keyring holds its own copies of the secrets.
    keyed_hmac::wipe(&mut text);
    Ok(Loaded {
        keyring: parsed?,
        readable_by_others: keyring_file::readable_by_group_or_others(metadata.mode()),
    })
}

fn too_large() -> String {
    format!("keyring file is larger than {} MiB", MAX_FILE_LEN >> 20)
}

/// Makes `keyring` the one commands see from now on (`None`: no keyring),
/// and empties the keyed-HMAC cache, so that no secret of the keyring it
/// replaces stays there.
pub fn install(keyring: Option<Keyring>) {
    let replaced = {
        let mut loaded = LOADED.write().unwrap_or_else(|p| p.into_inner());
        std::mem::replace(&mut *loaded, keyring.map(Arc::new))
    };
    drop(replaced);
    keyed_hmac::forget_all();
}

/// Loads the file at `path` and installs its keyring, or, for an empty
/// path, drops the keyring. On `Err` the keyring stays as it was. Logs the
/// outcome, and a warning for a file its group or others may read; the log
/// names the path, never a secret. `ctx` is `None` in a config callback,
/// which has no context.
pub fn load(ctx: Option<&Context>, path: &[u8]) -> Result<(), String> {
    let shown = shown_path(path);
    if path.is_empty() {
        install(None);
        log(
            ctx,
            RedisLogLevel::Notice,
            "keyring file set to none: no keyring is loaded",
        );
        return Ok(());
    }
    match read_file(Path::new(std::ffi::OsStr::from_bytes(path))) {
        Ok(loaded) => {
            if loaded.readable_by_others {
                log(
                    ctx,
                    RedisLogLevel::Warning,
                    &format!(
                        "WARNING the keyring file {shown} may be read by its group or others: make it 0600 or 0400, owned by the user Redis runs as"
                    ),
                );
            }
            let rings = loaded.keyring.rings().count();
            install(Some(loaded.keyring));
            log(
                ctx,
                RedisLogLevel::Notice,
                &format!("keyring loaded from {shown}: {rings} ring(s)"),
            );
            Ok(())
        }
        Err(why) => {
            log(
                ctx,
                RedisLogLevel::Warning,
                &format!("keyring file {shown} refused, the keyring stays as it was: {why}"),
            );
            Err(why)
        }
    }
}

/// A path as the log shows it: quoted, with control bytes, quotes and
/// non-UTF-8 bytes escaped, so that it can neither break a log line nor
/// hide in one.
fn shown_path(path: &[u8]) -> String {
    format!("'{}'", path.escape_ascii())
}

/// Writes to the Redis log, which tags a line with the module's name only
/// when there is a context. `RedisModule_Log` reads the message as a printf
/// format, so `%` is doubled; a NUL would end the message (and panic in the
/// crate's logging), so it is shown escaped.
fn log(ctx: Option<&Context>, level: RedisLogLevel, message: &str) {
    let message = message.replace('%', "%%").replace('\0', "\\0");
    match ctx {
        Some(ctx) => ctx.log(level, &message),
        None => redis_module::logging::log(level, format!("sessiongate: {message}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    const GOOD: &str = "app primary AAECAwQFBgcICQoLDA0ODw==\n";

    /// A file in a directory of its own, both removed on drop.
    struct TempFile(PathBuf);

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
            if let Some(dir) = self.0.parent() {
                let _ = std::fs::remove_dir(dir);
            }
        }
    }

    fn file(name: &str, text: &[u8], mode: u32) -> TempFile {
        let dir =
            std::env::temp_dir().join(format!("sessiongate-keyring-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        TempFile(path)
    }

    #[test]
    fn a_good_file_is_read_with_its_permissions_told() {
        let private = read_file(&file("private", GOOD.as_bytes(), 0o600).0).unwrap();
        assert!(!private.readable_by_others);
        assert!(private.keyring.ring(b"app").is_some());
        let shared = read_file(&file("shared", GOOD.as_bytes(), 0o644).0).unwrap();
        assert!(shared.readable_by_others);
    }

    #[test]
    fn a_refused_file_says_the_line_and_nothing_of_its_content() {
        let text = format!("# c\n{GOOD}app verify AAECAwQFBgcICQoLDA0ODw==\n");
        let refused = read_file(&file("repeated", text.as_bytes(), 0o600).0).err();
        assert_eq!(
            refused.as_deref(),
            Some("keyring file line 3: <secret> is the same as on line 2")
        );
    }

    #[test]
    fn what_cannot_be_read_says_why_without_content() {
        let missing = read_file(Path::new("/nonexistent/sessiongate/keyring")).err();
        assert_eq!(
            missing.as_deref(),
            Some("keyring file cannot be read: No such file or directory (os error 2)")
        );
        let dir = read_file(&std::env::temp_dir()).err();
        assert_eq!(dir.as_deref(), Some("keyring file is not a regular file"));
        let devnull = read_file(Path::new("/dev/null")).err();
        assert_eq!(
            devnull.as_deref(),
            Some("keyring file is not a regular file")
        );
    }

    #[test]
    fn a_file_over_the_limit_is_refused_unread() {
        let large = file("large", b"", 0o600);
        let handle = std::fs::OpenOptions::new()
            .write(true)
            .open(&large.0)
            .unwrap();
        handle.set_len(MAX_FILE_LEN + 1).unwrap();
        assert_eq!(
            read_file(&large.0).err().as_deref(),
            Some("keyring file is larger than 16 MiB")
        );
    }

    #[test]
    fn install_swaps_whole_and_a_taken_keyring_stays() {
        let first = read_file(&file("first", GOOD.as_bytes(), 0o600).0).unwrap();
        install(Some(first.keyring));
        let taken = current().unwrap();
        install(None);
        assert!(current().is_none());
        // The command that took it still has every ring it started with.
        assert!(taken.ring(b"app").is_some());
    }

    #[test]
    fn paths_are_shown_escaped() {
        assert_eq!(shown_path(b"/etc/keyring"), "'/etc/keyring'");
        assert_eq!(shown_path(b"/a\nb\0c'\xff"), "'/a\\nb\\x00c\\'\\xff'");
    }
}
