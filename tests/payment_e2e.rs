//! Payments end to end on tokens only: the real service and `bank-sim`
//! processes on loopback, every call over mutual TLS with the test's PKI.
//! Debits against each domain control, concurrency against a use count,
//! repeated and forged notifications, refunds, cancels, unbinding, backup
//! routing with sign-and-pay, and the payment-code time-out.

mod common;

use common::bank_sim::BankSim;
use common::service::{Client, Options, Response, Service, Tls};
use common::world::*;
use serde_json::{json, Value};
use std::time::Duration;

/// One bank channel `bank-a`, with `payment` config (e.g. a slow settler).
fn pay_world(pan: &str, id_no: &str, flags: &[&str], payment: &str) -> World {
    world(&[holder(pan, id_no)], flags, payment)
}

impl World {
    async fn debit(&self, token: &str, order: &str, amount: u64, extra: Value) -> Response {
        let mut body = debit_body(token, order, amount);
        if let (Some(map), Some(more)) = (body.as_object_mut(), extra.as_object()) {
            map.extend(more.clone());
        }
        self.post("orchestrator", "/v1/payments", body).await
    }

    async fn get(&self, path: &str) -> Value {
        let r = self.service.client("orchestrator").get(path).await.unwrap();
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        r.json()
    }

    /// A debit the bank has not settled: asserts `202 <status>`, returns
    /// the payment.
    async fn debit_pending(&self, token: &str, order: &str, amount: u64, status: &str) -> Value {
        let r = self.debit(token, order, amount, json!({})).await;
        assert_eq!(
            (r.status, r.json()["status"].clone()),
            (202, json!(status)),
            "{}",
            r.text()
        );
        r.json()
    }

    /// (uses committed, uses reserved) of `token`.
    async fn uses(&self, token: &str) -> (u64, u64) {
        let usage = self.usage(token).await;
        (
            usage["uses_committed"].as_u64().unwrap(),
            usage["uses_reserved"].as_u64().unwrap(),
        )
    }

