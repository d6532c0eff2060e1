//! Invariant 3, proven by the compiler: code outside `crate::vault` cannot
//! name `Pan` or the identity plaintext types, nor call the method that
//! decrypts a PAN. `src/boundary_probe.rs` tries each (one `// PROBE:` line
//! apiece); this test builds it and requires a privacy error on every probe
//! line. If someone widens a visibility, the probe compiles and this fails.
//!
//! Uses its own target directory so it never waits on the build lock of the
//! `cargo test` that runs it; the first run checks the dependencies once.

use std::process::Command;

#[test]
fn plaintext_types_cannot_be_named_outside_the_vault() {
    let manifest_dir = env!("CARGO_MANIFEST_DIR");
    let probe_src = std::fs::read_to_string(format!("{manifest_dir}/src/boundary_probe.rs")).unwrap();
    let probe_lines: Vec<(usize, &str)> = probe_src
        .lines()
        .enumerate()
        .filter_map(|(i, l)| l.split("// PROBE: ").nth(1).map(|name| (i + 1, name.trim())))
        .collect();
    assert!(
        probe_lines.len() >= 5,
        "the probe covers the PAN, name, ID, phone types and open_pan"
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

    for (line, name) in probe_lines {
        let refused = stderr.lines().any(|l| {
            l.starts_with(&format!("src/boundary_probe.rs:{line}:"))
                && (l.contains("error[E0603]") || l.contains("error[E0624]") || l.contains("error[E0616]"))
        });
        assert!(
            refused,
            "probe `{name}` (line {line}) was not refused as private:\n{stderr}"
        );
    }
    // Nothing else may fail: the probe must be refused for privacy alone.
    for l in stderr.lines().filter(|l| l.contains("error[")) {
        assert!(
            l.starts_with("src/boundary_probe.rs:"),
            "unexpected error outside the probe: {l}"
        );
    }
}
