//! Every line of the bundled `kns net` example scripts parses.

use kns_sim::cmd::parse_command;

#[test]
fn example_scripts_parse() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/net");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 7, "expected the seven example scripts in {}", dir.display());
    let mut commands = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            match parse_command(line) {
                Ok(Some(_)) => commands += 1,
                Ok(None) => {}
                Err(e) => panic!("{}:{}: {line}: {e}", file.display(), n + 1),
            }
        }
    }
    assert!(commands > 100, "{commands}");
}
