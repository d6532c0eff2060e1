//! The API as its users call it, over mutual TLS against the real binary:
//! the card → token → read → suspend → resume → delete cycle, break-glass
//! reveal, bad input (4xx problem documents that name field and rule, store
//! nothing, leak nothing), idempotency, and at the end a scan of the service
//! log, the audit export and the raw data files for any test plaintext.

mod common;

use common::service::{Options, Service};
use serde_json::{json, Value};
use tokenvault::store::Store;

const PAN: &str = "6205500000000000004";
const NAME: &str = "欧阳娜娜";
const ID_NUMBER: &str = "11010519491231002X";
const PHONE: &str = "13800138000";

fn controls(max_uses: u32) -> Value {
    let now = tokenvault::domain::time::Timestamp::now().seconds();
    json!({"max_uses": max_uses, "per_transaction_limit": 50_000, "cumulative_limit": 200_000, "currency": "CNY",
        "valid_from": now - 60, "valid_until": now + 86_400, "channels": ["icbc-quickpay", "unionpay"], "merchants": ["M1"]})
}

fn assert_problem(r: &common::service::Response, status: u16, field: &str, rule: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let p = r.json();
    assert!(p["type"].as_str().unwrap().starts_with("urn:tokenvault:problem:"));
    assert_eq!(
        (p["field"].as_str(), p["rule"].as_str()),
        (Some(field), Some(rule)),
        "{p}"
    );
}

