//! The module graph stays acyclic, as `src/lib.rs` promises: data flows one way, scenario →
//! load engine → target → observations → checks and metrics → report. Edges are read from
//! `crate::<module>` paths in each top-level module's files; a cycle between top-level
//! modules fails this test with the cycle spelled out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn rust_files(path: &Path, out: &mut Vec<std::path::PathBuf>) {
    if path.is_dir() {
        for e in std::fs::read_dir(path).unwrap() {
            rust_files(&e.unwrap().path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

/// Top-level module → the top-level modules it names.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules = BTreeMap::new();
    for e in std::fs::read_dir(&src).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        if name == "lib" || name == "main" {
            continue;
        }
        let mut files = Vec::new();
        rust_files(&path, &mut files);
        modules.insert(name, files);
    }
    let names: BTreeSet<String> = modules.keys().cloned().collect();
    let mut edges = BTreeMap::new();
    for (name, files) in &modules {
        let mut to = BTreeSet::new();
        for f in files {
            let text = std::fs::read_to_string(f).unwrap();
            for (i, _) in text.match_indices("crate::") {
                let rest = &text[i + 7..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                let target = &rest[..end];
                if target != name && names.contains(target) {
                    to.insert(target.to_string());
                }
            }
        }
        edges.insert(name.clone(), to);
    }
    edges
}

/// A cycle through `from`, if any (depth-first search).
fn cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut c = path[at..].to_vec();
            c.push(node.to_string());
            return Some(c);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, edges, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        if let Some(c) = visit(node, edges, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn top_level_modules_form_no_cycle() {
    let edges = graph();
    assert!(edges.len() >= 10, "modules found: {edges:?}");
    for (from, to) in &edges {
        eprintln!(
            "{from} -> {}",
            to.iter().cloned().collect::<Vec<_>>().join(" ")
        );
    }
    if let Some(c) = cycle(&edges) {
        panic!("module cycle: {}", c.join(" -> "));
    }
}

#[test]
fn the_cycle_check_finds_a_cycle_when_there_is_one() {
    let mut edges = graph();
    // Add the edge that once existed: the catalogue reading the ledger.
    edges
        .get_mut("checks")
        .unwrap()
        .insert("observe".to_string());
    let c = cycle(&edges).expect("checks -> observe -> checks is a cycle");
    assert!(
        c.contains(&"checks".to_string()) && c.contains(&"observe".to_string()),
        "{c:?}"
    );
}

#[test]
fn the_catalogue_is_a_leaf_and_the_mock_is_reached_only_over_http() {
    let edges = graph();
    let checks = &edges["checks"];
    assert!(
        checks.iter().all(|m| m == "api"),
        "checks imports only the API types: {checks:?}"
    );
    for (from, to) in &edges {
        if from != "run" && from != "scenario" {
            assert!(!to.contains("mock"), "{from} reaches into the mock");
        }
    }
}

#[test]
fn only_the_command_line_prints_or_exits() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let edge = |p: &Path| {
        let rel = p.strip_prefix(&src).unwrap();
        rel.starts_with("commands") || rel == Path::new("main.rs") || rel == Path::new("cli.rs")
    };
    let mut offenders = Vec::new();
    for f in files.iter().filter(|f| !edge(f)) {
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            if [
                "println!",
                "eprintln!",
                "print!(",
                "process::exit",
                "clap::",
            ]
            .iter()
            .any(|m| code.contains(m))
            {
                offenders.push(format!("{}:{}: {code}", f.display(), n + 1));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "the library prints, exits or sees clap:\n{}",
        offenders.join("\n")
    );
}

/// Functions longer than this need a stated reason: a comment containing "long:" in the
/// lines just above the `fn`.
const LONGEST_FN: usize = 120;

/// `(file, name, lines)` of every function in `text` longer than `LONGEST_FN` lines, read
/// by indentation: a `fn` line and the first later line that is its closing brace at the
/// same indent.
fn long_functions(file: &str, text: &str) -> Vec<(String, String, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let rest = ["pub(crate) ", "pub(super) ", "pub "]
            .iter()
            .find_map(|p| trimmed.strip_prefix(p))
            .unwrap_or(trimmed);
        let rest = rest.strip_prefix("async ").unwrap_or(rest);
        let Some(sig) = rest.strip_prefix("fn ") else {
            continue;
        };
        let name: String = sig
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let close = format!("{indent}}}");
        let Some(end) = lines[i + 1..].iter().position(|l| *l == close) else {
            continue;
        };
        let len = end + 2;
        let reason = lines[i.saturating_sub(6)..i]
            .iter()
            .any(|l| l.contains("long:"));
        if len > LONGEST_FN && !reason {
            out.push((file.to_string(), name, len));
        }
    }
    out
}

#[test]
fn functions_are_sized_for_reading() {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut long = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        long.extend(long_functions(&f.display().to_string(), &text));
    }
    assert!(
        long.is_empty(),
        "functions over {LONGEST_FN} lines without a `long:` reason above them: {long:#?}\n  fix: split them into named steps, or say why not in a comment starting `long:`"
    );
}

#[test]
fn the_length_check_finds_a_long_function() {
    let body = "    let x = 1;\n".repeat(LONGEST_FN);
    let text = format!("/// Does a lot.\npub async fn sprawling() {{\n{body}}}\n");
    let found = long_functions("x.rs", &text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].1, "sprawling");
    let excused = format!("// long: one table of cases.\n{text}");
    assert!(long_functions("x.rs", &excused).is_empty());
}

