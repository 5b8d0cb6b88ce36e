//! What `COMMAND DOCS` and `redis-cli`'s hints show for each command, and
//! the ACL categories an operator grants them by (docs/commands.md,
//! docs/configuration.md#acl-categories).
//!
//! Redis 7.0 takes command documentation from modules
//! (`RedisModule_SetCommandInfo`); ACL categories for module commands come
//! with 7.2 (`RedisModule_SetCommandACLCategories`) and a module's own
//! category with 7.4 (`RedisModule_AddACLCategory`). Both are looked up at
//! load and used only where the server has them, so 7.0 keeps loading.

use crate::api::api;
use redis_module::{raw, Context};
use std::ffi::{CStr, CString};
use std::os::raw::c_int;
use std::ptr;

/// The ACL category every command joins where the server allows it, so
/// that `ACL SETUSER app on >pw ~* +@sessiongate` grants exactly them.
const CATEGORY: &CStr = c"sessiongate";
/// The module versions that first had each command (docs/commands.md).
const SINCE_0_1_0: &CStr = c"0.1.0";
const SINCE_0_2_0: &CStr = c"0.2.0";

/// One command's documentation.
pub struct Doc {
    pub summary: &'static CStr,
    pub complexity: &'static CStr,
    /// The module version that first had the command.
    pub since: &'static CStr,
    pub args: &'static [DocArg],
}

/// One argument, as `COMMAND DOCS` lists it.
pub struct DocArg {
    pub name: &'static CStr,
    pub kind: ArgKind,
    /// May be given more than once (PMGET's names).
    pub multiple: bool,
    /// May be left out (START's options).
    pub optional: bool,
    /// For a group of arguments that repeats together (PMSET's pairs), or
    /// the choices of a `OneOf`.
    pub group: &'static [DocArg],
    /// The word a `PureToken` argument is.
    pub token: Option<&'static CStr>,
}

#[derive(Clone, Copy)]
pub enum ArgKind {
    String,
    Integer,
    /// The token: the command's declared key (key spec 0).
    Key,
    /// A group of arguments, `group`.
    Block,
    /// Exactly one of `group` (KEYRING's subcommand).
    OneOf,
    /// A fixed word, `token`.
    PureToken,
}

const fn arg(name: &'static CStr, kind: ArgKind) -> DocArg {
    DocArg {
        name,
        kind,
        multiple: false,
        optional: false,
        group: &[],
        token: None,
    }
}

const SIGN_KEY: DocArg = arg(c"sign_key", ArgKind::String);
const TOKEN: DocArg = arg(c"token", ArgKind::Key);
const TTL_ARG: DocArg = arg(c"ttl", ArgKind::Integer);
const PAYLOAD_NAME: DocArg = arg(c"payload_name", ArgKind::String);
const PAYLOAD_DATA: DocArg = arg(c"payload_data", ArgKind::String);
const PAYLOAD_NAMES: DocArg = DocArg {
    multiple: true,
    ..arg(c"payload_name", ArgKind::String)
};
const PAYLOADS: DocArg = DocArg {
    multiple: true,
    group: &[PAYLOAD_NAME, PAYLOAD_DATA],
    ..arg(c"payload", ArgKind::Block)
};
/// `<keyword> <value>`, optional.
const fn option(keyword: &'static CStr, name: &'static CStr, kind: ArgKind) -> DocArg {
    DocArg {
        token: Some(keyword),
        optional: true,
        ..arg(name, kind)
    }
}
const fn word(keyword: &'static CStr, name: &'static CStr) -> DocArg {
    DocArg {
        token: Some(keyword),
        ..arg(name, ArgKind::PureToken)
    }
}
const OWNER: DocArg = arg(c"owner", ArgKind::Key);
const MAXLIFE: DocArg = option(c"MAXLIFE", c"maxlife", ArgKind::Integer);
const LABEL: DocArg = option(c"LABEL", c"label", ArgKind::String);
const LIMIT: DocArg = DocArg {
    token: Some(c"LIMIT"),
    optional: true,
    group: &[
        arg(c"limit", ArgKind::Integer),
        DocArg {
            optional: true,
            group: &[word(c"EVICT", c"evict"), word(c"REJECT", c"reject")],
            ..arg(c"policy", ArgKind::OneOf)
        },
    ],
    ..arg(c"limit-block", ArgKind::Block)
};
const ROTATE_TTL: DocArg = option(c"TTL", c"ttl", ArgKind::Integer);
const OEND_WHICH: DocArg = DocArg {
    optional: true,
    group: &[
        option_required(c"EXCEPT", c"token", ArgKind::String),
        DocArg {
            token: Some(c"ID"),
            multiple: true,
            ..arg(c"id", ArgKind::String)
        },
    ],
    ..arg(c"which", ArgKind::OneOf)
};
const fn option_required(keyword: &'static CStr, name: &'static CStr, kind: ArgKind) -> DocArg {
    DocArg {
        token: Some(keyword),
        ..arg(name, kind)
    }
}
const KEYRING_SUBCOMMAND: DocArg = DocArg {
    group: &[
        DocArg {
            token: Some(c"LIST"),
            ..arg(c"list", ArgKind::PureToken)
        },
        DocArg {
            token: Some(c"RELOAD"),
            ..arg(c"reload", ArgKind::PureToken)
        },
    ],
    ..arg(c"subcommand", ArgKind::OneOf)
};

