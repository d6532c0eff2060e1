//! The routes of the served OpenAPI document, as a caller would send them.

/// `(method, path)` of every documented route (only those with a path
/// parameter when `with_parameters_only`), each parameter replaced by `value`.
pub fn every_route_with(value: &str, with_parameters_only: bool) -> Vec<(String, String)> {
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
        for (method, present) in [
            ("GET", item.get.is_some()),
            ("POST", item.post.is_some()),
            ("PUT", item.put.is_some()),
            ("DELETE", item.delete.is_some()),
        ] {
            if present {
                out.push((method.to_owned(), path.clone()));
            }
        }
    }
    out
}

/// Sends `{}` to each route with `headers`, as `role`; none may answer a
/// 5xx. Returns the answers' bodies.
pub async fn sweep(
    client: &super::service::Client,
    role: &str,
    routes: &[(String, String)],
    headers: &[(&str, &str)],
) -> Vec<String> {
    let mut headers = headers.to_vec();
    headers.push(("Content-Type", "application/json"));
    let mut answers = Vec::with_capacity(routes.len());
    for (method, path) in routes {
        let r = client.send(method, path, &headers, Some(b"{}")).await.unwrap();
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
