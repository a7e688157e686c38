"""The wheel ships type stubs, and they name everything the module offers."""

import re
from pathlib import Path

import bert_edge


def stub_text():
    stub = Path(bert_edge.__file__).with_name("__init__.pyi")
    assert stub.is_file(), f"{stub}: the wheel carries no type stubs"
    assert stub.with_name("py.typed").is_file()
    return stub.read_text()


def public(obj):
    return {n for n in dir(obj) if not n.startswith("_")}


def test_every_public_name_has_a_stub():
    text = stub_text()
    declared = set(re.findall(r"^(?:class|def) (\w+)|^(\w+):", text, re.M))
    declared = {a or b for a, b in declared}
    assert public(bert_edge) - {"bert_edge"} <= declared, public(bert_edge) - declared
    for cls in (bert_edge.Classifier, bert_edge.Prediction):
        members = set(re.findall(r"def (\w+)\(", text.split(f"class {cls.__name__}")[1].split("\nclass ")[0]))
        assert public(cls) <= members, (cls.__name__, public(cls) - members)
