//! docs/keyrings.md: the keyring file named by `sessiongate.keyring-file`,
//! read at load and on `SESSIONGATE.KEYRING RELOAD`, shown by `KEYRING
//! LIST`, refused whole with the line at fault, and no secret anywhere an
//! operator or a client can look. Also the two configs that come with
//! keyrings, `allow-raw-keys` and `token-version`
//! (docs/configuration.md#keyrings-and-tokens).

mod common;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::errors::{EMPTY_SIGN_KEY, FORGED_SIGNATURE};
use common::*;
use redis::Connection;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A secret in every form it could leak in: as the file spells it, its
/// bytes, and their hex.
#[derive(Clone)]
struct Secret {
    base64: String,
    bytes: Vec<u8>,
}

impl Secret {
    /// 32 bytes made from `seed`, so that each test's secrets differ and no
    /// run depends on chance.
    fn new(seed: &str) -> Secret {
        Secret::of(Sha256::digest(seed.as_bytes()).to_vec())
    }

    fn of(bytes: Vec<u8>) -> Secret {
        Secret {
            base64: STANDARD.encode(&bytes),
            bytes,
        }
    }

    /// The first 8 bytes of the SHA-256 of the decoded secret, hex: what
    /// KEYRING LIST must show, computed apart from the module's code.
    fn fingerprint(&self) -> String {
        hex(&Sha256::digest(&self.bytes)[..8])
    }

    /// Every spelling that must never be seen: the file's text (and with
    /// its padding stripped), the bytes, their hex in either case.
    fn forms(&self) -> Vec<Vec<u8>> {
        let hex = hex(&self.bytes);
        vec![
            self.base64.clone().into_bytes(),
            self.base64.trim_end_matches('=').as_bytes().to_vec(),
            self.bytes.clone(),
            hex.clone().into_bytes(),
            hex.to_uppercase().into_bytes(),
        ]
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The first secret, any form, found in `haystack`, by its first
/// characters.
fn secret_in(haystack: &[u8], secrets: &[Secret]) -> Option<String> {
    secrets.iter().find_map(|secret| {
        secret
            .forms()
            .iter()
            .any(|form| haystack.windows(form.len()).any(|window| window == form))
            .then(|| format!("{}…", &secret.base64[..8]))
    })
}

/// Fails if any form of any secret is anywhere in `haystack`.
fn assert_no_secret(haystack: &[u8], secrets: &[Secret], place: &str) {
    if let Some(secret) = secret_in(haystack, secrets) {
        panic!("a secret ({secret}) is in {place}");
    }
}

#[test]
fn the_search_finds_every_form_of_a_secret() {
    let secret = Secret::new("control");
    let others = [Secret::new("control-other")];
    let hex = hex(&secret.bytes);
    let mut padded = b"prefix\0".to_vec();
    for form in [
        secret.base64.as_bytes(),
        secret.base64.trim_end_matches('=').as_bytes(),
        &secret.bytes[..],
        hex.as_bytes(),
        hex.to_uppercase().as_bytes(),
    ] {
        let mut haystack = padded.clone();
        haystack.extend(form);
        haystack.extend(b"suffix");
        assert!(secret_in(&haystack, std::slice::from_ref(&secret)).is_some());
        assert_eq!(secret_in(&haystack, &others), None);
    }
    padded.extend(&secret.bytes[1..]);
    assert_eq!(secret_in(&padded, &[secret]), None);
}

/// A keyring file in a directory of its own, apart from any server's data
/// directory; removed on drop.
struct KeyringFile {
    dir: PathBuf,
    path: PathBuf,
}

impl KeyringFile {
    fn new(text: &str) -> KeyringFile {
        Self::with_mode(text, 0o600)
    }

    fn with_mode(text: &str, mode: u32) -> KeyringFile {
        let dir = fresh_dir();
        let file = KeyringFile {
            path: dir.join("keyring"),
            dir,
        };
        file.write(text);
        std::fs::set_permissions(&file.path, std::fs::Permissions::from_mode(mode)).unwrap();
        file
    }

    /// Replaces the file's text in place (its mode stays).
    fn write(&self, text: &str) {
        std::fs::write(&self.path, text).unwrap();
    }

    fn path(&self) -> &str {
        self.path.to_str().expect("test paths are UTF-8")
    }
}

impl Drop for KeyringFile {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// One ring as KEYRING LIST shows it: name, then (state, fingerprint) per
/// secret.
type Listed = Vec<(String, Vec<(String, String)>)>;

fn text(value: &Value) -> String {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).expect("UTF-8"),
        other => panic!("not a bulk string: {other:?}"),
    }
}

fn items(value: &Value) -> &[Value] {
    match value {
        Value::Array(items) => items,
        other => panic!("not an array: {other:?}"),
    }
}

/// KEYRING LIST, read strictly to its documented shape:
/// `[[name, [[state, fingerprint], …]], …]`.
fn list(con: &mut Connection) -> Listed {
    let reply = call(con, &["SESSIONGATE.KEYRING", "LIST"]).expect("KEYRING LIST");
    items(&reply)
        .iter()
        .map(|ring| {
            let [name, secrets] = items(ring) else {
                panic!("a ring is [name, secrets]: {ring:?}");
            };
            let secrets = items(secrets)
                .iter()
                .map(|secret| {
                    let [state, fingerprint] = items(secret) else {
                        panic!("a secret is [state, fingerprint]: {secret:?}");
                    };
                    (text(state), text(fingerprint))
                })
                .collect();
            (text(name), secrets)
        })
        .collect()
}

fn listed(rings: &[(&str, &[(&str, &Secret)])]) -> Listed {
    rings
        .iter()
        .map(|(name, secrets)| {
            let secrets = secrets
                .iter()
                .map(|(state, secret)| (state.to_string(), secret.fingerprint()))
                .collect();
            (name.to_string(), secrets)
        })
        .collect()
}

fn reload(con: &mut Connection) -> Result<Value, String> {
    call(con, &["SESSIONGATE.KEYRING", "RELOAD"])
}

fn config_get(con: &mut Connection, name: &str) -> String {
    let (_, value): (String, String) = redis::cmd("CONFIG")
        .arg("GET")
        .arg(name)
        .query(con)
        .unwrap();
    value
}

fn config_set(con: &mut Connection, name: &str, value: &str) -> Result<Value, String> {
    call(con, &["CONFIG", "SET", name, value])
}

/// A file of two rings, out of name order, with a users= list and verify
/// secrets; and what LIST shows of it.
struct TwoRings {
    secrets: [Secret; 4],
}

impl TwoRings {
    fn new(seed: &str) -> TwoRings {
        TwoRings {
            secrets: ["s1", "s2", "s3", "s4"].map(|n| Secret::new(&format!("{seed}-{n}"))),
        }
    }

