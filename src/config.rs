//! The module's settings, as Redis module configurations: settable at load
//! (`loadmodule <path> max-payload-data-len 1000000`) or in redis.conf
//! (`sessiongate.max-payload-data-len 1000000`), and with
//! `CONFIG SET/GET sessiongate.<name>`. Redis checks each number's range
//! and each bool; the keyring file is checked here, by reading it
//! (docs/configuration.md, docs/keyrings.md#the-keyring-file-config).

use crate::api::api;
use crate::keyring;
use redis_module::configuration::ConfigurationFlags;
use redis_module::configuration::{
    get_i64_default_config_value, register_bool_configuration, register_i64_configuration,
};
use redis_module::{raw, Context, RedisString};
use std::ffi::{c_void, CString};
use std::os::raw::{c_char, c_int};
use std::panic::{self, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, Ordering};

/// A bulk string can be at most 512 MB (`proto-max-bulk-len`'s default).
const MAX_LEN: i64 = 512 * 1024 * 1024;

struct Setting {
    name: &'static str,
    value: &'static AtomicI64,
    default: i64,
    min: i64,
    max: i64,
}

static MAX_PAYLOAD_NAME_LEN: AtomicI64 = AtomicI64::new(200);
static MAX_PAYLOAD_DATA_LEN: AtomicI64 = AtomicI64::new(8_000_000);
static MAX_PAYLOADS_PER_SESSION: AtomicI64 = AtomicI64::new(0);
static TOKEN_VERSION: AtomicI64 = AtomicI64::new(1);
static DEFAULT_MAX_LIFETIME: AtomicI64 = AtomicI64::new(0);
static MAX_SESSIONS_PER_OWNER: AtomicI64 = AtomicI64::new(1000);

static SETTINGS: [Setting; 6] = [
    Setting {
        name: "max-payload-name-len",
        value: &MAX_PAYLOAD_NAME_LEN,
        default: 200,
        min: 1,
        max: MAX_LEN,
    },
    Setting {
        name: "max-payload-data-len",
        value: &MAX_PAYLOAD_DATA_LEN,
        default: 8_000_000,
        min: 1,
        max: MAX_LEN,
    },
    Setting {
        name: "max-payloads-per-session",
        value: &MAX_PAYLOADS_PER_SESSION,
        default: 0,
        min: 0,
        max: u32::MAX as i64,
    },
    Setting {
        name: "token-version",
        value: &TOKEN_VERSION,
        default: 1,
        min: 1,
        max: 2,
    },
    Setting {
        name: "default-max-lifetime",
        value: &DEFAULT_MAX_LIFETIME,
        default: 0,
        min: 0,
        // A deadline is at most 2^53 ms (docs/tokens.md#v2-tokens).
        max: (1 << 53) / 1000,
    },
    Setting {
        name: "max-sessions-per-owner",
        value: &MAX_SESSIONS_PER_OWNER,
        default: 1000,
        min: 0,
        max: 1_000_000,
    },
];

/// `sessiongate.default-max-lifetime`, seconds; 0 means none
/// (docs/configuration.md#default-max-lifetime).
pub fn default_max_lifetime() -> i64 {
    DEFAULT_MAX_LIFETIME.load(Ordering::Relaxed)
}

/// `sessiongate.max-sessions-per-owner`; 0 means no limit.
pub fn max_sessions_per_owner() -> usize {
    read(&MAX_SESSIONS_PER_OWNER)
}

const ALLOW_RAW_KEYS_NAME: &str = "allow-raw-keys";
static ALLOW_RAW_KEYS: AtomicBool = AtomicBool::new(true);

const KEYRING_FILE_NAME: &str = "keyring-file";
/// `sessiongate.keyring-file` as `CONFIG GET` shows it: a string this module
/// owns (Redis copies what the get callback returns and frees nothing), set
/// only when the file it names has been loaded. Null before registration.
/// Read and written on Redis' main thread only.
static KEYRING_FILE: AtomicPtr<raw::RedisModuleString> = AtomicPtr::new(ptr::null_mut());

pub fn max_payload_name_len() -> usize {
    read(&MAX_PAYLOAD_NAME_LEN)
}

pub fn max_payload_data_len() -> usize {
    read(&MAX_PAYLOAD_DATA_LEN)
}

/// 0 means no limit.
pub fn max_payloads_per_session() -> usize {
    read(&MAX_PAYLOADS_PER_SESSION)
}

/// `sessiongate.allow-raw-keys` (docs/configuration.md#keyrings-and-tokens).
pub fn allow_raw_keys() -> bool {
    ALLOW_RAW_KEYS.load(Ordering::Relaxed)
}

