//! No import cycles between the top-level modules of any crate in the workspace, and no source
//! file over 700 lines outside its `#[cfg(test)]` part.
//!
//! A module's dependencies are the `crate::x` paths its files name (in `use` items and in
//! paths written inline, `crate::{a, b::c}` groups included), outside comments and outside
//! test code (a file's `#[cfg(test)]` part, and files of modules declared under it). The graph of a crate's top-level modules must be acyclic: a cycle
//! is printed as `a -> b -> a` with, for each edge, a file that makes it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The workspace's library crates, relative to the workspace root.
const CRATES: &[&str] = &[
    "rig/src",
    "fake-server/src",
    "firmware-under-test/ota-core/src",
    "firmware-under-test/sim-board/src",
    "tools/fuzz/src",
];

/// Longest source file allowed, counting its lines before `#[cfg(test)]`.
const MAX_LINES: usize = 700;

/// Files that are test code: those of modules declared right after `#[cfg(test)]`
/// (`#[cfg(test)] mod tests;` → `tests.rs`, `tests/mod.rs` and everything under `tests/`).
fn test_only_files(files: &[PathBuf]) -> Vec<PathBuf> {
    let mut test_dirs = Vec::new();
    for f in files {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue;
        };
        // A module file's children live in a directory named after it (`a.rs` → `a/`);
        // `mod.rs`, `lib.rs` and `main.rs` hold their children beside them.
        let stem = f.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let parent = f.parent().unwrap_or(Path::new(""));
        let children = if matches!(stem, "mod" | "lib" | "main") {
            parent.to_path_buf()
        } else {
            parent.join(stem)
        };
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for w in lines.windows(2) {
            if w[0] != "#[cfg(test)]" {
                continue;
            }
            let decl = w[1]
                .trim_start_matches("pub(crate) ")
                .trim_start_matches("pub ");
            if let Some(name) = decl.strip_prefix("mod ").and_then(|r| r.strip_suffix(';')) {
                test_dirs.push(children.join(name));
            }
        }
    }
    files
        .iter()
        .filter(|f| {
            test_dirs
                .iter()
                .any(|d| f.starts_with(d) || d.with_extension("rs") == **f)
        })
        .cloned()
        .collect()
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The file's text before its test module, with comments removed.
fn code_of(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        if line.trim_start() == "#[cfg(test)]" {
            break;
        }
        let code = match line.find("//") {
            // `//` inside a string literal (a URL) is rare in paths; cut at the first one
            // that is not preceded by `:` (as in `http://`).
            Some(i) if !line[..i].ends_with(':') => &line[..i],
            _ => line,
        };
        out.push_str(code);
        out.push('\n');
    }
    out
}

fn lines_outside_tests(text: &str) -> usize {
    text.lines()
        .take_while(|l| l.trim_start() != "#[cfg(test)]")
        .count()
}