    fn text(&self) -> String {
        let [a, b, c, d] = &self.secrets;
        format!(
            "# two rings\n\
             shop verify {} users=web,api\r\n\
             \n\
             billing primary {}\n\
             shop primary {} users=api,web\n\
             shop\tverify\t{}\tusers=web,api\n",
            a.base64, b.base64, c.base64, d.base64
        )
    }

    fn listed(&self) -> Listed {
        let [a, b, c, d] = &self.secrets;
        listed(&[
            ("billing", &[("primary", b)]),
            ("shop", &[("primary", c), ("verify", a), ("verify", d)]),
        ])
    }
}

#[test]
fn a_good_file_given_at_load_is_listed_with_its_fingerprints() {
    let rings = TwoRings::new("at-load");
    let file = KeyringFile::new(&rings.text());
    let server = Server::start(&["keyring-file", file.path()]);
    let mut con = server.connection();
    assert_eq!(list(&mut con), rings.listed());
    // The same arrays under RESP3.
    assert_eq!(list(&mut server.connection_resp3()), rings.listed());
    assert_eq!(
        config_get(&mut con, "sessiongate.keyring-file"),
        file.path()
    );
    let log = String::from_utf8_lossy(&server.log()).into_owned();
    assert!(log.contains("keyring loaded from"), "{log}");
    assert!(!log.contains("may be read by its group or others"), "{log}");

    // As a redis.conf line, the same.
    let server = Server::start(&["--sessiongate.keyring-file", file.path()]);
    assert_eq!(list(&mut server.connection()), rings.listed());
}

#[test]
fn the_fingerprint_is_the_start_of_the_decoded_secrets_sha256() {
    // docs/keyrings.md's example: `printf 0123456789abcdef | sha256sum`.
    let file = KeyringFile::new("app primary MDEyMzQ1Njc4OWFiY2RlZg==\n");
    let server = Server::start(&["keyring-file", file.path()]);
    assert_eq!(
        list(&mut server.connection()),
        vec![(
            "app".to_string(),
            vec![("primary".to_string(), "9f9f5111f7b27a78".to_string())]
        )]
    );
}

#[test]
fn without_a_keyring_list_is_empty_and_reload_says_none_is_configured() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    assert_eq!(list(&mut con), Listed::new());
    assert_eq!(config_get(&mut con, "sessiongate.keyring-file"), "");
    assert_eq!(
        reload(&mut con),
        Err("ERR no keyring file is configured (sessiongate.keyring-file is empty)".into())
    );
}

#[test]
fn subcommands_are_case_insensitive_and_others_are_refused_unechoed() {
    let file = KeyringFile::new(&format!("app primary {}\n", Secret::new("case").base64));
    let server = Server::start(&["keyring-file", file.path()]);
    let mut con = server.connection();
    for spelled in ["list", "LiSt", "LIST"] {
        assert!(matches!(
            call(&mut con, &["SESSIONGATE.KEYRING", spelled]),
            Ok(Value::Array(rings)) if rings.len() == 1
        ));
    }
    for spelled in ["reload", "Reload"] {
        assert_eq!(
            call(&mut con, &["SESSIONGATE.KEYRING", spelled]),
            Ok(Value::Okay)
        );
    }
    let refused = err(&mut con, &["SESSIONGATE.KEYRING", "frobnicate-me"]);
    assert_eq!(
        refused,
        "ERR unknown subcommand of SESSIONGATE.KEYRING: use LIST or RELOAD"
    );
    for args in [
        &["SESSIONGATE.KEYRING"][..],
        &["SESSIONGATE.KEYRING", "LIST", "extra"],
    ] {
        let refused = err(&mut con, args);
        assert!(
            refused.starts_with("ERR wrong number of arguments"),
            "{refused}"
        );
    }
}