/// The optional API function `$name`: `None` on a server without it.
macro_rules! server_function {
    ($name:ident) => {{
        // SAFETY: a read, by value, of a pointer Redis set at load.
        unsafe { raw::$name }
    }};
}
/// Sets each command's documentation and, where the server has them, its
/// ACL categories: `read` or `write` by its flags, `fast` where it is
/// flagged so, and `sessiongate`. A server that refuses any of it is logged
/// and otherwise ignored: documentation is no reason to refuse to load.
pub fn describe(ctx: &Context, commands: &[(&CStr, &CStr, &Doc)]) {
    let own_category = add_category(ctx);
    for (name, flags, doc) in commands {
        // SAFETY: called from OnLoad, after the command was created.
        let command = unsafe { api!(RedisModule_GetCommand)(ctx.ctx, name.as_ptr()) };
        if command.is_null() {
            ctx.log_warning(&format!("sessiongate: no command {name:?} to describe"));
            continue;
        }
        if !set_doc(command, doc) {
            ctx.log_warning(&format!("sessiongate: Redis refused the docs of {name:?}"));
        }
        if let Some(set) = server_function!(RedisModule_SetCommandACLCategories) {
            let categories = categories(flags, own_category);
            // SAFETY: a command of this module, from OnLoad; Redis copies
            // what it keeps of the string.
            if unsafe { set(command, categories.as_ptr()) } != raw::REDISMODULE_OK as c_int {
                ctx.log_warning(&format!(
                    "sessiongate: Redis refused ACL categories {categories:?} for {name:?}"
                ));
            }
        }
    }
}

/// Adds the `sessiongate` category where the server can (7.4+).
fn add_category(ctx: &Context) -> bool {
    let Some(add) = server_function!(RedisModule_AddACLCategory) else {
        return false;
    };
    // SAFETY: called from OnLoad with its context.
    let added = unsafe { add(ctx.ctx, CATEGORY.as_ptr()) } == raw::REDISMODULE_OK as c_int;
    if !added {
        ctx.log_warning("sessiongate: Redis refused the ACL category 'sessiongate'");
    }
    added
}

/// The ACL categories for a command with these flags. An `admin` command
/// (KEYRING) is `@admin @dangerous`, as Redis' own admin commands are, and
/// stays out of the module's category: `+@sessiongate`, the README's grant
/// for an application user, must not let it reload the keyring
/// (docs/configuration.md#acl-categories).
fn categories(flags: &CStr, own_category: bool) -> CString {
    let flags = flags.to_bytes();
    let has = |word: &[u8]| flags.split(|b| *b == b' ').any(|w| w == word);
    if has(b"admin") {
        return CString::from(c"admin dangerous");
    }
    let mut categories = String::from(if has(b"readonly") { "read" } else { "write" });
    if has(b"fast") {
        categories.push_str(" fast");
    }
    if own_category {
        categories.push(' ');
        categories.push_str(&CATEGORY.to_string_lossy());
    }
    // Our own words: no NUL inside.
    CString::new(categories).unwrap_or_default()
}

