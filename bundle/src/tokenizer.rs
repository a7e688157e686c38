//! A bundle's tokenizer: BERT's WordPiece pipeline, as a Hugging Face
//! `tokenizer.json` describes it, loaded with the `tokenizers` crate's own
//! components and deserializers, typed to exactly these components.
//!
//! Why typed: `tokenizers::Tokenizer` deserializes any pipeline (BPE,
//! Unigram, SentencePiece's precompiled normalizer, regex splits, ...), and
//! all of that code is linked into every program that loads one. A bundle
//! only ever carries BERT's: Bert normalization, Bert pre-tokenization,
//! WordPiece, `[CLS]`/`[SEP]` by BertProcessing or TemplateProcessing. Typing
//! the pipeline leaves the rest out of the board binary, and refuses, naming
//! the field, a tokenizer.json that describes anything else.

use serde::{Deserialize, Serialize};
use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{Encoding, PostProcessor, TokenizerImpl};

/// The tokenizer a bundle carries.
pub type BertTokenizer = TokenizerImpl<WordPiece, BertNormalizer, BertPreTokenizer, BertPostProcessor, WordPieceDecoder>;

/// The component types a bundle's tokenizer.json may name, by field.
const ALLOWED: [(&str, &[&str], bool); 5] = [
    ("normalizer", &["BertNormalizer"], false),
    ("pre_tokenizer", &["BertPreTokenizer"], false),
    ("model", &["WordPiece"], false),
    ("post_processor", &["BertProcessing", "TemplateProcessing"], true),
    ("decoder", &["WordPiece"], true),
];

/// How `[CLS]` and `[SEP]` are put around the ids: Hugging Face writes BERT
/// tokenizers with either processor.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub enum BertPostProcessor {
    Bert(BertProcessing),
    Template(TemplateProcessing),
}

impl PostProcessor for BertPostProcessor {
    fn added_tokens(&self, is_pair: bool) -> usize {
        match self {
            Self::Bert(p) => p.added_tokens(is_pair),
            Self::Template(p) => p.added_tokens(is_pair),
        }
    }

    fn process_encodings(&self, encodings: Vec<Encoding>, add_special_tokens: bool) -> tokenizers::Result<Vec<Encoding>> {
        match self {
            Self::Bert(p) => p.process_encodings(encodings, add_special_tokens),
            Self::Template(p) => p.process_encodings(encodings, add_special_tokens),
        }
    }
}

/// A component of tokenizer.json, as far as its type (the rest, the
/// vocabulary among it, is skipped, not built).
#[derive(Deserialize)]
struct Tagged {
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// The components of tokenizer.json, each missing or null as `None`.
#[derive(Deserialize)]
struct Components {
    normalizer: Option<Tagged>,
    pre_tokenizer: Option<Tagged>,
    model: Option<Tagged>,
    post_processor: Option<Tagged>,
    decoder: Option<Tagged>,
}

impl Components {
    /// In the order of `ALLOWED`.
    fn in_order(self) -> [Option<Tagged>; 5] {
        [self.normalizer, self.pre_tokenizer, self.model, self.post_processor, self.decoder]
    }
}

/// The tokenizer described by `bytes` (a tokenizer.json). The error names
/// the field that describes something other than BERT's WordPiece pipeline,
/// or says why the document does not parse.
pub fn from_bytes(bytes: &[u8]) -> Result<BertTokenizer, String> {
    // The whole document is checked as JSON, and each component's "type",
    // before tokenizers' deserializers see it: those do not check a
    // component's tag (RobertaProcessing's fields read as BertProcessing's),
    // and some panic on a syntax error inside a component.
    let doc: Components = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    for ((field, types, optional), component) in ALLOWED.into_iter().zip(doc.in_order()) {
        match component {
            None if optional => {}
            None => return Err(format!("\"{field}\": missing; a bundle's tokenizer needs {}", types[0])),
            Some(Tagged { kind }) => {
                if !kind.as_deref().is_some_and(|t| types.contains(&t)) {
                    let named = kind.map_or("no type".to_string(), |t| format!("type {t}"));
                    return Err(format!("\"{field}\" has {named}; a bundle's tokenizer is BERT's WordPiece ({})", types.join(" or ")));
                }
            }
        }
    }
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = include_str!("../../tests/fixtures/tiny-bundle/tokenizer.json");

    fn edited(field: &str, value: serde_json::Value) -> Vec<u8> {
        let mut doc: serde_json::Value = serde_json::from_str(FIXTURE).unwrap();
        doc[field] = value;
        serde_json::to_vec(&doc).unwrap()
    }

    #[test]
    fn gives_the_general_tokenizers_ids() {
        let typed = from_bytes(FIXTURE.as_bytes()).unwrap();
        let general = tokenizers::Tokenizer::from_bytes(FIXTURE.as_bytes()).unwrap();
        for text in ["很好，非常满意！", "Héllo WORLD 123", "[UNK] [SEP] 差", "", "  \t "] {
            let ids = typed.encode(text, true).unwrap().get_ids().to_vec();
            assert_eq!(ids, general.encode(text, true).unwrap().get_ids(), "{text:?}");
        }
    }

    #[test]
    fn template_processing_is_read_as_hugging_face_writes_bert_tokenizers() {
        let template = serde_json::json!({"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                               "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}});
        let with_template = from_bytes(&edited("post_processor", template)).unwrap();
        let with_bert = from_bytes(FIXTURE.as_bytes()).unwrap();
        let ids = |t: &BertTokenizer| t.encode("很好", true).unwrap().get_ids().to_vec();
        assert_eq!(ids(&with_template), ids(&with_bert));
        assert_eq!(ids(&with_bert).first(), Some(&2));
    }

    #[test]
    fn other_pipelines_are_refused_with_the_field_named() {
        let cases = [
            ("normalizer", serde_json::json!({"type": "Precompiled", "precompiled_charsmap": ""}), "\"normalizer\" has type Precompiled"),
            ("pre_tokenizer", serde_json::json!({"type": "ByteLevel"}), "\"pre_tokenizer\" has type ByteLevel"),
            ("post_processor", serde_json::json!({"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0]}), "\"post_processor\" has type RobertaProcessing"),
            ("decoder", serde_json::json!({"type": "ByteLevel"}), "\"decoder\" has type ByteLevel"),
            ("normalizer", serde_json::Value::Null, "\"normalizer\": missing"),
            ("model", serde_json::json!({"vocab": {}}), "\"model\" has no type"),
        ];
        for (field, value, expected) in cases {
            let err = from_bytes(&edited(field, value)).unwrap_err();
            assert!(err.contains(expected), "{field}: {err}");
        }
        assert!(from_bytes(b"{\"model\": ").is_err());
        assert!(from_bytes(b"[1, 2]").is_err());
    }

    #[test]
    fn a_missing_decoder_or_post_processor_is_allowed() {
        let mut doc: serde_json::Value = serde_json::from_str(FIXTURE).unwrap();
        doc["decoder"] = serde_json::Value::Null;
        doc.as_object_mut().unwrap().remove("post_processor");
        let tokenizer = from_bytes(&serde_json::to_vec(&doc).unwrap()).unwrap();
        assert!(!tokenizer.encode("很好", true).unwrap().get_ids().is_empty());
    }
}
