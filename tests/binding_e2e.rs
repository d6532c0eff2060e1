//! Card binding end to end: the real service and `bank-sim` as separate
//! processes on loopback, every call over mutual TLS with certificates made
//! by the test. The orchestrator works with references only; the bank
//! simulator checks the four elements, sends SMS codes and signs.

mod common;

use common::bank_sim::Holder;
use common::resident_id;
use common::world::*;
use serde_json::json;

/// A 4-digit CVN and an expiry no random binary is likely to contain.
const CVN: &str = "7391";
const EXPIRY: &str = "0931";

#[tokio::test]
async fn a_debit_card_binds_with_the_banks_code_and_gets_a_token() {
    let pan = debit_pan(1);
    let id_no = id_number();
    let w = world(&[holder(&pan, &id_no)], &[], "");
    let card = w.card(&pan).await;
    let identity = w.identity(&id_no, PHONE).await;

    // No payment password yet: binding is refused and nothing is sent.
    let r = w.start("u1", &card, &identity, json!({})).await;
    assert_eq!(
        problem_rule(&r),
        (409, "user_id".into(), "password_not_set".into())
    );
    w.user_with_password("u1", &identity).await;

    let r = w.start("u1", &card, &identity, json!({})).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let started = r.json();
    assert_eq!(started["status"], "awaiting_code");
    assert_eq!(started["code_sender"], "bank");
    assert!(started["masked_card"]
        .as_str()
        .unwrap()
        .ends_with(&pan[pan.len() - 4..]));
    let binding = started["binding_id"].as_str().unwrap().to_owned();
    let (code, sender) = w.bank.last_code(PHONE).await;
    assert_eq!(sender, "bank");

    let r = w.confirm(&binding, &code).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let signed = r.json();
    assert_eq!(signed["status"], "signed");
    let token = signed["token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), pan.len());

    // The token carries the policy's default controls, for this channel only.
    let t = w
        .service
        .client("orchestrator")
        .get(&format!("/v1/tokens/{token}"))
        .await
        .unwrap()
        .json();
    assert_eq!(t["status"], "active");
    assert_eq!(t["controls"]["channels"], json!(["bank-a"]));
    assert_eq!(t["card_ref"], card);

    // Confirming again answers the signed binding; the bank signed once.
    let again = w.confirm(&binding, &code).await;
    assert_eq!(again.json()["status"], "signed");
    let agreements = w.bank.agreements().await;
    assert_eq!(agreements.len(), 1);
    assert_eq!(agreements[0]["active"], true);

    // A repeated start by the same user returns the existing binding.
    let dup = w.start("u1", &card, &identity, json!({})).await;
    assert_eq!(dup.status, 200, "{}", dup.text());
    assert_eq!(dup.json()["binding_id"], binding);
    assert_eq!(dup.json()["duplicate"], true);

    // Another user cannot bind the same card (default policy), and learns
    // nothing about who holds it.
    let identity2 = w.identity(&id_no, PHONE).await;
    w.user_with_password("u2", &identity2).await;
    let other = w.start("u2", &card, &identity2, json!({})).await;
    assert_eq!(
        problem_rule(&other),
        (409, "card_ref".into(), "bound_to_another_user".into())
    );
    assert!(!other.text().contains("u1"));

    // Binding query by user: masked data only.
    let list = w.bindings("u1").await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["token"], token);
    assert!(w.bindings("u2").await.is_empty());

    w.assert_no_plaintext(&[&pan, NAME, &id_no, PHONE, &code]).await;
    let verify = w.service.audit_verify().await;
    assert_eq!(verify["intact"], true, "{verify}");
}

