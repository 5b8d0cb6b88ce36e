//! docs/cluster.md: in a Redis Cluster every command is routed by its token,
//! START on any master mints tokens that master serves, and sessions keep
//! their payloads and TTL through a reshard and a failover.

mod common;

use common::cluster::*;
use common::errors::*;
use common::*;
use redis::cluster::ClusterConnection;
use redis::Connection;
use std::collections::BTreeMap;
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

/// STARTs `n` sessions on `con` in one pipeline (ttl 600), the tokens.
fn start_many(con: &mut Connection, n: usize) -> Vec<String> {
    let mut pipe = redis::pipe();
    for _ in 0..n {
        pipe.cmd("SESSIONGATE.START").arg(KEY).arg(600);
    }
    pipe.query(con).unwrap()
}

/// For each of `keys`, its `CLUSTER KEYSLOT` on `con`, in one pipeline.
fn keyslots(con: &mut Connection, keys: &[String]) -> Vec<u16> {
    let mut pipe = redis::pipe();
    for key in keys {
        pipe.cmd("CLUSTER").arg("KEYSLOT").arg(key);
    }
    pipe.query(con).unwrap()
}

/// docs/tokens.md#v2-tokens, slot choice: a v2 START takes the tag of a random slot its
/// master serves, so it draws one id per session, where v1 draws until the
/// HMAC lands in a served slot (about three draws for a third of the slots).
#[test]
fn v2_start_on_each_master_mints_in_a_slot_it_serves_with_one_draw_each() {
    const N: usize = 300;
    let cluster = Cluster::start_with_module_args(3, 0, &["token-version", "2"]);
    let mut figures = Vec::new();
    for (version, prefix) in [(2, "v2."), (1, "v1.")] {
        for master in cluster.masters() {
            let mut con = master.connection();
            if version == 1 {
                set_token_version(&mut con, 1);
            }
            let me = node_id(&mut con);
            let served = served_slots(&mut con, &me);
            let before = ids_drawn(&mut con);
            let tokens = start_many(&mut con, N);
            let drawn = ids_drawn(&mut con) - before;
            figures.push(format!(
                "v{version} port {}: {drawn} ids for {N} STARTs",
                master.port
            ));

            let slots = keyslots(&mut con, &tokens);
            let keys: Vec<String> = match version {
                2 => tokens.iter().map(|t| v2_key_of(t)).collect(),
                _ => tokens.iter().map(|t| signature_key_of(t)).collect(),
            };
            assert_eq!(
                keyslots(&mut con, &keys),
                slots,
                "a session key outside its token's slot"
            );
            // EXISTS on the master itself: a slot it does not serve is MOVED.
            let mut pipe = redis::pipe();
            for key in &keys {
                pipe.cmd("EXISTS").arg(key);
            }
            let exist: Vec<i64> = pipe.query(&mut con).unwrap();
            assert!(
                exist.iter().all(|e| *e == 1),
                "a session missing on its master"
            );
            for (token, slot) in tokens.iter().zip(&slots) {
                assert!(token.starts_with(prefix), "{token}");
                assert!(
                    served.contains(slot),
                    "{token}: slot {slot} is not this master's"
                );
                if let Some(v2) = v2_parts(token) {
                    assert_eq!(hmac_hex(KEY.as_bytes(), v2.signed.as_bytes()), v2.signature);
                    let tag_slot = keyslot(&mut con, v2.tag.as_bytes());
                    assert_eq!(tag_slot, *slot, "{token}: the tag's slot");
                }
            }
            match version {
                2 => assert_eq!(drawn, N as u64, "v2 drew ids beyond one per START"),
                _ => assert!(
                    drawn as f64 > 1.5 * N as f64,
                    "v1 drew only {drawn} ids for {N} STARTs on a master of a third of the slots"
                ),
            }
        }
    }
    eprintln!("ids drawn: {}", figures.join("; "));
}

