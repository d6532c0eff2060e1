//! Scale: N cards loaded through the bulk path, with store-card and
//! token-read figures at each decade, bytes on disk per card and the
//! service's resident memory.

use crate::client::{Call, Proto, Target};
use crate::common::service::{Options, Service};
use crate::drive::{drive, MakeCall, Shape, Span};
use crate::scenarios::{controls, pan};
use crate::stats::Bases;
use crate::Args;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Cards per bulk request, and bulk requests in flight.
const BULK: u64 = 500;
const BULK_CONNECTIONS: usize = 8;

pub async fn run(args: &Args, cards: u64) {
    let service = Service::start(Options {
        max_connections: 4096,
        extra_config: args
            .cache_mib
            .map(|mib| format!("[store]\ncache_mib = {mib}\n"))
            .unwrap_or_default(),
        ..Options::default()
    });
    let keys = &service.keys;
    let target = |role: &str| {
        Target::new(
            service.addr,
            &keys.ca_cert(),
            &keys.client_cert(role),
            &keys.client_key(role),
            Proto::Http1,
        )
    };
    let (capture, orchestrator) = (target("card-capture"), target("orchestrator"));
    // Tokens to read, on a card outside the bulk range.
    let mut conn = orchestrator.connect(Proto::Http1).await.expect("connect");
    let mut setup = capture.connect(Proto::Http1).await.expect("connect");
    let (_, body) = setup
        .send(Call::post(
            "/v1/cards",
            &json!({ "pan": pan(999_999_000) }),
            Some("scale-card".into()),
        ))
        .await
        .expect("store card");
    let card: Value = serde_json::from_slice(&body).expect("JSON");
    let mut tokens = Vec::new();
    for i in 0..256 {
        let body = json!({ "card_ref": card["card_ref"], "controls": controls(10, 1_000, 10_000) });
        let (status, body) = conn
            .send(Call::post("/v1/tokens", &body, Some(format!("scale-t{i}"))))
            .await
            .expect("issue token");
        assert_eq!(status, 201);
        let token: Value = serde_json::from_slice(&body).expect("JSON");
        tokens.push(token["token"].as_str().expect("token").to_owned());
    }
    let tokens = Arc::new(tokens);
    let checkpoints: Vec<u64> = [10_000, 100_000, 1_000_000, 10_000_000]
        .into_iter()
        .filter(|c| *c <= cards)
        .collect();
    println!(
        "tokenvault scale run: {cards} cards through POST /v1/cards/bulk ({BULK} per request, \
         {BULK_CONNECTIONS} connections); at each checkpoint {} s of store card and of read token \
         at {} connections; store.cache_mib = {}",
        args.seconds,
        args.connections,
        args.cache_mib
            .map_or("1024 (default)".to_owned(), |m| m.to_string())
    );
    println!(
        "{:>9} {:>11} {:>9} {:>9} {:>11} {:>8} {:>8} {:>11} {:>8} {:>8} {:>9} {:>8} {:>7}",
        "cards",
        "bulk c/s",
        "bulk p50",
        "bulk p99",
        "store r/s",
        "p50 ms",
        "p99 ms",
        "read r/s",
        "p50 ms",
        "p99 ms",
        "B/card",
        "RSS MiB",
        "bulk s"
    );
    // Single-card stores draw from 500 000 000 up, far above the bulk range.
    let next = Arc::new(AtomicU64::new(500_000_000));
    let bulk_seq = Arc::new(AtomicU64::new(0));
    let mut loaded = 0u64;
    let mut bulk_seconds = 0.0;
    let mut rows = Vec::new();
    for checkpoint in checkpoints {
        let requests = (checkpoint - loaded) / BULK;
        let seq = Arc::clone(&bulk_seq);
        let make: MakeCall = Arc::new(move |_| {
            let first = seq.fetch_add(BULK, Ordering::Relaxed);
            let pans: Vec<String> = (first..first + BULK).map(pan).collect();
            Call::post(
                "/v1/cards/bulk",
                &json!({ "pans": pans }),
                Some(format!("bulk-{first}")),
            )
        });
        let shape = Shape {
            proto: Proto::Http1,
            connections: BULK_CONNECTIONS,
            streams: 1,
            service_pids: service.pid().into_iter().collect(),
            rate: None,
        };
        let bulk = drive(
            "bulk",
            &capture,
            &shape,
            Span::Requests(requests),
            &next,
            make,
            |s| s == 200,
        )
        .await;
        assert_eq!(bulk.errors, 0, "bulk load failed: {:?}", bulk.first_error);
        loaded += bulk.ok * BULK;
        bulk_seconds += bulk.elapsed.as_secs_f64();

        let wide = Shape {
            proto: Proto::Http1,
            connections: args.connections,
            streams: 1,
            service_pids: service.pid().into_iter().collect(),
            rate: None,
        };
        let span = Span::Seconds(args.seconds);
        let store_make: MakeCall =
            Arc::new(|seq| Call::post("/v1/cards", &json!({ "pan": pan(seq) }), Some(format!("s{seq}"))));
        let store = drive("store", &capture, &wide, span, &next, store_make, |s| s == 201).await;
        loaded += store.ok;
        let t = Arc::clone(&tokens);
        let read_make: MakeCall =
            Arc::new(move |seq| Call::get(format!("/v1/tokens/{}", t[seq as usize % t.len()])));
        let read = drive("read", &orchestrator, &wide, span, &next, read_make, |s| s == 200).await;

        let bytes = dir_bytes(&service.data_dir());
        let rss_mib = service.pid().map_or(0.0, rss_kib) / 1024.0;
        let bulk_rate = bulk.ok as f64 * BULK as f64 / bulk.elapsed.as_secs_f64();
        println!(
            "{:>9} {:>11.0} {:>9.1} {:>9.1} {:>11.0} {:>8.2} {:>8.2} {:>11.0} {:>8.2} {:>8.2} {:>9.0} {:>8.0} {:>7.1}",
            loaded,
            bulk_rate,
            bulk.ms(0.5),
            bulk.ms(0.99),
            store.rate(),
            store.ms(0.5),
            store.ms(0.99),
            read.rate(),
            read.ms(0.5),
            read.ms(0.99),
            bytes as f64 / loaded as f64,
            rss_mib,
            bulk_seconds
        );
        rows.push(json!({
            "cards": loaded, "bulk_cards_per_s": bulk_rate, "bulk_request_p50_ms": bulk.ms(0.5),
            "bulk_request_p99_ms": bulk.ms(0.99), "store_card": store.json(Bases::NONE),
            "read_token": read.json(Bases::NONE), "bytes_on_disk": bytes,
            "bytes_per_card": bytes as f64 / loaded as f64, "service_rss_mib": rss_mib,
            "errors": store.errors + read.errors,
            "bulk_seconds_so_far": bulk_seconds, "cache_mib": args.cache_mib.unwrap_or(1024),
        }));
    }
    let report = json!({ "machine": crate::stats::machine(), "scale": rows });
    let path = args.json.with_file_name(match args.cache_mib {
        Some(mib) => format!("scale-report-cache-{mib}.json"),
        None => "scale-report.json".to_owned(),
    });
    std::fs::write(&path, serde_json::to_vec_pretty(&report).expect("JSON")).expect("write JSON");
    println!("JSON: {}", path.display());
}

/// Bytes of every file under `dir` (the store's files).
fn dir_bytes(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match entry.metadata() {
                Ok(m) if m.is_dir() => stack.push(entry.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// Resident memory of process `pid`, KiB.
fn rss_kib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}
