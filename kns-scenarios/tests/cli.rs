//! The `kns` binary end to end: arguments, files, output formats and exit codes.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

mod common;
use common::kns;

fn fixture(name: &str) -> String {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "fixtures", name].iter().collect();
    path.to_string_lossy().into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("utf-8 output")
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("utf-8 output")
}

#[test]
fn matrix_json_is_the_documented_contract() {
    let out = kns(&["matrix", "-f", &fixture("shop.yaml"), "--port", "8080/TCP", "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let expected = concat!(
        r#"{"probes":[{"matrix":{"#,
        r#""shop/api":{"shop/api":true,"shop/db":false,"shop/web":true},"#,
        r#""shop/db":{"shop/api":false,"shop/db":true,"shop/web":true},"#,
        r#""shop/web":{"shop/api":true,"shop/db":false,"shop/web":true}"#,
        r#"},"port":8080,"protocol":"TCP"}]}"#,
        "\n"
    );
    assert_eq!(stdout(&out), expected);
}

#[test]
fn matrix_defaults_to_every_declared_port() {
    let out = kns(&["matrix", "-f", &fixture("shop.yaml"), "-o", "csv"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let text = stdout(&out);
    for port in ["80", "5432", "8080"] {
        assert!(text.contains(&format!("TCP,{port},shop/web,shop/api,")), "port {port}:\n{text}");
    }
    // Named port `api` resolves to 8080 on the api pod only.
    assert!(text.contains("TCP,8080,shop/web,shop/api,true"), "{text}");
    assert!(text.contains("TCP,80,shop/web,shop/api,false"), "{text}");
    assert!(text.contains("TCP,5432,shop/api,shop/db,false"), "{text}");
}

#[test]
fn matrix_table_reads_at_a_glance() {
    let out = kns(&["matrix", "-f", &fixture("shop.yaml"), "--port", "8080/TCP"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    insta::assert_snapshot!(stdout(&out));
}

#[test]
fn matrix_reads_standard_input() {
    let text = std::fs::read_to_string(fixture("shop.yaml")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kns"))
        .args(["matrix", "-f", "-", "--port", "8080/TCP", "-o", "csv"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert!(stdout(&out).contains("TCP,8080,shop/web,shop/api,true"));
}

#[test]
fn explain_names_the_policy_and_rule() {
    let f = fixture("shop.yaml");
    let out =
        kns(&["explain", "-f", &f, "--from", "shop/web", "--to", "shop/api", "--port", "8080/TCP"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    insta::assert_snapshot!("explain_allowed", stdout(&out));
    let out =
        kns(&["explain", "-f", &f, "--from", "shop/api", "--to", "shop/db", "--port", "5432/TCP"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    insta::assert_snapshot!("explain_denied", stdout(&out));
}

#[test]
fn bad_input_is_a_user_error_with_its_location() {
    let f = fixture("bad-selector.yaml");
    let out = kns(&["matrix", "-f", &f]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("bad-selector.yaml: document 2"), "{err}");
    assert!(err.contains("NetworkPolicy shop/broken"), "{err}");
    assert!(err.contains("spec.podSelector.matchExpressions[0]"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn missing_file_and_unknown_pod_are_user_errors() {
    let out = kns(&["matrix", "-f", "/nonexistent/kns.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("/nonexistent/kns.yaml"), "{}", stderr(&out));

    let f = fixture("shop.yaml");
    let out =
        kns(&["explain", "-f", &f, "--from", "shop/nope", "--to", "shop/api", "--port", "80/TCP"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no pod `shop/nope`"), "{}", stderr(&out));
}

#[test]
fn bad_arguments_are_user_errors() {
    let out = kns(&["matrix", "-f", &fixture("shop.yaml"), "--port", "80/XTP"]);
    assert_eq!(out.status.code(), Some(1));
    let out = kns(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(1));
}
