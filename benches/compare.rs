//! `make bench`: each module command side by side with the native command it
//! wraps, in one run on one server, so that the ratios mean something on a
//! shared, noisy machine. `redis-benchmark` drives the repeatable commands;
//! END and DEL, which need a fresh key per call, are driven from here.
//! Server-side cost is `usec_per_call` from `INFO commandstats`.
//!
//! Environment: `OTHER=<path.so>` runs another sessiongate module (the C
//! one, say) in a second server, alternating with ours; `BENCH_REPS` sets the
//! repetitions (median taken), 5 by default; `BENCH_ONLY=PGET` measures only
//! the pairs whose label contains it (and skips memory).

#[path = "../tests/common/mod.rs"]
mod common;

use common::{info_field, Server};
use redis::Connection;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

const SIGN_KEY: &str = "bench-sign-key";
const CLIENTS: &str = "50";
const PIPELINES: [usize; 2] = [1, 16];
const MEMORY_SESSIONS: usize = 100_000;

/// One module command and the native command it wraps, as argument lists
/// for the session the benchmark prepared.
struct Pair {
    label: &'static str,
    module: fn(&Session) -> Vec<String>,
    native: fn(&Session) -> Vec<String>,
}

struct Session {
    token: String,
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
    },
    Pair {
        label: "PGET / HGET",
        module: |s| strings(&["SESSIONGATE.PGET", SIGN_KEY, &s.token, "name"]),
        native: |s| strings(&["HGET", &s.payloads_key, "name"]),
    },
    Pair {
        label: "PSET / HSET",
        module: |s| strings(&["SESSIONGATE.PSET", SIGN_KEY, &s.token, "name", &data()]),
        native: |s| strings(&["HSET", &s.payloads_key, "name", &data()]),
    },
    Pair {
        label: "EXPIRE / PEXPIRE",
        module: |s| strings(&["SESSIONGATE.EXPIRE", SIGN_KEY, &s.token, "3600"]),
        native: |s| strings(&["PEXPIRE", &s.signature_key, "3600000"]),
    },
    Pair {
        // A name the session does not have: both look it up and find none.
        label: "PDEL / HDEL",
        module: |s| strings(&["SESSIONGATE.PDEL", SIGN_KEY, &s.token, "absent"]),
        native: |s| strings(&["HDEL", &s.payloads_key, "absent"]),
    },
];

fn strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// A measurement: requests per second and server-side microseconds per call.
#[derive(Clone, Copy, Default)]
struct Figures {
    rps: f64,
    usec_per_call: f64,
}

struct Target {
    name: &'static str,
    server: Server,
    session: Session,
}

impl Target {
    fn new(name: &'static str, server: Server) -> Self {
        let mut con = server.connection();
        let token = common::start(&mut con, SIGN_KEY, 100_000);
        let _: () = redis::cmd("SESSIONGATE.PSET")
            .arg(SIGN_KEY)
            .arg(&token)
            .arg("name")
            .arg(data())
            .query(&mut con)
            .expect("PSET on the benchmark session");
        let session = Session {
            signature_key: common::signature_key(&token),
            payloads_key: common::payloads_key(&token),
            token,
        };
        Target {
            name,
            server,
            session,
        }
    }

    /// `redis-benchmark` on `args`, then the server's own cost per call.
    fn benchmark(&self, args: &[String], pipeline: usize) -> Figures {
        let mut con = self.server.connection();
        let _: () = redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query(&mut con)
            .unwrap();
        let requests = if pipeline == 1 { 40_000 } else { 200_000 };
        let output = Command::new("redis-benchmark")
            .arg("-s")
            .arg(self.server.socket())
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
        Figures {
            rps,
            usec_per_call: usec_per_call(&mut con, &args[0]),
        }
    }

    /// END or DEL of a fresh key per call, pipelined from one connection.
    fn delete_many(&self, module: bool, pipeline: usize) -> Figures {
        let count = 20_000;
        let mut con = self.server.connection();
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
            usec_per_call: usec_per_call(&mut con, command),
        }
    }
}

fn usec_per_call(con: &mut Connection, command: &str) -> f64 {
    let field = format!("cmdstat_{}", command.to_lowercase());
    info_field(con, "commandstats", &field)
        .and_then(|stats| {
            stats
                .split(',')
                .find_map(|kv| kv.strip_prefix("usec_per_call="))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or_else(|| panic!("no {field} in INFO commandstats"))
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
        })
        .collect()
}

