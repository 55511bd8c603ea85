//! `kns tour` end to end: every step's assertions hold, the text stays stable, the JSON record
//! is complete, and two runs print the same bytes.

use std::process::{Command, Output};

fn kns(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kns")).args(args).output().expect("the kns binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("utf-8 output")
}

#[test]
fn the_whole_tour_passes_and_its_text_is_stable() {
    let out = kns(&["tour"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(text.matches("\n=> ok\n").count(), 12, "{text}");
    assert!(!text.contains("FAILED"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn json_records_every_step_with_its_commands_and_observations() {
    let out = kns(&["tour", "-o", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    let steps = v["steps"].as_array().expect("a steps array");
    assert_eq!(steps.len(), 12);
    for (i, s) in steps.iter().enumerate() {
        assert_eq!(s["number"], i + 1);
        assert_eq!(s["ok"], true, "{s}");
        for key in ["id", "title", "explanation"] {
            assert!(s[key].as_str().is_some_and(|t| !t.is_empty()), "{key} in {s}");
        }
        assert!(!s["commands"].as_array().unwrap().is_empty(), "{s}");
        assert!(!s["observations"].as_array().unwrap().is_empty(), "{s}");
    }
    assert_eq!(steps[9]["id"], "network-policy");
    let obs = steps[3]["observations"].as_array().unwrap();
    assert!(obs.iter().any(|o| o.as_str().unwrap().contains("NAMESPACE   NAME")), "pods view");
}

#[test]
fn list_names_every_step_without_running_them() {
    let out = kns(&["tour", "--list"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    let ids: Vec<&str> =
        text.lines().map(|l| l.split_whitespace().nth(1).expect("an id per line")).collect();
    assert_eq!(
        ids,
        [
            "l2-switching",
            "routing",
            "netns-bridge",
            "k8s-model",
            "snat-outside",
            "cni",
            "services",
            "discovery",
            "ingress",
            "network-policy",
            "pod-restart",
            "service-stays"
        ]
    );
    assert!(!text.contains("$ "), "nothing ran");
}

#[test]
fn one_step_runs_alone() {
    let out = kns(&["tour", "--step", "2"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.starts_with("Step 2/12 [routing]"), "{text}");
    assert!(!text.contains("Step 1/12") && !text.contains("Step 3/12"));
    assert!(text.contains("$ ip -n left route add 10.0.2.0/24 via 10.0.1.1"), "{text}");
    assert!(text.contains("Network is unreachable"), "{text}");
    let bad = kns(&["tour", "--step", "13"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no step 13"));
}

#[test]
fn two_runs_print_identical_bytes() {
    let a = kns(&["tour", "-o", "json"]);
    let b = kns(&["tour", "-o", "json"]);
    assert_eq!(a.stdout, b.stdout);
    assert_eq!(kns(&["tour"]).stdout, kns(&["tour"]).stdout);
}

#[test]
fn pause_without_a_terminal_does_not_wait() {
    // Standard input is not a terminal under the test harness: --pause must not block.
    let out = Command::new(env!("CARGO_BIN_EXE_kns"))
        .args(["tour", "--pause", "--step", "1"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    assert!(!stdout(&out).contains("press Enter"));
}
