//! tokenize-hf TOKENIZER.json < texts: one line of ids per text, as the
//! runtime tokenizes (the `tokenizers` crate, special tokens added).
use std::io::{BufRead, Write};

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let path = std::env::args().nth(1).ok_or("usage: tokenize-hf TOKENIZER.json < texts")?;
    let mut tokenizer = tokenizers::Tokenizer::from_file(&path)?;
    // As the runtime tokenizes: no padding (the MiniLM checkpoint's file pads to 128).
    tokenizer.with_padding(None);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for line in std::io::stdin().lock().lines() {
        let encoding = tokenizer.encode(line?.as_str(), true)?;
        writeln!(out, "{:?}", encoding.get_ids())?;
    }
    Ok(())
}
