//! A real redis-server with the module loaded, one per test: its own
//! directory under target/tmp, a unix socket for the test's connections and
//! a free loopback port for replication, a deadline on start-up, the log's
//! tail in every failure, and killed on drop.
#![allow(dead_code)] // each test binary uses its own part of the harness

use std::net::TcpListener;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

pub use redis::Value;

pub mod cluster;
pub mod errors;
pub mod slots;
pub mod workload;

/// Every command of the module, as `COMMAND` names them.
pub const COMMANDS: [&str; 10] = [
    "sessiongate.start",
    "sessiongate.expire",
    "sessiongate.pset",
    "sessiongate.pget",
    "sessiongate.pdel",
    "sessiongate.end",
    "sessiongate.ttl",
    "sessiongate.pgetall",
    "sessiongate.pmget",
    "sessiongate.pmset",
];

/// The session lifecycle's commands (docs/commands.md#session-lifecycle).
pub const LIFECYCLE_COMMANDS: [&str; 5] = [
    "sessiongate.ostart",
    "sessiongate.olist",
    "sessiongate.oend",
    "sessiongate.rotate",
    "sessiongate.inspect",
];

const START_DEADLINE: Duration = Duration::from_secs(20);
/// In a server's extra arguments: replaced by a free loopback port.
pub const FREE_PORT: &str = "<free-port>";
const LOG_TAIL_LINES: usize = 30;

pub struct Server {
    process: Child,
    pub dir: PathBuf,
    pub port: u16,
}

impl Server {
    /// A server in a new directory, with `extra` arguments after the defaults.
    pub fn start(extra: &[&str]) -> Self {
        Self::start_in(fresh_dir(), extra)
    }

    /// A server in `dir`, which may hold an earlier server's AOF or RDB.
    pub fn start_in(dir: PathBuf, extra: &[&str]) -> Self {
        Self::start_with_env(dir, extra, &[])
    }

    /// A server in `dir` whose process also gets the `env` variables.
    pub fn start_with_env(dir: PathBuf, extra: &[&str], env: &[(&str, &str)]) -> Self {
        Self::launch(dir, &module_path(), extra, env)
    }

    /// A server with another module than this project's (benchmarks).
    pub fn start_with_module(module: &Path, extra: &[&str]) -> Self {
        Self::launch(fresh_dir(), module, extra, &[])
    }

    fn launch(dir: PathBuf, module: &Path, extra: &[&str], env: &[(&str, &str)]) -> Self {
        // A port found free can be taken before redis binds it: try again.
        let mut last_failure = String::new();
        for _ in 0..5 {
            match Self::try_start(&dir, free_port(), module, extra, env) {
                Ok(server) => return server,
                Err(failure) if failure.contains("Address already in use") => {
                    last_failure = failure
                }
                Err(failure) => panic!("{failure}"),
            }
        }
        panic!("{last_failure}")
    }

    fn try_start(
        dir: &Path,
        port: u16,
        module: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Self, String> {
        let socket = dir.join("redis.sock");
        let _ = std::fs::remove_file(&socket);
        let mut args: Vec<String> = vec![
            "--bind".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.to_string(),
            "--unixsocket".into(),
            socket.display().to_string(),
            "--dir".into(),
            dir.display().to_string(),
            "--logfile".into(),
            "redis.log".into(),
            "--save".into(),
            "".into(),
            "--loadmodule".into(),
            module.display().to_string(),
        ];
        // FREE_PORT in `extra` becomes a port found free for this attempt.
        args.extend(extra.iter().map(|a| match *a {
            FREE_PORT => free_port().to_string(),
            other => other.to_string(),
        }));
        let process = Command::new(redis_server())
            .args(&args)
            .envs(env.iter().copied())
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            // A bad option is reported on stderr, before the log file opens.
            .stderr(
                std::fs::File::create(dir.join("stderr.log"))
                    .map(Stdio::from)
                    .unwrap_or(Stdio::null()),
            )
            .spawn()
            .map_err(|e| format!("cannot run {}: {e} (set REDIS_SERVER)", redis_server()))?;
        let mut server = Server {
            process,
            dir: dir.to_path_buf(),
            port,
        };
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = server.process.try_wait() {
                return Err(server.failure(&format!("redis-server exited at start-up ({status})")));
            }
            if UnixStream::connect(&socket).is_ok() {
                if let Ok(mut con) = server.try_connection() {
                    if redis::cmd("PING").query::<String>(&mut con).is_ok() {
                        return Ok(server);
                    }
                }
            }
            if started.elapsed() > START_DEADLINE {
                return Err(server.failure("redis-server did not answer PING in time"));
            }
            sleep(Duration::from_millis(20));
        }
    }

