//! `tokenvault audit verify` finds an edited or a deleted audit record and
//! names it; `audit export` writes the chain as JSON lines.

mod common;

use common::service::{Options, Service};
use serde_json::json;
use std::process::Command;
use tokenvault::store::{Batch, Store};

fn cli(service: &Service, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tokenvault"))
        .args(args)
        .arg("--config")
        .arg(&service.config_path)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn record_key(seq: u64) -> Vec<u8> {
    format!("audit/rec/{seq:020}").into_bytes()
}

#[tokio::test]
async fn edited_and_deleted_records_are_named() {
    let mut service = Service::start(Options::default());
    let capture = service.client("card-capture");
    for (i, pan) in ["4242424242424242", "5555555555554444", "378282246310005"]
        .iter()
        .enumerate()
    {
        let r = capture
            .post_json("/v1/cards", Some(&format!("k{i}")), &json!({"pan": pan}))
            .await
            .unwrap();
        assert_eq!(r.status, 201);
    }
    service.kill();

    let (code, out) = cli(&service, &["audit", "verify"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("audit chain intact"), "{out}");

    // Edit record 2 in place: same length, so it still decodes.
    let store = service.open_store().await;
    let original = store.get(&record_key(2)).await.unwrap().expect("record 2");
    let at = original
        .windows(7)
        .position(|w| w == b"success")
        .expect("outcome field");
    let mut edited = original.clone();
    edited[at..at + 7].copy_from_slice(b"failure");
    let mut batch = Batch::new();
    batch.put(record_key(2), edited);
    store.commit(batch).await.unwrap();
    drop(store);
    let (code, out) = cli(&service, &["audit", "verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("audit record 2 was altered"), "{out}");

    // Put it back, delete record 3 instead.
    let store = service.open_store().await;
    let mut batch = Batch::new();
    batch.put(record_key(2), original).delete(record_key(3));
    store.commit(batch).await.unwrap();
    drop(store);
    let (code, out) = cli(&service, &["audit", "verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("audit record 3 is missing"), "{out}");

    // Export still writes every record that exists, as JSON lines.
    let export_path = service.dir.path().join("audit.jsonl");
    let (code, out) = cli(
        &service,
        &["audit", "export", "--out", export_path.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out}");
    let lines = std::fs::read_to_string(&export_path).unwrap();
    assert!(lines.lines().count() >= 4);
    for line in lines.lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(record["mac"].as_str().unwrap().len() == 64);
        assert!(!line.contains("4242424242424242") && !line.contains("5555555555554444"));
    }
}

#[test]
fn init_refuses_to_overwrite_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tokenvault"))
            .args(["init", "--keys-dir"])
            .arg(&keys)
            .args(extra)
            .output()
            .unwrap()
    };
    assert!(run(&[]).status.success());
    let second = run(&[]);
    assert_eq!(second.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&second.stderr).contains("--force"));
    assert!(run(&["--force"]).status.success());
}

#[test]
fn a_bad_config_is_a_clear_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[limits]\nmax_connections = 0\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tokenvault"))
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("limits.max_connections"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The service's anchor folder and sink file, in its own folder.
fn copies_config() -> Options {
    Options {
        extra_config:
            "[audit]\nanchor_dir = \"anchors\"\nanchor_interval_s = 1\nsink_file = \"audit-sink.jsonl\"\n"
                .to_owned(),
        ..Options::default()
    }
}

async fn store_cards(service: &Service, first: u64, count: u64) {
    let capture = service.client("card-capture");
    for i in first..first + count {
        let pan = common::world::debit_pan(7000 + i);
        let r = capture
            .post_json("/v1/cards", Some(&format!("anchor-{i}")), &json!({ "pan": pan }))
            .await
            .unwrap();
        assert_eq!(r.status, 201, "{}", r.text());
    }
}

/// The unnamed chain's head as a store value.
fn head_value(seq: u64, mac: &str) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Head<'a> {
        seq: u64,
        mac: &'a str,
    }
    tokenvault::store::codec::encode(&Head { seq, mac }).unwrap()
}

/// A trail cut back and its head rewound to match is consistent by itself:
/// `audit verify` alone passes it. A signed checkpoint taken before the cut
/// (on demand, and on the schedule into the anchor folder) finds it; an
/// altered checkpoint is refused by its signature; the key auditors pin is
/// the one the service signs with.
#[tokio::test]
async fn a_trail_cut_back_with_its_head_rewound_is_caught_by_a_signed_checkpoint() {
    let mut service = Service::start(copies_config());
    store_cards(&service, 0, 3).await;
    let r = service
        .client("auditor")
        .post_empty("/v1/audit/anchors", "anchor-now")
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    let anchor = r.json();
    let signed_seq = anchor["heads"][0]["seq"].as_u64().unwrap();
    assert!(anchor["heads"][0].get("node").is_none(), "{anchor}");
    assert!(signed_seq >= 4, "{anchor}");
    let on_demand = service.dir.path().join("on-demand.json");
    std::fs::write(&on_demand, r.text()).unwrap();
    // A card-capture identity may not sign anchors.
    let refused = service
        .client("card-capture")
        .post_empty("/v1/audit/anchors", "anchor-denied")
        .await
        .unwrap();
    assert_eq!(refused.status, 403, "{}", refused.text());

    // The schedule writes anchors into the folder, each whole.
    let anchors = service.dir.path().join("anchors");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let scheduled = loop {
        let files: Vec<_> = std::fs::read_dir(&anchors)
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        if let Some(file) = files.iter().find(|p| p.extension().is_some_and(|e| e == "json")) {
            break file.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no scheduled anchor in {anchors:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    store_cards(&service, 3, 2).await;
    service.kill();

    let (code, pem) = cli(&service, &["audit", "anchor-key"]);
    assert_eq!(code, 0, "{pem}");
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
    let pinned = service.dir.path().join("anchor-key.pem");
    std::fs::write(&pinned, &pem).unwrap();
    for file in [&on_demand, &scheduled] {
        let (code, out) = cli(
            &service,
            &[
                "audit",
                "verify",
                "--checkpoint",
                file.to_str().unwrap(),
                "--anchor-key",
                pinned.to_str().unwrap(),
            ],
        );
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("1 signed checkpoint(s) checked"), "{out}");
    }

    // Cut the chain back to two records before the signed head, and rewind
    // the head to the last record kept.
    let store = service.open_store().await;
    let head_seq = {
        let mut seq = signed_seq;
        while store.get(&record_key(seq + 1)).await.unwrap().is_some() {
            seq += 1;
        }
        seq
    };
    let keep = signed_seq - 2;
    let kept: tokenvault::audit::AuditRecord =
        tokenvault::store::codec::decode(&store.get(&record_key(keep)).await.unwrap().unwrap()).unwrap();
    let mut batch = Batch::new();
    batch.put(b"audit/head".to_vec(), head_value(keep, &kept.mac));
    for seq in keep + 1..=head_seq {
        batch.delete(record_key(seq));
    }
    store.commit(batch).await.unwrap();
    drop(store);

    let (code, out) = cli(&service, &["audit", "verify"]);
    assert_eq!(code, 0, "the chain alone cannot see the cut: {out}");
    let (code, out) = cli(
        &service,
        &["audit", "verify", "--checkpoint", on_demand.to_str().unwrap()],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("audit record {signed_seq}")) && out.contains("signed checkpoint"),
        "{out}"
    );

    // A checkpoint edited to match the cut trail no longer verifies.
    let mut forged = anchor.clone();
    forged["heads"][0]["seq"] = json!(keep);
    forged["heads"][0]["mac"] = json!(kept.mac);
    let forged_path = service.dir.path().join("forged.json");
    std::fs::write(&forged_path, forged.to_string()).unwrap();
    let (code, out) = cli(
        &service,
        &["audit", "verify", "--checkpoint", forged_path.to_str().unwrap()],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("CHECKPOINT REFUSED") && out.contains("signature"),
        "{out}"
    );
}

/// The anchor key rotates: anchors signed before and after both verify
/// against the vault's versions (the default) and against both pinned
/// public keys; pinned to the old key alone, the new anchor is refused by
/// name. The rotation is audited with the new public key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anchors_signed_before_and_after_an_anchor_key_rotation_both_verify() {
    let mut service = Service::start(Options::default());
    store_cards(&service, 200, 1).await;
    let auditor = service.client("auditor");
    // Under traffic: a writer keeps storing cards through the rotation.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = tokio::spawn({
        let (client, stop) = (service.client("card-capture"), std::sync::Arc::clone(&stop));
        async move {
            let (mut stored, mut failed) = (0, Vec::new());
            let mut i = 300;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let pan = common::world::debit_pan(7000 + i);
                match client
                    .post_json(
                        "/v1/cards",
                        Some(&format!("anchor-traffic-{i}")),
                        &json!({ "pan": pan }),
                    )
                    .await
                {
                    Ok(r) if r.status == 201 => stored += 1,
                    other => failed.push(format!("{:?}", other.map(|r| r.status))),
                }
                i += 1;
            }
            (stored, failed)
        }
    });
    let mut files = Vec::new();
    for round in 0..2 {
        if round == 1 {
            let r = service
                .client("key-admin")
                .post_empty("/v1/admin/keys/anchor/rotate", "rotate-anchor")
                .await
                .unwrap();
            assert_eq!(r.status, 201, "{}", r.text());
            assert_eq!(r.json()["version"], 2);
        }
        let r = auditor
            .post_empty("/v1/audit/anchors", &format!("anchor-{round}"))
            .await
            .unwrap();
        assert_eq!(r.status, 201, "{}", r.text());
        let file = service.dir.path().join(format!("anchor-{round}.json"));
        std::fs::write(&file, r.text()).unwrap();
        files.push(file);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (stored, failed) = writer.await.unwrap();
    assert!(
        failed.is_empty() && stored > 0,
        "no write failed: {stored} stored, {failed:?}"
    );
    service.kill();
    let (code, all) = cli(&service, &["audit", "anchor-key", "--all"]);
    assert_eq!(code, 0, "{all}");
    let pems: Vec<String> = all
        .split_inclusive("-----END PUBLIC KEY-----")
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect();
    assert_eq!(pems.len(), 2, "{all}");
    let (_, newest) = cli(&service, &["audit", "anchor-key"]);
    assert_eq!(newest.trim(), pems[1], "anchor-key prints the newest");
    let pinned: Vec<std::path::PathBuf> = pems
        .iter()
        .enumerate()
        .map(|(i, pem)| {
            let path = service.dir.path().join(format!("anchor-v{}.pem", i + 1));
            std::fs::write(&path, pem).unwrap();
            path
        })
        .collect();
    let checkpoints: Vec<&str> = files
        .iter()
        .flat_map(|f| ["--checkpoint", f.to_str().unwrap()])
        .collect();
    let both_keys: Vec<&str> = pinned
        .iter()
        .flat_map(|p| ["--anchor-key", p.to_str().unwrap()])
        .collect();
    for keys in [Vec::new(), both_keys] {
        let args = [&["audit", "verify"][..], &checkpoints, &keys].concat();
        let (code, out) = cli(&service, &args);
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("2 signed checkpoint(s) checked"), "{out}");
    }
    let old_only = ["--anchor-key", pinned[0].to_str().unwrap()];
    let args = [&["audit", "verify"][..], &checkpoints, &old_only].concat();
    let (code, out) = cli(&service, &args);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("CHECKPOINT REFUSED") && out.contains("anchor-1.json"),
        "{out}"
    );
    let (_, export) = cli(&service, &["audit", "export"]);
    assert!(
        export
            .lines()
            .any(|l| l.contains("\"keys.rotate_anchor\"") && l.contains("anchor key version 2")),
        "{export}"
    );
}