#[tokio::test]
async fn another_user_may_bind_the_same_card_when_policy_allows() {
    let pan = debit_pan(2);
    let id_no = id_number();
    let w = world(
        &[holder(&pan, &id_no)],
        &[],
        "[binding]\nshared_card = \"allow\"\n",
    );
    let card = w.card(&pan).await;
    let mut tokens = Vec::new();
    for user in ["family-a", "family-b"] {
        let identity = w.identity(&id_no, PHONE).await;
        w.user_with_password(user, &identity).await;
        let started = w.start(user, &card, &identity, json!({})).await.json();
        let (code, _) = w.bank.last_code(PHONE).await;
        let signed = w.confirm(started["binding_id"].as_str().unwrap(), &code).await;
        assert_eq!(signed.status, 200, "{}", signed.text());
        tokens.push(signed.json()["token"].as_str().unwrap().to_owned());
    }
    assert_ne!(tokens[0], tokens[1], "each user gets its own token");
    assert_eq!(
        w.bank.agreements().await.len(),
        2,
        "one agreement per user at the bank"
    );
}

#[tokio::test]
async fn a_credit_cards_cvn_and_expiry_live_only_until_the_signing_call() {
    let pan = credit_pan(3);
    let id_no = id_number();
    let holders = [Holder {
        credit: Some((CVN, EXPIRY)),
        ..holder(&pan, &id_no)
    }];
    let w = world(&holders, &[], "");
    let (card, identity) = w.ready("credit-user", &pan, &id_no).await;

    let r = w.start("credit-user", &card, &identity, json!({})).await;
    assert_eq!(problem_rule(&r), (422, "cvn".into(), "required".into()));
    let r = w
        .start(
            "credit-user",
            &card,
            &identity,
            json!({ "cvn": CVN, "expiry": "1320" }),
        )
        .await;
    assert_eq!(problem_rule(&r), (422, "expiry".into(), "format".into()));

    let r = w
        .start(
            "credit-user",
            &card,
            &identity,
            json!({ "cvn": CVN, "expiry": EXPIRY }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let binding = r.json()["binding_id"].as_str().unwrap().to_owned();
    assert_eq!(
        w.held_verifications().await,
        1,
        "held in memory for the signing call"
    );
    let (code, _) = w.bank.last_code(PHONE).await;
    let signed = w.confirm(&binding, &code).await;
    assert_eq!(signed.status, 200, "{}", signed.text());
    assert_eq!(signed.json()["status"], "signed");
    assert_eq!(w.held_verifications().await, 0, "wiped after signing");

    w.assert_no_plaintext(&[&pan, NAME, &id_no, PHONE, CVN, EXPIRY])
        .await;
}

#[tokio::test]
async fn a_wrong_cvn_fails_the_binding_with_the_banks_reason_and_wipes_it() {
    let pan = credit_pan(4);
    let id_no = id_number();
    let holders = [Holder {
        credit: Some((CVN, EXPIRY)),
        ..holder(&pan, &id_no)
    }];
    let w = world(&holders, &[], "");
    let (card, identity) = w.ready("u", &pan, &id_no).await;
    let r = w
        .start("u", &card, &identity, json!({ "cvn": "1111", "expiry": EXPIRY }))
        .await;
    let binding = r.json()["binding_id"].as_str().unwrap().to_owned();
    let (code, _) = w.bank.last_code(PHONE).await;
    let r = w.confirm(&binding, &code).await;
    assert_eq!(
        problem_rule(&r),
        (422, "channel".into(), "card_verification_failed".into())
    );
    assert_eq!(w.held_verifications().await, 0);
    let list = w.bindings("u").await;
    assert_eq!(list[0]["status"], "failed");
    assert_eq!(list[0]["failure"], "card_verification_failed");
}

#[tokio::test]
async fn four_elements_that_do_not_match_are_refused_and_recorded() {
    let pan = debit_pan(5);
    let id_no = id_number();
    let w = world(&[holder(&pan, &id_no)], &[], "");
    let card = w.card(&pan).await;
    // The user's identity has another phone than the bank's records.
    let identity = w.identity(&id_no, "13800138000").await;
    w.user_with_password("u", &identity).await;
    let r = w.start("u", &card, &identity, json!({})).await;
    assert_eq!(
        problem_rule(&r),
        (422, "channel".into(), "elements_mismatch".into())
    );
    let list = w.bindings("u").await;
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0]["status"].as_str(), list[0]["failure"].as_str()),
        (Some("failed"), Some("elements_mismatch"))
    );
    assert!(list[0]["token"].is_null());
    assert!(w.bank.agreements().await.is_empty());
    assert!(
        w.bank.sms("13800138000").await.is_empty(),
        "no SMS for a mismatch"
    );

    // An identity that is not the user's own is refused before the bank.
    let stranger = w.identity(&resident_id("310101", "19900101", 5), PHONE).await;
    let r = w.start("u", &card, &stranger, json!({})).await;
    assert_eq!(
        problem_rule(&r),
        (422, "identity_ref".into(), "not_users_identity".into())
    );
}

