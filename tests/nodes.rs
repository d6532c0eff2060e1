//! Issue 20: several `tokenvault serve` processes on one PostgreSQL
//! database behave as one vault. Two real nodes (`a` and `b`, each its own
//! process, folder and port, the same KEK and PKI) and a `bank-sim`
//! process, every call over mutual TLS: debits spread over both nodes
//! against one token's use count, an Idempotency-Key replayed on the other
//! node, one audit trail over both nodes' chains (a record altered, a
//! chain's tail cut with its head rewound, and a whole chain removed, each
//! found), background tasks run by one node at a time and taken over when
//! their holder is killed, and a second process under a running node's
//! name refused.

mod common;

use common::service::{Options, Response, Service, TestBackend};
use common::world::*;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokenvault::store::{Batch, Store};

/// Leases live 3 s (the shortest allowed), so a killed holder's tasks move
/// within seconds; checkpoints every second.
fn node_options() -> Options {
    Options {
        backend: TestBackend::Postgres,
        node_name: Some("a".to_owned()),
        extra_config: "[audit]\ncheckpoint_interval_s = 1\n".to_owned(),
        max_connections: 256,
        ..Options::default()
    }
}

/// Node `a` with a bank channel (the world), then node `b` on its database.
fn two_nodes(pan: &str, id_no: &str, payment: &str) -> (World, Service) {
    let w = world_of(node_options(), &[holder(pan, id_no)], &[], "", payment);
    let mut b = w.service.another_node("b");
    b.spawn();
    (w, b)
}

async fn debit_on(node: &Service, token: &str, order: &str) -> Response {
    let body = debit_body(token, order, 100);
    node.client("orchestrator")
        .post_json("/v1/payments", Some(&key()), &body)
        .await
        .unwrap()
}

async fn usage_on(node: &Service, token: &str) -> Value {
    let r = node
        .client("orchestrator")
        .get(&format!("/v1/tokens/{token}"))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["usage"].clone()
}

/// 1,000 debits against one token that allows 20 uses, half sent to each
/// node, 24 at a time on each: exactly 20 succeed, every other is refused
/// by the use count, the stored usage is 20 on both nodes and the bank was
/// asked 20 times.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_debits_over_two_nodes_take_exactly_the_allowed_uses() {
    const MAX_USES: u32 = 20;
    const PER_NODE: usize = 500;
    const WORKERS: usize = 24;
    let (pan, id_no) = (debit_pan(201), id_number());
    let (w, b) = two_nodes(&pan, &id_no, "");
    let (_, _, card) = w.bound("u-nodes", &pan, &id_no).await;
    let token = w
        .token_with(&card, token_controls(MAX_USES, 1000, 1_000_000, unix_now() - 10))
        .await;
    let w = Arc::new(w);
    let b = Arc::new(b);
    let mut debits = tokio::task::JoinSet::new();
    for worker in 0..2 * WORKERS {
        let (w, b, token) = (Arc::clone(&w), Arc::clone(&b), token.clone());
        debits.spawn(async move {
            let node = if worker % 2 == 0 { &w.service } else { &*b };
            let mut answers = Vec::new();
            for i in (worker / 2..PER_NODE).step_by(WORKERS) {
                let r = debit_on(node, &token, &format!("n{}-{i}", worker % 2)).await;
                answers.push((r.status, r.json()["control"].as_str().map(str::to_owned)));
            }
            answers
        });
    }
    let mut answers = Vec::new();
    while let Some(done) = debits.join_next().await {
        answers.extend(done.unwrap());
    }
    assert_eq!(answers.len(), 2 * PER_NODE);
    let paid = answers.iter().filter(|(s, _)| *s == 201).count();
    let refused = answers
        .iter()
        .filter(|(s, c)| *s == 422 && c.as_deref() == Some("use_count"))
        .count();
    assert_eq!(
        (paid, refused),
        (MAX_USES as usize, 2 * PER_NODE - MAX_USES as usize),
        "{answers:?}"
    );
    for node in [&w.service, &*b] {
        let usage = usage_on(node, &token).await;
        assert_eq!(
            (usage["uses_committed"].as_u64(), usage["uses_reserved"].as_u64()),
            (Some(20), Some(0))
        );
    }
    let at_bank = w.bank.orders().await;
    let succeeded = at_bank.iter().filter(|o| o["status"] == "succeeded").count();
    assert_eq!(succeeded, MAX_USES as usize, "the bank was asked once per use");
    w.service.assert_audit_intact().await;
}