#[test]
fn a_bad_file_at_load_keeps_the_module_from_loading_and_the_log_names_the_line() {
    let good = Secret::new("load-good");
    let bad = Secret::new("load-bad");
    let file = KeyringFile::new(&format!(
        "app primary {}\n# a comment\napp Primary {}\n",
        good.base64, bad.base64
    ));
    // The log goes beside the keyring file, where the test can read all of it.
    let log = file.dir.join("refused.log");
    let failure = Server::fails_to_start(&[
        "keyring-file",
        file.path(),
        "--logfile",
        log.to_str().unwrap(),
    ]);
    let logged = std::fs::read(&log).unwrap();
    let shown = String::from_utf8_lossy(&logged);
    assert!(
        shown.contains("keyring file line 3: <state> must be primary or verify"),
        "{shown}\n{failure}"
    );
    assert!(shown.contains("sessiongate cannot load"), "{shown}");
    assert!(shown.contains("Module not loaded"), "{shown}");
    assert_no_secret(&logged, &[good, bad], "the log of a refused load");

    // A file that is not there, as a redis.conf line.
    let missing = file.dir.join("missing");
    let failure =
        Server::fails_to_start(&["--sessiongate.keyring-file", missing.to_str().unwrap()]);
    assert!(
        failure.contains("keyring file cannot be read: No such file or directory"),
        "{failure}"
    );
}

#[test]
fn reload_with_a_good_file_changes_what_list_shows() {
    let first = Secret::new("reload-first");
    let file = KeyringFile::new(&format!("app primary {}\n", first.base64));
    let server = Server::start(&["keyring-file", file.path()]);
    let mut con = server.connection();
    assert_eq!(list(&mut con), listed(&[("app", &[("primary", &first)])]));

    // The rotation of docs/keyrings.md: a new verify secret, then it
    // becomes the primary and the old one verifies, then the old one goes.
    let second = Secret::new("reload-second");
    file.write(&format!(
        "app primary {}\napp verify {}\n",
        first.base64, second.base64
    ));
    assert_eq!(reload(&mut con), Ok(Value::Okay));
    assert_eq!(
        list(&mut con),
        listed(&[("app", &[("primary", &first), ("verify", &second)])])
    );
    file.write(&format!(
        "app verify {}\napp primary {}\n",
        first.base64, second.base64
    ));
    assert_eq!(reload(&mut con), Ok(Value::Okay));
    assert_eq!(
        list(&mut con),
        listed(&[("app", &[("primary", &second), ("verify", &first)])])
    );
    file.write(&format!(
        "app primary {}\nnew primary {}\n",
        second.base64, first.base64
    ));
    assert_eq!(reload(&mut con), Ok(Value::Okay));
    assert_eq!(
        list(&mut con),
        listed(&[
            ("app", &[("primary", &second)]),
            ("new", &[("primary", &first)])
        ])
    );
    // A file with no secret line at all: a keyring with no rings.
    file.write("# emptied\n");
    assert_eq!(reload(&mut con), Ok(Value::Okay));
    assert_eq!(list(&mut con), Listed::new());
}

/// Every kind of bad file, with the reply RELOAD must give.
fn bad_files(s: &[Secret]) -> Vec<(String, &'static str)> {
    let b = |i: usize| s[i].base64.as_str();
    let nine: String = (0..9)
        .map(|i| {
            let state = if i == 0 { "primary" } else { "verify" };
            format!("crowded {state} {}\n", b(i))
        })
        .collect();
    vec![
        (
            format!("ok primary {}\nbad!ring primary {}\n", b(0), b(1)),
            "ERR keyring file line 2: <ring> must be 1 to 64 bytes of A-Z a-z 0-9 _ . -",
        ),
        (
            format!("# c\nring Primary {}\n", b(0)),
            "ERR keyring file line 2: <state> must be primary or verify",
        ),
        (
            "ring primary\n".to_string(),
            "ERR keyring file line 1: <secret> is missing",
        ),
        (
            format!("ring primary {}\n\nring verify {}\n", b(0), b(1).trim_end_matches('=')),
            "ERR keyring file line 3: <secret> is not standard base64 with padding",
        ),
        (
            format!("ring primary {}\n", STANDARD.encode(&s[2].bytes[..15])),
            "ERR keyring file line 1: <secret> must decode to 16 to 1024 bytes",
        ),
        (
            format!("ring primary {}\nring primary {}\n", b(0), b(1)),
            "ERR keyring file line 1: this line's ring has a second primary, on line 2",
        ),
        (
            format!("ok primary {}\nring verify {}\n", b(0), b(1)),
            "ERR keyring file line 2: this line's ring has no primary",
        ),
        (
            nine,
            "ERR keyring file line 1: this line's ring has more than 8 secrets: the 9th is on line 9",
        ),
        (
            format!("ring primary {} users=a\nring verify {} users=b\n", b(0), b(1)),
            "ERR keyring file line 1: this line's ring has another users= list on line 2",
        ),
        (
            format!("ring primary {}\nother primary {}\n", b(3), b(3)),
            "ERR keyring file line 2: <secret> is the same as on line 1",
        ),
    ]
}

