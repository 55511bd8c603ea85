//! Splitting a command line into words, with shell-like quoting and `#` comments.

/// A command line that cannot be split into words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// A quote was opened and never closed.
    #[error("unterminated {0} quote")]
    Unterminated(char),
}

/// Splits `line` into words: whitespace separates, single and double quotes group, a backslash
/// escapes the next character outside single quotes, and an unquoted `#` starts a comment.
pub fn tokenize(line: &str) -> Result<Vec<String>, TokenError> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '#' if !in_word => break,
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' | '"' => {
                in_word = true;
                let quote = c;
                loop {
                    match chars.next() {
                        Some(q) if q == quote => break,
                        Some('\\') if quote == '"' => {
                            if let Some(n) = chars.next() {
                                word.push(n);
                            }
                        }
                        Some(other) => word.push(other),
                        None => return Err(TokenError::Unterminated(quote)),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    word.push(n);
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_quotes_and_comments() {
        assert_eq!(
            tokenize("ip  link add br0 type bridge").unwrap(),
            ["ip", "link", "add", "br0", "type", "bridge"]
        );
        assert_eq!(
            tokenize("echo 'a b' \"c\\\"d\" e\\ f # note").unwrap(),
            ["echo", "a b", "c\"d", "e f"]
        );
        assert_eq!(tokenize("# only a comment").unwrap(), Vec::<String>::new());
        assert_eq!(tokenize("curl http://x/#frag").unwrap(), ["curl", "http://x/#frag"]);
        assert_eq!(tokenize("echo 'open"), Err(TokenError::Unterminated('\'')));
    }
}
