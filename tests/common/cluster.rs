//! A real Redis Cluster on loopback: every node a `Server` with the module
//! loaded and `cluster-enabled yes`, joined by `redis-cli --cluster create`,
//! ready once every node reports `cluster_state:ok`.

use super::*;
use redis::cluster::{ClusterClient, ClusterConnection};
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::Connection;
use std::process::Command;

const CLUSTER_DEADLINE: Duration = Duration::from_secs(60);

pub struct Cluster {
    pub nodes: Vec<Server>,
}

impl Cluster {
    /// `masters` masters, each with `replicas` replicas.
    pub fn start(masters: usize, replicas: usize) -> Self {
        Self::start_with_env(masters, replicas, &[])
    }

    /// The same, every node's process started with the `env` variables.
    pub fn start_with_env(masters: usize, replicas: usize, env: &[(&str, &str)]) -> Self {
        Self::start_nodes(masters, replicas, &[], env)
    }

    /// The same, the module loaded on every node with `module_args` (say
    /// `["token-version", "2"]`), as `loadmodule <path> <args>` gives them.
    pub fn start_with_module_args(masters: usize, replicas: usize, module_args: &[&str]) -> Self {
        Self::start_nodes(masters, replicas, module_args, &[])
    }

    fn start_nodes(
        masters: usize,
        replicas: usize,
        module_args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let nodes: Vec<Server> = (0..masters * (1 + replicas))
            .map(|_| start_node_with(module_args, env))
            .collect();
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for node in &nodes {
            create.arg(format!("127.0.0.1:{}", node.port));
        }
        create
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdin(Stdio::null());
        let output = create.output().expect("run redis-cli --cluster create");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let cluster = Cluster { nodes };
        cluster.wait_until_healthy(masters * (1 + replicas));
        cluster
    }

    /// Every live node sees the cluster as ok, knows `known` nodes, and
    /// every replica is in sync with its master.
    pub fn wait_until_healthy(&self, known: usize) {
        for node in &self.nodes {
            let mut con = node.connection();
            node.wait_up_to(CLUSTER_DEADLINE, "the cluster to be ok", || {
                info_line(&mut con, &["CLUSTER", "INFO"], "cluster_state").as_deref() == Some("ok")
                    && info_line(&mut con, &["CLUSTER", "INFO"], "cluster_known_nodes")
                        == Some(known.to_string())
            });
            if role(&mut con) == "slave" {
                node.wait_up_to(CLUSTER_DEADLINE, "the replica to sync", || {
                    info_field(&mut con, "replication", "master_link_status").as_deref()
                        == Some("up")
                });
            }
        }
    }

    /// Every node's address, for a cluster client to start from.
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port))
            .collect()
    }

    pub fn client(&self) -> ClusterConnection {
        ClusterClient::new(self.urls())
            .and_then(|c| c.get_connection())
            .expect("a cluster connection")
    }

    pub fn masters(&self) -> Vec<&Server> {
        self.nodes
            .iter()
            .filter(|n| role(&mut n.connection()) == "master")
            .collect()
    }

    /// The master serving `slot`, from that node's own view.
    pub fn master_of(&self, slot: u16) -> &Server {
        let masters = self.masters();
        let id = {
            let mut con = masters[0].connection();
            owner_of(&mut con, slot)
        };
        masters
            .into_iter()
            .find(|m| node_id(&mut m.connection()) == id)
            .expect("a master serves every slot")
    }
}

/// A server ready to join a cluster.
pub fn start_node() -> Server {
    start_node_with(&[], &[])
}

fn start_node_with(module_args: &[&str], env: &[(&str, &str)]) -> Server {
    // Words right after the module path, before the next `--` option, are
    // the module's arguments.
    let mut extra = module_args.to_vec();
    extra.extend([
        "--cluster-enabled",
        "yes",
        "--cluster-port",
        FREE_PORT,
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-node-timeout",
        "2000",
    ]);
    Server::start_with_env(fresh_dir(), &extra, env)
}

pub fn role(con: &mut redis::Connection) -> String {
    let role: Vec<Value> = redis::cmd("ROLE").query(con).unwrap();
    redis::from_redis_value_ref(&role[0]).unwrap()
}

pub fn node_id(con: &mut redis::Connection) -> String {
    redis::cmd("CLUSTER").arg("MYID").query(con).unwrap()
}

pub fn keyslot(con: &mut redis::Connection, key: &[u8]) -> u16 {
    redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query(con)
        .unwrap()
}

/// The id of the master that serves `slot`, as `CLUSTER SLOTS` on `con` says.
pub fn owner_of(con: &mut redis::Connection, slot: u16) -> String {
    let ranges: Vec<(u16, u16, Vec<Value>)> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query::<Vec<Vec<Value>>>(con)
        .unwrap()
        .into_iter()
        .map(|r| {
            let first = redis::from_redis_value_ref(&r[0]).unwrap();
            let last = redis::from_redis_value_ref(&r[1]).unwrap();
            let master = redis::from_redis_value_ref(&r[2]).unwrap();
            (first, last, master)
        })
        .collect();
    let (_, _, master) = ranges
        .into_iter()
        .find(|(first, last, _)| (*first..=*last).contains(&slot))
        .expect("every slot is assigned");
    redis::from_redis_value_ref(&master[2]).unwrap()
}

