//! `make bench`: each module command side by side with the native command it
//! wraps, in one run on one server, so that the ratios mean something on a
//! shared, noisy machine. `redis-benchmark` drives the repeatable commands;
//! END and DEL, which need a fresh key per call, are driven from here.
//! Server-side cost is `usec_per_call` from `INFO commandstats`.
//!
//! v2 sessions (docs/tokens.md#v2-tokens) are measured beside v1 in the same rounds: START,
//! PGET and PSET with a v2 token on the same server (START mints v2 while
//! `sessiongate.token-version` is 2, set before each of its runs), bytes per
//! session for v1 and v2 with the same payloads, and START in a 3-master
//! cluster, where v1 draws ids until its HMAC lands in a served slot and v2
//! takes a served slot's tag.
//!
//! Environment: `OTHER=<path.so>` runs another sessiongate module (the C
//! one, say) in a second server, alternating with ours; `BENCH_REPS` sets the
//! repetitions (median taken), 5 by default; `BENCH_ONLY=PGET` measures only
//! the pairs whose label contains it (and skips memory; `BENCH_ONLY=cluster`
//! runs only the cluster START).

#[path = "../tests/common/mod.rs"]
mod common;

use common::cluster::Cluster;
use common::{call, info_field, Server};
use redis::Connection;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const SIGN_KEY: &str = "bench-sign-key";
const CLIENTS: &str = "50";
const PIPELINES: [usize; 2] = [1, 16];
const MEMORY_SESSIONS: usize = 100_000;
/// The payloads of each session in the v1 / v2 memory comparison.
const VERSION_PAYLOADS: [&str; 3] = ["user", "csrf", "cart"];
const VERSION_PAYLOAD_LEN: usize = 32;
const CLUSTER_MASTERS: usize = 3;
const CLUSTER_LABEL: &str = "cluster START";
/// Requests per cluster START run, at either pipeline depth: a cluster
/// START costs several times a standalone one, and the server's time per
/// call is what is compared.
const CLUSTER_REQUESTS: usize = 40_000;

/// One module command and the native command it wraps, as argument lists:
/// the module's for a session's token, the native one for the v1 session
/// the benchmark prepared.
struct Pair {
    label: &'static str,
    module: fn(&str) -> Vec<String>,
    native: fn(&Session) -> Vec<String>,
    /// Also measured with a v2 token (and, for START, minting v2).
    v2: bool,
}

struct Session {
    token: String,
    token_v2: String,
    signature_key: String,
    payloads_key: String,
}

fn data() -> String {
    "x".repeat(100)
}

const PAIRS: [Pair; 5] = [
    Pair {
        label: "START / SET",
        module: |_| strings(&["SESSIONGATE.START", SIGN_KEY, "3600"]),
        native: |s| {
            let sig = &s.token[20..];
            strings(&[
                "SET",
                "sg-bench:__rand_int__:signature",
                sig,
                "PX",
                "3600000",
            ])
        },
        v2: true,
    },
    Pair {
        label: "PGET / HGET",
        module: |token| strings(&["SESSIONGATE.PGET", SIGN_KEY, token, "name"]),
        native: |s| strings(&["HGET", &s.payloads_key, "name"]),
        v2: true,
    },
    Pair {
        label: "PSET / HSET",
        module: |token| strings(&["SESSIONGATE.PSET", SIGN_KEY, token, "name", &data()]),
        native: |s| strings(&["HSET", &s.payloads_key, "name", &data()]),
        v2: true,
    },
    Pair {
        label: "EXPIRE / PEXPIRE",
        module: |token| strings(&["SESSIONGATE.EXPIRE", SIGN_KEY, token, "3600"]),
        native: |s| strings(&["PEXPIRE", &s.signature_key, "3600000"]),
        v2: false,
    },
    Pair {
        // A name the session does not have: both look it up and find none.
        label: "PDEL / HDEL",
        module: |token| strings(&["SESSIONGATE.PDEL", SIGN_KEY, token, "absent"]),
        native: |s| strings(&["HDEL", &s.payloads_key, "absent"]),
        v2: false,
    },
];

fn strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// A measurement: requests per second, server-side microseconds per call,
/// and (START in a cluster) ids the module drew per call.
#[derive(Clone, Copy, Default)]
struct Figures {
    rps: f64,
    usec_per_call: f64,
    ids_per_call: f64,
}

