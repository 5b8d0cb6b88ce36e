//! What operators see of the commands: `COMMAND DOCS` (and so redis-cli's
//! hints), and the ACL categories they are granted by where the server has
//! them (docs/commands.md#flags-and-key-positions,
//! docs/configuration.md#acl-categories).

mod common;

use common::*;
use redis::Connection;
use std::collections::HashMap;

/// The one admin command: no key, `@admin @dangerous`, and not in
/// `@sessiongate`, the grant for application users.
const KEYRING: &str = "sessiongate.keyring";

const READ_ONLY: [&str; 4] = [
    "sessiongate.pget",
    "sessiongate.ttl",
    "sessiongate.pgetall",
    "sessiongate.pmget",
];

fn text(value: &Value) -> String {
    redis::from_redis_value_ref::<String>(value).unwrap_or_else(|_| format!("{value:?}"))
}

/// A RESP2 flat array of name/value pairs, or a RESP3 map, by name.
fn pairs(value: &Value) -> HashMap<String, Value> {
    match value {
        Value::Map(entries) => entries.iter().map(|(k, v)| (text(k), v.clone())).collect(),
        Value::Array(flat) => flat
            .chunks(2)
            .map(|pair| (text(&pair[0]), pair[1].clone()))
            .collect(),
        other => panic!("not a map: {other:?}"),
    }
}

fn list(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(items) | Value::Set(items) => items.clone(),
        other => panic!("not a list: {other:?}"),
    }
}

/// Each argument's name, type and flags, groups flattened with their parent.
fn arguments(doc: &HashMap<String, Value>) -> Vec<String> {
    let mut shown = Vec::new();
    for arg in list(&doc["arguments"]) {
        let arg = pairs(&arg);
        let mut line = format!("{}:{}", text(&arg["name"]), text(&arg["type"]));
        if let Some(flags) = arg.get("flags") {
            for flag in list(flags) {
                line.push_str(&format!(":{}", text(&flag)));
            }
        }
        if let Some(inner) = arg.get("arguments") {
            let inner: Vec<String> = list(inner)
                .iter()
                .map(|a| text(&pairs(a)["name"]))
                .collect();
            line.push_str(&format!("({})", inner.join(" ")));
        }
        shown.push(line);
    }
    shown
}

fn docs(con: &mut Connection, command: &str) -> HashMap<String, Value> {
    let reply = call(con, &["COMMAND", "DOCS", command]).expect("COMMAND DOCS");
    let all = pairs(&reply);
    pairs(
        all.get(command)
            .unwrap_or_else(|| panic!("no docs for {command}: {all:?}")),
    )
}

#[test]
fn command_docs_describe_every_command() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    for command in COMMANDS {
        let doc = docs(&mut con, command);
        assert!(!text(&doc["summary"]).is_empty(), "{command}: summary");
        assert!(text(&doc["complexity"]).starts_with("O("), "{command}");
        assert_eq!(text(&doc["since"]), "0.1.0", "{command}");
        assert_eq!(text(&doc["module"]), "sessiongate", "{command}");
        let args = arguments(&doc);
        assert_eq!(args[0], "sign_key:string", "{command}");
        if command != "sessiongate.start" {
            assert_eq!(args[1], "token:key", "{command}");
        }
    }
    let expected: [(&str, &[&str]); 4] = [
        (
            "sessiongate.start",
            &[
                "sign_key:string",
                "ttl:integer",
                "maxlife:integer:optional",
                "label:string:optional",
            ],
        ),
        (
            "sessiongate.pset",
            &[
                "sign_key:string",
                "token:key",
                "payload_name:string",
                "payload_data:string",
            ],
        ),
        (
            "sessiongate.pmget",
            &[
                "sign_key:string",
                "token:key",
                "payload_name:string:multiple",
            ],
        ),
        (
            "sessiongate.pmset",
            &[
                "sign_key:string",
                "token:key",
                "payload:block:multiple(payload_name payload_data)",
            ],
        ),
    ];
    for (command, args) in expected {
        assert_eq!(arguments(&docs(&mut con, command)), args, "{command}");
    }
    // The docs leave the key positions as they were: the token, argument 2.
    assert_eq!(
        call(
            &mut con,
            &["COMMAND", "GETKEYS", "SESSIONGATE.PGET", "k", "t", "n"]
        ),
        Ok(Value::Array(vec![Value::BulkString(b"t".to_vec())]))
    );
}

