//! Routes that take no body refuse one. Which routes take a body is read
//! from the OpenAPI document the router is built with (an operation with a
//! `requestBody`), so the rule cannot drift from what is documented.

use super::problem::Problem;
use axum::body::HttpBody as _;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashSet;
use std::sync::Arc;
use utoipa::openapi::path::Operation;
use utoipa::openapi::OpenApi;

/// The (method, route template) pairs whose operation takes a body.
pub(super) struct BodyRoutes(HashSet<(Method, String)>);

impl BodyRoutes {
    pub(super) fn from_document(document: &OpenApi) -> Self {
        let mut takes_body = HashSet::new();
        // The document's paths are the templates axum matches (`{id}`).
        for (path, item) in &document.paths.paths {
            let operations: [(Method, &Option<Operation>); 5] = [
                (Method::GET, &item.get),
                (Method::POST, &item.post),
                (Method::PUT, &item.put),
                (Method::PATCH, &item.patch),
                (Method::DELETE, &item.delete),
            ];
            for (method, operation) in operations {
                if operation.as_ref().is_some_and(|o| o.request_body.is_some()) {
                    takes_body.insert((method, path.clone()));
                }
            }
        }
        BodyRoutes(takes_body)
    }

    fn takes_body(&self, method: &Method, route: &str) -> bool {
        self.0.contains(&(method.clone(), route.to_owned()))
    }
}

/// 400 `body-not-allowed` for any body sent to a route that takes none.
/// The check reads nothing: a body is present when the request says it
/// has a length above zero, or streams one of unknown length.
pub(super) async fn refuse_unexpected_body(
    State(routes): State<Arc<BodyRoutes>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let has_body = !request.body().is_end_stream() && request.body().size_hint().upper() != Some(0);
    match route {
        Some(route) if has_body && !routes.takes_body(request.method(), &route) => Problem::new(
            StatusCode::BAD_REQUEST,
            "body-not-allowed",
            "Body not allowed",
            "this route takes no request body",
        )
        .with_field("body", "absent")
        .into_response(),
        _ => next.run(request).await,
    }
}