/// One line of the table: a pair at one pipeline depth, each side's figures.
struct Row {
    label: &'static str,
    pipeline: usize,
    figures: Vec<(Side, Figures)>,
}

impl Row {
    fn get(&self, side: Side) -> Option<Figures> {
        self.figures
            .iter()
            .find_map(|(s, f)| (*s == side).then_some(*f))
    }
}

/// Who runs a measurement: a target's module, with v1 or v2 tokens, or the
/// native command on the first target's server.
#[derive(Clone, Copy, PartialEq)]
enum Side {
    Module { target: usize, version: i64 },
    Native,
}

struct Target {
    name: &'static str,
    server: Server,
    session: Session,
    /// Whether the module has `sessiongate.token-version` (ours; the C
    /// module does not).
    versioned: bool,
}

/// Sets which token a three-argument START mints.
fn set_token_version(con: &mut Connection, version: i64) {
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("sessiongate.token-version")
        .arg(version)
        .query(con)
        .expect("CONFIG SET sessiongate.token-version");
}

/// A new session holding one 100-byte payload `name`, its token.
fn session_with_payload(con: &mut Connection) -> String {
    let token = common::start(con, SIGN_KEY, 100_000);
    let _: () = redis::cmd("SESSIONGATE.PSET")
        .arg(SIGN_KEY)
        .arg(&token)
        .arg("name")
        .arg(data())
        .query(con)
        .expect("PSET on the benchmark session");
    token
}

impl Target {
    fn new(name: &'static str, server: Server, versioned: bool) -> Self {
        let mut con = server.connection();
        let token = session_with_payload(&mut con);
        let token_v2 = if versioned {
            set_token_version(&mut con, 2);
            let token = session_with_payload(&mut con);
            set_token_version(&mut con, 1);
            assert!(token.starts_with("v2."), "a v2 token: {token}");
            token
        } else {
            String::new()
        };
        let session = Session {
            signature_key: common::signature_key(&token),
            payloads_key: common::payloads_key(&token),
            token,
            token_v2,
        };
        Target {
            name,
            server,
            session,
            versioned,
        }
    }

    /// The module command of `pair` with this target's session of
    /// `version`, START minting that version.
    fn module(&self, pair: &Pair, version: i64, pipeline: usize) -> Figures {
        let token = if version == 2 {
            &self.session.token_v2
        } else {
            &self.session.token
        };
        if self.versioned {
            set_token_version(&mut self.server.connection(), version);
        }
        benchmark(
            &self.server,
            &(pair.module)(token),
            pipeline,
            requests(pipeline),
        )
    }

    /// END or DEL of a fresh key per call, pipelined from one connection.
    fn delete_many(&self, module: bool, pipeline: usize) -> Figures {
        let count = 20_000;
        let mut con = self.server.connection();
        if self.versioned {
            set_token_version(&mut con, 1);
        }
        let mut keys = Vec::with_capacity(count);
        for chunk in 0..count / 1000 {
            let mut pipe = redis::pipe();
            for i in 0..1000 {
                if module {
                    pipe.cmd("SESSIONGATE.START").arg(SIGN_KEY).arg(3600);
                } else {
                    let key = format!("sg-bench:{}:signature", chunk * 1000 + i);
                    pipe.cmd("SET")
                        .arg(&key)
                        .arg(&self.session.token[20..])
                        .arg("PX")
                        .arg(3_600_000)
                        .ignore();
                    keys.push(key);
                }
            }
            if module {
                let tokens: Vec<String> = pipe.query(&mut con).unwrap();
                keys.extend(tokens);
            } else {
                let _: () = pipe.query(&mut con).unwrap();
            }
        }
        let _: () = redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query(&mut con)
            .unwrap();
        let started = Instant::now();
        for batch in keys.chunks(pipeline) {
            let mut pipe = redis::pipe();
            for key in batch {
                if module {
                    pipe.cmd("SESSIONGATE.END").arg(SIGN_KEY).arg(key).ignore();
                } else {
                    pipe.cmd("DEL").arg(key).ignore();
                }
            }
            let _: () = pipe.query(&mut con).unwrap();
        }
        let rps = count as f64 / started.elapsed().as_secs_f64();
        let command = if module { "SESSIONGATE.END" } else { "DEL" };
        Figures {
            rps,
            usec_per_call: command_stats(&mut con, command).1,
            ids_per_call: 0.0,
        }
    }
}

