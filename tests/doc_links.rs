//! The documentation's links resolve, and the commands it names exist.
//!
//! - Every relative link in README.md, docs/**/*.md and bench/**/*.md — `[text](target)`,
//!   `![alt](target)` and reference definitions `[id]: target` — names a file or folder of the
//!   repository, relative to the page that links it (a leading `/` means the repository root).
//!   Anchors (`#…`) and queries are dropped, not checked; URLs with a scheme (`https:`, `mailto:`)
//!   are skipped; so are links inside code blocks and inline code.
//! - Every `scripts/…` or `bench/…` path that README.md, docs/*.md, docs/results/*.md and
//!   bench/**/*.md name — a file (`scripts/test.sh`, in a command, in backticks or in prose) or a
//!   folder written with its slash (`bench/pgo-ab/`) — exists: a script that moves leaves no stale
//!   command behind. (The logs under docs/logs/ are records of past runs and may name
//!   paths as they were then; their links are checked, their commands are not.)
//!
//! Reads a few dozen files: no build products, no data. Run:
//! `cargo test --release -p e2e-tests --test doc_links`.

use std::fs;
use std::path::{Component, Path, PathBuf};

/// The Markdown files whose links are checked, sorted.
fn markdown_files(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![root.join("README.md")];
    for dir in ["docs", "bench"] {
        walk(&root.join(dir), &mut files);
    }
    files.sort();
    files
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
}

/// The text with code blocks (fenced, or indented by four spaces after a blank line) and inline
/// code spans blanked out; newlines are kept, so byte offsets keep their line numbers.
fn without_code(text: &str) -> String {
    let mut kept = String::with_capacity(text.len());
    let mut fence: Option<&str> = None;
    let mut prev_blank = true;
    let mut in_indented = false;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let trimmed = body.trim_start();
        let is_code = if let Some(f) = fence {
            if trimmed.starts_with(f) {
                fence = None;
            }
            true
        } else if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fence = Some(if trimmed.starts_with("```") { "```" } else { "~~~" });
            true
        } else {
            let indented = body.starts_with("    ") || body.starts_with('\t');
            in_indented = indented && !trimmed.is_empty() && (prev_blank || in_indented);
            in_indented
        };
        if is_code {
            kept.extend(line.chars().map(|c| if c == '\n' { '\n' } else { ' ' }));
        } else {
            kept.push_str(line);
        }
        prev_blank = body.trim().is_empty();
    }
    blank_inline_code(&kept)
}

/// Blanks inline code: a run of n backticks up to the next run of exactly n.
fn blank_inline_code(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = chars.clone();
    let run_at = |i: usize| chars[i..].iter().take_while(|&&c| c == '`').count();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '`' {
            i += 1;
            continue;
        }
        let n = run_at(i);
        let mut j = i + n;
        let mut close = None;
        while j < chars.len() {
            if chars[j] == '`' {
                let m = run_at(j);
                if m == n {
                    close = Some(j);
                    break;
                }
                j += m;
            } else {
                j += 1;
            }
        }
        match close {
            Some(j) => {
                for c in &mut out[i..j + n] {
                    if *c != '\n' {
                        *c = ' ';
                    }
                }
                i = j + n;
            }
            None => i += n,
        }
    }
    out.into_iter().collect()
}

/// (line number, target) of every link and reference definition in `text` (code already blanked).
fn link_targets(text: &str) -> Vec<(usize, String)> {
    let line_of = |byte: usize| text[..byte].matches('\n').count() + 1;
    let mut found = Vec::new();
    for (at, _) in text.match_indices("](") {
        let rest = &text[at + 2..];
        let rest = rest.trim_start_matches([' ', '\t']);
        let target = if let Some(inner) = rest.strip_prefix('<') {
            inner.split('>').next().unwrap_or("").to_string()
        } else {
            // Up to the closing parenthesis (balanced) or the first blank (a title follows).
            let mut depth = 0usize;
            let mut end = rest.len();
            for (k, c) in rest.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' if depth == 0 => {
                        end = k;
                        break;
                    }
                    ')' => depth -= 1,
                    c if c.is_whitespace() => {
                        end = k;
                        break;
                    }
                    _ => {}
                }
            }
            rest[..end].to_string()
        };
        found.push((line_of(at), target));
    }
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        if line.len() - t.len() <= 3 && t.starts_with('[') && !t.starts_with("[^") {
            if let Some(close) = t.find("]:").filter(|&k| t.find(']') == Some(k)) {
                if let Some(target) = t[close + 2..].split_whitespace().next() {
                    found.push((line_of(offset), target.trim_matches(['<', '>']).to_string()));
                }
            }
        }
        offset += line.len();
    }
    found
}

/// The repository path a link target names, or None when it is not a path to check.
fn resolve(root: &Path, page: &Path, target: &str) -> Option<Result<PathBuf, String>> {
    if target.is_empty() || target.starts_with('#') || target.contains("://") {
        return None;
    }
    if let Some((scheme, _)) = target.split_once(':') {
        if !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-') {
            return None; // mailto:, tel:, data:, ...
        }
    }
    let path = target.split(['#', '?']).next().unwrap_or("").replace("%20", " ");
    if path.is_empty() {
        return None;
    }
    let joined = match path.strip_prefix('/') {
        Some(from_root) => root.join(from_root),
        None => page.parent().unwrap_or(root).join(&path),
    };
    // Normalise `.` and `..` without touching the file system, and stay inside the repository.
    let mut normal = PathBuf::new();
    for part in joined.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                if !normal.pop() {
                    return Some(Err(format!("{target}: above the file system root")));
                }
            }
            other => normal.push(other),
        }
    }
    if !normal.starts_with(root) {
        return Some(Err(format!("{target}: outside the repository")));
    }
    Some(Ok(normal))
}