/// The sink's lines are the export's lines, byte for byte, and stay so
/// across a restart (no record twice, none missing); metrics show it is
/// caught up.
#[tokio::test]
async fn the_audit_sink_holds_what_the_export_holds_across_a_restart() {
    let mut service = Service::start(copies_config());
    let sink = service.dir.path().join("audit-sink.jsonl");
    let caught_up = |export: &str| {
        let sink = std::fs::read_to_string(&sink).unwrap_or_default();
        let export: Vec<&str> = export.lines().collect();
        let copied: Vec<&str> = sink.lines().take(export.len()).collect();
        copied == export
    };
    for round in 0..2 {
        store_cards(&service, 100 * round, 3).await;
        let export = service.audit_export().await;
        assert!(export.lines().count() >= 4, "{export}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !caught_up(&export) {
            assert!(
                std::time::Instant::now() < deadline,
                "the sink does not hold the export:\n{export}\n---\n{}",
                std::fs::read_to_string(&sink).unwrap_or_default()
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let seqs: Vec<u64> = std::fs::read_to_string(&sink)
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(
            seqs,
            (1..=seqs.len() as u64).collect::<Vec<_>>(),
            "every record once, in order"
        );
        if round == 0 {
            // A graceful stop's closing record reaches the sink before the
            // process ends.
            service.signal("TERM");
            assert_eq!(service.wait_exit(std::time::Duration::from_secs(20)), Some(0));
            let copied = std::fs::read_to_string(&sink).unwrap();
            let tail: Vec<serde_json::Value> = copied
                .lines()
                .rev()
                .take(2)
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            assert_eq!(
                (tail[1]["operation"].as_str(), tail[0]["operation"].as_str()),
                (Some("service.stop"), Some("audit.sink_stop")),
                "{copied}"
            );
            service.spawn();
        }
    }
    // PCI DSS 10.2.1.6 for the copy: each start of the sink is in the
    // trail, naming where the copy stood; each stop too.
    let export = service.audit_export().await;
    let records: Vec<serde_json::Value> = export.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let of = |operation: &str| records.iter().filter(|r| r["operation"] == operation).count();
    assert_eq!(
        (of("audit.sink_start"), of("audit.sink_stop")),
        (2, 1),
        "{export}"
    );
    let second_start = records
        .iter()
        .filter(|r| r["operation"] == "audit.sink_start")
        .nth(1)
        .unwrap();
    assert!(
        second_start["detail"]
            .as_str()
            .unwrap()
            .contains("holds records up to"),
        "{second_start}"
    );
    let metrics = service.client("monitor").get("/metrics").await.unwrap().text();
    assert!(
        metrics.contains("tokenvault_audit_sink_records_behind"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tokenvault_audit_sink_failures_total 0"),
        "{metrics}"
    );
}

/// The audit key rotates twice while cards are stored without pause: no
/// request fails, each rotation record is the first MACed with its
/// version, every later record carries it, and the trail verifies online,
/// offline and after a restart (which goes on under the newest version).
/// A later record relabelled as version 1 is refused.
#[tokio::test]
async fn the_audit_key_rotates_under_traffic_and_verify_follows_it() {
    let mut service = Service::start(Options::default());
    let writer = {
        let capture = service.client("card-capture");
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            for i in 0..40u64 {
                let pan = common::world::debit_pan(7500 + i);
                let r = capture
                    .post_json("/v1/cards", Some(&format!("rot-{i}")), &json!({ "pan": pan }))
                    .await
                    .unwrap();
                statuses.push(r.status);
            }
            statuses
        })
    };
    let admin = service.client("key-admin");
    for (i, expected) in [2, 3].into_iter().enumerate() {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let r = admin
            .post_empty("/v1/admin/keys/audit/rotate", &format!("audit-rotate-{i}"))
            .await
            .unwrap();
        assert_eq!(
            (r.status, r.json()["version"].clone()),
            (201, json!(expected)),
            "{}",
            r.text()
        );
    }
    let statuses = writer.await.unwrap();
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    let status = admin.get("/v1/admin/keys").await.unwrap().json();
    assert_eq!(status["audit_key_version"], 3, "{status}");
    service.assert_audit_intact().await;

    let export = service.audit_export().await;
    let records: Vec<serde_json::Value> = export.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let version = |r: &serde_json::Value| {
        let mac = r["mac"].as_str().unwrap();
        mac.split_once(':')
            .map_or(1, |(v, _)| v[1..].parse::<u32>().unwrap())
    };
    let rotations: Vec<usize> = records
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            r["operation"] == "keys.rotate_audit"
                && r["detail"].as_str().unwrap_or_default().starts_with("to=")
        })
        .map(|(i, _)| i)
        .collect();
    assert_eq!(rotations.len(), 2, "{export}");
    for (i, record) in records.iter().enumerate() {
        let due = if i >= rotations[1] {
            3
        } else if i >= rotations[0] {
            2
        } else {
            1
        };
        assert_eq!(version(record), due, "record {i}: {record}");
    }
    service.kill();
    let (code, out) = cli(&service, &["audit", "verify"]);
    assert_eq!(code, 0, "{out}");

    // A restart goes on under version 3.
    service.spawn();
    store_cards(&service, 300, 1).await;
    let export = service.audit_export().await;
    let last_card = export
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .rfind(|r| r["operation"] == "card.store")
        .unwrap();
    assert!(
        last_card["mac"].as_str().unwrap().starts_with("v3:"),
        "{last_card}"
    );
    service.assert_audit_intact().await;
    service.kill();

    // A record after the rotations relabelled as version 1.
    let seq = last_card["seq"].as_u64().unwrap();
    let store = service.open_store().await;
    let stored = store.get(&record_key(seq)).await.unwrap().unwrap();
    let mut record: tokenvault::audit::AuditRecord = tokenvault::store::codec::decode(&stored).unwrap();
    record.mac = record.mac.trim_start_matches("v3:").to_owned();
    let mut batch = Batch::new();
    batch.put(
        record_key(seq),
        tokenvault::store::codec::encode(&record).unwrap(),
    );
    store.commit(batch).await.unwrap();
    drop(store);
    let (code, out) = cli(&service, &["audit", "verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("audit record {seq}")) && out.contains("audit key version"),
        "{out}"
    );
}
