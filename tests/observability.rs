//! What operators see, against the real binary over mutual TLS: request ids
//! (kept when well formed, made otherwise, echoed and audited), the access
//! log as JSON lines naming route templates only, the audit page's query
//! string through axum's `Query`, and the metrics families (audit head,
//! audited outcomes, key age, seal) agreeing with the trail.

mod common;

use common::service::{Options, Service};
use serde_json::{json, Value};

const PAN: &str = "6205500000000000004";

fn is_fresh_id(id: &str) -> bool {
    id.len() == 24 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[tokio::test]
async fn request_ids_access_log_audit_query_and_metrics() {
    let mut service = Service::prepare(Options::default());
    service.spawn_with(&["--log-format", "json"]);
    let capture = service.client("card-capture");
    let auditor = service.client("auditor");

    // A well-formed caller id is kept, echoed and written to the audit record.
    let r = capture
        .send(
            "POST",
            "/v1/cards",
            &[
                ("Content-Type", "application/json"),
                ("Idempotency-Key", "obs-1"),
                ("x-request-id", "checkout-42_a"),
            ],
            Some(json!({ "pan": PAN }).to_string().as_bytes()),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("x-request-id"), Some("checkout-42_a"));
    let card_ref = r.json()["card_ref"].as_str().unwrap().to_owned();

    // A malformed one (a card number with a space, too long, repeated) is
    // replaced by a fresh random id; none at all gets one too. (The capture
    // role may not read cards: four denials, each audited.)
    for headers in [
        vec![("x-request-id", "6205500000000000004 x")],
        vec![("x-request-id", &*"a".repeat(65))],
        vec![("x-request-id", "one"), ("x-request-id", "two")],
        vec![],
    ] {
        let r = capture
            .send("GET", &format!("/v1/cards/{card_ref}"), &headers, None)
            .await
            .unwrap();
        let id = r.header("x-request-id").unwrap_or_default();
        assert!(is_fresh_id(id), "{headers:?} answered with id {id:?}");
    }

    // The audit page's query string, percent-decoded by axum's Query.
    let page = auditor.get("/v1/audit?limit=%32").await.unwrap();
    assert_eq!(page.status, 200, "{}", page.text());
    let records = page.json()["records"].as_array().unwrap().clone();
    assert_eq!(records.len(), 2);
    let all = auditor.get("/v1/audit?limit=1000").await.unwrap().json();
    let stored = all["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["operation"] == "card.store")
        .unwrap()
        .clone();
    assert_eq!(stored["request_id"], "checkout-42_a");
    for (query, field, rule) in [
        ("limit=2&limit=3", "limit", "repeated"),
        ("limit=0", "limit", "range"),
        ("after=-1", "after", "integer"),
        ("limit=1%2C2", "limit", "integer"),
        ("cursor=5", "query", "unknown_parameter"),
    ] {
        let r = auditor.get(&format!("/v1/audit?{query}")).await.unwrap();
        assert_eq!(r.status, 400, "{query}: {}", r.text());
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
        let p = r.json();
        assert_eq!(
            (p["field"].as_str(), p["rule"].as_str()),
            (Some(field), Some(rule)),
            "{query}: {p}"
        );
    }

    // Metrics agree with the trail: the head's sequence, card.store counted
    // once as a success, the four denied reads, the data key's age.
    let verify = auditor.get("/v1/audit/verify").await.unwrap().json();
    let metrics = service.client("monitor").get("/metrics").await.unwrap().text();
    common::assert_openmetrics(&metrics);
    let value = |name: &str| -> f64 {
        common::metric_value(&metrics, name).unwrap_or_else(|| panic!("{name} missing in\n{metrics}"))
    };
    assert_eq!(value("tokenvault_sealed"), 0.0);
    // The verify and metrics calls add records of their own after the head
    // verify saw.
    assert!(value("tokenvault_audit_head_seq") >= verify["head_seq"].as_f64().unwrap());
    assert_eq!(
        value("tokenvault_audited_operations_total{operation=\"card.store\",outcome=\"success\"}"),
        1.0
    );
    assert_eq!(
        value("tokenvault_audited_operations_total{operation=\"card.read\",outcome=\"denied\"}"),
        4.0
    );
    assert!(value("tokenvault_data_key_age_seconds{version=\"1\"}") >= 0.0);
    assert_eq!(value("tokenvault_rewrap_running"), 0.0);

    // The access log: one JSON object per line; each response line carries
    // the request's id, method, route template and caller, never the path.
    let log = service.log();
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(!lines.is_empty(), "no JSON log lines in\n{log}");
    let access: Vec<&Value> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "finished processing request")
        .collect();
    let store_line = access
        .iter()
        .find(|l| l["span"]["id"] == "checkout-42_a")
        .unwrap_or_else(|| panic!("no access line for the stored card in\n{log}"));
    assert_eq!(store_line["span"]["method"], "POST");
    assert_eq!(store_line["span"]["route"], "/v1/cards");
    assert_eq!(store_line["span"]["caller"], "spiffe://tokenvault/card-capture");
    assert!(access
        .iter()
        .any(|l| l["span"]["route"] == "/v1/cards/{card_ref}"));
    assert!(!log.contains(&card_ref), "a path value reached the log");
    assert!(!log.contains(PAN), "a card number reached the log");
    service.kill();
}
