"""Fixtures shared by the wheel's tests: the committed tiny bundle, its test
texts, and the CLI build whose answers the wheel must reproduce."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
BUNDLE = ROOT / "tests" / "fixtures" / "tiny-bundle"
TEXTS = ROOT / "tests" / "fixtures" / "snownlp-mini" / "test.jsonl"


def cli_binary() -> Path:
    """The x86 CLI built with the workspace (`cargo test --workspace --release`
    builds it, under $CARGO_TARGET_DIR when set); EDGE_RUNTIME_BIN names another."""
    target = ROOT / os.environ.get("CARGO_TARGET_DIR", "target")  # an absolute dir replaces ROOT
    path = Path(os.environ.get("EDGE_RUNTIME_BIN", target / "release" / "edge-runtime"))
    if not path.is_file():
        pytest.fail(f"{path}: the CLI to compare with is missing (cargo build --release -p edge-runtime, or set EDGE_RUNTIME_BIN)")
    return path


@pytest.fixture(scope="session")
def bundle() -> Path:
    return BUNDLE


@pytest.fixture(scope="session")
def texts() -> list:
    """The committed test texts, and one longer than the bundle's
    max_seq_len (none of them is), so that truncation is compared too."""
    with open(TEXTS, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    return texts + ["".join(texts[:6])]


@pytest.fixture(scope="session")
def cli():
    """cli(*args, stdin=None) -> the CLI's JSON lines, parsed."""
    binary = cli_binary()

    def run(*args, stdin=None):
        out = subprocess.run([str(binary), *map(str, args)], input=stdin, capture_output=True, text=True, check=True)
        return [json.loads(line) for line in out.stdout.splitlines()]

    return run


@pytest.fixture
def bundle_copy(tmp_path):
    """A private copy of the tiny bundle to damage."""
    copy = tmp_path / "bundle"
    shutil.copytree(BUNDLE, copy)
    return copy
