//! The bulk card path over mutual TLS: one durable write, one audit record
//! per card, refused whole (naming the item) when any card is invalid.

mod common;

use common::service::{Options, Service};
use common::{random_pan, world::key};
use serde_json::{json, Value};

#[tokio::test]
async fn a_bulk_store_is_audited_per_card_and_refused_whole_on_one_bad_card() {
    let service = Service::start(Options::default());
    let capture = service.client("card-capture");
    let before = capture
        .post_json("/v1/cards", Some(&key()), &json!({ "pan": random_pan(1) }))
        .await
        .unwrap();
    assert_eq!(before.status, 201);
    let old_ref = before.json()["card_ref"].clone();

    // One card stored before, one new, and the new one again.
    let pans = [random_pan(1), random_pan(2), random_pan(2)];
    let r = capture
        .post_json("/v1/cards/bulk", Some(&key()), &json!({ "pans": pans }))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let cards = r.json()["cards"].as_array().unwrap().clone();
    let flags: Vec<Value> = cards.iter().map(|c| c["already_stored"].clone()).collect();
    assert_eq!(flags, [json!(true), json!(false), json!(true)]);
    assert_eq!(cards[0]["card_ref"], old_ref);
    assert_eq!(cards[1]["card_ref"], cards[2]["card_ref"]);
    assert!(!r.text().contains(&pans[1]), "no PAN in the answer");

    // A Luhn error in item 2 refuses everything: item 0 is not stored.
    let mut bad = random_pan(3);
    let last = bad.pop().unwrap();
    bad.push(if last == '0' { '1' } else { '0' });
    let refused = capture
        .post_json(
            "/v1/cards/bulk",
            Some(&key()),
            &json!({ "pans": [random_pan(4), random_pan(5), bad] }),
        )
        .await
        .unwrap();
    assert_eq!(refused.status, 422, "{}", refused.text());
    assert_eq!(refused.header("content-type"), Some("application/problem+json"));
    assert_eq!(
        (refused.json()["field"].clone(), refused.json()["rule"].clone()),
        (json!("pans[2]"), json!("luhn"))
    );
    assert!(!refused.text().contains(&bad));
    let again = capture
        .post_json("/v1/cards", Some(&key()), &json!({ "pan": random_pan(4) }))
        .await
        .unwrap();
    assert_eq!(again.status, 201, "the refused batch stored nothing");

    let too_many: Vec<String> = (0..501).map(|i| random_pan(100 + i)).collect();
    let big = capture
        .post_json("/v1/cards/bulk", Some(&key()), &json!({ "pans": too_many }))
        .await
        .unwrap();
    assert_eq!(big.status, 422, "{}", big.text());
    assert_eq!(
        (big.json()["field"].clone(), big.json()["rule"].clone()),
        (json!("pans"), json!("count"))
    );

    // One audit record per card of the accepted batch, each naming its card.
    let export = service
        .client("auditor")
        .get("/v1/audit/export")
        .await
        .unwrap()
        .text();
    let bulk: Vec<Value> = export
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| {
            r["operation"] == "card.store" && r["detail"].as_str().is_some_and(|d| d.starts_with("bulk"))
        })
        .collect();
    assert_eq!(
        bulk.len(),
        3 + 2,
        "three cards, the refused batch and the oversize one: {bulk:?}"
    );
    for card in &cards {
        assert!(bulk.iter().any(|r| r["object"] == card["card_ref"]));
    }
    let verify = service.audit_verify().await;
    assert_eq!(verify["intact"], true);
}