/// "page:line: target …" for every link of `pages` that does not resolve to an existing path.
fn broken_links(root: &Path, pages: &[PathBuf]) -> Vec<String> {
    let mut broken = Vec::new();
    for page in pages {
        let text = fs::read_to_string(page).unwrap_or_else(|e| panic!("{}: {e}", page.display()));
        let name = page.strip_prefix(root).unwrap_or(page).display().to_string();
        for (line, target) in link_targets(&without_code(&text)) {
            match resolve(root, page, &target) {
                None => {}
                Some(Err(why)) => broken.push(format!("{name}:{line}: {why}")),
                Some(Ok(path)) if !path.exists() => broken.push(format!(
                    "{name}:{line}: {target} → {} does not exist",
                    path.strip_prefix(root).unwrap_or(&path).display()
                )),
                Some(Ok(_)) => {}
            }
        }
    }
    broken
}

/// "page:line: path" for every `scripts/…` or `bench/…` path named in `pages` that does not exist.
fn missing_named_paths(root: &Path, pages: &[PathBuf]) -> Vec<String> {
    let path_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-');
    let mut missing = Vec::new();
    for page in pages {
        let text = fs::read_to_string(page).unwrap_or_else(|e| panic!("{}: {e}", page.display()));
        let name = page.strip_prefix(root).unwrap_or(page).display().to_string();
        for (n, line) in text.lines().enumerate() {
            for prefix in ["scripts/", "bench/"] {
                for (at, _) in line.match_indices(prefix) {
                    let before = line[..at].chars().next_back();
                    if before.is_some_and(|c| !matches!(c, ' ' | '\t' | '`' | '(' | '[' | '"' | '\'' | '|' | '=' | '>')) {
                        continue; // part of a longer path (`$root/scripts/…`, `.venv-bench/…`)
                    }
                    let raw: String = line[at..].chars().take_while(|&c| path_char(c)).collect();
                    let token = raw.trim_end_matches(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
                    // A file (`scripts/test.sh`) or a folder written with its slash (`bench/pgo-ab/`);
                    // a bare word after a slash is prose ("the bench/calibrate plumbing").
                    let file = token.rsplit('/').next().is_some_and(|last| last.contains('.'));
                    if !(file || raw.ends_with('/')) {
                        continue;
                    }
                    if !root.join(token).exists() {
                        missing.push(format!("{name}:{}: {token}", n + 1));
                    }
                }
            }
        }
    }
    missing
}

#[test]
fn every_relative_link_in_the_docs_resolves() {
    let root = e2e_tests::repo_root();
    let pages = markdown_files(&root);
    assert!(pages.len() > 10, "found only {} Markdown files under {}", pages.len(), root.display());
    let broken = broken_links(&root, &pages);
    assert!(broken.is_empty(), "{} broken link(s) in the docs:\n{}", broken.len(), broken.join("\n"));
}

#[test]
fn every_script_the_docs_name_exists() {
    let root = e2e_tests::repo_root();
    let pages: Vec<PathBuf> = markdown_files(&root)
        .into_iter()
        .filter(|p| !p.starts_with(root.join("docs/logs")))
        .collect();
    let missing = missing_named_paths(&root, &pages);
    assert!(missing.is_empty(), "{} named path(s) that do not exist:\n{}", missing.len(), missing.join("\n"));
}

/// The checks themselves: a broken link, one above the repository, and a missing script are
/// reported with their lines; working links, URLs, anchors and links in code are not.
#[test]
fn the_checks_report_what_is_broken_and_only_that() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    fs::create_dir_all(root.join("docs/sub")).unwrap();
    fs::create_dir_all(root.join("scripts")).unwrap();
    fs::write(root.join("scripts/run.sh"), "").unwrap();
    fs::write(root.join("docs/there.md"), "").unwrap();
    let page = root.join("docs/sub/page.md");
    fs::write(
        &page,
        "# Page\n\
         [ok](../there.md#anchor) and [folder](../../scripts/) and [web](https://example.com/x.md)\n\
         [gone](../missing.md) ![img](/docs/there.md) [top](#page) [mail](mailto:a@b.c)\n\
         `[in code](nope.md)` and\n\
         \n\
         \x20   [indented code](nope.md)\n\
         ```\n\
         [fenced](nope.md)\n\
         ```\n\
         [multi\nline](../../../../../../../../../../../../../../../../escape.md)\n\
         [ref]: ./also-missing.md\n\
         Run scripts/run.sh, then `scripts/gone.sh --flag`, not $root/scripts/skip.sh.\n",
    )
    .unwrap();
    let pages = vec![page];
    let broken = broken_links(&root, &pages);
    assert_eq!(broken.len(), 3, "{broken:#?}");
    assert!(broken[0].starts_with("docs/sub/page.md:3: ../missing.md"), "{broken:#?}");
    assert!(broken[1].contains("above the file system root") || broken[1].contains("outside the repository"), "{broken:#?}");
    assert!(broken[2].starts_with("docs/sub/page.md:12: ./also-missing.md"), "{broken:#?}");
    assert_eq!(missing_named_paths(&root, &pages), vec!["docs/sub/page.md:13: scripts/gone.sh".to_string()]);
}
