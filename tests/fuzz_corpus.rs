//! Replays the fuzz corpora through the checks the fuzz targets run: every
//! file of `fuzz/corpus/<target>/`, and of `fuzz/artifacts/<target>/` when a
//! fuzzer has saved a crash there. Each input the fuzzers kept is a test.

#[path = "../fuzz/checks.rs"]
mod checks;

use std::panic;
use std::path::{Path, PathBuf};

fn replay(target: &str, check: fn(&[u8])) {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut inputs: Vec<PathBuf> = Vec::new();
    for folder in ["corpus", "artifacts"] {
        if let Ok(entries) = std::fs::read_dir(fuzz.join(folder).join(target)) {
            inputs.extend(entries.map(|entry| entry.unwrap().path()));
        }
    }
    assert!(!inputs.is_empty(), "no corpus for {target} in {fuzz:?}");
    let failed: Vec<&PathBuf> = inputs
        .iter()
        .filter(|path| {
            let data = std::fs::read(path).unwrap();
            panic::catch_unwind(|| check(&data)).is_err()
        })
        .collect();
    assert!(failed.is_empty(), "{target} fails on {failed:?}");
}

#[test]
fn token_format_corpus() {
    replay("token_format", checks::token_format);
}

#[test]
fn body_corpus() {
    replay("body", checks::body);
}

#[test]
fn scopes_corpus() {
    replay("scopes", checks::scopes);
}

#[test]
fn canonical_path_corpus() {
    replay("canonical_path", checks::canonical_path);
}
