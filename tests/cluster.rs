//! docs/cluster.md: in a Redis Cluster every command is routed by its token,
//! START on any master mints tokens that master serves, and sessions keep
//! their payloads and TTL through a reshard and a failover.

mod common;

use common::cluster::*;
use common::errors::*;
use common::*;
use redis::cluster::ClusterConnection;
use redis::Connection;
use std::time::Duration;

const KEY: &str = "cluster-sign-key";

fn signature_key_of(token: &str) -> String {
    format!("sg-session:{{{token}}}:signature")
}

fn payloads_key_of(token: &str) -> String {
    format!("sg-session:{{{token}}}:payloads")
}

/// Asserts that `node` itself serves the token's keys: a plain EXISTS on it
/// finds the signature key (a node that does not serve the slot replies MOVED).
fn assert_served_by(node: &Server, token: &str) {
    let mut con = node.connection();
    let exists = call(&mut con, &["EXISTS", &signature_key_of(token)]);
    assert_eq!(
        exists,
        Ok(Value::Int(1)),
        "token {token} on port {}",
        node.port
    );
}

#[test]
fn start_on_each_master_mints_tokens_that_master_serves() {
    let cluster = Cluster::start(3, 0);
    let mut client = cluster.client();
    for master in cluster.masters() {
        let mut con = master.connection();
        let me = node_id(&mut con);
        for i in 0..20 {
            let token = start(&mut con, KEY, 300);
            let slot = keyslot(&mut con, token.as_bytes());
            assert_eq!(
                owner_of(&mut con, slot),
                me,
                "START minted a token for another master"
            );
            assert_served_by(master, &token);

            let send = |client: &mut ClusterConnection, args: &[&str]| routed(client, slot, args);
            assert_eq!(
                send(
                    &mut client,
                    &["SESSIONGATE.PSET", KEY, &token, "user", "alice"]
                ),
                Ok(Value::Okay)
            );
            assert_eq!(
                send(&mut client, &["SESSIONGATE.PGET", KEY, &token, "user"]),
                Ok(Value::BulkString(b"alice".to_vec()))
            );
            // Both keys sit in the token's slot, on its master.
            for key in [signature_key_of(&token), payloads_key_of(&token)] {
                assert_eq!(keyslot(&mut con, key.as_bytes()), slot, "{key}");
            }
            let in_slot: i64 = redis::cmd("CLUSTER")
                .arg("COUNTKEYSINSLOT")
                .arg(slot)
                .query(&mut con)
                .unwrap();
            assert!(in_slot >= 2, "slot {slot} counts {in_slot} keys");
            assert_eq!(
                send(&mut client, &["SESSIONGATE.EXPIRE", KEY, &token, "600"]),
                Ok(Value::Okay)
            );
            let at = pexpiretime(&mut con, &signature_key_of(&token));
            assert_eq!(pexpiretime(&mut con, &payloads_key_of(&token)), at);
            // The commands beyond the C module route the same way.
            assert_eq!(
                send(
                    &mut client,
                    &["SESSIONGATE.PMSET", KEY, &token, "a", "1", "b", "2"]
                ),
                Ok(Value::Okay)
            );
            assert_eq!(
                send(&mut client, &["SESSIONGATE.PMGET", KEY, &token, "a", "b"]),
                Ok(Value::Array(vec![
                    Value::BulkString(b"1".to_vec()),
                    Value::BulkString(b"2".to_vec())
                ]))
            );
            let all = send(&mut client, &["SESSIONGATE.PGETALL", KEY, &token]);
            assert!(
                matches!(&all, Ok(Value::Array(items)) if items.len() == 6),
                "{all:?}"
            );
            assert_eq!(
                send(&mut client, &["SESSIONGATE.TTL", KEY, &token]),
                Ok(Value::Int(600))
            );
            assert_eq!(
                send(&mut client, &["SESSIONGATE.PDEL", KEY, &token, "user"]),
                Ok(Value::Okay)
            );
            if i % 2 == 0 {
                assert_eq!(
                    send(&mut client, &["SESSIONGATE.END", KEY, &token]),
                    Ok(Value::Okay)
                );
            } else {
                // A client that routes by the first argument gets MOVED to
                // the token's master, and follows it.
                let end: Value = redis::cmd("SESSIONGATE.END")
                    .arg(KEY)
                    .arg(&token)
                    .query(&mut client)
                    .unwrap();
                assert_eq!(end, Value::Okay);
            }
            assert_eq!(
                send(&mut client, &["SESSIONGATE.PGET", KEY, &token, "user"]),
                Err(NO_SESSION.into())
            );
        }
    }
}

