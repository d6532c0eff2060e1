//! The OpenAPI document, generated from the handlers' annotations and the
//! DTO types by utoipa; served at /v1/openapi.json and by `tokenvault openapi`.

use super::dto::*;
use super::flow_dto::*;
use super::payment_dto::*;
use super::problem::Problem;
use axum::http::StatusCode;

/// The document's frame: info, servers, security, schemas. The paths come
/// from the route table (`routes::table`); `document` joins the two.
#[derive(utoipa::OpenApi)]
#[openapi(
    servers((url = "https://127.0.0.1:8443", description = "The development default (`tokenvault serve` without a config); production listens where `listen` says")),
    security(("mutualTLS" = [])),
    info(
        title = "tokenvault",
        description = "Tokenization vault: cards, identities, payment passwords, card binding, payment tokens (支付标记), and debits, refunds, cancels and unbinding on tokens, and key custody (unseal from custodians' KEK shares, data-key rotation, rewrap, retirement, KEK rotation), over mutual TLS. Every call is authenticated by its client certificate and authorised by policy."
    ),
    components(schemas(
        Problem,
        StoreCardRequest,
        CardResponse,
        StoreIdentityRequest,
        IdentityResponse,
        ControlsDto,
        IssueTokenRequest,
        UsageDto,
        TokenResponse,
        TokenListResponse,
        RevealBody,
        RevealRequestBody,
        RevealRequestResponse,
        RevealResponse,
        crate::audit::AuditRecord,
        ErasedCardResponse,
        ErasedIdentityResponse,
        crate::audit::anchor::SignedAnchor,
        crate::audit::anchor::AnchoredHead,
        AuditPage,
        ChainBreak,
        ChainReport,
        VerifyResponse,
        StatusResponse,
        SetPasswordRequest,
        ChangePasswordRequest,
        VerifyPasswordRequest,
        PasswordResponse,
        StartBindingRequest,
        ConfirmBindingRequest,
        BindingResponse,
        BindingListResponse,
        DebitRequest,
        ConfirmPaymentRequest,
        RefundRequest,
        RefundResponse,
        RouteAttemptResponse,
        PaymentResponse,
        ChannelStateRequest,
        NotificationAck,
        crate::orchestration::routing::ChannelHealth,
        SealStatus,
        DataKeyView,
        RewrapView,
        CustodyView,
        KeyStatusResponse,
        KeyVersionResponse,
        PepperView,
        FingerprintVersionView,
        super::reconciliation::RunRequest,
        super::reconciliation::RunResponse,
        super::reconciliation::RunSummaryResponse,
        super::reconciliation::RunList,
        super::reconciliation::ProgressResponse,
        super::reconciliation::QueuedDiscrepancyResponse,
        super::reconciliation::DiscrepancyPage,
        super::reconciliation::LedgerResponse,
        super::reconciliation::DriftResponse,
        crate::orchestration::reconcile::ManualAction,
        super::reconciliation::DiscrepancyResponse,
        super::reconciliation::ResolutionResponse,
        super::reconciliation::ResolveRequest,
        crate::orchestration::reconcile::Action,
    ))
)]
pub struct ApiDoc;

/// The OpenAPI document of the served API: the frame, every route in the
/// table, and what `ServedShape` says for all of them.
pub fn document() -> utoipa::openapi::OpenApi {
    use utoipa::Modify;
    let mut doc = super::routes::table().into_openapi();
    ServedShape.modify(&mut doc);
    doc
}

/// What the annotations cannot say once for all routes: every call is
/// authenticated by its client certificate (`mutualTLS`), operation ids are
/// unique (`<tag>_<handler>`: handler names repeat across files), and
/// errors are `application/problem+json`, as served.
struct ServedShape;

