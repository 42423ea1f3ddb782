"""The legal evaluation's inputs: the four tasks and their rows (the reading itself: recipes/evaluation/inputs.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recipes.evaluation.inputs import (  # noqa: F401  (re-exported: the legal evaluation API names them here)
    MAX_ISSUES_LISTED,
    EvaluationInputError,
    LoadResult,
    Prediction,
    Rows,
    load_predictions,
    load_rows,
)

TASKS = ("charge", "article", "term", "verdict")


def task_of(data_source: str) -> str:
    """'legal/charge' → 'charge'; anything else raises EvaluationInputError."""
    prefix, _, task = str(data_source).partition("/")
    if prefix != "legal" or task not in TASKS:
        raise EvaluationInputError(f"unknown data_source {data_source!r}: expected one of legal/{{{','.join(TASKS)}}}")
    return task


def check_row(row: dict[str, Any]) -> None:
    """A row the legal evaluation can score: its data_source is one of the four tasks."""
    task_of(row["data_source"])


def load_data(path: str | Path) -> Rows:
    """Rows of a prepared legal parquet keyed by (data_source, extra_info.index); errors name the row and field."""
    return load_rows(path, check_row)
