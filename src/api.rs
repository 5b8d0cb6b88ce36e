//! The one home of Redis' raw module API in this crate: the `api!` macro
//! that every call into Redis goes through, and the list of those functions
//! that the module checks at load. A unit test below keeps the two in step:
//! every `api!(X)` in src/ must be on the list.

/// The Redis API function `$name`, for use inside `unsafe` (Redis fills these
/// pointers once, at load). The module refuses to load on a server that
/// lacks any function on `REQUIRED` (see `requirements.rs`), so a missing one
/// cannot be met here.
macro_rules! api {
    ($name:ident) => {
        match redis_module::raw::$name {
            Some(function) => function,
            None => unreachable!(concat!(stringify!($name), " is checked at load")),
        }
    };
}
pub(crate) use api;

/// Names the required functions once, for both the load-time check and the
/// test that compares them with the source.
macro_rules! required {
    ($($name:ident),* $(,)?) => {
        /// Every function the module calls through `api!`.
        pub const REQUIRED: &[&str] = &[$(stringify!($name)),*];

        /// The first function on `REQUIRED` that this server lacks, if any.
        pub fn first_missing() -> Option<&'static str> {
            // SAFETY: reads, by value, of pointers that Redis set at load.
            let present = unsafe { [$({ let function = redis_module::raw::$name; function.is_some() }),*] };
            REQUIRED
                .iter()
                .zip(present)
                .find_map(|(name, present)| (!present).then_some(*name))
        }
    };
}

required!(
    RedisModule_CloseKey,
    RedisModule_CreateCommand,
    RedisModule_CreateString,
    RedisModule_FreeString,
    RedisModule_GetAbsExpire,
    RedisModule_GetCommand,
    RedisModule_GetCurrentUserName,
    RedisModule_HashGet,
    RedisModule_HashSet,
    RedisModule_KeyType,
    RedisModule_LoadConfigs,
    RedisModule_Milliseconds,
    RedisModule_NotifyKeyspaceEvent,
    RedisModule_OpenKey,
    RedisModule_RedactClientCommandArgument,
    RedisModule_Replicate,
    RedisModule_RegisterBoolConfig,
    RedisModule_RegisterNumericConfig,
    RedisModule_RegisterStringConfig,
    RedisModule_ReplyWithArray,
    RedisModule_ReplyWithError,
    RedisModule_ReplyWithLongLong,
    RedisModule_ReplyWithMap,
    RedisModule_ReplyWithNull,
    RedisModule_ReplyWithSimpleString,
    RedisModule_ReplyWithString,
    RedisModule_ReplyWithStringBuffer,
    RedisModule_ScanKey,
    RedisModule_SetAbsExpire,
    RedisModule_SetCommandInfo,
    RedisModule_SetModuleOptions,
    RedisModule_SignalModifiedKey,
    RedisModule_StringDMA,
    RedisModule_StringPtrLen,
    RedisModule_StringSet,
    RedisModule_StringToLongLong,
    RedisModule_UnlinkKey,
    RedisModule_ValueLength,
    RedisModule_WrongArity,
);

#[cfg(test)]
mod tests {
    use super::REQUIRED;
    use std::path::Path;

    /// Every `api!(X)` written anywhere under src/, read from the files.
    fn used_in_sources() -> Vec<(String, String)> {
        let mut used = Vec::new();
        let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("a source directory") {
                let path = entry.expect("an entry").path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs") || path.ends_with("src/api.rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).expect("a source file");
                for piece in text.split("api!(").skip(1) {
                    let name: String = piece
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    used.push((name, path.display().to_string()));
                }
            }
        }
        used
    }

    #[test]
    fn every_function_called_through_api_is_checked_at_load() {
        let used = used_in_sources();
        assert!(used.len() > 20, "found only {} uses of api!", used.len());
        for (name, file) in used {
            assert!(
                REQUIRED.contains(&name.as_str()),
                "{file} calls api!({name}), which is not in api.rs's required! list"
            );
        }
    }

    #[test]
    fn the_list_names_no_function_twice() {
        let mut names = REQUIRED.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), REQUIRED.len());
    }
}