#[test]
fn keyring_is_documented_keyless_and_admin() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let doc = docs(&mut con, KEYRING);
    assert!(!text(&doc["summary"]).is_empty());
    assert!(text(&doc["complexity"]).starts_with("O("));
    assert_eq!(text(&doc["since"]), "0.2.0");
    assert_eq!(text(&doc["module"]), "sessiongate");
    assert_eq!(arguments(&doc), ["subcommand:oneof(list reload)"]);
    let choices: Vec<String> = list(&doc["arguments"])
        .iter()
        .flat_map(|arg| list(&pairs(arg)["arguments"]))
        .map(|choice| {
            let choice = pairs(&choice);
            format!("{}:{}", text(&choice["type"]), text(&choice["token"]))
        })
        .collect();
    assert_eq!(choices, ["pure-token:LIST", "pure-token:RELOAD"]);

    let info = list(&call(&mut con, &["COMMAND", "INFO", KEYRING]).expect("COMMAND INFO"));
    let fields = list(&info[0]);
    let flags: Vec<String> = list(&fields[2]).iter().map(text).collect();
    assert!(flags.contains(&"admin".to_string()), "{flags:?}");
    for absent in ["write", "readonly", "denyoom", "fast"] {
        assert!(!flags.contains(&absent.to_string()), "{flags:?}");
    }
    assert_eq!(fields[3], Value::Int(0), "no key");
    assert_eq!(
        call(&mut con, &["COMMAND", "GETKEYS", KEYRING, "LIST"]).map_err(|e| e.contains("no key")),
        Err(true)
    );
}

/// (major, minor) of the server, and whether it is Valkey.
fn server_version(con: &mut Connection) -> ((u32, u32), bool) {
    let valkey = info_field(con, "server", "server_name").as_deref() == Some("valkey");
    let field = if valkey {
        "valkey_version"
    } else {
        "redis_version"
    };
    let version = info_field(con, "server", field).expect("a version");
    let mut parts = version
        .split('.')
        .map(|p| p.parse::<u32>().expect("a number"));
    let major = parts.next().expect("major");
    let minor = parts.next().expect("minor");
    ((major, minor), valkey)
}

fn acl_categories(con: &mut Connection, command: &str) -> Vec<String> {
    let info = list(&call(con, &["COMMAND", "INFO", command]).expect("COMMAND INFO"));
    let fields = list(&info[0]);
    list(&fields[6]).iter().map(text).collect()
}