fn set_doc(command: *mut raw::RedisModuleCommand, doc: &Doc) -> bool {
    let version = raw::RedisModuleCommandInfoVersion {
        version: 1,
        sizeof_historyentry: std::mem::size_of::<raw::RedisModuleCommandHistoryEntry>(),
        sizeof_keyspec: std::mem::size_of::<raw::RedisModuleCommandKeySpec>(),
        sizeof_arg: std::mem::size_of::<raw::RedisModuleCommandArg>(),
    };
    let mut groups: Vec<Vec<raw::RedisModuleCommandArg>> = Vec::new();
    let mut args = raw_args(doc.args, &mut groups);
    let mut info = raw::RedisModuleCommandInfo {
        version: &version,
        summary: doc.summary.as_ptr(),
        complexity: doc.complexity.as_ptr(),
        since: doc.since.as_ptr(),
        history: ptr::null_mut(),
        tips: ptr::null(),
        arity: 0,
        // The key spec Redis made from the command's first/last/step stays.
        key_specs: ptr::null_mut(),
        args: args.as_mut_ptr(),
    };
    // SAFETY: every pointer in `info` lives until the call returns, and
    // Redis copies what it keeps; each argument list ends with a zeroed entry.
    unsafe { api!(RedisModule_SetCommandInfo)(command, &mut info) == raw::REDISMODULE_OK as c_int }
}

/// `args` as Redis reads them, ending with a zeroed entry; the lists of
/// block groups are kept alive in `groups`.
fn raw_args(
    args: &[DocArg],
    groups: &mut Vec<Vec<raw::RedisModuleCommandArg>>,
) -> Vec<raw::RedisModuleCommandArg> {
    let mut list: Vec<raw::RedisModuleCommandArg> = args
        .iter()
        .map(|arg| {
            let subargs = if arg.group.is_empty() {
                ptr::null_mut()
            } else {
                let mut group = raw_args(arg.group, groups);
                let pointer = group.as_mut_ptr();
                groups.push(group);
                pointer
            };
            let (type_, key_spec_index) = match arg.kind {
                ArgKind::String => (
                    raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_STRING,
                    -1,
                ),
                ArgKind::Integer => (
                    raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_INTEGER,
                    -1,
                ),
                ArgKind::Key => (raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_KEY, 0),
                ArgKind::Block => (
                    raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_BLOCK,
                    -1,
                ),
                ArgKind::OneOf => (
                    raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_ONEOF,
                    -1,
                ),
                ArgKind::PureToken => (
                    raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_PURE_TOKEN,
                    -1,
                ),
            };
            raw::RedisModuleCommandArg {
                name: arg.name.as_ptr(),
                type_,
                key_spec_index,
                token: arg.token.map_or(ptr::null(), CStr::as_ptr),
                summary: ptr::null(),
                since: ptr::null(),
                flags: (if arg.multiple {
                    raw::REDISMODULE_CMD_ARG_MULTIPLE as c_int
                } else {
                    raw::REDISMODULE_CMD_ARG_NONE as c_int
                }) | (if arg.optional {
                    raw::REDISMODULE_CMD_ARG_OPTIONAL as c_int
                } else {
                    raw::REDISMODULE_CMD_ARG_NONE as c_int
                }),
                deprecated_since: ptr::null(),
                subargs,
                display_text: ptr::null(),
            }
        })
        .collect();
    // SAFETY: an all-zero RedisModuleCommandArg (null pointers, zero
    // numbers) is the terminator Redis looks for.
    list.push(unsafe { std::mem::zeroed() });
    list
}

/// Each command's documentation, in the order of lib.rs's table.
pub mod docs {
    use super::*;

    const O1: &CStr = c"O(1)";

