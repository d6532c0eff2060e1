//! The routes of the served OpenAPI document, as a caller would send them.

/// One documented route, as a caller sends it.
#[derive(Clone, Debug)]
pub struct Route {
    pub method: String,
    pub path: String,
    /// Whether its operation has a request body (others refuse one).
    pub takes_body: bool,
}

/// Every documented route (only those with a path parameter when
/// `with_parameters_only`), each parameter replaced by `value`.
pub fn every_route_with(value: &str, with_parameters_only: bool) -> Vec<Route> {
    let doc = tokenvault::api::document();
    let mut out = Vec::new();
    for (template, item) in &doc.paths.paths {
        if with_parameters_only && !template.contains('{') {
            continue;
        }
        let mut path = String::new();
        let mut rest = template.as_str();
        while let Some(open) = rest.find('{') {
            path.push_str(&rest[..open]);
            path.push_str(value);
            let close = rest[open..].find('}').unwrap() + open;
            rest = &rest[close + 1..];
        }
        path.push_str(rest);
        for (method, operation) in [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("DELETE", &item.delete),
        ] {
            if let Some(operation) = operation {
                out.push(Route {
                    method: method.to_owned(),
                    path: path.clone(),
                    takes_body: operation.request_body.is_some(),
                });
            }
        }
    }
    out
}

/// Sends each route with `headers` (and `{}` where it takes a body), as
/// `role`; none may answer a 5xx. Returns the answers' bodies.
pub async fn sweep(
    client: &super::service::Client,
    role: &str,
    routes: &[Route],
    headers: &[(&str, &str)],
) -> Vec<String> {
    let mut answers = Vec::with_capacity(routes.len());
    for Route {
        method,
        path,
        takes_body,
    } in routes
    {
        let mut headers = headers.to_vec();
        let body = if *takes_body {
            headers.push(("Content-Type", "application/json"));
            Some(&b"{}"[..])
        } else {
            None
        };
        let r = client.send(method, path, &headers, body).await.unwrap();
        assert!(
            r.status < 500,
            "{role} {method} {path}: {} {}",
            r.status,
            r.text()
        );
        answers.push(r.text());
    }
    answers
}
