//! The datasets every stage reads, with one reader so that a file the trainer
//! accepts is one the runtime accepts too:
//!
//! - `.tsv`: `label<TAB>text`;
//! - any other file: JSON lines with `text` (or CLUE-style `sentence`) and
//!   `label`, a string or a number;
//! - where only texts are needed ([`read_texts`]): the label may be absent,
//!   and a file that is neither `.jsonl` nor `.tsv` is plain text, one text
//!   per line.
//!
//! Blank lines are skipped, and so is a UTF-8 byte-order mark at the start.
//! Labels are trimmed and may not be empty; a numeric label is normalised, so
//! `1`, `1.0` and `"1"` are one class. Every error names `file:line`, or the
//! file when it holds no example at all.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// One labelled text and the line it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub text: String,
    pub label: String,
    pub line: usize,
}

/// One text and the line it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Text {
    pub text: String,
    pub line: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("cannot read {}: {error}", path.display())]
    Read { path: PathBuf, error: std::io::Error },
    #[error("{}:{line}: {what}", path.display())]
    Line { path: PathBuf, line: usize, what: String },
    #[error("{}: empty dataset (no examples)", path.display())]
    Empty { path: PathBuf },
}

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Tsv,
    Jsonl,
    Plain,
}

/// A parsed line: the text and, where the format has one, the label.
type Row = (String, Option<String>);

/// Labelled examples (every line must carry a label).
pub fn read_dataset(path: &Path) -> Result<Vec<Example>, DatasetError> {
    let format = if has_extension(path, "tsv") { Format::Tsv } else { Format::Jsonl };
    let rows = read_rows(path, format, true)?;
    Ok(rows.into_iter().map(|(line, (text, label))| Example { text, label: label.unwrap_or_default(), line }).collect())
}

/// The texts of a dataset, labelled or not, or the lines of a plain text file.
pub fn read_texts(path: &Path) -> Result<Vec<Text>, DatasetError> {
    let format = match () {
        _ if has_extension(path, "tsv") => Format::Tsv,
        _ if has_extension(path, "jsonl") => Format::Jsonl,
        _ => Format::Plain,
    };
    Ok(read_rows(path, format, false)?.into_iter().map(|(line, (text, _))| Text { text, line }).collect())
}

/// Index of every example's label in `labels` (a model's or a bundle's
/// label set); a label not among them names the example's line.
pub fn label_indices(examples: &[Example], labels: &[String], path: &Path) -> Result<Vec<usize>, DatasetError> {
    examples
        .iter()
        .map(|e| {
            labels.iter().position(|l| *l == e.label).ok_or_else(|| DatasetError::Line {
                path: path.to_path_buf(),
                line: e.line,
                what: format!("label {:?} is not one of the labels {labels:?}", e.label),
            })
        })
        .collect()
}

fn has_extension(path: &Path, ext: &str) -> bool {
    path.extension().is_some_and(|e| e == ext)
}

fn read_rows(path: &Path, format: Format, need_label: bool) -> Result<Vec<(usize, Row)>, DatasetError> {
    let bytes = std::fs::read(path).map_err(|error| DatasetError::Read { path: path.to_path_buf(), error })?;
    let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(&bytes);
    let mut rows = Vec::new();
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = i + 1;
        let bad = |what: String| DatasetError::Line { path: path.to_path_buf(), line, what };
        let raw = std::str::from_utf8(raw).map_err(|e| bad(format!("not UTF-8 ({e})")))?;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if raw.trim().is_empty() {
            continue;
        }
        let row = match format {
            Format::Tsv => parse_tsv(raw),
            Format::Jsonl => parse_jsonl(raw, need_label),
            Format::Plain => Ok((raw.trim().to_string(), None)),
        };
        rows.push((line, row.map_err(|what| bad(format!("malformed line: {what}")))?));
    }
    if rows.is_empty() {
        return Err(DatasetError::Empty { path: path.to_path_buf() });
    }
    Ok(rows)
}

/// A label as every stage compares it: trimmed, and a number written in one
/// way (`1.0` → `1`, `2.50` → `2.5`). Empty labels are refused.
pub fn normalise_label(label: &str) -> Result<String, String> {
    let label = label.trim();
    if label.is_empty() {
        return Err("empty label".into());
    }
    match label.parse::<f64>() {
        Ok(x) if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e15 => Ok(format!("{}", x as i64)),
        Ok(x) if x.is_finite() => Ok(format!("{x}")),
        _ => Ok(label.to_string()),
    }
}

fn parse_tsv(raw: &str) -> Result<Row, String> {
    let (label, text) = raw.split_once('\t').ok_or("expected `label<TAB>text`")?;
    let text = text.trim();
    if text.is_empty() {
        return Err("empty text".into());
    }
    Ok((text.to_string(), Some(normalise_label(label)?)))
}