    pub const START: Doc = Doc {
        summary: c"Starts a session that lives ttl seconds and returns its signed token.",
        complexity: O1,
        since: SINCE_0_1_0,
        args: &[SIGN_KEY, TTL_ARG, MAXLIFE, LABEL],
    };
    pub const EXPIRE: Doc = Doc {
        summary: c"Gives a session and its payloads a new ttl in seconds; 0 ends it.",
        complexity: O1,
        since: SINCE_0_1_0,
        args: &[SIGN_KEY, TOKEN, TTL_ARG],
    };
    pub const PSET: Doc = Doc {
        summary: c"Sets one payload of a session.",
        complexity: c"O(1) plus the size of the data",
        since: SINCE_0_1_0,
        args: &[SIGN_KEY, TOKEN, PAYLOAD_NAME, PAYLOAD_DATA],
    };
    pub const PGET: Doc = Doc {
        summary: c"Returns one payload of a session.",
        complexity: c"O(1) plus the size of the data",
        since: SINCE_0_1_0,
        args: &[SIGN_KEY, TOKEN, PAYLOAD_NAME],
    };
    pub const PDEL: Doc = Doc {
        summary: c"Deletes one payload of a session.",
        complexity: O1,
        since: SINCE_0_1_0,
        args: &[SIGN_KEY, TOKEN, PAYLOAD_NAME],
    };
    pub const END: Doc = Doc {
        summary: c"Ends a session and deletes its payloads.",
        complexity: O1,
        since: SINCE_0_1_0,
        args: &[SIGN_KEY, TOKEN],
    };
    pub const TTL: Doc = Doc {
        summary: c"Returns the seconds a session has left.",
        complexity: O1,
        since: SINCE_0_1_0,
        args: &[SIGN_KEY, TOKEN],
    };
    pub const PGETALL: Doc = Doc {
        summary: c"Returns every payload of a session, by name.",
        complexity: c"O(N) where N is the number of payloads",
        since: SINCE_0_1_0,
        args: &[SIGN_KEY, TOKEN],
    };
    pub const PMGET: Doc = Doc {
        summary: c"Returns several payloads of a session, nil for those it lacks.",
        complexity: c"O(N) where N is the number of names",
        since: SINCE_0_1_0,
        args: &[SIGN_KEY, TOKEN, PAYLOAD_NAMES],
    };
    pub const PMSET: Doc = Doc {
        summary: c"Sets several payloads of a session, all or none.",
        complexity: c"O(N) where N is the number of payloads given",
        since: SINCE_0_1_0,
        args: &[SIGN_KEY, TOKEN, PAYLOADS],
    };
    pub const OSTART: Doc = Doc {
        summary: c"Starts a session of an owner, within LIMIT, and returns its token.",
        complexity: c"O(N) where N is the number of the owner's sessions",
        since: SINCE_0_2_0,
        args: &[SIGN_KEY, OWNER, TTL_ARG, MAXLIFE, LABEL, LIMIT],
    };
    pub const OLIST: Doc = Doc {
        summary: c"Lists an owner's live sessions, oldest first.",
        complexity: c"O(N) where N is the number of the owner's sessions",
        since: SINCE_0_2_0,
        args: &[SIGN_KEY, OWNER],
    };
    pub const OEND: Doc = Doc {
        summary: c"Ends an owner's sessions: all, all but one, or those named; returns how many.",
        complexity: c"O(N) where N is the number of the owner's sessions",
        since: SINCE_0_2_0,
        args: &[SIGN_KEY, OWNER, OEND_WHICH],
    };
    pub const ROTATE: Doc = Doc {
        summary: c"Gives a session a new token, its payloads and expiry kept; the old token stops working.",
        complexity: O1,
        since: SINCE_0_2_0,
        args: &[SIGN_KEY, TOKEN, ROTATE_TTL],
    };
    pub const INSPECT: Doc = Doc {
        summary: c"Returns what a session is: version, id, times, owner, label, payload count, and whether its token should be rotated.",
        complexity: O1,
        since: SINCE_0_2_0,
        args: &[SIGN_KEY, TOKEN],
    };
    pub const KEYRING: Doc = Doc {
        summary: c"LIST shows each ring's secrets as state and fingerprint; RELOAD re-reads the keyring file, all or nothing.",
        complexity: c"O(N) where N is the number of secrets in the keyring",
        since: SINCE_0_2_0,
        args: &[KEYRING_SUBCOMMAND],
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_follow_the_flags() {
        assert_eq!(
            categories(c"readonly fast", true).as_bytes(),
            b"read fast sessiongate"
        );
        assert_eq!(
            categories(c"write deny-oom fast", false).as_bytes(),
            b"write fast"
        );
        assert_eq!(
            categories(c"write deny-oom", true).as_bytes(),
            b"write sessiongate"
        );
        assert_eq!(categories(c"admin", true).as_bytes(), b"admin dangerous");
    }
}