/// The MOVED and ASK replies of every master so far (INFO errorstats).
fn redirections(masters: &[&Server]) -> (u64, u64) {
    masters.iter().fold((0, 0), |(moved, ask), m| {
        let mut con = m.connection();
        (
            moved + error_stat(&mut con, "MOVED"),
            ask + error_stat(&mut con, "ASK"),
        )
    })
}

/// Every command of a session's life after START, in order, each with the
/// reply it must get (START was given a ttl of 600).
fn session_life(token: &str) -> Vec<(Vec<&str>, Result<Value, String>)> {
    let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
    vec![
        (vec!["SESSIONGATE.TTL", KEY, token], Ok(Value::Int(600))),
        (
            vec!["SESSIONGATE.PSET", KEY, token, "user", "alice"],
            Ok(Value::Okay),
        ),
        (
            vec!["SESSIONGATE.PMSET", KEY, token, "a", "1", "b", "2"],
            Ok(Value::Okay),
        ),
        (
            vec!["SESSIONGATE.PGET", KEY, token, "user"],
            Ok(bulk("alice")),
        ),
        (
            vec!["SESSIONGATE.PMGET", KEY, token, "a", "b", "none"],
            Ok(Value::Array(vec![bulk("1"), bulk("2"), Value::Nil])),
        ),
        (
            vec!["SESSIONGATE.PGETALL", KEY, token],
            Ok(Value::Array(
                ["a", "1", "b", "2", "user", "alice"].map(bulk).to_vec(),
            )),
        ),
        (
            vec!["SESSIONGATE.EXPIRE", KEY, token, "900"],
            Ok(Value::Okay),
        ),
        (vec!["SESSIONGATE.TTL", KEY, token], Ok(Value::Int(900))),
        (vec!["SESSIONGATE.PDEL", KEY, token, "a"], Ok(Value::Okay)),
        (
            vec!["SESSIONGATE.PGET", KEY, token, "a"],
            Err(NO_PAYLOAD.into()),
        ),
    ]
}

/// Asserts that `got` is `want`, the reply to `args`; a TTL may be a
/// second less than wanted on a slow machine.
fn assert_reply(args: &[&str], got: Result<Value, String>, want: &Result<Value, String>) {
    if let (Ok(Value::Int(got)), Ok(Value::Int(want)), "SESSIONGATE.TTL") = (&got, want, args[0]) {
        assert!(
            (want - 1..=*want).contains(got),
            "{args:?}: {got}, want {want}"
        );
        return;
    }
    assert_eq!(&got, want, "{args:?}");
}