/// Requests per `redis-benchmark` run: enough for a steady rate.
fn requests(pipeline: usize) -> usize {
    if pipeline == 1 {
        40_000
    } else {
        200_000
    }
}

/// `redis-benchmark` on `args` against `server`, then the server's own cost
/// per call and the ids the module drew per call.
fn benchmark(server: &Server, args: &[String], pipeline: usize, requests: usize) -> Figures {
    let mut con = server.connection();
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut con)
        .unwrap();
    let drawn_before = ids_drawn(&mut con);
    let output = Command::new("redis-benchmark")
        .arg("-s")
        .arg(server.socket())
        .args([
            "-c",
            CLIENTS,
            "-n",
            &requests.to_string(),
            "-P",
            &pipeline.to_string(),
        ])
        .args(["-r", "100000000", "--csv"])
        .args(args)
        .output()
        .expect("run redis-benchmark (Debian: redis-tools)");
    let csv = String::from_utf8_lossy(&output.stdout);
    // "test","rps",…  then  "<command>","<rps>",…
    let rps = csv
        .lines()
        .nth(1)
        .and_then(|line| line.split(',').nth(1))
        .and_then(|field| field.trim_matches('"').parse().ok())
        .unwrap_or_else(|| panic!("no rps in redis-benchmark's output: {csv}"));
    let (calls, usec_per_call) = command_stats(&mut con, &args[0]);
    let drawn = match (drawn_before, ids_drawn(&mut con)) {
        (Some(before), Some(after)) => (after - before) as f64 / calls.max(1) as f64,
        _ => 0.0,
    };
    Figures {
        rps,
        usec_per_call,
        ids_per_call: drawn,
    }
}

/// `INFO sessiongate`'s count of ids drawn since the server started (none
/// for a module without it).
fn ids_drawn(con: &mut Connection) -> Option<u64> {
    info_field(con, "sessiongate", "sessiongate_ids_drawn").and_then(|v| v.parse().ok())
}