/// One `field:value` line of a reply made of such lines (CLUSTER INFO).
fn info_line(con: &mut redis::Connection, command: &[&str], field: &str) -> Option<String> {
    let text: String = redis::cmd(command[0]).arg(&command[1..]).query(con).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_string())
}

/// Sends a command to the master of `slot`, as a client that follows the
/// module's key positions does; errors as their exact text.
pub fn routed(cluster: &mut ClusterConnection, slot: u16, args: &[&str]) -> Result<Value, String> {
    let mut cmd = redis::cmd(args[0]);
    cmd.arg(&args[1..]);
    let route = Route::new(slot, SlotAddr::Master);
    let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route));
    match cluster.route_command(&cmd, routing) {
        Ok(Value::ServerError(e)) => Err(format!("{} {}", e.code(), e.details().unwrap_or(""))),
        Ok(value) => Ok(value),
        Err(e) => Err(match e.code() {
            Some(code) => format!("{code} {}", e.detail().unwrap_or("")),
            None => format!("client error: {e}"),
        }),
    }
}

/// The absolute expiry of `key`, in Unix milliseconds.
pub fn pexpiretime(con: &mut Connection, key: &str) -> i64 {
    redis::cmd("PEXPIRETIME").arg(key).query(con).unwrap()
}

/// Sends a command to the master of the slot that `token`, read as a key,
/// hashes to: what a client does that routes by the command's declared key
/// (argument 2, docs/cluster.md). The slot comes from the client library's
/// own hashing, not from the server.
pub fn by_token(
    cluster: &mut ClusterConnection,
    token: &str,
    args: &[&str],
) -> Result<Value, String> {
    let route = Route::with_key(token, SlotAddr::Master);
    send_by(cluster, SingleNodeRoutingInfo::SpecificNode(route), args)
}

/// Sends a command through the cluster client to the node at `port`
/// (START, which declares no key, to a master chosen by the caller).
pub fn on_node(cluster: &mut ClusterConnection, port: u16, args: &[&str]) -> Result<Value, String> {
    let node = SingleNodeRoutingInfo::ByAddress {
        host: "127.0.0.1".into(),
        port,
    };
    send_by(cluster, node, args)
}

fn send_by(
    cluster: &mut ClusterConnection,
    routing: SingleNodeRoutingInfo,
    args: &[&str],
) -> Result<Value, String> {
    let mut cmd = redis::cmd(args[0]);
    cmd.arg(&args[1..]);
    match cluster.route_command(&cmd, RoutingInfo::SingleNode(routing)) {
        Ok(Value::ServerError(e)) => Err(format!("{} {}", e.code(), e.details().unwrap_or(""))),
        Ok(value) => Ok(value),
        Err(e) => Err(match e.code() {
            Some(code) => format!("{code} {}", e.detail().unwrap_or("")),
            None => format!("client error: {e}"),
        }),
    }
}

/// The slots `CLUSTER SLOTS` on `con` gives to the master `id`.
pub fn served_slots(con: &mut Connection, id: &str) -> std::collections::BTreeSet<u16> {
    let ranges: Vec<Vec<Value>> = redis::cmd("CLUSTER").arg("SLOTS").query(con).unwrap();
    let mut slots = std::collections::BTreeSet::new();
    for range in ranges {
        let first: u16 = redis::from_redis_value_ref(&range[0]).unwrap();
        let last: u16 = redis::from_redis_value_ref(&range[1]).unwrap();
        let master: Vec<Value> = redis::from_redis_value_ref(&range[2]).unwrap();
        let master_id: String = redis::from_redis_value_ref(&master[2]).unwrap();
        if master_id == id {
            slots.extend(first..=last);
        }
    }
    slots
}

/// How many times the node on `con` has replied with the error `code`
/// (`INFO errorstats`; Redis counts its MOVED and ASK redirections there).
pub fn error_stat(con: &mut Connection, code: &str) -> u64 {
    info_field(con, "errorstats", &format!("errorstat_{code}"))
        .and_then(|v| v.strip_prefix("count=").and_then(|c| c.parse().ok()))
        .unwrap_or(0)
}

/// `CLUSTER COUNTKEYSINSLOT slot` on `con`.
pub fn keys_in(con: &mut Connection, slot: u16) -> i64 {
    redis::cmd("CLUSTER")
        .arg("COUNTKEYSINSLOT")
        .arg(slot)
        .query(con)
        .unwrap()
}

/// `CONFIG SET sessiongate.token-version <version>` on `con`: which token
/// a three-argument START mints there.
pub fn set_token_version(con: &mut Connection, version: u8) {
    let reply = call(
        con,
        &[
            "CONFIG",
            "SET",
            "sessiongate.token-version",
            &version.to_string(),
        ],
    );
    assert_eq!(
        reply,
        Ok(Value::Okay),
        "CONFIG SET sessiongate.token-version"
    );
}