#[test]
fn reload_refuses_each_bad_file_with_its_line_and_keeps_the_old_keyring() {
    let rings = TwoRings::new("bad-reload");
    let file = KeyringFile::new(&rings.text());
    let server = Server::start(&["keyring-file", file.path()]);
    let mut con = server.connection();
    let before = list(&mut con);
    assert_eq!(before, rings.listed());

    let bad: Vec<Secret> = (0..9).map(|i| Secret::new(&format!("bad-{i}"))).collect();
    let mut every_secret = bad.clone();
    every_secret.extend(rings.secrets.iter().cloned());
    every_secret.push(Secret::of(bad[2].bytes[..15].to_vec()));
    for (text, expected) in bad_files(&bad) {
        file.write(&text);
        let refused = reload(&mut con);
        assert_eq!(refused, Err(expected.to_string()), "{text}");
        assert_no_secret(expected.as_bytes(), &every_secret, "an error reply");
        assert_eq!(list(&mut con), before, "after {expected}");
    }
    // Unreadable: gone, or a directory; the OS error, never content.
    std::fs::remove_file(&file.path).unwrap();
    assert_eq!(
        reload(&mut con),
        Err("ERR keyring file cannot be read: No such file or directory (os error 2)".into())
    );
    std::fs::create_dir(&file.path).unwrap();
    assert_eq!(
        reload(&mut con),
        Err("ERR keyring file is not a regular file".into())
    );
    assert_eq!(list(&mut con), before);
    assert_eq!(
        config_get(&mut con, "sessiongate.keyring-file"),
        file.path()
    );
}

#[test]
fn a_file_group_or_others_may_read_loads_with_a_warning_naming_the_path() {
    let secret = Secret::new("world-readable");
    let file = KeyringFile::with_mode(&format!("app primary {}\n", secret.base64), 0o644);
    let server = Server::start(&["keyring-file", file.path()]);
    let mut con = server.connection();
    assert_eq!(list(&mut con), listed(&[("app", &[("primary", &secret)])]));
    let warning = format!(
        "WARNING the keyring file '{}' may be read by its group or others",
        file.path()
    );
    let count = |server: &Server| {
        String::from_utf8_lossy(&server.log())
            .matches(&warning)
            .count()
    };
    assert_eq!(count(&server), 1, "{}", server.log_tail());
    // Again on RELOAD; and not once the mode is tightened.
    assert_eq!(reload(&mut con), Ok(Value::Okay));
    assert_eq!(count(&server), 2);
    std::fs::set_permissions(&file.path, std::fs::Permissions::from_mode(0o400)).unwrap();
    assert_eq!(reload(&mut con), Ok(Value::Okay));
    assert_eq!(count(&server), 2);
    assert_no_secret(&server.log(), &[secret], "the log");
}

#[test]
fn config_set_of_the_keyring_file_needs_enable_protected_configs() {
    let first = Secret::new("protected-first");
    let second = Secret::new("protected-second");
    let file = KeyringFile::new(&format!("app primary {}\n", first.base64));
    let other = KeyringFile::new(&format!("other primary {}\n", second.base64));

    let server = Server::start(&["keyring-file", file.path()]);
    let mut con = server.connection();
    let refused = config_set(&mut con, "sessiongate.keyring-file", other.path());
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("can't set protected config")),
        "{refused:?}"
    );
    assert_eq!(
        config_get(&mut con, "sessiongate.keyring-file"),
        file.path()
    );
    assert_eq!(list(&mut con), listed(&[("app", &[("primary", &first)])]));

    let server = Server::start(&[
        "keyring-file",
        file.path(),
        "--enable-protected-configs",
        "yes",
    ]);
    let mut con = server.connection();
    assert_eq!(
        config_set(&mut con, "sessiongate.keyring-file", other.path()),
        Ok(Value::Okay)
    );
    assert_eq!(
        config_get(&mut con, "sessiongate.keyring-file"),
        other.path()
    );
    assert_eq!(
        list(&mut con),
        listed(&[("other", &[("primary", &second)])])
    );

    // A bad file: refused with its line, the path and the keyring kept.
    let bad = Secret::new("protected-bad");
    let broken = KeyringFile::new(&format!(
        "x primary {}\nx primary {}\n",
        bad.base64, first.base64
    ));
    let refused = config_set(&mut con, "sessiongate.keyring-file", broken.path());
    let message = refused.expect_err("a bad file is refused");
    assert!(
        message.ends_with("keyring file line 1: this line's ring has a second primary, on line 2"),
        "{message}"
    );
    assert_no_secret(
        message.as_bytes(),
        &[first.clone(), bad],
        "CONFIG SET's error",
    );
    let missing = config_set(&mut con, "sessiongate.keyring-file", "/nonexistent/keyring");
    assert!(
        missing
            .as_ref()
            .is_err_and(|e| e
                .ends_with("keyring file cannot be read: No such file or directory (os error 2)")),
        "{missing:?}"
    );
    assert_eq!(
        config_get(&mut con, "sessiongate.keyring-file"),
        other.path()
    );
    assert_eq!(
        list(&mut con),
        listed(&[("other", &[("primary", &second)])])
    );

    // Setting the path it already has is skipped by Redis: nothing is
    // read, even though the file changed. RELOAD is what re-reads it.
    other.write(&format!(
        "other primary {}\nnext primary {}\n",
        second.base64, first.base64
    ));
    assert_eq!(
        config_set(&mut con, "sessiongate.keyring-file", other.path()),
        Ok(Value::Okay)
    );
    assert_eq!(
        list(&mut con),
        listed(&[("other", &[("primary", &second)])])
    );
    assert_eq!(reload(&mut con), Ok(Value::Okay));
    assert_eq!(list(&mut con).len(), 2);

    // Empty: no keyring; RELOAD then has nothing to read.
    assert_eq!(
        config_set(&mut con, "sessiongate.keyring-file", ""),
        Ok(Value::Okay)
    );
    assert_eq!(list(&mut con), Listed::new());
    assert!(reload(&mut con).is_err_and(|e| e.contains("no keyring file is configured")));
    assert_eq!(
        config_set(&mut con, "sessiongate.keyring-file", file.path()),
        Ok(Value::Okay)
    );
    assert_eq!(list(&mut con), listed(&[("app", &[("primary", &first)])]));
}

