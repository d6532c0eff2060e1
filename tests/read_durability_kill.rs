//! Issue 18, item 1, structurally (nothing timed): plain reads do not wait
//! for their audit record's flush, so a `kill -9` may lose the read records
//! of its last moments, and nothing else. The real service runs readers and
//! writers over mutual TLS, each request with its own request id, and is
//! SIGKILLed mid-stream, three times. After each restart: the chain
//! verifies; every acknowledged write's record is there; and a read record
//! that is missing belongs to a read answered after the last acknowledged
//! write was sent (a write's flush covers every record before it, so a
//! missing read before a durable write would be a hole).

mod common;

use common::service::{Options, Service};
use serde_json::json;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One acknowledged request.
struct Answered {
    request_id: String,
    is_read: bool,
    sent: Instant,
    answered: Instant,
}

/// Answers seen before the kill, and a flag that stops the load.
#[derive(Default)]
struct Load {
    answered: Mutex<Vec<Answered>>,
    count: AtomicUsize,
    stop: AtomicBool,
}

async fn reader(service: &Service, load: &Load, token: &str, name: &str) {
    let client = service.client("orchestrator");
    for i in 0.. {
        if load.stop.load(Ordering::SeqCst) {
            return;
        }
        let request_id = format!("rd-{name}-{i}");
        let sent = Instant::now();
        let Ok(r) = client
            .send(
                "GET",
                &format!("/v1/tokens/{token}"),
                &[("x-request-id", &request_id)],
                None,
            )
            .await
        else {
            return;
        };
        if r.status == 200 {
            load.acknowledge(request_id, true, sent);
        }
    }
}

async fn writer(service: &Service, load: &Load, seed: u64, name: &str) {
    let client = service.client("card-capture");
    for i in 0.. {
        if load.stop.load(Ordering::SeqCst) {
            return;
        }
        let request_id = format!("wr-{name}-{i}");
        let body = json!({ "pan": common::random_pan(seed * 100_000 + i) }).to_string();
        let sent = Instant::now();
        let Ok(r) = client
            .send(
                "POST",
                "/v1/cards",
                &[
                    ("x-request-id", &request_id),
                    ("idempotency-key", &request_id),
                    ("content-type", "application/json"),
                ],
                Some(body.as_bytes()),
            )
            .await
        else {
            return;
        };
        if r.status == 201 {
            load.acknowledge(request_id, false, sent);
        }
    }
}

impl Load {
    fn acknowledge(&self, request_id: String, is_read: bool, sent: Instant) {
        self.answered.lock().unwrap().push(Answered {
            request_id,
            is_read,
            sent,
            answered: Instant::now(),
        });
        self.count.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sigkill_under_mixed_load_only_the_last_read_records_can_be_missing() {
    let mut service = Service::start(Options::default());
    let card = service
        .client("card-capture")
        .post_json(
            "/v1/cards",
            Some("card-0"),
            &json!({ "pan": common::random_pan(7) }),
        )
        .await
        .unwrap();
    assert_eq!(card.status, 201, "{}", card.text());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = service
        .client("orchestrator")
        .post_json(
            "/v1/tokens",
            Some("token-0"),
            &json!({ "card_ref": card.json()["card_ref"], "controls": {
                "max_uses": 10, "per_transaction_limit": 1000, "cumulative_limit": 5000,
                "currency": "CNY", "valid_from": now - 10, "valid_until": now + 3600,
                "channels": ["bank-a"] } }),
        )
        .await
        .unwrap();
    assert_eq!(token.status, 201, "{}", token.text());
    let token = token.json()["token"].as_str().unwrap().to_owned();

    let mut missing_reads = 0;
    for round in 0..3u64 {
        let load = Arc::new(Load::default());
        let before_kill = load.count.load(Ordering::SeqCst) + 120;
        {
            let service = &service;
            let killer = async {
                let deadline = Instant::now() + Duration::from_secs(30);
                while load.count.load(Ordering::SeqCst) < before_kill && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                service.signal("KILL");
                load.stop.store(true, Ordering::SeqCst);
            };
            let names = [format!("{round}a"), format!("{round}b"), format!("{round}c")];
            tokio::join!(
                killer,
                reader(service, &load, &token, &names[0]),
                reader(service, &load, &token, &names[1]),
                reader(service, &load, &token, &names[2]),
                writer(service, &load, round * 2 + 1, &names[0]),
                writer(service, &load, round * 2 + 2, &names[1]),
            );
        }
        service.kill();
        service.spawn();

        let verify = service.client("auditor").get("/v1/audit/verify").await.unwrap();
        assert_eq!(verify.json()["intact"], true, "round {round}: {}", verify.text());
        let export = service.client("auditor").get("/v1/audit/export").await.unwrap();
        let present: HashSet<String> = export
            .text()
            .lines()
            .map(|line| {
                let record: serde_json::Value = serde_json::from_str(line).unwrap();
                record["request_id"].as_str().unwrap_or_default().to_owned()
            })
            .collect();
        let answered = std::mem::take(&mut *load.answered.lock().unwrap());
        let writes: Vec<&Answered> = answered.iter().filter(|a| !a.is_read).collect();
        assert!(!writes.is_empty(), "round {round}: no write was acknowledged");
        for write in &writes {
            assert!(
                present.contains(&write.request_id),
                "round {round}: acknowledged write {} has no audit record",
                write.request_id
            );
        }
        for read in answered
            .iter()
            .filter(|a| a.is_read && !present.contains(&a.request_id))
        {
            missing_reads += 1;
            let later_write = writes.iter().find(|w| w.sent > read.answered);
            assert!(
                later_write.is_none(),
                "round {round}: read {} is missing although write {}, sent after it was answered, is durable",
                read.request_id,
                later_write.map_or("", |w| w.request_id.as_str())
            );
        }
    }
    eprintln!("read records lost to the kills: {missing_reads}");
}
