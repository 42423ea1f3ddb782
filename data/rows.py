"""verl rows for one case (one per task) and the explicit parquet schema every row follows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from data.sources.base import Case
from recipes.legal.tasks import build_prompt, data_source
from recipes.legal.terms import format_term

__all__ = ["FINE_ONLY", "ROW_SCHEMA", "build_rows", "format_articles", "format_charges", "ground_truth", "term_text"]

ROW_SCHEMA = pa.schema(
    [
        ("data_source", pa.string()),
        ("prompt", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
        ("ability", pa.string()),
        ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
        (
            "extra_info",
            pa.struct(
                [
                    ("index", pa.int64()),
                    ("task", pa.string()),
                    ("charges", pa.list_(pa.string())),
                    ("articles", pa.list_(pa.int64())),
                    ("term_kind", pa.string()),
                    ("term_months", pa.int64()),
                    ("fine", pa.int64()),
                    ("verdict", pa.string()),
                    ("split", pa.string()),
                    ("case_id", pa.string()),
                ]
            ),
        ),
    ]
)
"""The row contract (issue 3): same column types in every row and every file."""


def format_charges(charges: Sequence[str]) -> str:
    """Charge gold text: "盗窃罪、诈骗罪"."""
    return "、".join(charges)


def format_articles(articles: Sequence[int]) -> str:
    """Article gold text, Arabic numerals in ascending order: "第67条、第264条"."""
    return "、".join(f"第{a}条" for a in articles)


FINE_ONLY = "单处罚金"
"""Term gold of a sentence with a fine and no principal penalty (format_term would say 免予刑事处罚, which is wrong)."""


def term_text(case: Case) -> str:
    """Term gold text: format_term, except a fine-only sentence (kind none, fine > 0) reads 单处罚金."""
    if case.term.kind == "none" and case.fine > 0:
        return FINE_ONLY
    return format_term(case.term)


def ground_truth(case: Case, task: str) -> str:
    """The gold answer of one task as the text the judge reads."""
    if task == "charge":
        return format_charges(case.charges)
    if task == "article":
        return format_articles(case.articles)
    if task == "term":
        return term_text(case)
    if task == "verdict":
        return case.verdict
    raise ValueError(f"unknown task {task!r}")


def build_rows(case: Case, tasks: Sequence[str], template: str, split: str, first_index: int) -> list[dict[str, Any]]:
    """One row per task for this case; extra_info.index counts rows within the split from first_index."""
    rows = []
    for offset, task in enumerate(tasks):
        rows.append(
            {
                "data_source": data_source(task),
                "prompt": build_prompt(task, case.fact, template),
                "ability": "legal",
                "reward_model": {"style": "rule", "ground_truth": ground_truth(case, task)},
                "extra_info": {
                    "index": first_index + offset,
                    "task": task,
                    "charges": list(case.charges),
                    "articles": list(case.articles),
                    "term_kind": case.term.kind,
                    "term_months": case.term.months,
                    "fine": case.fine,
                    "verdict": case.verdict,
                    "split": split,
                    "case_id": case.case_id,
                },
            }
        )
    return rows
