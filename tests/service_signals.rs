//! The operator's levers on the running process: SIGHUP reloads the CRL (and
//! certificates, policies) without a restart, and SIGTERM drains and stops
//! with exit code 0. Both reloads are audited.

mod common;

use common::service::{Client, Options, Service, Tls};
use std::time::Duration;
use tokenvault::tls::pki::{self, DevCa, Validity};

#[tokio::test]
async fn sighup_applies_a_new_crl_and_sigterm_stops_cleanly() {
    let mut service = Service::start(Options::default());
    let dir = tempfile::tempdir().unwrap();
    let (cert_pem, key_pem) = DevCa::load(&service.keys)
        .unwrap()
        .issue_client(
            Some("spiffe://tokenvault/monitor"),
            "monitor-2",
            Validity::days_from_now(1),
        )
        .unwrap();
    let (cert, key) = (dir.path().join("m.pem"), dir.path().join("m.key.pem"));
    std::fs::write(&cert, cert_pem).unwrap();
    std::fs::write(&key, key_pem).unwrap();
    let client = Client::new(
        service.addr,
        &service.keys.ca_cert(),
        Some((&cert, &key)),
        Tls::V13,
    );
    assert_eq!(client.get("/health").await.unwrap().status, 200);

    pki::revoke(&service.keys, &cert).unwrap();
    service.signal("HUP");
    let mut refused = false;
    for _ in 0..50 {
        if client.get("/health").await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused, "SIGHUP applied the new CRL");
    let export = service
        .client("auditor")
        .get("/v1/audit/export")
        .await
        .unwrap()
        .text();
    assert!(
        export.contains("\"identity\":\"local:sighup\"") && export.contains("\"operation\":\"admin.reload\""),
        "the reload is audited"
    );

    service.signal("TERM");
    assert_eq!(
        service.wait_exit(Duration::from_secs(20)),
        Some(0),
        "graceful stop; log:\n{}",
        service.log()
    );
    assert!(service.log().contains("shutting down"));
}
