//! The loader never panics: damaged variants of the demo manifest either load or fail with
//! located problems, and a wild `replicas` is refused rather than expanded.

mod common;

use common::load::{check_errors, load};
use proptest::prelude::*;

fn demo() -> String {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/manifests/demo.yaml");
    std::fs::read_to_string(path).expect("examples/manifests/demo.yaml")
}

/// One edit of a text: delete a line, duplicate a line, or overwrite a byte with a character
/// that YAML cares about.
#[derive(Debug, Clone)]
enum Edit {
    DeleteLine(usize),
    DuplicateLine(usize),
    Overwrite(usize, char),
}

fn apply(text: &str, edit: &Edit) -> String {
    let lines: Vec<&str> = text.lines().collect();
    match *edit {
        Edit::DeleteLine(i) => {
            let i = i % lines.len();
            lines
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, l)| format!("{l}\n"))
                .collect()
        }
        Edit::DuplicateLine(i) => {
            let i = i % lines.len();
            lines
                .iter()
                .enumerate()
                .flat_map(|(j, l)| if j == i { vec![*l, *l] } else { vec![*l] })
                .map(|l| format!("{l}\n"))
                .collect()
        }
        Edit::Overwrite(at, ch) => {
            let mut chars: Vec<char> = text.chars().collect();
            let at = at % chars.len();
            chars[at] = ch;
            chars.into_iter().collect()
        }
    }
}

fn edit() -> impl Strategy<Value = Edit> {
    let ch = prop::sample::select(vec![
        ':', '-', ' ', '\n', '[', '{', '"', '#', '0', '9', 'x', '/', '&', '*', '!',
    ]);
    prop_oneof![
        any::<usize>().prop_map(Edit::DeleteLine),
        any::<usize>().prop_map(Edit::DuplicateLine),
        (any::<usize>(), ch).prop_map(|(at, c)| Edit::Overwrite(at, c)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn damaged_manifests_never_panic(edits in prop::collection::vec(edit(), 1..4)) {
        let mut text = demo();
        for e in &edits {
            text = apply(&text, e);
        }
        match load(&[("demo.yaml", &text)]) {
            Ok(loaded) => prop_assert!(!loaded.cluster.namespaces.is_empty()),
            Err(problems) => {
                prop_assert!(!problems.is_empty());
                for p in &problems {
                    prop_assert!(p.starts_with("demo.yaml"), "unlocated problem: {p}");
                }
            }
        }
    }
}

#[test]
fn wild_replica_counts_are_refused() {
    check_errors(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  replicas: 2000000000\n  selector: {matchLabels: {a: b}}\n  template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: i}]}}\n",
        &[
            "t.yaml: document 1 (Deployment default/d): spec.replicas: replicas must be between 0 and 100000 in kns (found 2000000000)",
        ],
    );
}