/// docs/tokens.md#v2-tokens: the token contains `{<tag>}`, so a client that routes by the
/// declared key (argument 2) sends every command of a v2 session to the
/// master that minted it: through the cluster client no node replies MOVED
/// (Redis counts its redirections in INFO errorstats), and a plain
/// connection to the master of the token's slot gets no error. The session
/// is one key in that slot.
#[test]
fn v2_sessions_are_routed_by_their_token_with_no_moved() {
    const PER_MASTER: usize = 4;
    let cluster = Cluster::start_with_module_args(3, 0, &["token-version", "2"]);
    let masters = cluster.masters();
    let mut client = cluster.client();
    // The client learns the slots first (its first command may meet a
    // redirection of its own), then the counts start.
    assert_eq!(
        on_node(&mut client, masters[0].port, &["PING"]),
        Ok(Value::SimpleString("PONG".into()))
    );
    let before = redirections(&masters);
    let mut live: BTreeMap<u16, i64> = BTreeMap::new();
    for master in &masters {
        let mut con = master.connection();
        let me = node_id(&mut con);
        for i in 0..PER_MASTER {
            // START declares no key: the client sends it where it is told.
            let token = match on_node(&mut client, master.port, &["SESSIONGATE.START", KEY, "600"])
            {
                Ok(Value::BulkString(token)) => String::from_utf8(token).unwrap(),
                other => panic!("START on port {}: {other:?}", master.port),
            };
            assert!(v2_parts(&token).is_some(), "{token}");
            let slot = keyslot(&mut con, token.as_bytes());
            assert_eq!(
                owner_of(&mut con, slot),
                me,
                "{token}: minted for another master"
            );
            assert_eq!(keyslot(&mut con, v2_key_of(&token).as_bytes()), slot);
            *live.entry(slot).or_default() += 1;
            // Half the sessions through the cluster client, half on a plain
            // connection to the master of the slot, which would reply MOVED
            // to a command it does not serve.
            for (args, want) in session_life(&token) {
                let got = if i % 2 == 0 {
                    by_token(&mut client, &token, &args)
                } else {
                    call(&mut con, &args)
                };
                assert_reply(&args, got, &want);
            }
            // One key per session: the slot holds this test's live sessions.
            assert_eq!(keys_in(&mut con, slot), live[&slot], "slot {slot}");
            let fields: i64 = redis::cmd("HLEN")
                .arg(v2_key_of(&token))
                .query(&mut con)
                .unwrap();
            assert_eq!(fields, 3, "the record, user and b");
            if i < PER_MASTER / 2 {
                let end = ["SESSIONGATE.END", KEY, &token];
                let got = if i % 2 == 0 {
                    by_token(&mut client, &token, &end)
                } else {
                    call(&mut con, &end)
                };
                assert_eq!(got, Ok(Value::Okay));
                *live.entry(slot).or_default() -= 1;
                assert_eq!(
                    keys_in(&mut con, slot),
                    live[&slot],
                    "slot {slot} after END"
                );
                assert_eq!(
                    by_token(
                        &mut client,
                        &token,
                        &["SESSIONGATE.PGET", KEY, &token, "user"]
                    ),
                    Err(NO_SESSION.into())
                );
            }
        }
    }
    assert_eq!(redirections(&masters), before, "(MOVED, ASK) replies");

    // The count does see a redirection: a plain connection to another
    // master gets MOVED, and its errorstats count it.
    let token = start(&mut masters[0].connection(), KEY, 600);
    let mut elsewhere = masters[1].connection();
    let moved = err(&mut elsewhere, &["SESSIONGATE.PGET", KEY, &token, "user"]);
    assert!(moved.starts_with("MOVED "), "{moved}");
    let (moved_after, _) = redirections(&masters);
    assert_eq!(moved_after, before.0 + 1, "the MOVED was counted");
}

