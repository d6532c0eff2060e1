//! Key custody and lifecycle against the real binary over mutual TLS:
//! unsealing from custodians' KEK shares (M works, M-1 does not, duplicates
//! and wrong shares do not count), and data-key rotation under live traffic,
//! a rewrap killed half-way that resumes, retirement, and no key material in
//! the log or the audit export.

mod common;

use common::service::{Client, Options, Service};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokenvault::tls::pki::Validity;

fn tokenvault(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tokenvault"))
        .args(args)
        .output()
        .expect("run tokenvault")
}

/// `tokenvault keys <args>` against `service` as `identity` (a client
/// certificate in the service's folder or its PKI).
fn keys_cli(service: &Service, cert: &Path, key: &Path, args: &[&str]) -> Output {
    let url = format!("https://{}", service.addr);
    let ca = service.keys.ca_cert();
    let mut all = vec!["keys"];
    all.extend_from_slice(args);
    all.extend_from_slice(&[
        "--url",
        &url,
        "--ca",
        ca.to_str().unwrap(),
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    tokenvault(&all)
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn make_shares(dir: &Path, threshold: u8, shares: u8) -> Vec<PathBuf> {
    let out = tokenvault(&[
        "keys",
        "init-shares",
        "--threshold",
        &threshold.to_string(),
        "--plaintext",
        &shares.to_string(),
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    (1..=shares)
        .map(|i| dir.join(format!("share-{i}-of-{shares}.json")))
        .collect()
}

/// A share set sealed to the custodians' certificates, in order.
fn make_sealed_shares(dir: &Path, threshold: u8, custodians: &[&Custodian]) -> Vec<PathBuf> {
    let mut args = vec![
        "keys".to_owned(),
        "init-shares".to_owned(),
        "--threshold".to_owned(),
        threshold.to_string(),
        "--out".to_owned(),
        dir.to_str().unwrap().to_owned(),
    ];
    for c in custodians {
        args.extend(["--custodian".to_owned(), c.cert.to_str().unwrap().to_owned()]);
    }
    let out = tokenvault(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success(), "{}", text(&out));
    let n = custodians.len();
    (1..=n)
        .map(|i| dir.join(format!("share-{i}-of-{n}.sealed.json")))
        .collect()
}

fn share_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn custodian_policy(service: &Service, name: &str) {
    std::fs::write(
        service.dir.path().join(format!("policies/{name}.toml")),
        format!(
            "identity = \"spiffe://tokenvault/{name}\"\ndescription = \"key custodian\"\nallow = [\"keys.unseal\", \"keys.status\", \"keys.rotate_kek\"]\n"
        ),
    )
    .unwrap();
}

struct Custodian {
    client: Client,
    cert: PathBuf,
    key: PathBuf,
}

fn custodian(service: &Service, name: &str) -> Custodian {
    let (client, cert) = service.issued_client(
        name,
        &format!("spiffe://tokenvault/{name}"),
        Validity::days_from_now(1),
    );
    let key = service.dir.path().join(format!("{name}.key.pem"));
    Custodian { client, cert, key }
}

async fn submit(c: &Custodian, share: &Value) -> (u16, Value) {
    let r = c.client.post_json("/v1/admin/unseal", None, share).await.unwrap();
    (r.status, r.json())
}

fn pan(i: u64) -> String {
    common::with_check_digit(&format!("621700{i:012}"))
}

async fn store_card(client: &Client, i: u64) -> Result<String, String> {
    let r = client
        .post_json("/v1/cards", Some(&format!("card-{i}")), &json!({"pan": pan(i)}))
        .await?;
    if r.status != 201 && r.status != 200 {
        return Err(format!("store {i}: {} {}", r.status, r.text()));
    }
    Ok(r.json()["card_ref"].as_str().unwrap().to_owned())
}

async fn read_card(client: &Client, card: &str) -> Result<(), String> {
    let r = client.get(&format!("/v1/cards/{card}")).await?;
    if r.status != 200 {
        return Err(format!("read {card}: {} {}", r.status, r.text()));
    }
    Ok(())
}

fn assert_no_key_material(service: &Service, auditor: &str, secrets: &[String]) {
    let log = service.log();
    for secret in secrets {
        assert!(!log.contains(secret.as_str()), "key material in the service log");
        assert!(
            !auditor.contains(secret.as_str()),
            "key material in the audit export"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_until_threshold_shares_from_distinct_custodians() {
    let mut service = Service::prepare(Options {
        extra_config: "[kek]\ncustody = \"shares\"\n".into(),
        ..Options::default()
    });
    let shares_dir = service.dir.path().join("shares");
    let files = make_shares(&shares_dir, 3, 5);
    for file in &files {
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(file).unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600, "share files are private");
    }
    let shares: Vec<Value> = files.iter().map(|f| share_json(f)).collect();
    for name in ["custodian-1", "custodian-2", "custodian-3"] {
        custodian_policy(&service, name);
    }
    service.spawn();
    let capture = service.client("card-capture");
    let [c1, c2, c3] = ["custodian-1", "custodian-2", "custodian-3"].map(|n| custodian(&service, n));

    // Sealed: alive, but data operations answer 503 with a problem.
    assert_eq!(capture.get("/health").await.unwrap().status, 200);
    let r = capture
        .post_json("/v1/cards", Some("k1"), &json!({"pan": pan(1)}))
        .await
        .unwrap();
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert!(r.json()["type"].as_str().unwrap().ends_with(":sealed"));
    assert_eq!(r.header("retry-after"), Some("5"));

    // Only an identity granted keys.unseal may submit.
    let r = service
        .client("orchestrator")
        .post_json("/v1/admin/unseal", None, &shares[0])
        .await
        .unwrap();
    assert_eq!(r.status, 403);

    // Share 1 counts once, and each custodian counts once.
    assert_eq!(submit(&c1, &shares[0]).await.0, 202);
    let (status, p) = submit(&c2, &shares[0]).await;
    assert_eq!(
        (status, p["rule"].as_str()),
        (409, Some("duplicate_share")),
        "{p}"
    );
    let (status, p) = submit(&c1, &shares[1]).await;
    assert_eq!(
        (status, p["rule"].as_str()),
        (409, Some("duplicate_custodian")),
        "{p}"
    );

    // A corrupted share is caught by its digest and does not count.
    let mut corrupted = shares[1].clone();
    let mut hex = corrupted["share"].as_str().unwrap().to_owned();
    let last = if hex.ends_with('0') { "1" } else { "0" };
    hex.replace_range(hex.len() - 1.., last);
    corrupted["share"] = json!(hex);
    let (status, p) = submit(&c2, &corrupted).await;
    assert_eq!(
        (status, p["field"].as_str(), p["rule"].as_str()),
        (422, Some("share"), Some("digest_mismatch"))
    );

    // M-1 = 2 distinct shares: still sealed.
    let (status, s) = submit(&c2, &shares[1]).await;
    assert_eq!(
        (status, s["sealed"].as_bool(), s["shares_submitted"].as_u64()),
        (202, Some(true), Some(2))
    );
    let r = capture
        .post_json("/v1/cards", Some("k1"), &json!({"pan": pan(1)}))
        .await
        .unwrap();
    assert_eq!(r.status, 503);
    let r = c3.client.get("/v1/admin/seal").await.unwrap();
    assert_eq!(r.json()["sealed"], json!(true));
    assert_eq!(r.json()["threshold"], json!(3));
    // Monitoring sees the seal and how far the shares are, as OpenMetrics.
    let monitor = service.client("monitor");
    let metrics = monitor.get("/metrics").await.unwrap().text();
    common::assert_openmetrics(&metrics);
    for line in [
        "tokenvault_sealed 1",
        "tokenvault_unseal_shares_submitted 2",
        "tokenvault_unseal_share_threshold 3",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
    assert_eq!(capture.get("/metrics").await.unwrap().status, 403);

    // The third custodian uses the CLI, over mutual TLS from their own certificate.
    let out = keys_cli(
        &service,
        &c3.cert,
        &c3.key,
        &["unseal", "--share", files[4].to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("\"sealed\":false"), "{}", text(&out));
    let metrics = monitor.get("/metrics").await.unwrap().text();
    assert!(metrics.lines().any(|l| l == "tokenvault_sealed 0"), "{metrics}");
    let card = store_card(&capture, 1).await.unwrap();
    let r = c1
        .client
        .post_json("/v1/admin/unseal", None, &shares[2])
        .await
        .unwrap();
    assert_eq!(
        (
            r.status,
            r.json()["type"]
                .as_str()
                .map(|t| t.ends_with(":already-unsealed"))
        ),
        (409, Some(true))
    );

    // Every submission is in the audit chain, with the custodian's identity.
    let auditor = service.client("auditor");
    let export = auditor.get("/v1/audit/export").await.unwrap().text();
    let unseals: Vec<Value> = export
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["operation"] == "keys.unseal")
        .collect();
    let who = |identity: &str, outcome: &str| {
        unseals
            .iter()
            .filter(|r| r["identity"] == identity && r["outcome"] == outcome)
            .count()
    };
    assert_eq!(who("spiffe://tokenvault/custodian-1", "success"), 1);
    assert_eq!(who("spiffe://tokenvault/custodian-1", "refused"), 1);
    assert_eq!(who("spiffe://tokenvault/custodian-2", "refused"), 2);
    assert_eq!(who("spiffe://tokenvault/custodian-2", "success"), 1);
    assert!(who("spiffe://tokenvault/custodian-3", "success") >= 1);
    assert_eq!(who("spiffe://tokenvault/orchestrator", "denied"), 1);
    assert!(unseals.iter().any(|r| r["detail"]
        .as_str()
        .unwrap_or("")
        .starts_with("unsealed: share set")));
    let verify = auditor.get("/v1/audit/verify").await.unwrap().json();
    assert_eq!(verify["intact"], json!(true), "{verify}");

    // After a restart it is sealed again; another subset opens it, and a
    // share from another set is refused.
    service.kill();
    service.spawn();
    let capture = service.client("card-capture");
    let [c1, c2, c3] = ["custodian-1", "custodian-2", "custodian-3"].map(|n| custodian(&service, n));
    assert_eq!(
        capture.get(&format!("/v1/cards/{card}")).await.unwrap().status,
        503
    );
    let other_set = make_shares(&service.dir.path().join("other"), 2, 3);
    let (status, p) = submit(&c1, &share_json(&other_set[0])).await;
    assert_eq!((status, p["rule"].as_str()), (422, Some("not_this_stores_set")));
    assert_eq!(submit(&c1, &shares[3]).await.0, 202);
    assert_eq!(submit(&c2, &shares[2]).await.0, 202);
    let (status, s) = submit(&c3, &shares[0]).await;
    assert_eq!((status, s["sealed"].as_bool()), (200, Some(false)));
    read_card(&service.client("orchestrator"), &card).await.unwrap();

    // KEK rotation: two custodians submit shares of a new 2-of-3 set; the
    // keys are rewrapped, the old set no longer unseals, the new one does.
    let next = make_shares(&service.dir.path().join("next"), 2, 3);
    let next_shares: Vec<Value> = next.iter().map(|f| share_json(f)).collect();
    let r = c1
        .client
        .post_json("/v1/admin/kek/rotation", Some("kek-old-set"), &shares[0])
        .await
        .unwrap();
    assert_eq!((r.status, r.json()["rule"].as_str()), (422, Some("current_set")));
    let r = c1
        .client
        .post_json("/v1/admin/kek/rotation", Some("kek-next-0"), &next_shares[0])
        .await
        .unwrap();
    assert_eq!(r.status, 202, "{}", r.text());
    let r = c2
        .client
        .post_json("/v1/admin/kek/rotation", Some("kek-next-2"), &next_shares[2])
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.json()["version"].as_u64()),
        (200, Some(2)),
        "{}",
        r.text()
    );
    let keys = c1.client.get("/v1/admin/keys").await.unwrap().json();
    assert_eq!(keys["kek_version"], json!(2));
    assert_eq!(keys["share_set"]["set_id"], next_shares[0]["manifest"]["set_id"]);
    assert!(keys["data_keys"]
        .as_array()
        .unwrap()
        .iter()
        .all(|k| k["kek_version"] == json!(2)));
    service.kill();
    service.spawn();
    let [c1, c2, _] = ["custodian-1", "custodian-2", "custodian-3"].map(|n| custodian(&service, n));
    let (status, p) = submit(&c1, &shares[0]).await;
    assert_eq!((status, p["rule"].as_str()), (422, Some("not_this_stores_set")));
    assert_eq!(submit(&c1, &next_shares[1]).await.0, 202);
    assert_eq!(submit(&c2, &next_shares[0]).await.0, 200);
    read_card(&service.client("orchestrator"), &card).await.unwrap();

    let auditor = service.client("auditor");
    assert_eq!(
        auditor.get("/v1/audit/verify").await.unwrap().json()["intact"],
        json!(true)
    );
    let export = auditor.get("/v1/audit/export").await.unwrap().text();
    assert!(export
        .lines()
        .any(|l| l.contains("keys.rotate_kek") && l.contains("KEK rotated to version 2")));
    let secrets: Vec<String> = shares
        .iter()
        .chain(&next_shares)
        .map(|s| s["share"].as_str().unwrap().to_owned())
        .collect();
    assert_no_key_material(&service, &export, &secrets);
}

#[tokio::test]
async fn share_submissions_are_limited_per_identity_and_per_node_and_refusals_audited() {
    let mut service = Service::prepare(Options {
        extra_config:
            "[kek]\ncustody = \"shares\"\nunseal_per_identity = 3\nunseal_per_node = 7\nunseal_window_s = 2\n"
                .into(),
        ..Options::default()
    });
    let files = make_shares(&service.dir.path().join("shares"), 2, 3);
    let shares: Vec<Value> = files.iter().map(|f| share_json(f)).collect();
    let names = ["custodian-1", "custodian-2", "custodian-3", "custodian-4"];
    for name in names {
        custodian_policy(&service, name);
    }
    service.spawn();
    let [c1, c2, c3, c4] = names.map(|n| custodian(&service, n));
    let garbage = json!({ "not": "a share" });
    let limited = |status: u16, p: &Value| {
        status == 429 && p["type"].as_str().is_some_and(|t| t.ends_with(":rate-limited"))
    };

    // One identity: three submissions in the window are looked at (and
    // refused as unreadable); the fourth is not looked at.
    for _ in 0..3 {
        let (status, p) = submit(&c1, &garbage).await;
        assert!(
            (400..500).contains(&status) && !limited(status, &p),
            "{status} {p}"
        );
    }
    let r = c1
        .client
        .post_json("/v1/admin/unseal", None, &shares[0])
        .await
        .unwrap();
    assert!(limited(r.status, &r.json()), "{}", r.text());
    assert!(r.json()["detail"].as_str().unwrap().contains("per identity"));
    assert!(r
        .header("retry-after")
        .is_some_and(|s| s.parse::<u64>().is_ok_and(|n| (1..=2).contains(&n))));

    // The node: seven in the window from everyone (c1's refused fourth did
    // not count), so c2's three and c3's first fill it and c3's second,
    // and c4's first, are refused.
    for c in [&c2, &c2, &c2, &c3] {
        let (status, p) = submit(c, &garbage).await;
        assert!(!limited(status, &p), "{status} {p}");
    }
    for c in [&c3, &c4] {
        let (status, p) = submit(c, &garbage).await;
        assert!(limited(status, &p), "{status} {p}");
        assert!(p["detail"].as_str().unwrap().contains("per node"), "{p}");
    }

    // Once the window has passed, real shares unseal, and every refusal is
    // on the trail with the identity that was refused.
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    assert_eq!(submit(&c1, &shares[0]).await.0, 202);
    assert_eq!(submit(&c4, &shares[1]).await.0, 200);
    let export = service.audit_export().await;
    let limited_records: Vec<Value> = export
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["operation"] == "keys.unseal" && r["outcome"] == "refused")
        .filter(|r| r["detail"].as_str().unwrap_or("").contains("rate limit"))
        .collect();
    let refused = |identity: &str, scope: &str| {
        limited_records
            .iter()
            .filter(|r| {
                r["identity"] == format!("spiffe://tokenvault/{identity}")
                    && r["detail"].as_str().unwrap().contains(scope)
            })
            .count()
    };
    assert_eq!(
        (
            refused("custodian-1", "per identity"),
            refused("custodian-3", "per node"),
            refused("custodian-4", "per node")
        ),
        (1, 1, 1),
        "{limited_records:?}"
    );
    // The sealed-time journal is written when the trail opens, after the
    // trail's own opening record, but each record carries when it
    // happened: the refusals' times are before the opening's, 2 s apart
    // from the unseal itself.
    let records: Vec<Value> = export.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let at = |r: &Value| r["at_ms"].as_i64().unwrap();
    let opening = records
        .iter()
        .find(|r| r["operation"] == "service.start")
        .unwrap();
    let unsealed = records
        .iter()
        .find(|r| {
            r["operation"] == "keys.unseal"
                && r["outcome"] == "success"
                && r["detail"].as_str().unwrap().starts_with("unsealed")
        })
        .unwrap();
    assert!(limited_records
        .iter()
        .all(|r| r["seq"].as_u64() > opening["seq"].as_u64()));
    assert!(
        limited_records
            .iter()
            .all(|r| at(r) + 2_000 <= at(unsealed) && at(r) < at(opening)),
        "each journal record is timed when it happened: {limited_records:?} {opening} {unsealed}"
    );
    service.assert_audit_intact().await;
}

#[tokio::test]
async fn a_kek_past_its_cryptoperiod_shows_in_the_metrics() {
    let mut service = Service::prepare(Options {
        extra_config: "[kek]\ncustody = \"shares\"\ncryptoperiod_s = 1\n".into(),
        ..Options::default()
    });
    let files = make_shares(&service.dir.path().join("shares"), 2, 3);
    let shares: Vec<Value> = files.iter().map(|f| share_json(f)).collect();
    for name in ["custodian-1", "custodian-2"] {
        custodian_policy(&service, name);
    }
    service.spawn();
    let [c1, c2] = ["custodian-1", "custodian-2"].map(|n| custodian(&service, n));
    assert_eq!(submit(&c1, &shares[0]).await.0, 202);
    assert_eq!(submit(&c2, &shares[1]).await.0, 200);
    let monitor = service.client("monitor");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = monitor.get("/metrics").await.unwrap().text();
        assert_eq!(
            common::metric_value(&text, "tokenvault_kek_cryptoperiod_seconds"),
            Some(1.0),
            "{text}"
        );
        if common::metric_value(&text, "tokenvault_kek_past_cryptoperiod") == Some(1.0) {
            assert!(common::metric_value(&text, "tokenvault_kek_age_seconds").is_some_and(|age| age >= 1.0));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the KEK never showed past its cryptoperiod"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_data_key_past_its_cryptoperiod_is_replaced_automatically() {
    let service = Service::start(Options {
        extra_config: "[keys]\ncryptoperiod_s = 2\ncheck_interval_s = 1\n".into(),
        ..Options::default()
    });
    let admin = service.client("key-admin");
    let capture = service.client("card-capture");
    store_card(&capture, 1).await.unwrap();
    let mut versions = 1;
    for _ in 0..80 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let keys = admin.get("/v1/admin/keys").await.unwrap().json();
        versions = keys["data_keys"].as_array().unwrap().len();
        if versions >= 2 {
            break;
        }
    }
    assert!(
        versions >= 2,
        "a new version within the cryptoperiod plus a check interval"
    );
    store_card(&capture, 2).await.unwrap();
    let export = service
        .client("auditor")
        .get("/v1/audit/export")
        .await
        .unwrap()
        .text();
    assert!(export.lines().any(|l| l.contains("keys.rotate")
        && l.contains("local:key-maintenance")
        && l.contains("cryptoperiod")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_under_traffic_rewrap_resumes_after_kill_then_retire() {
    let mut service = Service::prepare(Options {
        extra_config: "[keys]\nrewrap_records_per_s = 100\n".into(),
        ..Options::default()
    });
    service.spawn();
    let capture = Arc::new(service.client("card-capture"));
    let reader = Arc::new(service.client("orchestrator"));
    let admin = service.client("key-admin");
    let admin_cert = service.keys.client_cert("key-admin");
    let admin_key = service.keys.client_key("key-admin");

    let mut cards = Vec::new();
    for i in 0..150 {
        cards.push(store_card(&capture, i).await.unwrap());
    }

    // A writer and a reader run while the data key rotates three times.
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let mut traffic = Vec::new();
    for role in 0..2u64 {
        let (capture, reader, stop, failures, done, cards) = (
            Arc::clone(&capture),
            Arc::clone(&reader),
            Arc::clone(&stop),
            Arc::clone(&failures),
            Arc::clone(&done),
            cards.clone(),
        );
        traffic.push(tokio::spawn(async move {
            let mut i = 0u64;
            let mut written = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let result = if role == 0 {
                    store_card(&capture, 10_000 + i).await.map(|c| written.push(c))
                } else {
                    read_card(&reader, &cards[(i as usize) % cards.len()]).await
                };
                if let Err(e) = result {
                    eprintln!("{e}");
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                done.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
            written
        }));
    }
    for expected in 2..=4 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let r = admin
            .post_empty("/v1/admin/keys/rotate", &format!("rotate-to-{expected}"))
            .await
            .unwrap();
        assert_eq!(
            (r.status, r.json()["version"].as_u64()),
            (201, Some(expected)),
            "{}",
            r.text()
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut written = Vec::new();
    for t in traffic {
        written.extend(t.await.unwrap());
    }
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "requests failed during rotation"
    );
    assert!(done.load(Ordering::Relaxed) > 20, "traffic ran");
    cards.extend(written);

    let status = admin.get("/v1/admin/keys").await.unwrap().json();
    let versions: Vec<u64> = status["data_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, vec![1, 2, 3, 4]);
    let records: u64 = status["data_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["records"].as_u64().unwrap())
        .sum();
    assert_eq!(records, cards.len() as u64);
    assert!(status["data_keys"][0]["records"].as_u64().unwrap() >= 150);
    assert_eq!(status["data_keys"][3]["state"], json!("current"));

    // Retiring a version in use is refused and changes nothing.
    let r = admin
        .post_empty("/v1/admin/keys/1/retire", "retire-1-in-use")
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.json()["rule"].as_str()),
        (409, Some("in_use")),
        "{}",
        r.text()
    );

    // Rewrap at 100 records/s; killed half-way, it resumes by itself.
    let r = admin
        .post_empty("/v1/admin/keys/rewrap", "rewrap-1")
        .await
        .unwrap();
    assert_eq!(r.status, 202, "{}", r.text());
    let total = r.json()["total"].as_u64().unwrap();
    assert_eq!(total, cards.len() as u64);
    let mut before_kill = 0;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let job = admin.get("/v1/admin/keys").await.unwrap().json()["rewrap"].clone();
        before_kill = job["scanned"].as_u64().unwrap();
        if before_kill >= 40 {
            assert_eq!(job["state"], json!("running"));
            break;
        }
    }
    assert!(
        before_kill >= 40 && before_kill < total,
        "{before_kill} of {total}"
    );
    service.kill();
    service.spawn();
    let admin = service.client("key-admin");
    let reader = service.client("orchestrator");
    let job = admin.get("/v1/admin/keys").await.unwrap().json()["rewrap"].clone();
    assert!(
        job["scanned"].as_u64().unwrap() >= before_kill - 20,
        "resumed, not restarted: {job}"
    );
    // The CLI follows the running job to the end with a progress bar and ETA.
    let out = keys_cli(&service, &admin_cert, &admin_key, &["rewrap"]);
    assert!(out.status.success(), "{}", text(&out));
    let shown = text(&out);
    assert!(
        shown.contains("ETA") && shown.contains("100.0%") && shown.contains("rewrap finished"),
        "{shown}"
    );

    let status = admin.get("/v1/admin/keys").await.unwrap().json();
    let per_version: Vec<(u64, u64)> = status["data_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["version"].as_u64().unwrap(), k["records"].as_u64().unwrap()))
        .collect();
    assert_eq!(per_version, vec![(1, 0), (2, 0), (3, 0), (4, cards.len() as u64)]);
    for version in 1..=3 {
        let r = admin
            .post_empty(
                &format!("/v1/admin/keys/{version}/retire"),
                &format!("retire-{version}"),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let r = admin
        .post_empty("/v1/admin/keys/4/retire", "retire-4-current")
        .await
        .unwrap();
    assert_eq!((r.status, r.json()["rule"].as_str()), (409, Some("current")));
    for card in cards.iter().step_by(7) {
        read_card(&reader, card).await.unwrap();
    }
    let out = keys_cli(&service, &admin_cert, &admin_key, &["status"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("retired") && text(&out).contains("current"),
        "{}",
        text(&out)
    );

    let auditor = service.client("auditor");
    assert_eq!(
        auditor.get("/v1/audit/verify").await.unwrap().json()["intact"],
        json!(true)
    );
    let export = auditor.get("/v1/audit/export").await.unwrap().text();
    for operation in ["keys.rotate", "keys.rewrap", "keys.retire"] {
        assert!(
            export
                .lines()
                .any(|l| l.contains(operation) && l.contains("spiffe://tokenvault/key-admin")),
            "{operation} audited with the key admin's identity"
        );
    }
    let kek = std::fs::read_to_string(service.dir.path().join("keys/dev-kek.hex")).unwrap();
    assert_no_key_material(&service, &export, &[kek.trim().to_owned()]);
}

/// Issue 20: two nodes on one PostgreSQL database, each sealed on its own.
/// A custodian unseals both in one command (`--also`); another unseals
/// only node a, which then serves while b, one share short, answers 503;
/// the second share reaching b opens it too. Then the KEK is rotated to a
/// new set: a assembles it first and rotates; b is not ready (its KEK is
/// behind the store's) until the same shares reach it and it adopts the
/// new KEK; a data key made after the rotation then opens on both.
/// Split knowledge: each share is sealed to its custodian's certificate
/// key, so the files the ceremony writes hold no share in the clear; only
/// the custodian's own key opens theirs, and the service counts a share
/// from the custodian it names only, even opened.
#[tokio::test]
async fn shares_sealed_to_custodians_open_and_count_for_their_custodian_only() {
    let mut service = Service::prepare(Options {
        extra_config: "[kek]\ncustody = \"shares\"\n".into(),
        ..Options::default()
    });
    let names = ["custodian-1", "custodian-2", "custodian-3"];
    for name in names {
        custodian_policy(&service, name);
    }
    service.spawn();
    let [c1, c2, c3] = names.map(|n| custodian(&service, n));
    let files = make_sealed_shares(&service.dir.path().join("shares"), 2, &[&c1, &c2, &c3]);
    for (file, name) in files.iter().zip(names) {
        let doc = share_json(file);
        let fields: Vec<&str> = doc.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            fields,
            [
                "ciphertext",
                "custodian",
                "ephemeral",
                "format",
                "index",
                "nonce",
                "recipient",
                "set_id"
            ],
            "public fields and ciphertext only"
        );
        assert_eq!(doc["custodian"], json!(format!("spiffe://tokenvault/{name}")));
    }
    let plaintext = make_shares(&service.dir.path().join("plain"), 2, 3);
    assert!(
        share_json(&plaintext[0])["share"].is_string(),
        "the control: a plaintext share is readable"
    );

    // Another custodian's key does not open a share, and a tampered one
    // does not open either: nothing is sent.
    let path = |i: usize| files[i].to_str().unwrap().to_owned();
    let out = keys_cli(&service, &c2.cert, &c2.key, &["unseal", "--share", &path(0)]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("sealed to spiffe://tokenvault/custodian-1, not to this key"),
        "{}",
        text(&out)
    );
    let mut tampered = share_json(&files[1]);
    tampered["custodian"] = json!("spiffe://tokenvault/custodian-3");
    let tampered_path = service.dir.path().join("tampered.json");
    std::fs::write(&tampered_path, tampered.to_string()).unwrap();
    let out = keys_cli(
        &service,
        &c2.cert,
        &c2.key,
        &["unseal", "--share", tampered_path.to_str().unwrap()],
    );
    assert!(text(&out).contains("altered"), "{}", text(&out));

    // Custodian 1 opens their share and hands it to custodian 3: refused.
    let sealed: tokenvault::vault::keys::sealed_share::SealedShareFile =
        serde_json::from_value(share_json(&files[0])).unwrap();
    let pkcs8 = tokenvault::pem::private_key(&c1.key).unwrap();
    let opened = sealed.open(pkcs8.secret_der()).unwrap();
    let (status, p) = submit(&c3, &serde_json::to_value(&opened).unwrap()).await;
    assert_eq!(
        (status, p["field"].as_str(), p["rule"].as_str()),
        (403, Some("share"), Some("other_custodian")),
        "{p}"
    );
    let seal = c1.client.get("/v1/admin/seal").await.unwrap().json();
    assert_eq!(
        seal["shares_submitted"],
        json!(0),
        "the refused share did not count"
    );

    // Each custodian with their own key: unsealed at the threshold.
    let out = keys_cli(&service, &c1.cert, &c1.key, &["unseal", "--share", &path(0)]);
    assert!(out.status.success(), "{}", text(&out));
    let out = keys_cli(&service, &c3.cert, &c3.key, &["unseal", "--share", &path(2)]);
    assert!(out.status.success(), "{}", text(&out));
    store_card(&service.client("card-capture"), 7).await.unwrap();
    let export = service.audit_export().await;
    assert!(
        export
            .lines()
            .any(|l| l.contains("share refused: other_custodian")
                && l.contains("spiffe://tokenvault/custodian-3")),
        "the refusal is audited: {export}"
    );
    for file in files.iter().chain(&plaintext) {
        let secret = share_json(file)["share"].as_str().map(str::to_owned);
        if let Some(secret) = secret {
            assert!(!export.contains(&secret));
        }
    }
    assert!(!export.contains(opened.share.as_str()), "no share in the trail");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custodians_unseal_and_rotate_the_kek_on_each_node() {
    let mut a = Service::prepare(Options {
        backend: common::service::TestBackend::Postgres,
        node_name: Some("a".to_owned()),
        extra_config: "[kek]\ncustody = \"shares\"\n".into(),
        ..Options::default()
    });
    let files = make_shares(&a.dir.path().join("shares"), 2, 3);
    for name in ["custodian-1", "custodian-2"] {
        custodian_policy(&a, name);
    }
    a.spawn();
    let mut b = a.another_node("b");
    b.spawn();
    let [c1, c2] = ["custodian-1", "custodian-2"].map(|n| custodian(&a, n));
    // The next KEK's shares are sealed to the custodians' certificates.
    let next = make_sealed_shares(&a.dir.path().join("next-shares"), 2, &[&c1, &c2]);
    let b_url = format!("https://{}", b.addr);
    let path = |files: &[PathBuf], i: usize| files[i].to_str().unwrap().to_owned();

    let out = keys_cli(
        &a,
        &c1.cert,
        &c1.key,
        &["unseal", "--share", &path(&files, 0), "--also", &b_url],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        text(&out).matches("\"shares_submitted\":1").count(),
        2,
        "{}",
        text(&out)
    );
    let out = keys_cli(&a, &c2.cert, &c2.key, &["unseal", "--share", &path(&files, 1)]);
    assert!(out.status.success(), "{}", text(&out));

    let stored = store_card(&a.client("card-capture"), 1).await;
    assert!(stored.is_ok(), "a serves: {stored:?}");
    let sealed = b
        .client("card-capture")
        .post_json("/v1/cards", Some("sealed-b"), &json!({"pan": pan(2)}))
        .await
        .unwrap();
    assert_eq!(sealed.status, 503, "b is still sealed: {}", sealed.text());

    let out = keys_cli(&b, &c2.cert, &c2.key, &["unseal", "--share", &path(&files, 1)]);
    assert!(out.status.success(), "{}", text(&out));
    let card = store_card(&b.client("card-capture"), 3).await.unwrap();
    read_card(&a.client("orchestrator"), &card).await.unwrap();

    // KEK rotation under traffic: a writer keeps storing cards on a
    // throughout (c1 to both nodes, c2 to a alone, then c2 to b).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = tokio::spawn({
        let (client, stop) = (a.client("card-capture"), std::sync::Arc::clone(&stop));
        async move {
            let (mut stored, mut failed) = (Vec::new(), Vec::new());
            let mut i = 100;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match store_card(&client, i).await {
                    Ok(card) => stored.push(card),
                    Err(e) => failed.push(e),
                }
                i += 1;
            }
            (stored, failed)
        }
    });
    let out = keys_cli(
        &a,
        &c1.cert,
        &c1.key,
        &["rotate-kek", "--share", &path(&next, 0), "--also", &b_url],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = keys_cli(&a, &c2.cert, &c2.key, &["rotate-kek", "--share", &path(&next, 1)]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("\"version\":2"), "a rotated: {}", text(&out));
    assert_eq!(a.client("monitor").get("/ready").await.unwrap().status, 200);
    let behind = b.client("monitor").get("/ready").await.unwrap();
    assert_eq!(behind.status, 503, "b's KEK is behind: {}", behind.text());

    let out = keys_cli(&b, &c2.cert, &c2.key, &["rotate-kek", "--share", &path(&next, 1)]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("\"version\":2"), "b adopted: {}", text(&out));
    assert_eq!(b.client("monitor").get("/ready").await.unwrap().status, 200);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (stored, failed) = writer.await.unwrap();
    assert!(
        failed.is_empty() && !stored.is_empty(),
        "no write failed: {} stored, {failed:?}",
        stored.len()
    );
    for card in &stored {
        read_card(&b.client("orchestrator"), card).await.unwrap();
    }

    // A data key made under the new KEK on a opens on b.
    let rotated = a
        .client("key-admin")
        .post_empty("/v1/admin/keys/rotate", "after-kek")
        .await
        .unwrap();
    assert_eq!(rotated.status, 201, "{}", rotated.text());
    let card = store_card(&b.client("card-capture"), 4).await.unwrap();
    read_card(&a.client("orchestrator"), &card).await.unwrap();
    let export = a.audit_export().await;
    assert!(export.contains("adopted on this node"), "b's adoption is audited");
}
