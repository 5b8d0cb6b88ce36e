//! docs/replication.md: every write reaches a replica as its effects, so the
//! replica holds the master's keys, values and absolute expiries, and serves
//! PGET.

mod common;

use common::workload::{assert_sessions_readable, run_mix, snapshot};
use common::*;
use redis::Connection;

const KEY: &str = "replicated-sign-key";

fn wait_for_sync(replica: &Server, con: &mut Connection) {
    replica.wait_for("the replica to sync", || {
        info_field(con, "replication", "master_link_status").as_deref() == Some("up")
    });
}

#[test]
fn a_replica_holds_exactly_what_the_master_holds() {
    let master = Server::start(&[]);
    let replica = Server::start(&["--replicaof", "127.0.0.1", &master.port.to_string()]);
    let mut on_replica = replica.connection();
    wait_for_sync(&replica, &mut on_replica);

    let mut on_master = master.connection();
    let mixed = run_mix(&mut on_master, KEY);
    wait_for_replica(&mut on_master);

    let expected = snapshot(&mut on_master);
    assert_eq!(
        expected.len(),
        8,
        "the mix leaves 5 sessions, 3 with payloads: {expected:?}"
    );
    assert_eq!(snapshot(&mut on_replica), expected);
    assert_sessions_readable(&mut on_replica, KEY, &mixed);

    // Writes are refused on the replica, reads are served.
    let refused = err(
        &mut on_replica,
        &["SESSIONGATE.PSET", KEY, &mixed.live[0], "n", "d"],
    );
    assert!(refused.starts_with("READONLY"), "{refused}");
    let refused = err(&mut on_replica, &["SESSIONGATE.START", KEY, "10"]);
    assert!(refused.starts_with("READONLY"), "{refused}");
}

#[test]
fn a_replica_that_syncs_later_gets_the_same_data() {
    let master = Server::start(&[]);
    let mut on_master = master.connection();
    let mixed = run_mix(&mut on_master, KEY);
    let expected = snapshot(&mut on_master);

    let replica = Server::start(&["--replicaof", "127.0.0.1", &master.port.to_string()]);
    let mut on_replica = replica.connection();
    wait_for_sync(&replica, &mut on_replica);
    assert_eq!(snapshot(&mut on_replica), expected);
    assert_sessions_readable(&mut on_replica, KEY, &mixed);
}
