//! Every test SECURITY.md names exists, under the name and in the place it
//! gives, so a claim cannot point at a test that was renamed, moved or
//! deleted. A name is a backticked `path::to::thing`:
//! - `file::test` where `tests/file.rs` exists: a test function there;
//! - `a::b::tests` or `a::b::tests::test`: the module `src/a/b.rs` (or
//!   `src/a/b/mod.rs`), its `mod tests`, and the test in it;
//! - any other path: a module or item under `src/` (`crate::` optional),
//!   whose file exists; its last segment may name an item in the file.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The backticked `a::b…` paths of `text`.
fn named_paths(text: &str) -> Vec<String> {
    let is_segment = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && !s.as_bytes()[0].is_ascii_digit()
    };
    let mut out: Vec<String> = text
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|span| span.contains("::") && span.split("::").all(is_segment))
        .map(str::to_owned)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The source of module `segments` under `src/`, if it exists.
fn module_file(segments: &[&str]) -> Option<(PathBuf, String)> {
    let base = root().join("src").join(segments.join("/"));
    [base.with_extension("rs"), base.join("mod.rs")]
        .into_iter()
        .find(|p| p.is_file())
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
}

/// Whether `source` defines a test function `name`: `fn name(` right
/// after a `#[test]` or `#[tokio::test…]` attribute (doc comments and
/// other attributes may sit between).
fn defines_test(source: &str, name: &str) -> bool {
    let needle = format!("fn {name}(");
    source.match_indices(&needle).any(|(at, _)| {
        let before = &source[..at];
        let lines: Vec<&str> = before.lines().rev().take(6).collect();
        lines
            .iter()
            .any(|l| l.trim_start().starts_with("#[test]") || l.trim_start().starts_with("#[tokio::test"))
    })
}

/// What is wrong with the name `path`, if anything.
fn check(path: &str) -> Option<String> {
    let segments: Vec<&str> = path.trim_start_matches("crate::").split("::").collect();
    let test_file = root().join("tests").join(format!("{}.rs", segments[0]));
    if segments.len() == 2 && test_file.is_file() {
        let source = std::fs::read_to_string(&test_file).unwrap();
        return (!defines_test(&source, segments[1]))
            .then(|| format!("tests/{}.rs has no test `{}`", segments[0], segments[1]));
    }
    if let Some(at) = segments.iter().position(|s| *s == "tests") {
        let Some((file, source)) = module_file(&segments[..at]) else {
            return Some(format!("no module src/{}", segments[..at].join("/")));
        };
        if !source.contains("mod tests") {
            return Some(format!("{} has no `mod tests`", file.display()));
        }
        return match segments.get(at + 1) {
            Some(name) if !defines_test(&source, name) => {
                Some(format!("{} has no test `{name}`", file.display()))
            }
            _ => None,
        };
    }
    if module_file(&segments).is_some() {
        return None;
    }
    // The last segment may be an item of the module before it.
    let (item, module) = segments.split_last()?;
    match module_file(module) {
        Some((_, source)) if contains_item(&source, item) => None,
        _ => Some(format!("no module or item src/{}", segments.join("/"))),
    }
}

fn contains_item(source: &str, item: &str) -> bool {
    ["fn ", "mod ", "struct ", "enum ", "const ", "trait ", "type "]
        .iter()
        .any(|kind| source.contains(&format!("{kind}{item}")))
}

#[test]
fn every_test_and_module_security_md_names_exists() {
    let text = std::fs::read_to_string(root().join("SECURITY.md")).unwrap();
    let names = named_paths(&text);
    assert!(names.len() > 80, "the document names its tests: {}", names.len());
    let wrong: Vec<String> = names
        .iter()
        .filter_map(|n| check(n).map(|why| format!("`{n}`: {why}")))
        .collect();
    assert!(
        wrong.is_empty(),
        "SECURITY.md names what does not exist:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_checker_finds_a_renamed_test_and_a_moved_module() {
    let text = "`key_custody::sealed_until_threshold_shares_from_distinct_custodians` \
                `key_custody::no_such_test` `vault::keys::shares::tests::no_such_test` \
                `vault::no_such_module` `vault::keys::sealed_share`";
    let verdicts: Vec<(String, bool)> = named_paths(text)
        .into_iter()
        .map(|n| {
            let ok = check(&n).is_none();
            (n, ok)
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            ("key_custody::no_such_test".to_owned(), false),
            (
                "key_custody::sealed_until_threshold_shares_from_distinct_custodians".to_owned(),
                true
            ),
            ("vault::keys::sealed_share".to_owned(), true),
            ("vault::keys::shares::tests::no_such_test".to_owned(), false),
            ("vault::no_such_module".to_owned(), false),
        ]
    );
    assert!(Path::new(&root().join("SECURITY.md")).is_file());
}