/// `sessiongate.token-version`: which token a three-argument START mints,
/// 1 or 2 (docs/configuration.md#keyrings-and-tokens).
pub fn token_version() -> i64 {
    TOKEN_VERSION.load(Ordering::Relaxed)
}

/// The path `sessiongate.keyring-file` holds, as bytes; empty when no
/// keyring file is configured.
pub fn keyring_file() -> Vec<u8> {
    let shown = KEYRING_FILE.load(Ordering::Relaxed);
    if shown.is_null() {
        return Vec::new();
    }
    // SAFETY: a string this module created and frees only when replacing it,
    // on the main thread, as this runs.
    unsafe { string_bytes(shown) }.to_vec()
}

/// The bytes of a live Redis string.
///
/// # Safety
/// `string` must be a valid `RedisModuleString` for as long as the slice is used.
unsafe fn string_bytes<'a>(string: *const raw::RedisModuleString) -> &'a [u8] {
    let mut len = 0;
    let data = api!(RedisModule_StringPtrLen)(string, &mut len);
    if data.is_null() {
        return &[];
    }
    std::slice::from_raw_parts(data.cast::<u8>(), len)
}

/// The loadmodule arguments must be `<name> <value>` pairs of known settings,
/// each at most once: a misspelled name would otherwise be ignored silently.
fn check_arguments(args: &[RedisString]) -> Result<(), String> {
    let known: Vec<&str> = SETTINGS
        .iter()
        .map(|s| s.name)
        .chain([ALLOW_RAW_KEYS_NAME, KEYRING_FILE_NAME])
        .collect();
    let mut seen: Vec<&[u8]> = Vec::new();
    for pair in args.chunks(2) {
        let name = pair[0].as_slice();
        let shown = String::from_utf8_lossy(name);
        if !known.iter().any(|known| known.as_bytes() == name) {
            return Err(format!(
                "unknown argument '{shown}' (known: {})",
                known.join(", ")
            ));
        }
        if pair.len() < 2 {
            return Err(format!("'{shown}' needs a value"));
        }
        if seen.contains(&name) {
            return Err(format!("'{shown}' is given twice"));
        }
        seen.push(name);
    }
    Ok(())
}

/// The value given after `name` in the loadmodule arguments, once
/// `check_arguments` has passed them.
fn argument<'a>(args: &'a [RedisString], name: &str) -> Option<&'a [u8]> {
    args.chunks(2)
        .find(|pair| pair[0].as_slice() == name.as_bytes())
        .and_then(|pair| pair.get(1))
        .map(|value| value.as_slice())
}

/// A bool as Redis spells it in a config: `yes` or `no`, in any case.
fn parse_bool(name: &str, value: &[u8]) -> Result<bool, String> {
    if value.eq_ignore_ascii_case(b"yes") {
        Ok(true)
    } else if value.eq_ignore_ascii_case(b"no") {
        Ok(false)
    } else {
        Err(format!("{name} must be yes or no"))
    }
}

fn read(value: &AtomicI64) -> usize {
    usize::try_from(value.load(Ordering::Relaxed)).unwrap_or(usize::MAX)
}

/// Registers every setting, each starting from the value given after the
/// module path, if any. `Err` names an argument or value that cannot be used.
pub fn register(ctx: &Context, args: &[RedisString]) -> Result<(), String> {
    check_arguments(args)?;
    for setting in &SETTINGS {
        let given = get_i64_default_config_value(args, setting.name, setting.default)
            .map_err(|e| format!("{}: {e}", setting.name))?;
        if !(setting.min..=setting.max).contains(&given) {
            return Err(format!(
                "{} must be between {} and {}, not {given}",
                setting.name, setting.min, setting.max
            ));
        }
        setting.value.store(given, Ordering::Relaxed);
        register_i64_configuration(
            ctx,
            setting.name,
            setting.value,
            given,
            setting.min,
            setting.max,
            ConfigurationFlags::DEFAULT,
            None,
        );
    }
    let allow_raw_keys = match argument(args, ALLOW_RAW_KEYS_NAME) {
        Some(value) => parse_bool(ALLOW_RAW_KEYS_NAME, value)?,
        None => true,
    };
    ALLOW_RAW_KEYS.store(allow_raw_keys, Ordering::Relaxed);
    register_bool_configuration(
        ctx,
        ALLOW_RAW_KEYS_NAME,
        &ALLOW_RAW_KEYS,
        allow_raw_keys,
        ConfigurationFlags::DEFAULT,
        None,
    );
    register_keyring_file(ctx, argument(args, KEYRING_FILE_NAME).unwrap_or_default())?;
    // SAFETY: called once, from RedisModule_OnLoad, after registering; every
    // server the module loads on (7.0.5+, requirements.rs) has it.
    let loaded = unsafe { api!(RedisModule_LoadConfigs)(ctx.ctx) };
    if loaded == raw::REDISMODULE_ERR as i32 {
        return Err(
            "Redis refused the module's configuration (the line before says which setting and why)"
                .into(),
        );
    }
    Ok(())
}

