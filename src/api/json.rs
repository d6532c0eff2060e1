//! Request bodies: JSON only, unknown fields refused, and a parse failure
//! becomes a problem that names the field and the rule without repeating
//! what was sent (serde's own messages can quote the value).

use super::problem::Problem;
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

fn safe_name(name: &str) -> Option<&str> {
    let ok = (1..=48).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'[' || b == b']');
    ok.then_some(name)
}

pub fn parse<T: DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> Result<T, Problem> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
    if !is_json {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            "send the body as application/json",
        )
        .with_field("Content-Type", "application_json"));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        describe(&path, &inner)
    })?;
    de.end().map_err(|e| describe(".", &e))?;
    Ok(value)
}

fn describe(path: &str, error: &serde_json::Error) -> Problem {
    use serde_json::error::Category;
    let bad = |rule: &str, detail: &str, field: Option<&str>| {
        let p = Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed-body",
            "Malformed request body",
            detail,
        );
        match field {
            Some(f) => p.with_field(f, rule),
            None => p.with_field("body", rule),
        }
    };
    let field = (path != ".").then(|| safe_name(path)).flatten();
    match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            bad("json_syntax", "the body is not well-formed JSON", None)
        }
        Category::Data => {
            let message = error.to_string();
            if let Some(rest) = message.strip_prefix("unknown field `") {
                // The path already ends with the unknown key.
                let name = rest.split('`').next().and_then(safe_name);
                let full = field.map(str::to_owned).or_else(|| name.map(str::to_owned));
                return bad(
                    "unknown_field",
                    "the body has a field this operation does not take",
                    full.as_deref().or(Some("body")),
                );
            }
            if let Some(rest) = message.strip_prefix("missing field `") {
                let name = rest.split('`').next().and_then(safe_name);
                let full = match (field, name) {
                    (Some(parent), Some(n)) => Some(format!("{parent}.{n}")),
                    (None, Some(n)) => Some(n.to_owned()),
                    _ => None,
                };
                return bad(
                    "missing_field",
                    "a required field is missing",
                    full.as_deref().or(Some("body")),
                );
            }
            if let Some(rest) = message.strip_prefix("duplicate field `") {
                // Which of two values was meant is anyone's guess: refused.
                let name = rest.split('`').next().and_then(safe_name);
                let full = match (field, name) {
                    (Some(path), Some(n)) if path.ends_with(n) => Some(path.to_owned()),
                    (Some(parent), Some(n)) => Some(format!("{parent}.{n}")),
                    (None, Some(n)) => Some(n.to_owned()),
                    _ => None,
                };
                return bad(
                    "duplicate_field",
                    "a field is given twice",
                    full.as_deref().or(Some("body")),
                );
            }
            if message.starts_with("invalid type") {
                return bad("wrong_type", "a field has the wrong JSON type", field);
            }
            bad("invalid_value", "a field's value is not acceptable", field)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        max_uses: u32,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        pan: String,
        controls: Inner,
    }

    fn json() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        h
    }

    fn problem(body: &str) -> Problem {
        parse::<Body>(&json(), body.as_bytes()).unwrap_err()
    }

    #[test]
    fn each_failure_names_field_and_rule_and_never_the_value() {
        let p = problem(r#"{"pan": 4242424242424242, "controls": {"max_uses": 1}}"#);
        assert_eq!(
            (p.field.as_deref(), p.rule.as_deref()),
            (Some("pan"), Some("wrong_type"))
        );
        assert!(!String::from_utf8(p.to_json()).unwrap().contains("4242"));
        let p = problem(r#"{"pan": "x", "controls": {"max_uses": "4242424242424242"}}"#);
        assert_eq!(
            (p.field.as_deref(), p.rule.as_deref()),
            (Some("controls.max_uses"), Some("wrong_type"))
        );
        assert!(!String::from_utf8(p.to_json()).unwrap().contains("4242"));
        let p = problem(r#"{"pan": "x", "controls": {"max_uses": 1}, "cvv": "123"}"#);
        assert_eq!(
            (p.field.as_deref(), p.rule.as_deref()),
            (Some("cvv"), Some("unknown_field"))
        );
        let p = problem(r#"{"pan": "x", "controls": {"max_uses": 1, "expiry": "12/30"}}"#);
        assert_eq!(
            (p.field.as_deref(), p.rule.as_deref()),
            (Some("controls.expiry"), Some("unknown_field"))
        );
        let p = problem(r#"{"pan": "x"}"#);
        assert_eq!(
            (p.field.as_deref(), p.rule.as_deref()),
            (Some("controls"), Some("missing_field"))
        );
        let p = problem(r#"{"pan": "x", "#);
        assert_eq!(p.rule.as_deref(), Some("json_syntax"));
        let p = problem(r#"{"pan": "x", "controls": {"max_uses": 1}} trailing"#);
        assert_eq!(p.rule.as_deref(), Some("json_syntax"));
        let p = parse::<Body>(&HeaderMap::new(), b"{}").unwrap_err();
        assert_eq!(
            (p.status, p.field.as_deref(), p.rule.as_deref()),
            (415, Some("Content-Type"), Some("application_json"))
        );
    }

    #[test]
    fn a_field_given_twice_is_named_and_neither_value_is_kept() {
        let p = problem(r#"{"pan": "x", "pan": "4242424242424242", "controls": {"max_uses": 1}}"#);
        assert_eq!(
            (p.field.as_deref(), p.rule.as_deref()),
            (Some("pan"), Some("duplicate_field"))
        );
        assert!(!String::from_utf8(p.to_json()).unwrap().contains("4242"));
        let p = problem(r#"{"pan": "x", "controls": {"max_uses": 1, "max_uses": 2}}"#);
        assert_eq!(
            (p.field.as_deref(), p.rule.as_deref()),
            (Some("controls.max_uses"), Some("duplicate_field"))
        );
        assert_eq!(p.errors.len(), 1, "errors carries the field error too");
    }
}
