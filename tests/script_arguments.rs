//! The experiment scripts that run for minutes to hours (qemu counts, whole-split
//! passes) refuse a bad argument at once, before any build or set-up, with a
//! message that names the argument or the file, and exit with status 2 (usage)
//! or 1 (Python's argparse and `sys.exit(message)`).

use e2e_tests::{fixture, repo_root};
use std::process::Command;

/// Runs `program args` from the repository root with `env`; (status, stderr).
fn run(program: &str, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let out = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn bundle() -> String {
    fixture("tiny-bundle").display().to_string()
}

fn texts() -> String {
    fixture("snownlp-mini/test.jsonl").display().to_string()
}

/// Each (environment, arguments) refused with status 2 and a message holding its
/// text, and nothing written to `out`.
fn refuses_each<const N: usize>(script: &str, out: &std::path::Path, cases: [(Vec<(&str, &str)>, Vec<&str>, &str); N]) {
    for (env, args, says) in cases {
        let (code, err) = run(script, &args, &env);
        assert_eq!(code, 2, "{env:?} {args:?}: {err}");
        assert!(err.contains(says), "{env:?} {args:?}: {err}");
    }
    assert!(!out.exists(), "nothing is written");
}

#[test]
fn the_side_by_side_with_onnxruntime_refuses_bad_arguments_before_its_set_up() {
    let out = std::env::temp_dir().join("script-arguments-never-written");
    let script = "targets/arm-vs-onnxruntime.sh";
    let (b, t, o) = (bundle(), texts(), out.display().to_string());
    refuses_each(script, &out, [
        (vec![], vec!["/no/such/bundle", t.as_str(), o.as_str()], "/no/such/bundle: no manifest.json"),
        (vec![], vec![b.as_str(), "/no/such.jsonl", o.as_str()], "/no/such.jsonl: no such file"),
        (vec![], vec![b.as_str(), t.as_str(), o.as_str(), "ten"], "N=ten"),
        (vec![("EVERY", "0")], vec![b.as_str(), t.as_str(), o.as_str()], "EVERY=0"),
        (vec![("EXIT_LAYERS", "1,,2")], vec![b.as_str(), t.as_str(), o.as_str()], "EXIT_LAYERS=1,,2"),
        (vec![("EXIT_LAYERS", "first")], vec![b.as_str(), t.as_str(), o.as_str()], "EXIT_LAYERS=first"),
    ]);
}

#[test]
fn the_compute_modes_experiment_refuses_bad_arguments_before_its_builds() {
    let script = "bench/arm-precisions/arm-compute-modes.sh";
    let out = std::env::temp_dir().join("script-arguments-never-written");
    let (b, t, o) = (bundle(), texts(), out.display().to_string());
    refuses_each(script, &out, [
        (vec![], vec!["/no/such/bundle", t.as_str(), o.as_str()], "/no/such/bundle: no manifest.json"),
        (vec![], vec![b.as_str(), "/no/such.jsonl", o.as_str()], "/no/such.jsonl: no such file"),
        (vec![], vec![b.as_str(), t.as_str(), o.as_str(), "0"], "COUNT_N=0"),
        (vec![], vec![b.as_str(), t.as_str(), o.as_str(), "5", "x"], "EVERY=x"),
        (vec![("MODES", "f32 mixed")], vec![b.as_str(), t.as_str(), o.as_str()], "compute mode \"mixed\""),
        (vec![("NO_ACCURACY", "f8")], vec![b.as_str(), t.as_str(), o.as_str()], "compute mode \"f8\""),
    ]);
}

#[test]
fn the_f16_accuracy_experiment_names_a_missing_bundle_split_or_mode() {
    let script = "bench/arm-precisions/f16_accumulation_accuracy.py";
    let out = std::env::temp_dir().join("script-arguments-never-written");
    let (b, t, o) = (bundle(), texts(), out.display().to_string());
    for (args, says) in [
        (vec![script, "/no/such/bundle", t.as_str(), o.as_str()], "/no/such/bundle: no manifest.json"),
        (vec![script, b.as_str(), "/no/such.jsonl", o.as_str()], "/no/such.jsonl: no such file"),
        (vec![script, b.as_str(), t.as_str(), o.as_str(), "--compute", "mixed"], "invalid choice: 'mixed'"),
    ] {
        let (code, err) = run("python3", &args, &[]);
        assert_ne!(code, 0, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert!(!out.exists(), "nothing is written");
}

#[test]
fn the_teacher_script_refuses_a_bad_fine_tuning_seed_before_it_pretrains() {
    let out = std::env::temp_dir().join("script-arguments-teacher-never-written");
    let o = out.display().to_string();
    refuses_each("scripts/pretrain-teacher.sh", &out, [
        (vec![("FT_SEEDS", "42 4x"), ("OUT", o.as_str())], vec![], "FT_SEEDS: \"4x\" is not a seed"),
        (vec![("FT_SEEDS", " "), ("OUT", o.as_str())], vec![], "FT_SEEDS is empty"),
        (vec![("FT_DIR", "../teacher"), ("OUT", o.as_str())], vec![], "FT_DIR: \"../teacher\" must be a plain directory name"),
    ]);
}

#[test]
fn the_in_domain_and_shards_experiments_refuse_bad_arguments_before_their_set_up() {
    let out = std::env::temp_dir().join("script-arguments-never-written");
    let o = out.display().to_string();
    refuses_each("bench/in-domain/in-domain.sh", &out, [
        (vec![("OUT", o.as_str()), ("KEEP", ""), ("FT_SEEDS", "42 x")], vec![], "FT_SEEDS: \"x\""),
        (vec![("OUT", o.as_str()), ("KEEP", ""), ("ARMS", "reviews news")], vec![], "ARMS: \"news\""),
        (vec![("OUT", o.as_str()), ("KEEP", ""), ("BASE", "/no/such/resume")], vec![], "/no/such/resume/config.json: no such file"),
    ]);
    refuses_each("bench/train-step/pretrain-shards.sh", &out, [
        (vec![("SHARDS", "0")], vec![o.as_str()], "SHARDS=0"),
        (vec![("STEPS", "ten")], vec![o.as_str()], "STEPS=ten"),
    ]);
}