#[tokio::test]
async fn wrong_codes_are_counted_until_the_binding_fails() {
    let pan = debit_pan(6);
    let id_no = id_number();
    let w = world(&[holder(&pan, &id_no)], &[], "[binding]\nmax_code_attempts = 3\n");
    let (card, identity) = w.ready("u", &pan, &id_no).await;
    let binding = w.start("u", &card, &identity, json!({})).await.json()["binding_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (code, _) = w.bank.last_code(PHONE).await;
    let wrong = if code == "000000" { "000001" } else { "000000" };
    for _ in 0..2 {
        let r = w.confirm(&binding, wrong).await;
        assert_eq!(problem_rule(&r), (422, "code".into(), "mismatch".into()));
    }
    let r = w.confirm(&binding, wrong).await;
    assert_eq!(
        problem_rule(&r),
        (422, "binding_id".into(), "code_attempts_exhausted".into())
    );
    // Even the right code cannot revive it.
    let r = w.confirm(&binding, &code).await;
    assert_eq!(problem_rule(&r), (409, "binding_id".into(), "failed".into()));
    let r = w.confirm(&binding, "12ab56").await;
    assert_eq!(problem_rule(&r), (422, "code".into(), "format".into()));
    assert!(w.bank.agreements().await.is_empty());
}

#[tokio::test]
async fn a_bank_that_sends_no_sms_gets_the_platforms_own_code() {
    let pan = debit_pan(7);
    let id_no = id_number();
    let w = world(&[holder(&pan, &id_no)], &["--no-sms"], "");
    let (card, identity) = w.ready("u", &pan, &id_no).await;
    let started = w.start("u", &card, &identity, json!({})).await.json();
    assert_eq!(started["code_sender"], "platform");
    let (code, sender) = w.bank.last_code(PHONE).await;
    assert_eq!(
        sender, "carrier",
        "the platform's code went through the SMS carrier"
    );
    let binding = started["binding_id"].as_str().unwrap();
    let wrong = if code == "000000" { "000001" } else { "000000" };
    assert_eq!(problem_rule(&w.confirm(binding, wrong).await).2, "mismatch");
    let r = w.confirm(binding, &code).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "signed");
    assert_eq!(w.bank.agreements().await.len(), 1);
    w.assert_no_plaintext(&[&pan, NAME, &id_no, PHONE]).await;
}

#[tokio::test]
async fn a_unionpay_style_channel_pre_binds_until_the_platforms_code_is_confirmed() {
    let pan = debit_pan(8);
    let pan2 = debit_pan(9);
    let id_no = id_number();
    let w = world(
        &[holder(&pan, &id_no), holder(&pan2, &id_no)],
        &["--verify", "card-and-name"],
        "[binding]\nmax_code_attempts = 2\n",
    );
    let identity = w.identity(&id_no, PHONE).await;
    w.user_with_password("u", &identity).await;

    let card = w.card(&pan).await;
    let started = w.start("u", &card, &identity, json!({})).await;
    assert_eq!(started.status, 201, "{}", started.text());
    let started = started.json();
    assert_eq!(started["status"], "pre_bound");
    assert_eq!(started["code_sender"], "platform");
    assert!(started["token"].is_null(), "no token before the platform's check");
    assert_eq!(w.bank.agreements().await.len(), 1, "the channel signed at once");
    let (code, sender) = w.bank.last_code(PHONE).await;
    assert_eq!(sender, "carrier");
    let r = w.confirm(started["binding_id"].as_str().unwrap(), &code).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "signed");
    assert!(r.json()["token"].is_string());

    // A pre-binding whose code never matches is undone at the channel.
    let card2 = w.card(&pan2).await;
    let started = w.start("u", &card2, &identity, json!({})).await.json();
    let (code, _) = w.bank.last_code(PHONE).await;
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let binding = started["binding_id"].as_str().unwrap();
    w.confirm(binding, wrong).await;
    let r = w.confirm(binding, wrong).await;
    assert_eq!(problem_rule(&r).2, "code_attempts_exhausted");
    let agreements = w.bank.agreements().await;
    let active = agreements.iter().filter(|a| a["active"] == true).count();
    assert_eq!(
        (agreements.len(), active),
        (2, 1),
        "the failed pre-binding was cancelled"
    );
}

