//! Issue 19: the database crashes (immediate shutdown, recovery from its
//! WAL at restart) under write load, and the service rides it out without
//! a restart of its own: 503 with Retry-After and `/ready` 503 while the
//! database is away, writing again once it is back; every card it
//! acknowledged is there, and the audit chain verifies. A test binary of
//! its own: it crashes its own cluster.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_service_rides_out_a_database_crash_and_restart() {
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