/// docs/tokens.md#v2-tokens: v1 and v2 sessions live side by side in one cluster, each
/// through every command: a v1 session keeps its two keys named with the
/// whole token as hash tag (Part 4), a v2 session is one hash named with
/// the token's tag, and both sit in the token's slot on the master that
/// minted them. The v2 key holds no usable token.
#[test]
fn v1_and_v2_sessions_side_by_side() {
    let cluster = Cluster::start(3, 0);
    let masters = cluster.masters();
    let mut client = cluster.client();
    let mut sessions = Vec::new();
    for master in &masters {
        let mut con = master.connection();
        let v1 = start(&mut con, KEY, 600);
        set_token_version(&mut con, 2);
        let v2 = start(&mut con, KEY, 600);
        set_token_version(&mut con, 1);
        assert!(v1.starts_with("v1.") && v2.starts_with("v2."), "{v1} {v2}");
        sessions.push((*master, v1, v2));
    }
    let count = |con: &mut Connection, slot: u16, all: &[(u16, i64)]| {
        let want: i64 = all.iter().filter(|(s, _)| *s == slot).map(|(_, n)| n).sum();
        assert_eq!(keys_in(con, slot), want, "keys in slot {slot}");
    };
    for (master, v1, v2) in &sessions {
        let mut con = master.connection();
        let me = node_id(&mut con);
        let (v1_slot, v2_slot) = (
            keyslot(&mut con, v1.as_bytes()),
            keyslot(&mut con, v2.as_bytes()),
        );
        let parts = v2_parts(v2).unwrap();
        let v2_key = v2_key_of(v2);
        assert_eq!(keyslot(&mut con, v2_key.as_bytes()), v2_slot, "{v2_key}");
        assert_eq!(
            keyslot(&mut con, format!("{{{}}}", parts.tag).as_bytes()),
            v2_slot
        );
        for key in [signature_key_of(v1), payloads_key_of(v1)] {
            assert_eq!(keyslot(&mut con, key.as_bytes()), v1_slot, "{key}");
        }
        assert_eq!(owner_of(&mut con, v1_slot), me);
        assert_eq!(owner_of(&mut con, v2_slot), me);

        // Every command, the two sessions in turn.
        let (life1, life2) = (session_life(v1), session_life(v2));
        for (step1, step2) in life1.iter().zip(&life2) {
            for ((args, want), token) in [(step1, v1), (step2, v2)] {
                assert_reply(args, by_token(&mut client, token, args), want);
            }
        }
        // v1: a signature key and a payloads key; v2: one hash.
        let all = [(v1_slot, 2), (v2_slot, 1)];
        count(&mut con, v1_slot, &all);
        count(&mut con, v2_slot, &all);
        let stored: String = redis::cmd("GET")
            .arg(signature_key_of(v1))
            .query(&mut con)
            .unwrap();
        assert_eq!(stored, v1[20..]);
        let record: Vec<u8> = redis::cmd("HGET")
            .arg(&v2_key)
            .arg("")
            .query(&mut con)
            .unwrap();
        let binding = &parts.signature.as_bytes()[..32];
        let rest = &parts.signature.as_bytes()[32..];
        assert!(
            record.windows(32).any(|w| w == binding),
            "the record holds the binding"
        );
        assert!(
            !record.windows(32).any(|w| w == rest),
            "the record holds the whole signature"
        );
        let payloads: BTreeMap<String, String> = redis::cmd("HGETALL")
            .arg(payloads_key_of(v1))
            .query(&mut con)
            .unwrap();
        let mut fields: BTreeMap<String, Vec<u8>> =
            redis::cmd("HGETALL").arg(&v2_key).query(&mut con).unwrap();
        assert!(fields.remove("").is_some());
        let want = BTreeMap::from([
            ("b".to_string(), "2".to_string()),
            ("user".into(), "alice".into()),
        ]);
        assert_eq!(payloads, want);
        let fields: BTreeMap<String, String> = fields
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8(v).unwrap()))
            .collect();
        assert_eq!(fields, want);
        let at = pexpiretime(&mut con, &signature_key_of(v1));
        assert_eq!(pexpiretime(&mut con, &payloads_key_of(v1)), at);
        assert!(pexpiretime(&mut con, &v2_key) > 0);
        // No v1-style key for the v2 token.
        for key in [signature_key_of(v2), payloads_key_of(v2)] {
            let exists = call(&mut con, &["EXISTS", &key]);
            assert!(
                matches!(exists, Ok(Value::Int(0)) | Err(_)),
                "{key}: {exists:?}"
            );
        }

        for token in [v1, v2] {
            assert_eq!(
                by_token(&mut client, token, &["SESSIONGATE.END", KEY, token]),
                Ok(Value::Okay)
            );
            assert_eq!(
                by_token(&mut client, token, &["SESSIONGATE.TTL", KEY, token]),
                Err(NO_SESSION.into())
            );
        }
        let none = [(v1_slot, 0), (v2_slot, 0)];
        count(&mut con, v1_slot, &none);
        count(&mut con, v2_slot, &none);
    }
}

/// A token from a reply, or a panic naming what was sent.
fn token_of(reply: Result<Value, String>, what: &str) -> String {
    match reply {
        Ok(Value::BulkString(token)) => String::from_utf8(token).expect("tokens are ASCII"),
        other => panic!("{what}: {other:?}"),
    }
}