impl utoipa::Modify for ServedShape {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::SecurityScheme;
        let components = doc.components.get_or_insert_with(Default::default);
        components.security_schemes.insert(
            "mutualTLS".to_owned(),
            utoipa::openapi::RefOr::T(SecurityScheme::MutualTls {
                description: Some(
                    "A client certificate from the service's CA, not revoked; its URI SAN (else CN) is the identity policies grant operations to".to_owned(),
                ),
                deprecated: None,
                extensions: None,
            }),
        );
        for (name, schema) in components.schemas.iter_mut() {
            if name.ends_with("Request") {
                require_non_empty_strings(schema);
            }
        }
        for (path, item) in doc.paths.paths.iter_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                let tag = operation.tags.as_ref().and_then(|t| t.first()).cloned();
                if let (Some(tag), Some(id)) = (tag, operation.operation_id.as_mut()) {
                    *id = format!("{tag}_{id}");
                }
                for (status, response) in operation.responses.responses.iter_mut() {
                    if let utoipa::openapi::RefOr::T(response) = response {
                        describe_by_status(status, response);
                        serve_problems_as_problem_json(response);
                    }
                }
                for parameter in operation.parameters.iter_mut().flatten() {
                    if let utoipa::openapi::RefOr::T(parameter) = parameter {
                        constrain(parameter);
                    }
                }
                document_shared_refusals(path, operation);
            }
        }
    }
}

/// The refusals that come from the shared machinery rather than the
/// route, so every route that can answer them says so: policy (403), a
/// missing or malformed Idempotency-Key (400) or one reused for another
/// request (422), a malformed path id (400, 422), a body where none is
/// taken (400), a body that is not JSON of the right shape (400, 413,
/// 415, 422), and the time-out, contention and sealed answers (503).
fn document_shared_refusals(path: &str, operation: &mut utoipa::openapi::path::Operation) {
    use utoipa::openapi::path::ParameterIn;
    use utoipa::openapi::RefOr;
    let parameters: Vec<_> = operation
        .parameters
        .iter()
        .flatten()
        .filter_map(|p| match p {
            RefOr::T(p) => Some(p),
            RefOr::Ref(_) => None,
        })
        .collect();
    let takes_key = parameters
        .iter()
        .any(|p| p.name == super::idempotency::HEADER_NAME);
    let takes_path_id = parameters.iter().any(|p| p.parameter_in == ParameterIn::Path);
    // Every body is parsed as JSON (`api::json::parse`), whatever its
    // documented type, and a route without one refuses a body (400).
    let takes_body = operation.request_body.is_some();
    // A route with no body still answers 400 `body-not-allowed` to one.
    let mut statuses = vec![StatusCode::SERVICE_UNAVAILABLE, StatusCode::BAD_REQUEST];
    // Any certificate may ask whether the service is alive.
    if path != "/health" {
        statuses.push(StatusCode::FORBIDDEN);
    }
    // A malformed path id; a key reused for a different request.
    if takes_path_id || takes_key {
        statuses.push(StatusCode::UNPROCESSABLE_ENTITY);
    }
    if takes_body {
        statuses.extend([
            StatusCode::BAD_REQUEST,
            StatusCode::PAYLOAD_TOO_LARGE,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            StatusCode::UNPROCESSABLE_ENTITY,
        ]);
    }
    for status in statuses {
        operation
            .responses
            .responses
            .entry(status.as_str().to_owned())
            .or_insert_with(|| RefOr::T(problem_response(status)));
    }
}

fn problem_response(status: StatusCode) -> utoipa::openapi::Response {
    use utoipa::openapi::{schema::Ref, Content, RefOr, Response};
    let mut response = Response::new(status.canonical_reason().unwrap_or("Problem"));
    let schema = Ref::from_schema_name("Problem");
    response.content.insert(
        super::problem::CONTENT_TYPE.to_owned(),
        RefOr::T(Content::new(Some(schema))),
    );
    response
}