/// Follows MONITOR from before `during` runs until a marker after it.
fn monitored(server: &Server, during: impl FnOnce(&mut Connection)) -> Vec<u8> {
    let mut monitor = UnixStream::connect(server.socket()).unwrap();
    monitor
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    monitor.write_all(b"MONITOR\r\n").unwrap();
    let mut lines = BufReader::new(monitor);
    let mut first = Vec::new();
    lines.read_until(b'\n', &mut first).unwrap();
    assert_eq!(first, b"+OK\r\n");

    let mut con = server.connection();
    during(&mut con);
    let _: () = redis::cmd("SET")
        .arg("monitor-end")
        .arg("1")
        .query(&mut con)
        .unwrap();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let mut line = Vec::new();
        lines.read_until(b'\n', &mut line).unwrap();
        if line.windows(11).any(|w| w == b"monitor-end") {
            return seen;
        }
        seen.extend(line);
    }
    panic!("MONITOR never showed the end marker");
}

/// Every byte of a reply, nested values included.
fn reply_bytes(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::BulkString(bytes) => out.extend(bytes),
        Value::SimpleString(s) | Value::VerbatimString { text: s, .. } => out.extend(s.as_bytes()),
        Value::Array(items) | Value::Set(items) => items.iter().for_each(|v| reply_bytes(v, out)),
        Value::Map(pairs) => pairs.iter().for_each(|(k, v)| {
            reply_bytes(k, out);
            reply_bytes(v, out);
        }),
        other => out.extend(format!("{other:?}").into_bytes()),
    }
}

fn files_under(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, found);
        } else {
            found.push(path);
        }
    }
}

#[test]
fn no_secret_reaches_config_info_slowlog_monitor_the_log_or_the_data_files() {
    let rings = TwoRings::new("leak");
    let file = KeyringFile::new(&rings.text());
    let other = Secret::new("leak-other");
    let bad = Secret::new("leak-bad");
    let mut secrets = rings.secrets.to_vec();
    secrets.extend([other.clone(), bad.clone()]);
    let server = Server::start(&[
        "keyring-file",
        file.path(),
        "--enable-protected-configs",
        "yes",
        "--slowlog-log-slower-than",
        "0",
        "--slowlog-max-len",
        "1000",
        "--appendonly",
        "yes",
    ]);
    let mut con = server.connection();
    // A session with a raw key, so that the RDB and the AOF hold something.
    let token = start(&mut con, "a-raw-key-not-a-ring-secret", 600);
    ok_bytes(
        &mut con,
        &[
            "SESSIONGATE.PSET",
            "a-raw-key-not-a-ring-secret",
            &token,
            "n",
            "d",
        ],
    );

    let mut errors = Vec::new();
    let seen = monitored(&server, |con| {
        ok_bytes(con, &["ECHO", "monitor-start"]);
        assert_eq!(list(con), rings.listed());
        // Sessions signed by a ring, of both versions, through the commands.
        for version in [1, 2] {
            let token = start_v(con, "@billing", version);
            ok_bytes(con, &["SESSIONGATE.PGET", "@billing", &token, "who"]);
            ok_bytes(con, &["SESSIONGATE.EXPIRE", "@billing", &token, "900"]);
            errors.push(err(con, &["SESSIONGATE.PGET", "@billing", &token, "nope"]));
        }
        assert_eq!(reload(con), Ok(Value::Okay));
        file.write(&format!("{}app primary {}\n", rings.text(), other.base64));
        assert_eq!(reload(con), Ok(Value::Okay));
        file.write(&format!(
            "app primary {}\napp primary {}\n",
            bad.base64, other.base64
        ));
        errors.push(reload(con).expect_err("two primaries"));
        // Another spelling of the path: Redis skips a set to the same value.
        let respelled = file.dir.join(".").join("keyring");
        let respelled = respelled.to_str().unwrap();
        errors.push(config_set(con, "sessiongate.keyring-file", respelled).expect_err("still bad"));
        file.write(&rings.text());
        assert_eq!(reload(con), Ok(Value::Okay));
        assert_eq!(list(con), rings.listed());
        errors.push(err(con, &["SESSIONGATE.KEYRING", "nope"]));
    });
    // Redis shows no `admin` command (KEYRING, CONFIG) to MONITOR at all.
    let seen_text = String::from_utf8_lossy(&seen);
    assert!(!seen_text.contains("sessiongate.keyring"), "{seen_text}");
    assert!(seen_text.contains("monitor-start"), "{seen_text}");
    assert_no_secret(&seen, &secrets, "MONITOR");
    for error in &errors {
        assert_no_secret(error.as_bytes(), &secrets, "an error reply");
    }

    let mut shown = Vec::new();
    for args in [
        &["CONFIG", "GET", "*"][..],
        &["INFO", "everything"],
        &["SLOWLOG", "GET", "1000"],
        &["SESSIONGATE.KEYRING", "LIST"],
    ] {
        let mut bytes = Vec::new();
        reply_bytes(&call(&mut con, args).expect("a reply"), &mut bytes);
        assert_no_secret(&bytes, &secrets, &args.join(" "));
        shown.push(String::from_utf8_lossy(&bytes).into_owned());
    }
    assert!(shown[0].contains(file.path()), "CONFIG GET shows the path");
    // SLOWLOG has the calls, their argument redacted (entry.rs).
    assert!(
        shown[2].contains("sessiongate.keyring") && shown[2].contains("(redacted)"),
        "{}",
        shown[2]
    );
    // The control: the file itself does hold the secrets.
    assert!(secret_in(&std::fs::read(&file.path).unwrap(), &secrets).is_some());

    // Every file in the data directory: the RDB, the AOF before and after
    // a rewrite, the log.
    ok_bytes(&mut con, &["SAVE"]);
    ok_bytes(&mut con, &["BGREWRITEAOF"]);
    server.wait_for("the AOF rewrite", || {
        info_field(&mut con, "persistence", "aof_rewrite_in_progress").as_deref() == Some("0")
            && info_field(&mut con, "persistence", "aof_rewrite_scheduled").as_deref() == Some("0")
    });
    let mut files = Vec::new();
    files_under(&server.dir, &mut files);
    let names: Vec<String> = files
        .iter()
        .filter_map(|f| Some(f.file_name()?.to_string_lossy().into_owned()))
        .collect();
    assert!(names.iter().any(|n| n == "dump.rdb"), "{names:?}");
    assert!(names.iter().any(|n| n.ends_with(".aof")), "{names:?}");
    assert!(names.iter().any(|n| n == "redis.log"), "{names:?}");
    for path in files {
        // The socket is not a file to read.
        if let Ok(bytes) = std::fs::read(&path) {
            assert_no_secret(&bytes, &secrets, &path.display().to_string());
        }
    }
}

