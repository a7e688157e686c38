//! tokenize-kitoken TOKENIZER.json < texts: the same with kitoken. Its
//! converter leaves out the post-processor, so the [CLS] and [SEP] ids of its
//! BertProcessing or TemplateProcessing are read from tokenizer.json and put
//! around the ids.
use std::io::{BufRead, Write};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: tokenize-kitoken TOKENIZER.json < texts")?;
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    let pp = &json["post_processor"];
    let id = |key: &str, token: &str| {
        (pp[key][1].as_u64().or_else(|| pp["special_tokens"][token]["ids"][0].as_u64()))
            .map(|v| v as u32)
            .ok_or(format!("{path}: no {token} id in its post_processor"))
    };
    let (cls, sep) = (id("cls", "[CLS]")?, id("sep", "[SEP]")?);
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
