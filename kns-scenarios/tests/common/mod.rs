//! Helpers shared by the CLI tests: run the `kns` binary and find the repository's examples.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs the `kns` binary with `args`.
pub fn kns(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kns")).args(args).output().expect("the kns binary runs")
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("utf-8 output")
}

/// The path of `examples/<dir>/<name>` at the repository's root.
pub fn example_in(dir: &str, name: &str) -> String {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "..", "examples", dir, name].iter().collect();
    path.to_string_lossy().into_owned()
}