#[test]
fn a_replica_given_the_same_file_lists_the_same_and_reload_is_not_replicated() {
    let rings = TwoRings::new("replica");
    let file = KeyringFile::new(&rings.text());
    let master = Server::start(&["keyring-file", file.path()]);
    let replica = Server::start(&[
        "keyring-file",
        file.path(),
        "--replicaof",
        "127.0.0.1",
        &master.port.to_string(),
    ]);
    let mut on_replica = replica.connection();
    replica.wait_for("the replica to sync", || {
        info_field(&mut on_replica, "replication", "master_link_status").as_deref() == Some("up")
    });
    let mut on_master = master.connection();
    assert_eq!(list(&mut on_master), rings.listed());
    assert_eq!(list(&mut on_replica), list(&mut on_master));

    // Each node reads its own file: a RELOAD on the master changes the
    // master only, even once the replica has every write.
    let added = Secret::new("replica-added");
    file.write(&format!("{}added primary {}\n", rings.text(), added.base64));
    assert_eq!(reload(&mut on_master), Ok(Value::Okay));
    start(&mut on_master, "raw-key", 60);
    wait_for_replica(&mut on_master);
    assert_eq!(list(&mut on_master).len(), 3);
    assert_eq!(list(&mut on_replica), rings.listed());
    // RELOAD runs on a read-only replica as well.
    assert_eq!(reload(&mut on_replica), Ok(Value::Okay));
    assert_eq!(list(&mut on_replica), list(&mut on_master));
}

#[test]
fn allow_raw_keys_and_token_version_are_configs_to_read_and_set() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    assert_eq!(config_get(&mut con, "sessiongate.allow-raw-keys"), "yes");
    assert_eq!(config_get(&mut con, "sessiongate.token-version"), "1");
    assert_eq!(
        config_set(&mut con, "sessiongate.allow-raw-keys", "no"),
        Ok(Value::Okay)
    );
    assert_eq!(
        config_set(&mut con, "sessiongate.token-version", "2"),
        Ok(Value::Okay)
    );
    assert_eq!(config_get(&mut con, "sessiongate.allow-raw-keys"), "no");
    assert_eq!(config_get(&mut con, "sessiongate.token-version"), "2");
    for (name, bad) in [
        ("sessiongate.token-version", "0"),
        ("sessiongate.token-version", "3"),
        ("sessiongate.token-version", "v2"),
        ("sessiongate.allow-raw-keys", "maybe"),
    ] {
        let refused = config_set(&mut con, name, bad);
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.starts_with("ERR CONFIG SET failed")),
            "{name} {bad}: {refused:?}"
        );
    }
    assert_eq!(config_get(&mut con, "sessiongate.token-version"), "2");
    assert_eq!(config_get(&mut con, "sessiongate.allow-raw-keys"), "no");

    // At load: as loadmodule arguments and as redis.conf lines.
    let server = Server::start(&["allow-raw-keys", "no", "token-version", "2"]);
    let mut con = server.connection();
    assert_eq!(config_get(&mut con, "sessiongate.allow-raw-keys"), "no");
    assert_eq!(config_get(&mut con, "sessiongate.token-version"), "2");
    let server = Server::start(&[
        "--sessiongate.allow-raw-keys",
        "no",
        "--sessiongate.token-version",
        "2",
    ]);
    let mut con = server.connection();
    assert_eq!(config_get(&mut con, "sessiongate.allow-raw-keys"), "no");
    assert_eq!(config_get(&mut con, "sessiongate.token-version"), "2");

    for (args, expected) in [
        (
            &["allow-raw-keys", "maybe"][..],
            "sessiongate cannot load: allow-raw-keys must be yes or no",
        ),
        (
            &["token-version", "3"][..],
            "sessiongate cannot load: token-version must be between 1 and 2, not 3",
        ),
    ] {
        let failure = Server::fails_to_start(args);
        assert!(failure.contains(expected), "{args:?}: {failure}");
    }
}

