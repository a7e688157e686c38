//! The compression table's script as an orchestrator, with a stand-in trainer
//! that records its calls and answers `eval` with a report: every (seed, row)
//! run is trained exactly once however many workers share the runs, each run
//! is kept in KEEP as it finishes, and a rerun skips what KEEP holds.

use e2e_tests::{fixture, repo_root};
use std::{fs, path::Path, process::Command};

const STAND_IN: &str = r#"#!/bin/sh
echo "$*" >> "$CALLS"
prev=
for a in "$@"; do if [ "$prev" = --out ]; then mkdir -p "$a"; fi; prev=$a; done
if [ "$1" = eval ]; then echo '{"n":3,"accuracy":0.5}'; fi
"#;

fn run_table(dir: &Path, jobs: &str) -> String {
    let trainer = dir.join("trainer");
    if !trainer.exists() {
        fs::write(&trainer, STAND_IN).unwrap();
        Command::new("chmod").arg("+x").arg(&trainer).status().unwrap();
    }
    let out = Command::new("bench/compression-table/compression-table.sh")
        .current_dir(repo_root())
        .envs([
            ("TRAINER_BIN", trainer.display().to_string()),
            ("EDGE_RUNTIME_BIN", "/bin/false".into()),
            ("CALLS", dir.join("calls").display().to_string()),
            ("DATA", fixture("snownlp-mini").display().to_string()),
            ("TEACHER", "/teacher/never/read".into()),
            ("SEEDS", "1 2 3".into()),
            ("ROWS", "plain3 kd3".into()),
            ("OUT", dir.join("runs").display().to_string()),
            ("KEEP", dir.join("kept").display().to_string()),
            ("JOBS", jobs.into()),
        ])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    log
}

fn trainings(dir: &Path) -> Vec<String> {
    let calls = fs::read_to_string(dir.join("calls")).unwrap_or_default();
    calls.lines().filter(|l| l.starts_with("distill")).map(str::to_owned).collect()
}

#[test]
fn two_workers_train_every_run_once_keep_each_and_a_rerun_skips_the_kept_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    run_table(dir, "2");
    let trained = trainings(dir);
    assert_eq!(trained.len(), 6, "{trained:#?}");
    for seed in ["1", "2", "3"] {
        for row in ["plain3", "kd3"] {
            let out = format!("seed-{seed}/{row} ");
            let runs: Vec<_> = trained.iter().filter(|c| (c.to_string() + " ").contains(&out)).collect();
            assert_eq!(runs.len(), 1, "{out}: {runs:#?}");
            assert!(runs[0].contains(&format!("--seed {seed}")), "{}", runs[0]);
            let kept = dir.join("kept").join(format!("seed-{seed}")).join(row).join("test-report.json");
            assert!(kept.exists(), "{} kept", kept.display());
        }
    }

    // runs/ gone (a new session): nothing is trained again.
    fs::remove_dir_all(dir.join("runs")).unwrap();
    let log = run_table(dir, "1");
    assert_eq!(trainings(dir).len(), 6, "{log}");
    assert_eq!(log.matches("kept in").count(), 6, "{log}");
}

#[test]
fn jobs_must_be_a_positive_whole_number() {
    for jobs in ["0", "two", "-1"] {
        let out = Command::new("bench/compression-table/compression-table.sh")
            .current_dir(repo_root())
            .env("JOBS", jobs)
            .env("OUT", "/nonexistent/never-written")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "JOBS={jobs:?}: {err}");
        assert!(err.contains("JOBS"), "{err}");
    }
}
