//! Invariant 1 at rest: after storing every test card and identity in tests/data,
//! the raw files the store wrote (sled's, or with TOKENVAULT_TEST_BACKEND=postgres
//! the PostgreSQL cluster's data files and WAL) contain none of their digits,
//! names, ID numbers or phone numbers in plaintext (nor in UTF-16, nor hex-encoded).

mod common;

use tokenvault::domain::time::Timestamp;

fn needles(value: &str) -> Vec<Vec<u8>> {
    let utf16: Vec<u8> = value.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let hex: String = value.bytes().map(|b| format!("{b:02x}")).collect();
    vec![value.as_bytes().to_vec(), utf16, hex.into_bytes()]
}

#[tokio::test]
async fn raw_store_files_hold_no_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let vault = common::open_in(dir.path()).await;
    let mut secrets: Vec<String> = Vec::new();
    for pan in common::valid_test_pans() {
        let card = vault.store_card(&common::actor(), &pan).await.unwrap();
        // Tokens too: the token record must not carry the PAN.
        vault
            .issue_token(
                &common::actor(),
                &card.card_ref,
                common::controls(5, 100, 500),
                Timestamp::now(),
            )
            .await
            .unwrap();
        secrets.push(pan);
    }
    let identities = [
        ("张三", "11010519491231002X", "13800138000"),
        ("阿卜杜勒·克里木", "11010519491231002x", "+8619912345678"),
        ("John Smith", "11010519491231002X", "13912345678"),
    ];
    for (name, id, phone) in identities {
        vault
            .store_identity(&common::actor(), name, id, phone)
            .await
            .unwrap();
        secrets.push(name.to_owned());
        secrets.push(id.to_uppercase());
        secrets.push(phone.trim_start_matches("+86").to_owned());
    }
    drop(vault); // close sled so everything it buffers is on disk
    let data_dir = common::backend_files_in(dir.path());

    let mut bytes_scanned = 0;
    for (file, content) in common::files_under(&data_dir) {
        bytes_scanned += content.len();
        for secret in &secrets {
            for needle in needles(secret) {
                assert!(
                    memchr::memmem::find(&content, &needle).is_none(),
                    "{} holds a plaintext test value ({} characters)",
                    file.display(),
                    secret.chars().count()
                );
            }
        }
    }
    assert!(bytes_scanned > 0, "the scan read the store's files");
}