/// A request's required text fields are never empty: each parser refuses
/// an empty value (`empty`), so the document says `minLength: 1`.
fn require_non_empty_strings(schema: &mut utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>) {
    use utoipa::openapi::schema::{Schema, SchemaType, Type};
    use utoipa::openapi::RefOr;
    let RefOr::T(Schema::Object(object)) = schema else {
        return;
    };
    let required = object.required.clone();
    for (name, property) in object.properties.iter_mut() {
        if !required.contains(name) {
            continue;
        }
        if let RefOr::T(Schema::Object(field)) = property {
            if field.schema_type == SchemaType::Type(Type::String) && field.min_length.is_none() {
                field.min_length = Some(1);
            }
        }
    }
}

/// What the server accepts for a parameter, as the parser of its kind says
/// (`None`: not a string parameter, or no rule beyond its type).
fn accepted(name: &str) -> Option<(&'static str, usize, usize)> {
    use crate::channel::signature;
    use crate::domain::ids::{ChannelId, MerchantId};
    use crate::domain::refs::{CardRef, IdentityRef, RevealRequestId, UserId};
    use crate::orchestration::payment::{OrderId, RefundId};
    use crate::orchestration::{BindingId, PaymentId};
    const REFERENCE: (usize, usize) = (36, 36);
    const FREE: (usize, usize) = (1, 64);
    let (pattern, (min, max)) = match name {
        "Idempotency-Key" => (super::idempotency::KEY_PATTERN, (1, 128)),
        // The digits only: the configured token BIN range is checked too.
        "token" => ("^[0-9]{13,19}$", (13, 19)),
        "card_ref" => (CardRef::PATTERN, REFERENCE),
        "identity_ref" => (IdentityRef::PATTERN, REFERENCE),
        "binding_id" => (BindingId::PATTERN, REFERENCE),
        "payment_id" => (PaymentId::PATTERN, REFERENCE),
        "request_id" => (RevealRequestId::PATTERN, REFERENCE),
        "run_id" => (crate::orchestration::reconcile::RunId::PATTERN, REFERENCE),
        "discrepancy_id" => (crate::orchestration::reconcile::DiscrepancyId::PATTERN, (38, 46)),
        "user_id" => (UserId::PATTERN, FREE),
        "channel" => (ChannelId::PATTERN, FREE),
        "merchant" => (MerchantId::PATTERN, FREE),
        "order_id" => (OrderId::PATTERN, FREE),
        "refund_id" => (RefundId::PATTERN, FREE),
        "x-channel-timestamp" => (signature::TIMESTAMP_PATTERN, (1, 19)),
        "x-channel-nonce" => (signature::NONCE_PATTERN, (16, 64)),
        "x-channel-signature" => (signature::SIGNATURE_PATTERN, (128, 128)),
        _ => return None,
    };
    Some((pattern, min, max))
}

/// Documents a string parameter's pattern and length bounds.
fn constrain(parameter: &mut utoipa::openapi::path::Parameter) {
    use utoipa::openapi::schema::Schema;
    use utoipa::openapi::RefOr;
    let Some((pattern, min, max)) = accepted(&parameter.name) else {
        return;
    };
    if let Some(RefOr::T(Schema::Object(object))) = parameter.schema.as_mut() {
        object.pattern = Some(pattern.to_owned());
        object.min_length = Some(min);
        object.max_length = Some(max);
    }
}

/// OpenAPI requires every response to say something; one the route left
/// undescribed gets its status's reason phrase.
fn describe_by_status(status: &str, response: &mut utoipa::openapi::Response) {
    if response.description.is_empty() {
        let reason = status
            .parse::<u16>()
            .ok()
            .and_then(|code| axum::http::StatusCode::from_u16(code).ok())
            .and_then(|code| code.canonical_reason());
        response.description = reason.unwrap_or("Response").to_owned();
    }
}

