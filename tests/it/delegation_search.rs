//! `tuf-oci client`'s delegation search over HTTP: lazy pre-order depth
//! first, terminating roles, cycles and diamonds, path patterns, role-name
//! quoting, and the 32-role bound.

use tuf_oci::client::encode_role;

use crate::client_workflow::{fails, ok, started};
use crate::simulator::Simulator;

/// Targets delegates to `a` and `b` (both `*`); `a` delegates to `c`. The
/// target is in `b`, so the search visits targets, a, c, b (pre-order).
#[tokio::test]
async fn delegation_search_is_lazy_pre_order_depth_first() {
    let mut sim = Simulator::new().await;
    sim.add_delegation("targets", "a", &["*"], false);
    sim.add_delegation("targets", "b", &["*"], false);
    sim.add_delegation("a", "c", &["*"], false);
    sim.add_delegation("a", "unrelated", &["other/*"], false);
    sim.add_artifact("b", "file.txt", b"in b");
    sim.publish(&[
        "targets",
        "a",
        "b",
        "c",
        "unrelated",
        "snapshot",
        "timestamp",
    ])
    .await;
    let (server, client) = started(&sim);
    ok(&client.download(&server, &["file.txt"]));
    let metadata: Vec<String> = server
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("/metadata/"))
        .collect();
    assert_eq!(
        metadata,
        [
            "/metadata/2.root.json",
            "/metadata/timestamp.json",
            "/metadata/2.snapshot.json",
            "/metadata/2.targets.json",
            "/metadata/1.a.json",
            "/metadata/1.c.json",
            "/metadata/1.b.json"
        ]
    );
    assert_eq!(client.downloaded("file.txt").unwrap(), b"in b");
}

#[tokio::test]
async fn terminating_delegation_stops_the_search() {
    let mut sim = Simulator::new().await;
    sim.add_delegation("targets", "a", &["*"], true);
    sim.add_delegation("targets", "b", &["*"], false);
    sim.add_artifact("b", "file.txt", b"in b");
    sim.publish(&["targets", "a", "b", "snapshot", "timestamp"])
        .await;
    let (server, client) = started(&sim);
    fails(&client.download(&server, &["file.txt"]));
    assert!(server.requests().contains(&"/metadata/1.a.json".to_owned()));
    assert!(!server.requests().contains(&"/metadata/1.b.json".to_owned()));
}

#[tokio::test]
async fn cycles_and_diamonds_visit_each_role_once() {
    let mut sim = Simulator::new().await;
    sim.add_delegation("targets", "a", &["*"], false);
    sim.add_delegation("targets", "b", &["*"], false);
    sim.add_delegation("a", "c", &["*"], false);
    sim.add_delegation("b", "c", &["*"], false);
    sim.add_delegation("c", "a", &["*"], false);
    sim.publish(&["targets", "a", "b", "c", "snapshot", "timestamp"])
        .await;
    let (server, client) = started(&sim);
    fails(&client.download(&server, &["nowhere.txt"]));
    let roles: Vec<String> = server
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("/metadata/1."))
        .collect();
    assert_eq!(
        roles,
        [
            "/metadata/1.a.json",
            "/metadata/1.c.json",
            "/metadata/1.b.json"
        ]
    );
}

#[tokio::test]
async fn path_patterns_do_not_cross_slashes() {
    let mut sim = Simulator::new().await;
    sim.add_delegation("targets", "flat", &["releases/*"], false);
    sim.add_artifact("flat", "releases/deep/app.txt", b"misdelegated");
    sim.add_artifact("flat", "releases/app.txt", b"delegated");
    sim.publish(&["targets", "flat", "snapshot", "timestamp"])
        .await;
    let (server, client) = started(&sim);
    ok(&client.download(&server, &["releases/app.txt"]));
    fails(&client.download(&server, &["releases/deep/app.txt"]));
}

#[tokio::test]
async fn unusual_role_names_are_quoted_and_stay_in_the_metadata_directory() {
    for role in ["?", "#", "/delegatedrole", "../delegatedrole"] {
        let mut sim = Simulator::new().await;
        sim.add_delegation("targets", role, &["*"], false);
        sim.publish(&["targets", role, "snapshot", "timestamp"])
            .await;
        let (server, client) = started(&sim);
        fails(&client.download(&server, &["nonexistent target"]));
        let quoted = format!("/metadata/1.{}.json", encode_role(role));
        assert!(
            server.requests().contains(&quoted),
            "{role}: {:?}",
            server.requests()
        );
        assert_eq!(
            client.trusted_files().len(),
            5,
            "{role}: {:?}",
            client.trusted_files()
        );
        assert_eq!(client.version(role), Some(1));
        assert!(!client.dir.path().join("delegatedrole.json").exists());
    }
}

/// A chain of 40 delegations: the search visits 32 targets roles at most,
/// the top-level one included (as python-tuf counts), so 31 delegated ones.
#[tokio::test]
async fn target_search_visits_at_most_32_roles() {
    let mut sim = Simulator::new().await;
    let mut parent = "targets".to_owned();
    let mut roles = vec!["targets".to_owned()];
    for i in 0..40 {
        let name = format!("d{i}");
        sim.add_delegation(&parent, &name, &["*"], false);
        roles.push(name.clone());
        parent = name;
    }
    sim.add_artifact("d39", "deep.txt", b"too deep");
    let publish: Vec<&str> = roles
        .iter()
        .map(String::as_str)
        .chain(["snapshot", "timestamp"])
        .collect();
    sim.publish(&publish).await;
    let (server, client) = started(&sim);
    fails(&client.download(&server, &["deep.txt"]));
    let delegated = server
        .requests()
        .iter()
        .filter(|r| r.starts_with("/metadata/1.d"))
        .count();
    assert_eq!(delegated, 31, "{:?}", server.requests());
}
