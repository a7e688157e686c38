//! Imports between a crate's files run one way: no file imports a file that
//! imports it back, directly or around a longer circle.
//!
//! For every workspace member with a `src/` folder, and for each of its crate
//! roots (`src/lib.rs`, `src/main.rs`, `src/bin/*.rs`), this reads the module
//! tree (`mod name;` → `name.rs` or `name/mod.rs`, next to a `lib.rs`/`mod.rs`
//! or in the folder named after the declaring file) and draws the file-level
//! import graph. It fails listing every strongly connected component of more
//! than one file, with the lines that make each edge.
//!
//! The rule, exactly:
//! - An import is a path in code (comments and strings are skipped) that
//!   starts with `crate::`, `super::` or `self::`, or, from a module that has a
//!   child module `x`, with `x::` (Rust 2018 relative paths). It counts whether
//!   it is a `use` (groups `use crate::{a, b::{c, d}}` give one path each) or a
//!   path written inline (`crate::a::f()`). `super` is taken from the module the
//!   line is in, so `use super::*` in a file's inline `mod tests` names the file
//!   itself.
//! - A path names the file of its longest prefix that is a module: an item
//!   (`crate::a::Item`) names the file of `a`, whether `a` defines `Item` or
//!   only re-exports it. So a re-export is an ordinary import of the file that
//!   holds it: `pub use b::X;` in `a.rs` is an edge a.rs → b.rs, and a file that
//!   reaches `X` as `crate::a::X` imports `a.rs`. Re-exports in a higher file
//!   (a crate root's or `mod.rs`'s façade) are fine as long as the lower files
//!   import from the file that defines the item.
//! - `mod name;` declarations are the module tree, not imports; inline modules
//!   belong to the file they are written in; `$crate` (macros) is not followed.
//!
//! Run: `cargo test --release -p e2e-tests --test import_graph`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Semi,
    Star,
    Other(char),
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Rust source as tokens (with their line), without comments, strings or
/// character literals; only what paths, `use`, `mod` and braces need.
fn tokenize(src: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = src.chars().collect();
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    let (mut i, mut line, mut out) = (0, 1, Vec::new());
    // Skips a quoted string whose opening quote is at `i`; returns past the end.
    let skip_string = |mut i: usize, line: &mut usize| {
        i += 1;
        while i < c.len() && c[i] != '"' {
            if c[i] == '\\' {
                i += 1;
            }
            if at(i) == '\n' {
                *line += 1;
            }
            i += 1;
        }
        i + 1
    };
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            loop {
                if i >= c.len() {
                    break;
                } else if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if c[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if ch == '"' {
            i = skip_string(i, &mut line);
        } else if ch == '\'' {
            // A character literal ('x', '\n', '\u{1F600}') or a lifetime/label ('a).
            i += 1;
            if at(i) == '\\' {
                i += 2;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 1) == '\'' {
                i += 2;
            }
        } else if is_ident_start(ch) {
            let start = i;
            while i < c.len() && is_ident_char(c[i]) {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            match (word.as_str(), at(i)) {
                ("r" | "br" | "cr", '"' | '#') => {
                    let mut hashes = 0;
                    while at(i + hashes) == '#' {
                        hashes += 1;
                    }
                    if at(i + hashes) == '"' {
                        // Raw string: ends at a quote followed by as many hashes.
                        i += hashes + 1;
                        while i < c.len() && !(c[i] == '"' && (1..=hashes).all(|k| at(i + k) == '#')) {
                            if c[i] == '\n' {
                                line += 1;
                            }
                            i += 1;
                        }
                        i += hashes + 1;
                    } else if word == "r" && hashes == 1 && is_ident_start(at(i + 1)) {
                        // Raw identifier r#name.
                        let s = i + 1;
                        i += 1;
                        while i < c.len() && is_ident_char(c[i]) {
                            i += 1;
                        }
                        out.push((Tok::Ident(c[s..i].iter().collect()), line));
                    } else {
                        out.push((Tok::Ident(word), line));
                    }
                }
                ("b" | "c", '"') => i = skip_string(i, &mut line),
                ("b", '\'') => {
                    i += 1;
                    if at(i) == '\\' {
                        i += 2;
                        while i < c.len() && c[i] != '\'' {
                            i += 1;
                        }
                        i += 1;
                    } else {
                        i += 2;
                    }
                }
                _ => out.push((Tok::Ident(word), line)),
            }
        } else if ch.is_ascii_digit() {
            while i < c.len() && is_ident_char(c[i]) {
                i += 1;
            }
            out.push((Tok::Other('0'), line));
        } else {
            let tok = match ch {
                ':' if at(i + 1) == ':' => {
                    i += 1;
                    Tok::PathSep
                }
                '{' => Tok::Open,
                '}' => Tok::Close,
                ',' => Tok::Comma,
                ';' => Tok::Semi,
                '*' => Tok::Star,
                other => Tok::Other(other),
            };
            i += 1;
            out.push((tok, line));
        }
    }
    out
}

/// A path found in one file: the module the line is in (from the crate root),
/// the path as written, and its line.
#[derive(Debug, Clone)]
struct FoundPath {
    scope: Vec<String>,
    segments: Vec<String>,
    line: usize,
}

#[derive(Debug, Default)]
struct Scan {
    /// `mod name;` declarations: (the module they are in, relative to the file's own, name).
    out_of_line_mods: Vec<(Vec<String>, String)>,
    /// Inline modules (`mod tests { … }`), relative to the file's own.
    inline_mods: Vec<Vec<String>>,
    paths: Vec<FoundPath>,
}

/// Expands one use tree starting at `toks[*i]` into full paths.
fn use_tree(toks: &[(Tok, usize)], i: &mut usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut path = prefix;
    while *i < toks.len() {
        match &toks[*i].0 {
            Tok::Ident(s) => {
                path.push(s.clone());
                *i += 1;
                if toks.get(*i).map(|t| &t.0) == Some(&Tok::PathSep) {
                    *i += 1;
                    continue;
                }
                if toks.get(*i).map(|t| &t.0) == Some(&Tok::Ident("as".into())) {
                    *i += 2;
                }
                out.push(path);
                return;
            }
            Tok::Open => {
                *i += 1;
                while *i < toks.len() {
                    match toks[*i].0 {
                        Tok::Close => {
                            *i += 1;
                            return;
                        }
                        Tok::Comma => *i += 1,
                        _ => use_tree(toks, i, path.clone(), out),
                    }
                }
                return;
            }
            Tok::Star => {
                *i += 1;
                out.push(path);
                return;
            }
            _ => {
                out.push(path);
                return;
            }
        }
    }
}

/// The paths, `mod` declarations and inline modules of one file, `scope`
/// being the file's module.
fn scan(src: &str, scope: &[String]) -> Scan {
    let toks = tokenize(src);
    let ident = |i: usize| match toks.get(i) {
        Some((Tok::Ident(s), _)) => Some(s.as_str()),
        _ => None,
    };
    let tok = |i: usize| toks.get(i).map(|t| &t.0);
    let mut scan = Scan::default();
    // Open inline modules: (name, brace depth inside them).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let current = |inline: &[(String, usize)]| -> Vec<String> {
        scope.iter().cloned().chain(inline.iter().map(|(n, _)| n.clone())).collect()
    };
    let relative = |inline: &[(String, usize)]| -> Vec<String> { inline.iter().map(|(n, _)| n.clone()).collect() };
    let mut i = 0;
    while i < toks.len() {
        match &toks[i].0 {
            Tok::Open => depth += 1,
            Tok::Close => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
            }
            Tok::Ident(w) if w == "mod" => {
                if let Some(name) = ident(i + 1) {
                    match tok(i + 2) {
                        Some(Tok::Semi) => scan.out_of_line_mods.push((relative(&inline), name.to_string())),
                        Some(Tok::Open) => {
                            let name = name.to_string();
                            i += 2;
                            depth += 1;
                            inline.push((name, depth));
                            scan.inline_mods.push(relative(&inline));
                        }
                        _ => {}
                    }
                }
            }
            Tok::Ident(w) if w == "use" => {
                let line = toks[i].1;
                i += 1;
                if tok(i) == Some(&Tok::PathSep) {
                    // `use ::name`: an external crate.
                    while i < toks.len() && tok(i) != Some(&Tok::Semi) {
                        i += 1;
                    }
                    continue;
                }
                let mut paths = Vec::new();
                use_tree(&toks, &mut i, Vec::new(), &mut paths);
                for segments in paths {
                    scan.paths.push(FoundPath { scope: current(&inline), segments, line });
                }
                continue;
            }
            Tok::Ident(first) if tok(i + 1) == Some(&Tok::PathSep) => {
                let after_sep = i > 0 && tok(i - 1) == Some(&Tok::PathSep);
                let macro_crate = i > 0 && tok(i - 1) == Some(&Tok::Other('$'));
                if !after_sep && !macro_crate {
                    let line = toks[i].1;
                    let mut segments = vec![first.clone()];
                    let mut j = i + 1;
                    while tok(j) == Some(&Tok::PathSep) {
                        match ident(j + 1) {
                            Some(s) => {
                                segments.push(s.to_string());
                                j += 2;
                            }
                            None => break,
                        }
                    }
                    scan.paths.push(FoundPath { scope: current(&inline), segments, line });
                    i = j;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    scan
}

/// One crate's file-level import graph.
#[derive(Debug, Default)]
struct Graph {
    /// Files, as given (relative to the workspace root in the real check).
    files: Vec<PathBuf>,
    /// (from, to) → the lines that make the edge, as `line: path`.
    edges: BTreeMap<(usize, usize), Vec<String>>,
}

/// Reads the module tree under `root` and the imports between its files.
fn crate_graph(root: &Path) -> Graph {
    let mut graph = Graph::default();
    // Module path → file index (inline modules map to their file).
    let mut modules: BTreeMap<Vec<String>, usize> = BTreeMap::new();
    let mut scans: Vec<(Vec<String>, Scan)> = Vec::new();
    // (module path, file)
    let mut queue = vec![(Vec::<String>::new(), root.to_path_buf())];
    while let Some((module, file)) = queue.pop() {
        let src = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let index = graph.files.len();
        graph.files.push(file.clone());
        modules.insert(module.clone(), index);
        let s = scan(&src, &module);
        for inline in &s.inline_mods {
            modules.insert(module.iter().chain(inline).cloned().collect(), index);
        }
        // Where this file's child modules live.
        let owns_dir = matches!(file.file_name().and_then(|n| n.to_str()), Some("mod.rs" | "lib.rs" | "main.rs"))
            || file.parent().and_then(|p| p.file_name()).is_some_and(|n| n == "bin") && module.is_empty();
        let base = if owns_dir { file.parent().unwrap().to_path_buf() } else { file.with_extension("") };
        for (inline, name) in &s.out_of_line_mods {
            let dir = inline.iter().fold(base.clone(), |d, n| d.join(n));
            let flat = dir.join(format!("{name}.rs"));
            let nested = dir.join(name).join("mod.rs");
            let child = if flat.exists() { flat } else if nested.exists() { nested } else { panic!("{}: mod {name}; has no file", file.display()) };
            queue.push((module.iter().chain(inline).chain([name]).cloned().collect(), child));
        }
        scans.push((module, s));
    }
    for (from, (_, s)) in scans.iter().enumerate() {
        for p in &s.paths {
            let mut segs = p.segments.as_slice();
            let mut base: Vec<String> = match segs[0].as_str() {
                "crate" => {
                    segs = &segs[1..];
                    Vec::new()
                }
                "self" => {
                    segs = &segs[1..];
                    p.scope.clone()
                }
                "super" => {
                    let mut b = p.scope.clone();
                    while segs.first().is_some_and(|s| s == "super") {
                        b.pop();
                        segs = &segs[1..];
                    }
                    b
                }
                first => {
                    let mut child = p.scope.clone();
                    child.push(first.to_string());
                    if !modules.contains_key(&child) {
                        continue; // another crate, a primitive, a type or a name a `use` brought in
                    }
                    p.scope.clone()
                }
            };
            let prefix_len = base.len();
            base.extend(segs.iter().filter(|s| *s != "self").cloned());
            let to = (prefix_len..=base.len())
                .rev()
                .find_map(|n| modules.get(&base[..n]))
                .copied()
                .unwrap_or_else(|| panic!("{}:{}: {:?} names no module", graph.files[from].display(), p.line, p.segments));
            if to != from {
                graph.edges.entry((from, to)).or_default().push(format!("{}: {}", p.line, p.segments.join("::")));
            }
        }
    }
    graph
}

/// Strongly connected components with more than one file (Tarjan).
fn circles(graph: &Graph) -> Vec<Vec<usize>> {
    struct State {
        next: Vec<Vec<usize>>,
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        counter: usize,
        found: Vec<Vec<usize>>,
    }
    fn visit(s: &mut State, v: usize) {
        s.index[v] = Some(s.counter);
        s.low[v] = s.counter;
        s.counter += 1;
        s.stack.push(v);
        s.on_stack[v] = true;
        for w in s.next[v].clone() {
            match s.index[w] {
                None => {
                    visit(s, w);
                    s.low[v] = s.low[v].min(s.low[w]);
                }
                Some(iw) if s.on_stack[w] => s.low[v] = s.low[v].min(iw),
                _ => {}
            }
        }
        if Some(s.low[v]) == s.index[v] {
            let mut component = Vec::new();
            loop {
                let w = s.stack.pop().unwrap();
                s.on_stack[w] = false;
                component.push(w);
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let n = graph.files.len();
    let mut next = vec![Vec::new(); n];
    for &(a, b) in graph.edges.keys() {
        next[a].push(b);
    }
    let mut s = State { next, index: vec![None; n], low: vec![0; n], on_stack: vec![false; n], stack: Vec::new(), counter: 0, found: Vec::new() };
    for v in 0..n {
        if s.index[v].is_none() {
            visit(&mut s, v);
        }
    }
    s.found.sort();
    s.found
}

/// Each circle as text: its files, then every edge between them with its lines.
fn describe(graph: &Graph, circle: &[usize], show: &dyn Fn(&Path) -> String) -> String {
    let members: BTreeSet<usize> = circle.iter().copied().collect();
    let mut text = format!("circle: {}\n", circle.iter().map(|&f| show(&graph.files[f])).collect::<Vec<_>>().join(" ↔ "));
    for ((a, b), lines) in &graph.edges {
        if members.contains(a) && members.contains(b) {
            text += &format!("  {} → {}  ({})\n", show(&graph.files[*a]), show(&graph.files[*b]), lines.join("; "));
        }
    }
    text
}

/// The crate roots of every workspace member that has a `src/` folder.
fn workspace_roots(workspace: &Path) -> Vec<PathBuf> {
    let manifest = std::fs::read_to_string(workspace.join("Cargo.toml")).unwrap();
    let members = manifest.split("members").nth(1).and_then(|rest| rest.split(']').next()).expect("workspace members");
    let mut roots = Vec::new();
    for member in members.split(',').map(|m| m.trim().trim_start_matches(['=', ' ', '[']).trim().trim_matches('"')) {
        if member.is_empty() {
            continue;
        }
        let src = workspace.join(member).join("src");
        for name in ["lib.rs", "main.rs"] {
            if src.join(name).exists() {
                roots.push(src.join(name));
            }
        }
        if let Ok(bins) = std::fs::read_dir(src.join("bin")) {
            let mut bins: Vec<PathBuf> = bins.map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "rs")).collect();
            bins.sort();
            roots.extend(bins);
        }
    }
    roots
}

#[test]
fn imports_between_files_run_one_way() {
    let workspace = e2e_tests::repo_root();
    let show = |p: &Path| p.strip_prefix(&workspace).unwrap_or(p).display().to_string();
    let roots = workspace_roots(&workspace);
    for member in ["bundle/src/lib.rs", "trainer/src/lib.rs", "edge-runtime/src/lib.rs", "quantize/src/lib.rs"] {
        assert!(roots.contains(&workspace.join(member)), "{member} not among the crate roots read from Cargo.toml: {roots:?}");
    }
    let mut report = String::new();
    for root in &roots {
        let graph = crate_graph(root);
        if graph.files.len() > 2 {
            // Not vacuous: a crate of several files has imports between them.
            assert!(!graph.edges.is_empty(), "{}: no imports found between its {} files", show(root), graph.files.len());
        }
        for circle in circles(&graph) {
            report += &describe(&graph, &circle, &show);
        }
    }
    assert!(report.is_empty(), "files that import each other (move what both need to the lower file):\n{report}");
}

// The checker's own tests, on small crates written to a temporary folder.

fn write_crate(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

fn named_circles(dir: &Path) -> Vec<Vec<String>> {
    let graph = crate_graph(&dir.join("lib.rs"));
    circles(&graph)
        .into_iter()
        .map(|c| {
            let mut names: Vec<String> = c.iter().map(|&f| graph.files[f].strip_prefix(dir).unwrap().display().to_string()).collect();
            names.sort();
            names
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[test]
fn checker_finds_circles_through_groups_inline_paths_super_and_re_exports() {
    let dir = write_crate(&[
        ("lib.rs", "pub mod a;\npub mod b;\npub mod c;\nmod d;\npub use c::Item;\n"),
        // a → b through a group, b → a through an inline path.
        ("a.rs", "use crate::{c::X, b::{self, Y}};\n"),
        ("b.rs", "fn f() { let _ = crate::a::g(); }\n"),
        // c → lib.rs through the re-export `crate::Item`; lib.rs → c through `pub use`.
        ("c.rs", "pub struct Item;\nfn f(_: crate::Item) {}\n"),
        // d/mod.rs ↔ d/e.rs: a relative child path one way, super the other.
        ("d/mod.rs", "mod e;\nuse e::Thing;\npub struct Opts;\n"),
        ("d/e.rs", "use super::Opts;\npub struct Thing;\n"),
    ]);
    assert_eq!(
        named_circles(dir.path()),
        vec![vec!["a.rs".to_string(), "b.rs".into()], vec!["c.rs".into(), "lib.rs".into()], vec!["d/e.rs".into(), "d/mod.rs".into()]]
    );
}

#[test]
fn checker_ignores_comments_strings_tests_modules_and_other_crates() {
    let dir = write_crate(&[
        ("lib.rs", "pub mod a;\npub mod b;\npub mod bundle;\n"),
        ("a.rs", "use crate::b::B;\n"),
        (
            "b.rs",
            concat!(
                "//! See [`crate::a`].\n",
                "/* crate::a::x /* nested */ crate::a::y */\n",
                "const S: &str = \"crate::a::z\";\n",
                "const R: &str = r#\"crate::a::\"w\"#;\n",
                "const C: char = '{';\n",
                "fn f<'a>(x: &'a str) -> &'a str { x }\n",
                "pub struct B;\n",
                "macro_rules! m { () => { $crate::a::x() } }\n",
                "#[cfg(test)]\nmod tests {\n    use super::*;\n    use bundle::Other;\n    fn t() { let _ = std::mem::size_of::<B>(); }\n}\n",
                "fn after() { let _ = super::b::B; }\n",
            ),
        ),
        // A module named like an external crate: only its own children resolve to it.
        ("bundle.rs", "use bundle::Manifest;\n"),
    ]);
    assert!(named_circles(dir.path()).is_empty());
    let graph = crate_graph(&dir.path().join("lib.rs"));
    let edges: Vec<(String, String)> = graph
        .edges
        .keys()
        .map(|&(a, b)| {
            let name = |f: usize| graph.files[f].strip_prefix(dir.path()).unwrap().display().to_string();
            (name(a), name(b))
        })
        .collect();
    assert_eq!(edges.len(), 1, "{edges:?}");
    assert!(edges.contains(&("a.rs".into(), "b.rs".into())));
}
