//! The OpenAPI document as served, checked by a real validator (Python's
//! `openapi-spec-validator`, installed by `.ci/run`): OpenAPI 3.1 schema
//! conformance, unique operation ids, resolvable references.

mod common;

use common::service::{Options, Service};

#[tokio::test]
async fn the_served_document_passes_a_real_openapi_validator() {
    let service = Service::start(Options::default());
    let r = service.client("auditor").get("/v1/openapi.json").await.unwrap();
    assert_eq!(r.status, 200);
    let text = r.text();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["components"]["securitySchemes"]["mutualTLS"]["type"] == "mutualTLS");
    common::assert_valid_openapi(&text);
}