/// A response whose JSON body is the `Problem` schema is documented under
/// the content type it is served with.
fn serve_problems_as_problem_json(response: &mut utoipa::openapi::Response) {
    let is_problem = response
        .content
        .get("application/json")
        .and_then(|c| match c {
            utoipa::openapi::RefOr::T(content) => content.schema.as_ref(),
            utoipa::openapi::RefOr::Ref(_) => None,
        })
        .is_some_and(
            |schema| matches!(schema, utoipa::openapi::RefOr::Ref(r) if r.ref_location.ends_with("/Problem")),
        );
    if is_problem {
        if let Some(content) = response.content.shift_remove("application/json") {
            response
                .content
                .insert(super::problem::CONTENT_TYPE.to_owned(), content);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_document_holds_every_route_of_the_table() {
        let doc = super::document();
        let operations: usize = doc
            .paths
            .paths
            .values()
            .map(|item| {
                [&item.get, &item.post, &item.put, &item.delete]
                    .into_iter()
                    .flatten()
                    .count()
            })
            .sum();
        // One per `routes!` line in routes.rs.
        let table = include_str!("routes.rs").matches(".routes(routes!(").count();
        assert_eq!(operations, table);
        assert!(doc.paths.paths.contains_key("/v1/tokens/{token}/suspend"));
        let json = doc.to_json().unwrap();
        assert!(json.contains("\"Problem\""));
        let served: serde_json::Value = serde_json::from_str(&json).unwrap();
        let document =
            &served["paths"]["/v1/openapi.json"]["get"]["responses"]["200"]["content"]["application/json"];
        assert_eq!(
            document["schema"]["type"], "object",
            "the document is described as an object"
        );
        let pan = &served["components"]["schemas"]["StoreCardRequest"]["properties"]["pan"];
        assert_eq!(pan["minLength"], 1, "a required text field is never empty");
    }

    #[test]
    fn operation_ids_are_unique_and_errors_are_problem_json() {
        let doc = super::document();
        let mut ids = std::collections::BTreeSet::new();
        for (path, item) in &doc.paths.paths {
            for operation in [&item.get, &item.post, &item.put, &item.delete]
                .into_iter()
                .flatten()
            {
                let id = operation.operation_id.clone().unwrap_or_default();
                assert!(ids.insert(id.clone()), "operation id {id} repeats ({path})");
                for (status, response) in &operation.responses.responses {
                    if let utoipa::openapi::RefOr::T(r) = response {
                        if status.starts_with('4') || status.starts_with('5') {
                            assert!(
                                !r.content.contains_key("application/json"),
                                "{path} {status} documents a problem as application/json"
                            );
                        }
                    }
                }
            }
        }
        let json = doc.to_json().unwrap();
        assert!(json.contains("\"mutualTLS\"") && json.contains("\"servers\""));
    }

    #[test]
    fn every_string_path_and_header_parameter_has_its_pattern_and_bounds() {
        let doc: serde_json::Value = serde_json::from_str(&super::document().to_json().unwrap()).unwrap();
        let mut seen = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                for parameter in operation["parameters"].as_array().into_iter().flatten() {
                    let schema = &parameter["schema"];
                    if parameter["in"] == "query" || schema["type"] != "string" {
                        continue;
                    }
                    seen += 1;
                    let at = format!("{method} {path} {}", parameter["name"]);
                    assert!(
                        schema["pattern"]
                            .as_str()
                            .is_some_and(|p| p.starts_with('^') && p.ends_with('$')),
                        "{at}: {schema}"
                    );
                    assert!(schema["minLength"].as_u64() >= Some(1), "{at}: {schema}");
                    assert!(
                        schema["maxLength"].as_u64() >= schema["minLength"].as_u64(),
                        "{at}: {schema}"
                    );
                }
            }
        }
        assert!(seen > 30, "only {seen} parameters checked");
    }

    #[test]
    fn every_route_documents_the_refusals_the_shared_machinery_can_give() {
        let doc: serde_json::Value = serde_json::from_str(&super::document().to_json().unwrap()).unwrap();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let responses = operation["responses"].as_object().unwrap();
                let has = |status: &str| responses.contains_key(status);
                let at = format!("{method} {path}");
                assert!(has("503"), "{at}");
                assert_eq!(has("403"), path != "/health", "{at}");
                let parameters = operation["parameters"].as_array().cloned().unwrap_or_default();
                assert!(has("400"), "{at}: a body where none is taken, or a bad key");
                if parameters.iter().any(|p| p["name"] == "Idempotency-Key") {
                    assert!(has("422"), "{at}: an Idempotency-Key reused for another request");
                }
                if parameters
                    .iter()
                    .any(|p| p["in"] == "path" && p["schema"]["type"] == "string")
                {
                    assert!(has("422"), "{at}: a malformed path id");
                }
                if let Some(content) = operation["requestBody"]["content"].as_object() {
                    // Every body is parsed as JSON: a document that offers
                    // another type invites a 415 for what it describes.
                    assert!(
                        content.keys().all(|t| t == "application/json"),
                        "{at}: a body documented as {:?}",
                        content.keys().collect::<Vec<_>>()
                    );
                    for status in ["400", "413", "415", "422"] {
                        assert!(has(status), "{at}: {status}");
                    }
                }
                for (status, response) in responses {
                    if status.starts_with('4') || status.starts_with('5') {
                        assert!(
                            response["content"].get("application/problem+json").is_some(),
                            "{at} {status}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_documented_patterns_are_the_parsers_rules() {
        use crate::domain::refs::CardRef;
        use crate::orchestration::PaymentId;
        // A reference: its prefix and 32 lower-case hex digits, as `parse` says.
        let card = format!("crd_{}", "a".repeat(32));
        assert!(CardRef::parse(&card).is_ok());
        assert_eq!(CardRef::PATTERN, "^crd_[0-9a-f]{32}$");
        assert_eq!(PaymentId::PATTERN, "^pay_[0-9a-f]{32}$");
        assert!(PaymentId::parse(&format!("pay_{}", "0".repeat(32))).is_ok());
        assert!(PaymentId::parse(&format!("pay_{}", "A".repeat(32))).is_err());
    }

    /// Every example string in `value`, with where it is.
    fn examples(value: &serde_json::Value, at: &str, out: &mut Vec<(String, String)>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, inner) in map {
                    let here = format!("{at}/{key}");
                    if key == "example" || key == "examples" {
                        let mut strings = Vec::new();
                        collect_strings(inner, &mut strings);
                        out.extend(strings.into_iter().map(|s| (here.clone(), s)));
                    }
                    examples(inner, &here, out);
                }
            }
            serde_json::Value::Array(items) => {
                for (i, inner) in items.iter().enumerate() {
                    examples(inner, &format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }

    fn collect_strings(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::String(s) => out.push(s.clone()),
            serde_json::Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
            serde_json::Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
            _ => {}
        }
    }

    #[test]
    fn no_example_carries_a_luhn_valid_card_number() {
        let doc: serde_json::Value = serde_json::from_str(&super::document().to_json().unwrap()).unwrap();
        let mut found = Vec::new();
        examples(&doc, "", &mut found);
        assert!(!found.is_empty(), "the document has examples to check");
        for (at, text) in found {
            let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_digit).collect();
            let pan_like = (13..=19).contains(&digits.len()) && crate::vault::card::luhn::is_valid(&digits);
            assert!(
                !pan_like,
                "{at}: the example {text:?} is a Luhn-valid card number"
            );
        }
    }

    #[test]
    fn the_audit_page_limit_is_documented_with_the_parsers_bounds() {
        let doc: serde_json::Value = serde_json::from_str(&super::document().to_json().unwrap()).unwrap();
        let parameters = doc["paths"]["/v1/audit"]["get"]["parameters"].as_array().unwrap();
        let limit = parameters.iter().find(|p| p["name"] == "limit").unwrap();
        assert_eq!(limit["schema"]["minimum"], 1);
        assert_eq!(limit["schema"]["maximum"], super::super::extract::MAX_PAGE);
    }
}
