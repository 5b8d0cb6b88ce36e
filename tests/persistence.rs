//! docs/replication.md#persistence: a master restarted from its AOF (before
//! and after a rewrite) or from an RDB holds exactly what it held, ended
//! sessions stay ended, the sign key is written nowhere, and every write
//! counts towards `save`.

mod common;

use common::workload::{assert_sessions_readable, run_mix, snapshot};
use common::*;
use redis::Connection;
use std::path::Path;

const SECRET: &str = "persisted-sign-key-must-stay-secret";
const AOF: [&str; 4] = ["--appendonly", "yes", "--appendfsync", "always"];

fn persistence_info(con: &mut Connection, field: &str) -> i64 {
    info_field(con, "persistence", field)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in INFO persistence"))
}

fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    found.push(path.display().to_string());
                }
            }
        }
    }
    found
}

fn assert_secret_nowhere_in(dir: &Path) {
    let found = files_containing(dir, SECRET.as_bytes());
    assert!(found.is_empty(), "the sign key is on disk in {found:?}");
}

fn wait_for_rewrite(server: &Server, con: &mut Connection) {
    server.wait_for("the AOF rewrite to finish", || {
        persistence_info(con, "aof_rewrite_in_progress") == 0
            && persistence_info(con, "aof_rewrite_scheduled") == 0
    });
}

#[test]
fn an_aof_restart_restores_every_session_exactly() {
    let server = Server::start(&AOF);
    let mut con = server.connection();
    let mixed = run_mix(&mut con, SECRET);
    let expected = snapshot(&mut con);
    assert_eq!(expected.len(), 8);
    let dir = server.kill();

    let aof_files = files_containing(&dir, b"PEXPIREAT");
    assert!(
        !aof_files.is_empty(),
        "the AOF holds the propagated effects"
    );
    assert!(
        !files_containing(&dir, b"MULTI").is_empty(),
        "multi-effect commands are atomic"
    );
    assert_eq!(
        files_containing(&dir, b"SESSIONGATE"),
        Vec::<String>::new(),
        "never verbatim"
    );
    assert_secret_nowhere_in(&dir);

    let restarted = Server::start_in(dir, &AOF);
    let mut con = restarted.connection();
    assert_eq!(snapshot(&mut con), expected);
    assert_sessions_readable(&mut con, SECRET, &mixed);
}

#[test]
fn an_aof_restart_after_bgrewriteaof_restores_every_session_exactly() {
    let server = Server::start(&AOF);
    let mut con = server.connection();
    wait_for_rewrite(&server, &mut con);
    let before = run_mix(&mut con, SECRET);
    let _: String = redis::cmd("BGREWRITEAOF").query(&mut con).unwrap();
    wait_for_rewrite(&server, &mut con);
    // More writes on top of the rewritten base.
    let after = run_mix(&mut con, SECRET);
    let expected = snapshot(&mut con);
    assert_eq!(expected.len(), 16);
    let dir = server.kill();
    assert_secret_nowhere_in(&dir);

    let restarted = Server::start_in(dir, &AOF);
    let mut con = restarted.connection();
    assert_eq!(snapshot(&mut con), expected);
    assert_sessions_readable(&mut con, SECRET, &before);
    assert_sessions_readable(&mut con, SECRET, &after);
}

#[test]
fn an_rdb_restart_restores_every_session_exactly() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let mixed = run_mix(&mut con, SECRET);
    let expected = snapshot(&mut con);
    let _: () = redis::cmd("SAVE").query(&mut con).unwrap();
    let dir = server.kill();
    assert!(dir.join("dump.rdb").exists());
    assert_secret_nowhere_in(&dir);

    let restarted = Server::start_in(dir, &[]);
    let mut con = restarted.connection();
    assert_eq!(snapshot(&mut con), expected);
    assert_sessions_readable(&mut con, SECRET, &mixed);
}

#[test]
fn every_write_counts_towards_save_points_and_failures_do_not() {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let mut dirty = persistence_info(&mut con, "rdb_changes_since_last_save");
    let mut changed = |con: &mut Connection, what: &str, expect_change: bool| {
        let now = persistence_info(con, "rdb_changes_since_last_save");
        assert_eq!(now > dirty, expect_change, "{what}: {dirty} -> {now}");
        dirty = now;
    };
    let token = start(&mut con, SECRET, 100);
    changed(&mut con, "START", true);
    ok_bytes(&mut con, &["SESSIONGATE.PSET", SECRET, &token, "a", "1"]);
    changed(&mut con, "PSET", true);
    ok_bytes(&mut con, &["SESSIONGATE.PGET", SECRET, &token, "a"]);
    changed(&mut con, "PGET", false);
    ok_bytes(&mut con, &["SESSIONGATE.EXPIRE", SECRET, &token, "200"]);
    changed(&mut con, "EXPIRE", true);
    err(&mut con, &["SESSIONGATE.PSET", "wrong", &token, "a", "1"]);
    changed(&mut con, "a failed PSET", false);
    ok_bytes(&mut con, &["SESSIONGATE.PDEL", SECRET, &token, "a"]);
    changed(&mut con, "PDEL", true);
    ok_bytes(&mut con, &["SESSIONGATE.END", SECRET, &token]);
    changed(&mut con, "END", true);
}
