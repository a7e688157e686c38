//! The pretraining corpus: plain text files (one document per line) or JSONL
//! datasets (their `text` field), cut into sentences and packed into segments
//! of at most `max_len` tokens, with the word each token belongs to (for
//! whole-word masking).

use anyhow::{anyhow, bail, Context, Result};
use bundle::dataset::DatasetError;
use jieba_rs::Jieba;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tokenizers::Tokenizer;

/// Marks positions that are never masked: [CLS], [SEP].
pub const NO_WORD: u32 = u32::MAX;

/// One training sequence: `[CLS] tokens… [SEP]`, documents inside it separated by `[SEP]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub ids: Vec<u32>,
    /// For each position, the word it belongs to (a corpus-wide counter), or [`NO_WORD`].
    pub words: Vec<u32>,
}

/// Strips the `/tag` part-of-speech marks of People's Daily 1998
/// (`迈向/v  充满/v  希望/n`) and joins the words back into plain text.
pub fn strip_pos_tags(line: &str) -> String {
    line.split_whitespace()
        .map(|token| token.rsplit_once('/').map_or(token, |(word, _)| word))
        .collect()
}

/// Non-empty lines of a text file, or the texts of a JSONL/TSV dataset.
/// Errors name the file and line (invalid UTF-8) or the file (no text at all).
pub fn read_texts(path: &Path) -> Result<Vec<String>> {
    match bundle::dataset::read_texts(path) {
        Ok(texts) => Ok(texts.into_iter().map(|t| t.text).collect()),
        Err(DatasetError::Empty { .. }) => bail!("{}: empty corpus (no text lines)", path.display()),
        Err(e) => Err(e.into()),
    }
}

/// All texts of several corpus files, in order.
pub fn read_corpora(paths: &[PathBuf]) -> Result<Vec<String>> {
    if paths.is_empty() {
        bail!("give at least one --corpus file");
    }
    let mut all = Vec::new();
    for p in paths {
        all.extend(read_texts(p)?);
    }
    Ok(all)
}

/// Whether a text belongs to the held-out slice: a stable hash of the text,
/// so the slice does not depend on file order.
pub fn is_heldout(text: &str, percent: u32) -> bool {
    let digest = Sha256::digest(text.as_bytes());
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % 100 < percent
}

/// Sentences of a document, each ending at 。！？；!?; (the mark kept).
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if matches!(c, '。' | '！' | '？' | '；' | '!' | '?' | ';') {
            let end = i + c.len_utf8();
            out.push(&text[start..end]);
            start = end;
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out.retain(|s| !s.trim().is_empty());
    out
}

/// Packs texts into segments of at most `max_len` tokens.
pub struct SegmentBuilder<'a> {
    tokenizer: &'a Tokenizer,
    segmenter: Option<&'a Jieba>,
    cls: u32,
    sep: u32,
    capacity: usize,
    next_word: u32,
    current: Vec<(u32, u32)>,
    segments: Vec<Segment>,
}

impl<'a> SegmentBuilder<'a> {
    /// `segmenter`: word boundaries for whole-word masking; without one, every token is its own word.
    pub fn new(tokenizer: &'a Tokenizer, max_len: usize, segmenter: Option<&'a Jieba>) -> Result<Self> {
        if max_len < 8 {
            bail!("--max-len must be at least 8, got {max_len}");
        }
        let id = |t: &str| tokenizer.token_to_id(t).ok_or_else(|| anyhow!("the vocabulary lacks {t}"));
        Ok(Self {
            tokenizer,
            segmenter,
            cls: id("[CLS]")?,
            sep: id("[SEP]")?,
            capacity: max_len - 2,
            next_word: 0,
            current: Vec::new(),
            segments: Vec::new(),
        })
    }

    /// Tokens of one sentence with their word numbers.
    fn tokens(&mut self, sentence: &str) -> Result<Vec<(u32, u32)>> {
        let enc = self.tokenizer.encode(sentence, false).map_err(|e| anyhow!("cannot tokenize {sentence:?}: {e}"))?;
        let base = self.next_word;
        let tokens: Vec<(u32, u32)> = match self.segmenter {
            Some(jieba) => {
                let word_starts: Vec<usize> = jieba.cut(sentence, true).iter().map(|w| w.byte_start).collect();
                enc.get_ids()
                    .iter()
                    .zip(enc.get_offsets())
                    .map(|(&id, &(start, _))| {
                        let word = word_starts.partition_point(|&s| s <= start).saturating_sub(1);
                        (id, base + word as u32)
                    })
                    .collect()
            }
            None => enc.get_ids().iter().enumerate().map(|(i, &id)| (id, base + i as u32)).collect(),
        };
        let used = tokens.iter().map(|&(_, w)| w - base + 1).max().unwrap_or(0);
        self.next_word = base.checked_add(used).context("corpus has more than 4 billion words")?;
        Ok(tokens)
    }

