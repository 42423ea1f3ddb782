"""A run's files as the offline report reads them: verl's file-logger metrics and its rollout and validation dumps.

- metrics: verl's ``file`` logger JSONL, one ``{"step": N, "data": {key: value}}`` per line (``VERL_FILE_LOGGER_PATH``;
  ``metrics.jsonl`` of a CPU-loop run). A step logged twice (a resumed run validates at its first step) merges, the
  later value of a key winning.
- rollouts: ``trainer.rollout_data_dir``, one ``<step>.jsonl`` per training step, a row per response (input, output,
  gts, score, step, data_source, every reward part; recipes.trainer.main_ppo).
- validation: ``trainer.validation_data_dir`` (our configs: ``<rollout_data_dir>/validation``), one ``<step>.jsonl``
  per validation, the same row shape plus ``in_table`` (recipes.trainer.val_generations).

A line that is not a JSON object of the expected shape (a torn last line of a killed run, stray bytes) is skipped and
counted with its file and line number, never fatal; only a missing metrics file stops the report.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["METRICS_FILE", "Metrics", "RunFiles", "RunFilesError", "Skipped", "locate", "read_metrics", "read_rows"]

METRICS_FILE = "metrics.jsonl"  # a CPU-loop run's metrics (recipes.rehearsal.rehearse_loop)
ROLLOUTS_DIR = "rollouts"
VALIDATION_DIR = "validation"  # under the rollout directory (configs/base/*.yaml trainer.validation_data_dir)
STEP_FILE = re.compile(r"^(\d{1,9})\.jsonl$")


class RunFilesError(ValueError):
    """The run's files cannot be read (the message names the file and what to pass instead)."""


@dataclass
class Skipped:
    """Lines left out of one file: how many, and the first few line numbers with why."""

    path: Path
    count: int = 0
    first: list[str] = field(default_factory=list)

    def add(self, line_no: int, why: str) -> None:
        """Count one bad line (the first five are kept for the message)."""
        self.count += 1
        if len(self.first) < 5:
            self.first.append(f"line {line_no}: {why}")

    def line(self) -> str:
        """One line for the report: file, count, the first reasons."""
        return f"{self.path}: {self.count} unreadable line(s) skipped ({'; '.join(self.first)})"


@dataclass(frozen=True)
class RunFiles:
    """Where a run's metrics, rollout dumps and validation dumps are (None: not there)."""

    metrics: Path
    rollouts: Path | None
    validation: Path | None

    def rollout_steps(self) -> list[int]:
        """Steps with a rollout dump, ascending."""
        return _steps(self.rollouts)

    def validation_steps(self) -> list[int]:
        """Steps with a validation dump, ascending."""
        return _steps(self.validation)


def _steps(directory: Path | None) -> list[int]:
    if directory is None or not directory.is_dir():
        return []
    return sorted(int(m.group(1)) for p in directory.iterdir() if p.is_file() and (m := STEP_FILE.match(p.name)))


def locate(run: str | Path, rollouts: str | Path | None = None, validation: str | Path | None = None) -> RunFiles:
    """The run's files: ``run`` is a run directory (metrics.jsonl, rollouts/) or a metrics JSONL file.

    ``rollouts`` / ``validation`` override the dump directories (default: <run>/rollouts, <rollouts>/validation).
    """
    path = Path(run)
    if path.is_dir():
        metrics = path / METRICS_FILE
        default_rollouts: Path | None = path / ROLLOUTS_DIR
    else:
        metrics, default_rollouts = path, None
    if not metrics.is_file():
        raise RunFilesError(
            f"no metrics file at {metrics}: --run takes a run directory holding {METRICS_FILE} (python -m "
            "recipes.rehearse --out DIR) or a verl file-logger JSONL (VERL_FILE_LOGGER_PATH) with --rollouts DIR"
        )
    roll = Path(rollouts) if rollouts is not None else default_rollouts
    if roll is not None and not roll.is_dir():
        if rollouts is not None:
            raise RunFilesError(f"no rollout directory at {roll} (--rollouts: the run's trainer.rollout_data_dir)")
        roll = None
    val = Path(validation) if validation is not None else (roll / VALIDATION_DIR if roll is not None else None)
    if val is not None and not val.is_dir():
        if validation is not None:
            raise RunFilesError(f"no validation directory at {val} (--validation: trainer.validation_data_dir)")
        val = None
    return RunFiles(metrics=metrics, rollouts=roll, validation=val)


def _json_lines(path: Path, skipped: Skipped) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each line of path that is a JSON object; the others are counted in skipped."""
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except ValueError:
                skipped.add(line_no, "not JSON (a torn or cut line)")
                continue
            if not isinstance(value, dict):
                skipped.add(line_no, f"a JSON {type(value).__name__}, not an object")
                continue
            yield line_no, value


def _number(value: Any) -> float | None:
    """A finite float, or None (bools, strings, NaN and infinities are not plotted)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


@dataclass
class Metrics:
    """Every logged key's values by step."""

    series: dict[str, dict[int, float]] = field(default_factory=dict)
    records: int = 0

    def steps(self) -> list[int]:
        """Every step that logged anything, ascending."""
        return sorted({step for values in self.series.values() for step in values})

    def values(self, key: str) -> tuple[list[int], list[float]]:
        """(steps, values) of one key, by step; empty when it was never logged."""
        points = sorted(self.series.get(key, {}).items())
        return [s for s, _ in points], [v for _, v in points]


def read_metrics(path: Path) -> tuple[Metrics, Skipped]:
    """The metrics of a verl file-logger JSONL, and the lines left out."""
    skipped = Skipped(path)
    metrics = Metrics()
    for line_no, record in _json_lines(path, skipped):
        step, data = record.get("step"), record.get("data")
        if isinstance(step, bool) or not isinstance(step, int) or not isinstance(data, dict):
            skipped.add(line_no, 'not a {"step": int, "data": {...}} record')
            continue
        metrics.records += 1
        for key, raw in data.items():
            value = _number(raw)
            if value is not None:
                metrics.series.setdefault(str(key), {})[step] = value
    return metrics, skipped


def read_rows(directory: Path, step: int) -> tuple[list[dict[str, Any]], Skipped]:
    """The rows of one dump file (<directory>/<step>.jsonl), and the lines left out."""
    path = directory / f"{step}.jsonl"
    skipped = Skipped(path)
    return [row for _, row in _json_lines(path, skipped)], skipped