/// A card stored on node a under an Idempotency-Key: the same request on
/// node b replays a's answer, and the same key with another body is
/// refused there as on a.
#[tokio::test]
async fn an_idempotency_key_replays_the_first_answer_on_the_other_node() {
    let (pan, id_no) = (debit_pan(202), id_number());
    let (w, b) = two_nodes(&pan, &id_no, "");
    let key = "card-once-across-nodes";
    let body = json!({ "pan": debit_pan(2021) });
    let first = w
        .service
        .client("card-capture")
        .post_json("/v1/cards", Some(key), &body)
        .await
        .unwrap();
    assert_eq!(first.status, 201, "{}", first.text());
    let again = b
        .client("card-capture")
        .post_json("/v1/cards", Some(key), &body)
        .await
        .unwrap();
    assert_eq!(
        (again.status, again.json()),
        (201, first.json()),
        "{}",
        again.text()
    );
    assert!(
        again.header("idempotent-replayed").is_some(),
        "{:?}",
        again.headers
    );
    let other = json!({ "pan": debit_pan(2022) });
    let misuse = b
        .client("card-capture")
        .post_json("/v1/cards", Some(key), &other)
        .await
        .unwrap();
    assert_eq!(misuse.status, 422, "{}", misuse.text());
}

/// Audit records of `operation` by `node`'s chain, from an export.
fn exported(text: &str, operation: &str, node: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["operation"] == operation && r["node"] == node)
        .collect()
}