/// Registers `sessiongate.keyring-file`, protected: `CONFIG SET` may change
/// it only where `enable-protected-configs` allows, since whoever sets it
/// chooses the secrets tokens are signed with. `given` (the loadmodule
/// argument, if any) is its default; Redis sets the config, and so reads the
/// file, in `RedisModule_LoadConfigs`, where a file that cannot be loaded
/// keeps the module from loading.
fn register_keyring_file(ctx: &Context, given: &[u8]) -> Result<(), String> {
    let default = CString::new(given)
        .map_err(|_| format!("{KEYRING_FILE_NAME}: the path holds a NUL byte"))?;
    // A module unloaded and loaded again may find the statics of its last
    // load: start from no keyring and an empty path, which Redis compares
    // the default with before it calls the set callback.
    release();
    // SAFETY: from OnLoad, on the main thread.
    let empty = unsafe { api!(RedisModule_CreateString)(ptr::null_mut(), c"".as_ptr(), 0) };
    KEYRING_FILE.store(empty, Ordering::Relaxed);
    // SAFETY: from OnLoad with its context; Redis copies the name and the
    // default, and calls the callbacks on the main thread.
    let registered = unsafe {
        api!(RedisModule_RegisterStringConfig)(
            ctx.ctx,
            c"keyring-file".as_ptr(),
            default.as_ptr(),
            ConfigurationFlags::PROTECTED.bits(),
            Some(get_keyring_file),
            Some(set_keyring_file),
            None,
            ptr::null_mut(),
        )
    };
    if registered != raw::REDISMODULE_OK as c_int {
        return Err(format!("Redis refused the config {KEYRING_FILE_NAME}"));
    }
    Ok(())
}

/// Frees the string the keyring-file config holds and drops the keyring:
/// at MODULE UNLOAD, and when a load is refused after registration, so that
/// neither outlives the module.
pub fn release() {
    let held = KEYRING_FILE.swap(ptr::null_mut(), Ordering::Relaxed);
    if !held.is_null() {
        // SAFETY: a string this module created; nothing hands it out now.
        unsafe { api!(RedisModule_FreeString)(ptr::null_mut(), held) };
    }
    keyring::install(None);
}

extern "C" fn get_keyring_file(
    _name: *const c_char,
    _privdata: *mut c_void,
) -> *mut raw::RedisModuleString {
    KEYRING_FILE.load(Ordering::Relaxed)
}

/// Loads the file the new value names (an empty value drops the keyring),
/// and only then takes the value: on `Err` the path and the keyring both
/// stay as they were, and the error (never a secret) goes to the client of
/// `CONFIG SET`, or to the log at load.
extern "C" fn set_keyring_file(
    _name: *const c_char,
    value: *mut raw::RedisModuleString,
    _privdata: *mut c_void,
    err: *mut *mut raw::RedisModuleString,
) -> c_int {
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: Redis passes a live string for the call.
        let path = unsafe { string_bytes(value) };
        keyring::load(None, path)?;
        // SAFETY: main thread; the copy is ours, and the string it replaces
        // was ours and is no longer handed out.
        unsafe {
            let copy =
                api!(RedisModule_CreateString)(ptr::null_mut(), path.as_ptr().cast(), path.len());
            let replaced = KEYRING_FILE.swap(copy, Ordering::Relaxed);
            if !replaced.is_null() {
                api!(RedisModule_FreeString)(ptr::null_mut(), replaced);
            }
        }
        Ok::<(), String>(())
    }));
    let why = match outcome {
        Ok(Ok(())) => return raw::REDISMODULE_OK as c_int,
        Ok(Err(why)) => why,
        Err(_) => "sessiongate internal error (details in the Redis log)".to_string(),
    };
    if !err.is_null() {
        // SAFETY: Redis takes the error string and frees it.
        unsafe {
            *err = api!(RedisModule_CreateString)(ptr::null_mut(), why.as_ptr().cast(), why.len())
        };
    }
    raw::REDISMODULE_ERR as c_int
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bools_are_yes_or_no_in_any_case() {
        assert_eq!(parse_bool("b", b"yes"), Ok(true));
        assert_eq!(parse_bool("b", b"NO"), Ok(false));
        assert_eq!(parse_bool("b", b"Yes"), Ok(true));
        for bad in [&b"1"[..], b"true", b"", b"yes "] {
            assert_eq!(parse_bool("b", bad), Err("b must be yes or no".into()));
        }
    }
}
