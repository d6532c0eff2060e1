//! Proof under stress, against the real service and bank simulator over
//! mutual TLS: a SIGKILL under write load loses no acknowledged write; a
//! thousand concurrent debits cannot take more than a token allows; floods
//! of bad requests and slow clients neither store anything nor starve
//! legitimate callers.

mod common;

use common::service::{Client, Options, Service};
use common::world::*;
use common::{random_pan, with_check_digit};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::AsyncWriteExt;

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

async fn post(client: &Client, path: &str, body: &Value) -> common::service::Response {
    client.post_json(path, Some(&key()), body).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_under_write_load_loses_no_acknowledged_write_and_the_chain_verifies() {
    let mut service = Service::start(Options {
        max_connections: 256,
        reveals_per_hour: 1000,
        ..Options::default()
    });
    let client = Arc::new(service.client("card-capture"));
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..16u64 {
        let (client, acked, stop) = (Arc::clone(&client), Arc::clone(&acked), Arc::clone(&stop));
        writers.push(tokio::spawn(async move {
            for i in 0u64.. {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let pan = random_pan(7_000_000 + w * 100_000 + i);
                // After the kill, calls fail: they were never acknowledged.
                let Ok(r) = client
                    .post_json("/v1/cards", Some(&key()), &json!({ "pan": pan }))
                    .await
                else {
                    continue;
                };
                if r.status == 201 {
                    let card_ref = r.json()["card_ref"].as_str().unwrap().to_owned();
                    acked.lock().unwrap().push((pan, card_ref));
                }
            }
        }));
    }
    while acked.lock().unwrap().len() < 300 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Killed mid-stream: 16 writers have requests in flight.
    service.kill();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 300);

    service.spawn();
    let capture = service.client("card-capture");
    let orchestrator = service.client("orchestrator");
    for (pan, card_ref) in &acked {
        // The fingerprint index and the record both survived.
        let again = post(&capture, "/v1/cards", &json!({ "pan": pan })).await;
        assert_eq!(again.status, 200, "{pan}: {}", again.text());
        assert_eq!(again.json()["already_stored"], true);
        assert_eq!(again.json()["card_ref"], json!(card_ref));
        let read = orchestrator.get(&format!("/v1/cards/{card_ref}")).await.unwrap();
        assert_eq!(read.status, 200, "{}", read.text());
    }
    // Every tenth card is opened: it decrypts to the PAN acknowledged.
    for (pan, card_ref) in acked.iter().step_by(10) {
        let r = service
            .reveal_approved(card_ref, "crash test check", &format!("check-{card_ref}"))
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["pan"], json!(pan));
    }
    let verify = service.audit_verify().await;
    assert_eq!(verify["intact"], true, "{verify}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_debits_take_exactly_what_the_tokens_allow() {
    let (pan, id_no) = (debit_pan(301), id_number());
    let mut service = Service::prepare(Options {
        max_connections: 2048,
        // A thousand clients connect at once: all of them handshake at once.
        max_handshakes: 2048,
        ..Options::default()
    });
    let bank = common::bank_sim::BankSim::start(
        &service.keys,
        service.dir.path(),
        "bank",
        &[holder(&pan, &id_no)],
        &[],
    );
    service.add_config(&format!(
        "[gateway]\nsms_carrier = \"{}\"\n{}",
        bank.endpoint(),
        bank.channel_config("bank-a")
    ));
    service.spawn();
    let w = World { service, bank };
    let (card, identity) = w.ready("u1", &pan, &id_no).await;
    let r = w.start("u1", &card, &identity, json!({})).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let binding = r.json()["binding_id"].as_str().unwrap().to_owned();
    let (code, _) = w.bank.last_code(PHONE).await;
    assert_eq!(w.confirm(&binding, &code).await.status, 200);

    let token = |max_uses: u64, cumulative: u64| {
        json!({ "card_ref": card, "controls": {
            "max_uses": max_uses, "per_transaction_limit": 1000, "cumulative_limit": cumulative,
            "currency": "CNY", "valid_from": now() - 10, "valid_until": now() + 3600,
            "channels": ["bank-a"], "merchants": ["M001"],
        }})
    };
    // One token limited by its use count, one by its cumulative amount.
    let by_uses = w
        .post("orchestrator", "/v1/tokens", token(10, 1_000_000))
        .await
        .json()["token"]
        .clone();
    let by_amount = w
        .post("orchestrator", "/v1/tokens", token(1000, 1_000))
        .await
        .json()["token"]
        .clone();

    let client = Arc::new(w.service.client("orchestrator"));
    let mut debits = Vec::new();
    for i in 0..1000 {
        let token = if i % 2 == 0 {
            by_uses.clone()
        } else {
            by_amount.clone()
        };
        let client = Arc::clone(&client);
        debits.push(tokio::spawn(async move {
            let body = json!({
                "token": token, "order_id": format!("race-{i}"), "amount": 100, "currency": "CNY",
                "channel": "bank-a", "merchant": "M001", "expires_at": now() + 600,
            });
            let r = post(&client, "/v1/payments", &body).await;
            (
                i % 2,
                r.status,
                r.json()["control"].as_str().unwrap_or_default().to_owned(),
            )
        }));
    }
    let mut answers = Vec::new();
    for d in debits {
        answers.push(d.await.unwrap());
    }
    for (which, control) in [(0, "use_count"), (1, "cumulative_amount")] {
        let mine: Vec<_> = answers.iter().filter(|a| a.0 == which).collect();
        let paid = mine.iter().filter(|a| a.1 == 201).count();
        let refused = mine.iter().filter(|a| a.1 == 422 && a.2 == control).count();
        assert_eq!(
            (paid, refused),
            (10, 490),
            "{control}: {:?}",
            mine.iter().map(|a| a.1).collect::<Vec<_>>()
        );
    }
    for (token, uses) in [(&by_uses, 10), (&by_amount, 10)] {
        let t = token.as_str().unwrap();
        let usage = w
            .service
            .client("orchestrator")
            .get(&format!("/v1/tokens/{t}"))
            .await
            .unwrap()
            .json()["usage"]
            .clone();
        assert_eq!(usage["uses_committed"], uses, "{usage}");
        assert_eq!(usage["uses_reserved"], 0, "{usage}");
        assert_eq!(
            usage["amount_committed"], 1000,
            "the cap is never exceeded: {usage}"
        );
    }
    let paid_at_bank = w
        .bank
        .orders()
        .await
        .iter()
        .filter(|o| o["status"] == "succeeded")
        .count();
    assert_eq!(
        paid_at_bank, 20,
        "the bank was asked exactly as often as debits succeeded"
    );
}

