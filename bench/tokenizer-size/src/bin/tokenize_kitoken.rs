//! tokenize-kitoken TOKENIZER.json < texts: the same with kitoken. Its
//! converter leaves out the post-processor, so the BertProcessing's [CLS]
//! and [SEP] ids are read from tokenizer.json and put around the ids.
use std::io::{BufRead, Write};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: tokenize-kitoken TOKENIZER.json < texts")?;
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    let id = |key: &str| json["post_processor"][key][1].as_u64().map(|v| v as u32).ok_or(format!("{path}: no BertProcessing {key}"));
    let (cls, sep) = (id("cls")?, id("sep")?);
    let tokenizer = kitoken::Kitoken::from_tokenizers_file(&path)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for line in std::io::stdin().lock().lines() {
        let mut ids = vec![cls];
        ids.extend(tokenizer.encode(line?.as_str(), true)?);
        ids.push(sep);
        writeln!(out, "{ids:?}")?;
    }
    Ok(())
}
