//! WordPiece tokenization with the `tokenizers` crate: loading a Hugging Face
//! `tokenizer.json` (or a bare `vocab.txt`), and building a vocabulary from the
//! training split for models trained from scratch.

use anyhow::{anyhow, bail, Context, Result};
use std::path::Path;
use tokenizers::models::wordpiece::{WordPiece, WordPieceTrainer};
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::{AddedToken, Tokenizer, TruncationParams};

pub const SPECIAL_TOKENS: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

/// A BERT tokenizer pipeline around a WordPiece model (as `BertTokenizerFast` builds it).
fn bert_pipeline(wordpiece: WordPiece, lowercase: bool) -> Tokenizer {
    let mut tok = Tokenizer::new(wordpiece);
    tok.with_normalizer(Some(BertNormalizer::new(true, true, Some(lowercase), lowercase)));
    tok.with_pre_tokenizer(Some(BertPreTokenizer));
    tok.with_decoder(Some(WordPieceDecoder::default()));
    tok
}

fn with_bert_post_processor(tok: &mut Tokenizer) -> Result<()> {
    let id = |t: &str| tok.token_to_id(t).ok_or_else(|| anyhow!("vocabulary lacks the special token {t}"));
    let processing = BertProcessing::new(("[SEP]".into(), id("[SEP]")?), ("[CLS]".into(), id("[CLS]")?));
    tok.with_post_processor(Some(processing));
    Ok(())
}

/// Loads `dir/tokenizer.json`, or builds an uncased BERT tokenizer from
/// `dir/vocab.txt` when only that exists. Truncation and padding are switched
/// off: callers decide the length (see [`set_max_len`]).
pub fn load_tokenizer(dir: &Path) -> Result<Tokenizer> {
    let json = dir.join("tokenizer.json");
    let vocab = dir.join("vocab.txt");
    let mut tok = if json.exists() {
        Tokenizer::from_file(&json).map_err(|e| anyhow!("{}: cannot load tokenizer: {e}", json.display()))?
    } else if vocab.exists() {
        let wp = WordPiece::from_file(&vocab.to_string_lossy())
            .unk_token("[UNK]".into())
            .build()
            .map_err(|e| anyhow!("{}: cannot load vocabulary: {e}", vocab.display()))?;
        let mut tok = bert_pipeline(wp, true);
        with_bert_post_processor(&mut tok).with_context(|| format!("{}", vocab.display()))?;
        tok
    } else {
        bail!("{}: no tokenizer.json or vocab.txt", dir.display());
    };
    tok.with_padding(None);
    tok.with_truncation(None).map_err(|e| anyhow!("{e}"))?;
    Ok(tok)
}

/// Loads a tokenizer from a directory, a `tokenizer.json` or a `vocab.txt`.
pub fn load_tokenizer_path(path: &Path) -> Result<Tokenizer> {
    if path.is_dir() {
        return load_tokenizer(path);
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    match path.file_name().and_then(|n| n.to_str()) {
        Some("tokenizer.json") | Some("vocab.txt") if path.exists() => load_tokenizer(dir),
        _ if !path.exists() => bail!("{}: vocabulary file not found", path.display()),
        _ => bail!("{}: expected a directory, tokenizer.json or vocab.txt", path.display()),
    }
}

/// Truncates encodings to `max_len` tokens, special tokens included.
pub fn set_max_len(tok: &mut Tokenizer, max_len: usize) -> Result<()> {
    let params = TruncationParams { max_length: max_len, ..Default::default() };
    tok.with_truncation(Some(params)).map_err(|e| anyhow!("{e}"))?;
    Ok(())
}

/// Writes `vocab.txt` (one token per line, in id order) for Hugging Face tools.
pub fn write_vocab_txt(tok: &Tokenizer, path: &Path) -> Result<()> {
    let mut vocab: Vec<(String, u32)> = tok.get_vocab(false).into_iter().collect();
    vocab.sort_by_key(|(_, id)| *id);
    for (expected, (token, id)) in vocab.iter().enumerate() {
        if *id as usize != expected {
            bail!("vocabulary ids are not contiguous: token {token:?} has id {id}, expected {expected}");
        }
    }
    let text: String = vocab.into_iter().map(|(t, _)| t + "\n").collect();
    Ok(bundle::atomic::write(path, text.as_bytes())?)
}

/// Saves `tokenizer.json` and `vocab.txt` into `dir`.
pub fn save_tokenizer(tok: &Tokenizer, dir: &Path) -> Result<()> {
    let json = dir.join("tokenizer.json");
    bundle::atomic::write_with(&json, |tmp| {
        tok.save(tmp, true).map_err(|e| anyhow!("cannot write {}: {e}", json.display()))
    })?;
    write_vocab_txt(tok, &dir.join("vocab.txt"))
}

/// Builds a WordPiece vocabulary from training texts. BERT's basic tokenizer
/// splits every CJK character into its own word, so Chinese ends up one
/// character per token while Latin words get sub-word pieces.
pub fn build_vocab(texts: &[String], vocab_size: usize, min_frequency: u64) -> Result<Tokenizer> {
    let mut tok = bert_pipeline(WordPiece::default(), true);
    let trainer = WordPieceTrainer::builder()
        .vocab_size(vocab_size)
        .min_frequency(min_frequency)
        .show_progress(false)
        .special_tokens(SPECIAL_TOKENS.iter().map(|t| AddedToken::from(*t, true)).collect())
        .build();
    let mut trainer = tokenizers::models::TrainerWrapper::from(trainer);
    tok.train(&mut trainer, texts.iter().cloned()).map_err(|e| anyhow!("vocabulary training failed: {e}"))?;
    with_bert_post_processor(&mut tok)?;
    Ok(tok)
}

/// Token ids of one text (with [CLS] and [SEP]). Where the tokenizer
/// truncates, the text is cut first (as the edge runtime does), so a
/// megabyte line costs no more than a short one.
pub fn encode_ids(tok: &Tokenizer, text: &str) -> Result<Vec<u32>> {
    let text = match tok.get_truncation() {
        Some(t) => bundle::text::cut_for_tokenizer(text, t.max_length).0,
        None => text,
    };
    let enc = tok.encode(text, true).map_err(|e| {
        let start: String = text.chars().take(40).collect();
        anyhow!("cannot tokenize the text starting {start:?}: {e}")
    })?;
    Ok(enc.get_ids().to_vec())
}

pub fn vocab_size(tok: &Tokenizer) -> usize {
    tok.get_vocab_size(true)
}
