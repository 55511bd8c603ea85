//! Helpers for the manifest loader tests: load inline files, render problems as text.

use kns_core::manifest::{Loaded, Loader};

/// Loads `(file name, text)` pairs in order; on failure, the rendered problems.
pub fn load(files: &[(&str, &str)]) -> Result<Loaded, Vec<String>> {
    let mut loader = Loader::new();
    for (name, text) in files {
        loader.add(*name, *text);
    }
    loader.finish().map_err(|e| e.0.iter().map(|p| p.render()).collect())
}

/// Loads one file that must load; panics with the rendered problems otherwise.
pub fn load_ok(text: &str) -> Loaded {
    load(&[("t.yaml", text)]).unwrap_or_else(|e| panic!("unexpected problems:\n{}", e.join("\n")))
}

/// Loads one file that must fail, and returns its rendered problems.
pub fn load_err(text: &str) -> Vec<String> {
    match load(&[("t.yaml", text)]) {
        Ok(_) => panic!("expected problems, but the file loaded"),
        Err(e) => e,
    }
}

/// Asserts that one file fails with exactly `expected` (rendered, in order).
pub fn check_errors(text: &str, expected: &[&str]) {
    let got = load_err(text);
    assert_eq!(got, expected, "\ngot:\n{}", got.join("\n"));
}

/// Warnings of a load, rendered.
pub fn warnings(loaded: &Loaded) -> Vec<String> {
    loaded.warnings.iter().map(|w| w.render()).collect()
}