/// Bytes of `used_memory` per session: START + one 100-byte PSET through
/// `module`, or the native equivalent (SET … PX, HSET, PEXPIRE).
fn bytes_per_session(module: Option<&PathBuf>, native: bool) -> f64 {
    let server = match module {
        Some(path) => Server::start_with_module(path, &[]),
        None => Server::start(&[]),
    };
    let mut con = server.connection();
    let used = |con: &mut Connection| -> f64 {
        info_field(con, "memory", "used_memory")
            .unwrap()
            .parse()
            .unwrap()
    };
    let before = used(&mut con);
    let payload = data();
    for batch in 0..MEMORY_SESSIONS / 1000 {
        let mut pipe = redis::pipe();
        if native {
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
        } else {
            for _ in 0..1000 {
                pipe.cmd("SESSIONGATE.START").arg(SIGN_KEY).arg(3600);
            }
            let tokens: Vec<String> = pipe.query(&mut con).unwrap();
            let mut pipe = redis::pipe();
            for token in &tokens {
                pipe.cmd("SESSIONGATE.PSET")
                    .arg(SIGN_KEY)
                    .arg(token)
                    .arg("name")
                    .arg(&payload)
                    .ignore();
            }
            let _: () = pipe.query(&mut con).unwrap();
        }
    }
    (used(&mut con) - before) / MEMORY_SESSIONS as f64
}

fn main() {
    let reps: usize = std::env::var("BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let other = std::env::var_os("OTHER")
        .filter(|path| !path.is_empty())
        .map(PathBuf::from);
    let mut targets = vec![Target::new("ours", Server::start(&[]))];
    if let Some(path) = &other {
        targets.push(Target::new("other", Server::start_with_module(path, &[])));
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

    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let mut csv = String::from("pair,pipeline,side,rps,usec_per_call\n");
    let mut table = Vec::new();
    // Sides: each target's module command, then the native command (on ours).
    let sides = targets.len() + 1;
    for pipeline in PIPELINES {
        for pair in PAIRS.iter().filter(|p| p.label.contains(&only)) {
            let figures = measure(reps, sides, |side| match targets.get(side) {
                Some(target) => target.benchmark(&(pair.module)(&target.session), pipeline),
                None => targets[0].benchmark(&(pair.native)(&targets[0].session), pipeline),
            });
            table.push((pair.label, pipeline, figures));
        }
        if "END / DEL".contains(&only) {
            let figures = measure(reps, sides, |side| match targets.get(side) {
                Some(target) => target.delete_many(true, pipeline),
                None => targets[0].delete_many(false, pipeline),
            });
            table.push(("END / DEL", pipeline, figures));
        }
    }

    let mut out = String::new();
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
    for (label, pipeline, figures) in &table {
        let (ours, native) = (figures[0], figures[sides - 1]);
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
        if other.is_some() {
            let theirs = figures[1];
            let _ = write!(
                out,
                "  {:>9.0} {:>10.2} {:>14.2}",
                theirs.rps,
                theirs.usec_per_call,
                ours.usec_per_call / theirs.usec_per_call
            );
        }
        out.push('\n');
        for (side, f) in figures.iter().enumerate() {
            let name = targets.get(side).map_or("native", |t| t.name);
            let _ = writeln!(
                csv,
                "{label},{pipeline},{name},{:.0},{:.3}",
                f.rps, f.usec_per_call
            );
        }
    }

    if !only.is_empty() {
        print!("{out}");
        return;
    }
    let ours_bytes = bytes_per_session(None, false);
    let native_bytes = bytes_per_session(None, true);
    let _ = writeln!(
        out,
        "\nbytes per session ({MEMORY_SESSIONS} sessions, START + one 100-byte PSET): ours {ours_bytes:.0}, native equivalent {native_bytes:.0}, ratio {:.2}",
        ours_bytes / native_bytes
    );
    let _ = writeln!(csv, "bytes per session,,ours,{ours_bytes:.0},");
    let _ = writeln!(csv, "bytes per session,,native,{native_bytes:.0},");
    if let Some(path) = &other {
        let theirs = bytes_per_session(Some(path), false);
        let _ = writeln!(out, "bytes per session, other module: {theirs:.0}");
        let _ = writeln!(csv, "bytes per session,,other,{theirs:.0},");
    }
    print!("{out}");

    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../bench");
    std::fs::create_dir_all(&dir).expect("create target/bench");
    let path = dir.join("results.csv");
    std::fs::write(&path, csv).expect("write the CSV");
    println!("\nCSV: {}", path.display());
}
