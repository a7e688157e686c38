//! tokenize-none TOKENIZER.json < texts: the floor both others stand on (the
//! standard library, serde_json reading the file, line I/O), no tokenizer:
//! prints each line's length in characters.
use std::io::{BufRead, Write};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: tokenize-none TOKENIZER.json < texts")?;
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    writeln!(out, "{}", json["model"]["type"])?;
    for line in std::io::stdin().lock().lines() {
        writeln!(out, "{}", line?.chars().count())?;
    }
    Ok(())
}
