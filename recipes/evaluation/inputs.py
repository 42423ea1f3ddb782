"""Evaluation inputs of every recipe: the prepared test parquet and the predictions JSONL, every bad line counted.

Predictions are JSON lines ``{"index": <extra_info.index>, "data_source": "<recipe>[/<task>]", "response": "..."}``
with an optional ``"sample"`` id (vLLM's ``n`` samples of one prompt: 0, 1, …; ``--model`` writes it).

Several responses per item (sampled rollouts): every line is one sample and is scored, even when its text repeats
another line of the same item (identical short answers are common when sampling; dropping them would bias the
item's mean). Lines WITHOUT a ``sample`` id are therefore never duplicates; they are counted in
``repeated_without_sample`` when their text repeats an earlier line of the item (a hint, in case a file was
concatenated twice). A ``sample`` id names one sample, so lines WITH one:
- ``duplicate``: repeats an earlier line exactly — same (data_source, index, sample, response): skipped;
- ``sample_conflict``: reuses an earlier line's (data_source, index, sample) with a different response: skipped
  (the first line of that sample is scored).
Other bad lines are counted under ``skipped`` (reason → count) and listed in ``issues``; ``strict`` makes the first
bad line an error naming the line:
- ``bad_encoding``: not UTF-8; ``malformed_json``: not a JSON object; ``missing_field``: no ``index`` /
  ``response`` (or null); ``wrong_type``: an ``index`` that is not a JSON integer (``"4"``, ``4.0``, ``true``) or a
  ``response`` that is not a string; ``unknown_index``: no data row with that index (and data_source);
  ``data_source_mismatch``: the index exists only under another data_source.
Empty responses are not skipped (an empty output is a real, format-failing answer): they are scored and counted in
``empty_responses``; ``strict`` rejects them too. Lone surrogates in a response are replaced by U+FFFD and counted
in ``surrogates_replaced``. A file with nothing to score is an input error.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

__all__ = [
    "MAX_ISSUES_LISTED",
    "data_file",
    "EvaluationInputError",
    "LoadResult",
    "Prediction",
    "Rows",
    "ScoringStoppedError",
    "load_predictions",
    "load_rows",
    "read_table",
    "skipped_summary",
    "stopped_block",
]

MAX_ISSUES_LISTED = 200
# A str from json.loads holds a surrogate only when it was a lone one (escaped pairs decode to one character).
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

Rows = dict[tuple[str, int], dict[str, Any]]
"""Data rows keyed by (data_source, extra_info.index)."""


class EvaluationInputError(ValueError):
    """Bad evaluation input (data file, predictions line under --strict, config): the message names where."""


def data_file(path: str | Path) -> Path:
    """--data as a file: a directory stands for its test.parquet (what `data.prepare --output DIR` writes)."""
    path = Path(path)
    if path.is_dir():
        test = path / "test.parquet"
        if not test.is_file():
            raise EvaluationInputError(
                f"--data {path} is a directory without test.parquet — give the prepared test file "
                f"(`python -m data.prepare ... --output {path}` writes {test})"
            )
        return test
    if not path.exists():
        raise EvaluationInputError(f"--data {path}: file not found (run `python -m data.prepare` first)")
    return path


def read_table(path: str | Path, columns: Sequence[str] | None = None) -> Any:
    """The parquet table of --data (a directory: its test.parquet); a file that is not parquet is one-line error."""
    import pyarrow.parquet as pq

    path = data_file(path)
    try:
        return pq.read_table(path, columns=None if columns is None else list(columns))
    except Exception as exc:  # pyarrow raises several types for a file that is not (readable) parquet
        raise EvaluationInputError(f"--data {path}: not a readable parquet file ({type(exc).__name__}: {exc})") from exc


def load_rows(path: str | Path, check_row: Callable[[dict[str, Any]], None] | None = None) -> Rows:
    """Rows of a prepared parquet keyed by (data_source, extra_info.index); errors name the row and field.

    check_row (the recipe's) raises ValueError for a row the recipe cannot evaluate; the error names the row.
    A directory stands for its test.parquet.
    """
    path = data_file(path)
    rows = read_table(path).to_pylist()
    out: Rows = {}
    for i, row in enumerate(rows):
        where = f"{path} row {i}"
        for name in ("data_source", "prompt", "reward_model", "extra_info"):
            if row.get(name) is None:
                raise EvaluationInputError(f"{where}: missing column {name!r}")
        if check_row is not None:
            try:
                check_row(row)
            except ValueError as exc:
                raise EvaluationInputError(f"{where}: {exc}") from exc
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


def _field_problem(name: str, value: Any, kind: type) -> tuple[str, str] | None:
    """(reason, detail) when a required field is absent or null (missing_field) or of another type (wrong_type)."""
    if value is None:
        return "missing_field", f"no {name!r} (required: {kind.__name__})"
    if isinstance(value, bool) or not isinstance(value, kind):
        shown = repr(value) if kind is int else type(value).__name__  # a response may be long: its type is enough
        digits = isinstance(value, str) and value.isascii() and value.isdigit()
        hint = f' — write "{name}": {value}' if kind is int and digits else ""
        return "wrong_type", f"{name!r} must be {'an int' if kind is int else 'a string'}, got {shown}{hint}"
    return None


def skipped_summary(skipped: Counter, lines_read: int, listed_in: str) -> str:
    """One line: how many predictions lines were skipped, by reason, and where they are listed by line number."""
    reasons = ", ".join(f"{reason}={count}" for reason, count in sorted(skipped.items()))
    total = sum(skipped.values())
    return f"skipped {total} of {lines_read} predictions line(s) ({reasons}); listed by line in {listed_in}"


def load_predictions(path: str | Path, data: Rows, strict: bool = False) -> LoadResult:
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
            problem = _field_problem("index", index, int) or _field_problem("response", response, str)
            if problem is not None:
                bad(line_no, *problem)
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


class ScoringStoppedError(RuntimeError):
    """Scoring stopped part-way (the judge is gone, or compute_score failed): what was scored, and where it stopped."""

    def __init__(self, records: list[dict[str, Any]], predictions: Sequence[Prediction], cause: BaseException) -> None:
        """records: the responses scored before the stop; predictions: all that were to be scored."""
        self.records, self.cause = records, cause
        scored = {rec["line"] for rec in records}
        self.unscored_lines = [p.line for p in predictions if p.line not in scored]
        self.first_unscored_line = self.unscored_lines[0] if self.unscored_lines else None
        self.total = len(predictions)
        super().__init__(
            f"scoring stopped after {len(records)} of {self.total} responses (first unscored: predictions line "
            f"{self.first_unscored_line}): {type(cause).__name__}: {cause}"
        )


def stopped_block(stop: ScoringStoppedError) -> dict[str, Any]:
    """overall.stopped of a run that stopped part-way: why, how far, and the first lines left unscored."""
    return {
        "reason": f"{type(stop.cause).__name__}: {stop.cause}",
        "scored_responses": len(stop.records),
        "unscored_responses": len(stop.unscored_lines),
        "first_unscored_line": stop.first_unscored_line,
        "unscored_lines": stop.unscored_lines[:MAX_ISSUES_LISTED],
    }