/// Calls and microseconds per call of `command` since the last RESETSTAT.
fn command_stats(con: &mut Connection, command: &str) -> (u64, f64) {
    let field = format!("cmdstat_{}", command.to_lowercase());
    let stats = info_field(con, "commandstats", &field)
        .unwrap_or_else(|| panic!("no {field} in INFO commandstats"));
    let value = |name: &str| {
        stats
            .split(',')
            .find_map(|kv| kv.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {field}: {stats}"))
    };
    let calls = value("calls=").parse().expect("calls is an integer");
    let usec = value("usec_per_call=")
        .parse()
        .expect("usec_per_call is a number");
    (calls, usec)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Medians over `reps` rounds, each round measuring every side once, in
/// turn, so that drift on the machine hits all sides alike.
fn measure(reps: usize, sides: usize, mut run: impl FnMut(usize) -> Figures) -> Vec<Figures> {
    let mut rounds: Vec<Vec<Figures>> = vec![Vec::new(); sides];
    for _ in 0..reps {
        for (side, figures) in rounds.iter_mut().enumerate() {
            figures.push(run(side));
        }
    }
    rounds
        .into_iter()
        .map(|f| Figures {
            rps: median(f.iter().map(|x| x.rps).collect()),
            usec_per_call: median(f.iter().map(|x| x.usec_per_call).collect()),
            ids_per_call: median(f.iter().map(|x| x.ids_per_call).collect()),
        })
        .collect()
}

fn used_memory(con: &mut Connection) -> f64 {
    info_field(con, "memory", "used_memory")
        .unwrap()
        .parse()
        .unwrap()
}

/// Bytes of `used_memory` per session in a fresh server running `module`
/// (ours if `None`): `MEMORY_SESSIONS` STARTs minting `version` (if given),
/// each session then given `payloads` (name, data) with PSET.
fn module_bytes_per_session(
    module: Option<&Path>,
    version: Option<i64>,
    payloads: &[(&str, String)],
) -> f64 {
    let server = match module {
        Some(path) => Server::start_with_module(path, &[]),
        None => Server::start(&[]),
    };
    let mut con = server.connection();
    if let Some(version) = version {
        set_token_version(&mut con, version);
    }
    let before = used_memory(&mut con);
    for _ in 0..MEMORY_SESSIONS / 1000 {
        let mut pipe = redis::pipe();
        for _ in 0..1000 {
            pipe.cmd("SESSIONGATE.START").arg(SIGN_KEY).arg(3600);
        }
        let tokens: Vec<String> = pipe.query(&mut con).unwrap();
        if let (Some(version), Some(token)) = (version, tokens.first()) {
            assert!(token.starts_with(&format!("v{version}.")), "{token}");
        }
        let mut pipe = redis::pipe();
        for token in &tokens {
            for (name, data) in payloads {
                pipe.cmd("SESSIONGATE.PSET")
                    .arg(SIGN_KEY)
                    .arg(token)
                    .arg(name)
                    .arg(data)
                    .ignore();
            }
        }
        let _: () = pipe.query(&mut con).unwrap();
    }
    (used_memory(&mut con) - before) / MEMORY_SESSIONS as f64
}

/// The native equivalent of START + one 100-byte PSET: SET … PX, HSET,
/// PEXPIRE.
fn native_bytes_per_session() -> f64 {
    let server = Server::start(&[]);
    let mut con = server.connection();
    let before = used_memory(&mut con);
    let payload = data();
    for batch in 0..MEMORY_SESSIONS / 1000 {
        let mut pipe = redis::pipe();
        for i in 0..1000 {
            let id = format!("{:016}", batch * 1000 + i);
            let sig = format!("sg-session:{id}:signature");
            let payloads = format!("sg-session:{id}:payloads");
            pipe.cmd("SET")
                .arg(&sig)
                .arg("f".repeat(64))
                .arg("PX")
                .arg(3_600_000)
                .ignore();
            pipe.cmd("HSET")
                .arg(&payloads)
                .arg("name")
                .arg(&payload)
                .ignore();
            pipe.cmd("PEXPIRE").arg(&payloads).arg(3_600_000).ignore();
        }
        let _: () = pipe.query(&mut con).unwrap();
    }
    (used_memory(&mut con) - before) / MEMORY_SESSIONS as f64
}

/// START on one master of a `CLUSTER_MASTERS`-master cluster, v1 then v2
/// in each round: figures per pipeline, v1 then v2.
fn cluster_start(reps: usize) -> Vec<(usize, Vec<Figures>)> {
    let cluster = Cluster::start(CLUSTER_MASTERS, 0);
    let node = &cluster.nodes[0];
    let args = strings(&["SESSIONGATE.START", SIGN_KEY, "3600"]);
    PIPELINES
        .iter()
        .map(|&pipeline| {
            let figures = measure(reps, 2, |side| {
                set_token_version(&mut node.connection(), side as i64 + 1);
                benchmark(node, &args, pipeline, CLUSTER_REQUESTS)
            });
            (pipeline, figures)
        })
        .collect()
}

/// What the lifecycle costs beside START: server µs per call of START (v1
/// and v2), OSTART (a new owner each call) and ROTATE (each of 20,000
/// sessions with one 100-byte payload rotated once), on `node`; `owner_tag`
/// keeps OSTART's owners in a slot `node` serves (in a cluster).
fn lifecycle_costs(node: &Server, owner_tag: &str, pipeline: usize) -> [Figures; 4] {
    let mut con = node.connection();
    set_token_version(&mut con, 1);
    let start = strings(&["SESSIONGATE.START", SIGN_KEY, "3600"]);
    let v1 = benchmark(node, &start, pipeline, CLUSTER_REQUESTS);
    set_token_version(&mut con, 2);
    let v2 = benchmark(node, &start, pipeline, CLUSTER_REQUESTS);
    let owner = format!("{{{owner_tag}}}user:__rand_int__");
    let ostart = strings(&["SESSIONGATE.OSTART", SIGN_KEY, &owner, "3600"]);
    let ostart = benchmark(node, &ostart, pipeline, CLUSTER_REQUESTS);
    let rotate = rotate_many(node, pipeline);
    set_token_version(&mut con, 1);
    [v1, v2, ostart, rotate]
}

/// ROTATE of 20,000 fresh v2 sessions, each once, pipelined from one
/// connection: a rotated token cannot be rotated again, so redis-benchmark,
/// which repeats one command, cannot drive it.
fn rotate_many(node: &Server, pipeline: usize) -> Figures {
    let count = 20_000;
    let mut con = node.connection();
    let mut tokens = Vec::with_capacity(count);
    for _ in 0..count / 1000 {
        let mut pipe = redis::pipe();
        for _ in 0..1000 {
            pipe.cmd("SESSIONGATE.START").arg(SIGN_KEY).arg(3600);
        }
        let minted: Vec<String> = pipe.query(&mut con).unwrap();
        let mut pipe = redis::pipe();
        for token in &minted {
            pipe.cmd("SESSIONGATE.PSET")
                .arg(SIGN_KEY)
                .arg(token)
                .arg("name")
                .arg(data())
                .ignore();
        }
        let _: () = pipe.query(&mut con).unwrap();
        tokens.extend(minted);
    }
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut con)
        .unwrap();
    let started = Instant::now();
    for batch in tokens.chunks(pipeline) {
        let mut pipe = redis::pipe();
        for token in batch {
            pipe.cmd("SESSIONGATE.ROTATE")
                .arg(SIGN_KEY)
                .arg(token)
                .ignore();
        }
        let _: () = pipe.query(&mut con).unwrap();
    }
    Figures {
        rps: count as f64 / started.elapsed().as_secs_f64(),
        usec_per_call: command_stats(&mut con, "SESSIONGATE.ROTATE").1,
        ids_per_call: 0.0,
    }
}

/// A hash tag whose slot `node` serves: OSTART routes by its owner.
fn served_tag(node: &Server) -> String {
    let mut con = node.connection();
    (0..)
        .map(|n| format!("t{n}"))
        .find(|tag| {
            let owner = format!("{{{tag}}}probe");
            call(&mut con, &["SESSIONGATE.OLIST", SIGN_KEY, &owner]).is_ok()
        })
        .expect("a served slot")
}

fn main() {
    let reps: usize = std::env::var("BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let other = std::env::var_os("OTHER")
        .filter(|path| !path.is_empty())
        .map(PathBuf::from);
    let mut targets = vec![Target::new("ours", Server::start(&[]), true)];
    if let Some(path) = &other {
        targets.push(Target::new(
            "other",
            Server::start_with_module(path, &[]),
            false,
        ));
    }
    let version = {
        let mut con = targets[0].server.connection();
        info_field(&mut con, "server", "redis_version").unwrap_or_default()
    };
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name\t: ").map(str::to_string))
        })
        .unwrap_or_default();
    println!("sessiongate bench: Redis {version}, {cpu}, {CLIENTS} clients, unix socket, {reps} rounds (medians)\n");
    let started = Instant::now();

    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let mut csv = String::from("pair,pipeline,side,rps,usec_per_call\n");
    let mut table: Vec<Row> = Vec::new();
    for pipeline in PIPELINES {
        for pair in PAIRS.iter().filter(|p| p.label.contains(&only)) {
            // Ours (v1, then v2 where measured), the other module, native.
            let mut sides = vec![Side::Module {
                target: 0,
                version: 1,
            }];
            if pair.v2 {
                sides.push(Side::Module {
                    target: 0,
                    version: 2,
                });
            }
            sides.extend((1..targets.len()).map(|target| Side::Module { target, version: 1 }));
            sides.push(Side::Native);
            let figures = measure(reps, sides.len(), |i| match sides[i] {
                Side::Module { target, version } => targets[target].module(pair, version, pipeline),
                Side::Native => benchmark(
                    &targets[0].server,
                    &(pair.native)(&targets[0].session),
                    pipeline,
                    requests(pipeline),
                ),
            });
            table.push(Row {
                label: pair.label,
                pipeline,
                figures: sides.into_iter().zip(figures).collect(),
            });
        }
        if "END / DEL".contains(&only) {
            let mut sides: Vec<Side> = (0..targets.len())
                .map(|target| Side::Module { target, version: 1 })
                .collect();
            sides.push(Side::Native);
            let figures = measure(reps, sides.len(), |i| match sides[i] {
                Side::Module { target, .. } => targets[target].delete_many(true, pipeline),
                Side::Native => targets[0].delete_many(false, pipeline),
            });
            table.push(Row {
                label: "END / DEL",
                pipeline,
                figures: sides.into_iter().zip(figures).collect(),
            });
        }
    }
    let ours_v1 = Side::Module {
        target: 0,
        version: 1,
    };
    let ours_v2 = Side::Module {
        target: 0,
        version: 2,
    };

    let mut out = String::new();
    if !table.is_empty() {
        let other_columns = if other.is_some() {
            "  other rps    other µs  ours/other µs"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "{:<18} {:>2}  {:>10} {:>10} {:>9}  {:>8} {:>9} {:>8}{other_columns}",
            "module / native",
            "P",
            "ours rps",
            "native rps",
            "rps ratio",
            "ours µs",
            "native µs",
            "µs ratio"
        );
    }
    for row in &table {
        let (label, pipeline) = (row.label, row.pipeline);
        let ours = row.get(ours_v1).expect("ours, v1");
        let native = row.get(Side::Native).expect("native");
        let _ = write!(
            out,
            "{:<18} {:>2}  {:>10.0} {:>10.0} {:>9.2}  {:>8.2} {:>9.2} {:>8.2}",
            label,
            pipeline,
            ours.rps,
            native.rps,
            ours.rps / native.rps,
            ours.usec_per_call,
            native.usec_per_call,
            ours.usec_per_call / native.usec_per_call
        );
        if let Some(theirs) = row.get(Side::Module {
            target: 1,
            version: 1,
        }) {
            let _ = write!(
                out,
                "  {:>9.0} {:>10.2} {:>14.2}",
                theirs.rps,
                theirs.usec_per_call,
                ours.usec_per_call / theirs.usec_per_call
            );
        }
        out.push('\n');
        for (side, f) in &row.figures {
            let name = match side {
                Side::Module { target, version: 2 } => format!("{}-v2", targets[*target].name),
                Side::Module { target, .. } => targets[*target].name.to_string(),
                Side::Native => "native".into(),
            };
            let _ = writeln!(
                csv,
                "{label},{pipeline},{name},{:.0},{:.3}",
                f.rps, f.usec_per_call
            );
        }
    }

    let versions: Vec<_> = table
        .iter()
        .filter_map(|row| {
            Some((
                row.label,
                row.pipeline,
                row.get(ours_v1)?,
                row.get(ours_v2)?,
            ))
        })
        .collect();
    if !versions.is_empty() {
        let _ = writeln!(
            out,
            "\nv2 tokens beside v1, same server, same rounds (START mints v1 or v2 by sessiongate.token-version)"
        );
        let _ = writeln!(
            out,
            "{:<18} {:>2}  {:>8} {:>8} {:>8}  {:>10} {:>10} {:>9}",
            "command", "P", "v1 µs", "v2 µs", "v2/v1 µs", "v1 rps", "v2 rps", "v2/v1 rps"
        );
        for (label, pipeline, v1, v2) in versions {
            let command = label.split(" / ").next().unwrap_or(label);
            let _ = writeln!(
                out,
                "{:<18} {:>2}  {:>8.2} {:>8.2} {:>8.2}  {:>10.0} {:>10.0} {:>9.2}",
                command,
                pipeline,
                v1.usec_per_call,
                v2.usec_per_call,
                v2.usec_per_call / v1.usec_per_call,
                v1.rps,
                v2.rps,
                v2.rps / v1.rps
            );
        }
    }

    if CLUSTER_LABEL.contains(&only) {
        let rows = cluster_start(reps);
        let _ = writeln!(
            out,
            "\nSTART in a {CLUSTER_MASTERS}-master cluster, on one master, v1 and v2 in the same rounds (ids: drawn per START)"
        );
        let _ = writeln!(
            out,
            "{:<18} {:>2}  {:>8} {:>8} {:>8}  {:>10} {:>10} {:>9}  {:>6} {:>6}",
            "command",
            "P",
            "v1 µs",
            "v2 µs",
            "v2/v1 µs",
            "v1 rps",
            "v2 rps",
            "v2/v1 rps",
            "v1 ids",
            "v2 ids"
        );
        for (pipeline, figures) in rows {
            let (v1, v2) = (figures[0], figures[1]);
            let _ = writeln!(
                out,
                "{:<18} {:>2}  {:>8.2} {:>8.2} {:>8.2}  {:>10.0} {:>10.0} {:>9.2}  {:>6.2} {:>6.2}",
                CLUSTER_LABEL,
                pipeline,
                v1.usec_per_call,
                v2.usec_per_call,
                v2.usec_per_call / v1.usec_per_call,
                v1.rps,
                v2.rps,
                v2.rps / v1.rps,
                v1.ids_per_call,
                v2.ids_per_call
            );
            for (name, f) in [("ours", v1), ("ours-v2", v2)] {
                let _ = writeln!(
                    csv,
                    "{CLUSTER_LABEL},{pipeline},{name},{:.0},{:.3}",
                    f.rps, f.usec_per_call
                );
            }
        }
    }

    if "lifecycle".contains(&only) {
        let cluster = Cluster::start(CLUSTER_MASTERS, 0);
        let places: [(&str, &Server, String); 2] = [
            ("standalone", &targets[0].server, "standalone".to_string()),
            ("cluster", &cluster.nodes[0], served_tag(&cluster.nodes[0])),
        ];
        let _ = writeln!(
            out,
            "\nThe lifecycle beside START: server µs per call, same rounds (OSTART: a new owner per call; ROTATE: a session with one 100-byte payload)"
        );
        let _ = writeln!(
            out,
            "{:<11} {:>2}  {:>8} {:>8} {:>8} {:>8}  {:>12} {:>12}",
            "where",
            "P",
            "START v1",
            "START v2",
            "OSTART",
            "ROTATE",
            "OSTART/START",
            "ROTATE/START"
        );
        for (place, node, tag) in &places {
            for pipeline in PIPELINES {
                let rounds: Vec<[Figures; 4]> = (0..reps)
                    .map(|_| lifecycle_costs(node, tag, pipeline))
                    .collect();
                let at = |i: usize| median(rounds.iter().map(|r| r[i].usec_per_call).collect());
                let (v1, v2, ostart, rotate) = (at(0), at(1), at(2), at(3));
                let _ = writeln!(
                    out,
                    "{place:<11} {pipeline:>2}  {v1:>8.2} {v2:>8.2} {ostart:>8.2} {rotate:>8.2}  {:>12.2} {:>12.2}",
                    ostart / v2,
                    rotate / v2
                );
                for (name, usec) in [
                    ("start-v1", v1),
                    ("start-v2", v2),
                    ("ostart", ostart),
                    ("rotate", rotate),
                ] {
                    let _ = writeln!(csv, "lifecycle {place},{pipeline},{name},,{usec:.3}");
                }
            }
        }
    }

    if !only.is_empty() {
        print!("{out}");
        println!("\n({:.0} s)", started.elapsed().as_secs_f64());
        return;
    }
    let one_payload = [("name", data())];
    let ours_bytes = module_bytes_per_session(None, None, &one_payload);
    let native_bytes = native_bytes_per_session();
    let _ = writeln!(
        out,
        "\nbytes per session ({MEMORY_SESSIONS} sessions, START + one 100-byte PSET): ours {ours_bytes:.0}, native equivalent {native_bytes:.0}, ratio {:.2}",
        ours_bytes / native_bytes
    );
    let _ = writeln!(csv, "bytes per session,,ours,{ours_bytes:.0},");
    let _ = writeln!(csv, "bytes per session,,native,{native_bytes:.0},");
    if let Some(path) = &other {
        let theirs = module_bytes_per_session(Some(path), None, &one_payload);
        let _ = writeln!(out, "bytes per session, other module: {theirs:.0}");
        let _ = writeln!(csv, "bytes per session,,other,{theirs:.0},");
    }
    let payloads: Vec<(&str, String)> = VERSION_PAYLOADS
        .iter()
        .map(|name| (*name, "x".repeat(VERSION_PAYLOAD_LEN)))
        .collect();
    let v1_bytes = module_bytes_per_session(None, Some(1), &payloads);
    let v2_bytes = module_bytes_per_session(None, Some(2), &payloads);
    let _ = writeln!(
        out,
        "bytes per session ({MEMORY_SESSIONS} sessions, START + {} PSETs of {VERSION_PAYLOAD_LEN} bytes): v1 {v1_bytes:.0}, v2 {v2_bytes:.0}, v2/v1 {:.2}",
        payloads.len(),
        v2_bytes / v1_bytes
    );
    let _ = writeln!(csv, "bytes per session 3x32,,ours,{v1_bytes:.0},");
    let _ = writeln!(csv, "bytes per session 3x32,,ours-v2,{v2_bytes:.0},");
    print!("{out}");
    println!("\n({:.0} s)", started.elapsed().as_secs_f64());

    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../bench");
    std::fs::create_dir_all(&dir).expect("create target/bench");
    let path = dir.join("results.csv");
    std::fs::write(&path, csv).expect("write the CSV");
    println!("\nCSV: {}", path.display());
}
