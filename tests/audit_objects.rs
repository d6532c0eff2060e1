//! Only parsed values reach the audit trail: a card number sent in every
//! path slot of every documented route, by every role (allowed or denied),
//! appears in no audit record; it is recorded as an `unparsed:` digest.

mod common;

use common::service::{Options, Service};

/// Public test PANs: a Visa test number and a UnionPay one.
const PANS: [&str; 2] = ["4242424242424242", "6205500000000000004"];

#[tokio::test]
async fn a_card_number_in_any_path_slot_is_never_an_audit_object() {
    let service = Service::start(Options::default());
    let mut sent = 0;
    for pan in PANS {
        let routes = common::routes::every_route_with(pan, true);
        assert!(routes.len() > 20, "the OpenAPI document lists the routes");
        let roles = tokenvault::tls::pki::ROLES.iter().chain([&"bank-sim"]);
        for role in roles {
            let client = service.client(role);
            // A free-form id (a user id) may be all digits and answer 200;
            // what matters is what the trail keeps.
            let answers =
                common::routes::sweep(&client, role, &routes, &[("Idempotency-Key", "pan-probe")]).await;
            sent += answers.len();
        }
    }
    let export = service.audit_export().await;
    let records: Vec<serde_json::Value> = export.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(records.len() >= sent / 2, "the probes were audited");
    for pan in PANS {
        let leaks: Vec<String> = records
            .iter()
            .filter(|r| r.to_string().contains(pan))
            .map(|r| format!("{} {} {}", r["operation"], r["outcome"], r["detail"]))
            .collect();
        assert!(
            leaks.is_empty(),
            "a PAN sent in a path reached the audit trail: {leaks:#?}"
        );
    }
    let unparsed = records
        .iter()
        .filter(|r| r["object"].as_str().is_some_and(|o| o.starts_with("unparsed:")))
        .count();
    assert!(unparsed > 0, "refused path values are recorded as digests");
}

/// Every read by id refuses a malformed id the same way: 422 naming the
/// path field, and one `refused` record of that operation whose object is
/// a digest (before the `Read` runner, card, identity and token reads
/// refused without a record).
#[tokio::test]
async fn a_malformed_id_on_every_read_is_refused_and_audited() {
    let service = Service::start(Options::default());
    let client = service.client("orchestrator");
    let reads = [
        ("/v1/cards/crd_nope", "card.read", "card_ref"),
        ("/v1/identities/idn_nope", "identity.read", "identity_ref"),
        ("/v1/tokens/12345", "token.read", "token"),
        ("/v1/cards/crd_nope/tokens", "token.list", "card_ref"),
        ("/v1/bindings/bnd_nope", "binding.read", "binding_id"),
        ("/v1/payments/pay_nope", "payment.read", "payment_id"),
        ("/v1/payments/pay_nope/refunds/r-1", "payment.read", "payment_id"),
        ("/v1/merchants/M001/orders/o%20x", "payment.read", "order_id"),
    ];
    for (path, _, field) in reads {
        let r = client.get(path).await.unwrap();
        assert_eq!(r.status, 422, "{path}: {}", r.text());
        assert_eq!(r.json()["field"], field, "{path}");
    }
    let export = service.audit_export().await;
    let records: Vec<serde_json::Value> = export.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for (path, operation, field) in reads {
        let refused = records
            .iter()
            .filter(|r| r["operation"] == operation && r["outcome"] == "refused")
            .filter(|r| {
                r["detail"]
                    .as_str()
                    .is_some_and(|d| d.starts_with(&format!("{field}.")))
            })
            .filter(|r| r["object"].as_str().is_some_and(|o| o.starts_with("unparsed:")))
            .count();
        let seen: Vec<_> = records.iter().filter(|r| r["operation"] == operation).collect();
        let expected = reads
            .iter()
            .filter(|(_, o, f)| *o == operation && *f == field)
            .count();
        assert_eq!(
            refused, expected,
            "{path}: one audited refusal of {operation}: {seen:?}"
        );
    }
}

