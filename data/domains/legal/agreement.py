"""Judge–rules agreement: one definition, used by training (rewards/legal.py audits), evaluate and the judge audit.

Both graders are compared on the reward's task-score scale: the judge's grade 0/1/2 mapped to -2/+1/+2 (an
unreadable grade scores 0), the rules' set/verdict score -2/+1/+2. They agree when the two task scores are equal,
so an unreadable judge grade never agrees. Only tasks whose judge answer is a grade take part: the term judge gives
an error in months, which hybrid mode never uses (rules always score the term), so it is audited apart
(``python -m recipes.legal.audit_judge``: MAE and bias against the true difference).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = ["AGREEMENT_TASKS", "agreement_rate", "scores_agree"]

AGREEMENT_TASKS: tuple[str, ...] = ("charge", "article", "verdict")
"""Tasks whose judge grade lives on the same -2/+1/+2 scale as the rules grade."""


def scores_agree(judge_task_score: float, rules_task_score: float) -> bool:
    """Whether the judge's and the rules' task scores for one response are the same grade."""
    return math.isclose(float(judge_task_score), float(rules_task_score), abs_tol=1e-9)


def agreement_rate(pairs: Iterable[tuple[float, float]]) -> float | None:
    """Share of (judge_task_score, rules_task_score) pairs that agree; None without pairs."""
    flags = [scores_agree(j, r) for j, r in pairs]
    return sum(flags) / len(flags) if flags else None