/// The mock's own files (its `http/` folder as one): file → the files it names through
/// `super::NAME` (from a file of `src/mock/`, or `super::super::NAME` from `http/`) and
/// `crate::mock::NAME`.
fn mock_graph() -> BTreeMap<String, BTreeSet<String>> {
    let mock = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/mock");
    let mut files = Vec::new();
    rust_files(&mock, &mut files);
    let node = |f: &Path| -> String {
        let rel = f.strip_prefix(&mock).unwrap();
        match rel.components().count() {
            1 => rel.file_stem().unwrap().to_string_lossy().to_string(),
            _ => rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy()
                .to_string(),
        }
    };
    let names: BTreeSet<String> = files.iter().map(|f| node(f)).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let from = node(f);
        let nested = f.parent() != Some(mock.as_path());
        let text = std::fs::read_to_string(f).unwrap();
        // `super::` from http/mod.rs is the mock; from another http/ file, http itself.
        let prefixes: &[&str] = if nested && !f.ends_with("mod.rs") {
            &["super::super::", "crate::mock::"]
        } else {
            &["super::", "crate::mock::"]
        };
        let to = edges.entry(from.clone()).or_default();
        for prefix in prefixes {
            for (i, _) in text.match_indices(prefix) {
                let rest = &text[i + prefix.len()..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                let target = &rest[..end];
                if target != from && names.contains(target) {
                    to.insert(target.to_string());
                }
            }
        }
    }
    edges
}

#[test]
fn the_mocks_files_form_no_circle_and_stay_readable_in_size() {
    let edges = mock_graph();
    assert!(edges.len() >= 10, "mock files found: {edges:?}");
    if let Some(c) = cycle(&edges) {
        panic!("import circle inside src/mock: {}", c.join(" -> "));
    }
    // The check can fail: the circle that once tied delivery to the HTTP front.
    let mut bent = edges.clone();
    bent.get_mut("delivery").unwrap().insert("http".to_string());
    assert!(cycle(&bent).is_some(), "delivery -> http -> delivery");
    let mock = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/mock");
    let mut files = Vec::new();
    rust_files(&mock, &mut files);
    let long: Vec<(String, usize)> = files
        .iter()
        .map(|f| {
            let n = std::fs::read_to_string(f).unwrap().lines().count();
            (f.display().to_string(), n)
        })
        .filter(|(_, n)| *n > 600)
        .collect();
    assert!(long.is_empty(), "mock files over 600 lines: {long:?}");
}
