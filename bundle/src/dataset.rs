//! Labelled texts for `bench` and `calibrate`: JSON lines `{"text": .., "label": ..}`,
//! the format `trainer prepare` writes.

use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Example {
    pub text: String,
    #[serde(default)]
    pub label: String,
}

/// Reads a JSONL file; a bad line is an error naming the file and line.
/// The label may be absent (plain texts, e.g. for `tokenize`).
/// Blank lines are skipped; an empty file is an error.
pub fn read_jsonl(path: &Path) -> anyhow::Result<Vec<Example>> {
    let content = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in content.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let ex: Example = serde_json::from_str(line)
            .map_err(|e| anyhow::anyhow!("{}:{}: expected {{\"text\": .., \"label\": ..}}: {e}", path.display(), i + 1))?;
        out.push(ex);
    }
    anyhow::ensure!(!out.is_empty(), "{}: no examples", path.display());
    Ok(out)
}

/// Index of every example's label in `labels`; an unknown label is an error
/// naming it (the data and the bundle disagree).
pub fn label_indices(examples: &[Example], labels: &[String], path: &Path) -> anyhow::Result<Vec<usize>> {
    examples
        .iter()
        .map(|e| {
            labels.iter().position(|l| *l == e.label).ok_or_else(|| {
                anyhow::anyhow!("{}: label {:?} is not one of the bundle's labels {labels:?}", path.display(), e.label)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_line_is_reported_with_its_number() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("d.jsonl");
        std::fs::write(&f, "{\"text\": \"好\", \"label\": \"pos\"}\n\n{\"label\": \"neg\"}\n").unwrap();
        let err = read_jsonl(&f).unwrap_err().to_string();
        assert!(err.contains("d.jsonl:3:"), "{err}");
        std::fs::write(&f, "{\"text\": \"好\", \"label\": \"pos\"}\n").unwrap();
        let ex = read_jsonl(&f).unwrap();
        let err = label_indices(&ex, &["neg".into(), "positive".into()], &f).unwrap_err().to_string();
        assert!(err.contains("\"pos\""), "{err}");
    }
}
