//! One world for the end-to-end flow tests: the real service and a
//! `bank-sim` process on loopback, each call over mutual TLS with the
//! test's PKI, and helpers for the cards, identities and users they need.

use super::bank_sim::{BankSim, Holder};
use super::service::{Options, Response, Service};
use super::{resident_id, with_check_digit};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};

pub const NAME: &str = "张三";
pub const PHONE: &str = "13912345678";
pub const PASSWORD: &str = "270394";
pub static KEYS: AtomicU64 = AtomicU64::new(1);

pub fn key() -> String {
    format!("k-{}", KEYS.fetch_add(1, Ordering::Relaxed))
}

pub fn id_number() -> String {
    resident_id("110105", "19850317", 12)
}

pub fn debit_pan(seed: u64) -> String {
    with_check_digit(&format!("622202{seed:012}"))
}

pub fn credit_pan(seed: u64) -> String {
    with_check_digit(&format!("436742{seed:09}"))
}

pub struct World {
    pub service: Service,
    pub bank: BankSim,
}

/// The service with one bank channel `bank-a` (the simulator also serving
/// as the SMS carrier), started with `flags` and `binding` config.
pub fn world(holders: &[Holder<'_>], flags: &[&str], binding: &str) -> World {
    world_with(holders, flags, "", binding)
}

/// `world`, with extra `[gateway]` settings.
pub fn world_with(holders: &[Holder<'_>], flags: &[&str], gateway: &str, binding: &str) -> World {
    world_of(Options::default(), holders, flags, gateway, binding)
}

/// `world_with`, the service started with `options`.
pub fn world_of(
    options: Options,
    holders: &[Holder<'_>],
    flags: &[&str],
    gateway: &str,
    binding: &str,
) -> World {
    let mut service = Service::prepare(options);
    let bank = BankSim::start(&service.keys, service.dir.path(), "bank", holders, flags);
    service.add_config(&format!(
        "[gateway]\nsms_carrier = \"{}\"\n{gateway}{}{binding}",
        bank.endpoint(),
        bank.channel_config("bank-a")
    ));
    service.spawn();
    World { service, bank }
}

/// Seconds since the Unix epoch (request bodies carry them).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Token controls as a request sends them: `bank-a`, merchant `M001`,
/// valid from `from` for an hour from now.
pub fn token_controls(max_uses: u32, per_tx: u64, total: u64, from: i64) -> Value {
    json!({
        "max_uses": max_uses, "per_transaction_limit": per_tx, "cumulative_limit": total,
        "currency": "CNY", "valid_from": from, "valid_until": unix_now() + 3600,
        "channels": ["bank-a"], "merchants": ["M001"],
    })
}

/// A debit of `amount` fen on `token` at `bank-a` for merchant `M001`,
/// its order open for ten minutes.
pub fn debit_body(token: &str, order: &str, amount: u64) -> Value {
    json!({
        "token": token, "order_id": order, "amount": amount, "currency": "CNY",
        "channel": "bank-a", "merchant": "M001", "expires_at": unix_now() + 600,
    })
}

pub fn holder<'a>(card_no: &'a str, id_no: &'a str) -> Holder<'a> {
    Holder {
        card_no,
        name: NAME,
        id_no,
        phone: PHONE,
        credit: None,
    }
}

impl World {
    pub async fn post(&self, role: &str, path: &str, body: Value) -> Response {
        self.service
            .client(role)
            .post_json(path, Some(&key()), &body)
            .await
            .unwrap()
    }

    /// A token for `card` with controls chosen by the test.
    pub async fn token_with(&self, card: &str, controls: Value) -> String {
        let r = self
            .post(
                "orchestrator",
                "/v1/tokens",
                json!({ "card_ref": card, "controls": controls }),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()["token"].as_str().unwrap().to_owned()
    }

    pub async fn card(&self, pan: &str) -> String {
        let r = self
            .post("card-capture", "/v1/cards", json!({ "pan": pan }))
            .await;
        assert!(r.status == 201 || r.status == 200, "{}", r.text());
        r.json()["card_ref"].as_str().unwrap().to_owned()
    }

    pub async fn identity(&self, id_no: &str, phone: &str) -> String {
        let r = self
            .post(
                "card-capture",
                "/v1/identities",
                json!({ "name": NAME, "id_number": id_no, "phone": phone }),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()["identity_ref"].as_str().unwrap().to_owned()
    }

    pub async fn user_with_password(&self, user: &str, identity: &str) {
        let r = self
            .post(
                "card-capture",
                "/v1/payment-passwords",
                json!({ "user_id": user, "identity_ref": identity, "password": PASSWORD }),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
    }

    /// A stored card and identity, and a user with a payment password for it.
    pub async fn ready(&self, user: &str, pan: &str, id_no: &str) -> (String, String) {
        let card = self.card(pan).await;
        let identity = self.identity(id_no, PHONE).await;
        self.user_with_password(user, &identity).await;
        (card, identity)
    }

    /// A user with a signed binding of `pan`: (binding id, token, card ref).
    pub async fn bound(&self, user: &str, pan: &str, id_no: &str) -> (String, String, String) {
        let (card, identity) = self.ready(user, pan, id_no).await;
        let r = self.start(user, &card, &identity, json!({})).await;
        assert_eq!(r.status, 201, "{}", r.text());
        let binding = r.json()["binding_id"].as_str().unwrap().to_owned();
        let (code, _) = self.bank.last_code(PHONE).await;
        let r = self.confirm(&binding, &code).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let token = r.json()["token"].as_str().unwrap().to_owned();
        (binding, token, card)
    }

    pub async fn start(&self, user: &str, card: &str, identity: &str, extra: Value) -> Response {
        let mut body =
            json!({ "user_id": user, "card_ref": card, "identity_ref": identity, "channel": "bank-a" });
        if let (Some(map), Some(more)) = (body.as_object_mut(), extra.as_object()) {
            map.extend(more.clone());
        }
        self.post("orchestrator", "/v1/bindings", body).await
    }

    pub async fn confirm(&self, binding: &str, code: &str) -> Response {
        self.post(
            "orchestrator",
            &format!("/v1/bindings/{binding}/confirm"),
            json!({ "code": code }),
        )
        .await
    }

    pub async fn bindings(&self, user: &str) -> Vec<Value> {
        let r = self
            .service
            .client("orchestrator")
            .get(&format!("/v1/users/{user}/bindings"))
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["bindings"].as_array().unwrap().clone()
    }

    pub async fn held_verifications(&self) -> u64 {
        let text = self
            .service
            .client("monitor")
            .get("/metrics")
            .await
            .unwrap()
            .text();
        text.lines()
            .find_map(|l| l.strip_prefix("tokenvault_held_card_verifications "))
            .expect("gauge present")
            .trim()
            .parse()
            .unwrap()
    }

    /// No secret the test handed in appears in the vault's data files, its
    /// debug log, or the audit export.
    pub async fn assert_no_plaintext(&self, secrets: &[&str]) {
        let export = self.service.audit_export().await;
        let log = self.service.log();
        let files = super::files_under(&self.service.stored_dir());
        for secret in secrets {
            assert!(!holds(export.as_bytes(), secret), "audit export holds a secret");
            assert!(!holds(log.as_bytes(), secret), "service log holds a secret");
            for (path, bytes) in &files {
                assert!(!holds(bytes, secret), "{} holds a secret", path.display());
            }
        }
    }
}

/// Whether `haystack` holds `secret`. A short secret (a CVN, an expiry, a
/// code) counts only as a whole token: inside a hex id or a millisecond
/// timestamp its digits are chance, not a leak.
pub fn holds(haystack: &[u8], secret: &str) -> bool {
    let needle = secret.as_bytes();
    let whole_token = needle.len() < 8;
    memchr::memmem::find_iter(haystack, needle).any(|i| {
        if !whole_token {
            return true;
        }
        let before = i.checked_sub(1).map(|j| haystack[j]);
        let after = haystack.get(i + needle.len()).copied();
        [before, after]
            .iter()
            .all(|b| b.is_none_or(|b| !b.is_ascii_alphanumeric()))
    })
}

pub fn problem_rule(r: &Response) -> (u16, String, String) {
    let doc = r.json();
    (
        r.status,
        doc["field"].as_str().unwrap_or_default().to_owned(),
        doc["rule"].as_str().unwrap_or_default().to_owned(),
    )
}
