//! The operator's levers on the running process: SIGHUP reloads the CRL (and
//! certificates, policies) without a restart, and SIGTERM drains and stops
//! with exit code 0. Both reloads are audited, and so are the trail's
//! opening at every start and its closing at a graceful stop.

mod common;

use common::service::{Options, Service};
use std::time::Duration;
use tokenvault::tls::pki::{self, Validity};

#[tokio::test]
async fn sighup_applies_a_new_crl_and_sigterm_stops_cleanly() {
    let mut service = Service::start(Options::default());
    let (client, cert) = service.issued_client(
        "monitor-2",
        "spiffe://tokenvault/monitor",
        Validity::days_from_now(1),
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

    // The trail records its own opening and its graceful closing: after a
    // stop, a kill and two starts it reads start, stop, start, start (the
    // second start with no stop before it is the kill).
    service.spawn();
    service.kill();
    service.spawn();
    let lifecycle: Vec<String> = service
        .audit_export()
        .await
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["operation"].as_str().unwrap().starts_with("service."))
        .map(|r| {
            assert_eq!(r["identity"], "local:service", "{r}");
            r["operation"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        lifecycle,
        ["service.start", "service.stop", "service.start", "service.start"]
    );
}

/// Process hardening took effect in the running service: no core file, of
/// any size (its `PR_SET_DUMPABLE` is the unit test's:
/// `server::hardening::tests`).
#[tokio::test]
async fn the_running_service_writes_no_core_dump() {
    let service = Service::start(Options::default());
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", service.pid().unwrap())).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    let fields: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(&fields[4..6], ["0", "0"], "{core}");
}