#[test]
fn nodes_answer_only_for_what_they_serve() {
    let cluster = Cluster::start(3, 0);
    let masters = cluster.masters();
    let mut on_first = masters[0].connection();
    let token = start(&mut on_first, KEY, 300);
    let mut on_second = masters[1].connection();
    let moved = err(&mut on_second, &["SESSIONGATE.PGET", KEY, &token, "user"]);
    assert!(moved.starts_with("MOVED "), "{moved}");

    // A master that joins without slots cannot mint a token it would serve.
    let empty = start_node();
    let mut on_empty = empty.connection();
    let (_, bus_port): (String, u16) = redis::cmd("CONFIG")
        .arg("GET")
        .arg("cluster-port")
        .query(&mut on_first)
        .unwrap();
    let _: () = redis::cmd("CLUSTER")
        .arg("MEET")
        .arg("127.0.0.1")
        .arg(masters[0].port)
        .arg(bus_port)
        .query(&mut on_empty)
        .unwrap();
    empty.wait_for("the new node to learn the slots", || {
        owner_of_any(&mut on_empty)
    });
    assert_eq!(
        err(&mut on_empty, &["SESSIONGATE.START", KEY, "300"]),
        NO_SERVED_SLOT
    );
}

/// Whether `CLUSTER SLOTS` on `con` lists any slot yet.
fn owner_of_any(con: &mut Connection) -> bool {
    redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query::<Vec<Value>>(con)
        .is_ok_and(|ranges| !ranges.is_empty())
}

/// Moves `slot`, with its keys, from `from` to `to`, as `redis-cli --cluster
/// reshard` does.
fn migrate_slot(masters: &[&Server], from: &Server, to: &Server, slot: u16) {
    let (mut src, mut dst) = (from.connection(), to.connection());
    let (from_id, to_id) = (node_id(&mut src), node_id(&mut dst));
    let setslot = |con: &mut Connection, state: &str, id: &str| {
        let _: () = redis::cmd("CLUSTER")
            .arg("SETSLOT")
            .arg(slot)
            .arg(state)
            .arg(id)
            .query(con)
            .unwrap();
    };
    setslot(&mut dst, "IMPORTING", &from_id);
    setslot(&mut src, "MIGRATING", &to_id);
    loop {
        let keys: Vec<Vec<u8>> = redis::cmd("CLUSTER")
            .arg("GETKEYSINSLOT")
            .arg(slot)
            .arg(100)
            .query(&mut src)
            .unwrap();
        if keys.is_empty() {
            break;
        }
        let _: () = redis::cmd("MIGRATE")
            .arg("127.0.0.1")
            .arg(to.port)
            .arg("")
            .arg(0)
            .arg(5000)
            .arg("KEYS")
            .arg(keys)
            .query(&mut src)
            .unwrap();
    }
    setslot(&mut dst, "NODE", &to_id);
    setslot(&mut src, "NODE", &to_id);
    for master in masters {
        setslot(&mut master.connection(), "NODE", &to_id);
    }
}

