//! The module graph flows one way, from the vocabulary up:
//!
//! ```text
//! vocab, state → kobj → journal → detect → baseline, fault → experiment, cluster, lease
//!       → timeline → slo → runner → compare → report → diff, gameday → cli, testkit
//! ```
//!
//! A module may import only modules of a lower layer; modules of one layer
//! never import each other, so no circle can form. This test reads every
//! file under `src/` and checks each `crate::` path (in `use` items and
//! inline) against that order, failing with the file, line and import that
//! break it. `just lint` runs it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The layers, lowest first. A module may import any module of a lower layer.
const LAYERS: &[&[&str]] = &[
    &["vocab", "state"],
    &["kobj"],
    &["journal"],
    &["detect"],
    &["baseline", "fault"],
    &["experiment", "cluster", "lease"],
    &["timeline"],
    &["slo"],
    &["runner"],
    &["compare"],
    &["report"],
    &["diff", "gameday"],
    &["cli", "testkit"],
];

/// Files at the crate's root that are not a module of the graph: the
/// library root re-exports from every layer, and the binary's entry point
/// only calls the command line.
const ROOTS: &[&str] = &["lib.rs", "main.rs"];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file under `src/` belongs to (`detect` for
/// `src/detect/endpoints.rs`, `kobj` for `src/kobj.rs`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("a file under src/");
    let first = rel
        .components()
        .next()
        .expect("a path component")
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    first.strip_suffix(".rs").unwrap_or(&first).to_string()
}

/// Removes comments, string literals and char literals, keeping line breaks,
/// so that only code is searched for `crate::` paths.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                if chars[i] == '\n' {
                    out.push('\n');
                }
                i += 1;
            }
            i += 2;
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !ident_before(&out) {
            // A raw string: r"…", r#"…"#, r##"…"##.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                match chars.get(j) {
                    None => break,
                    Some('"') if (1..=hashes).all(|k| chars.get(j + k) == Some(&'#')) => {
                        j += 1 + hashes;
                        break;
                    }
                    Some('\n') => out.push('\n'),
                    _ => {}
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                if chars.get(i) == Some(&'\n') {
                    out.push('\n');
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' && is_char_literal(&chars, i) {
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("' '");
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_before(out: &str) -> bool {
    out.chars()
        .last()
        .is_some_and(|c| c.is_alphanumeric() || c == '_')
}

/// Whether the `'` at `i` opens a char literal (`'a'`, `'\n'`) rather than
/// a lifetime (`'a`, `'static`).
fn is_char_literal(chars: &[char], i: usize) -> bool {
    matches!(
        (chars.get(i + 1), chars.get(i + 2)),
        (Some('\\'), _) | (Some(_), Some('\''))
    )
}

/// Every module named by a `crate::` path in `code`, with its line: plain
/// paths (`crate::detect::Scope`) and groups (`crate::{detect, vocab::Name}`).
fn crate_imports(code: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        if code[..at]
            .chars()
            .last()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$')
        {
            continue; // `$crate::`, `mycrate::`
        }
        let line = code[..at].matches('\n').count() + 1;
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let body = matching_brace(group);
            for item in top_level_items(body) {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.push((line, name));
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.push((line, name));
        }
    }
    found
}

/// The text of a `{…}` group up to its closing brace.
fn matching_brace(group: &str) -> &str {
    let mut depth = 1;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &group[..i];
                }
            }
            _ => {}
        }
    }
    group
}

/// The comma-separated items of a group, nested groups kept whole.
fn top_level_items(body: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in body.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&body[start..]);
    items
}

fn describe_layers() -> String {
    LAYERS
        .iter()
        .map(|l| l.join(", "))
        .collect::<Vec<_>>()
        .join(" → ")
}

#[test]
fn every_crate_import_points_down_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut problems = Vec::new();
    let mut modules = BTreeSet::new();
    for file in &files {
        let rel = file.strip_prefix(&src).expect("under src/");
        if ROOTS.iter().any(|r| rel == Path::new(r)) {
            continue;
        }
        let module = module_of(&src, file);
        modules.insert(module.clone());
        let Some(own) = layer_of(&module) else {
            if !modules.insert(format!("{module} (unplaced)")) {
                continue;
            }
            problems.push(format!(
                "src/{module}: module `{module}` has no place in the layering; add it to LAYERS in tests/layering.rs ({})",
                describe_layers()
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).expect("a readable source file");
        for (line, target) in crate_imports(&code_only(&text)) {
            if target == module || target == "self" || target == "super" {
                continue;
            }
            match layer_of(&target) {
                Some(layer) if layer < own => {}
                Some(_) => problems.push(format!(
                    "src/{}:{line}: `{module}` imports `crate::{target}`, which is not below it ({})",
                    rel.display(),
                    describe_layers()
                )),
                None => problems.push(format!(
                    "src/{}:{line}: `{module}` imports `crate::{target}`, a module with no place in the layering",
                    rel.display()
                )),
            }
        }
    }
    assert!(
        problems.is_empty(),
        "the module graph must flow one way:\n{}",
        problems.join("\n")
    );
    for layer in LAYERS {
        for module in *layer {
            assert!(
                modules.contains(*module),
                "LAYERS names `{module}`, which src/ no longer has"
            );
        }
    }
}

#[test]
fn imports_are_found_in_paths_and_groups_but_not_in_comments_or_strings() {
    let code = code_only(
        r###"
use crate::detect::Scope;
use crate::{journal::Journal, vocab::{Name, SignalKind}};
// use crate::runner::Runner;
/* crate::report */
let s = "crate::cli";
let r = r#"crate::slo"#;
let c = '"'; let f = crate::fault::catalogue();
fn f<'a>(x: &'a str) -> &'a str { $crate::x; x }
"###,
    );
    let found: Vec<String> = crate_imports(&code).into_iter().map(|(_, m)| m).collect();
    assert_eq!(found, ["detect", "journal", "vocab", "fault"]);
}

#[test]
fn a_sideways_or_upward_import_is_refused() {
    assert!(layer_of("baseline") == layer_of("fault"));
    assert!(layer_of("detect") < layer_of("baseline"));
    assert!(layer_of("runner") > layer_of("slo"));
    assert_eq!(layer_of("nowhere"), None);
}
