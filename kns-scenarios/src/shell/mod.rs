//! `kns shell`: a read-eval-print loop on a living emulated cluster, with the commands a
//! learner already knows (`ip`, `ping`, `traceroute`, `curl`, `nslookup`/`dig`, a kubectl
//! subset, `explain`).
//!
//! - `parse`: a line's words → [`parse::Line`];
//! - `session`: the cluster, its object store and the current place; runs one line;
//! - `store`: the objects as the API server keeps them, for `apply` and `delete`;
//! - `tools`: the Linux tools inside one network namespace;
//! - `views`: `kubectl get` tables.
//!
//! On a terminal the loop reads with line editing and history (rustyline). Otherwise it reads
//! standard input line by line, echoes each line after the prompt so the output reads as a
//! transcript, and exits 1 if any command failed. Output and `error:` lines both go to
//! standard output, in order; a here-document (`kubectl apply -f - <<EOF`) is read from the
//! lines that follow.

pub mod parse;
pub mod session;
pub mod store;
pub mod tools;
pub mod views;

use std::io::{self, BufRead, IsTerminal, Write};
use std::path::PathBuf;

use kns_sim::cmd::tokenize;

use crate::cli::{EXIT_OK, EXIT_USER};
pub use session::{Next, Session, ShellError};

/// The prompt.
pub const PROMPT: &str = "kns> ";
/// The prompt of here-document lines on a terminal.
const CONTINUATION: &str = "> ";

/// Options of `kns shell`.
#[derive(Debug, Clone)]
pub struct ShellOptions {
    /// Manifest files or directories (the built-in cluster when empty).
    pub files: Vec<PathBuf>,
    /// Seed of every random choice.
    pub seed: u64,
}

/// Where lines come from.
pub trait LineSource {
    /// The next line without its newline, `None` at the end of input.
    fn next_line(&mut self, prompt: &str) -> io::Result<Option<String>>;
    /// Whether lines should be echoed after the prompt (input that is not a terminal).
    fn echo(&self) -> bool;
}

/// Lines of any reader, echoed.
pub struct Reader<R>(pub R);

impl<R: BufRead> LineSource for Reader<R> {
    fn next_line(&mut self, _prompt: &str) -> io::Result<Option<String>> {
        let mut line = String::new();
        if self.0.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let trimmed = line.strip_suffix('\n').unwrap_or(&line);
        Ok(Some(trimmed.strip_suffix('\r').unwrap_or(trimmed).to_string()))
    }

    fn echo(&self) -> bool {
        true
    }
}

/// A terminal with line editing and history.
struct Terminal(rustyline::DefaultEditor);

impl LineSource for Terminal {
    fn next_line(&mut self, prompt: &str) -> io::Result<Option<String>> {
        use rustyline::error::ReadlineError;
        match self.0.readline(prompt) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = self.0.add_history_entry(line.as_str());
                }
                Ok(Some(line))
            }
            // Ctrl-C abandons the line being typed, as in bash.
            Err(ReadlineError::Interrupted) => Ok(Some(String::new())),
            Err(ReadlineError::Eof) => Ok(None),
            Err(ReadlineError::Io(e)) => Err(e),
            Err(e) => Err(io::Error::other(e)),
        }
    }

    fn echo(&self) -> bool {
        false
    }
}

/// Runs `kns shell` on the process's standard input and output; returns the exit code.
pub fn main(opts: &ShellOptions) -> i32 {
    let (mut session, banner) = match Session::start(&opts.files, opts.seed) {
        Ok(s) => s,
        Err(e) => {
            eprint!("{}", e.render());
            return e.exit_code();
        }
    };
    let mut stdout = io::stdout().lock();
    let _ = stdout.write_all(banner.as_bytes());
    let interactive = io::stdin().is_terminal();
    let result = if interactive {
        match rustyline::DefaultEditor::new() {
            Ok(editor) => run(&mut session, &mut Terminal(editor), &mut stdout),
            Err(e) => Err(io::Error::other(e)),
        }
    } else {
        run(&mut session, &mut Reader(io::stdin().lock()), &mut stdout)
    };
    match result {
        Ok(failures) if failures > 0 && !interactive => EXIT_USER,
        Ok(_) => EXIT_OK,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => EXIT_OK,
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_USER
        }
    }
}

