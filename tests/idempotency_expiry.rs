//! Remembered answers expire: within `limits.idempotency_ttl_s` a key
//! replays its answer (and refuses another request); past it the key is a
//! new request. The background sweep deletes expired records with an
//! audit record per page, counts them in the metrics, and the chain
//! verifies after it.

mod common;

use common::service::{Options, Service};
use serde_json::json;
use std::time::{Duration, Instant};

const TTL_S: u64 = 2;

fn service() -> Service {
    Service::start(Options {
        extra_limits: format!("idempotency_ttl_s = {TTL_S}\nidempotency_sweep_interval_s = 1\n"),
        ..Options::default()
    })
}

#[tokio::test]
async fn a_key_replays_within_its_time_and_is_a_new_request_after_it() {
    let service = service();
    let capture = service.client("card-capture");
    let store = |pan: String| {
        let capture = &capture;
        async move {
            capture
                .post_json("/v1/cards", Some("expiring-1"), &json!({ "pan": pan }))
                .await
                .unwrap()
        }
    };
    let (first_pan, second_pan) = (common::random_pan(11), common::random_pan(12));
    let first = store(first_pan.clone()).await;
    assert_eq!(first.status, 201, "{}", first.text());
    let replay = store(first_pan.clone()).await;
    assert_eq!(
        (replay.status, replay.header("idempotent-replayed")),
        (201, Some("true"))
    );
    assert_eq!(replay.json(), first.json());
    let other = store(second_pan.clone()).await;
    assert_eq!(
        (other.status, other.json()["rule"].clone()),
        (422, json!("reused"))
    );

    // Past its time (and before or after a sweep, either way) the key is free.
    tokio::time::sleep(Duration::from_secs(TTL_S + 1)).await;
    let fresh = store(second_pan).await;
    assert_eq!(fresh.status, 201, "{}", fresh.text());
    assert_eq!(fresh.header("idempotent-replayed"), None);
    assert_ne!(fresh.json()["card_ref"], first.json()["card_ref"]);
    // And the new answer is now the one remembered.
    let replay = store(common::random_pan(12)).await;
    assert_eq!(
        (replay.status, replay.header("idempotent-replayed")),
        (201, Some("true"))
    );
    assert_eq!(replay.json(), fresh.json());
    service.assert_audit_intact().await;
}

#[tokio::test]
async fn the_sweep_deletes_expired_answers_audits_and_counts_them() {
    let mut service = service();
    const CARDS: u64 = 300; // more than one sweep page
    for n in 0..CARDS {
        let (status, _, body) = service.store_card("swept", n).await;
        assert_eq!(status, 201, "{body}");
    }
    let monitor = service.client("monitor");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = monitor.get("/metrics").await.unwrap().text();
        let swept = common::metric_value(&text, "tokenvault_idempotency_records_swept_total").unwrap_or(0.0);
        if swept >= CARDS as f64 {
            assert!(
                common::metric_value(&text, "tokenvault_idempotency_sweep_passes_total").unwrap_or(0.0)
                    >= 1.0
            );
            break;
        }
        assert!(Instant::now() < deadline, "the sweep deleted {swept} of {CARDS}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let records: Vec<serde_json::Value> = service
        .audit_export()
        .await
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &serde_json::Value| r["operation"] == "idempotency.sweep")
        .collect();
    let deleted: u64 = records
        .iter()
        .map(|r| {
            assert_eq!(r["identity"], "local:idempotency-sweep", "{r}");
            let detail = r["detail"].as_str().unwrap();
            detail.split(' ').next().unwrap().parse::<u64>().unwrap()
        })
        .sum();
    assert_eq!(deleted, CARDS, "{records:?}");
    service.assert_audit_intact().await;

    // Nothing is left in the store, and every card is still there.
    service.kill();
    let store = service.open_store().await;
    use tokenvault::store::Store;
    let left = store.scan_prefix(b"idempotency/", None, 1000).await.unwrap();
    assert!(left.is_empty(), "{} records left", left.len());
    assert_eq!(
        store.scan_prefix(b"card/", None, 1000).await.unwrap().len() as u64,
        CARDS
    );
}

#[tokio::test]
async fn a_remembered_answer_that_does_not_read_counts_as_expired() {
    // Records from builds before answers carried a time do not decode.
    let mut service = Service::start(Options::default());
    let (status, _, first) = service.store_card("untimed", 1).await;
    assert_eq!(status, 201, "{first}");
    service.kill();
    {
        use tokenvault::store::{Batch, Store};
        let store = service.open_store().await;
        let records = store.scan_prefix(b"idempotency/", None, 10).await.unwrap();
        assert_eq!(records.len(), 1);
        let mut batch = Batch::new();
        batch.put(records[0].0.clone(), vec![0xff; 7]);
        store.commit(batch).await.unwrap();
    }
    service.spawn();
    // The same key again: a new request (the card exists, so 200 with the
    // same reference), not a replay and not a 500.
    let (status, _, again) = service.store_card("untimed", 1).await;
    assert_eq!((status, &again["already_stored"]), (200, &json!(true)), "{again}");
    assert_eq!(again["card_ref"], first["card_ref"]);
    let r = service
        .client("card-capture")
        .post_json(
            "/v1/cards",
            Some("untimed-1"),
            &json!({ "pan": common::random_pan(7919) }),
        )
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.header("idempotent-replayed")),
        (200, Some("true")),
        "{}",
        r.text()
    );
}
