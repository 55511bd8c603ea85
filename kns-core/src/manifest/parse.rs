//! YAML text → documents: multi-document files, `kind: List` items, empty documents skipped.
//!
//! A malformed document is reported with its line, and parsing resumes at the next `---`
//! line after the error, so one typo does not hide the problems of the rest of the file.

use serde::Deserialize;
use yaml_serde::Value;

use super::{Diag, Location};

/// One object-shaped YAML document (or one item of a `kind: List`).
#[derive(Debug)]
pub(super) struct Doc {
    /// File, document and item (object and field still unset).
    pub loc: Location,
    /// The document, a mapping.
    pub value: Value,
}

/// Splits `text` into documents, appending the object-shaped ones to `out`.
pub(super) fn documents(file: &str, text: &str, diag: &mut Diag, out: &mut Vec<Doc>) {
    let mut start = 0usize; // Byte offset of the part still to parse.
    let mut line_offset = 0usize; // Lines before `start`.
    let mut doc_offset = 0usize; // Documents before `start`.
    loop {
        let chunk = &text[start..];
        let mut count = 0;
        let mut failure = None;
        for de in yaml_serde::Deserializer::from_str(chunk) {
            count += 1;
            match Value::deserialize(de) {
                Ok(mut value) => {
                    let loc = Location {
                        file: file.to_string(),
                        document: Some(doc_offset + count),
                        ..Location::default()
                    };
                    // Merge keys (`<<: *defaults`) are resolved, as kubectl does.
                    match value.apply_merge() {
                        Ok(()) => push_document(loc, value, diag, out),
                        Err(e) => diag.error(loc, format!("invalid YAML merge key: {e}")),
                    }
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let Some(error) = failure else { break };
        let loc = Location {
            file: file.into(),
            document: Some(doc_offset + count),
            ..Location::default()
        };
        diag.error(loc, yaml_message(&error, line_offset));
        // Resume at the first document marker at or after the error line.
        let error_line = error.location().map_or(1, |l| l.line()); // 1-based, in `chunk`
        let Some((skip_lines, skip_bytes)) = next_marker(chunk, error_line.saturating_sub(1))
        else {
            break;
        };
        start += skip_bytes;
        line_offset += skip_lines;
        doc_offset += count;
    }
}

/// The error message of a YAML syntax error, with lines counted from the start of the file.
fn yaml_message(error: &yaml_serde::Error, line_offset: usize) -> String {
    let mut text = error.to_string();
    if let Some(l) = error.location() {
        let chunk_pos = format!("line {} column {}", l.line(), l.column());
        let file_pos = format!("line {} column {}", l.line() + line_offset, l.column());
        text = text.replacen(&chunk_pos, &file_pos, 1);
    }
    format!("malformed YAML: {text}")
}

/// The first line at index `from` or later (and after the first line) that is a bare `---`
/// document marker, as (line index, byte offset).
fn next_marker(chunk: &str, from: usize) -> Option<(usize, usize)> {
    let mut offset = 0;
    for (i, line) in chunk.split_inclusive('\n').enumerate() {
        if i >= from.max(1) && is_marker(line) {
            return Some((i, offset));
        }
        offset += line.len();
    }
    None
}

/// Whether `line` is `---` alone (perhaps with a comment).
fn is_marker(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("---") else { return false };
    let rest = rest.trim();
    rest.is_empty() || rest.starts_with('#')
}

/// Adds one parsed document: skips empty ones, expands lists, rejects non-objects.
fn push_document(loc: Location, value: Value, diag: &mut Diag, out: &mut Vec<Doc>) {
    match value {
        Value::Null => {}
        Value::Mapping(_) if is_list(&value) => expand_list(loc, value, diag, out),
        Value::Mapping(_) => out.push(Doc { loc, value }),
        Value::Tagged(tagged) => {
            diag.error(loc, format!("YAML tag `{}` is not supported here", tagged.tag))
        }
        other => diag.error(
            loc,
            format!("expected a Kubernetes object (a mapping), found {}", shape(&other)),
        ),
    }
}

/// Whether a document is a `kind: List` (or a typed list such as `PodList`) with items.
fn is_list(value: &Value) -> bool {
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or_default();
    kind == "List" || (kind.ends_with("List") && value.get("items").is_some())
}

/// The fields a list document may have besides `items`.
const LIST_FIELDS: [&str; 4] = ["apiVersion", "kind", "metadata", "items"];

fn expand_list(loc: Location, value: Value, diag: &mut Diag, out: &mut Vec<Doc>) {
    let Value::Mapping(mut map) = value else { return };
    for key in map.keys() {
        match key.as_str() {
            Some(k) if LIST_FIELDS.contains(&k) => {}
            Some(k) => diag.error(loc.with_field(k), "unknown field of a List"),
            None => diag.error(loc.clone(), "a List has a non-string key"),
        }
    }
    let items = match map.remove("items") {
        None | Some(Value::Null) => return,
        Some(Value::Sequence(items)) => items,
        Some(other) => {
            diag.error(
                loc.with_field("items"),
                format!("expected a list, found {}", shape(&other)),
            );
            return;
        }
    };
    for (i, item) in items.into_iter().enumerate() {
        let item_loc = Location { item: Some(i + 1), ..loc.clone() };
        match item {
            Value::Null => {}
            Value::Mapping(_) => out.push(Doc { loc: item_loc, value: item }),
            other => diag.error(
                item_loc,
                format!("expected a Kubernetes object (a mapping), found {}", shape(&other)),
            ),
        }
    }
}

/// A word for the shape of a YAML value, for messages.
pub(super) fn shape(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(text: &str) -> (Vec<Doc>, Diag) {
        let mut diag = Diag::default();
        let mut out = Vec::new();
        documents("f.yaml", text, &mut diag, &mut out);
        (out, diag)
    }

    fn places(docs: &[Doc]) -> Vec<(Option<usize>, Option<usize>)> {
        docs.iter().map(|d| (d.loc.document, d.loc.item)).collect()
    }

    #[test]
    fn empty_documents_are_skipped_but_counted() {
        let (out, diag) = docs("# header\n---\na: 1\n---\n# nothing\n---\n---\nb: 2\n");
        assert!(diag.errors.is_empty());
        assert_eq!(places(&out), vec![(Some(1), None), (Some(4), None)]);
    }

    #[test]
    fn list_items_count_inside_their_document() {
        let text = "a: 1\n---\napiVersion: v1\nkind: List\nitems:\n- x: 1\n- null\n- y: 2\n";
        let (out, diag) = docs(text);
        assert!(diag.errors.is_empty());
        assert_eq!(places(&out), vec![(Some(1), None), (Some(2), Some(1)), (Some(2), Some(3))]);
    }

    #[test]
    fn parsing_resumes_after_a_malformed_document() {
        let text = "a: 1\n---\nfoo: [\n---\nb: 2\n---\nc: [1\n";
        let (out, diag) = docs(text);
        assert_eq!(places(&out), vec![(Some(1), None), (Some(3), None)]);
        let messages: Vec<String> = diag.errors.iter().map(|e| e.clone().render()).collect();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(messages[0].starts_with("f.yaml: document 2: malformed YAML: "), "{messages:?}");
        assert!(messages[0].contains("line 4 column 1"), "{messages:?}");
        assert!(messages[1].starts_with("f.yaml: document 4: malformed YAML: "), "{messages:?}");
        assert!(messages[1].contains("line 8"), "{messages:?}");
    }

    #[test]
    fn merge_keys_are_resolved() {
        let (out, diag) = docs("base: &b {x: 1}\nitem:\n  <<: *b\n  y: 2\n");
        assert!(diag.errors.is_empty());
        let item = out[0].value.get("item").unwrap();
        assert_eq!(item.get("x").and_then(Value::as_i64), Some(1));
        assert!(item.get("<<").is_none());
    }

    #[test]
    fn scalars_are_not_objects() {
        let (out, diag) = docs("just text\n---\n- 1\n");
        assert!(out.is_empty());
        assert_eq!(diag.errors.len(), 2);
        assert_eq!(
            diag.errors[1].render(),
            "f.yaml: document 2: expected a Kubernetes object (a mapping), found a list"
        );
    }
}