async fn run_everything(service: &Service) -> Vec<String> {
    let capture = service.client("card-capture");
    let orchestrator = service.client("orchestrator");
    let mut secrets = vec![
        PAN.to_owned(),
        NAME.to_owned(),
        ID_NUMBER.to_owned(),
        PHONE.to_owned(),
    ];

    // --- card → token → read → suspend → resume → delete
    let card = capture
        .post_json(
            "/v1/cards",
            Some("card-1"),
            &json!({"pan": "6205 5000 0000 0000 004"}),
        )
        .await
        .unwrap();
    assert_eq!(card.status, 201, "{}", card.text());
    let card = card.json();
    assert_eq!(card["masked_pan"], "620550*********0004");
    assert_eq!(card["network"], "unionpay");
    assert_eq!(card["already_stored"], false);
    let card_ref = card["card_ref"].as_str().unwrap().to_owned();

    let identity = capture
        .post_json("/v1/identities", Some("id-1"), &json!({"name": NAME, "id_number": "11010519491231002x", "phone": "+86 13800138000".replace(' ', "")}))
        .await
        .unwrap();
    assert_eq!(identity.status, 201, "{}", identity.text());
    assert_eq!(identity.json()["masked_phone"], "138****8000");

    let issued = orchestrator
        .post_json(
            "/v1/tokens",
            Some("tok-1"),
            &json!({"card_ref": card_ref, "controls": controls(5)}),
        )
        .await
        .unwrap();
    assert_eq!(issued.status, 201, "{}", issued.text());
    let token = issued.json()["token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), PAN.len());
    assert_ne!(token, PAN);
    let read = orchestrator
        .get(&format!("/v1/tokens/{token}"))
        .await
        .unwrap()
        .json();
    assert_eq!(read["status"], "active");
    assert_eq!(read["masked_pan"], "620550*********0004");
    assert_eq!(read["controls"]["max_uses"], 5);
    assert!(!read.to_string().contains(PAN));
    for (step, status) in [
        ("suspend", "suspended"),
        ("resume", "active"),
        ("delete", "deleted"),
    ] {
        let r = orchestrator
            .send(
                "POST",
                &format!("/v1/tokens/{token}/{step}"),
                &[("Idempotency-Key", step)],
                None,
            )
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{step}: {}", r.text());
        assert_eq!(r.json()["status"], status);
    }
    let again = orchestrator
        .send(
            "POST",
            &format!("/v1/tokens/{token}/resume"),
            &[("Idempotency-Key", "resume-2")],
            None,
        )
        .await
        .unwrap();
    assert_eq!(again.status, 409, "deleted is final");

    // --- reveal: break-glass only, under dual control, rate-limited
    let glass = service.client("break-glass");
    let reveal_path = format!("/v1/cards/{card_ref}/reveal");
    let no_basis = glass
        .post_json(&reveal_path, Some("rv-nothing"), &json!({}))
        .await
        .unwrap();
    assert_problem(&no_basis, 400, "request_id", "missing_field");
    let both = glass
        .post_json(
            &reveal_path,
            Some("rv-both"),
            &json!({"reason": "dispute CB-7 review", "request_id": "rvq_00000000000000000000000000000000"}),
        )
        .await
        .unwrap();
    assert_problem(&both, 422, "reason", "with_request_id");
    let alone = glass
        .post_json(
            &reveal_path,
            Some("rv-alone"),
            &json!({"reason": "dispute CB-7 review"}),
        )
        .await
        .unwrap();
    assert_problem(&alone, 422, "request_id", "required");
    assert!(alone.json()["type"]
        .as_str()
        .unwrap()
        .ends_with(":reveal-approval"));
    let short = glass
        .post_json(
            &format!("/v1/cards/{card_ref}/reveal-requests"),
            Some("rv-short"),
            &json!({"reason": "x"}),
        )
        .await
        .unwrap();
    assert_problem(&short, 422, "reason", "reason");
    for role in [
        "card-capture",
        "orchestrator",
        "auditor",
        "key-admin",
        "monitor",
        "reveal-approver",
    ] {
        for (path, operation) in [
            (reveal_path.clone(), "card.reveal"),
            (
                format!("/v1/cards/{card_ref}/reveal-requests"),
                "card.reveal_request",
            ),
        ] {
            let r = service
                .client(role)
                .post_json(
                    &path,
                    Some("rv-denied"),
                    &json!({"reason": "dispute CB-7 review"}),
                )
                .await
                .unwrap();
            assert_eq!(r.status, 403, "{role} must not {operation}");
            assert_eq!(
                (r.header("content-type"), r.json()["operation"].as_str()),
                (Some("application/problem+json"), Some(operation)),
                "a 403 names the operation denied: {}",
                r.text()
            );
        }
    }
    // The requester cannot approve their own request; the approver can.
    let request = service
        .reveal_request(&card_ref, "dispute CB-7 review", "rv-once")
        .await;
    let own = glass
        .post_empty(&format!("/v1/reveal-requests/{request}/approve"), "rv-own")
        .await
        .unwrap();
    assert_eq!(
        (own.status, own.json()["operation"].as_str()),
        (403, Some("reveal.approve"))
    );
    let unapproved = glass
        .post_json(&reveal_path, Some("rv-early"), &json!({"request_id": request}))
        .await
        .unwrap();
    assert_problem(&unapproved, 409, "request_id", "not_approved");
    service.approve_reveal(&request, "rv-once").await;
    let revealed = glass
        .post_json(&reveal_path, Some("rv-once"), &json!({"request_id": request}))
        .await
        .unwrap();
    assert_eq!(revealed.status, 200, "{}", revealed.text());
    assert_eq!(revealed.json()["pan"], PAN);
    assert_eq!(revealed.header("cache-control"), Some("no-store"));
    // A retry with the same key is not answered with the number again:
    // the vault never stored it to replay it.
    let retried = glass
        .post_json(&reveal_path, Some("rv-once"), &json!({"request_id": request}))
        .await
        .unwrap();
    assert_problem(&retried, 409, "Idempotency-Key", "reveal_once");
    assert_eq!(retried.header("idempotent-replayed"), Some("true"));
    assert!(!retried.text().contains(PAN), "{}", retried.text());
    // One approval, one reveal: a new key finds the request used up.
    let reused = glass
        .post_json(&reveal_path, Some("rv-reuse"), &json!({"request_id": request}))
        .await
        .unwrap();
    assert_eq!(reused.status, 404, "{}", reused.text());
    // Without a key, a reveal is refused before anything is opened.
    let keyless = glass
        .post_json(&reveal_path, None, &json!({"request_id": request}))
        .await
        .unwrap();
    assert_problem(&keyless, 400, "Idempotency-Key", "required");
    let mut limited = None;
    for attempt in 0..3 {
        limited = Some(
            service
                .reveal_approved(&card_ref, "dispute CB-7 review", &format!("rv-limit-{attempt}"))
                .await,
        );
    }
    let limited = limited.unwrap();
    assert_eq!(limited.status, 429, "reveals_per_hour = 3 in this test");
    assert!(limited.header("retry-after").is_some());

    // --- idempotency
    let first = capture
        .post_json(
            "/v1/cards",
            Some("card-2"),
            &json!({"pan": "4000 0566 5566 5556"}),
        )
        .await
        .unwrap();
    let replay = capture
        .post_json(
            "/v1/cards",
            Some("card-2"),
            &json!({"pan": "4000 0566 5566 5556"}),
        )
        .await
        .unwrap();
    assert_eq!((first.status, replay.status), (201, 201));
    assert_eq!(first.json(), replay.json());
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    let reused = capture
        .post_json("/v1/cards", Some("card-2"), &json!({"pan": "5555555555554444"}))
        .await
        .unwrap();
    assert_problem(&reused, 422, "Idempotency-Key", "reused");
    let missing = capture
        .post_json("/v1/cards", None, &json!({"pan": "5555555555554444"}))
        .await
        .unwrap();
    assert_problem(&missing, 400, "Idempotency-Key", "required");
    // One body for both calls: `controls` reads the clock, and a retry is
    // the same request only if it is the same bytes.
    let issue = json!({"card_ref": card_ref, "controls": controls(1)});
    let t1 = orchestrator
        .post_json("/v1/tokens", Some("tok-2"), &issue)
        .await
        .unwrap()
        .json();
    let t2 = orchestrator
        .post_json("/v1/tokens", Some("tok-2"), &issue)
        .await
        .unwrap()
        .json();
    assert_eq!(t1["token"], t2["token"], "the same key issues one token");
    let listed = orchestrator
        .get(&format!("/v1/cards/{card_ref}/tokens"))
        .await
        .unwrap()
        .json();
    assert_eq!(
        listed["tokens"].as_array().unwrap().len(),
        2,
        "tok-1 and tok-2 only"
    );
    secrets.push("4000056655665556".into());

    // --- bad input: field and rule named, nothing stored, nothing echoed
    let bad_cards: [(&[u8], u16, &str, &str); 9] = [
        (br#"{"pan": "4242424242424241"}"#, 422, "pan", "luhn"),
        (br#"{"pan": "424242424242"}"#, 422, "pan", "length"),
        (br#"{"pan": "4242-4242-4242-424x"}"#, 422, "pan", "digits_only"),
        (br#"{"pan": 4242424242424242}"#, 400, "pan", "wrong_type"),
        (
            br#"{"pan": "4242424242424242", "cvv": "123"}"#,
            400,
            "cvv",
            "unknown_field",
        ),
        (
            br#"{"pan": "4242424242424242", "expiry": "12/30"}"#,
            400,
            "expiry",
            "unknown_field",
        ),
        (br#"{"pan": "4242424242424242""#, 400, "body", "json_syntax"),
        (br#"[]"#, 400, "body", "invalid_value"),
        (
            br#"{"pan": "4242424242424242", "pan": "4000056655665556"}"#,
            400,
            "pan",
            "duplicate_field",
        ),
    ];
    for (i, (body, status, field, rule)) in bad_cards.iter().enumerate() {
        let key = format!("bad-{i}");
        let r = capture
            .send(
                "POST",
                "/v1/cards",
                &[("Content-Type", "application/json"), ("Idempotency-Key", &key)],
                Some(body),
            )
            .await
            .unwrap();
        assert_problem(&r, *status, field, rule);
        assert!(!r.text().contains("424242424242"), "no echo of the input");
    }
    secrets.push("4242424242424241".into());
    // Every field at fault is listed (the first stays `field`/`rule`), and
    // the audited refusal names them all.
    let r = capture
        .send(
            "POST",
            "/v1/cards",
            &[
                ("Content-Type", "application/json"),
                ("Idempotency-Key", "bad-all"),
            ],
            Some(br#"{"pan": 4242424242424242, "cvv": "123", "expiry": "12/30"}"#),
        )
        .await
        .unwrap();
    assert_problem(&r, 400, "pan", "wrong_type");
    let mut named: Vec<String> = r.json()["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{}.{}", e["field"].as_str().unwrap(), e["rule"].as_str().unwrap()))
        .collect();
    named.sort();
    assert_eq!(
        named,
        ["cvv.unknown_field", "expiry.unknown_field", "pan.wrong_type"]
    );
    assert!(!r.text().contains("424242424242"), "no echo of the input");
    let r = capture
        .send(
            "POST",
            "/v1/cards",
            &[("Content-Type", "text/plain"), ("Idempotency-Key", "bad-ct")],
            Some(b"4242424242424242"),
        )
        .await
        .unwrap();
    assert_problem(&r, 415, "Content-Type", "application_json");
    let huge = format!(r#"{{"pan": "{}"}}"#, "4".repeat(20_000));
    let r = capture
        .send(
            "POST",
            "/v1/cards",
            &[
                ("Content-Type", "application/json"),
                ("Idempotency-Key", "bad-big"),
            ],
            Some(huge.as_bytes()),
        )
        .await
        .unwrap();
    assert_problem(&r, 413, "body", "too_large");
    let bad_identities = [
        (
            json!({"name": "张三", "id_number": "110105194912310021", "phone": PHONE}),
            "id_number",
            "check_character",
        ),
        (
            json!({"name": "张三", "id_number": "110105199902300015", "phone": PHONE}),
            "id_number",
            "birth_date",
        ),
        (
            json!({"name": "张三", "id_number": "110105205001010019", "phone": PHONE}),
            "id_number",
            "birth_date_in_future",
        ),
        (
            json!({"name": "张三", "id_number": ID_NUMBER, "phone": "12800138000"}),
            "phone",
            "mobile_prefix",
        ),
        (
            json!({"name": "张三", "id_number": ID_NUMBER, "phone": "1380013800"}),
            "phone",
            "length",
        ),
        (
            json!({"name": "张3", "id_number": ID_NUMBER, "phone": PHONE}),
            "name",
            "invalid_character",
        ),
        (
            json!({"name": "", "id_number": ID_NUMBER, "phone": PHONE}),
            "name",
            "empty",
        ),
    ];
    for (i, (body, field, rule)) in bad_identities.iter().enumerate() {
        let r = capture
            .post_json("/v1/identities", Some(&format!("bad-id-{i}")), body)
            .await
            .unwrap();
        assert_problem(&r, 422, field, rule);
        assert!(!r.text().contains("11010519"), "no echo");
    }
    let mut bad_controls = controls(0);
    let r = orchestrator
        .post_json(
            "/v1/tokens",
            Some("bad-tok-1"),
            &json!({"card_ref": card_ref, "controls": bad_controls}),
        )
        .await
        .unwrap();
    assert_problem(&r, 422, "controls", "out_of_range");
    bad_controls = controls(1);
    bad_controls["currency"] = json!("cny");
    let r = orchestrator
        .post_json(
            "/v1/tokens",
            Some("bad-tok-2"),
            &json!({"card_ref": card_ref, "controls": bad_controls}),
        )
        .await
        .unwrap();
    assert_problem(&r, 422, "controls.currency", "format");
    let r = orchestrator
        .post_json(
            "/v1/tokens",
            Some("bad-tok-3"),
            &json!({"card_ref": "crd_nope", "controls": controls(1)}),
        )
        .await
        .unwrap();
    assert_problem(&r, 422, "card_ref", "format");
    let r = orchestrator.get("/v1/tokens/8100000000000000").await.unwrap();
    assert_problem(&r, 422, "token", "format");
    let r = orchestrator
        .get("/v1/cards/crd_00000000000000000000000000000000")
        .await
        .unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(capture.get("/no/such/route").await.unwrap().status, 404);
    assert_eq!(
        service
            .client("monitor")
            .send("DELETE", "/metrics", &[], None)
            .await
            .unwrap()
            .status,
        405
    );

    // The audit trail is intact after all of it.
    let verify = service.audit_verify().await;
    assert_eq!(verify["intact"], true, "{verify}");
    assert!(verify["records"].as_u64().unwrap() > 40);
    secrets
}

#[tokio::test]
async fn the_api_end_to_end_leaks_nothing() {
    let mut service = Service::start(Options {
        reveals_per_hour: 3,
        ..Options::default()
    });
    let secrets = run_everything(&service).await;
    let export = service.client("auditor").get("/v1/audit/export").await.unwrap();
    assert_eq!(export.header("content-type"), Some("application/x-ndjson"));
    let export = export.text();
    assert!(export.lines().count() > 40);
    assert!(
        export.contains("\"operation\":\"card.reveal\"") && export.contains("reason: dispute CB-7 review")
    );
    let metrics = service.client("monitor").get("/metrics").await.unwrap().text();
    common::assert_openmetrics(&metrics);
    let log = service.log();
    assert!(
        log.contains("DEVELOPMENT KEY-ENCRYPTING KEY"),
        "the log was captured"
    );
    service.kill();

    // Only the two valid cards and one identity were stored.
    let store = service.open_store().await;
    assert_eq!(store.scan_prefix(b"card/", None, 100).await.unwrap().len(), 2);
    assert_eq!(store.scan_prefix(b"identity/", None, 100).await.unwrap().len(), 1);
    drop(store);

    let data: Vec<u8> = common::files_under(&service.stored_dir())
        .into_iter()
        .flat_map(|(_, bytes)| bytes)
        .collect();
    for secret in &secrets {
        for (place, haystack) in [
            ("service log", log.as_bytes()),
            ("audit export", export.as_bytes()),
            ("metrics", metrics.as_bytes()),
            ("data files", &data[..]),
        ] {
            assert!(
                memchr::memmem::find(haystack, secret.as_bytes()).is_none(),
                "a test secret ({} characters) appears in the {place}",
                secret.chars().count()
            );
        }
    }
}

/// `DELETE /v1/cards/{card_ref}` as card-capture: the card and its tokens
/// are gone (404 on both), the answer names the tokens deleted, a retry
/// with the same key replays it, another key finds nothing; the
/// orchestrator may not erase; every attempt is in the trail. The same for
/// an identity.
#[tokio::test]
async fn erasing_a_card_takes_its_tokens_with_it() {
    let service = Service::start(Options::default());
    let capture = service.client("card-capture");
    let orchestrator = service.client("orchestrator");
    let card = capture
        .post_json(
            "/v1/cards",
            Some("erase-card"),
            &json!({ "pan": "4000056655665556" }),
        )
        .await
        .unwrap();
    assert_eq!(card.status, 201, "{}", card.text());
    let card_ref = card.json()["card_ref"].as_str().unwrap().to_owned();
    let mut tokens = Vec::new();
    for i in 0..2 {
        let issued = orchestrator
            .post_json(
                "/v1/tokens",
                Some(&format!("erase-token-{i}")),
                &json!({ "card_ref": card_ref, "controls": controls(5) }),
            )
            .await
            .unwrap();
        assert_eq!(issued.status, 201, "{}", issued.text());
        tokens.push(issued.json()["token"].as_str().unwrap().to_owned());
    }
    let path = format!("/v1/cards/{card_ref}");
    let denied = orchestrator
        .send("DELETE", &path, &[("Idempotency-Key", "erase-denied")], None)
        .await
        .unwrap();
    assert_eq!(denied.status, 403, "{}", denied.text());

    let erased = capture
        .send("DELETE", &path, &[("Idempotency-Key", "erase-1")], None)
        .await
        .unwrap();
    assert_eq!(
        (erased.status, erased.json()),
        (200, json!({ "card_ref": card_ref, "tokens_deleted": 2 }))
    );
    let replay = capture
        .send("DELETE", &path, &[("Idempotency-Key", "erase-1")], None)
        .await
        .unwrap();
    assert_eq!(
        (replay.status, replay.header("idempotent-replayed")),
        (200, Some("true"))
    );
    let again = capture
        .send("DELETE", &path, &[("Idempotency-Key", "erase-2")], None)
        .await
        .unwrap();
    assert_eq!(again.status, 404, "{}", again.text());
    assert_eq!(
        orchestrator.get(&path).await.unwrap().status,
        404,
        "the card is gone"
    );
    for token in &tokens {
        let read = orchestrator.get(&format!("/v1/tokens/{token}")).await.unwrap();
        assert_eq!(read.status, 404, "{}", read.text());
    }
    let export = service.audit_export().await;
    let erasures: Vec<Value> = export
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["operation"] == "card.erase" && r["object"] == json!(card_ref))
        .collect();
    let outcomes: Vec<&str> = erasures.iter().map(|r| r["outcome"].as_str().unwrap()).collect();
    assert!(
        outcomes.contains(&"denied") && outcomes.contains(&"success") && outcomes.contains(&"not_found"),
        "{outcomes:?}"
    );
    assert!(
        erasures.iter().any(|r| r["detail"] == "tokens_deleted=2"),
        "{erasures:?}"
    );

    // An identity: gone after its erasure, once.
    let identity = capture
        .post_json(
            "/v1/identities",
            Some("erase-identity"),
            &json!({ "name": NAME, "id_number": "11010519491231002x", "phone": "13800138000" }),
        )
        .await
        .unwrap();
    assert_eq!(identity.status, 201, "{}", identity.text());
    let identity_ref = identity.json()["identity_ref"].as_str().unwrap().to_owned();
    let path = format!("/v1/identities/{identity_ref}");
    let erased = capture
        .send("DELETE", &path, &[("Idempotency-Key", "erase-identity-1")], None)
        .await
        .unwrap();
    assert_eq!(
        (erased.status, erased.json()),
        (200, json!({ "identity_ref": identity_ref }))
    );
    assert_eq!(orchestrator.get(&path).await.unwrap().status, 404);
    let again = capture
        .send("DELETE", &path, &[("Idempotency-Key", "erase-identity-2")], None)
        .await
        .unwrap();
    assert_eq!(again.status, 404, "{}", again.text());
    let export = service.audit_export().await;
    assert!(!export.contains(NAME) && !export.contains("11010519491231002"));
    assert!(export.contains("\"identity.erase\""));
    service.assert_audit_intact().await;
}

/// Retention: with `[cards] retention_s = 1`, a card left idle is erased by
/// the sweep, audited by `local:retention`.
#[tokio::test]
async fn an_idle_card_and_an_unheld_identity_are_erased_by_retention() {
    let service = Service::start(Options {
        extra_config:
            "[cards]\nretention_s = 1\nretention_check_interval_s = 1\n[identities]\nretention_s = 1\n"
                .to_owned(),
        ..Options::default()
    });
    let capture = service.client("card-capture");
    // Two identities: one a payment password is set against (held, so it
    // stays), one never used (erased).
    let mut identities = Vec::new();
    for key in ["kept-identity", "idle-identity"] {
        let identity = capture
            .post_json(
                "/v1/identities",
                Some(key),
                &json!({ "name": NAME, "id_number": "11010519491231002x", "phone": "13800138000" }),
            )
            .await
            .unwrap();
        assert_eq!(identity.status, 201, "{}", identity.text());
        identities.push(identity.json()["identity_ref"].as_str().unwrap().to_owned());
    }
    let held = capture
        .post_json(
            "/v1/payment-passwords",
            Some("hold-identity"),
            &json!({ "user_id": "retained-user", "identity_ref": identities[0], "password": "580317" }),
        )
        .await
        .unwrap();
    assert!(held.status < 300, "{}", held.text());
    let card = capture
        .post_json(
            "/v1/cards",
            Some("retained"),
            &json!({ "pan": "4000056655665556" }),
        )
        .await
        .unwrap();
    assert_eq!(card.status, 201, "{}", card.text());
    let path = format!("/v1/cards/{}", card.json()["card_ref"].as_str().unwrap());
    let orchestrator = service.client("orchestrator");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while orchestrator.get(&path).await.unwrap().status != 404 {
        assert!(std::time::Instant::now() < deadline, "the idle card is erased");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let idle = format!("/v1/identities/{}", identities[1]);
    while orchestrator.get(&idle).await.unwrap().status != 404 {
        assert!(
            std::time::Instant::now() < deadline,
            "the unheld identity is erased"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // Several sweeps later the held one is still there.
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    let kept = orchestrator
        .get(&format!("/v1/identities/{}", identities[0]))
        .await
        .unwrap();
    assert_eq!(kept.status, 200, "{}", kept.text());
    let export = service.audit_export().await;
    for (operation, object) in [("card.erase", None), ("identity.erase", Some(&identities[1]))] {
        assert!(
            export.lines().any(|l| l.contains(&format!("\"{operation}\""))
                && l.contains("\"local:retention\"")
                && object.is_none_or(|o| l.contains(o.as_str()))),
            "{operation}: {export}"
        );
    }
    assert!(
        !export
            .lines()
            .any(|l| l.contains("\"identity.erase\"") && l.contains(identities[0].as_str())),
        "the held identity was never erased"
    );
}