#[test]
fn a_reshard_moves_sessions_with_their_slot_and_start_stays_correct() {
    // Debug builds keep the slot view this long (src/cluster.rs), so A's
    // view is surely stale below, however slow the machine.
    let cluster = Cluster::start_with_env(3, 0, &[("SESSIONGATE_TEST_SLOT_VIEW_MS", "600000")]);
    let masters = cluster.masters();
    let (a, b, c) = (masters[0], masters[1], masters[2]);
    let mut on_a = a.connection();
    let a_id = node_id(&mut on_a);
    let b_id = node_id(&mut b.connection());
    let a_slots: Vec<u16> = (0..16384)
        .filter(|s| owner_of(&mut on_a, *s) == a_id)
        .collect();

    let token = start(&mut on_a, KEY, 1000);
    ok_bytes(
        &mut on_a,
        &["SESSIONGATE.PSET", KEY, &token, "user", "alice"],
    );
    let slot = keyslot(&mut on_a, token.as_bytes());
    let expires_at = pexpiretime(&mut on_a, &signature_key_of(&token));

    // Move all but 50 of A's slots to B: the empty ones in one pipeline per
    // node, then the session's slot with its keys, as a reshard does. A read
    // its slots at its last START and keeps that view, so its cached view is
    // now wrong for almost every slot in it.
    let empty: Vec<u16> = a_slots
        .iter()
        .copied()
        .filter(|s| *s != slot)
        .skip(50)
        .collect();
    for node in [b, a, c] {
        let mut pipe = redis::pipe();
        for s in &empty {
            pipe.cmd("CLUSTER")
                .arg("SETSLOT")
                .arg(*s)
                .arg("NODE")
                .arg(&b_id)
                .ignore();
        }
        let _: () = pipe.query(&mut node.connection()).unwrap();
    }
    migrate_slot(&masters, a, b, slot);
    for _ in 0..20 {
        let minted = start(&mut on_a, KEY, 100);
        assert_served_by(a, &minted);
    }

    let mut client = cluster.client();
    assert_eq!(
        routed(
            &mut client,
            slot,
            &["SESSIONGATE.PGET", KEY, &token, "user"]
        ),
        Ok(Value::BulkString(b"alice".to_vec()))
    );
    assert_served_by(b, &token);
    // MIGRATE carries a relative TTL (RESTORE without ABSTTL), so Redis
    // itself may shift the expiry by the milliseconds the move takes.
    let mut on_b = b.connection();
    for key in [signature_key_of(&token), payloads_key_of(&token)] {
        let moved_to = pexpiretime(&mut on_b, &key);
        assert!(
            (moved_to - expires_at).abs() <= 50,
            "{key}: {expires_at} -> {moved_to}"
        );
    }

    // Later STARTs on either node mint only tokens that node serves.
    for node in [a, b] {
        let mut con = node.connection();
        for _ in 0..200 {
            let minted = start(&mut con, KEY, 100);
            assert_served_by(node, &minted);
        }
    }
}

#[test]
fn sessions_survive_the_failover_of_their_master() {
    let mut cluster = Cluster::start(3, 1);
    let victim_port = cluster.masters()[0].port;
    let victim_index = cluster
        .nodes
        .iter()
        .position(|n| n.port == victim_port)
        .unwrap();
    let mut on_victim = cluster.nodes[victim_index].connection();
    let victim_id = node_id(&mut on_victim);
    let mut sessions = Vec::new();
    for i in 0..10 {
        let token = start(&mut on_victim, KEY, 1000);
        let data = format!("payload {i}");
        ok_bytes(
            &mut on_victim,
            &["SESSIONGATE.PSET", KEY, &token, "data", &data],
        );
        let expires_at = pexpiretime(&mut on_victim, &signature_key_of(&token));
        sessions.push((token, data, expires_at));
    }
    wait_for_replica(&mut on_victim);
    let slot = keyslot(&mut on_victim, sessions[0].0.as_bytes());

    drop(on_victim);
    cluster.nodes.remove(victim_index).kill();
    let survivor = &cluster.nodes[0];
    let mut on_survivor = survivor.connection();
    survivor.wait_up_to(Duration::from_secs(60), "the failover", || {
        let ok = redis::cmd("CLUSTER")
            .arg("INFO")
            .query::<String>(&mut on_survivor)
            .is_ok_and(|info| info.contains("cluster_state:ok"));
        ok && owner_of(&mut on_survivor, slot) != victim_id
    });
    let promoted = cluster.master_of(slot);
    assert_ne!(promoted.port, victim_port);

    let mut client = cluster.client();
    let mut on_promoted = promoted.connection();
    for (token, data, expires_at) in &sessions {
        let slot = keyslot(&mut on_promoted, token.as_bytes());
        assert_eq!(
            routed(&mut client, slot, &["SESSIONGATE.PGET", KEY, token, "data"]),
            Ok(Value::BulkString(data.clone().into_bytes()))
        );
        assert_eq!(
            pexpiretime(&mut on_promoted, &signature_key_of(token)),
            *expires_at
        );
        assert_eq!(
            pexpiretime(&mut on_promoted, &payloads_key_of(token)),
            *expires_at
        );
    }
    for _ in 0..20 {
        let minted = start(&mut on_promoted, KEY, 100);
        assert_served_by(promoted, &minted);
    }
}