/// Runs this crate's binary to its end: (exit code, stdout and stderr).
fn run_tokenvault(args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tokenvault"))
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// `tokenvault audit verify` on a node's config: (exit code, output).
fn verify_offline(node: &Service) -> (i32, String) {
    run_tokenvault(&["audit", "verify", "--config", node.config_path.to_str().unwrap()])
}

/// Both nodes write, each to its own chain; each checkpoints the other's
/// head. The trail verifies across both and the export holds both. Then,
/// with the nodes stopped, the database is tampered three ways and the
/// offline verify finds each: a record of a's chain altered (restored
/// afterwards), b's last two records cut with its head rewound to match
/// (the chain alone cannot see this; a's checkpoint can), and b's whole
/// chain removed.
#[tokio::test]
async fn one_trail_over_both_nodes_finds_an_altered_record_a_cut_tail_and_a_removed_chain() {
    let (pan, id_no) = (debit_pan(203), id_number());
    let (mut w, mut b) = two_nodes(&pan, &id_no, "");
    for (i, node) in [&w.service, &b, &w.service, &b].into_iter().enumerate() {
        let body = json!({ "pan": debit_pan(2030 + i as u64) });
        let r = node
            .client("card-capture")
            .post_json("/v1/cards", Some(&key()), &body)
            .await
            .unwrap();
        assert_eq!(r.status, 201, "{}", r.text());
    }
    // b stops (its last record, service.stop, is written), then a's next
    // checkpoint records b's final head, then a stops.
    b.signal("TERM");
    assert_eq!(b.wait_exit(Duration::from_secs(20)), Some(0), "{}", b.log());
    let b_head = |text: &str| {
        exported(text, "service.stop", "b")
            .last()
            .map(|r| r["seq"].as_u64().unwrap())
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let (export, b_last) = loop {
        let export = w.service.audit_export().await;
        let b_last = b_head(&export).expect("b's stop is in the trail");
        let covered = exported(&export, "audit.checkpoint", "a")
            .iter()
            .any(|r| r["detail"].as_str().unwrap().contains(&format!(" b={b_last}:")));
        if covered {
            break (export, b_last);
        }
        assert!(Instant::now() < deadline, "a checkpoint of b's last head on a");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        exported(&export, "card.store", "a").len() >= 2,
        "a's cards in a's chain"
    );
    assert!(
        exported(&export, "card.store", "b").len() >= 2,
        "b's cards in b's chain"
    );
    let verify = w.service.audit_verify().await;
    assert_eq!(verify["intact"], true, "{verify}");
    let nodes: Vec<&Value> = verify["chains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["node"])
        .collect();
    assert_eq!(nodes, [&json!("a"), &json!("b")], "{verify}");
    w.service.signal("TERM");
    assert_eq!(w.service.wait_exit(Duration::from_secs(20)), Some(0));

    let (code, out) = verify_offline(&w.service);
    assert_eq!(code, 0, "{out}");
    let store = w.service.open_store().await;
    let a_record = |seq: u64| format!("audit/node-rec/a/{seq:020}").into_bytes();
    let b_record = |seq: u64| format!("audit/node-rec/b/{seq:020}").into_bytes();

    // 1. One byte of a's record 3 changed.
    let original = store.get(&a_record(3)).await.unwrap().expect("a's record 3");
    let mut altered = original.clone();
    let last = altered.len() - 70;
    altered[last] ^= 0x01;
    put(&store, &a_record(3), Some(altered)).await;
    let (code, out) = verify_offline(&w.service);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("audit record 3") && out.contains("node a's chain"),
        "{out}"
    );
    put(&store, &a_record(3), Some(original)).await;

    // 2. b's last two records cut, its head rewound to the record before:
    // b's chain is consistent by itself, a's checkpoint is not.
    let keep = b_last - 2;
    let kept = store
        .get(&b_record(keep))
        .await
        .unwrap()
        .expect("b's kept record");
    let kept: tokenvault::audit::AuditRecord = tokenvault::store::codec::decode(&kept).unwrap();
    #[derive(serde::Serialize)]
    struct Head {
        seq: u64,
        mac: String,
    }
    let rewound = tokenvault::store::codec::encode(&Head {
        seq: keep,
        mac: kept.mac,
    })
    .unwrap();
    put(&store, b"audit/node-head/b", Some(rewound)).await;
    put(&store, &b_record(b_last), None).await;
    put(&store, &b_record(b_last - 1), None).await;
    let (code, out) = verify_offline(&w.service);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("audit record {b_last}"))
            && out.contains("checkpoint")
            && out.contains("node b's chain"),
        "{out}"
    );

    // 3. b's chain removed altogether.
    put(&store, b"audit/node-head/b", None).await;
    for seq in 1..=keep {
        put(&store, &b_record(seq), None).await;
    }
    let (code, out) = verify_offline(&w.service);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("node b's chain") && out.contains("checkpoint"),
        "{out}"
    );
    drop(store);
    drop(b);
}

async fn put(store: &tokenvault::store::Backend, key: &[u8], value: Option<Vec<u8>>) {
    let mut batch = Batch::new();
    match value {
        Some(value) => batch.put(key.to_vec(), value),
        None => batch.delete(key.to_vec()),
    };
    store.commit(batch).await.unwrap();
}

fn settler_passes(text: &str) -> f64 {
    common::metric_value(text, "tokenvault_settler_passes_total").unwrap_or(0.0)
}