#[tokio::test]
async fn weak_payment_passwords_are_refused_with_the_rule_named() {
    let w = world(&[], &[], "");
    let id_no = resident_id("110105", "19491231", 2);
    let identity = w.identity(&id_no, "13800138000").await;
    for (password, rule) in [
        ("111111", "repeated_digits"),
        ("123456", "ascending_run"),
        ("654321", "descending_run"),
        ("121212", "few_distinct_digits"),
        ("491231", "birth_date"),
        ("311249", "birth_date"),
        ("101051", "id_number_run"),
        ("380013", "phone_run"),
        ("12345", "length"),
        ("12a456", "digits_only"),
    ] {
        let r = w
            .post(
                "card-capture",
                "/v1/payment-passwords",
                json!({ "user_id": "pw-user", "identity_ref": identity, "password": password }),
            )
            .await;
        assert_eq!(
            problem_rule(&r),
            (422, "password".into(), rule.into()),
            "{password}"
        );
        assert!(!r.text().contains(password));
    }
    w.user_with_password("pw-user", &identity).await;
    let again = w
        .post(
            "card-capture",
            "/v1/payment-passwords",
            json!({ "user_id": "pw-user", "identity_ref": identity, "password": "580317" }),
        )
        .await;
    assert_eq!(
        problem_rule(&again),
        (409, "password".into(), "already_set".into())
    );

    // The orchestrator may verify, never set.
    let denied = w
        .post(
            "orchestrator",
            "/v1/payment-passwords",
            json!({ "user_id": "x", "identity_ref": identity, "password": "580317" }),
        )
        .await;
    assert_eq!(denied.status, 403);

    let verify = |password: &'static str| {
        let w = &w;
        async move {
            w.post(
                "orchestrator",
                "/v1/payment-passwords/pw-user/verify",
                json!({ "password": password }),
            )
            .await
        }
    };
    assert_eq!(verify(PASSWORD).await.status, 200);
    for _ in 0..4 {
        assert_eq!(
            problem_rule(&verify("580317").await),
            (422, "password".into(), "mismatch".into())
        );
    }
    let locked = verify("580317").await;
    assert_eq!(problem_rule(&locked), (423, "password".into(), "locked".into()));
    assert!(locked.header("retry-after").is_some());
    assert_eq!(
        verify(PASSWORD).await.status,
        423,
        "locked even for the right password"
    );

    let changed = w
        .post(
            "card-capture",
            "/v1/payment-passwords/pw-user/change",
            json!({ "current": PASSWORD, "new": "580317" }),
        )
        .await;
    assert_eq!(changed.status, 423, "a locked password cannot be changed either");

    let export = w
        .service
        .client("auditor")
        .get("/v1/audit/export")
        .await
        .unwrap()
        .text();
    assert!(export.contains("password.locked_out"));
    for secret in [PASSWORD, "580317"] {
        assert!(!export.contains(secret) && !w.service.log().contains(secret));
    }
}

