//! The NNEF variant of a bundle: every segment stored as tract's NNEF archive
//! (`*.nnef.tar`) of the typed graph the ONNX load builds, own ops included.
//!
//! Why: a board binary that reads these needs neither tract's ONNX parser nor
//! its inference analyser (tract-onnx, tract-hir), and a load skips parsing
//! the protobuf and typing the graph. `edge-runtime to-nnef` writes the
//! variant from an ONNX bundle with a full build; [`read_graph`] loads it
//! (the archives themselves are written and read in `nnef_graph.rs`).
//!
//! The graph is stored decluttered (tract's typed graph has ops with no NNEF
//! form until then), so a load only optimizes it. Decluttering folds int8
//! matrix weights and their scales into f32 constants, as the ONNX load does
//! in memory: an int8 bundle's variant keeps its int8 embedding table but
//! stores the layers' matrices in f32. The runtime's own ops (and GeluExact,
//! which tract 0.23.9 cannot write) travel as `edge_runtime_*` primitives.

pub use crate::nnef_graph::{framework, read_graph, reader, write_graph, ReadError};
#[cfg(feature = "onnx")]
use crate::error::RuntimeError;
#[cfg(feature = "onnx")]
use crate::runtime::{parse_graph, LoadOptions};

/// Writes the NNEF variant of an ONNX bundle into `out` (replaced whole):
/// each graph read as the runtime reads it with `options` (own ops in or
/// out), stored as `<stem>.nnef.tar`; the tokenizer and other files copied.
#[cfg(feature = "onnx")]
pub fn convert_bundle(bundle: &bundle::BundleFiles, out: &std::path::Path, options: &LoadOptions) -> Result<bundle::Manifest, RuntimeError> {
    use bundle::GraphFormat;
    let mut manifest = bundle.manifest.clone();
    if manifest.graph_format() != GraphFormat::Onnx {
        let path = bundle.path_of(&manifest.embeddings).display().to_string();
        return Err(RuntimeError::Mismatch { path, what: "already an NNEF graph; to-nnef converts ONNX bundles".into() });
    }
    if manifest.precision == bundle::manifest::Precision::F16 {
        // tract folds the f16 weights' casts while decluttering, so the twin would
        // store them in f32: twice the size, for no gain over the f32 bundle's twin.
        let path = bundle.path_of("manifest.json");
        return Err(RuntimeError::Input(format!(
            "{}: precision f16: an f16 bundle has no NNEF twin (its weights would be stored in f32); \
             convert the f32 bundle instead, and `--compute f16` runs that twin in f16 on a board with f16 arithmetic",
            path.display()
        )));
    }
    let graphs: Vec<String> = manifest.graphs().into_iter().map(String::from).collect();
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut renamed = std::collections::BTreeMap::new();
    for file in &graphs {
        let model = parse_graph(bundle, file, &mut Default::default(), options)?;
        let path = bundle.path_of(file).display().to_string();
        let bytes = model.into_decluttered().and_then(|m| write_graph(&m)).map_err(|error| RuntimeError::Graph { path: path.clone(), error })?;
        // What converts must load on a board: read it back with the twins' reader.
        read_graph(&bytes).map_err(|e| {
            let why = match e {
                ReadError::Archive(what) => what,
                ReadError::Graph(error) => format!("{error:#}"),
            };
            RuntimeError::Mismatch { path: path.clone(), what: format!("its NNEF twin does not read back with the board's reader: {why}") }
        })?;
        let name = GraphFormat::Nnef.file_name(file.strip_suffix(".onnx").unwrap_or(file));
        renamed.insert(file.clone(), name.clone());
        files.push((name, bytes));
    }
    let rename = |f: &mut String| *f = renamed[f.as_str()].clone();
    rename(&mut manifest.embeddings);
    manifest.layers.iter_mut().for_each(rename);
    manifest.exits.iter_mut().flatten().for_each(rename);
    for name in bundle.manifest.sha256.keys().filter(|n| !renamed.contains_key(*n)) {
        files.push((name.clone(), bundle.bytes(name).unwrap_or_default().to_vec()));
    }
    let ops = match (options.fuse_layer_norm, options.row_softmax) {
        (true, true) => "fused LayerNorm, row softmax",
        (true, false) => "fused LayerNorm",
        (false, true) => "row softmax",
        (false, false) => "tract's stock ops",
    };
    manifest.provenance.insert("graphs".into(), format!("NNEF archives of tract {}'s typed graphs ({ops}), converted from ONNX by edge-runtime to-nnef", crate::TRACT_VERSION));
    Ok(bundle::manifest::write_bundle(out, manifest, &files)?)
}