/// Reads and runs lines until the input ends or `exit`; returns how many commands failed.
pub fn run(
    session: &mut Session,
    input: &mut dyn LineSource,
    out: &mut dyn Write,
) -> io::Result<usize> {
    let mut failures = 0;
    while let Some(line) = input.next_line(PROMPT)? {
        if input.echo() {
            if line.trim().is_empty() {
                writeln!(out)?;
            } else {
                writeln!(out, "{PROMPT}{line}")?;
            }
        }
        let (text, next) = match one_line(session, input, out, &line)? {
            Ok(done) => done,
            Err(e) => {
                failures += 1;
                let message = e.to_string();
                for l in message.lines() {
                    writeln!(out, "error: {l}")?;
                }
                (String::new(), Next::Continue)
            }
        };
        out.write_all(text.as_bytes())?;
        out.flush()?;
        if next == Next::Exit {
            break;
        }
    }
    Ok(failures)
}

/// Splits, reads the here-document if the line opens one, parses and runs one line.
fn one_line(
    session: &mut Session,
    input: &mut dyn LineSource,
    out: &mut dyn Write,
    line: &str,
) -> io::Result<Result<(String, Next), ShellError>> {
    let mut words = match tokenize(line) {
        Ok(w) => w,
        Err(e) => return Ok(Err(ShellError::Usage(e.to_string()))),
    };
    let mut heredoc = None;
    if let Some(marker) = words.last().and_then(|w| w.strip_prefix("<<")).map(str::to_string) {
        words.pop();
        let marker = if marker.is_empty() { words.pop().unwrap_or_default() } else { marker };
        let marker = marker.trim_start_matches('-').trim_matches(['\'', '"']).to_string();
        let mut body = String::new();
        let mut closed = false;
        while let Some(l) = input.next_line(CONTINUATION)? {
            if input.echo() {
                writeln!(out, "{l}")?;
            }
            if l.trim() == marker {
                closed = true;
                break;
            }
            body.push_str(&l);
            body.push('\n');
        }
        if !closed {
            return Ok(Err(ShellError::Usage(format!(
                "the here-document ended without its `{marker}` line"
            ))));
        }
        heredoc = Some(body);
    }
    let parsed = match parse::parse(&words) {
        Ok(p) => p,
        Err(e) => return Ok(Err(ShellError::Usage(e.0))),
    };
    Ok(session.run(&parsed, heredoc.as_deref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transcript(script: &str) -> (String, usize) {
        let (mut session, _) = Session::start(&[], 1).expect("the built-in cluster builds");
        let mut out = Vec::new();
        let failures =
            run(&mut session, &mut Reader(script.as_bytes()), &mut out).expect("writes to memory");
        (String::from_utf8(out).expect("utf-8"), failures)
    }

    #[test]
    fn lines_are_echoed_and_failures_counted() {
        let (out, failures) = transcript("# hello\n\nuse\nbogus\nuse client\nuse\nexit\nuse\n");
        assert_eq!(
            out,
            "kns> # hello\n\nkns> use\ncommands run in node node-1\nkns> bogus\n\
             error: unknown command `bogus` (type `help` for the list)\nkns> use client\n\
             commands now run in pod default/client\nkns> use\ncommands run in pod default/client\nkns> exit\n"
        );
        assert_eq!(failures, 1);
    }

    #[test]
    fn a_heredoc_feeds_kubectl_apply() {
        let script = "kubectl apply -f - <<EOF\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n\
                      metadata: {name: deny}\nspec: {podSelector: {}}\nEOF\nkubectl get netpol\n";
        let (out, failures) = transcript(script);
        assert_eq!(failures, 0, "{out}");
        assert!(out.contains("\nEOF\nnetworkpolicy.networking.k8s.io/deny created\n"), "{out}");
        assert!(out.ends_with("NAME   POD-SELECTOR\ndeny   <all>\n"), "{out}");
        let (out, failures) = transcript("kubectl apply -f - <<EOF\nkind: Pod\n");
        assert_eq!(failures, 1);
        assert!(out.ends_with("error: the here-document ended without its `EOF` line\n"), "{out}");
    }
}
