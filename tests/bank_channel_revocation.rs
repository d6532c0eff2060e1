//! Revocation on the bank side of the gateway: the gateway's outbound
//! calls check the bank's certificate against the configured CRL, and the
//! bank simulator reloads its CRL on SIGHUP, closing connections of a
//! client revoked meanwhile.

mod common;

use common::bank_sim::BankSim;
use common::keepalive::Conn;
use common::service::{Options, Service};
use std::time::Duration;
use tokenvault::channel::{ChannelClient, ClientTls};

fn gateway_tls(service: &Service, crl: bool) -> ClientTls {
    ClientTls {
        ca_cert: service.keys.ca_cert(),
        crl: crl.then(|| service.keys.crl()),
        cert: service.keys.client_cert("gateway"),
        key: service.keys.client_key("gateway"),
    }
}

#[tokio::test]
async fn the_gateway_refuses_a_bank_whose_certificate_is_revoked() {
    let service = Service::prepare(Options::default());
    let bank = BankSim::start(&service.keys, service.dir.path(), "bank", &[], &[]);
    let call = |crl: bool| {
        let client = ChannelClient::new(
            &bank.endpoint(),
            &gateway_tls(&service, crl),
            Duration::from_secs(5),
        )
        .unwrap();
        async move { client.get("/sim/admin/orders").await }
    };
    // Reached (the answer is the simulator's own 403: the gateway is no
    // admin); what matters is that the handshake passed.
    assert!(call(true).await.is_ok());

    tokenvault::tls::pki::revoke(&service.keys, &service.keys.client_cert("bank-sim")).unwrap();
    let refused = call(true).await.unwrap_err().to_string();
    assert!(refused.to_lowercase().contains("revoked"), "{refused}");
    // The CRL is what refuses it: without one the same bank is reached.
    assert!(call(false).await.is_ok());

    // The service's gateway takes the development CRL by default.
    let config = tokenvault::config::ServiceConfig::load(&service.config_path).unwrap();
    let layers = tokenvault::server::settings::LayerSettings::build(&config).unwrap();
    assert_eq!(layers.gateway.tls.crl, Some(service.keys.crl()));
}

#[tokio::test]
async fn bank_sim_reloads_its_crl_on_sighup_and_closes_the_revoked_clients_connections() {
    let service = Service::prepare(Options::default());
    let bank = BankSim::start(&service.keys, service.dir.path(), "bank", &[], &[]);
    let (ca, cert, key) = (
        service.keys.ca_cert(),
        service.keys.client_cert("gateway"),
        service.keys.client_key("gateway"),
    );
    let mut open = Conn::open(bank.addr, &ca, &cert, &key, false).await;
    assert!(open.get("/sim/admin/orders").await.is_ok());

    tokenvault::tls::pki::revoke(&service.keys, &cert).unwrap();
    bank.signal("HUP");
    assert!(
        open.closed_within(Duration::from_secs(10)).await,
        "the revoked gateway's open connection to the bank was not closed"
    );
    let fresh = ChannelClient::new(
        &bank.endpoint(),
        &gateway_tls(&service, true),
        Duration::from_secs(5),
    )
    .unwrap();
    assert!(
        fresh.get("/sim/admin/orders").await.is_err(),
        "a new connection is refused"
    );
    assert!(
        bank.log().contains("certificates and CRL reloaded"),
        "{}",
        bank.log()
    );
}
