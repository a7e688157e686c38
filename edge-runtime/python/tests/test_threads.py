"""Classifying releases the GIL: Python threads run while a text is being
classified, and threads with one Classifier each answer as one thread does."""

import threading
import time

import pydoc

from bert_edge import Classifier


def test_python_threads_run_during_a_classification(bundle, texts):
    """A ticker thread counts the loops it makes inside a window in the
    middle of a long classify_batch call. Were the GIL held for the call, it
    could not run there at all (it gets the GIL back only after the call)."""
    clf = Classifier(bundle, full=True)
    long_batch = texts * 6

    def timed_call():
        start = time.perf_counter()
        clf.classify_batch(long_batch, batch_size=1)
        return time.perf_counter() - start

    shortest = min(timed_call() for _ in range(3))
    window = [0.0, 0.0]
    inside = 0
    stop = threading.Event()

    def tick():
        nonlocal inside
        while not stop.is_set():
            now = time.perf_counter()
            if window[0] < now < window[1]:
                inside += 1

    ticker = threading.Thread(target=tick)
    ticker.start()
    try:
        counts = []
        for _ in range(3):
            inside = 0
            start = time.perf_counter()
            # From a tenth to three tenths of the shortest call seen: the
            # call would have to run over three times faster than ever to
            # end before the window does.
            window[:] = [start + 0.1 * shortest, start + 0.3 * shortest]
            timed_call()
            counts.append(inside)
    finally:
        stop.set()
        ticker.join()
    assert min(counts) > 100, counts


def test_threads_with_one_classifier_each_answer_as_one_thread(bundle, texts):
    expected = [(p.label, p.exit_layer, p.logits) for p in Classifier(bundle, speed=0.9).classify_batch(texts, batch_size=1)]
    answers = {}

    def work(k):
        clf = Classifier(bundle, speed=0.9)
        answers[k] = [(p.label, p.exit_layer, p.logits) for p in (clf.classify(t) for t in texts)]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 4
    assert all(a == expected for a in answers.values())


def test_help_reads_like_the_cli(bundle):
    text = pydoc.render_doc(Classifier, renderer=pydoc.plaintext)
    for words in ("speed", "patience", "exit_layer", "full", "expect_digest", "FileNotFoundError", "BundleError", "classify_batch"):
        assert words in text, words
    assert "speed=None" in Classifier.__text_signature__ or "speed=None" in text


def test_set_threads_changes_nothing_but_the_pool(bundle, texts):
    import pytest
    from bert_edge import set_threads

    clf = Classifier(bundle, full=True)
    one = clf.classify_batch(texts, batch_size=8)
    try:
        set_threads(2)
        two = clf.classify_batch(texts, batch_size=8)
    finally:
        set_threads(1)
    assert [(p.label, p.exit_layer) for p in one] == [(p.label, p.exit_layer) for p in two]
    assert max(abs(a - b) for p, q in zip(one, two) for a, b in zip(p.logits, q.logits)) < 1e-5
    for bad in (0, -1, 257):
        with pytest.raises(ValueError, match="n must be in 1..=256"):
            set_threads(bad)
    with pytest.raises(TypeError):
        set_threads("2")
