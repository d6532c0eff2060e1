//! Every problem type the source can answer is described in
//! `docs/problems.md`, and the document names no type the source lost.

use std::collections::BTreeSet;
use std::path::Path;

/// `"kind", "Title"` pairs as `Problem::new` and `ErrorCode::new` take them:
/// a lower-case kebab string literal followed by a capitalised one.
fn kinds_in(text: &str, into: &mut BTreeSet<String>) {
    let literals: Vec<&str> = text.split('"').skip(1).step_by(2).collect();
    let tail = text.split('"').collect::<Vec<_>>();
    for (i, kind) in literals.iter().enumerate() {
        let Some(title) = literals.get(i + 1) else {
            continue;
        };
        // Only a comma and whitespace between the two literals.
        let between = tail.get(2 * i + 2).copied().unwrap_or_default();
        let kebab = !kind.is_empty()
            && kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
            && kind.bytes().any(|b| b.is_ascii_lowercase());
        let titled = title.chars().next().is_some_and(|c| c.is_ascii_uppercase());
        if kebab && titled && between.trim() == "," {
            into.insert((*kind).to_owned());
        }
    }
}

fn source_kinds(dir: &Path, into: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            source_kinds(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            for call in ["Problem::new(", "ErrorCode::new("] {
                for piece in text.split(call).skip(1) {
                    let args: String = piece.chars().take(300).collect();
                    kinds_in(&args, into);
                }
            }
        }
    }
}

#[test]
fn every_problem_type_is_documented_and_no_documented_type_is_gone() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut answered = BTreeSet::new();
    source_kinds(&root.join("src"), &mut answered);
    assert!(answered.len() > 30, "the scan found too few: {answered:?}");
    let doc = std::fs::read_to_string(root.join("docs/problems.md")).unwrap();
    let documented: BTreeSet<String> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_owned)
        .collect();
    let undocumented: Vec<_> = answered.difference(&documented).collect();
    let gone: Vec<_> = documented.difference(&answered).collect();
    assert!(
        undocumented.is_empty(),
        "answered but not in docs/problems.md: {undocumented:?}"
    );
    assert!(
        gone.is_empty(),
        "in docs/problems.md but answered nowhere: {gone:?}"
    );
}
