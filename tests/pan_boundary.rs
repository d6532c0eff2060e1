//! Invariant 3, proven by the compiler: code outside `crate::vault` cannot
//! name `Pan` or the identity plaintext types, nor call the methods that
//! decrypt them. `src/boundary_probe.rs` tries each from the crate root and
//! `src/orchestration/boundary_probe.rs` from inside the orchestration layer
//! (plus the gateway's channel trait, agreement numbers, CVN and expiry);
//! this test builds both and requires a privacy error on every probe line.
//! If someone widens a visibility, a probe line compiles and this fails.
//!
//! Uses its own target directory so it never waits on the build lock of the
//! `cargo test` that runs it; the first run checks the dependencies once.

use std::process::Command;

#[test]
fn plaintext_types_cannot_be_named_outside_the_vault() {
    let manifest_dir = env!("CARGO_MANIFEST_DIR");
    const PROBES: [&str; 2] = ["src/boundary_probe.rs", "src/orchestration/boundary_probe.rs"];
    let mut probe_lines: Vec<(&str, usize, String)> = Vec::new();
    for file in PROBES {
        let source = std::fs::read_to_string(format!("{manifest_dir}/{file}")).unwrap();
        probe_lines.extend(source.lines().enumerate().filter_map(|(i, l)| {
            l.split("// PROBE: ")
                .nth(1)
                .map(|name| (file, i + 1, name.trim().to_owned()))
        }));
    }
    assert!(
        probe_lines.len() >= 15,
        "the probes cover the plaintext types, their openers, the channel trait, agreement numbers, CVN and expiry"
    );

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(manifest_dir)
        .args([
            "check",
            "--lib",
            "--features",
            "boundary-probe",
            "--message-format=short",
            "--quiet",
        ])
        .args(["--target-dir", &format!("{manifest_dir}/target/boundary-probe")])
        .output()
        .expect("run cargo check");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "the boundary probe compiled: a plaintext type leaked out of crate::vault"
    );

    for (file, line, name) in probe_lines {
        let refused = stderr.lines().any(|l| {
            l.starts_with(&format!("{file}:{line}:"))
                && (l.contains("error[E0603]") || l.contains("error[E0624]") || l.contains("error[E0616]"))
        });
        assert!(
            refused,
            "probe `{name}` ({file}:{line}) was not refused as private:\n{stderr}"
        );
    }
    // Nothing else may fail: the probe must be refused for privacy alone.
    for l in stderr.lines().filter(|l| l.contains("error[")) {
        assert!(
            PROBES.iter().any(|file| l.starts_with(&format!("{file}:"))),
            "unexpected error outside the probes: {l}"
        );
    }
}