/// Node a starts first and takes every task's lease: b's settler does not
/// run. a is killed (SIGKILL, no release): b takes the settler, the sweep
/// and key maintenance within the lease's time (audited `lease.take` by
/// b), and settles the payment a left in processing.
#[tokio::test]
async fn a_killed_lease_holders_tasks_move_to_the_other_node() {
    let (pan, id_no) = (debit_pan(204), id_number());
    let (mut w, b) = two_nodes(&pan, &id_no, "[payment]\npoll_interval_ms = 200\n");
    let (_, token, _) = w.bound("u-lease", &pan, &id_no).await;
    w.bank
        .set_faults(json!({ "pay_mode": "async", "notify_delay_ms": 600_000 }))
        .await;
    let r = debit_on(&w.service, &token, "lease-1").await;
    assert_eq!(r.status, 202, "{}", r.text());
    let payment = r.json()["payment_id"].as_str().unwrap().to_owned();

    // a holds the settler: b's settler makes no pass.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let monitor = b.client("monitor");
    assert_eq!(
        settler_passes(&monitor.get("/metrics").await.unwrap().text()),
        0.0
    );

    w.service.kill();
    let killed = Instant::now();
    let deadline = killed + Duration::from_secs(15);
    let takes = loop {
        let mut takes = exported(&b.audit_export().await, "lease.take", "b");
        takes.retain(|r| r["detail"].as_str().unwrap().contains("lease=task/"));
        let tasks = ["task/settler", "task/idempotency-sweep", "task/key-maintenance"];
        let all = tasks.iter().all(|t| {
            takes.iter().any(|r| {
                r["detail"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("lease={t} holder=b/"))
            })
        });
        if all {
            break takes;
        }
        assert!(
            Instant::now() < deadline,
            "b took every task within 15 s: {takes:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Taken from a's process, not from nobody.
    assert!(
        takes
            .iter()
            .all(|r| r["detail"].as_str().unwrap().contains("from=a/")),
        "{takes:?}"
    );
    eprintln!(
        "b took a's tasks {} ms after the kill",
        killed.elapsed().as_millis()
    );

    // The bank pays; b's settler (not a read of the payment) settles it.
    w.bank.decide(&payment, "paid").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let usage = usage_on(&b, &token).await;
        if usage["uses_committed"] == 1 && usage["uses_reserved"] == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "b's settler settled a's payment: {usage}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(settler_passes(&monitor.get("/metrics").await.unwrap().text()) > 0.0);
}

/// A second process started under the name of a running node waits one
/// lease time for the name and then refuses to start, naming the holder.
#[tokio::test]
async fn a_second_process_under_a_running_nodes_name_is_refused() {
    let (pan, id_no) = (debit_pan(205), id_number());
    let (_w, b) = two_nodes(&pan, &id_no, "");
    let twin = b.another_node("b");
    let (code, text) = run_tokenvault(&["serve", "--config", twin.config_path.to_str().unwrap()]);
    assert_ne!(code, 0, "{text}");
    assert!(text.contains("node name b is held by another process"), "{text}");
    // The running b serves on.
    let r = b
        .client("card-capture")
        .post_json("/v1/cards", Some(&key()), &json!({ "pan": debit_pan(2051) }))
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
}

async fn post_on(node: &Service, role: &str, path: &str, body: Value) -> Response {
    node.client(role)
        .post_json(path, Some(&key()), &body)
        .await
        .unwrap()
}

/// Reveals count per identity over both nodes and across a restart (the
/// hour's reveals are a store record, written with the reveal's audit
/// record): with 3 an hour, two on a and one on b use them up; a fourth is
/// refused on either node, and still after b restarts.
#[tokio::test]
async fn the_reveal_limit_counts_over_both_nodes_and_survives_a_restart() {
    let (pan, id_no) = (debit_pan(206), id_number());
    let options = Options {
        reveals_per_hour: 3,
        ..node_options()
    };
    let w = world_of(options, &[holder(&pan, &id_no)], &[], "", "");
    let mut b = w.service.another_node("b");
    b.spawn();
    let card = w.card(&pan).await;
    for (node, approver) in [(&w.service, &b), (&b, &w.service), (&w.service, &b)] {
        let r = reveal_across(node, approver, &card).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    for (node, approver) in [(&b, &w.service), (&w.service, &b)] {
        let r = reveal_across(node, approver, &card).await;
        assert_eq!(r.status, 429, "{}", r.text());
        assert!(r.header("retry-after").is_some());
    }
    b.kill();
    b.spawn();
    assert_eq!(
        reveal_across(&b, &w.service, &card).await.status,
        429,
        "the count survives the restart"
    );
}

/// Dual control over two nodes: a reveal requested on `node`, approved on
/// `approver`, made on `node`.
async fn reveal_across(node: &Service, approver: &Service, card: &str) -> Response {
    let key = key();
    let request = node.reveal_request(card, "dispute CB-20 review", &key).await;
    approver.approve_reveal(&request, &key).await;
    node.client("break-glass")
        .post_json(
            &format!("/v1/cards/{card}/reveal"),
            Some(&key),
            &json!({ "request_id": request }),
        )
        .await
        .unwrap()
}

/// Wrong payment passwords count over both nodes: three on a, two on b
/// lock the password, on both.
#[tokio::test]
async fn password_lock_outs_count_over_both_nodes() {
    let (pan, id_no) = (debit_pan(207), id_number());
    let (w, b) = two_nodes(&pan, &id_no, "");
    let identity = w.identity(&id_no, PHONE).await;
    w.user_with_password("pw-nodes", &identity).await;
    let verify = |node: &Service, password: &'static str| {
        post_on_owned(
            node,
            "/v1/payment-passwords/pw-nodes/verify",
            json!({ "password": password }),
        )
    };
    for node in [&w.service, &b, &w.service, &b] {
        assert_eq!(
            problem_rule(&verify(node, "580317").await),
            (422, "password".into(), "mismatch".into())
        );
    }
    let locked = verify(&w.service, "580317").await;
    assert_eq!(problem_rule(&locked), (423, "password".into(), "locked".into()));
    assert_eq!(
        verify(&b, PASSWORD).await.status,
        423,
        "locked on the other node too"
    );
}

fn post_on_owned(node: &Service, path: &str, body: Value) -> impl std::future::Future<Output = Response> {
    let client = node.client("orchestrator");
    let path = path.to_owned();
    async move { client.post_json(&path, Some(&key()), &body).await.unwrap() }
}

/// The data key rotated through node a's API; node b, which has not
/// heard of it, stores a card under the new version.
#[tokio::test]
async fn a_rotation_on_node_a_is_the_version_node_b_writes_under() {
    let (pan, id_no) = (debit_pan(208), id_number());
    let (w, b) = two_nodes(&pan, &id_no, "");
    let before = post_on(&b, "card-capture", "/v1/cards", json!({ "pan": debit_pan(2081) })).await;
    assert_eq!(before.status, 201, "{}", before.text());
    let rotated = w
        .service
        .client("key-admin")
        .post_empty("/v1/admin/keys/rotate", &key())
        .await
        .unwrap();
    assert_eq!(rotated.status, 201, "{}", rotated.text());
    let after = post_on(&b, "card-capture", "/v1/cards", json!({ "pan": debit_pan(2082) })).await;
    assert_eq!(after.status, 201, "{}", after.text());
    let keys = b.client("key-admin").get("/v1/admin/keys").await.unwrap().json();
    let records = |version: u64| {
        keys["data_keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["version"] == version)
            .map(|k| k["records"].as_u64().unwrap())
    };
    assert_eq!(records(2), Some(1), "{keys}");
}

fn channel_health(list: &Value, channel: &str) -> Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel"] == channel)
        .cloned()
        .unwrap_or_else(|| panic!("{channel} in {list}"))
}

/// An operator marks bank-a down on node a: node b's routing sees it (its
/// channel list reads the store), and marked up again on b, a sees that.
#[tokio::test]
async fn an_operators_channel_state_is_shared_by_both_nodes() {
    let (pan, id_no) = (debit_pan(209), id_number());
    let (w, b) = two_nodes(&pan, &id_no, "");
    let set = |node: &Service, down: bool| {
        let client = node.client("orchestrator");
        async move {
            let body = format!("{{\"down\":{down}}}");
            client
                .send(
                    "PUT",
                    "/v1/admin/channels/bank-a",
                    &[("Content-Type", "application/json"), ("Idempotency-Key", &key())],
                    Some(body.as_bytes()),
                )
                .await
                .unwrap()
        }
    };
    let list = |node: &Service| {
        let client = node.client("orchestrator");
        async move { client.get("/v1/admin/channels").await.unwrap().json() }
    };
    assert_eq!(set(&w.service, true).await.status, 200);
    let seen = channel_health(&list(&b).await, "bank-a");
    assert_eq!(
        (seen["up"].clone(), seen["down_because"].clone()),
        (json!(false), json!("admin")),
        "{seen}"
    );
    assert_eq!(set(&b, false).await.status, 200);
    let seen = channel_health(&list(&w.service).await, "bank-a");
    assert_eq!(seen["up"], true, "{seen}");
}

/// A credit card's binding started on node a holds the CVN and expiry in
/// a's memory alone. Its confirm on node b is answered 409
/// `verification-not-here` naming `cvn`, and the binding stays open; the
/// confirm sent again to b with the CVN and expiry signs it.
#[tokio::test]
async fn a_confirm_on_the_node_without_the_cvn_asks_for_it_again() {
    const CVN: &str = "737";
    const EXPIRY: &str = "1230";
    let (pan, id_no) = (credit_pan(210), id_number());
    let holders = [common::bank_sim::Holder {
        credit: Some((CVN, EXPIRY)),
        ..holder(&pan, &id_no)
    }];
    let w = world_of(node_options(), &holders, &[], "", "");
    let mut b = w.service.another_node("b");
    b.spawn();
    let (card, identity) = w.ready("credit-nodes", &pan, &id_no).await;
    let r = w
        .start(
            "credit-nodes",
            &card,
            &identity,
            json!({ "cvn": CVN, "expiry": EXPIRY }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let binding = r.json()["binding_id"].as_str().unwrap().to_owned();
    let (code, _) = w.bank.last_code(PHONE).await;
    let path = format!("/v1/bindings/{binding}/confirm");
    let elsewhere = post_on(&b, "orchestrator", &path, json!({ "code": code })).await;
    assert_eq!(
        problem_rule(&elsewhere),
        (409, "cvn".into(), "resend".into()),
        "{}",
        elsewhere.text()
    );
    assert!(elsewhere.json()["type"]
        .as_str()
        .unwrap()
        .ends_with("verification-not-here"));
    let open = b
        .client("orchestrator")
        .get(&format!("/v1/bindings/{binding}"))
        .await
        .unwrap()
        .json();
    assert_eq!(open["status"], "awaiting_code", "{open}");
    let signed = post_on(
        &b,
        "orchestrator",
        &path,
        json!({ "code": code, "cvn": CVN, "expiry": EXPIRY }),
    )
    .await;
    assert_eq!(signed.status, 200, "{}", signed.text());
    assert_eq!(signed.json()["status"], "signed");
}

/// The audit key rotated on node a: a's chain moves at its rotation record,
/// b's chain follows within its checkpoint interval (a rotation record of
/// its own), b's later records carry the new version, and the trail
/// verifies on both nodes (b loads the version a made to check a's chain).
#[tokio::test]
async fn an_audit_key_rotated_on_one_node_is_followed_by_the_other() {
    let (pan, id_no) = (debit_pan(209), id_number());
    let (w, b) = two_nodes(&pan, &id_no, "");
    let r = w
        .service
        .client("key-admin")
        .post_empty("/v1/admin/keys/audit/rotate", "rotate-on-a")
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.json()["version"].clone()),
        (201, json!(2)),
        "{}",
        r.text()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let export = b.audit_export().await;
        let followed = exported(&export, "keys.rotate_audit", "b").iter().any(|r| {
            r["detail"].as_str().unwrap().starts_with("to=2 ")
                && r["mac"].as_str().unwrap().starts_with("v2:")
        });
        if followed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "b's chain follows the rotation:\n{export}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let r = b
        .client("card-capture")
        .post_json("/v1/cards", Some(&key()), &json!({ "pan": debit_pan(2090) }))
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    let export = w.service.audit_export().await;
    let b_card = exported(&export, "card.store", "b").pop().expect("b's card");
    assert!(b_card["mac"].as_str().unwrap().starts_with("v2:"), "{b_card}");
    w.service.assert_audit_intact().await;
    b.assert_audit_intact().await;
}