fn parse_jsonl(raw: &str, need_label: bool) -> Result<Row, String> {
    #[derive(Deserialize)]
    struct Line {
        text: Option<String>,
        sentence: Option<String>,
        label: Option<serde_json::Value>,
    }
    let row: Line = serde_json::from_str(raw).map_err(|e| format!("invalid JSON object: {e}"))?;
    let text = row.text.or(row.sentence).ok_or("missing field `text` (or `sentence`)")?;
    if text.trim().is_empty() {
        return Err("field `text` is empty".into());
    }
    let label = match row.label {
        Some(serde_json::Value::String(s)) => Some(normalise_label(&s).map_err(|e| format!("field `label`: {e}"))?),
        Some(serde_json::Value::Number(n)) => Some(normalise_label(&n.to_string())?),
        None if !need_label => None,
        None => return Err("missing field `label`".into()),
        Some(_) if !need_label => None,
        Some(other) => return Err(format!("field `label` must be a string or number, got {other}")),
    };
    Ok((text, label))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    #[test]
    fn jsonl_clue_and_tsv_are_read_alike() {
        let tmp = tempfile::tempdir().unwrap();
        let j = file(tmp.path(), "d.jsonl", "{\"text\":\"好\",\"label\":\"pos\"}\n\n{\"sentence\":\"差\",\"label\":0}\r\n".as_bytes());
        let e = read_dataset(&j).unwrap();
        assert_eq!(e[0], Example { text: "好".into(), label: "pos".into(), line: 1 });
        assert_eq!(e[1], Example { text: "差".into(), label: "0".into(), line: 3 });
        let t = file(tmp.path(), "d.tsv", "neg\t太差了\n".as_bytes());
        assert_eq!(read_dataset(&t).unwrap()[0], Example { text: "太差了".into(), label: "neg".into(), line: 1 });
    }

    #[test]
    fn every_bad_line_is_named_by_file_and_line() {
        let tmp = tempfile::tempdir().unwrap();
        let cases: [(&str, &[u8], &str); 5] = [
            ("a.jsonl", b"{\"text\": \"ok\", \"label\": 1}\n{\"label\": \"neg\"}\n", "a.jsonl:2: malformed line: missing field `text`"),
            ("b.jsonl", b"{\"text\": \"ok\"}\n", "b.jsonl:1: malformed line: missing field `label`"),
            ("c.jsonl", b"{\"text\": \"ok\", \"label\": [1]}\n", "c.jsonl:1: malformed line: field `label` must be"),
            ("d.tsv", b"pos\tfine\nno tab\n", "d.tsv:2: malformed line: expected `label<TAB>text`"),
            ("e.jsonl", b"\n\xff\n", "e.jsonl:2: not UTF-8"),
        ];
        for (name, content, want) in cases {
            let err = read_dataset(&file(tmp.path(), name, content)).unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
        let err = read_dataset(&file(tmp.path(), "empty.jsonl", b"\n  \n")).unwrap_err().to_string();
        assert!(err.contains("empty.jsonl: empty dataset"), "{err}");
    }

    #[test]
    fn numeric_labels_are_one_class_however_written_and_empty_ones_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let j = file(tmp.path(), "n.jsonl", b"{\"text\": \"a\", \"label\": 1}\n{\"text\": \"b\", \"label\": 1.0}\n{\"text\": \"c\", \"label\": \" 1 \"}\n{\"text\": \"d\", \"label\": 2.50}\n");
        let labels: Vec<String> = read_dataset(&j).unwrap().into_iter().map(|e| e.label).collect();
        assert_eq!(labels, ["1", "1", "1", "2.5"]);
        let t = file(tmp.path(), "n.tsv", b"1.0\tgood\npos\tfine\n");
        assert_eq!(read_dataset(&t).unwrap()[0].label, "1");
        let err = read_dataset(&file(tmp.path(), "e.jsonl", b"{\"text\": \"a\", \"label\": \"pos\"}\n{\"text\": \"b\", \"label\": \" \"}\n")).unwrap_err();
        assert!(err.to_string().contains("e.jsonl:2: malformed line: field `label`: empty label"), "{err}");
        let err = read_dataset(&file(tmp.path(), "e.tsv", b"\tno label\n")).unwrap_err();
        assert!(err.to_string().contains("e.tsv:1: malformed line: empty label"), "{err}");
        assert_eq!(normalise_label("NaN").unwrap(), "NaN", "not a finite number: kept as written");
    }

    #[test]
    fn a_byte_order_mark_is_accepted() {
        let tmp = tempfile::tempdir().unwrap();
        let j = file(tmp.path(), "bom.jsonl", "\u{feff}{\"text\": \"好\", \"label\": \"pos\"}\n".as_bytes());
        assert_eq!(read_dataset(&j).unwrap()[0], Example { text: "好".into(), label: "pos".into(), line: 1 });
        let p = file(tmp.path(), "bom.txt", "\u{feff}第一行\n".as_bytes());
        assert_eq!(read_texts(&p).unwrap()[0].text, "第一行");
    }

    #[test]
    fn texts_need_no_label_and_plain_files_are_one_text_per_line() {
        let tmp = tempfile::tempdir().unwrap();
        let j = file(tmp.path(), "t.jsonl", "{\"text\": \"好\"}\n{\"text\": \"差\", \"label\": null}\n".as_bytes());
        assert_eq!(read_texts(&j).unwrap()[1], Text { text: "差".into(), line: 2 });
        let p = file(tmp.path(), "t.txt", " 第一行 \n\n第三行\n".as_bytes());
        let texts = read_texts(&p).unwrap();
        assert_eq!(texts, [Text { text: "第一行".into(), line: 1 }, Text { text: "第三行".into(), line: 3 }]);
    }

    #[test]
    fn an_unknown_label_names_its_line() {
        let tmp = tempfile::tempdir().unwrap();
        let f = file(tmp.path(), "dev.jsonl", "{\"text\": \"好\", \"label\": \"pos\"}\n{\"text\": \"一般\", \"label\": \"neutral\"}\n".as_bytes());
        let examples = read_dataset(&f).unwrap();
        let labels = ["neg".to_string(), "pos".to_string()];
        let err = label_indices(&examples, &labels, &f).unwrap_err().to_string();
        assert!(err.contains("dev.jsonl:2") && err.contains("\"neutral\""), "{err}");
        assert_eq!(label_indices(&examples[..1], &labels, &f).unwrap(), [1]);
    }
}
