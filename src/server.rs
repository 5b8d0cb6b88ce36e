//! What the module needs of the server it is loaded into, checked once at
//! load: a server that falls short refuses the module with a line in its
//! log that says why, instead of failing later.

use redis_module::{raw, Context};

/// Redis 7.0.5 is the first release that gives modules RM_GetAbsExpire (and
/// 7.0 the first with argument redaction, which keeps the sign key out of
/// SLOWLOG and MONITOR). Valkey reports its own version, 7.2 and up.
const MINIMUM: (i32, i32, i32) = (7, 0, 5);

pub fn check(ctx: &Context) -> Result<(), String> {
    let version = ctx
        .get_redis_version()
        .map_err(|e| format!("cannot read the server's version: {e}"))?;
    let found = (version.major, version.minor, version.patch);
    if found < MINIMUM {
        return Err(format!(
            "sessiongate needs Redis {}.{}.{} or newer (or Valkey); this server is {}.{}.{}",
            MINIMUM.0, MINIMUM.1, MINIMUM.2, found.0, found.1, found.2
        ));
    }
    match missing_api() {
        Some(missing) => Err(format!(
            "sessiongate cannot load: this server lacks {missing}"
        )),
        None => Ok(()),
    }
}

/// The first Redis API function the module uses that this server lacks, if
/// any, so that the `api!` calls never miss. A server of the supported
/// versions has them all; this guards against a build that does not.
fn missing_api() -> Option<&'static str> {
    macro_rules! first_missing {
        ($($name:ident),* $(,)?) => {
            // SAFETY: reads, by value, of pointers that Redis set at load.
            unsafe { [$((stringify!($name), { let function = raw::$name; function.is_none() })),*] }
                .into_iter()
                .find_map(|(name, missing)| missing.then_some(name))
        };
    }
    first_missing!(
        RedisModule_OpenKey,
        RedisModule_CloseKey,
        RedisModule_KeyType,
        RedisModule_ValueLength,
        RedisModule_StringDMA,
        RedisModule_StringSet,
        RedisModule_GetAbsExpire,
        RedisModule_SetAbsExpire,
        RedisModule_UnlinkKey,
        RedisModule_HashGet,
        RedisModule_HashSet,
        RedisModule_Milliseconds,
        RedisModule_SignalModifiedKey,
        RedisModule_Replicate,
        RedisModule_SetModuleOptions,
        RedisModule_RedactClientCommandArgument,
        RedisModule_ScanKey,
        RedisModule_StringPtrLen,
        RedisModule_StringToLongLong,
        RedisModule_CreateCommand,
        RedisModule_NotifyKeyspaceEvent,
    )
}
