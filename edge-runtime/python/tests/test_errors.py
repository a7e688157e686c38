"""Bad input raises the documented exception, with the CLI's message (the
file first); no Rust panic reaches Python."""

import hashlib
import json

import pytest
from bert_edge import BundleError, Classifier


def reseal(bundle_dir, name):
    """Recomputes one file's checksum in the manifest, so the damage passes
    the checksums and must be caught by the deeper checks."""
    manifest_path = bundle_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["sha256"][name] = hashlib.sha256((bundle_dir / name).read_bytes()).hexdigest()
    manifest_path.write_text(json.dumps(manifest))


def edit_manifest(bundle_dir, edit):
    manifest_path = bundle_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    edit(manifest)
    manifest_path.write_text(json.dumps(manifest))


def test_a_missing_bundle_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        Classifier(tmp_path / "nowhere")


def test_a_damaged_manifest_names_it(bundle_copy):
    (bundle_copy / "manifest.json").write_text('{"format_version": 1, "labels": [')
    with pytest.raises(BundleError, match=r"manifest\.json: invalid manifest") as error:
        Classifier(bundle_copy)
    assert isinstance(error.value, ValueError)


def test_a_changed_byte_is_a_checksum_mismatch_naming_the_file(bundle_copy):
    layer = bundle_copy / "layer_01.onnx"
    data = bytearray(layer.read_bytes())
    data[len(data) // 2] ^= 0x40
    layer.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"layer_01\.onnx: checksum mismatch"):
        Classifier(bundle_copy)


@pytest.mark.parametrize(
    "damage,names",
    [
        (lambda b: edit_manifest(b, lambda m: m.update(labels=["a", "b", "c"])), "exit_01.onnx"),
        (lambda b: edit_manifest(b, lambda m: m.update(hidden_size=48)), "embeddings.onnx"),
        (lambda b: edit_manifest(b, lambda m: m.update(default_policy={"policy": "layer", "k": 7})), "manifest.json"),
        (lambda b: edit_manifest(b, lambda m: m.update(num_layers=3)), "manifest.json"),
        (lambda b: ((b / "layer_00.onnx").write_bytes((b / "layer_00.onnx").read_bytes()[:5000]), reseal(b, "layer_00.onnx")), "layer_00.onnx"),
        (lambda b: ((b / "tokenizer.json").write_text("{}"), reseal(b, "tokenizer.json")), "tokenizer.json"),
        (lambda b: edit_manifest(b, lambda m: m.update(tokenizer="../tokenizer.json")), "manifest.json"),
    ],
    ids=["three labels, two logits", "hidden size", "default policy past the exits", "three layers listed as two", "truncated graph", "empty tokenizer", "path outside"],
)
def test_an_inconsistent_bundle_names_the_file(bundle_copy, damage, names):
    damage(bundle_copy)
    with pytest.raises(BundleError, match=names.replace(".", r"\.")):
        Classifier(bundle_copy)


def test_a_pinned_digest_refuses_another_bundle(bundle):
    with pytest.raises(BundleError, match="not the expected bundle"):
        Classifier(bundle, expect_digest="0" * 64)
    with pytest.raises(ValueError, match="expect_digest"):
        Classifier(bundle, expect_digest="not hex")


def test_texts_must_be_strings(bundle):
    clf = Classifier(bundle)
    for bad in (3, None, b"bytes", ["a list"]):
        with pytest.raises(TypeError):
            clf.classify(bad)
    with pytest.raises(TypeError):
        clf.classify_batch("one string, not a list")
    with pytest.raises(TypeError):
        clf.classify_batch(["fine", 7])
    with pytest.raises(TypeError):
        Classifier(42)


def test_an_empty_text_is_a_value_error_naming_its_index(bundle):
    clf = Classifier(bundle)
    with pytest.raises(ValueError, match="empty text"):
        clf.classify("")
    with pytest.raises(ValueError, match=r"texts\[1\]: empty text"):
        clf.classify_batch(["很好", "", "很差"])


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        ({"policy": "fast"}, TypeError, "policy"),
        ({"speed": 1.5}, ValueError, "speed"),
        ({"speed": float("nan")}, ValueError, "speed"),
        ({"speed": "fast"}, TypeError, "speed"),
        ({"patience": 0}, ValueError, "patience"),
        ({"patience": 3}, ValueError, "patience 3 is outside 1..=2"),
        ({"exit_layer": 9}, ValueError, "exit layer 9 is outside 1..=2"),
        ({"exit_layer": -1}, ValueError, "exit_layer"),
        ({"full": "yes"}, TypeError, "full"),
        ({"speed": 0.5, "full": True}, ValueError, "at most one"),
        ({"patience": 1, "exit_layer": 1}, ValueError, "at most one"),
        ({"compute": "mixed"}, ValueError, 'compute: unknown compute mode "mixed"'),
        ({"compute": 16}, TypeError, "compute"),
        ({"matmul_kernel": ""}, ValueError, "matmul_kernel"),
        ({"matmul_kernel": "no_such_kernel"}, ValueError, "no_such_kernel: not one tract can run on this CPU"),
    ],
)
def test_a_policy_argument_is_checked(bundle, kwargs, error, message):
    with pytest.raises(error, match=message):
        Classifier(bundle, **kwargs)


def test_a_policy_out_of_range_names_the_bundle(bundle):
    with pytest.raises(ValueError, match="tiny-bundle"):
        Classifier(bundle, exit_layer=3)


@pytest.mark.parametrize("batch_size", [0, -2, 10**6])
def test_the_batch_size_is_checked(bundle, batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        Classifier(bundle).classify_batch(["很好"], batch_size=batch_size)


def test_seeded_damage_never_panics(bundle_copy):
    """Random byte edits of every file, resealed so they pass the checksums:
    each bundle loads and classifies, or raises BundleError naming a file of
    it. A Rust panic would surface as pyo3's PanicException (a
    BaseException), which this test does not catch."""
    import random
    import shutil

    rng = random.Random(28)
    pristine = {p.name: p.read_bytes() for p in bundle_copy.iterdir()}
    names = sorted(n for n in pristine if n != "manifest.json")
    outcomes = {"loaded": 0, "refused": 0}
    for _ in range(60):
        for name, data in pristine.items():
            (bundle_copy / name).write_bytes(data)
        name = rng.choice(names)
        data = bytearray(pristine[name])
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        (bundle_copy / name).write_bytes(bytes(data))
        reseal(bundle_copy, name)
        try:
            clf = Classifier(bundle_copy)
        except BundleError as error:
            assert str(bundle_copy) in str(error), error
            outcomes["refused"] += 1
            continue
        clf.classify_batch(["这家酒店很干净", "很差"], batch_size=2)
        outcomes["loaded"] += 1
    assert outcomes["refused"] > 0 and sum(outcomes.values()) == 60, outcomes
    shutil.rmtree(bundle_copy)
