"""Evaluation inputs: the prepared test parquet and the predictions JSONL, every bad line counted with its reason.

The predictions format and the skip reasons are described in recipes/legal/evaluate.py (the CLI's docstring).
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

TASKS = ("charge", "article", "term", "verdict")
MAX_ISSUES_LISTED = 200
# A str from json.loads holds a surrogate only when it was a lone one (escaped pairs decode to one character).
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class EvaluationInputError(ValueError):
    """Bad evaluation input (data file, predictions line under --strict, config): the message names where."""


# ----------------------------------------------------------------------------------------------- data + predictions
def task_of(data_source: str) -> str:
    """'legal/charge' → 'charge'; anything else raises EvaluationInputError."""
    prefix, _, task = str(data_source).partition("/")
    if prefix != "legal" or task not in TASKS:
        raise EvaluationInputError(f"unknown data_source {data_source!r}: expected one of legal/{{{','.join(TASKS)}}}")
    return task


def load_data(path: str | Path) -> dict[tuple[str, int], dict[str, Any]]:
    """Rows of a prepared parquet keyed by (data_source, extra_info.index); errors name the row and field."""
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.exists():
        raise EvaluationInputError(f"--data {path}: file not found (run `python -m data.prepare` first)")
    rows = pq.read_table(path).to_pylist()
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for i, row in enumerate(rows):
        where = f"{path} row {i}"
        for name in ("data_source", "prompt", "reward_model", "extra_info"):
            if row.get(name) is None:
                raise EvaluationInputError(f"{where}: missing column {name!r}")
        task_of(row["data_source"])
        index = row["extra_info"].get("index")
        if not isinstance(index, int):
            raise EvaluationInputError(f"{where}: extra_info.index must be an int, got {index!r}")
        key = (row["data_source"], index)
        if key in out:
            raise EvaluationInputError(f"{where}: duplicate (data_source, index) {key}")
        out[key] = row
    logger.info("loaded %d rows from %s", len(out), path)
    return out


@dataclass
class Prediction:
    """One accepted predictions line."""

    line: int
    data_source: str
    index: int
    response: str
    sample: Any = None

    @property
    def key(self) -> tuple[str, int]:
        """The item key (data_source, index)."""
        return (self.data_source, self.index)


@dataclass
class LoadResult:
    """Accepted predictions and what was wrong with the rest."""

    predictions: list[Prediction] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    issues: list[dict[str, Any]] = field(default_factory=list)
    empty_responses: int = 0
    repeated_without_sample: int = 0
    lines_read: int = 0
    surrogates_replaced: int = 0


def load_predictions(path: str | Path, data: dict[tuple[str, int], dict[str, Any]], strict: bool = False) -> LoadResult:
    """Read a predictions JSONL; bad lines are counted (or, with strict, raise EvaluationInputError naming the line)."""
    path = Path(path)
    if not path.exists():
        raise EvaluationInputError(f"--predictions {path}: file not found")
    by_index: dict[int, list[str]] = {}
    for data_source, index in data:
        by_index.setdefault(index, []).append(data_source)
    result = LoadResult()
    samples: dict[tuple[str, int, str], str] = {}  # (data_source, index, sample id as JSON) → first response
    texts_without_sample: set[tuple[str, int, str]] = set()

    def bad(line_no: int, reason: str, detail: str) -> None:
        if strict:
            raise EvaluationInputError(f"{path} line {line_no}: {reason}: {detail}")
        result.skipped[reason] += 1
        if len(result.issues) < MAX_ISSUES_LISTED:
            result.issues.append({"line": line_no, "reason": reason, "detail": detail})

    with path.open("rb") as handle:
        for line_no, raw_bytes in enumerate(handle, start=1):
            result.lines_read += 1
            try:
                raw = raw_bytes.decode("utf-8-sig" if line_no == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                bad(line_no, "bad_encoding", f"not UTF-8 at byte {exc.start} of the line")
                continue
            if not raw.strip():
                continue  # blank lines carry nothing
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as exc:
                bad(line_no, "malformed_json", str(exc))
                continue
            if not isinstance(obj, dict):
                bad(line_no, "malformed_json", f"expected a JSON object, got {type(obj).__name__}")
                continue
            index, response = obj.get("index"), obj.get("response")
            if isinstance(index, bool) or not isinstance(index, int):
                bad(line_no, "missing_field", f"'index' must be an int, got {index!r}")
                continue
            if not isinstance(response, str):
                bad(line_no, "missing_field", f"'response' must be a string, got {type(response).__name__}")
                continue
            if _LONE_SURROGATE.search(response):  # not encodable as UTF-8: scored with U+FFFD in its place
                response = _LONE_SURROGATE.sub("\ufffd", response)
                result.surrogates_replaced += 1
                if len(result.issues) < MAX_ISSUES_LISTED:
                    detail = "lone surrogate(s) replaced by U+FFFD, scored"
                    result.issues.append({"line": line_no, "reason": "lone_surrogate", "detail": detail})
            sources = by_index.get(index, [])
            data_source = obj.get("data_source")
            if data_source is None and len(sources) == 1:
                data_source = sources[0]
            if not sources:
                bad(line_no, "unknown_index", f"index {index} is not in the data")
                continue
            if data_source not in sources:
                detail = f"index {index} has data_source {sources}, line says {data_source!r}"
                bad(line_no, "data_source_mismatch", detail)
                continue
            sample = obj.get("sample")
            if isinstance(sample, str):
                sample = _LONE_SURROGATE.sub("\ufffd", sample)
            if sample is None:  # an unlabelled sample: always kept (see the module docstring)
                text_key = (data_source, index, response)
                result.repeated_without_sample += text_key in texts_without_sample
                texts_without_sample.add(text_key)
            else:
                sample_key = (data_source, index, json.dumps(sample, sort_keys=True, ensure_ascii=False))
                first = samples.get(sample_key)
                if first is not None:
                    if first == response:
                        bad(line_no, "duplicate", f"repeats an earlier line exactly (index {index}, sample {sample!r})")
                    else:
                        detail = f"index {index} sample {sample!r} already has a different response"
                        bad(line_no, "sample_conflict", detail)
                    continue
                samples[sample_key] = response
            if not response.strip():
                if strict:
                    raise EvaluationInputError(f"{path} line {line_no}: empty_response: index {index}")
                result.empty_responses += 1
                if len(result.issues) < MAX_ISSUES_LISTED:
                    result.issues.append({"line": line_no, "reason": "empty_response", "detail": "scored as is"})
            result.predictions.append(Prediction(line_no, data_source, index, response, sample))
    logger.info("read %d predictions from %s (skipped %s)", len(result.predictions), path, dict(result.skipped))
    if not result.predictions:
        skipped = ", ".join(f"{k}={v}" for k, v in sorted(result.skipped.items())) or "none"
        raise EvaluationInputError(
            f"--predictions {path}: no prediction to score ({result.lines_read} line(s) read, skipped: {skipped})"
        )
    return result