// Keyrefs: `@<ring>` as a command's first argument (docs/keyrings.md#keyrefs).

const RAW_KEYS_DISABLED: &str = "raw sign keys are disabled: use a keyring (@<ring>)";

fn unknown_ring(name: &str) -> String {
    format!("the keyring {name} does not exist")
}

fn pget(con: &mut Connection, keyref: &[u8], token: &str, name: &str) -> Result<Value, String> {
    call(
        con,
        &[
            &b"SESSIONGATE.PGET"[..],
            keyref,
            token.as_bytes(),
            name.as_bytes(),
        ],
    )
}

/// A START with `keyref` under token version `version`.
fn start_v(con: &mut Connection, keyref: &str, version: u8) -> String {
    assert_eq!(
        config_set(con, "sessiongate.token-version", &version.to_string()),
        Ok(Value::Okay)
    );
    let token = String::from_utf8(ok_bytes(con, &["SESSIONGATE.START", keyref, "600"])).unwrap();
    assert!(token.starts_with(&format!("v{version}.")), "{token}");
    ok_bytes(con, &["SESSIONGATE.PSET", keyref, &token, "who", keyref]);
    token
}

/// What the token's signature signs: v1 its id, v2 everything before the
/// last dot.
fn signed_part(token: &str) -> &str {
    if token.starts_with("v1.") {
        &token[3..19]
    } else {
        &token[..token.len() - 65]
    }
}

fn signature(token: &str) -> &str {
    &token[token.len() - 64..]
}

#[test]
fn a_ring_signs_with_its_primary_and_still_verifies_a_rotated_secret() {
    let (old, new) = (Secret::new("rotate-old"), Secret::new("rotate-new"));
    let file = KeyringFile::new(&format!("app primary {}\n", old.base64));
    let server = Server::start(&["keyring-file", file.path()]);
    let mut con = server.connection();
    let before = [start_v(&mut con, "@app", 1), start_v(&mut con, "@app", 2)];
    for token in &before {
        // Signed with the primary's decoded bytes, computed apart from the module.
        assert_eq!(
            signature(token),
            hmac_hex(&old.bytes, signed_part(token.as_str()).as_bytes())
        );
        // The same bytes as a raw key are the same key.
        assert_eq!(
            pget(&mut con, &old.bytes, token, "who"),
            Ok(Value::BulkString(b"@app".to_vec()))
        );
    }

    // Step 1 and 3 of a rotation: the new secret signs, the old verifies.
    file.write(&format!(
        "app verify {}\napp primary {}\n",
        old.base64, new.base64
    ));
    assert_eq!(reload(&mut con), Ok(Value::Okay));
    for token in &before {
        assert_eq!(
            pget(&mut con, b"@app", token, "who"),
            Ok(Value::BulkString(b"@app".to_vec()))
        );
        ok_bytes(&mut con, &["SESSIONGATE.EXPIRE", "@app", token, "500"]);
    }
    let after = [start_v(&mut con, "@app", 1), start_v(&mut con, "@app", 2)];
    for token in &after {
        assert_eq!(
            signature(token),
            hmac_hex(&new.bytes, signed_part(token.as_str()).as_bytes())
        );
    }

    // Step 4: the old secret dropped, its tokens are refused, the new ones not.
    file.write(&format!("app primary {}\n", new.base64));
    assert_eq!(reload(&mut con), Ok(Value::Okay));
    for token in &before {
        assert_eq!(
            pget(&mut con, b"@app", token, "who"),
            Err(FORGED_SIGNATURE.to_string())
        );
    }
    for token in &after {
        ok_bytes(&mut con, &["SESSIONGATE.PGET", "@app", token, "who"]);
        ok_bytes(&mut con, &["SESSIONGATE.END", "@app", token]);
    }
    // A file the RELOAD refuses leaves the ring that signs as it was.
    file.write("app primary not-base64\n");
    assert!(reload(&mut con).is_err());
    let kept = start_v(&mut con, "@app", 2);
    assert_eq!(
        signature(&kept),
        hmac_hex(&new.bytes, signed_part(&kept).as_bytes())
    );
}