/// Owners whose hash-tag reading is easy to get wrong: Redis hashes the
/// bytes between the first `{` and the first `}` after it when there are
/// any, else the whole key (`{}` and `{}{a}` whole; `a{b}c` by `b`;
/// `a{b{c}d}` by `b{c`; `x}{y}` by `y`), and any byte may be in an owner.
const TRICKY_OWNERS: [&[u8]; 9] = [
    b"{}",
    b"a{b}c",
    b"a{b{c}d}",
    b"plain",
    b"{user1000}x",
    b"{}{a}",
    b"x}{y}",
    b"\x00\xff{\x80\x01}\r\n",
    b"\xc3\xa9l\xc3\xa8ve{",
];

/// docs/keys.md#owner-index and Part 4: OSTART, OLIST and OEND declare the owner as their
/// key, so a client routes them by it, hash tags and binary bytes
/// included. The owner's sessions and index sit in the slot `CLUSTER
/// KEYSLOT` gives the owner, on its master: no node replies MOVED (INFO
/// errorstats), and a plain connection to that master gets no error.
#[test]
fn owner_commands_route_by_the_owner_with_braces_and_binary_bytes() {
    let cluster = Cluster::start(3, 0);
    let masters = cluster.masters();
    let mut client = cluster.client();
    assert_eq!(
        on_node(&mut client, masters[0].port, &["PING"]),
        Ok(Value::SimpleString("PONG".into()))
    );
    let before = redirections(&masters);
    let mut slots_seen = std::collections::BTreeSet::new();
    for owner in TRICKY_OWNERS {
        let shown = String::from_utf8_lossy(owner).into_owned();
        let slot = keyslot(&mut masters[0].connection(), owner);
        slots_seen.insert(slot);
        let master = cluster.master_of(slot);
        let mut con = master.connection();
        let ostart = |label: &[u8]| -> Vec<Vec<u8>> {
            [
                &b"SESSIONGATE.OSTART"[..],
                KEY.as_bytes(),
                owner,
                b"600",
                b"LABEL",
                label,
            ]
            .map(<[u8]>::to_vec)
            .to_vec()
        };
        // One session through the cluster client, one on a plain
        // connection to the owner's master, which would reply MOVED to a
        // command for a slot it does not serve.
        let first = token_of(by_key(&mut client, owner, &ostart(b"phone")), &shown);
        let second = token_of(call(&mut con, &ostart(b"laptop")), &shown);
        let mut ids = Vec::new();
        for token in [&first, &second] {
            let parts = v2_parts(token).unwrap_or_else(|| panic!("{shown}: {token}"));
            assert_eq!(
                keyslot(&mut con, token.as_bytes()),
                slot,
                "{shown}: {token}"
            );
            assert_eq!(keyslot(&mut con, v2_key_of(token).as_bytes()), slot);
            assert_eq!(
                call(&mut con, &["EXISTS", &v2_key_of(token)]),
                Ok(Value::Int(1)),
                "{shown}: {token} on its owner's master"
            );
            ids.push(parts.id.to_string());
        }
        let tag = v2_parts(&first).unwrap().tag;
        let index = owner_index_key(tag, KEY, owner);
        assert_eq!(keyslot(&mut con, &index), slot, "{shown}: the index's slot");
        let mut members = zrange_withscores(&mut con, &index);
        members.sort();
        let mut want: Vec<(String, i64)> = [&first, &second]
            .iter()
            .map(|t| {
                (
                    v2_parts(t).unwrap().id.to_string(),
                    pexpiretime(&mut con, &v2_key_of(t)),
                )
            })
            .collect();
        want.sort();
        assert_eq!(members, want, "{shown}: the index");

        // INSPECT, routed by the token, names the owner byte for byte.
        let inspected = by_token(&mut client, &first, &["SESSIONGATE.INSPECT", KEY, &first]);
        let fields = fields_of(&inspected.unwrap());
        assert_eq!(
            fields["owner"],
            Value::BulkString(owner.to_vec()),
            "{shown}"
        );

        let olist = [&b"SESSIONGATE.OLIST"[..], KEY.as_bytes(), owner];
        let mut listed = listed_ids(&by_key(&mut client, owner, &olist).unwrap());
        listed.sort();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(listed, sorted, "{shown}: OLIST");
        assert_eq!(listed_ids(&call(&mut con, &olist).unwrap()).len(), 2);

        // OEND by id, then everywhere but one token, then everywhere.
        let oend_id = [
            b"SESSIONGATE.OEND",
            KEY.as_bytes(),
            owner,
            b"ID",
            ids[1].as_bytes(),
        ];
        assert_eq!(
            by_key(&mut client, owner, &oend_id),
            Ok(Value::Int(1)),
            "{shown}"
        );
        let third = token_of(by_key(&mut client, owner, &ostart(b"tablet")), &shown);
        assert_eq!(keyslot(&mut con, third.as_bytes()), slot);
        let except = [
            b"SESSIONGATE.OEND",
            KEY.as_bytes(),
            owner,
            b"EXCEPT",
            first.as_bytes(),
        ];
        assert_eq!(call(&mut con, &except), Ok(Value::Int(1)), "{shown}");
        assert_eq!(
            listed_ids(&by_key(&mut client, owner, &olist).unwrap()),
            vec![ids[0].clone()],
            "{shown}"
        );
        let oend = [&b"SESSIONGATE.OEND"[..], KEY.as_bytes(), owner];
        assert_eq!(
            by_key(&mut client, owner, &oend),
            Ok(Value::Int(1)),
            "{shown}"
        );
        assert_eq!(
            by_key(&mut client, owner, &olist),
            Ok(Value::Array(vec![])),
            "{shown}"
        );
        for token in [&first, &second, &third] {
            assert_eq!(
                by_token(&mut client, token, &["SESSIONGATE.TTL", KEY, token]),
                Err(NO_SESSION.into())
            );
        }
        assert_eq!(call(&mut con, &[&b"EXISTS"[..], &index]), Ok(Value::Int(0)));
    }
    assert!(
        slots_seen.len() >= 7,
        "the owners share slots: {slots_seen:?}"
    );
    assert_eq!(redirections(&masters), before, "(MOVED, ASK) replies");
}