#[tokio::test]
async fn an_unavailable_bank_is_a_retryable_error_that_binds_nothing() {
    let pan = debit_pan(10);
    let id_no = id_number();
    let w = world(&[holder(&pan, &id_no)], &["--unavailable"], "");
    let (card, identity) = w.ready("u", &pan, &id_no).await;
    let r = w.start("u", &card, &identity, json!({})).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["type"], "urn:tokenvault:problem:channel-unavailable");
    assert!(r.header("retry-after").is_some());
    assert!(w.bindings("u").await.is_empty(), "no half-bound state");
    assert!(w.bank.agreements().await.is_empty());

    // Back up: the start goes through; down again at confirm: the binding
    // keeps waiting, and signs once the bank is back.
    w.bank.set_faults(json!({ "unavailable": false })).await;
    let started = w.start("u", &card, &identity, json!({})).await;
    assert_eq!(started.status, 201, "{}", started.text());
    let binding = started.json()["binding_id"].as_str().unwrap().to_owned();
    let (code, _) = w.bank.last_code(PHONE).await;
    w.bank.set_faults(json!({ "unavailable": true })).await;
    assert_eq!(w.confirm(&binding, &code).await.status, 503);
    assert_eq!(w.bindings("u").await[0]["status"], "awaiting_code");
    w.bank.set_faults(json!({ "unavailable": false })).await;
    let r = w.confirm(&binding, &code).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "signed");
}

#[tokio::test]
async fn a_slow_or_failing_bank_is_reported_as_unavailable() {
    let pan = debit_pan(11);
    let id_no = id_number();
    let w = world_with(
        &[holder(&pan, &id_no)],
        &["--error-rate", "1.0"],
        "timeout_ms = 400\n",
        "",
    );
    let (card, identity) = w.ready("u", &pan, &id_no).await;
    let r = w.start("u", &card, &identity, json!({})).await;
    assert_eq!(
        r.status,
        503,
        "an injected system error is retryable: {}",
        r.text()
    );

    w.bank.set_faults(json!({ "latency_ms": 1500 })).await;
    let r = w.start("u", &card, &identity, json!({})).await;
    assert_eq!(
        r.status,
        503,
        "a bank slower than the gateway's deadline: {}",
        r.text()
    );
    assert!(w.bindings("u").await.is_empty());

    w.bank.set_faults(json!({})).await;
    let r = w.start("u", &card, &identity, json!({})).await;
    assert_eq!(r.status, 201, "{}", r.text());
}

/// A payment password's set, a binding's start, its confirm (which signs
/// and issues the token) and its unbind remember their answer in the same
/// write: the same key and request
/// replay it, and the bank signed once.
#[tokio::test]
async fn a_repeated_key_replays_the_password_start_confirm_and_unbind_answers() {
    let pan = debit_pan(7);
    let id_no = id_number();
    let w = world(&[holder(&pan, &id_no)], &[], "");
    let card = w.card(&pan).await;
    let identity = w.identity(&id_no, PHONE).await;
    let capture = w.service.client("card-capture");
    let password_body = json!({ "user_id": "u-k", "identity_ref": identity, "password": PASSWORD });
    let password = capture
        .post_json("/v1/payment-passwords", Some("password-k"), &password_body)
        .await
        .unwrap();
    assert_eq!(password.status, 201, "{}", password.text());
    let again = capture
        .post_json("/v1/payment-passwords", Some("password-k"), &password_body)
        .await
        .unwrap();
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!((again.status, again.json()), (password.status, password.json()));
    let client = w.service.client("orchestrator");
    let start_body =
        json!({ "user_id": "u-k", "card_ref": card, "identity_ref": identity, "channel": "bank-a" });
    let started = client
        .post_json("/v1/bindings", Some("start-k"), &start_body)
        .await
        .unwrap();
    assert_eq!(started.status, 201, "{}", started.text());
    let binding = started.json()["binding_id"].as_str().unwrap().to_owned();
    let (code, _) = w.bank.last_code(PHONE).await;
    let confirm_path = format!("/v1/bindings/{binding}/confirm");
    let unbind_path = format!("/v1/bindings/{binding}/unbind");
    let confirm_body = json!({ "code": code });
    let confirmed = client
        .post_json(&confirm_path, Some("confirm-k"), &confirm_body)
        .await
        .unwrap();
    assert_eq!(confirmed.status, 200, "{}", confirmed.text());
    let unbound = client
        .post_json(&unbind_path, Some("unbind-k"), &json!(null))
        .await
        .unwrap();
    assert_eq!(unbound.status, 200, "{}", unbound.text());
    let start_path = "/v1/bindings".to_owned();
    for (path, key, body, original) in [
        (&start_path, "start-k", start_body, &started),
        (&confirm_path, "confirm-k", confirm_body, &confirmed),
        (&unbind_path, "unbind-k", json!(null), &unbound),
    ] {
        let again = client.post_json(path, Some(key), &body).await.unwrap();
        assert_eq!(again.header("idempotent-replayed"), Some("true"), "{path}");
        assert_eq!(
            (again.status, again.json()),
            (original.status, original.json()),
            "{path}"
        );
    }
    assert_eq!(w.bank.agreements().await.len(), 1, "signed once");
}

