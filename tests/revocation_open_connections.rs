//! Revocation reaches connections opened before it (invariant 14), over
//! HTTP/1.1 keep-alive and HTTP/2 alike; idle and old connections are
//! closed; a CRL past its nextUpdate is refused at start and at reload, the
//! development CRL is re-signed at start, and the CRL's expiry is a metric.

mod common;

use common::keepalive::Conn;
use common::service::{Options, Service};
use std::path::Path;
use std::time::{Duration, Instant};
use tokenvault::tls::pki::{DevCa, Validity};

async fn reload(service: &Service, key: &str) -> common::service::Response {
    service
        .client("key-admin")
        .post_empty("/v1/admin/reload", key)
        .await
        .unwrap()
}

async fn metric(service: &Service, name: &str) -> f64 {
    let text = service.client("monitor").get("/metrics").await.unwrap().text();
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in the metrics:\n{text}"))
}

#[tokio::test]
async fn a_certificate_revoked_while_connected_is_served_nothing_more_on_http1_or_http2() {
    let service = Service::start(Options::default());
    let (_, revoked_h1) = service.issued_client(
        "later-h1",
        "spiffe://tokenvault/monitor",
        Validity::days_from_now(1),
    );
    let (_, revoked_h2) = service.issued_client(
        "later-h2",
        "spiffe://tokenvault/monitor",
        Validity::days_from_now(1),
    );
    let mut h1 = Conn::open(
        service.addr,
        &service.keys.ca_cert(),
        &revoked_h1,
        &service.dir.path().join("later-h1.key.pem"),
        false,
    )
    .await;
    let mut h2 = Conn::open(
        service.addr,
        &service.keys.ca_cert(),
        &revoked_h2,
        &service.dir.path().join("later-h2.key.pem"),
        true,
    )
    .await;
    // A bystander on each protocol, whose certificate stays good.
    let mut bystander_h1 = Conn::open(
        service.addr,
        &service.keys.ca_cert(),
        &service.keys.client_cert("monitor"),
        &service.keys.client_key("monitor"),
        false,
    )
    .await;
    let mut bystander_h2 = Conn::open(
        service.addr,
        &service.keys.ca_cert(),
        &service.keys.client_cert("monitor"),
        &service.keys.client_key("monitor"),
        true,
    )
    .await;
    for conn in [&mut h1, &mut h2, &mut bystander_h1, &mut bystander_h2] {
        assert_eq!(conn.get("/health").await.unwrap().0, 200);
    }

    tokenvault::tls::pki::revoke(&service.keys, &revoked_h1).unwrap();
    tokenvault::tls::pki::revoke(&service.keys, &revoked_h2).unwrap();
    // Before the reload the old CRL still applies, even to these connections.
    assert_eq!(h2.get("/health").await.unwrap().0, 200);
    let r = reload(&service, "reload-revoke").await;
    assert_eq!(r.status, 200, "{}", r.text());

    // Once the reload has returned, nothing more is served to them: a
    // request still in the pipe is answered 403 certificate-revoked, or
    // finds the connection closed.
    for (name, conn) in [("h1", &mut h1), ("h2", &mut h2)] {
        match conn.get("/health").await {
            Ok((status, body)) => {
                assert_eq!(status, 403, "{name}: {body}");
                assert!(body.contains("certificate-revoked"), "{name}: {body}");
            }
            Err(_closed) => {}
        }
        assert!(
            conn.closed_within(Duration::from_secs(10)).await,
            "{name}: the revoked peer's connection was not closed"
        );
    }
    // Connections of certificates still good are untouched.
    assert_eq!(bystander_h1.get("/health").await.unwrap().0, 200);
    assert_eq!(bystander_h2.get("/health").await.unwrap().0, 200);
    assert!(
        metric(
            &service,
            "tokenvault_connections_closed_by_service_total{reason=\"revoked\"}"
        )
        .await
            >= 2.0
    );
    assert!(service
        .log()
        .contains("closing a connection whose client certificate is revoked"));
}

