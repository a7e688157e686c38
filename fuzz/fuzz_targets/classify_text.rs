//! Text input to `classify` on the tiny bundle: any bytes (as the CLI reads
//! them, lossily decoded), under any policy. Never a panic, never more tokens
//! than max_seq_len.
#![no_main]

use bundle::ExitPolicy;
use edge_runtime::{Compute, EdgeClassifier};
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::OnceLock;

fn model() -> &'static EdgeClassifier {
    static MODEL: OnceLock<EdgeClassifier> = OnceLock::new();
    MODEL.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-bundle");
        EdgeClassifier::load_with(&dir, Compute::F32).expect("the fixture loads")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&p, text)) = data.split_first() else { return };
    let policy = match p % 4 {
        0 => ExitPolicy::Full,
        1 => ExitPolicy::Entropy { speed: (p / 4) as f32 / 63.0 },
        2 => ExitPolicy::Patience { n: 1 + (p as usize / 4) % 2 },
        _ => ExitPolicy::Layer { k: 1 + (p as usize / 4) % 2 },
    };
    let model = model();
    let text = String::from_utf8_lossy(text);
    if let Ok((ids, _)) = model.tokenize(&text) {
        assert!(ids.len() <= model.manifest.max_seq_len);
    }
    let _ = model.classify_texts(&[&text], policy);
});