/// A path whose every id is well formed (so a request gets as far as its
/// body): the id kinds' own shapes, a token in the default token range.
fn with_valid_ids(template: &str) -> String {
    let token = common::with_check_digit("810000123456789");
    let hex = "0".repeat(32);
    template
        .replace("{token}", &token)
        .replace("{card_ref}", &format!("crd_{hex}"))
        .replace("{identity_ref}", &format!("idn_{hex}"))
        .replace("{binding_id}", &format!("bnd_{hex}"))
        .replace("{payment_id}", &format!("pay_{hex}"))
        .replace("{user_id}", "u-1")
        .replace("{channel}", "bank-a")
        .replace("{merchant}", "M001")
        .replace("{order_id}", "o-1")
        .replace("{refund_id}", "r-1")
}

/// A body for `schema` with every text slot (and every list of text) set
/// to `pan`, numbers 1, flags false, nested objects empty.
fn body_of(doc: &serde_json::Value, schema: &serde_json::Value, pan: &str) -> serde_json::Value {
    let schema = match schema["$ref"].as_str() {
        Some(reference) => {
            &doc["components"]["schemas"][reference.trim_start_matches("#/components/schemas/")]
        }
        None => schema,
    };
    let mut body = serde_json::Map::new();
    for (name, property) in schema["properties"].as_object().into_iter().flatten() {
        let kind = property["type"].as_str().or_else(|| property["type"][0].as_str());
        let value = match kind {
            Some("string") => serde_json::json!(pan),
            Some("array") => serde_json::json!([pan]),
            Some("integer") | Some("number") => serde_json::json!(1),
            Some("boolean") => serde_json::json!(false),
            _ => serde_json::json!({}),
        };
        body.insert(name.clone(), value);
    }
    serde_json::Value::Object(body)
}

/// A card number in every text slot of every documented request body, by
/// every role, with well-formed path ids so each body is read: it appears
/// in no audit record (a refusal names field and rule; a free-form id that
/// holds one is a digest).
#[tokio::test]
async fn a_card_number_in_any_body_slot_is_never_in_the_trail() {
    let service = Service::start(Options::default());
    let doc: serde_json::Value =
        serde_json::from_str(&tokenvault::api::document().to_json().unwrap()).unwrap();
    let mut sent = 0;
    for pan in PANS {
        for (template, item) in doc["paths"].as_object().unwrap() {
            let Some(schema) = item["post"]["requestBody"]["content"]["application/json"].get("schema")
            else {
                continue;
            };
            let body = serde_json::to_vec(&body_of(&doc, schema, pan)).unwrap();
            let path = with_valid_ids(template);
            for role in tokenvault::tls::pki::ROLES {
                // A key of its own per request, so each body is read (a
                // reused key with another body is refused before it).
                let key = format!("body-probe-{sent}");
                let r = service
                    .client(role)
                    .send(
                        "POST",
                        &path,
                        &[("Content-Type", "application/json"), ("Idempotency-Key", &key)],
                        Some(&body),
                    )
                    .await
                    .unwrap();
                assert!(r.status < 500, "{role} POST {path}: {} {}", r.status, r.text());
                assert!(
                    !r.text().contains(pan),
                    "{role} POST {path}: the answer echoes the PAN"
                );
                sent += 1;
            }
        }
    }
    assert!(sent > 40, "request bodies were probed: {sent}");
    let export = service.audit_export().await;
    let read_bodies = export.lines().filter(|l| l.contains("\"refused\"")).count();
    assert!(
        read_bodies > 20,
        "bodies were read and refused by field: {read_bodies}"
    );
    for pan in PANS {
        let leaks: Vec<&str> = export.lines().filter(|l| l.contains(pan)).collect();
        assert!(
            leaks.is_empty(),
            "a PAN sent in a body reached the audit trail: {leaks:#?}"
        );
    }
}