/// One request written raw over a fresh mutual-TLS connection; the status,
/// or `None` if the service closed the connection without answering.
async fn raw_status(client: &Client, head_and_body: Vec<u8>) -> Option<u16> {
    let mut tls = client.connect().await.ok()?;
    tls.write_all(&head_and_body).await.ok()?;
    let mut raw = Vec::new();
    let _ = tokio::io::AsyncReadExt::read_to_end(&mut tls, &mut raw).await;
    let line = String::from_utf8_lossy(&raw[..raw.len().min(64)]).into_owned();
    line.split(' ').nth(1).and_then(|s| s.parse().ok())
}

fn request(path: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: {content_type}\r\nIdempotency-Key: {}\r\nContent-Length: {}\r\n\r\n",
        key(),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn floods_of_bad_requests_and_slow_clients_store_nothing_and_do_not_starve_callers() {
    let mut service = Service::start(Options {
        max_connections: 512,
        handshake_timeout_ms: 1_000,
        ..Options::default()
    });
    let addr = service.addr;
    let attacker = Arc::new(service.client("card-capture"));

    // Slow clients: TCP connections that never start TLS, and TLS
    // connections that dribble a request header one byte at a time.
    let mut slow = Vec::new();
    for _ in 0..100 {
        slow.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut dribblers = Vec::new();
    for _ in 0..20 {
        let (attacker, stop) = (Arc::clone(&attacker), Arc::clone(&stop));
        dribblers.push(tokio::spawn(async move {
            let Ok(mut tls) = attacker.connect().await else {
                return;
            };
            for byte in b"POST /v1/cards HTTP/1.1\r\nHost: localhost\r\nContent-Length: 99999\r\n"
                .iter()
                .cycle()
            {
                if stop.load(Ordering::Relaxed) || tls.write_all(&[*byte]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }));
    }

    // The flood: malformed JSON, oversize bodies, invalid PANs, unknown
    // fields, wrong content type, from 8 concurrent attackers.
    let bad_pan = with_check_digit("622202000000000009").replace('9', "8"); // Luhn broken
    let bodies: Vec<(String, Vec<u8>)> = vec![
        ("application/json".into(), b"{\"pan\": ".to_vec()),
        ("application/json".into(), vec![b'7'; 200_000]),
        (
            "application/json".into(),
            format!("{{\"pan\": \"{bad_pan}\"}}").into_bytes(),
        ),
        (
            "application/json".into(),
            b"{\"pan\": \"6222\", \"cvv\": \"123\"}".to_vec(),
        ),
        ("application/json".into(), b"[]".to_vec()),
        (
            "text/plain".into(),
            b"{\"pan\": \"6222020000000000000\"}".to_vec(),
        ),
    ];
    let bodies = Arc::new(bodies);
    let statuses: Arc<Mutex<Vec<Option<u16>>>> = Arc::default();
    let mut flood = Vec::new();
    for a in 0..8usize {
        let (attacker, stop, bodies, statuses) = (
            Arc::clone(&attacker),
            Arc::clone(&stop),
            Arc::clone(&bodies),
            Arc::clone(&statuses),
        );
        flood.push(tokio::spawn(async move {
            let mut i = a;
            while !stop.load(Ordering::Relaxed) {
                let (ct, body) = &bodies[i % bodies.len()];
                let status = raw_status(&attacker, request("/v1/cards", ct, body)).await;
                statuses.lock().unwrap().push(status);
                i += 1;
            }
        }));
    }

    // Legitimate traffic meanwhile, from its own identity's certificate.
    let legit = service.client("orchestrator");
    let capture = service.client("card-capture");
    let mut stored = Vec::new();
    let mut slowest = Duration::ZERO;
    for i in 0..60u64 {
        let started = Instant::now();
        let r = post(
            &capture,
            "/v1/cards",
            &json!({ "pan": random_pan(9_100_000 + i) }),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let card_ref = r.json()["card_ref"].as_str().unwrap().to_owned();
        let read = legit.get(&format!("/v1/cards/{card_ref}")).await.unwrap();
        assert_eq!(read.status, 200);
        slowest = slowest.max(started.elapsed());
        stored.push(card_ref);
    }
    stop.store(true, Ordering::Relaxed);
    for f in flood.into_iter().chain(dribblers) {
        f.await.unwrap();
    }
    drop(slow);
    eprintln!("slowest legitimate store+read under the flood: {slowest:?}");
    // A liveness bound, not a speed claim: nobody waited out a time-out.
    assert!(
        slowest < Duration::from_secs(5),
        "legitimate calls starved: {slowest:?}"
    );

    let statuses = statuses.lock().unwrap().clone();
    assert!(statuses.len() >= 60, "the flood ran: {}", statuses.len());
    let answered: Vec<u16> = statuses.iter().flatten().copied().collect();
    assert!(
        answered.iter().all(|s| (400..500).contains(s)),
        "every bad request is a 4xx: {:?}",
        answered
            .iter()
            .filter(|s| !(400..500).contains(*s))
            .collect::<Vec<_>>()
    );
    for needed in [400, 413, 415, 422] {
        assert!(answered.contains(&needed), "{needed} among {:?}", {
            let mut d = answered.clone();
            d.sort_unstable();
            d.dedup();
            d
        });
    }

    // Nothing was stored from the bad requests: only the legitimate cards.
    service.kill();
    let store = service.open_store().await;
    let cards = tokenvault::store::Store::scan_prefix(&store, b"card/", None, 10_000)
        .await
        .unwrap();
    assert_eq!(
        cards.len(),
        stored.len(),
        "only legitimate cards are in the store"
    );
}
