//! Every mutation needs its Idempotency-Key, admin routes and reveal
//! included; the two documented exceptions are `POST /v1/admin/unseal`
//! (its shares are counted once by digest) and the bank's notification
//! callback (applied once by the bank's transaction). Every route that
//! takes no body refuses one, and the refusal changes nothing.

mod common;

use common::routes::Route;
use common::service::{Options, Service};

const EXEMPT: [&str; 2] = ["/v1/admin/unseal", "/v1/channel-notifications/"];

fn is_mutation(route: &Route) -> bool {
    route.method != "GET" && !EXEMPT.iter().any(|e| route.path.starts_with(e))
}

/// The records the trail holds, apart from its own exports.
async fn changes(service: &Service) -> Vec<String> {
    service
        .audit_export()
        .await
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["operation"] != "audit.export")
        .map(|r| r.to_string())
        .collect()
}

#[tokio::test]
async fn a_mutation_without_an_idempotency_key_is_refused_by_name_for_every_role_allowed_it() {
    let service = Service::start(Options::default());
    let mutations: Vec<Route> = common::routes::every_route_with("x1", false)
        .into_iter()
        .filter(is_mutation)
        .collect();
    assert!(
        mutations.len() >= 24,
        "the document lists the mutations: {mutations:?}"
    );
    let mut unreached = Vec::new();
    for route in &mutations {
        let mut allowed_somewhere = false;
        for role in tokenvault::tls::pki::ROLES {
            let client = service.client(role);
            let answers = common::routes::sweep(&client, role, std::slice::from_ref(route), &[]).await;
            let r: serde_json::Value = serde_json::from_str(&answers[0]).unwrap();
            if r["status"] == 403 {
                continue;
            }
            allowed_somewhere = true;
            assert_eq!(
                (r["status"].as_u64(), r["field"].as_str(), r["rule"].as_str()),
                (Some(400), Some("Idempotency-Key"), Some("required")),
                "{role} {} {}: {r}",
                route.method,
                route.path
            );
        }
        if !allowed_somewhere {
            unreached.push(format!("{} {}", route.method, route.path));
        }
    }
    assert!(
        unreached.is_empty(),
        "no role may call these, so the key check was never reached: {unreached:?}"
    );
}

#[tokio::test]
async fn a_body_sent_to_a_route_that_takes_none_is_refused_and_changes_nothing() {
    let service = Service::start(Options::default());
    let bodyless: Vec<Route> = common::routes::every_route_with("x1", false)
        .into_iter()
        .filter(|r| !r.takes_body)
        .collect();
    assert!(
        bodyless.iter().any(|r| r.method == "POST") && bodyless.iter().any(|r| r.method == "GET"),
        "{bodyless:?}"
    );
    let before = changes(&service).await;
    for route in &bodyless {
        for role in tokenvault::tls::pki::ROLES {
            let client = service.client(role);
            for (body, headers) in [
                (
                    &br#"{"reason":"x"}"#[..],
                    vec![("Content-Type", "application/json")],
                ),
                (&b"junk"[..], vec![]),
            ] {
                let mut headers = headers;
                headers.push(("Idempotency-Key", "body-probe"));
                let r = client
                    .send(&route.method, &route.path, &headers, Some(body))
                    .await
                    .unwrap();
                let p = r.json();
                assert_eq!(
                    (r.status, p["field"].as_str(), p["rule"].as_str()),
                    (400, Some("body"), Some("absent")),
                    "{role} {} {}: {}",
                    route.method,
                    route.path,
                    r.text()
                );
                assert_eq!(r.header("content-type"), Some("application/problem+json"));
            }
        }
    }
    assert_eq!(
        changes(&service).await,
        before,
        "a refused body changed the trail"
    );
    // An empty body (Content-Length: 0) is no body.
    let r = service
        .client("key-admin")
        .post_empty("/v1/admin/keys/rotate", "rotate-empty-body")
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
}