/// Top-level module names a piece of code refers to through `crate::`.
fn referenced_modules(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue; // `$crate::` or `foo_crate::`
        }
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a::x, b, c::{d, e}}`: the first segment of each top-level item.
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.extend(first_segment(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 {
                    item.push(c);
                }
            }
            found.extend(first_segment(&item));
        } else {
            found.extend(first_segment(rest));
        }
    }
    found
}

fn first_segment(path: &str) -> Option<String> {
    let name: String = path
        .trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty() && name != "self").then_some(name)
}

/// Edges between top-level modules: (from, to) → a file that makes the edge.
fn module_graph(src: &Path) -> BTreeMap<(String, String), PathBuf> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let tests = test_only_files(&files);
    files.retain(|f| !tests.contains(f));
    let mut edges = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(src).unwrap_or(&f);
        let Some(first) = rel.components().next() else {
            continue;
        };
        let top = first.as_os_str().to_string_lossy();
        let top = top.strip_suffix(".rs").unwrap_or(&top).to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for to in referenced_modules(&code_of(&text)) {
            if to != top {
                edges
                    .entry((top.clone(), to))
                    .or_insert_with(|| rel.to_path_buf());
            }
        }
    }
    edges
}

/// One cycle of the graph, if there is any (depth-first search, deterministic order).
fn find_cycle(edges: &BTreeMap<(String, String), PathBuf>) -> Option<Vec<String>> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, to) in edges.keys() {
        next.entry(from).or_default().push(to);
    }
    fn visit<'a>(
        node: &'a str,
        next: &BTreeMap<&'a str, Vec<&'a str>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|n| *n == node) {
            let mut cycle: Vec<String> = path[i..].iter().map(|s| s.to_string()).collect();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if !done.insert(node) {
            return None;
        }
        path.push(node);
        for n in next.get(node).into_iter().flatten() {
            if let Some(c) = visit(n, next, path, done) {
                return Some(c);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for start in next.keys() {
        if let Some(c) = visit(start, &next, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn no_import_cycles_between_modules() {
    let mut problems = Vec::new();
    for krate in CRATES {
        let edges = module_graph(&root().join(krate));
        if let Some(cycle) = find_cycle(&edges) {
            let because: Vec<String> = cycle
                .windows(2)
                .map(|w| {
                    let file = &edges[&(w[0].clone(), w[1].clone())];
                    format!("    {} -> {} (in {})", w[0], w[1], file.display())
                })
                .collect();
            problems.push(format!(
                "{krate}: {}\n{}",
                cycle.join(" -> "),
                because.join("\n")
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "import cycles:\n{}",
        problems.join("\n")
    );
}

#[test]
fn no_source_file_over_the_limit() {
    let mut long = Vec::new();
    for krate in CRATES {
        let mut files = Vec::new();
        rust_files(&root().join(krate), &mut files);
        let tests = test_only_files(&files);
        for f in files.iter().filter(|f| !tests.contains(f)) {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            let n = lines_outside_tests(&text);
            if n > MAX_LINES {
                let rel = f.strip_prefix(root()).unwrap_or(f);
                long.push(format!("{} ({n} lines)", rel.display()));
            }
        }
    }
    assert!(
        long.is_empty(),
        "over {MAX_LINES} lines outside tests (split by concept):\n{}",
        long.join("\n")
    );
}

#[test]
fn the_checker_sees_groups_inline_paths_and_cycles() {
    let code = code_of(
        "use crate::{a::X, b, c::{d, e}};\nfn f() { crate::g::h(); } // crate::comment\n\
         macro_rules! m { () => { $crate::n } }\n#[cfg(test)]\nuse crate::tested;\n",
    );
    let found: Vec<String> = referenced_modules(&code).into_iter().collect();
    assert_eq!(found, ["a", "b", "c", "g"]);
    let edge = |a: &str, b: &str| ((a.to_string(), b.to_string()), PathBuf::from("f.rs"));
    let acyclic: BTreeMap<_, _> = [edge("a", "b"), edge("b", "c"), edge("a", "c")].into();
    assert_eq!(find_cycle(&acyclic), None);
    let cyclic: BTreeMap<_, _> = [edge("a", "b"), edge("b", "c"), edge("c", "a")].into();
    assert_eq!(
        find_cycle(&cyclic),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}

#[test]
fn files_of_test_modules_are_test_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = |rel: &str| dir.path().join(rel);
    std::fs::create_dir_all(p("a/proof")).expect("dirs");
    std::fs::write(p("lib.rs"), "mod a;\n#[cfg(test)]\nmod helpers;\n").expect("lib");
    std::fs::write(p("a.rs"), "mod b;\n#[cfg(test)]\nmod proof;\n").expect("a");
    for f in ["helpers.rs", "a/b.rs", "a/proof/mod.rs", "a/proof/deep.rs"] {
        std::fs::write(p(f), "").expect("file");
    }
    let mut files = Vec::new();
    rust_files(dir.path(), &mut files);
    let mut tests: Vec<String> = test_only_files(&files)
        .iter()
        .map(|f| {
            f.strip_prefix(dir.path())
                .unwrap_or(f)
                .display()
                .to_string()
        })
        .collect();
    tests.sort();
    assert_eq!(tests, ["a/proof/deep.rs", "a/proof/mod.rs", "helpers.rs"]);
}
