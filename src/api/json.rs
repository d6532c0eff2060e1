//! Request bodies: JSON only, unknown fields refused, and a parse failure
//! becomes a problem that names the field and the rule without repeating
//! what was sent (serde's own messages can quote the value). Its `errors`
//! list every field at fault, not only the first serde stopped at.

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
    let parsed = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        describe(&path, &inner)
    });
    let value = match parsed {
        Ok(value) => value,
        Err(first) => return Err(with_every_field_error::<T>(first, body)),
    };
    de.end().map_err(|e| describe(".", &e))?;
    Ok(value)
}

/// How many more field errors one answer names at most.
const MORE_ERRORS: usize = 16;

/// `first` (serde's first error), with every other field error of a
/// well-formed body in `errors`. Each error found is mended in a copy of
/// the body (an unknown field removed, a missing or mistyped one given a
/// value of the type it takes) and the body decoded again, so the next
/// error surfaces. Fields under one already named are mended, not named.
fn with_every_field_error<T: DeserializeOwned>(first: Problem, body: &[u8]) -> Problem {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return first;
    };
    let mut value = Wiped(value);
    let (Some(field), Some(rule)) = (first.field.clone(), first.rule.clone()) else {
        return first;
    };
    let mut errors = vec![super::problem::FieldError { field, rule }];
    for _ in 0..MORE_ERRORS {
        let Err(error) = decode_error::<T>(&value.0) else {
            break;
        };
        let (field, rule) = (error.field.clone(), error.rule.clone());
        let Some(field) = field.filter(|f| f != "body") else {
            break;
        };
        if !mend::<T>(&mut value.0, &field) {
            break;
        }
        let named_already = errors
            .iter()
            .any(|e| e.field == field || field.starts_with(&format!("{}.", e.field)));
        if !named_already {
            errors.push(super::problem::FieldError {
                field,
                rule: rule.unwrap_or_default(),
            });
        }
    }
    first.with_errors(errors)
}

fn decode_error<T: DeserializeOwned>(value: &serde_json::Value) -> Result<T, Problem> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        describe(&path, &e.into_inner())
    })
}

/// Mends the field at `path` (`a.b`) so that it no longer fails: removed
/// if it is unknown, else set to the first stand-in of some JSON type that
/// moves the error elsewhere. `false` when nothing does.
fn mend<T: DeserializeOwned>(value: &mut serde_json::Value, path: &str) -> bool {
    use serde_json::{json, Value};
    let (parent_path, name) = match path.rsplit_once('.') {
        Some((parent, name)) => (Some(parent), name),
        None => (None, path),
    };
    let stand_ins = [json!(""), json!(1), json!(true), json!([]), json!({})];
    let before = decode_error::<T>(value).err();
    let still_fails_here = |v: &Value| {
        decode_error::<T>(v)
            .err()
            .is_some_and(|p| p.field.as_deref() == Some(path))
    };
    let mut candidates: Vec<Option<Value>> = vec![None];
    candidates.extend(stand_ins.into_iter().map(Some));
    for candidate in candidates {
        let mut tried = Wiped(value.clone());
        let Some(Value::Object(parent)) = locate(&mut tried.0, parent_path) else {
            return false;
        };
        match candidate {
            None if before.as_ref().and_then(|p| p.rule.as_deref()) == Some("unknown_field") => {
                parent.remove(name);
            }
            None => continue,
            Some(stand_in) => {
                parent.insert(name.to_owned(), stand_in);
            }
        }
        if !still_fails_here(&tried.0) {
            std::mem::swap(value, &mut tried.0);
            return true;
        }
    }
    false
}

/// A decoded copy of a body (which may hold a PAN): its strings are
/// zeroized when it is dropped. (A card number sent as a JSON number sits
/// in a `Number` that cannot be wiped; the copies live only for the
/// refusal.)
struct Wiped(serde_json::Value);

impl Drop for Wiped {
    fn drop(&mut self) {
        fn wipe(value: &mut serde_json::Value) {
            use zeroize::Zeroize;
            match value {
                serde_json::Value::String(s) => s.zeroize(),
                serde_json::Value::Array(items) => items.iter_mut().for_each(wipe),
                serde_json::Value::Object(map) => map.values_mut().for_each(wipe),
                _ => {}
            }
        }
        wipe(&mut self.0);
    }
}

/// The object at `path` (`None`: the body itself).
fn locate<'v>(value: &'v mut serde_json::Value, path: Option<&str>) -> Option<&'v mut serde_json::Value> {
    let Some(path) = path else { return Some(value) };
    path.split('.').try_fold(value, |at, key| at.get_mut(key))
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

    fn named(p: &Problem) -> Vec<(&str, &str)> {
        p.errors
            .iter()
            .map(|e| (e.field.as_str(), e.rule.as_str()))
            .collect()
    }

    #[test]
    fn every_field_at_fault_is_listed_not_only_the_first() {
        let p = problem(r#"{"pan": 4242424242424242, "controls": {"max_uses": "x"}, "cvv": "123"}"#);
        let errors = named(&p);
        assert_eq!(
            errors,
            vec![
                ("pan", "wrong_type"),
                ("controls.max_uses", "wrong_type"),
                ("cvv", "unknown_field")
            ]
        );
        assert_eq!(
            (p.field.as_deref(), p.rule.as_deref()),
            (Some("pan"), Some("wrong_type"))
        );
        assert!(!String::from_utf8(p.to_json()).unwrap().contains("4242"));
        // A missing object is named once, not each of its fields.
        let p = problem(r#"{"cvv": 1}"#);
        let errors = named(&p);
        assert_eq!(
            errors,
            vec![
                ("cvv", "unknown_field"),
                ("pan", "missing_field"),
                ("controls", "missing_field")
            ]
        );
    }
}
