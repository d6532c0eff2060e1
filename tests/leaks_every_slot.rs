//! Issue 17, item 2: no input in clear anywhere. A test card number, a
//! test resident ID number and a test mobile number, each sent in every
//! slot a caller controls (every path parameter of every documented route,
//! the query string, the Idempotency-Key and x-request-id headers, and the
//! identifiers of real writes), appear in no store file, log line, metric,
//! audit record or answer, in clear, hex or UTF-16. Identifiers that hold
//! one are refused by name; an Idempotency-Key is kept only as a keyed
//! digest.

mod common;

use common::service::{Options, Service};
use serde_json::{json, Value};

fn controls(merchants: Value) -> Value {
    let now = tokenvault::domain::time::Timestamp::now().seconds();
    json!({"max_uses": 2, "per_transaction_limit": 100, "cumulative_limit": 100, "currency": "CNY",
           "valid_from": now - 60, "valid_until": now + 3600, "channels": ["bank-a"], "merchants": merchants})
}

/// The value in clear, as hex (both cases) and as UTF-16 (both orders).
fn encodings(value: &str) -> Vec<Vec<u8>> {
    let hex: String = value.bytes().map(|b| format!("{b:02x}")).collect();
    let utf16 = |big: bool| -> Vec<u8> {
        value
            .encode_utf16()
            .flat_map(|u| if big { u.to_be_bytes() } else { u.to_le_bytes() })
            .collect()
    };
    vec![
        value.as_bytes().to_vec(),
        hex.clone().into_bytes(),
        hex.to_uppercase().into_bytes(),
        utf16(false),
        utf16(true),
    ]
}

fn data_files(dir: &std::path::Path) -> Vec<u8> {
    common::files_under(dir)
        .into_iter()
        .flat_map(|(_, bytes)| bytes)
        .collect()
}

#[tokio::test]
async fn personal_numbers_in_every_caller_slot_are_stored_logged_and_audited_nowhere() {
    let data = common::test_data::cards();
    let pan = data
        .iter()
        .find(|c| c.luhn_valid && c.pan.len() == 16)
        .unwrap()
        .pan
        .clone();
    let other_pan = data
        .iter()
        .find(|c| c.luhn_valid && c.pan != pan && c.expected_rule.is_empty())
        .unwrap()
        .pan
        .clone();
    let id_number = "11010519491231002X".to_owned();
    let phone = "13800138000".to_owned();
    let secrets = [pan.clone(), id_number.clone(), phone.clone()];

    let mut service = Service::start(Options::default());
    let mut answers: Vec<String> = Vec::new();
    for secret in &secrets {
        // Every route, every role that may call something: the value in
        // each path slot, the query string and both headers.
        for role in ["orchestrator", "card-capture", "auditor", "key-admin"] {
            let client = service.client(role);
            let routes: Vec<common::routes::Route> = common::routes::every_route_with(secret, false)
                .into_iter()
                .map(|route| common::routes::Route {
                    path: format!("{}?after={secret}&limit={secret}&q={secret}", route.path),
                    ..route
                })
                .collect();
            let headers = [
                ("Idempotency-Key", secret.as_str()),
                ("x-request-id", secret.as_str()),
            ];
            answers.extend(common::routes::sweep(&client, role, &routes, &headers).await);
        }
        // Writes that succeed: the value as the Idempotency-Key of a stored card.
        let capture = service.client("card-capture");
        let r = capture
            .post_json(
                "/v1/cards",
                Some(&format!("{secret}.card")),
                &json!({ "pan": other_pan }),
            )
            .await
            .unwrap();
        assert!(r.status == 201 || r.status == 200, "{}", r.text());
        let card = r.json()["card_ref"].as_str().unwrap().to_owned();
        answers.push(r.text());
        // Identifiers a caller chooses refuse it by name.
        let orchestrator = service.client("orchestrator");
        let r = orchestrator
            .post_json(
                "/v1/tokens",
                Some(&format!("{secret}.merchant")),
                &json!({ "card_ref": card, "controls": controls(json!([secret])) }),
            )
            .await
            .unwrap();
        let rule = r.json()["rule"].as_str().unwrap_or_default().to_owned();
        assert!(
            r.status == 422 && rule.ends_with("_like") && r.json()["field"] == "controls.merchant",
            "{}",
            r.text()
        );
        answers.push(r.text());
        let r = orchestrator
            .post_json(
                "/v1/tokens",
                Some(&format!("{secret}.token")),
                &json!({ "card_ref": card, "controls": controls(json!(["M001"])) }),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 201, "{}", r.text());
        answers.push(r.text());
    }
    let answers = answers.concat();
    let export = service.audit_export().await;
    let metrics = service.client("monitor").get("/metrics").await.unwrap().text();
    service.kill();
    let log = service.log();
    assert!(
        log.contains("DEVELOPMENT KEY-ENCRYPTING KEY"),
        "the log was captured"
    );
    let files = data_files(&service.stored_dir());
    for secret in &secrets {
        for encoded in encodings(secret) {
            for (place, haystack) in [
                ("answers", answers.as_bytes()),
                ("service log", log.as_bytes()),
                ("audit export", export.as_bytes()),
                ("metrics", metrics.as_bytes()),
                ("data files", &files[..]),
            ] {
                assert!(
                    memchr::memmem::find(haystack, &encoded).is_none(),
                    "a test personal number ({} characters) appears in the {place}",
                    secret.len()
                );
            }
        }
    }
}
