//! Issue 19: the database crashes (immediate shutdown, recovery from its
//! WAL at restart) under write load, and the service rides it out without
//! a restart of its own: 503 with Retry-After and `/ready` 503 while the
//! database is away, writing again once it is back; every card it
//! acknowledged is there, and the audit chain verifies. A reload or an
//! unseal the trail cannot record while it is away is not applied. A test
//! binary of its own: it crashes its own cluster (one test at a time).

mod common;

use common::service::{Options, Service, TestBackend};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the writers were told, by status; the references of stored cards.
#[derive(Default)]
struct Told {
    statuses: BTreeMap<u16, u64>,
    stored: Vec<String>,
    without_retry_after: u64,
}

/// Each test crashes the cluster they share: one at a time.
static ONE_CRASH_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_service_rides_out_a_database_crash_and_restart() {
    let _alone = ONE_CRASH_AT_A_TIME.lock().await;
    let service = Arc::new(Service::start(Options {
        backend: TestBackend::Postgres,
        extra_postgres: "connect_timeout_ms = 1000\nstatement_timeout_ms = 2000\n".to_owned(),
        ..Options::default()
    }));
    let pid = service.pid();
    let told = Arc::new(Mutex::new(Told::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(1));
    let mut writers = Vec::new();
    for _ in 0..4 {
        let (service, told, stop, next) = (
            Arc::clone(&service),
            Arc::clone(&told),
            Arc::clone(&stop),
            Arc::clone(&next),
        );
        writers.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let n = next.fetch_add(1, Ordering::SeqCst);
                let (status, retry_after, body) = service.store_card("crash", n).await;
                let mut told = told.lock().unwrap();
                *told.statuses.entry(status).or_default() += 1;
                match status {
                    201 => told.stored.push(body["card_ref"].as_str().unwrap().to_owned()),
                    503 if retry_after.is_none() => told.without_retry_after += 1,
                    _ => {}
                }
            }
        }));
    }
    let stored_before = || told.lock().unwrap().stored.len();
    while stored_before() < 20 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let cluster = common::postgres::cluster();
    tokio::task::spawn_blocking(|| common::postgres::cluster().crash())
        .await
        .unwrap();
    // While the database is away: not ready, and writes refused, not lost.
    let monitor = service.client("monitor");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready = monitor.get("/ready").await.unwrap();
        if ready.status == 503 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/ready stayed {} with the database down",
            ready.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let refused_before = *told.lock().unwrap().statuses.get(&503).unwrap_or(&0);
    let deadline = Instant::now() + Duration::from_secs(40);
    while *told.lock().unwrap().statuses.get(&503).unwrap_or(&0) == refused_before {
        assert!(
            Instant::now() < deadline,
            "no write was refused with the database down"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    tokio::task::spawn_blocking(move || cluster.start_again())
        .await
        .unwrap();
    // Back without a restart of the service: writes succeed again.
    let stored_at_restart = stored_before();
    let deadline = Instant::now() + Duration::from_secs(60);
    while stored_before() < stored_at_restart + 20 {
        assert!(
            Instant::now() < deadline,
            "the service did not write again after the database came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for writer in writers {
        writer.await.unwrap();
    }
    assert_eq!(service.pid(), pid, "the service was not restarted");
    assert_eq!(monitor.get("/ready").await.unwrap().status, 200);

    let told = std::mem::take(&mut *told.lock().unwrap());
    eprintln!("answers by status: {:?}", told.statuses);
    let unexpected: Vec<_> = told
        .statuses
        .keys()
        .filter(|s| ![201, 503].contains(*s))
        .collect();
    assert!(
        unexpected.is_empty(),
        "only stored or unavailable: {:?}",
        told.statuses
    );
    assert_eq!(told.without_retry_after, 0, "every 503 says when to retry");
    let reader = service.client("orchestrator");
    for card in &told.stored {
        let r = reader.get(&format!("/v1/cards/{card}")).await.unwrap();
        assert_eq!(
            r.status,
            200,
            "acknowledged {card} lost in the crash: {}",
            r.text()
        );
    }
    service.assert_audit_intact().await;
}

/// Issue 22: no record, no change. With the database (and so the audit
/// trail) away, a SIGHUP that would revoke a certificate is not applied
/// (the revoked certificate still connects), and custodians' shares that
/// assemble the KEK leave the service sealed (503); once the database is
/// back, the same SIGHUP revokes and the same shares unseal, and the trail
/// holds each, the sealed-time submissions timed when they were made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_or_an_unseal_the_trail_cannot_record_is_not_applied() {
    let _alone = ONE_CRASH_AT_A_TIME.lock().await;
    let cluster = common::postgres::cluster();
    let fast = "connect_timeout_ms = 1000\nstatement_timeout_ms = 2000\n".to_owned();

    // SIGHUP.
    let service = Service::start(Options {
        backend: TestBackend::Postgres,
        extra_postgres: fast.clone(),
        ..Options::default()
    });
    let (client, cert) = service.issued_client(
        "auditor-2",
        "spiffe://tokenvault/auditor",
        tokenvault::tls::pki::Validity::days_from_now(1),
    );
    assert_eq!(client.get("/health").await.unwrap().status, 200);
    tokenvault::tls::pki::revoke(&service.keys, &cert).unwrap();
    cluster.crash();
    service.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !service.log().contains("SIGHUP: nothing reloaded") {
        assert!(Instant::now() < deadline, "{}", service.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        client.get("/health").await.unwrap().status,
        200,
        "the unrecorded reload was not applied"
    );
    cluster.start_again();
    service.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get("/health").await.is_ok() {
        assert!(Instant::now() < deadline, "the recorded reload revokes");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let export = service.audit_export().await;
    let reloads: Vec<&str> = export
        .lines()
        .filter(|l| l.contains("\"admin.reload\""))
        .collect();
    assert_eq!(reloads.len(), 1, "{reloads:?}");
    assert!(reloads[0].contains("\"local:sighup\"") && reloads[0].contains("\"success\""));
    drop(service);

    // Unseal.
    let mut sealed = Service::prepare(Options {
        backend: TestBackend::Postgres,
        extra_postgres: fast,
        extra_config: "[kek]\ncustody = \"shares\"\n".into(),
        ..Options::default()
    });
    let shares_dir = sealed.dir.path().join("shares");
    let made = std::process::Command::new(env!("CARGO_BIN_EXE_tokenvault"))
        .args([
            "keys",
            "init-shares",
            "--threshold",
            "2",
            "--plaintext",
            "2",
            "--out",
        ])
        .arg(&shares_dir)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    for name in ["custodian-1", "custodian-2"] {
        std::fs::write(
            sealed.dir.path().join(format!("policies/{name}.toml")),
            format!("identity = \"spiffe://tokenvault/{name}\"\ndescription = \"custodian\"\nallow = [\"keys.unseal\"]\n"),
        )
        .unwrap();
    }
    sealed.spawn();
    let shares: Vec<serde_json::Value> = (1..=2)
        .map(|i| {
            serde_json::from_slice(&std::fs::read(shares_dir.join(format!("share-{i}-of-2.json"))).unwrap())
                .unwrap()
        })
        .collect();
    let custodian = |name: &str| {
        sealed
            .issued_client(
                name,
                &format!("spiffe://tokenvault/{name}"),
                tokenvault::tls::pki::Validity::days_from_now(1),
            )
            .0
    };
    let (c1, c2) = (custodian("custodian-1"), custodian("custodian-2"));
    assert_eq!(
        c1.post_json("/v1/admin/unseal", None, &shares[0])
            .await
            .unwrap()
            .status,
        202
    );
    cluster.crash();
    let refused = c2.post_json("/v1/admin/unseal", None, &shares[1]).await.unwrap();
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(
        c1.get("/v1/admin/seal").await.unwrap().json()["sealed"],
        serde_json::json!(true),
        "still sealed"
    );
    cluster.start_again();
    assert_eq!(
        c1.post_json("/v1/admin/unseal", None, &shares[0])
            .await
            .unwrap()
            .status,
        202
    );
    let opened = c2.post_json("/v1/admin/unseal", None, &shares[1]).await.unwrap();
    assert_eq!(opened.status, 200, "{}", opened.text());
    let export = sealed.audit_export().await;
    let counted: Vec<serde_json::Value> = export
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| {
            r["operation"] == "keys.unseal" && r["detail"].as_str().unwrap_or("").starts_with("share counted")
        })
        .collect();
    assert_eq!(counted.len(), 2, "custodian-1's two submissions: {export}");
    assert!(
        export.contains("shares assembled, but the vault could not open or record its opening: still sealed"),
        "the failed open is in the journal: {export}"
    );
    let opening = export.lines().find(|l| l.contains("\"service.start\"")).unwrap();
    let opening: serde_json::Value = serde_json::from_str(opening).unwrap();
    assert_eq!(
        export.matches("\"service.start\"").count(),
        1,
        "the failed open wrote no opening: {export}"
    );
    assert!(counted
        .iter()
        .all(|r| r["at_ms"].as_i64() <= opening["at_ms"].as_i64()));
    sealed.assert_audit_intact().await;
}