    /// Starts a server that must fail to start (say, the module refuses to
    /// load), and returns the failure with the tail of its log.
    pub fn fails_to_start(extra: &[&str]) -> String {
        match Self::try_start(&fresh_dir(), free_port(), &module_path(), extra, &[]) {
            Ok(server) => panic!(
                "{}",
                server.failure("the server started, but should not have")
            ),
            Err(failure) => failure,
        }
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("redis.sock")
    }

    fn try_connection(&self) -> redis::RedisResult<redis::Connection> {
        let url = format!("unix://{}", self.socket().display());
        redis::Client::open(url)?.get_connection()
    }

    pub fn connection(&self) -> redis::Connection {
        self.try_connection()
            .unwrap_or_else(|e| panic!("{}", self.failure(&format!("cannot connect: {e}"))))
    }

    /// A RESP3 connection.
    pub fn connection_resp3(&self) -> redis::Connection {
        let url = format!("unix://{}?protocol=3", self.socket().display());
        redis::Client::open(url)
            .and_then(|c| c.get_connection())
            .unwrap_or_else(|e| panic!("{}", self.failure(&format!("cannot connect: {e}"))))
    }

    /// The whole Redis log so far, as bytes.
    pub fn log(&self) -> Vec<u8> {
        std::fs::read(self.dir.join("redis.log")).unwrap_or_default()
    }

    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }

    pub fn failure(&self, what: &str) -> String {
        let stderr = std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default();
        format!(
            "{what}\n--- {} (tail) ---\n{}\n--- stderr ---\n{stderr}",
            self.dir.join("redis.log").display(),
            self.log_tail()
        )
    }

    /// Stops the server (SIGKILL, so nothing is saved on the way out) and
    /// hands back its directory for a restart.
    pub fn kill(mut self) -> PathBuf {
        let _ = self.process.kill();
        let _ = self.process.wait();
        let dir = self.dir.clone();
        std::mem::forget(self);
        dir
    }

    /// Stops the server the clean way, `SHUTDOWN NOSAVE`, and waits up to
    /// `deadline` for the process to exit, so that a wrapper around it
    /// (valgrind, for `make leakcheck`) can write its report; then hands back
    /// its directory, as `kill` does. Killed anyway if it does not exit.
    pub fn shutdown(mut self, deadline: Duration) -> Result<PathBuf, String> {
        if let Ok(mut con) = self.try_connection() {
            // The connection closes as the server exits: no reply to check.
            let _ = redis::cmd("SHUTDOWN")
                .arg("NOSAVE")
                .query::<redis::Value>(&mut con);
        }
        let started = Instant::now();
        while !matches!(self.process.try_wait(), Ok(Some(_))) {
            if started.elapsed() > deadline {
                let failure = self.failure("the server did not exit after SHUTDOWN NOSAVE");
                let _ = self.kill();
                return Err(failure);
            }
            sleep(Duration::from_millis(50));
        }
        let dir = self.dir.clone();
        std::mem::forget(self);
        Ok(dir)
    }

    /// Waits until `predicate` holds, or fails with the log tail.
    pub fn wait_for(&self, what: &str, predicate: impl FnMut() -> bool) {
        self.wait_up_to(START_DEADLINE, what, predicate)
    }

    pub fn wait_up_to(&self, deadline: Duration, what: &str, mut predicate: impl FnMut() -> bool) {
        let started = Instant::now();
        while !predicate() {
            if started.elapsed() > deadline {
                panic!("{}", self.failure(&format!("timed out waiting for {what}")));
            }
            sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
        if std::thread::panicking() {
            eprintln!("{}", self.failure("test failed; server kept in"));
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Sends one command; a server error comes back as `Err` with its exact text
/// (redis-rs splits it into code and detail; this joins them again).
pub fn call<A: AsRef<[u8]>>(con: &mut redis::Connection, args: &[A]) -> Result<Value, String> {
    let (name, words) = args.split_first().expect("a command");
    let mut cmd = redis::cmd(&String::from_utf8_lossy(name.as_ref()));
    for word in words {
        cmd.arg(word.as_ref());
    }
    match cmd.query::<Value>(con) {
        Ok(Value::ServerError(e)) => Err(join_error(e.code(), e.details())),
        Ok(value) => Ok(value),
        Err(e) => match e.code() {
            Some(code) => Err(join_error(code, e.detail())),
            None => panic!("transport error: {e}"),
        },
    }
}

fn join_error(code: &str, detail: Option<&str>) -> String {
    match detail {
        Some(detail) => format!("{code} {detail}"),
        None => code.to_string(),
    }
}

/// A command that must succeed, its reply as bytes (bulk or simple string).
pub fn ok_bytes<A: AsRef<[u8]>>(con: &mut redis::Connection, args: &[A]) -> Vec<u8> {
    match call(con, args) {
        Ok(Value::BulkString(b)) => b,
        Ok(Value::SimpleString(s)) => s.into_bytes(),
        Ok(Value::Okay) => b"OK".to_vec(),
        other => panic!("expected a string reply, got {other:?}"),
    }
}

/// A command that must fail, its exact error text.
pub fn err<A: AsRef<[u8]>>(con: &mut redis::Connection, args: &[A]) -> String {
    match call(con, args) {
        Err(e) => e,
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

/// `SESSIONGATE.START key ttl`, the token as a string.
pub fn start(con: &mut redis::Connection, sign_key: &str, ttl: i64) -> String {
    let token = ok_bytes(con, &["SESSIONGATE.START", sign_key, &ttl.to_string()]);
    String::from_utf8(token).expect("tokens are ASCII")
}

/// HMAC-SHA256 of `id` under `sign_key`, as lowercase hex: a token's
/// signature (docs/tokens.md#signature), computed with no help from the
/// module's code.
pub fn hmac_hex(sign_key: &[u8], id: &[u8]) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(sign_key).expect("HMAC takes any key");
    mac.update(id);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The 16-character id inside a token.
pub fn id_of(token: &str) -> &str {
    &token[3..19]
}

pub fn signature_key(token: &str) -> String {
    format!("sg-session:{}:signature", id_of(token))
}

pub fn payloads_key(token: &str) -> String {
    format!("sg-session:{}:payloads", id_of(token))
}

/// Blocks until the master's writes so far have reached its one replica.
pub fn wait_for_replica(master: &mut redis::Connection) {
    let acked: i64 = redis::cmd("WAIT").arg(1).arg(10_000).query(master).unwrap();
    assert_eq!(acked, 1, "the replica acknowledged the writes");
}

/// One field of `INFO <section>`.
pub fn info_field(con: &mut redis::Connection, section: &str, field: &str) -> Option<String> {
    let info: String = redis::cmd("INFO").arg(section).query(con).unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_string())
}

/// The module built by `cargo build` (which `make test` runs first), or
/// `$SESSIONGATE_MODULE`.
pub fn module_path() -> PathBuf {
    if let Some(path) = std::env::var_os("SESSIONGATE_MODULE") {
        return PathBuf::from(path);
    }
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir");
    let module = target.join("debug").join("libsessiongate.so");
    assert!(
        module.exists(),
        "{} is missing: run `cargo build` first (`make test` does)",
        module.display()
    );
    module
}

fn redis_server() -> String {
    std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into())
}

pub fn fresh_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "redis-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the server's directory");
    dir
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