/// `sessiongate_ids_drawn` of `INFO sessiongate`: ids START has drawn.
pub fn ids_drawn(con: &mut Connection) -> u64 {
    info_field(con, "sessiongate", "sessiongate_ids_drawn")
        .and_then(|v| v.parse().ok())
        .expect("INFO sessiongate has sessiongate_ids_drawn")
}

/// The parts of a v2 token, `v2.{<tag>}.<id>.<signature>` (docs/tokens.md,
/// docs/tokens.md#v2-tokens), read with no help from the module's code.
pub struct V2<'a> {
    pub tag: &'a str,
    pub id: &'a str,
    /// What the signature signs: everything before the last dot.
    pub signed: &'a str,
    pub signature: &'a str,
}

/// `token` read as a v2 token, `None` if it is not one.
pub fn v2_parts(token: &str) -> Option<V2<'_>> {
    let (signed, signature) = token.rsplit_once('.')?;
    let (head, id) = signed.rsplit_once('.')?;
    let tag = head.strip_prefix("v2.{")?.strip_suffix('}')?;
    let alnum = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric());
    let hex = |s: &str| s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    ((1..=3).contains(&tag.len())
        && alnum(tag)
        && id.len() == 16
        && alnum(id)
        && signature.len() == 64
        && hex(signature))
    .then_some(V2 {
        tag,
        id,
        signed,
        signature,
    })
}

/// A v2 session's one key, `sg-session:{<tag>}.<id>` (docs/keys.md).
pub fn v2_key_of(token: &str) -> String {
    let parts = v2_parts(token).unwrap_or_else(|| panic!("{token} is not a v2 token"));
    format!("sg-session:{{{}}}.{}", parts.tag, parts.id)
}

/// Sends `args`, any bytes, to the master of the slot that `key` hashes to
/// by the client library's own hashing (hash tags included): how a client
/// routes an owner command by its declared key, the owner (docs/keys.md#owner-index).
pub fn by_key<A: AsRef<[u8]>>(
    cluster: &mut ClusterConnection,
    key: &[u8],
    args: &[A],
) -> Result<Value, String> {
    let mut cmd = redis::Cmd::new();
    for arg in args {
        cmd.arg(arg.as_ref());
    }
    let route = Route::with_key(key, SlotAddr::Master);
    let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route));
    match cluster.route_command(&cmd, routing) {
        Ok(Value::ServerError(e)) => Err(format!("{} {}", e.code(), e.details().unwrap_or(""))),
        Ok(value) => Ok(value),
        Err(e) => Err(match e.code() {
            Some(code) => format!("{code} {}", e.detail().unwrap_or("")),
            None => format!("client error: {e}"),
        }),
    }
}

/// The `<ns>` of an owner index for the raw sign key `sign_key` (docs
/// 6.3): `k.` and the first 8 bytes, as hex, of HMAC-SHA256(key,
/// `sessiongate owner namespace`).
pub fn owner_namespace(sign_key: &str) -> String {
    let mac = hmac_hex(sign_key.as_bytes(), b"sessiongate owner namespace");
    format!("k.{}", &mac[..16])
}

/// An owner's index, `sg-owner:{<tag>}:<ns>:<owner>` (docs/keys.md#owner-index), for the
/// raw sign key `sign_key`; `tag` is the canonical tag of the owner's slot,
/// which the owner's v2 tokens carry.
pub fn owner_index_key(tag: &str, sign_key: &str, owner: &[u8]) -> Vec<u8> {
    let head = format!("sg-owner:{{{tag}}}:{}:", owner_namespace(sign_key));
    [head.as_bytes(), owner].concat()
}

/// One name/value reply (INSPECT, or an OLIST entry): a map under RESP3,
/// a flat array of pairs under RESP2.
pub fn fields_of(reply: &Value) -> std::collections::BTreeMap<String, Value> {
    let pairs: Vec<(Value, Value)> = match reply {
        Value::Map(pairs) => pairs.clone(),
        Value::Array(items) if items.len() % 2 == 0 => items
            .chunks_exact(2)
            .map(|pair| (pair[0].clone(), pair[1].clone()))
            .collect(),
        other => panic!("not a name/value reply: {other:?}"),
    };
    pairs
        .into_iter()
        .map(|(name, value)| {
            let name: String = redis::from_redis_value_ref(&name).expect("a field name");
            (name, value)
        })
        .collect()
}

/// The session ids an OLIST reply lists, in its order.
pub fn listed_ids(reply: &Value) -> Vec<String> {
    let Value::Array(entries) = reply else {
        panic!("OLIST replied {reply:?}");
    };
    entries
        .iter()
        .map(|entry| {
            let fields = fields_of(entry);
            redis::from_redis_value_ref(&fields["id"]).expect("an id")
        })
        .collect()
}

/// The members of the sorted set `key` on `con`, with their scores.
pub fn zrange_withscores(con: &mut Connection, key: &[u8]) -> Vec<(String, i64)> {
    let flat: Vec<(String, f64)> = redis::cmd("ZRANGE")
        .arg(key)
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query(con)
        .unwrap();
    flat.into_iter().map(|(m, s)| (m, s as i64)).collect()
}