#[test]
fn an_at_sign_always_names_a_ring_and_fails_closed() {
    let secret = Secret::new("closed");
    // No keyring at all: `@app` is no raw key.
    let server = Server::start(&[]);
    let mut con = server.connection();
    assert_eq!(
        err(&mut con, &["SESSIONGATE.START", "@app", "60"]),
        unknown_ring("app")
    );
    let raw = start(&mut con, "app", 60);
    assert_eq!(
        err(&mut con, &["SESSIONGATE.PGET", "@app", &raw, "x"]),
        unknown_ring("app")
    );
    drop(con);
    drop(server);

    let file = KeyringFile::new(&format!("app primary {}\n", secret.base64));
    let server = Server::start(&["keyring-file", file.path()]);
    let mut con = server.connection();
    let token = start_v(&mut con, "@app", 2);
    assert_eq!(
        err(&mut con, &["SESSIONGATE.START", "@App", "60"]),
        unknown_ring("App")
    );
    // Step 2 comes before the token's checks, and after the empty check.
    assert_eq!(
        err(&mut con, &["SESSIONGATE.PGET", "@nope", "", "x"]),
        unknown_ring("nope")
    );
    assert_eq!(
        err(&mut con, &["SESSIONGATE.PGET", "", &token, "x"]),
        EMPTY_SIGN_KEY
    );
    assert_eq!(
        err(&mut con, &["SESSIONGATE.END", "@", &token]),
        unknown_ring("")
    );
    // What a client sent is shown plainly, and never more than 64 bytes of it.
    assert_eq!(
        err(&mut con, &["SESSIONGATE.TTL", "@a b\r\n{}", &token]),
        unknown_ring("a?b????")
    );
    let long = format!("@{}", "r".repeat(100));
    assert_eq!(
        err(&mut con, &["SESSIONGATE.TTL", &long, &token]),
        unknown_ring(&format!("{}...", "r".repeat(64)))
    );
    assert_eq!(
        info_field(&mut con, "sessiongate", "sessiongate_unknown_rings").as_deref(),
        Some("5")
    );
    // Nothing the refused calls named was touched.
    ok_bytes(&mut con, &["SESSIONGATE.PGET", "@app", &token, "who"]);
}

#[test]
fn allow_raw_keys_no_refuses_raw_keys_and_leaves_rings_alone() {
    let secret = Secret::new("raw-off");
    let file = KeyringFile::new(&format!("app primary {}\n", secret.base64));
    let server = Server::start(&["keyring-file", file.path(), "allow-raw-keys", "no"]);
    let mut con = server.connection();
    assert_eq!(
        err(&mut con, &["SESSIONGATE.START", "rawkey", "60"]),
        RAW_KEYS_DISABLED
    );
    assert_eq!(
        err(&mut con, &["SESSIONGATE.START", "", "60"]),
        EMPTY_SIGN_KEY
    );
    let token = start_v(&mut con, "@app", 1);
    // The raw key that is the ring's secret is refused too: step 2, before the token.
    assert_eq!(
        pget(&mut con, &secret.bytes, &token, "who"),
        Err(RAW_KEYS_DISABLED.into())
    );
    assert_eq!(
        err(&mut con, &["SESSIONGATE.PGET", "rawkey", "", "who"]),
        RAW_KEYS_DISABLED
    );
    assert_eq!(
        config_set(&mut con, "sessiongate.allow-raw-keys", "yes"),
        Ok(Value::Okay)
    );
    assert_eq!(
        pget(&mut con, &secret.bytes, &token, "who"),
        Ok(Value::BulkString(b"@app".to_vec()))
    );
}

#[test]
fn two_acl_users_each_bound_to_their_own_ring_cannot_use_the_other() {
    let (web, api) = (Secret::new("acl-web"), Secret::new("acl-api"));
    let file = KeyringFile::new(&format!(
        "web primary {} users=webapp\napi primary {} users=apiapp,ops\n",
        web.base64, api.base64
    ));
    let server = Server::start(&["keyring-file", file.path()]);
    let mut admin = server.connection();
    for user in ["webapp", "apiapp"] {
        ok_bytes(
            &mut admin,
            &["ACL", "SETUSER", user, "on", ">pw", "~*", "+@all"],
        );
    }
    let login = |user: &str| {
        let mut con = server.connection();
        ok_bytes(&mut con, &["AUTH", user, "pw"]);
        con
    };
    let (mut as_web, mut as_api) = (login("webapp"), login("apiapp"));
    let web_token = start_v(&mut as_web, "@web", 2);
    let api_token = start_v(&mut as_api, "@api", 1);
    // Each user is told the other's ring does not exist, as for no ring at all.
    assert_eq!(
        err(&mut as_web, &["SESSIONGATE.START", "@api", "60"]),
        unknown_ring("api")
    );
    assert_eq!(
        err(
            &mut as_web,
            &["SESSIONGATE.PGET", "@api", &api_token, "who"]
        ),
        unknown_ring("api")
    );
    assert_eq!(
        err(&mut as_api, &["SESSIONGATE.END", "@web", &web_token]),
        unknown_ring("web")
    );
    // Its own ring does not open the other's sessions.
    assert_eq!(
        err(
            &mut as_web,
            &["SESSIONGATE.PGET", "@web", &api_token, "who"]
        ),
        FORGED_SIGNATURE
    );
    // The default user is on neither list.
    assert_eq!(
        err(&mut admin, &["SESSIONGATE.START", "@web", "60"]),
        unknown_ring("web")
    );
    ok_bytes(
        &mut as_web,
        &["SESSIONGATE.PGET", "@web", &web_token, "who"],
    );
    ok_bytes(
        &mut as_api,
        &["SESSIONGATE.PGET", "@api", &api_token, "who"],
    );
}
