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
