//! Imports run down the layers only. The layer table lives in one place,
//! README.md's "Layers" section; this test reads it, then every `crate::…`
//! and `super::…` path in `src/`, and fails when a module names one of a
//! higher layer, unless the pair is a listed exception with its reason.

use std::collections::BTreeMap;
use std::path::Path;

/// Top-level module → rank (1 is the top of the stack).
fn layer_table() -> (BTreeMap<String, usize>, Vec<(String, String)>) {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("\n## Layers\n")
        .nth(1)
        .expect("README.md has a `## Layers` section");
    let section = section.split("\n## ").next().unwrap();
    let mut ranks = BTreeMap::new();
    let mut exceptions = Vec::new();
    for line in section.lines() {
        let cells: Vec<&str> = line.trim().trim_matches('|').split('|').map(str::trim).collect();
        if cells.len() < 2 {
            continue;
        }
        if let Ok(rank) = cells[0].parse::<usize>() {
            for module in cells[1].split(',') {
                let module = module.trim().trim_matches('`').trim_end_matches('/');
                assert!(
                    ranks.insert(module.to_owned(), rank).is_none(),
                    "{module} listed twice"
                );
            }
        } else if let Some((from, to)) = cells[0].trim_matches('`').split_once(" → ") {
            exceptions.push((from.trim().to_owned(), to.trim().trim_matches('`').to_owned()));
        }
    }
    (ranks, exceptions)
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a source file, e.g. `src/vault/card/mod.rs` → `[vault, card]`.
fn module_of(rel: &str) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_owned)
        .collect();
    if parts
        .last()
        .is_some_and(|p| p == "mod" || p == "lib" || p == "main")
    {
        parts.pop();
    }
    parts
}

/// First segments named after `crate::`, including every item of a
/// `crate::{a::x, b}` group (nested braces skipped).
fn crate_roots(code: &str) -> Vec<String> {
    let mut roots = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().last();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `tokenvault_crate::` or similar
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0usize;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_alphanumeric() || c == '_') => {
                        let name: String = group[i..]
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        roots.push(name);
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            roots.push(
                rest.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect(),
            );
        }
    }
    roots
}

/// Top-level modules a file's `super::` paths climb out to.
fn super_roots(code: &str, module: &[String]) -> Vec<String> {
    let mut roots = Vec::new();
    for (at, _) in code.match_indices("super::") {
        if at >= 7 && &code[at - 7..at] == "super::" {
            continue; // counted from the first `super::` of the chain
        }
        let mut depth = 0;
        let mut rest = &code[at..];
        while let Some(r) = rest.strip_prefix("super::") {
            depth += 1;
            rest = r;
        }
        if depth >= module.len() {
            roots.push(
                rest.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect(),
            );
        }
    }
    roots
}

fn without_comments(source: &str) -> String {
    source
        .lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn imports_run_down_the_layers() {
    let (ranks, exceptions) = layer_table();
    assert!(
        exceptions.len() <= 2,
        "at most two listed exceptions: {exceptions:?}"
    );
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut upward = Vec::new();
    let mut used_exceptions = std::collections::BTreeSet::new();
    for file in files {
        let rel = file
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let module = module_of(&rel);
        let Some(top) = module.first() else { continue }; // lib.rs, main.rs
        if top == "boundary_probe" {
            continue; // built only to fail; see .ci/boundary-probe
        }
        let from = *ranks
            .get(top)
            .unwrap_or_else(|| panic!("{rel}: `{top}` has no layer in README.md"));
        let code = without_comments(&std::fs::read_to_string(&file).unwrap());
        let mut roots = crate_roots(&code);
        roots.extend(super_roots(&code, &module));
        for root in roots {
            if root == *top || root.is_empty() {
                continue;
            }
            let Some(&to) = ranks.get(&root) else { continue }; // macros, `crate::Foo` re-exports
            if to < from {
                if exceptions.contains(&(top.clone(), root.clone())) {
                    used_exceptions.insert((top.clone(), root.clone()));
                } else {
                    upward.push(format!("{rel} (layer {from}) names `{root}` (layer {to})"));
                }
            }
        }
    }
    upward.sort();
    upward.dedup();
    assert!(
        upward.is_empty(),
        "imports that run back up:\n{}",
        upward.join("\n")
    );
    for e in &exceptions {
        assert!(
            used_exceptions.contains(e),
            "listed exception {e:?} no longer occurs: drop it from README.md"
        );
    }
}

#[test]
fn the_parser_sees_grouped_and_nested_paths() {
    let roots =
        crate_roots("use crate::{api::App, vault::{card::Pan, Vault}, store};\nlet x = crate::tls::x;");
    assert_eq!(roots, ["api", "vault", "store", "tls"]);
    assert_eq!(
        super_roots(
            "use super::super::api::App;",
            &["orchestration".into(), "payment".into()]
        ),
        ["api"]
    );
    assert!(super_roots("use super::x;", &["orchestration".into(), "payment".into()]).is_empty());
}