/// docs/commands.md#rotate and Part 4: ROTATE declares the token, so a client routes it by
/// the old token, and the new token carries the canonical tag of the old
/// token's slot: a v2 session, a v1 one (whose slot is its keys' hash tag,
/// the whole token) and an owned one each stay on the master that served
/// them, payloads carried by a RENAME within the slot, the old token dead,
/// an owned session's index naming the new id. No node replies MOVED.
#[test]
fn rotate_keeps_each_session_in_its_slot_on_its_master_with_no_moved() {
    let cluster = Cluster::start(3, 0);
    let masters = cluster.masters();
    let mut client = cluster.client();
    assert_eq!(
        on_node(&mut client, masters[0].port, &["PING"]),
        Ok(Value::SimpleString("PONG".into()))
    );
    let before = redirections(&masters);
    let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
    // Asserts that `new`, rotated from `old`, is a v2 token of `old`'s slot
    // served by `con`'s master, and `old` is dead; the new token's slot.
    let assert_rotated =
        |client: &mut ClusterConnection, con: &mut Connection, old: &str, new: &str| {
            let slot = keyslot(con, old.as_bytes());
            let parts = v2_parts(new).unwrap_or_else(|| panic!("ROTATE {old} minted {new}"));
            assert_eq!(keyslot(con, new.as_bytes()), slot, "{old} -> {new}");
            assert_eq!(keyslot(con, parts.tag.as_bytes()), slot, "{new}: its tag");
            assert_eq!(
                hmac_hex(KEY.as_bytes(), parts.signed.as_bytes()),
                parts.signature
            );
            assert_eq!(
                call(con, &["EXISTS", &v2_key_of(new)]),
                Ok(Value::Int(1)),
                "{new} on the master of {old}"
            );
            for args in [
                vec!["SESSIONGATE.TTL", KEY, old],
                vec!["SESSIONGATE.PGET", KEY, old, "user"],
                vec!["SESSIONGATE.ROTATE", KEY, old],
            ] {
                assert_eq!(
                    by_token(client, old, &args),
                    Err(NO_SESSION.into()),
                    "{args:?}"
                );
            }
            let inspected =
                fields_of(&by_token(client, new, &["SESSIONGATE.INSPECT", KEY, new]).unwrap());
            assert_eq!(inspected["version"], Value::Int(2), "{new}");
            slot
        };
    let ttl_of = |client: &mut ClusterConnection, token: &str| match by_token(
        client,
        token,
        &["SESSIONGATE.TTL", KEY, token],
    ) {
        Ok(Value::Int(ttl)) => ttl,
        other => panic!("TTL {token}: {other:?}"),
    };

    for master in &masters {
        let mut con = master.connection();
        // v1, with payloads: its two keys give way to one v2 hash.
        let v1 = start(&mut con, KEY, 600);
        assert!(v1.starts_with("v1."), "{v1}");
        let set = ["SESSIONGATE.PMSET", KEY, &v1, "user", "alice", "cart", "3"];
        assert_eq!(by_token(&mut client, &v1, &set), Ok(Value::Okay));
        let rotated = token_of(
            by_token(&mut client, &v1, &["SESSIONGATE.ROTATE", KEY, &v1]),
            &v1,
        );
        let slot = assert_rotated(&mut client, &mut con, &v1, &rotated);
        for key in [signature_key_of(&v1), payloads_key_of(&v1)] {
            assert_eq!(
                call(&mut con, &["EXISTS", &key]),
                Ok(Value::Int(0)),
                "{key}"
            );
        }
        assert_eq!(
            by_token(
                &mut client,
                &rotated,
                &["SESSIONGATE.PGETALL", KEY, &rotated]
            ),
            Ok(Value::Array(
                ["cart", "3", "user", "alice"].map(bulk).to_vec()
            ))
        );
        assert!(
            (595..=600).contains(&ttl_of(&mut client, &rotated)),
            "the expiry is kept"
        );
        assert_eq!(keys_in(&mut con, slot), 1, "slot {slot}: the one v2 hash");

        // v1 without payloads: a record and nothing else.
        let bare = start(&mut con, KEY, 600);
        let rotated_bare = token_of(
            by_token(&mut client, &bare, &["SESSIONGATE.ROTATE", KEY, &bare]),
            &bare,
        );
        assert_rotated(&mut client, &mut con, &bare, &rotated_bare);
        assert_eq!(
            by_token(
                &mut client,
                &rotated_bare,
                &["SESSIONGATE.PGETALL", KEY, &rotated_bare]
            ),
            Ok(Value::Array(vec![]))
        );

        // v2 (START with an option mints v2), rotated twice, the second
        // time with a new TTL: the label and payloads follow.
        let v2 = token_of(
            call(
                &mut con,
                &["SESSIONGATE.START", KEY, "600", "LABEL", "phone"],
            ),
            "START LABEL",
        );
        assert_eq!(
            by_token(
                &mut client,
                &v2,
                &["SESSIONGATE.PSET", KEY, &v2, "user", "bob"]
            ),
            Ok(Value::Okay)
        );
        let once = token_of(
            by_token(&mut client, &v2, &["SESSIONGATE.ROTATE", KEY, &v2]),
            &v2,
        );
        assert_rotated(&mut client, &mut con, &v2, &once);
        let twice = token_of(
            by_token(
                &mut client,
                &once,
                &["SESSIONGATE.ROTATE", KEY, &once, "TTL", "900"],
            ),
            &once,
        );
        let slot = assert_rotated(&mut client, &mut con, &once, &twice);
        assert_eq!(keyslot(&mut con, v2.as_bytes()), slot);
        assert!(
            (895..=900).contains(&ttl_of(&mut client, &twice)),
            "TTL 900"
        );
        assert_eq!(
            by_token(
                &mut client,
                &twice,
                &["SESSIONGATE.PGET", KEY, &twice, "user"]
            ),
            Ok(bulk("bob"))
        );
        let inspected = fields_of(
            &by_token(&mut client, &twice, &["SESSIONGATE.INSPECT", KEY, &twice]).unwrap(),
        );
        assert_eq!(inspected["label"], bulk("phone"));
        let hash: i64 = redis::cmd("HLEN")
            .arg(v2_key_of(&twice))
            .query(&mut con)
            .unwrap();
        assert_eq!(hash, 2, "the record and user");
    }

    // Owned sessions, one owner per trick of TRICKY_OWNERS: the index on
    // the owner's master names the new id with the new expiry.
    for owner in TRICKY_OWNERS {
        let shown = String::from_utf8_lossy(owner).into_owned();
        let slot = keyslot(&mut masters[0].connection(), owner);
        let mut con = cluster.master_of(slot).connection();
        let ostart = [&b"SESSIONGATE.OSTART"[..], KEY.as_bytes(), owner, b"600"];
        let kept = token_of(by_key(&mut client, owner, &ostart), &shown);
        let old = token_of(by_key(&mut client, owner, &ostart), &shown);
        assert_eq!(
            by_token(
                &mut client,
                &old,
                &["SESSIONGATE.PSET", KEY, &old, "user", "carol"]
            ),
            Ok(Value::Okay)
        );
        let new = token_of(
            by_token(
                &mut client,
                &old,
                &["SESSIONGATE.ROTATE", KEY, &old, "TTL", "300"],
            ),
            &shown,
        );
        assert_eq!(
            assert_rotated(&mut client, &mut con, &old, &new),
            slot,
            "{shown}"
        );
        let olist = [&b"SESSIONGATE.OLIST"[..], KEY.as_bytes(), owner];
        let mut listed = listed_ids(&by_key(&mut client, owner, &olist).unwrap());
        listed.sort();
        let mut want = vec![
            v2_parts(&kept).unwrap().id.to_string(),
            v2_parts(&new).unwrap().id.to_string(),
        ];
        want.sort();
        assert_eq!(listed, want, "{shown}: OLIST after ROTATE");
        let index = owner_index_key(v2_parts(&new).unwrap().tag, KEY, owner);
        let scores: BTreeMap<String, i64> =
            zrange_withscores(&mut con, &index).into_iter().collect();
        assert_eq!(scores.len(), 2, "{shown}: {scores:?}");
        assert_eq!(
            scores[v2_parts(&new).unwrap().id],
            pexpiretime(&mut con, &v2_key_of(&new)),
            "{shown}: the new id's score is its expiry"
        );
        let inspected =
            fields_of(&by_token(&mut client, &new, &["SESSIONGATE.INSPECT", KEY, &new]).unwrap());
        assert_eq!(inspected["owner"], Value::BulkString(owner.to_vec()));
        assert_eq!(
            by_token(&mut client, &new, &["SESSIONGATE.PGET", KEY, &new, "user"]),
            Ok(bulk("carol"))
        );
        // EXCEPT the new token: only the other session ends.
        let except = [
            b"SESSIONGATE.OEND",
            KEY.as_bytes(),
            owner,
            b"EXCEPT",
            new.as_bytes(),
        ];
        assert_eq!(
            by_key(&mut client, owner, &except),
            Ok(Value::Int(1)),
            "{shown}"
        );
        let oend = [&b"SESSIONGATE.OEND"[..], KEY.as_bytes(), owner];
        assert_eq!(
            by_key(&mut client, owner, &oend),
            Ok(Value::Int(1)),
            "{shown}"
        );
        assert_eq!(call(&mut con, &[&b"EXISTS"[..], &index]), Ok(Value::Int(0)));
    }
    assert_eq!(redirections(&masters), before, "(MOVED, ASK) replies");
}
