//! Reading YAML input strictly: one document, text only, bounded size, and
//! every serde error turned into a [`Diagnostic`] at file:line:col.

use std::path::Path;

use serde::de::DeserializeOwned;

use super::diagnostic::Diagnostic;

/// Largest input file accepted; experiments are small, anything bigger is a mistake.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Reads `path` as UTF-8 text, refusing binary, oversized and empty files.
pub fn read_text(path: &Path) -> Result<String, Diagnostic> {
    let meta = std::fs::metadata(path).map_err(|e| {
        Diagnostic::file(path, format!("cannot read file: {e}"))
            .with_help("check the path; breakfix takes experiment files or folders of them")
    })?;
    if meta.is_dir() {
        return Err(Diagnostic::file(path, "is a folder, expected a YAML file"));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(Diagnostic::file(
            path,
            format!(
                "file is {} bytes; the limit is {MAX_FILE_BYTES}",
                meta.len()
            ),
        )
        .with_help("an experiment file is a few dozen lines; is this the right file?"));
    }
    let bytes = std::fs::read(path)
        .map_err(|e| Diagnostic::file(path, format!("cannot read file: {e}")))?;
    if bytes.contains(&0) {
        return Err(Diagnostic::file(
            path,
            "is a binary file (it contains NUL bytes), expected YAML text",
        ));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
        let col = valid.iter().rev().take_while(|b| **b != b'\n').count() + 1;
        let src = String::from_utf8_lossy(e.as_bytes()).into_owned();
        Diagnostic::at(
            path,
            &src,
            line,
            col,
            "invalid UTF-8; YAML files must be UTF-8 text",
        )
    })?;
    if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#') || l.trim() == "---")
    {
        return Err(Diagnostic::file(path, "file is empty").with_help(
            "an experiment starts with `apiVersion: breakfix.dev/v1alpha1` and `kind: Experiment`; see `breakfix schema`",
        ));
    }
    Ok(text)
}

/// Deserializes one YAML document from `src` into `T` with precise errors.
pub fn parse_yaml<T: DeserializeOwned>(path: &Path, src: &str) -> Result<T, Diagnostic> {
    serde_yaml::from_str(src).map_err(|e| yaml_diagnostic(path, src, &e))
}

/// Reads and deserializes `path`.
pub fn load_yaml<T: DeserializeOwned>(path: &Path) -> Result<(T, String), Diagnostic> {
    let src = read_text(path)?;
    let value = parse_yaml(path, &src)?;
    Ok((value, src))
}

fn yaml_diagnostic(path: &Path, src: &str, err: &serde_yaml::Error) -> Diagnostic {
    let message = strip_location(&err.to_string());
    let help = help_for(&message, src, err.location().map(|l| l.line()));
    let diagnostic = match err.location() {
        Some(loc) => {
            let (line, column) = point_at_quoted_value(src, loc.line(), loc.column(), &message);
            Diagnostic::at(path, src, line, column, message)
        }
        None => Diagnostic::file(path, message),
    };
    match help {
        Some(h) => diagnostic.with_help(h),
        None => diagnostic,
    }
}

/// serde_yaml places an error raised by a value's own parser (a duration,
/// a percentage, an expression) at the start of the enclosing mapping. When
/// the message quotes the offending value in backticks and that text occurs
/// at or after the reported line, point at it instead, and at the column
/// within it when the message gives one.
fn point_at_quoted_value(src: &str, line: usize, column: usize, message: &str) -> (usize, usize) {
    // A missing field is, by definition, not in the text.
    if message.contains("missing field") {
        return (line, column);
    }
    let quoted = message.split('`').nth(1).filter(|q| q.trim().len() >= 2);
    let Some(quoted) = quoted else {
        return (line, column);
    };
    // A parser that knows the column within its value says so (see
    // `diagnostic::within_value`); point there rather than at the value's start.
    let within = super::diagnostic::column_within(message).map_or(0, |c| c - 1);
    src.lines()
        .enumerate()
        .skip(line.saturating_sub(1))
        .take(50)
        .find_map(|(i, text)| {
            text.find(quoted)
                .map(|byte| (i + 1, text[..byte].chars().count() + 1 + within))
        })
        .unwrap_or((line, column))
}

/// serde_yaml appends " at line L column C"; the diagnostic shows that itself.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(idx) if message[idx..].contains(" column ") => message[..idx].to_string(),
        _ => message.to_string(),
    }
}

fn help_for(message: &str, src: &str, line: Option<usize>) -> Option<String> {
    let line_text = line
        .and_then(|l| src.lines().nth(l.saturating_sub(1)))
        .unwrap_or("");
    if line_text.contains('\t')
        || (message.contains("cannot start any token") && src.contains('\t'))
    {
        return Some("YAML does not allow tabs for indentation; indent with spaces".into());
    }
    if message.contains("unknown field `expr`") {
        return Some("conditions are CEL now, under `expression:`, as Kubernetes writes them: `expression: object.status.readyReplicas >= 1` (docs/slos.md has the translation)".into());
    }
    if message.contains("unknown field") {
        return Some("check the spelling against `breakfix schema`; unknown fields are refused so typos cannot silently disable a check".into());
    }
    if message.contains("duplicate") {
        return Some(
            "each key may appear once in a mapping; remove or merge the repeated one".into(),
        );
    }
    if message.contains("more than one document") {
        return Some("put one experiment per file".into());
    }
    if message.contains("recursion limit") {
        return Some("the document nests too deeply; experiments need only a few levels".into());
    }
    if message.contains("repetition limit") || message.contains("aliases") {
        return Some(
            "the document expands YAML aliases too many times; write the values out".into(),
        );
    }
    if message.contains("missing field") {
        return Some("add the field; `breakfix schema` lists the required ones".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const DOC: &str = "slo:\n  availability:\n    canary: {selector: app=c}\n    atLeast: 95\n  conditions:\n    - name: a\n      expression: object.a >== 2\n";

    #[rstest]
    #[case(2, 5, "`95` is a bare number", (4, 14))]
    #[case(6, 7, "`object.a >== 2`, column 12: CEL: token recognition error", (7, 30))]
    #[case(2, 5, "missing field `canary`", (2, 5))]
    #[case(2, 5, "no quote here", (2, 5))]
    fn points_at_the_quoted_value(
        #[case] line: usize,
        #[case] column: usize,
        #[case] message: &str,
        #[case] expected: (usize, usize),
    ) {
        assert_eq!(point_at_quoted_value(DOC, line, column, message), expected);
    }
}