    fn flush(&mut self) {
        if self.current.is_empty() {
            return;
        }
        // A trailing document separator carries nothing.
        while self.current.last().is_some_and(|&(id, _)| id == self.sep) {
            self.current.pop();
        }
        let mut ids = vec![self.cls];
        let mut words = vec![NO_WORD];
        for &(id, w) in &self.current {
            ids.push(id);
            words.push(w);
        }
        ids.push(self.sep);
        words.push(NO_WORD);
        self.segments.push(Segment { ids, words });
        self.current.clear();
    }

    /// Adds one document: its sentences go into the current segment while they
    /// fit; a sentence longer than a segment is cut into segment-sized pieces.
    pub fn add_document(&mut self, text: &str) -> Result<()> {
        for sentence in sentences(text) {
            let tokens = self.tokens(sentence)?;
            if self.current.len() + tokens.len() > self.capacity {
                self.flush();
            }
            for piece in tokens.chunks(self.capacity) {
                if self.current.len() + piece.len() > self.capacity {
                    self.flush();
                }
                self.current.extend_from_slice(piece);
            }
        }
        if !self.current.is_empty() && self.current.len() < self.capacity {
            self.current.push((self.sep, NO_WORD));
        }
        Ok(())
    }

    pub fn finish(mut self) -> Vec<Segment> {
        self.flush();
        self.segments
    }
}

/// Segments of all `texts`.
pub fn build_segments(texts: &[String], tokenizer: &Tokenizer, max_len: usize, segmenter: Option<&Jieba>) -> Result<Vec<Segment>> {
    let mut builder = SegmentBuilder::new(tokenizer, max_len, segmenter)?;
    for t in texts {
        builder.add_document(t)?;
    }
    Ok(builder.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokenizer() -> Tokenizer {
        let texts: Vec<String> = ["我们今天去北京天安门。", "这个手机很好用！电池不错。"].iter().map(|s| s.to_string()).collect();
        crate::tokenize::build_vocab(&texts, 200, 1).unwrap()
    }

    #[test]
    fn strips_pos_tags_of_peoples_daily() {
        assert_eq!(strip_pos_tags("迈向/v  充满/v  希望/n  的/u  新/a  世纪/n  ——/w"), "迈向充满希望的新世纪——");
        assert_eq!(strip_pos_tags("１１０．８亿/m  美元/q"), "１１０．８亿美元");
    }

    #[test]
    fn segments_respect_max_len_and_start_with_cls() {
        let tok = tokenizer();
        let long = "我们今天去北京天安门。".repeat(10);
        let segs = build_segments(&[long, "电池不错。".into()], &tok, 16, None).unwrap();
        assert!(segs.len() >= 7);
        let cls = tok.token_to_id("[CLS]").unwrap();
        let sep = tok.token_to_id("[SEP]").unwrap();
        for s in &segs {
            assert!(s.ids.len() <= 16 && s.ids.len() == s.words.len());
            assert_eq!((s.ids[0], *s.ids.last().unwrap()), (cls, sep));
            assert_eq!((s.words[0], *s.words.last().unwrap()), (NO_WORD, NO_WORD));
        }
    }

    #[test]
    fn whole_words_group_the_characters_of_a_jieba_word() {
        let tok = tokenizer();
        let jieba = Jieba::new();
        let segs = build_segments(&["我们今天去北京天安门。".into()], &tok, 64, Some(&jieba)).unwrap();
        let w = &segs[0].words;
        // 我们 | 今天 | 去 | 北京 | 天安门 | 。 → characters of a word share its number.
        assert_eq!(w[1], w[2], "我们");
        assert_eq!(w[3], w[4], "今天");
        assert_ne!(w[4], w[5]);
        assert_eq!(w[8], w[9], "天安");
        assert_eq!(w[9], w[10], "安门");
        let without = build_segments(&["我们今天去北京天安门。".into()], &tok, 64, None).unwrap();
        assert_ne!(without[0].words[1], without[0].words[2]);
    }

    #[test]
    fn invalid_utf8_names_the_line_and_an_empty_corpus_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.txt");
        std::fs::write(&bad, b"fine\nalso fine\n\xff\xfe broken\n").unwrap();
        let err = format!("{:#}", read_texts(&bad).unwrap_err());
        assert!(err.contains("bad.txt:3") && err.contains("UTF-8"), "{err}");
        let empty = dir.path().join("empty.txt");
        std::fs::write(&empty, "\n  \n").unwrap();
        let err = format!("{:#}", read_texts(&empty).unwrap_err());
        assert!(err.contains("empty.txt") && err.contains("empty corpus"), "{err}");
    }

    #[test]
    fn heldout_slice_is_stable_and_about_the_asked_size() {
        let texts: Vec<String> = (0..2000).map(|i| format!("text {i}")).collect();
        let n = texts.iter().filter(|t| is_heldout(t, 5)).count();
        assert!((60..=140).contains(&n), "{n} of 2000 at 5%");
        assert_eq!(is_heldout("abc", 5), is_heldout("abc", 5));
    }
}
