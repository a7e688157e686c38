//! tokenize-hf-bert TOKENIZER.json < texts: the `tokenizers` crate typed to
//! BERT's WordPiece pipeline (its own components and deserializers, no
//! wrapper enums), as the runtime loads a bundle's tokenizer.
use std::io::{BufRead, Write};

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let path = std::env::args().nth(1).ok_or("usage: tokenize-hf-bert TOKENIZER.json < texts")?;
    let mut tokenizer = bundle::tokenizer::from_bytes(&std::fs::read(&path)?).map_err(|e| format!("{path}: {e}"))?;
    // As the runtime tokenizes: no padding (the MiniLM checkpoint's file pads to 128).
    tokenizer.with_padding(None);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for line in std::io::stdin().lock().lines() {
        let encoding = tokenizer.encode(line?.as_str(), true)?;
        writeln!(out, "{:?}", encoding.get_ids())?;
    }
    Ok(())
}
