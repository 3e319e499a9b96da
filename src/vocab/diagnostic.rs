//! Errors about input files, pointing at file:line:col with a fix.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in one input file, rendered like a compiler diagnostic.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// The file at fault.
    pub file: PathBuf,
    /// 1-based line, when the problem has a position.
    pub line: Option<usize>,
    /// 1-based column, when the problem has a position.
    pub column: Option<usize>,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when there is more to say than the message.
    pub help: Option<String>,
    /// The offending source line, for the snippet.
    #[serde(skip)]
    pub source_line: Option<String>,
}

impl Diagnostic {
    /// A diagnostic about a whole file (no position).
    pub fn file(file: &Path, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            line: None,
            column: None,
            message: message.into(),
            help: None,
            source_line: None,
        }
    }

    /// A diagnostic at a 1-based position; `src` supplies the snippet.
    pub fn at(
        file: &Path,
        src: &str,
        line: usize,
        column: usize,
        message: impl Into<String>,
    ) -> Self {
        Self {
            line: Some(line),
            column: Some(column),
            source_line: src.lines().nth(line.saturating_sub(1)).map(str::to_string),
            ..Self::file(file, message)
        }
    }

    /// Adds a help line.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// `file:line:col` (or just `file`), the way editors and CI annotate.
    pub fn location(&self) -> String {
        match (self.line, self.column) {
            (Some(l), Some(c)) => format!("{}:{l}:{c}", self.file.display()),
            _ => self.file.display().to_string(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", self.message)?;
        write!(f, "  --> {}", self.location())?;
        if let (Some(line), Some(col), Some(src)) = (self.line, self.column, &self.source_line) {
            let gutter = line.to_string().len();
            let (shown, col) = snippet(src, col);
            write!(
                f,
                "\n{:gutter$} |\n{line} | {shown}\n{:gutter$} | {:>col$}",
                "", "", "^"
            )?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n  = help: {help}")?;
        }
        Ok(())
    }
}

/// At most this many characters of a source line are shown.
const SNIPPET_WIDTH: usize = 100;

/// The part of `line` to show around 1-based `col` (tabs made visible), and
/// the column within that part.
fn snippet(line: &str, col: usize) -> (String, usize) {
    let chars: Vec<char> = line
        .chars()
        .map(|c| if c == '\t' { '→' } else { c })
        .collect();
    let start = col
        .saturating_sub(SNIPPET_WIDTH / 2)
        .min(chars.len().saturating_sub(SNIPPET_WIDTH));
    let start = if chars.len() <= SNIPPET_WIDTH {
        0
    } else {
        start
    };
    let end = (start + SNIPPET_WIDTH).min(chars.len());
    let mut shown: String = chars[start..end].iter().collect();
    if end < chars.len() {
        shown.push('…');
    }
    if start > 0 {
        shown.insert(0, '…');
        return (shown, col - start + 1);
    }
    (shown, col)
}

/// The wording of an error raised by a value's own parser that knows where
/// inside the value the problem is (a CEL expression, say): the value's line
/// that holds the problem in backticks, then the 1-based column in it:
/// `` `LINE`, column N: message ``. When a file is read, the loader finds
/// LINE in the file and points at column N of it ([`column_within`]).
pub fn within_value(line: &str, column: usize, message: &str) -> String {
    format!("`{line}`, column {column}: {message}")
}

/// The column [`within_value`] wrote into `message`, if it wrote one.
pub fn column_within(message: &str) -> Option<usize> {
    let mut parts = message.splitn(3, '`');
    let (_, _, rest) = (parts.next()?, parts.next()?, parts.next()?);
    let digits: String = rest
        .strip_prefix(", column ")?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok().filter(|c| *c >= 1)
}

/// Finds the 1-based (line, column) of the key at `path` (e.g.
/// `["spec", "baseline"]`) in block-style YAML, for errors found after
/// parsing. Flow-style mappings and anchors are not followed; `None` then.
pub fn locate_key(src: &str, path: &[&str]) -> Option<(usize, usize)> {
    let mut parent_indent: Option<usize> = None;
    let mut found = None;
    let mut lines = src.lines().enumerate();
    for key in path {
        found = None;
        for (idx, line) in lines.by_ref() {
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let indent = line.len() - trimmed.len();
            if let Some(p) = parent_indent
                && indent <= p
            {
                return None;
            }
            let bare = trimmed.trim_start_matches("- ");
            let indent = indent + (trimmed.len() - bare.len());
            if let Some(rest) = bare.strip_prefix(key)
                && rest.trim_start().starts_with(':')
            {
                found = Some((idx + 1, indent + 1));
                parent_indent = Some(indent);
                break;
            }
        }
        found?;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "apiVersion: x\nmetadata:\n  name: a\nspec:\n  # comment\n  baseline: ../b\n  slo:\n    detectWithin: 5s\n";

    #[test]
    fn locates_nested_keys() {
        assert_eq!(locate_key(DOC, &["spec", "baseline"]), Some((6, 3)));
        assert_eq!(
            locate_key(DOC, &["spec", "slo", "detectWithin"]),
            Some((8, 5))
        );
        assert_eq!(locate_key(DOC, &["metadata", "name"]), Some((3, 3)));
    }

    #[test]
    fn does_not_find_keys_outside_their_parent() {
        assert_eq!(locate_key(DOC, &["metadata", "baseline"]), None);
        assert_eq!(locate_key(DOC, &["status"]), None);
    }

    #[test]
    fn a_column_within_a_value_reads_back() {
        let m = within_value("object.x >== 2", 11, "CEL: bad token");
        assert_eq!(m, "`object.x >== 2`, column 11: CEL: bad token");
        assert_eq!(column_within(&m), Some(11));
        assert_eq!(column_within("`95` is a bare number"), None);
        assert_eq!(column_within("no quote"), None);
    }

    #[test]
    fn renders_a_snippet_with_a_caret() {
        let d = Diagnostic::at(Path::new("x.yaml"), DOC, 6, 3, "bad baseline").with_help("fix it");
        let text = d.to_string();
        assert!(
            text.starts_with("error: bad baseline\n  --> x.yaml:6:3\n"),
            "{text}"
        );
        assert!(text.contains("6 |   baseline: ../b\n  |   ^"), "{text}");
        assert!(text.ends_with("= help: fix it"), "{text}");
    }
}