#[test]
fn acl_categories_where_the_server_has_them() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let (version, valkey) = server_version(&mut con);
    // Module commands take categories from Redis 7.2 (Valkey forked from it).
    let has_categories = valkey || version >= (7, 2);
    let own_category = match call(&mut con, &["ACL", "CAT", "sessiongate"]) {
        Ok(commands) => {
            let mut names: Vec<String> = list(&commands).iter().map(text).collect();
            names.sort();
            let mut all: Vec<String> = COMMANDS
                .iter()
                .chain(&LIFECYCLE_COMMANDS)
                .map(|c| c.to_string())
                .collect();
            all.sort();
            // Redis 7.4's `ACL CAT <category>` lists no module command at
            // all (8.x and Valkey do); the categories below and the user
            // at the end show the category works there too.
            let lists_module_commands = valkey || version >= (8, 0);
            if lists_module_commands || !names.is_empty() {
                assert_eq!(names, all, "ACL CAT sessiongate");
            }
            true
        }
        Err(e) => {
            assert!(e.contains("Unknown category"), "{e}");
            false
        }
    };
    if !valkey {
        assert_eq!(own_category, version >= (7, 4), "Redis {version:?}");
    }
    for command in COMMANDS {
        let categories = acl_categories(&mut con, command);
        if !has_categories {
            assert!(categories.is_empty(), "{command}: {categories:?}");
            continue;
        }
        let read_only = READ_ONLY.contains(&command);
        assert_eq!(
            categories.contains(&"@read".to_string()),
            read_only,
            "{command}: {categories:?}"
        );
        assert_eq!(
            categories.contains(&"@write".to_string()),
            !read_only,
            "{command}: {categories:?}"
        );
        assert_eq!(
            categories.contains(&"@fast".to_string()),
            command != "sessiongate.pmset",
            "{command}: {categories:?}"
        );
        assert_eq!(
            categories.contains(&"@sessiongate".to_string()),
            own_category,
            "{command}: {categories:?}"
        );
    }
    let categories = acl_categories(&mut con, KEYRING);
    if has_categories {
        for category in ["@admin", "@dangerous"] {
            assert!(categories.contains(&category.to_string()), "{categories:?}");
        }
        for category in ["@read", "@write", "@fast", "@sessiongate"] {
            assert!(
                !categories.contains(&category.to_string()),
                "{categories:?}"
            );
        }
    } else {
        assert!(categories.is_empty(), "{categories:?}");
    }
    if own_category {
        // The README's line for an application user: the module's commands,
        // and nothing else: not KEYRING, an operator's command.
        ok_bytes(
            &mut con,
            &[
                "ACL",
                "SETUSER",
                "app",
                "on",
                ">app-password",
                "~*",
                "+@sessiongate",
            ],
        );
        let url = format!(
            "unix://{}?user=app&pass=app-password",
            server.socket().display()
        );
        let mut app = redis::Client::open(url)
            .and_then(|c| c.get_connection())
            .expect("log in as app");
        let token = start(&mut app, "key", 60);
        ok_bytes(&mut app, &["SESSIONGATE.PSET", "key", &token, "n", "d"]);
        assert_eq!(
            ok_bytes(&mut app, &["SESSIONGATE.PGET", "key", &token, "n"]),
            b"d"
        );
        let refused = err(&mut app, &["GET", "x"]);
        assert!(refused.starts_with("NOPERM"), "{refused}");
        let refused = err(&mut app, &["SESSIONGATE.KEYRING", "RELOAD"]);
        assert!(refused.starts_with("NOPERM"), "{refused}");
    }
}

/// The session lifecycle's commands (docs Part 6): what each takes, as
/// `COMMAND DOCS` shows it, with its keywords.
const LIFECYCLE: [(&str, &[&str], &[&str]); 5] = [
    (
        "sessiongate.ostart",
        &[
            "sign_key:string",
            "owner:key",
            "ttl:integer",
            "maxlife:integer:optional",
            "label:string:optional",
            "limit-block:block:optional(limit policy)",
        ],
        &["MAXLIFE", "LABEL", "LIMIT", "EVICT", "REJECT"],
    ),
    ("sessiongate.olist", &["sign_key:string", "owner:key"], &[]),
    (
        "sessiongate.oend",
        &[
            "sign_key:string",
            "owner:key",
            "which:oneof:optional(token id)",
        ],
        &["EXCEPT", "ID"],
    ),
    (
        "sessiongate.rotate",
        &["sign_key:string", "token:key", "ttl:integer:optional"],
        &["TTL"],
    ),
    (
        "sessiongate.inspect",
        &["sign_key:string", "token:key"],
        &[],
    ),
];

