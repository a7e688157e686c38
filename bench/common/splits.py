"""A labelled split as the trainer reads it, and the Wilson interval its reports give:
the Python side of bundle::dataset and bundle::stats, for the experiments (standard
library only)."""
import json
import math


class DataError(Exception):
    pass


def normalise_label(label, where):
    """bundle::dataset::normalise_label: trimmed, numbers written one way, never empty."""
    s = str(label).strip()
    if not s:
        raise DataError(f"{where}: malformed line: field `label`: empty label")
    try:
        x = float(s)
    except ValueError:
        return s
    if math.isfinite(x) and x == int(x) and abs(x) < 1e15:
        return str(int(x))
    return repr(x) if math.isfinite(x) else s


def read_split(path):
    """(texts, labels) of a JSONL dataset; every error names file:line."""
    if not path.is_file():
        raise DataError(f"{path}: no such file (the split is required; no other split is used in its place)")
    texts, labels = [], []
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    for i, line in enumerate(raw.split(b"\n"), 1):
        where = f"{path}:{i}"
        try:
            line = line.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as e:
            raise DataError(f"{where}: not UTF-8 ({e})")
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{where}: malformed line: invalid JSON object: {e}")
        if not isinstance(row, dict):
            raise DataError(f"{where}: malformed line: expected a JSON object")
        text = row.get("text", row.get("sentence"))
        if not isinstance(text, str):
            raise DataError(f"{where}: malformed line: missing field `text` (or `sentence`)")
        if not text.strip():
            raise DataError(f"{where}: malformed line: field `text` is empty")
        label = row.get("label")
        if isinstance(label, bool) or not isinstance(label, (str, int, float)):
            raise DataError(f"{where}: malformed line: field `label` must be a string or number, got {json.dumps(label)}")
        texts.append(text)
        labels.append(normalise_label(label, where))
    if not texts:
        raise DataError(f"{path}: no examples")
    return texts, labels


def wilson95(k, n):
    """bundle::stats::wilson95."""
    if n == 0:
        return [0.0, 1.0]
    z, p = 1.959964, k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return [max(centre - half, 0.0), min(centre + half, 1.0)]
