//! The CI examples in docs/ci parse, shard the way they say, cache
//! breakfix's cache folder, and run only commands that exist: every
//! `./just RECIPE` is a recipe of the justfile, and every `breakfix …`
//! subcommand and `--flag` is one the binary's own `--help` lists.

use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load(name: &str) -> serde_yaml::Value {
    let text = std::fs::read_to_string(repo().join("docs/ci").join(name)).expect("the example");
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Every shell line under `run:`, `script:` and `before_script:`.
fn commands(value: &serde_yaml::Value, out: &mut Vec<String>) {
    match value {
        serde_yaml::Value::Mapping(map) => {
            for (k, v) in map {
                let key = k.as_str().unwrap_or("");
                if matches!(key, "run" | "script" | "before_script") {
                    match v {
                        serde_yaml::Value::String(s) => {
                            out.extend(s.lines().map(str::to_string));
                        }
                        serde_yaml::Value::Sequence(items) => {
                            out.extend(items.iter().filter_map(|i| i.as_str().map(str::to_string)));
                        }
                        _ => {}
                    }
                } else {
                    commands(v, out);
                }
            }
        }
        serde_yaml::Value::Sequence(items) => items.iter().for_each(|i| commands(i, out)),
        _ => {}
    }
}

fn recipes() -> Vec<String> {
    let justfile = std::fs::read_to_string(repo().join("justfile")).expect("the justfile");
    justfile
        .lines()
        .filter(|l| !l.starts_with([' ', '\t', '#']) && l.contains(':') && !l.contains(":="))
        .filter_map(|l| l.split([':', ' ']).next().map(str::to_string))
        .collect()
}

/// `breakfix SUB [SUB2] --help`.
fn help(words: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_breakfix"))
        .args(words)
        .arg("--help")
        .output()
        .expect("breakfix runs");
    assert!(out.status.success(), "breakfix {words:?} --help failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Checks one command line: its `./just` recipes and `breakfix` words.
fn check(line: &str, recipes: &[String]) -> usize {
    let words: Vec<&str> = line
        .split_whitespace()
        .map(|w| w.trim_matches('"'))
        .collect();
    let mut checked = 0;
    for (i, w) in words.iter().enumerate() {
        if *w == "./just" {
            let recipe = words.get(i + 1).expect("a recipe after ./just");
            assert!(
                recipes.iter().any(|r| r == recipe),
                "`./just {recipe}` is not a recipe: {line}"
            );
            checked += 1;
        }
        if w.ends_with("/breakfix") || *w == "breakfix" {
            let mut sub = vec![*words.get(i + 1).expect("a subcommand")];
            if sub[0] == "report" && words.get(i + 2) == Some(&"merge") {
                sub.push("merge");
            }
            let text = help(&sub);
            for flag in words[i + 1..].iter().filter(|f| f.starts_with("--")) {
                assert!(
                    text.contains(flag),
                    "`breakfix {}` has no {flag}: {line}",
                    sub.join(" ")
                );
            }
            checked += 1;
        }
    }
    checked
}

fn check_all(file: &str, doc: &serde_yaml::Value) -> Vec<String> {
    let mut lines = Vec::new();
    commands(doc, &mut lines);
    let recipes = recipes();
    let checked: usize = lines.iter().map(|l| check(l, &recipes)).sum();
    assert!(checked >= 4, "{file}: only {checked} commands found");
    lines
}

fn has_cache_of_breakfix(text: &str) -> bool {
    text.contains("~/.cache/breakfix") || text.contains("BREAKFIX_CACHE")
}

#[test]
fn the_github_actions_example_shards_with_a_matrix_and_runs_real_commands() {
    let doc = load("github-actions.yml");
    let lines = check_all("github-actions.yml", &doc);
    let shards = doc["jobs"]["suite"]["strategy"]["matrix"]["shard"]
        .as_sequence()
        .expect("a shard matrix");
    let n = shards.len();
    assert!(n > 1);
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("--partition hash:${{{{ matrix.shard }}}}/{n}"))),
        "the suite job must take its shard from the matrix: {lines:#?}"
    );
    assert!(lines.iter().any(|l| l.contains("report merge")));
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" diff ") && l.contains("--base"))
    );
    let text = std::fs::read_to_string(repo().join("docs/ci/github-actions.yml")).unwrap();
    assert!(has_cache_of_breakfix(&text));
    assert!(
        text.contains("fetch-depth: 0"),
        "diff needs the base in the clone"
    );
}

#[test]
fn the_gitlab_example_shards_with_parallel_and_runs_real_commands() {
    let doc = load("gitlab-ci.yml");
    let lines = check_all("gitlab-ci.yml", &doc);
    assert!(doc["suite"]["parallel"].as_u64().is_some_and(|n| n > 1));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("--partition hash:${CI_NODE_INDEX}/${CI_NODE_TOTAL}")),
        "{lines:#?}"
    );
    assert!(lines.iter().any(|l| l.contains("report merge")));
    let cache = &doc[".breakfix"]["cache"]["paths"][0];
    assert_eq!(cache.as_str(), Some(".breakfix-cache/"));
    let text = std::fs::read_to_string(repo().join("docs/ci/gitlab-ci.yml")).unwrap();
    assert!(has_cache_of_breakfix(&text));
}

#[test]
fn a_command_that_does_not_exist_is_caught() {
    let recipes = recipes();
    let bad = std::panic::catch_unwind(|| check("./just no-such-recipe", &recipes));
    assert!(bad.is_err());
    let bad = std::panic::catch_unwind(|| check("breakfix run x --no-such-flag", &recipes));
    assert!(bad.is_err());
    assert_eq!(
        check("breakfix run experiments/ --partition hash:1/2", &recipes),
        1
    );
}