/// Every `token` (keyword) among a command's arguments, nested ones too.
fn keywords(args: &Value, out: &mut Vec<String>) {
    for arg in list(args) {
        let arg = pairs(&arg);
        if let Some(token) = arg.get("token") {
            out.push(text(token));
        }
        if let Some(inner) = arg.get("arguments") {
            keywords(inner, out);
        }
    }
}

#[test]
fn lifecycle_commands_are_documented_with_their_keywords() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    for (command, args, words) in LIFECYCLE {
        let doc = docs(&mut con, command);
        assert!(!text(&doc["summary"]).is_empty(), "{command}: summary");
        assert!(text(&doc["complexity"]).starts_with("O("), "{command}");
        assert_eq!(text(&doc["since"]), "0.2.0", "{command}");
        assert_eq!(text(&doc["module"]), "sessiongate", "{command}");
        assert_eq!(arguments(&doc), args, "{command}");
        let mut found = Vec::new();
        keywords(&doc["arguments"], &mut found);
        assert_eq!(found, words, "{command}");
    }
    // START's options are documented with it.
    let mut found = Vec::new();
    keywords(
        &docs(&mut con, "sessiongate.start")["arguments"],
        &mut found,
    );
    assert_eq!(found, ["MAXLIFE", "LABEL"]);
}

#[test]
fn lifecycle_commands_declare_their_flags_and_one_key() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    // docs/commands.md#owner-commands: the owner commands touch up to max-sessions-per-owner
    // sessions, so not `fast`; OLIST and INSPECT are read-only; what adds
    // data is `deny-oom`.
    let expected: [(&str, &[&str], &[&str]); 5] = [
        (
            "sessiongate.ostart",
            &["write", "denyoom"],
            &["fast", "readonly"],
        ),
        (
            "sessiongate.olist",
            &["readonly"],
            &["fast", "write", "denyoom"],
        ),
        (
            "sessiongate.oend",
            &["write"],
            &["fast", "readonly", "denyoom"],
        ),
        (
            "sessiongate.rotate",
            &["write", "denyoom", "fast"],
            &["readonly"],
        ),
        (
            "sessiongate.inspect",
            &["readonly", "fast"],
            &["write", "denyoom"],
        ),
    ];
    for (command, present, absent) in expected {
        let info = list(&call(&mut con, &["COMMAND", "INFO", command]).expect("COMMAND INFO"));
        let fields = list(&info[0]);
        let flags: Vec<String> = list(&fields[2]).iter().map(text).collect();
        for flag in present {
            assert!(flags.contains(&flag.to_string()), "{command}: {flags:?}");
        }
        for flag in absent {
            assert!(!flags.contains(&flag.to_string()), "{command}: {flags:?}");
        }
        // First key 2, last key 2, step 1: the owner, or the token.
        assert_eq!(
            fields[3..6],
            [Value::Int(2), Value::Int(2), Value::Int(1)],
            "{command}"
        );
    }
    let getkeys = |con: &mut Connection, args: &[&str]| {
        let mut all = vec!["COMMAND", "GETKEYS"];
        all.extend(args);
        call(con, &all)
    };
    let one = |key: &str| {
        Ok(Value::Array(vec![Value::BulkString(
            key.as_bytes().to_vec(),
        )]))
    };
    for (args, key) in [
        (
            &["SESSIONGATE.OSTART", "k", "a{b}c", "10", "LIMIT", "2"][..],
            "a{b}c",
        ),
        (&["SESSIONGATE.OLIST", "k", "owner"], "owner"),
        (&["SESSIONGATE.OEND", "k", "owner", "EXCEPT", "t"], "owner"),
        (
            &["SESSIONGATE.OEND", "k", "owner", "ID", "i1", "i2"],
            "owner",
        ),
        (&["SESSIONGATE.ROTATE", "k", "tok", "TTL", "5"], "tok"),
        (&["SESSIONGATE.INSPECT", "k", "tok"], "tok"),
    ] {
        assert_eq!(getkeys(&mut con, args), one(key), "{args:?}");
    }
}
