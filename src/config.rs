//! The module's settings, as Redis module configurations: settable at load
//! (`loadmodule <path> max-payload-data-len 1000000`) or in redis.conf
//! (`sessiongate.max-payload-data-len 1000000`), and with
//! `CONFIG SET/GET sessiongate.<name>`. Redis checks each value's range.

use crate::api::api;
use redis_module::configuration::ConfigurationFlags;
use redis_module::configuration::{get_i64_default_config_value, register_i64_configuration};
use redis_module::{raw, Context, RedisString};
use std::sync::atomic::{AtomicI64, Ordering};

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

static SETTINGS: [Setting; 4] = [
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
];

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

/// `sessiongate.allow-raw-keys` (docs/configuration.md).
pub fn allow_raw_keys() -> bool {
    true
}

/// `sessiongate.token-version`: which token a three-argument START mints
/// (docs/configuration.md#token-version).
pub fn token_version() -> i64 {
    TOKEN_VERSION.load(Ordering::Relaxed)
}

/// The loadmodule arguments must be `<name> <value>` pairs of known settings,
/// each at most once: a misspelled name would otherwise be ignored silently.
fn check_arguments(args: &[RedisString]) -> Result<(), String> {
    let mut seen: Vec<&[u8]> = Vec::new();
    for pair in args.chunks(2) {
        let name = pair[0].as_slice();
        let shown = String::from_utf8_lossy(name);
        if !SETTINGS.iter().any(|s| s.name.as_bytes() == name) {
            let known: Vec<&str> = SETTINGS.iter().map(|s| s.name).collect();
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
    // SAFETY: called once, from RedisModule_OnLoad, after registering; every
    // server the module loads on (7.0.5+, requirements.rs) has it.
    let loaded = unsafe { api!(RedisModule_LoadConfigs)(ctx.ctx) };
    if loaded == raw::REDISMODULE_ERR as i32 {
        return Err("Redis refused the module's configuration".into());
    }
    Ok(())
}
