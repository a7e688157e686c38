"""The wheel answers exactly as the CLI does: same labels, exit layers,
truncation, and the same f32 probabilities and logits, bit for bit. The CLI
plans for one text at --batch-size 1 (the default), so the one-text-at-a-time
comparisons load with one_text_plans=True."""

import struct

import pytest
from bert_edge import Classifier

# (keyword arguments of Classifier, the CLI's flags)
POLICIES = [
    ({}, []),
    ({"full": True}, ["--full"]),
    ({"speed": 0.95}, ["--speed", "0.95"]),
    ({"speed": 0.3}, ["--speed", "0.3"]),
    ({"patience": 1}, ["--patience", "1"]),
    ({"exit_layer": 1}, ["--exit-layer", "1"]),
]


def f32_bits(x: float) -> bytes:
    return struct.pack("<f", x)


def assert_same(ours, theirs):
    assert len(ours) == len(theirs)
    for i, (p, line) in enumerate(zip(ours, theirs)):
        where = f"text {i}"
        assert p.label == line["label"], where
        assert p.exit_layer == line["exit_layer"], where
        assert p.truncated == line["truncated"], where
        assert f32_bits(p.prob) == f32_bits(line["prob"]), where
        assert [f32_bits(v) for v in p.logits] == [f32_bits(v) for v in line["logits"]], where


@pytest.mark.parametrize("kwargs,flags", POLICIES, ids=[" ".join(f) or "default" for _, f in POLICIES])
def test_one_text_at_a_time_as_the_cli(bundle, texts, cli, kwargs, flags):
    clf = Classifier(bundle, one_text_plans=True, **kwargs)
    theirs = cli("classify", "--bundle", bundle, *flags, "--with-logits", stdin="\n".join(texts) + "\n")
    assert_same([clf.classify(t) for t in texts], theirs)


@pytest.mark.parametrize("batch_size", [3, 8])
@pytest.mark.parametrize("kwargs,flags", POLICIES[1:3], ids=["full", "speed 0.95"])
def test_batches_as_the_cli(bundle, texts, cli, kwargs, flags, batch_size):
    clf = Classifier(bundle, **kwargs)
    theirs = cli("classify", "--bundle", bundle, *flags, "--batch-size", batch_size, "--with-logits", stdin="\n".join(texts) + "\n")
    assert_same(clf.classify_batch(texts, batch_size=batch_size), theirs)


def test_early_exit_happens_and_long_texts_are_cut(bundle, texts):
    """The checks above must not pass vacuously: some texts leave early,
    some are cut, and probs agree with prob."""
    results = Classifier(bundle, speed=0.95).classify_batch(texts)
    assert {p.exit_layer for p in results} == {1, 2}
    assert any(p.truncated for p in results) and not all(p.truncated for p in results)
    for p in results:
        assert max(p.probs) == p.prob
        assert abs(sum(p.probs) - 1.0) < 1e-5
        assert p.latency_us >= 0
        assert p.as_dict()["label"] == p.label


def test_the_bundle_is_described_as_inspect_describes_it(bundle, cli):
    clf = Classifier(bundle)
    [info] = cli("inspect", "--bundle", bundle)
    assert clf.digest == info["digest"]
    assert clf.labels == info["labels"]
    assert clf.num_layers == info["num_layers"]
    assert clf.max_seq_len == info["max_seq_len"]
    assert clf.precision == info["precision"]
    assert clf.policy == clf.default_policy == info["default_policy"]
    assert Classifier(bundle, patience=2).policy == "patience 2"
    assert 'policy="patience 2"' in repr(Classifier(bundle, patience=2))


def test_a_pinned_digest_loads_its_bundle(bundle):
    digest = Classifier(bundle).digest
    assert Classifier(bundle, expect_digest=digest.upper()).digest == digest


@pytest.mark.parametrize("compute", ["mixed-f16", "f16-products"])
def test_a_compute_mode_answers_as_the_cli_in_that_mode(bundle, texts, cli, compute):
    clf = Classifier(bundle, full=True, compute=compute, one_text_plans=True)
    assert clf.compute == compute
    theirs = cli("--compute", compute, "classify", "--bundle", bundle, "--full", "--with-logits", stdin="\n".join(texts) + "\n")
    assert_same([clf.classify(t) for t in texts], theirs)
    # Not f32 under another name: f16 rounding moves some logit.
    f32 = cli("classify", "--bundle", bundle, "--full", "--with-logits", stdin="\n".join(texts) + "\n")
    assert any(line["logits"] != p.logits for line, p in zip(f32, [clf.classify(t) for t in texts]))


def test_the_default_compute_mode_of_an_f32_bundle_is_f32(bundle):
    assert Classifier(bundle).compute == "f32"
    assert Classifier(bundle, matmul_kernel="tract").compute == "f32"


def test_plans_for_one_text_take_a_batch_text_by_text(bundle, texts):
    """Same labels and exits as symbolic plans; logits within rounding."""
    one = Classifier(bundle, speed=0.95, one_text_plans=True).classify_batch(texts, batch_size=4)
    symbolic = Classifier(bundle, speed=0.95).classify_batch(texts, batch_size=4)
    for a, b in zip(one, symbolic):
        assert (a.label, a.exit_layer) == (b.label, b.exit_layer)
        assert max(abs(x - y) for x, y in zip(a.logits, b.logits)) < 1e-5