/// `(version, passwords)` per pepper version, from the key status.
async fn passwords_per_pepper(w: &World) -> Vec<(u64, u64)> {
    let status = w
        .service
        .client("key-admin")
        .get("/v1/admin/keys")
        .await
        .unwrap()
        .json();
    status["passwords_per_pepper"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["version"].as_u64().unwrap(), v["passwords"].as_u64().unwrap()))
        .collect()
}

/// The pepper rotates while passwords are checked without pause: no check
/// fails; each password moves to the new pepper at its next right check
/// (the key status counts them per version), a wrong one still counts;
/// new passwords are hashed under the new pepper at once.
#[tokio::test]
async fn the_pepper_rotates_under_traffic_and_each_password_moves_at_its_next_check() {
    let w = world(&[], &[], "");
    let id_no = resident_id("110105", "19491231", 2);
    let identity = w.identity(&id_no, "13800138000").await;
    w.user_with_password("pep-1", &identity).await;
    w.user_with_password("pep-2", &identity).await;
    assert_eq!(passwords_per_pepper(&w).await, [(1, 2)]);

    let checks = {
        let client = w.service.client("orchestrator");
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            for i in 0..12 {
                let r = client
                    .post_json(
                        "/v1/payment-passwords/pep-1/verify",
                        Some(&format!("pep-check-{i}")),
                        &json!({ "password": PASSWORD }),
                    )
                    .await
                    .unwrap();
                statuses.push(r.status);
            }
            statuses
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let r = w
        .post(
            "key-admin",
            "/v1/admin/keys/pepper/rotate",
            serde_json::Value::Null,
        )
        .await;
    assert_eq!(
        (r.status, r.json()["version"].clone()),
        (201, json!(2)),
        "{}",
        r.text()
    );
    let statuses = checks.await.unwrap();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    // pep-1 was checked after the rotation; pep-2 was not.
    let r = w
        .post(
            "orchestrator",
            "/v1/payment-passwords/pep-1/verify",
            json!({ "password": PASSWORD }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(passwords_per_pepper(&w).await, [(1, 1), (2, 1)]);

    let wrong = w
        .post(
            "orchestrator",
            "/v1/payment-passwords/pep-2/verify",
            json!({ "password": "580317" }),
        )
        .await;
    assert_eq!(problem_rule(&wrong), (422, "password".into(), "mismatch".into()));
    assert_eq!(
        passwords_per_pepper(&w).await,
        [(1, 1), (2, 1)],
        "a wrong password moves nothing"
    );
    let right = w
        .post(
            "orchestrator",
            "/v1/payment-passwords/pep-2/verify",
            json!({ "password": PASSWORD }),
        )
        .await;
    assert_eq!(right.status, 200, "{}", right.text());
    assert_eq!(passwords_per_pepper(&w).await, [(2, 2)]);

    w.user_with_password("pep-3", &identity).await;
    assert_eq!(passwords_per_pepper(&w).await, [(2, 3)]);
    let export = w.service.audit_export().await;
    let rehashed = export
        .lines()
        .filter(|l| l.contains("\"password.verify\"") && l.contains("rehashed under pepper version 2"))
        .count();
    assert_eq!(rehashed, 2, "{export}");
    w.service.assert_audit_intact().await;
}