#[tokio::test]
async fn idle_connections_and_old_connections_are_closed_by_the_service() {
    let service = Service::start(Options {
        extra_limits: "idle_timeout_ms = 400\nmax_connection_age_ms = 1500\n".to_owned(),
        ..Options::default()
    });
    let (cert, key) = (
        service.keys.client_cert("monitor"),
        service.keys.client_key("monitor"),
    );
    // HTTP/2 with not a single request: closed for idleness (HTTP/2 has no
    // header-read timeout of its own).
    let mut silent_h2 = Conn::open(service.addr, &service.keys.ca_cert(), &cert, &key, true).await;
    assert!(
        silent_h2.closed_within(Duration::from_secs(10)).await,
        "idle HTTP/2"
    );
    let mut idle_h1 = Conn::open(service.addr, &service.keys.ca_cert(), &cert, &key, false).await;
    assert_eq!(idle_h1.get("/health").await.unwrap().0, 200);
    assert!(
        idle_h1.closed_within(Duration::from_secs(10)).await,
        "idle HTTP/1.1"
    );
    // Busy but old: a request every 100 ms never idles, and still the
    // connection is closed at its maximum age.
    let mut busy = Conn::open(service.addr, &service.keys.ca_cert(), &cert, &key, true).await;
    let started = Instant::now();
    let mut served = 0;
    while started.elapsed() < Duration::from_secs(15) {
        match busy.get("/health").await {
            Ok((200, _)) => served += 1,
            _ => break,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        served >= 3,
        "the busy connection was served before its age ran out"
    );
    assert!(busy.closed_within(Duration::from_secs(12)).await, "old HTTP/2");
    assert!(
        metric(
            &service,
            "tokenvault_connections_closed_by_service_total{reason=\"idle\"}"
        )
        .await
            >= 2.0
    );
    assert!(
        metric(
            &service,
            "tokenvault_connections_closed_by_service_total{reason=\"max_age\"}"
        )
        .await
            >= 1.0
    );
}

fn crl_next_update(path: &Path) -> i64 {
    let crls = tokenvault::pem::crls(path).unwrap();
    tokenvault::tls::crl_next_update(path, &crls, 0).unwrap().unwrap()
}

fn now() -> i64 {
    tokenvault::domain::time::Timestamp::now().seconds()
}

#[tokio::test]
async fn a_crl_past_its_next_update_is_refused_at_reload_and_at_start() {
    let mut service = Service::start(Options::default());
    // The metric says how long the CRL in use has left (the development
    // CRL is good for 30 days).
    let left = metric(&service, "tokenvault_tls_crl_seconds_until_next_update").await;
    assert!(left > 29.0 * 86_400.0 && left <= 30.0 * 86_400.0, "{left}");

    let good = std::fs::read(service.keys.crl()).unwrap();
    let expired = DevCa::load(&service.keys)
        .unwrap()
        .crl_until(&[], now() - 5)
        .unwrap();
    std::fs::write(service.keys.crl(), &expired).unwrap();
    let r = reload(&service, "reload-expired").await;
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(r.text().contains("nextUpdate"), "{}", r.text());
    // The previous CRL stays in force: clients keep connecting.
    assert_eq!(
        service.client("monitor").get("/health").await.unwrap().status,
        200
    );
    std::fs::write(service.keys.crl(), &good).unwrap();

    // At start, with the TLS files named explicitly (so not re-signed as
    // the development PKI is), an expired CRL stops the service.
    service.kill();
    std::fs::write(service.keys.crl(), &expired).unwrap();
    let explicit = format!(
        "[tls]\nca_cert = \"{}\"\nserver_cert = \"{}\"\nserver_key = \"{}\"\ncrl = \"{}\"\n",
        service.keys.ca_cert().display(),
        service.keys.server_cert().display(),
        service.keys.server_key().display(),
        service.keys.crl().display()
    );
    let config = std::fs::read_to_string(&service.config_path).unwrap();
    let config = config.replacen("[tls]\n", &explicit, 1);
    let path = service.dir.path().join("explicit.toml");
    std::fs::write(&path, config).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tokenvault"))
        .args(["serve", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("nextUpdate"), "{said}");
}

#[tokio::test]
async fn the_development_crl_is_re_signed_at_start_keeping_what_it_revokes() {
    let mut service = Service::prepare(Options::default());
    // Issued before the process runs: written to the service's folder.
    let (cert_pem, key_pem) = DevCa::load(&service.keys)
        .unwrap()
        .issue_client(
            Some("spiffe://tokenvault/monitor"),
            "gone",
            Validity::days_from_now(1),
        )
        .unwrap();
    let cert = service.dir.path().join("gone.pem");
    std::fs::write(&cert, cert_pem).unwrap();
    std::fs::write(service.dir.path().join("gone.key.pem"), key_pem).unwrap();
    tokenvault::tls::pki::revoke(&service.keys, &cert).unwrap();
    // A CRL about to expire, revoking that certificate.
    let crls = tokenvault::pem::crls(&service.keys.crl()).unwrap();
    let (_, parsed) = x509_parser::parse_x509_crl(crls[0].as_ref()).unwrap();
    let serials: Vec<Vec<u8>> = parsed
        .iter_revoked_certificates()
        .map(|r| r.raw_serial().to_vec())
        .collect();
    let soon = DevCa::load(&service.keys)
        .unwrap()
        .crl_until(&serials, now() + 60)
        .unwrap();
    std::fs::write(service.keys.crl(), soon).unwrap();
    assert!(crl_next_update(&service.keys.crl()) <= now() + 60);

    service.spawn();
    assert!(crl_next_update(&service.keys.crl()) > now() + 29 * 86_400);
    let gone = common::service::Client::new(
        service.addr,
        &service.keys.ca_cert(),
        Some((&cert, &service.dir.path().join("gone.key.pem"))),
        common::service::Tls::V13,
    );
    assert!(
        gone.get("/health").await.is_err(),
        "still revoked after the re-signing"
    );
    assert_eq!(
        service.client("monitor").get("/health").await.unwrap().status,
        200
    );
}
