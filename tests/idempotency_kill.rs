//! One durable write per state change: a token request's effect and its
//! remembered answer are one atomic batch, so a `kill -9` at any moment
//! leaves both or neither. Retrying every key sent after a restart must
//! then name every token the card has: no token without its answer (which
//! a retry would duplicate), and one token per key.
//!
//! Rounds of concurrent issue requests, each ended by SIGKILL of the real
//! service mid-stream; then a restart and a retry of every key.

mod common;

use common::service::{Options, Service};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ROUNDS: usize = 4;
const WRITERS: usize = 12;

fn controls() -> Value {
    let now = tokenvault::domain::time::Timestamp::now().seconds();
    json!({"max_uses": 3, "per_transaction_limit": 50_000, "cumulative_limit": 200_000, "currency": "CNY",
        "valid_from": now - 60, "valid_until": now + 86_400, "channels": ["unionpay"], "merchants": ["M1"]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_kill_leaves_each_token_with_its_remembered_answer() {
    let mut service = Service::start(Options::default());
    let capture = service.client("card-capture");
    let pan = common::valid_test_pans()[0].clone();
    let stored = capture
        .post_json("/v1/cards", Some("card-1"), &json!({ "pan": pan }))
        .await
        .unwrap();
    assert_eq!(stored.status, 201, "{}", stored.text());
    let card = stored.json()["card_ref"].as_str().unwrap().to_owned();
    // One body per key, kept for its retry: `controls` reads the clock.
    let sent: Arc<Mutex<BTreeMap<String, Value>>> = Arc::default();

    for round in 0..ROUNDS {
        let orchestrator = Arc::new(service.client("orchestrator"));
        let mut writers = Vec::new();
        for writer in 0..WRITERS {
            let (orchestrator, sent, card) = (Arc::clone(&orchestrator), Arc::clone(&sent), card.clone());
            writers.push(tokio::spawn(async move {
                for n in 0.. {
                    let key = format!("issue-{round}-{writer}-{n}");
                    let body = json!({ "card_ref": card, "controls": controls() });
                    sent.lock().unwrap().insert(key.clone(), body.clone());
                    if orchestrator
                        .post_json("/v1/tokens", Some(&key), &body)
                        .await
                        .is_err()
                    {
                        return; // the service is gone
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(150 + 100 * round as u64)).await;
        service.kill();
        for writer in writers {
            writer.await.unwrap();
        }
        service.spawn();
    }

    let orchestrator = service.client("orchestrator");
    let mut answered = BTreeSet::new();
    let sent = sent.lock().unwrap().clone();
    for (key, body) in &sent {
        let r = orchestrator
            .post_json("/v1/tokens", Some(key), body)
            .await
            .unwrap();
        assert_eq!(r.status, 201, "{key}: {}", r.text());
        let token = r.json()["token"].as_str().unwrap().to_owned();
        assert!(answered.insert(token), "{key} answered a token another key has");
    }
    let listed = orchestrator
        .get(&format!("/v1/cards/{card}/tokens"))
        .await
        .unwrap();
    assert_eq!(listed.status, 200, "{}", listed.text());
    let tokens: BTreeSet<String> = listed.json()["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect();
    assert!(sent.len() > WRITERS * ROUNDS, "only {} keys sent", sent.len());
    assert_eq!(
        tokens,
        answered,
        "the card's tokens and the tokens its {} keys answer differ",
        sent.len()
    );
}
