"""HellaSwag as a pandas DataFrame: a local JSONL file, else the Hugging Face ``datasets`` library."""

import functools
import json
import re
from pathlib import Path

import pandas as pd

from lamina.errors import LaminaError, closest

from .local import local_file

SPLITS = ("train", "validation", "test")
COLUMNS = ["row", "activity_label", "ctx", "label", "endings"]
# The shared JSONL has WikiHow's bracket markers removed; do the same to hub rows so both agree.
_MARKER = re.compile(r"\s*\[(?:header|title|step|substeps)\]\s*")


def hellaswag(split: str = "validation") -> pd.DataFrame:
    """HellaSwag ``split`` as a DataFrame, one row per item, in the split's order.

    Columns: ``row`` (int, 0-based index in the split), ``activity_label`` (str),
    ``ctx`` (str, full context ctx_a + ctx_b), ``label`` (int 0-3; -1 where the split
    has no answer, i.e. test), ``endings`` (list of 4 str). Reads
    ``hellaswag_{split}.jsonl`` from ``LAMINA_DATA_DIR`` if present, else
    ``datasets.load_dataset("Rowan/hellaswag")``. Parsed once per process; each call
    returns a fresh copy.
    """
    if split not in SPLITS:
        hint = closest(str(split), SPLITS)
        raise LaminaError(f"unknown HellaSwag split {split!r}; use one of {list(SPLITS)}." + hint)
    path = local_file(f"hellaswag_{split}.jsonl")
    # The key includes the file and its mtime so a changed LAMINA_DATA_DIR is noticed.
    key = (str(path), path.stat().st_mtime_ns) if path else None
    frame = _load(split, key)
    out = frame.copy()
    out["endings"] = out["endings"].map(list)  # copy() is shallow for the lists themselves
    return out


@functools.lru_cache(maxsize=8)
def _load(split: str, key) -> pd.DataFrame:
    rows = _read_jsonl(Path(key[0])) if key else _read_hub(split)
    frame = pd.DataFrame(rows)
    missing = [c for c in COLUMNS if c not in frame.columns and c != "row"]
    if missing:
        raise LaminaError(f"HellaSwag {split} rows lack the columns {missing}.")
    if "row" not in frame.columns:
        frame["row"] = range(len(frame))
    frame = frame[COLUMNS + [c for c in frame.columns if c not in COLUMNS]]
    return frame.astype({"row": "int64", "label": "int64"})


hellaswag.cache_clear = _load.cache_clear  # for tests and long sessions that swap data


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    with path.open(encoding="utf-8-sig") as lines:
        for number, line in enumerate(lines, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise LaminaError(f"{path} line {number} is not JSON: {exc.msg}.") from exc
    if not rows:
        raise LaminaError(f"{path} is empty.")
    return rows


def _clean(text: str) -> str:
    return _MARKER.sub(" ", text).strip()


def _read_hub(split: str) -> list[dict]:
    try:
        import datasets  # optional: `pip install lamina[hub]`
    except ImportError as exc:
        raise LaminaError(
            f"HellaSwag needs the `datasets` library: `pip install datasets`, or set LAMINA_DATA_DIR "
            f"to a directory with hellaswag_{split}.jsonl."
        ) from exc
    try:
        dataset = datasets.load_dataset("Rowan/hellaswag", split=split)
    except Exception as exc:  # datasets raises many types (offline, hub, network); all mean "not available"
        raise LaminaError(
            f"could not load Rowan/hellaswag ({split}) with datasets: {exc}. Without internet, set "
            f"LAMINA_DATA_DIR to a directory with hellaswag_{split}.jsonl."
        ) from exc
    rows = [
        {"row": i, "activity_label": item["activity_label"], "ctx": _clean(item["ctx"]),
         # Hub labels are strings ("3"); the test split leaves them empty.
         "label": int(item["label"]) if str(item["label"]).strip() else -1,
         "endings": [_clean(e) for e in item["endings"]]}
        for i, item in enumerate(dataset)
    ]
    if not rows:
        raise LaminaError(f"Rowan/hellaswag ({split}) is empty.")
    return rows
