//! A whole bundle from memory: the tiny fixture with one of its files (or
//! its manifest) replaced by the input. The checksums are recomputed, so the
//! input reaches the ONNX and tokenizer parsers and every load check. A
//! bundle that loads must classify without panicking.
#![no_main]

use bundle::files::BundleFiles;
use bundle::manifest::{sha256_hex, Manifest};
use bundle::ExitPolicy;
use edge_runtime::{Compute, EdgeClassifier};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use std::path::Path;

macro_rules! fixture {
    ($($name:literal),*) => { [$(($name, include_bytes!(concat!("../../tests/fixtures/tiny-bundle/", $name)) as &[u8])),*] };
}

const FILES: [(&str, &[u8]); 8] = fixture!(
    "manifest.json", "embeddings.onnx", "layer_00.onnx", "layer_01.onnx", "exit_01.onnx", "exit_02.onnx", "tokenizer.json", "vocab.txt"
);

fuzz_target!(|data: &[u8]| {
    let Some((&which, input)) = data.split_first() else { return };
    let which = which as usize % FILES.len();
    let mut files: BTreeMap<String, Vec<u8>> = FILES[1..].iter().map(|(n, b)| (n.to_string(), b.to_vec())).collect();
    let manifest_json = if which == 0 {
        input.to_vec()
    } else {
        files.insert(FILES[which].0.to_string(), input.to_vec());
        let mut m: Manifest = serde_json::from_slice(FILES[0].1).expect("the fixture's manifest parses");
        for (name, sum) in m.sha256.iter_mut() {
            *sum = sha256_hex(&files[name]);
        }
        serde_json::to_vec(&m).expect("a manifest serialises")
    };
    let Ok(bundle) = BundleFiles::from_memory(&manifest_json, files, Path::new("fuzz")) else { return };
    let Ok(model) = EdgeClassifier::from_bundle(&bundle, Compute::F32) else { return };
    for policy in [ExitPolicy::Full, model.manifest.default_policy, ExitPolicy::Entropy { speed: 0.5 }] {
        let _ = model.classify("房间很干净，服务也好", policy);
    }
});