    /// Polls `token`'s (committed, reserved) uses until they are `want`
    /// (at most ten seconds); returns the last seen.
    async fn wait_uses(&self, token: &str, want: (u64, u64)) -> (u64, u64) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let uses = self.uses(token).await;
            if uses == want || std::time::Instant::now() > deadline {
                return uses;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn usage(&self, token: &str) -> Value {
        self.get(&format!("/v1/tokens/{token}")).await["usage"].clone()
    }

    /// Polls the payment until `done` holds (at most `within`).
    async fn wait_payment(&self, id: &str, within: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + within;
        loop {
            let p = self.get(&format!("/v1/payments/{id}")).await;
            if done(&p) || std::time::Instant::now() > deadline {
                return p;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Audit records of `operation` whose detail contains `needle`.
    async fn audited(&self, operation: &str, needle: &str) -> Vec<Value> {
        let text = self.service.audit_export().await;
        text.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|r| r["operation"] == operation)
            .filter(|r| r["detail"].as_str().unwrap_or_default().contains(needle))
            .collect()
    }

    /// The bank simulator's certificate, as a client of the vault.
    fn as_bank(&self) -> Client {
        let keys = &self.service.keys;
        Client::new(
            self.service.addr,
            &keys.ca_cert(),
            Some((&keys.client_cert("bank-sim"), &keys.client_key("bank-sim"))),
            Tls::V13,
        )
    }
}

/// Posts `notification` to channel bank-a as `client`, signed by `key` at
/// `at` (Unix seconds); over `signed_body` instead when given, so the
/// signature covers another body than the one sent.
async fn notify_signed(
    client: &Client,
    notification: &serde_json::Value,
    key: &tokenvault::ed25519::SigningKey,
    at: i64,
    signed_body: Option<&serde_json::Value>,
) -> Response {
    use tokenvault::channel::signature::{self, NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
    let body = serde_json::to_vec(notification).unwrap();
    let covered = signed_body.map_or_else(|| body.clone(), |b| serde_json::to_vec(b).unwrap());
    let signed = signature::sign(key, &covered, at, "testnonce0123456789".to_owned());
    let timestamp = signed.timestamp.to_string();
    client
        .send(
            "POST",
            "/v1/channel-notifications/bank-a",
            &[
                ("Content-Type", "application/json"),
                (TIMESTAMP_HEADER, &timestamp),
                (NONCE_HEADER, &signed.nonce),
                (SIGNATURE_HEADER, &signed.signature),
            ],
            Some(&body),
        )
        .await
        .unwrap()
}

/// Channel bank-a (the world's bank) routing to backup bank-b, a second
/// bank-sim started with `backup_flags`; the settler slowed down.
fn backup_world(pan: &str, id_no: &str, backup_flags: &[&str]) -> (World, BankSim) {
    let holders = [holder(pan, id_no)];
    let mut service = Service::prepare(Options::default());
    let primary = BankSim::start(&service.keys, service.dir.path(), "bank", &holders, &[]);
    let backup = BankSim::start(
        &service.keys,
        service.dir.path(),
        "backup",
        &holders,
        backup_flags,
    );
    service.add_config(&format!(
        "[gateway]\nsms_carrier = \"{}\"\n{}{}[payment]\npoll_interval_ms = 60000\n[[routing.routes]]\nprimary = \"bank-a\"\nbackups = [\"bank-b\"]\n",
        primary.endpoint(),
        primary.channel_config("bank-a"),
        backup.channel_config("bank-b"),
    ));
    service.spawn();
    (
        World {
            service,
            bank: primary,
        },
        backup,
    )
}

fn control(r: &Response) -> (u16, String) {
    (
        r.status,
        r.json()["control"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn every_domain_control_refuses_a_debit_by_name_and_changes_nothing() {
    let (pan, id_no) = (debit_pan(101), id_number());
    let w = pay_world(&pan, &id_no, &[], "");
    let (_, _, card) = w.bound("u1", &pan, &id_no).await;
    let token = w
        .token_with(&card, token_controls(2, 1000, 1500, unix_now() - 10))
        .await;

    let cases = [
        (json!({ "amount": 1001 }), "per_transaction_amount"),
        (json!({ "merchant": "M002" }), "merchant"),
        (json!({ "channel": "bank-z" }), "channel"),
        (json!({ "currency": "USD" }), "currency"),
    ];
    for (i, (extra, name)) in cases.iter().enumerate() {
        let amount = extra["amount"].as_u64().unwrap_or(500);
        let r = w
            .debit(&token, &format!("o-refused-{i}"), amount, extra.clone())
            .await;
        assert_eq!(control(&r), (422, (*name).to_owned()), "{}", r.text());
    }
    assert_eq!(
        w.usage(&token).await["uses_committed"],
        0,
        "refusals take nothing"
    );

    // Cumulative amount, then use count.
    assert_eq!(w.debit(&token, "o-1", 1000, json!({})).await.status, 201);
    let r = w.debit(&token, "o-2", 600, json!({})).await;
    assert_eq!(control(&r), (422, "cumulative_amount".into()));
    assert_eq!(w.debit(&token, "o-3", 500, json!({})).await.status, 201);
    let r = w.debit(&token, "o-4", 1, json!({})).await;
    assert_eq!(control(&r), (422, "use_count".into()));
    let usage = w.usage(&token).await;
    assert_eq!(
        (
            usage["uses_committed"].as_u64(),
            usage["amount_committed"].as_u64()
        ),
        (Some(2), Some(1500))
    );

    // The validity window: a token not valid yet.
    let later = w
        .token_with(&card, token_controls(2, 1000, 1500, unix_now() + 1800))
        .await;
    let r = w.debit(&later, "o-5", 100, json!({})).await;
    assert_eq!(control(&r), (422, "validity_period".into()));

    // The order's own expiry: past, or more than a day ahead.
    let r = w
        .debit(&token, "o-6", 100, json!({ "expires_at": unix_now() - 1 }))
        .await;
    assert_eq!(
        (r.status, r.json()["field"].clone(), r.json()["rule"].clone()),
        (422, json!("expires_at"), json!("expired"))
    );
    let r = w
        .debit(
            &token,
            "o-7",
            100,
            json!({ "expires_at": unix_now() + 2 * 86_400 }),
        )
        .await;
    assert_eq!((r.status, r.json()["rule"].clone()), (422, json!("out_of_range")));

    // Several bad fields: one answer names each, in order, and the trail
    // holds one refusal listing them; nothing is reserved.
    let r = w
        .debit(
            "6200000000000000",
            "o 8",
            100,
            json!({ "currency": "cny", "merchant": "" }),
        )
        .await;
    let p = r.json();
    assert_eq!(
        (r.status, p["field"].clone(), p["rule"].clone()),
        (422, json!("token"), p["errors"][0]["rule"].clone()),
        "{p}"
    );
    let fields: Vec<&str> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["token", "order_id", "currency", "merchant"], "{p}");
    let refusals = w.audited("payment.debit", "token.").await;
    assert_eq!(refusals.len(), 1, "one refusal for the request");
    assert!(
        refusals[0]["detail"].as_str().unwrap().contains("merchant."),
        "{}",
        refusals[0]
    );

    // A repeated order with the same terms is the same payment; other terms conflict.
    let first = w.get("/v1/merchants/M001/orders/o-1").await;
    assert_eq!(first["status"], "succeeded");
    assert_eq!(first["masked_card"].as_str().unwrap().len(), pan.len());
    assert!(!first.to_string().contains(&pan));
    let r = w.debit(&token, "o-1", 999, json!({})).await;
    assert_eq!((r.status, r.json()["field"].clone()), (409, json!("order_id")));
    // An order id that is a card number (numeric order ids exist): taken
    // or refused, the trail keeps only a keyed digest of it.
    let card_like = "4242424242424242";
    let r = w.debit(&token, card_like, 100, json!({})).await;
    assert!(r.status < 500, "{}", r.text());
    let export = w.service.audit_export().await;
    assert!(
        !export.contains(card_like),
        "an order id holding a PAN reached the trail"
    );
    w.service.assert_audit_intact().await;
}

/// Token limits, debits and refunds above `bound` are refused naming the
/// field and rule `out_of_range`, and nothing is held; a token at the bound
/// is issued and a debit of `payable` is paid.
async fn amounts_above_are_refused_by_name(w: &World, card: &str, bound: u64, payable: u64) {
    let out_of_range = |field: &str| (422, field.to_owned(), "out_of_range".to_owned());
    for (per_tx, total, at_fault) in [
        (bound, bound + 1, "cumulative_limit"),
        (bound + 1, bound + 1, "per_transaction_limit"),
        (u64::MAX, u64::MAX, "per_transaction_limit"),
    ] {
        let r = w
            .post(
                "orchestrator",
                "/v1/tokens",
                json!({ "card_ref": card, "controls": token_controls(2, per_tx, total, unix_now() - 10) }),
            )
            .await;
        assert_eq!(
            problem_rule(&r),
            out_of_range(&format!("controls.{at_fault}")),
            "{}",
            r.text()
        );
    }
    let token = w
        .token_with(card, token_controls(4, bound, bound, unix_now() - 10))
        .await;
    for amount in [bound + 1, u64::MAX] {
        let r = w.debit(&token, &format!("o-{amount}"), amount, json!({})).await;
        assert_eq!(problem_rule(&r), out_of_range("amount"), "{}", r.text());
    }
    let usage = w.usage(&token).await;
    assert_eq!(
        (usage["uses_reserved"].clone(), usage["amount_reserved"].clone()),
        (json!(0), json!(0))
    );
    let paid = w.debit(&token, "o-payable", payable, json!({})).await;
    assert_eq!(paid.status, 201, "{}", paid.text());
    let payment = paid.json()["payment_id"].as_str().unwrap().to_owned();
    for amount in [bound + 1, u64::MAX] {
        let r = w
            .post(
                "orchestrator",
                &format!("/v1/payments/{payment}/refunds"),
                json!({ "refund_id": format!("r-{amount}"), "amount": amount }),
            )
            .await;
        assert_eq!(problem_rule(&r), out_of_range("amount"), "{}", r.text());
    }
}

/// Issue 17, item 1: no amount past 10^12 fen is taken anywhere, so no
/// counter can wrap. A debit of u64::MAX (allowed by nothing now), token
/// limits past the bound, a refund past it, and currencies outside ISO 4217
/// are refused naming the field and rule; nothing is held or taken.
#[tokio::test]
async fn amounts_past_the_bound_and_unknown_currencies_are_refused_by_name() {
    let (pan, id_no) = (debit_pan(131), id_number());
    let w = pay_world(&pan, &id_no, &[], "");
    let (_, _, card) = w.bound("u-bound", &pan, &id_no).await;
    amounts_above_are_refused_by_name(&w, &card, 1_000_000_000_000, 100).await;
    for code in ["XTS", "XAU", "ABC"] {
        let mut with_code = token_controls(2, 100, 100, unix_now() - 10);
        with_code["currency"] = json!(code);
        let r = w
            .post(
                "orchestrator",
                "/v1/tokens",
                json!({ "card_ref": card, "controls": with_code }),
            )
            .await;
        assert_eq!(
            problem_rule(&r),
            (422, "controls.currency".to_owned(), "iso_4217".to_owned()),
            "{code}: {}",
            r.text()
        );
    }
    w.service.assert_audit_intact().await;
}

/// Issue 17, item 1, "lower if configured": with
/// `limits.max_amount_minor_units` set, a debit, a refund and a token's
/// amount limits above it are refused by name (at the ceiling they pass),
/// and nothing is held.
#[tokio::test]
async fn a_configured_amount_ceiling_is_held_everywhere_an_amount_comes_in() {
    const CEILING: u64 = 500_000;
    let (pan, id_no) = (debit_pan(137), id_number());
    let options = Options {
        extra_limits: format!("max_amount_minor_units = {CEILING}\n"),
        ..Options::default()
    };
    let w = world_of(options, &[holder(&pan, &id_no)], &[], "", "");
    let (_, _, card) = w.bound("u-ceiling", &pan, &id_no).await;
    amounts_above_are_refused_by_name(&w, &card, CEILING, CEILING).await;
    w.service.assert_audit_intact().await;
}

#[tokio::test]
async fn fifty_concurrent_debits_against_five_uses_take_exactly_five() {
    let (pan, id_no) = (debit_pan(102), id_number());
    let w = pay_world(&pan, &id_no, &[], "");
    let (_, _, card) = w.bound("u1", &pan, &id_no).await;
    let token = w
        .token_with(&card, token_controls(5, 1000, 100_000, unix_now() - 10))
        .await;
    let orders: Vec<String> = (0..50).map(|i| format!("c-{i}")).collect();
    let debits = orders.iter().map(|o| w.debit(&token, o, 100, json!({})));
    let answers = futures_join_all(debits).await;
    let ok = answers.iter().filter(|r| r.status == 201).count();
    let use_count = answers
        .iter()
        .filter(|r| r.status == 422 && r.json()["control"] == "use_count")
        .count();
    assert_eq!(
        (ok, use_count),
        (5, 45),
        "{:?}",
        answers.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let usage = w.usage(&token).await;
    assert_eq!(usage["uses_committed"], 5);
    assert_eq!(usage["uses_reserved"], 0);
    let paid = w
        .bank
        .orders()
        .await
        .iter()
        .filter(|o| o["status"] == "succeeded")
        .count();
    assert_eq!(paid, 5, "the bank was asked five times");
}

/// join_all without a futures dependency: spawn-free, polled together.
async fn futures_join_all<F: std::future::Future<Output = Response>>(
    futures: impl Iterator<Item = F>,
) -> Vec<Response> {
    let mut set = Vec::new();
    for f in futures {
        set.push(Box::pin(f));
    }
    let mut out: Vec<Option<Response>> = (0..set.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(r) => out[i] = Some(r),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(Option::unwrap).collect()
}

#[tokio::test]
async fn a_notification_delivered_five_times_changes_the_payment_once() {
    let (pan, id_no) = (debit_pan(103), id_number());
    // A slow settler, so the result can only come by notification.
    let w = pay_world(
        &pan,
        &id_no,
        &["--pay-mode", "async", "--notify-repeats", "5"],
        "[payment]\npoll_interval_ms = 60000\n",
    );
    let (_, token, _) = w.bound("u1", &pan, &id_no).await;
    let pending = w.debit_pending(&token, "n-1", 2500, "processing").await;
    let id = pending["payment_id"].as_str().unwrap().to_owned();
    assert_eq!(w.usage(&token).await["uses_reserved"], 1);

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while w.bank.orders().await[0]["notifications_sent"] != 5 {
        assert!(
            std::time::Instant::now() < deadline,
            "five deliveries acknowledged"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let p = w.get(&format!("/v1/payments/{id}")).await;
    assert_eq!(p["status"], "succeeded");
    assert_eq!(w.uses(&token).await, (1, 0));
    assert_eq!(w.usage(&token).await["amount_committed"], 2500);
    let applied = w.audited("payment.notify", "status=succeeded order=").await;
    let duplicates = w.audited("payment.notify", "duplicate").await;
    assert_eq!((applied.len(), duplicates.len()), (1, 4));
    w.service.assert_audit_intact().await;
    w.assert_no_plaintext(&[&pan, NAME, &id_no, PHONE]).await;
}

#[tokio::test]
async fn forged_or_disagreeing_notifications_are_refused_and_audited() {
    let (pan, id_no) = (debit_pan(104), id_number());
    let w = pay_world(
        &pan,
        &id_no,
        &["--pay-mode", "user-paying"],
        "[payment]\npoll_interval_ms = 60000\npayment_code_timeout_s = 600\n",
    );
    let (_, token, _) = w.bound("u1", &pan, &id_no).await;
    let pending = w.debit_pending(&token, "f-1", 800, "user_paying").await;
    let id = pending["payment_id"].as_str().unwrap().to_owned();
    let txn = w.bank.orders().await[0]["order_no"].clone();
    assert_eq!(txn, json!(id));
    let notification = |amount: u64| {
        json!({ "merchant_id": "tokenvault-dev", "order_no": id, "bank_txn_no": "BT000000000001",
                "status": "succeeded", "amount": amount, "currency": "CNY", "failure": null })
    };
    // Not the bank: the orchestrator's certificate (no policy grant) and an
    // unknown identity.
    let r = w
        .service
        .client("orchestrator")
        .post_json("/v1/channel-notifications/bank-a", None, &notification(800))
        .await
        .unwrap();
    assert_eq!(r.status, 403);
    let (stranger, _) = w.service.issued_client(
        "other-bank",
        "spiffe://tokenvault/other-bank",
        tokenvault::tls::pki::Validity::days_from_now(1),
    );
    let r = stranger
        .post_json("/v1/channel-notifications/bank-a", None, &notification(800))
        .await
        .unwrap();
    assert_eq!(r.status, 403);
    // The bank's certificate, but not the bank's signature: unsigned, signed
    // by another key, signed long ago, or over another body. Each is 401
    // naming the header and the rule, audited, and changes nothing.
    let bank = w.as_bank();
    let bank_key = w.service.keys.bank_sim_signing_key().unwrap();
    let other_key =
        tokenvault::ed25519::SigningKey::from_seed(secrecy::SecretBox::new(Box::new([7; 32]))).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let unsigned = bank
        .post_json("/v1/channel-notifications/bank-a", None, &notification(800))
        .await
        .unwrap();
    let forged = notify_signed(&bank, &notification(800), &other_key, now, None).await;
    let stale = notify_signed(&bank, &notification(800), &bank_key, now - 301, None).await;
    let swapped = notify_signed(&bank, &notification(800), &bank_key, now, Some(&notification(8))).await;
    for (r, field, rule) in [
        (&unsigned, "x-channel-timestamp", "missing"),
        (&forged, "x-channel-signature", "signature"),
        (&stale, "x-channel-timestamp", "stale"),
        (&swapped, "x-channel-signature", "signature"),
    ] {
        assert_eq!(r.status, 401, "{}", r.text());
        let problem = r.json();
        assert_eq!(
            (&problem["type"], &problem["field"], &problem["rule"]),
            (
                &json!("urn:tokenvault:problem:notification-signature"),
                &json!(field),
                &json!(rule)
            ),
            "{problem}"
        );
    }
    assert_eq!(
        w.audited("payment.notify", "x-channel-signature.signature")
            .await
            .len(),
        2
    );
    assert_eq!(w.audited("payment.notify", "x-channel-timestamp.").await.len(), 2);
    assert_eq!(w.usage(&token).await["uses_reserved"], 1);
    assert_eq!(
        w.get(&format!("/v1/payments/{id}")).await["status"],
        "user_paying"
    );
    // The bank, signed, disagreeing on the amount: refused, audited, nothing changes.
    let r = notify_signed(&bank, &notification(8000), &bank_key, now, None).await;
    assert_eq!(
        (r.status, r.json()["field"].clone()),
        (422, json!("amount")),
        "{}",
        r.text()
    );
    assert_eq!(w.audited("payment.notify", "amount.mismatch").await.len(), 1);
    assert_eq!(w.usage(&token).await["uses_reserved"], 1);
    // The bank, signed, agreeing: applied once; the repeat is acknowledged only.
    let r = notify_signed(&bank, &notification(800), &bank_key, now, None).await;
    assert_eq!(
        (r.status, r.json()["applied"].clone()),
        (200, json!(true)),
        "{}",
        r.text()
    );
    let r = notify_signed(&bank, &notification(800), &bank_key, now, None).await;
    assert_eq!((r.status, r.json()["applied"].clone()), (200, json!(false)));
    assert_eq!(w.usage(&token).await["uses_committed"], 1);
    w.service.assert_audit_intact().await;
}

#[tokio::test]
async fn refunds_stay_within_the_captured_amount_and_cancel_refunds_in_full() {
    let (pan, id_no) = (debit_pan(105), id_number());
    let w = pay_world(&pan, &id_no, &[], "[payment]\npoll_interval_ms = 60000\n");
    let (_, token, _) = w.bound("u1", &pan, &id_no).await;
    let refund = |id: String, refund_id: &str, amount: u64| {
        let w = &w;
        let refund_id = refund_id.to_owned();
        async move {
            w.post(
                "orchestrator",
                &format!("/v1/payments/{id}/refunds"),
                json!({ "refund_id": refund_id, "amount": amount }),
            )
            .await
        }
    };
    // While processing: refused.
    w.bank
        .set_faults(json!({ "pay_mode": "async", "notify_delay_ms": 600000 }))
        .await;
    let r = w.debit(&token, "r-0", 300, json!({})).await;
    let processing = r.json()["payment_id"].as_str().unwrap().to_owned();
    let r = refund(processing.clone(), "x", 100).await;
    assert_eq!(
        (r.status, r.json()["rule"].clone()),
        (409, json!("processing")),
        "{}",
        r.text()
    );
    // Cancel of the unpaid order closes it and gives the use back.
    let r = w
        .post(
            "orchestrator",
            &format!("/v1/payments/{processing}/cancel"),
            json!(null),
        )
        .await;
    assert_eq!(
        (
            r.status,
            r.json()["status"].clone(),
            r.json()["cancelled"].clone()
        ),
        (200, json!("closed"), json!(true)),
        "{}",
        r.text()
    );
    assert_eq!(w.usage(&token).await["uses_reserved"], 0);

    w.bank.set_faults(json!({})).await;
    let r = w.debit(&token, "r-1", 1000, json!({})).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let paid = r.json()["payment_id"].as_str().unwrap().to_owned();
    let r = refund(paid.clone(), "r1", 1001).await;
    assert_eq!(
        (r.status, r.json()["field"].clone(), r.json()["rule"].clone()),
        (422, json!("amount"), json!("exceeds_refundable"))
    );
    let r = refund(paid.clone(), "r1", 400).await;
    assert_eq!(
        (r.status, r.json()["status"].clone()),
        (201, json!("succeeded")),
        "{}",
        r.text()
    );
    let r = refund(paid.clone(), "r1", 400).await;
    assert_eq!(r.status, 200, "a repeat is the same refund");
    let r = refund(paid.clone(), "r1", 300).await;
    assert_eq!((r.status, r.json()["field"].clone()), (409, json!("refund_id")));
    let r = refund(paid.clone(), "r2", 700).await;
    assert_eq!(r.status, 422, "only 600 remain");
    assert_eq!(refund(paid.clone(), "r2", 600).await.status, 201);
    let one = w.get(&format!("/v1/payments/{paid}/refunds/r2")).await;
    assert_eq!(
        (one["amount"].as_u64(), one["status"].as_str()),
        (Some(600), Some("succeeded"))
    );
    let p = w.get(&format!("/v1/payments/{paid}")).await;
    assert_eq!(p["refunded"], 1000);
    // Refunds give nothing back to the token's controls (documented).
    assert_eq!(w.usage(&token).await["amount_committed"], 1000);

    // Cancel of a paid order refunds it in full; a repeat answers alike.
    let r = w.debit(&token, "r-2", 500, json!({})).await;
    let second = r.json()["payment_id"].as_str().unwrap().to_owned();
    let path = format!("/v1/payments/{second}/cancel");
    let r = w.post("orchestrator", &path, json!(null)).await;
    assert_eq!(
        (
            r.status,
            r.json()["refunded"].clone(),
            r.json()["cancelled"].clone()
        ),
        (200, json!(500), json!(true)),
        "{}",
        r.text()
    );
    let again = w.post("orchestrator", &path, json!(null)).await;
    assert_eq!(
        (again.status, again.json()["refunded"].clone()),
        (200, json!(500))
    );
    let bank_order = w
        .bank
        .orders()
        .await
        .into_iter()
        .find(|o| o["order_no"] == json!(second))
        .unwrap();
    assert_eq!(bank_order["refunded"], 500);
    w.service.assert_audit_intact().await;
}

#[tokio::test]
async fn unbind_waits_for_payments_in_flight_and_the_token_never_debits_again() {
    let (pan, id_no) = (debit_pan(106), id_number());
    let w = pay_world(
        &pan,
        &id_no,
        &["--pay-mode", "async"],
        "[payment]\npoll_interval_ms = 60000\n",
    );
    w.bank
        .set_faults(json!({ "pay_mode": "async", "notify_delay_ms": 1500 }))
        .await;
    let (binding, token, _) = w.bound("u1", &pan, &id_no).await;
    let r = w.debit(&token, "u-1", 700, json!({})).await;
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r.json()["payment_id"].as_str().unwrap().to_owned();
    let unbind = format!("/v1/bindings/{binding}/unbind");
    let r = w.post("orchestrator", &unbind, json!(null)).await;
    assert_eq!(
        (r.status, r.json()["rule"].clone()),
        (409, json!("payments_in_flight")),
        "{}",
        r.text()
    );
    let p = w
        .wait_payment(&id, Duration::from_secs(10), |p| p["status"] == "succeeded")
        .await;
    assert_eq!(p["status"], "succeeded");
    let r = w.post("orchestrator", &unbind, json!(null)).await;
    assert_eq!(
        (r.status, r.json()["status"].clone()),
        (200, json!("unbound")),
        "{}",
        r.text()
    );
    assert_eq!(w.get(&format!("/v1/tokens/{token}")).await["status"], "deleted");
    assert!(w.bank.agreements().await.iter().all(|a| a["active"] == false));
    let r = w.debit(&token, "u-2", 100, json!({})).await;
    assert_eq!(
        (r.status, r.json()["rule"].clone()),
        (409, json!("unbound")),
        "{}",
        r.text()
    );
    let listed = w.bindings("u1").await;
    assert_eq!(listed[0]["status"], "unbound", "kept, never deleted");
    // The unbind first closed the binding to debits in the store (what a
    // debit on another node checks in its first write), then finished.
    let steps: Vec<String> = w
        .audited("binding.unbind", "status=")
        .await
        .iter()
        .map(|r| {
            r["detail"]
                .as_str()
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(steps, ["status=unbinding", "status=unbound"], "{steps:?}");
    let again = w.post("orchestrator", &unbind, json!(null)).await;
    assert_eq!(again.status, 200);
}

#[tokio::test]
async fn a_primary_that_is_down_routes_the_debit_to_the_backup_signing_there_first() {
    let (pan, id_no) = (debit_pan(107), id_number());
    let (w, backup) = backup_world(&pan, &id_no, &[]);
    let (_, token, _) = w.bound("u1", &pan, &id_no).await;
    let controls = w.get(&format!("/v1/tokens/{token}")).await["controls"]["channels"].clone();
    assert_eq!(
        controls,
        json!(["bank-a", "bank-b"]),
        "the token may use the route"
    );

    w.bank.set_faults(json!({ "unavailable": true })).await;
    let p = w.debit_pending(&token, "b-1", 1200, "awaiting_code").await;
    assert_eq!(
        (
            p["channel"].clone(),
            p["backup_route"].clone(),
            p["code_sender"].clone()
        ),
        (json!("bank-b"), json!(true), json!("bank"))
    );
    assert_eq!(
        p["route_attempts"],
        json!([{ "channel": "bank-a", "reason": "unavailable" }])
    );
    let id = p["payment_id"].as_str().unwrap().to_owned();
    let code = backup.sms(PHONE).await.last().unwrap()["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = w
        .post(
            "orchestrator",
            &format!("/v1/payments/{id}/confirm"),
            json!({ "code": code }),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["status"].clone()),
        (201, json!("succeeded")),
        "{}",
        r.text()
    );
    assert_eq!(backup.agreements().await.len(), 1, "signed at the backup");
    assert_eq!(backup.orders().await[0]["status"], "succeeded");

    // Next debit: the backup agreement is used at once.
    let r = w.debit(&token, "b-2", 300, json!({})).await;
    assert_eq!(
        (r.status, r.json()["channel"].clone()),
        (201, json!("bank-b")),
        "{}",
        r.text()
    );
    // Marked down by an operator: the primary is not even tried.
    let admin = w.service.client("orchestrator");
    let r = admin
        .send(
            "PUT",
            "/v1/admin/channels/bank-a",
            &[
                ("Content-Type", "application/json"),
                ("Idempotency-Key", "bank-a-down"),
            ],
            Some(br#"{"down":true}"#),
        )
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.json()["down_because"].clone()),
        (200, json!("admin")),
        "{}",
        r.text()
    );
    let r = w.debit(&token, "b-3", 300, json!({})).await;
    assert_eq!(
        (r.status, r.json()["route_attempts"].clone()),
        (201, json!([])),
        "{}",
        r.text()
    );
    assert_eq!(w.uses(&token).await, (3, 0));
    w.service.assert_audit_intact().await;
    w.assert_no_plaintext(&[&pan, NAME, &id_no, PHONE]).await;
}

/// 170号's multi-factor at a backup channel that signs on card and name
/// alone: it signs at once, but the debit pays only after the user enters
/// the platform's own SMS code (a wrong one pays nothing); the next debit
/// there pays at once under the agreement.
#[tokio::test]
async fn a_backup_that_signs_on_card_and_name_pays_only_after_the_platforms_code() {
    let (pan, id_no) = (debit_pan(121), id_number());
    let (w, backup) = backup_world(&pan, &id_no, &["--verify", "card-and-name"]);
    let (_, token, _) = w.bound("u1", &pan, &id_no).await;
    w.bank.set_faults(json!({ "unavailable": true })).await;
    let p = w.debit_pending(&token, "cn-1", 800, "awaiting_code").await;
    assert_eq!(
        (p["channel"].clone(), p["code_sender"].clone()),
        (json!("bank-b"), json!("platform"))
    );
    assert_eq!(
        backup.agreements().await.len(),
        1,
        "signed at once on card and name"
    );
    assert!(backup.orders().await.is_empty(), "nothing paid before the code");
    let id = p["payment_id"].as_str().unwrap().to_owned();
    let (code, sender) = w.bank.last_code(PHONE).await;
    assert_eq!(sender, "carrier", "the platform's own code");
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let confirm = |code: String| {
        let w = &w;
        let id = id.clone();
        async move {
            w.post(
                "orchestrator",
                &format!("/v1/payments/{id}/confirm"),
                json!({ "code": code }),
            )
            .await
        }
    };
    let r = confirm(wrong.to_owned()).await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(backup.orders().await.is_empty(), "a wrong code pays nothing");
    let r = confirm(code).await;
    assert_eq!(
        (r.status, r.json()["status"].clone()),
        (201, json!("succeeded")),
        "{}",
        r.text()
    );
    assert_eq!(backup.orders().await.len(), 1);
    let r = w.debit(&token, "cn-2", 300, json!({})).await;
    assert_eq!(
        (r.status, r.json()["channel"].clone()),
        (201, json!("bank-b")),
        "the agreement pays at once next time: {}",
        r.text()
    );
    w.service.assert_audit_intact().await;
}

#[tokio::test]
async fn a_processing_debit_keeps_its_reservation_until_the_bank_answers_the_settler() {
    let (pan, id_no) = (debit_pan(111), id_number());
    // A settler that asks the bank every 200 ms.
    let w = pay_world(&pan, &id_no, &[], "[payment]\npoll_interval_ms = 200\n");
    let (_, token, _) = w.bound("u1", &pan, &id_no).await;
    // The bank takes the orders and decides nothing by itself (its own
    // settlement ten minutes away): the payments are stuck in processing.
    w.bank
        .set_faults(json!({ "pay_mode": "async", "notify_delay_ms": 600_000 }))
        .await;
    let unpaid = w.debit_pending(&token, "s-unpaid", 700, "processing").await;
    let unpaid = unpaid["payment_id"].as_str().unwrap().to_owned();
    let paid = w.debit_pending(&token, "s-paid", 300, "processing").await;
    let paid = paid["payment_id"].as_str().unwrap().to_owned();

    // However many times the settler asks, "processing" holds both
    // reservations.
    let monitor = w.service.client("monitor");
    let passes = |text: &str| common::metric_value(text, "tokenvault_settler_passes_total").unwrap_or(0.0);
    let start = passes(&monitor.get("/metrics").await.unwrap().text());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let text = loop {
        let text = monitor.get("/metrics").await.unwrap().text();
        if passes(&text) >= start + 5.0 {
            break text;
        }
        assert!(std::time::Instant::now() < deadline, "five settler passes");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        common::metric_value(&text, "tokenvault_settler_payments_open"),
        Some(2.0)
    );
    for id in [&unpaid, &paid] {
        assert_eq!(w.get(&format!("/v1/payments/{id}")).await["status"], "processing");
    }
    assert_eq!(w.uses(&token).await, (0, 2));
    assert_eq!(w.usage(&token).await["amount_reserved"], 1000);

    // The bank closes one unpaid: the settler's next query releases its
    // reservation, in the write that records it closed.
    // (The test watches the token, not the payment: a payment read asks
    // the bank too, and this is the settler's work.)
    w.bank.decide(&unpaid, "closed").await;
    assert_eq!(w.wait_uses(&token, (0, 1)).await, (0, 1));
    let p = w.get(&format!("/v1/payments/{unpaid}")).await;
    assert_eq!(p["status"], "closed", "{p}");
    assert_eq!(w.usage(&token).await["amount_reserved"], 300);

    // The bank says the other is paid: its reservation is committed.
    w.bank.decide(&paid, "paid").await;
    assert_eq!(w.wait_uses(&token, (1, 0)).await, (1, 0));
    let p = w.get(&format!("/v1/payments/{paid}")).await;
    assert_eq!(p["status"], "succeeded", "{p}");
    let usage = w.usage(&token).await;
    assert_eq!(
        (
            usage["amount_committed"].as_u64(),
            usage["amount_reserved"].as_u64()
        ),
        (Some(300), Some(0))
    );

    // Each ending is one audit record by the settler, and the metrics count both.
    let by_settler = |records: Vec<Value>| {
        records
            .into_iter()
            .filter(|r| r["identity"].as_str().unwrap_or_default().contains("settler"))
            .count()
    };
    assert_eq!(by_settler(w.audited("payment.debit", "status=closed").await), 1);
    assert_eq!(
        by_settler(w.audited("payment.debit", "status=succeeded").await),
        1
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = monitor.get("/metrics").await.unwrap().text();
        let settled = |status: &str| {
            common::metric_value(
                &text,
                &format!("tokenvault_settler_payments_settled_total{{status=\"{status}\"}}"),
            )
        };
        if common::metric_value(&text, "tokenvault_settler_payments_open") == Some(0.0) {
            assert_eq!((settled("closed"), settled("succeeded")), (Some(1.0), Some(1.0)));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a pass that finds nothing open"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    w.service.assert_audit_intact().await;
}

#[tokio::test]
async fn a_user_paying_debit_is_closed_after_the_payment_code_time_out() {
    let (pan, id_no) = (debit_pan(108), id_number());
    let w = pay_world(
        &pan,
        &id_no,
        &["--pay-mode", "user-paying"],
        "[payment]\npoll_interval_ms = 300\npayment_code_timeout_s = 2\n",
    );
    let (_, token, _) = w.bound("u1", &pan, &id_no).await;
    let pending = w.debit_pending(&token, "p-1", 900, "user_paying").await;
    let id = pending["payment_id"].as_str().unwrap().to_owned();
    let p = w
        .wait_payment(&id, Duration::from_secs(15), |p| p["status"] == "closed")
        .await;
    assert_eq!(
        (p["status"].clone(), p["failure"].clone()),
        (json!("closed"), json!("user_paying_timeout")),
        "{p}"
    );
    assert_eq!(w.bank.orders().await[0]["status"], "closed");
    assert_eq!(w.uses(&token).await, (0, 0));
}

#[tokio::test]
async fn a_debit_that_reached_no_channel_is_retried_with_its_order_id_and_terms() {
    let (pan, id_no) = (debit_pan(108), id_number());
    let w = pay_world(&pan, &id_no, &[], "");
    let (_, token, _) = w.bound("u1", &pan, &id_no).await;
    let body = json!({
        "token": token, "order_id": "retry-1", "amount": 700, "currency": "CNY",
        "channel": "bank-a", "merchant": "M001", "expires_at": unix_now() + 600,
    });

    w.bank.set_faults(json!({ "unavailable": true })).await;
    let r = w.post("orchestrator", "/v1/payments", body.clone()).await;
    assert_eq!(
        (r.status, r.json()["type"].clone()),
        (503, json!("urn:tokenvault:problem:channel-unavailable")),
        "{}",
        r.text()
    );
    assert_eq!(w.uses(&token).await, (0, 0), "the reservation is back");
    // Tried again while the bank is still down: the same answer, still
    // nothing held, and no second payment for the order.
    let r = w.post("orchestrator", "/v1/payments", body.clone()).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(w.uses(&token).await, (0, 0));

    w.bank.set_faults(json!({ "unavailable": false })).await;
    let r = w.post("orchestrator", "/v1/payments", body.clone()).await;
    assert_eq!(
        (r.status, r.json()["status"].clone()),
        (201, json!("succeeded")),
        "the same order and terms go through once the bank is back: {}",
        r.text()
    );
    let paid = r.json();
    assert_eq!(
        paid["route_attempts"],
        json!([
            { "channel": "bank-a", "reason": "unavailable" },
            { "channel": "bank-a", "reason": "unavailable" }
        ]),
        "the attempts that reached nothing stay on the payment"
    );
    assert_eq!(w.uses(&token).await, (1, 0));
    assert_eq!(w.bank.orders().await.len(), 1, "one order at the bank");

    // Settled now: a repeat answers the payment; other terms conflict.
    let r = w.post("orchestrator", "/v1/payments", body.clone()).await;
    assert_eq!(
        (r.status, r.json()["payment_id"].clone()),
        (200, paid["payment_id"].clone()),
        "{}",
        r.text()
    );
    let mut other = body.clone();
    other["amount"] = json!(701);
    let r = w.post("orchestrator", "/v1/payments", other).await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(w.uses(&token).await, (1, 0));
    w.service.assert_audit_intact().await;
}

/// The answer to a debit, a refund and a cancel is remembered in the
/// operation's own write: the same key and request replay it (marked
/// `idempotent-replayed`, same status and body), and the bank saw each
/// once.
#[tokio::test]
async fn a_repeated_key_replays_the_debit_refund_and_cancel_answers() {
    let (pan, id_no) = (debit_pan(107), id_number());
    let w = pay_world(&pan, &id_no, &[], "[payment]\npoll_interval_ms = 60000\n");
    let (_, token, _) = w.bound("u1", &pan, &id_no).await;
    let client = w.service.client("orchestrator");
    let send = |path: String, key: &'static str, body: Value| {
        let client = &client;
        async move { client.post_json(&path, Some(key), &body).await.unwrap() }
    };
    let debit = json!({
        "token": token, "order_id": "k-1", "amount": 500, "currency": "CNY",
        "channel": "bank-a", "merchant": "M001", "expires_at": unix_now() + 600,
    });
    let first = send("/v1/payments".into(), "debit-k", debit.clone()).await;
    assert_eq!(first.status, 201, "{}", first.text());
    let id = first.json()["payment_id"].as_str().unwrap().to_owned();
    let refund = json!({ "refund_id": "rk", "amount": 200 });
    let refund_path = format!("/v1/payments/{id}/refunds");
    let refunded = send(refund_path.clone(), "refund-k", refund.clone()).await;
    assert_eq!(refunded.status, 201, "{}", refunded.text());
    let cancel_path = format!("/v1/payments/{id}/cancel");
    let cancelled = send(cancel_path.clone(), "cancel-k", json!(null)).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.text());
    for (path, key, body, original) in [
        ("/v1/payments".to_owned(), "debit-k", debit, &first),
        (refund_path, "refund-k", refund, &refunded),
        (cancel_path, "cancel-k", json!(null), &cancelled),
    ] {
        let again = send(path.clone(), key, body).await;
        assert_eq!(again.header("idempotent-replayed"), Some("true"), "{path}");
        assert_eq!(
            (again.status, again.json()),
            (original.status, original.json()),
            "{path}"
        );
    }
    let orders = w.bank.orders().await;
    let order = orders.iter().find(|o| o["order_no"] == json!(id)).unwrap();
    assert_eq!(orders.iter().filter(|o| o["order_no"] == json!(id)).count(), 1);
    assert_eq!(
        order["refunded"], 500,
        "200 refunded, then the cancel refunded the rest, once"
    );
}

/// Retention (`[payment] retention_s`) deletes a settled payment that
/// nothing can change any more, with its order index, audited by
/// `local:retention`; the order id may then be used again. It keeps a
/// payment in flight and a paid one still inside its cancel window. A
/// payment outlives its card: once the card is erased it still reads,
/// with the masked number and references only.
#[tokio::test]
async fn retention_deletes_settled_payments_and_keeps_those_that_can_still_change() {
    let (pan, id_no) = (debit_pan(120), id_number());
    let w = pay_world(
        &pan,
        &id_no,
        &[],
        "[payment]\npoll_interval_ms = 60000\nretention_s = 2\n[cards]\nretention_check_interval_s = 1\n",
    );
    let (_, token, card) = w.bound("u1", &pan, &id_no).await;
    let soon = json!({ "expires_at": unix_now() + 3 });
    let paid = w.debit(&token, "paid", 100, json!({})).await;
    assert_eq!(paid.status, 201, "{}", paid.text());
    let paid = paid.json()["payment_id"].as_str().unwrap().to_owned();

    w.bank
        .set_faults(json!({ "pay_mode": "async", "notify_delay_ms": 600000 }))
        .await;
    let pending = w.debit(&token, "pending", 100, soon.clone()).await;
    assert_eq!(pending.status, 202, "{}", pending.text());
    let pending = pending.json()["payment_id"].as_str().unwrap().to_owned();
    let closed = w.debit(&token, "closed", 100, soon.clone()).await;
    let closed = closed.json()["payment_id"].as_str().unwrap().to_owned();
    let r = w
        .post(
            "orchestrator",
            &format!("/v1/payments/{closed}/cancel"),
            json!(null),
        )
        .await;
    assert_eq!((r.status, r.json()["status"].clone()), (200, json!("closed")));

    let orchestrator = w.service.client("orchestrator");
    let gone = |id: String| {
        let orchestrator = &orchestrator;
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            loop {
                let r = orchestrator.get(&format!("/v1/payments/{id}")).await.unwrap();
                if r.status == 404 {
                    return;
                }
                assert_eq!(r.status, 200, "{}", r.text());
                assert!(std::time::Instant::now() < deadline, "{id} is deleted");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    gone(closed.clone()).await;
    // Several sweeps later: the one in flight and the cancellable one stay.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    for id in [&paid, &pending] {
        assert_eq!(
            w.get(&format!("/v1/payments/{id}")).await["payment_id"],
            json!(id)
        );
    }
    let purges = w.audited("payment.purge", "status=closed").await;
    assert_eq!(purges.len(), 1, "{purges:?}");
    assert_eq!(
        (purges[0]["identity"].as_str(), purges[0]["object"].as_str()),
        (Some("local:retention"), Some(closed.as_str()))
    );
    // The order id is free again: a new payment, not the deleted one.
    w.bank.set_faults(json!({})).await;
    let again = w.debit(&token, "closed", 100, json!({})).await;
    assert_eq!(again.status, 201, "{}", again.text());
    assert_ne!(again.json()["payment_id"], json!(closed));

    // The pending one settles (cancelled), the card is erased, and the
    // paid payment still reads: masked, no PAN.
    let r = w
        .post(
            "orchestrator",
            &format!("/v1/payments/{pending}/cancel"),
            json!(null),
        )
        .await;
    assert_eq!((r.status, r.json()["status"].clone()), (200, json!("closed")));
    let erased = w
        .service
        .client("card-capture")
        .send(
            "DELETE",
            &format!("/v1/cards/{card}"),
            &[("Idempotency-Key", "erase")],
            None,
        )
        .await
        .unwrap();
    assert_eq!(erased.status, 200, "{}", erased.text());
    let kept = orchestrator.get(&format!("/v1/payments/{paid}")).await.unwrap();
    assert_eq!(kept.status, 200, "{}", kept.text());
    assert!(!kept.text().contains(&pan[..pan.len() - 4]), "{}", kept.text());
    let masked = kept.json()["masked_card"].as_str().unwrap().to_owned();
    assert!(
        masked.starts_with(&pan[..6]) && masked.ends_with(&pan[pan.len() - 4..]) && masked.contains('*'),
        "{masked}"
    );
    gone(pending).await;
    assert_eq!(
        w.get(&format!("/v1/payments/{paid}")).await["status"],
        json!("succeeded")
    );
    w.service.assert_audit_intact().await;
}
