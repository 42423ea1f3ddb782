"""What a recipe hands the judge audit and what comes back: pairs, probes, records and the recipe's AuditSpec.

Shared by the runner (recipes/audit/run.py) and the report (recipes/audit/report.py): the runner imports the report,
the report only this module, so the two no longer import each other.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from judge.client import JudgeConfig, JudgeResult

__all__ = ["AuditPair", "AuditRecord", "AuditSpec", "Probe", "Rows"]


@dataclass(frozen=True)
class AuditPair:
    """One judge question with a known right answer: a grade 0/1/2, or (a term_error question) a count of months."""

    task: str
    kind: str
    index: int  # extra_info.index of the data row whose gold is used
    gold: Any  # the recipe's gold object, as its ask function takes it
    prediction: str
    expected_grade: int | None = None
    expected_error: int | None = None  # a term_error question's true difference in months (legal term)
    variant: str = ""  # notation of the prediction, where the recipe varies it
    probe: bool = False


@dataclass(frozen=True)
class Probe:
    """A non-answer that must never score."""

    name: str
    text: str


@dataclass
class AuditRecord:
    """One judge question and its outcome."""

    pair: AuditPair
    value: int | None  # grade 0/1/2 or error months; None when unreadable or failed
    text: str
    latency_ms: float
    failed: bool
    error: str
    cache_hit: bool


Rows = Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class AuditSpec:
    """What a recipe hands the audit machinery."""

    recipe: str  # recipes/<recipe>/; every row's data_source must belong to it
    tasks: tuple[str, ...]  # report order
    kinds: Mapping[str, tuple[str, ...]]  # per task: the pair kinds, in report and sampling order
    default_config: str  # training config whose reward kwargs give the judge settings
    build_pairs: Callable[[Rows, int], tuple[list[AuditPair], dict[str, int]]]  # (rows, seed) → pairs, skips
    probe_pairs: Callable[[Rows, Sequence[Probe]], list[AuditPair]]  # every probe against gold of each task
    judge_config: Callable[[dict[str, Any]], JudgeConfig]  # reward kwargs → training's JudgeConfig (ValueError)
    ask: Callable[[AuditPair, JudgeConfig], Awaitable[JudgeResult]]  # the question training asks
    gold_text: Callable[[AuditPair], str]  # the gold shown in audit.json
    reaches_judge: Callable[[str], bool]  # whether training would send this answer to the judge at all
    advice: Callable[[dict[str, Any]], str]  # one line read from the figures
    # Per-task figures where a task's answer is not a grade (legal term): records → block; default grade_block.
    blocks: Mapping[str, Callable[[Sequence[AuditRecord]], dict[str, Any]]] = field(default_factory=dict)
    false_positive: Callable[[AuditRecord], bool] | None = None  # a probe that scored; default: grade 1 or 2
    detail: Callable[[str, str, dict[str, Any]], str] | None = None  # audit.md detail of a non-grade block
    extra_plots: Callable[[dict[str, Any], Sequence[AuditRecord], Path], list[str]] | None = None
    not_in_training: str = "no (training scores it without the judge)"  # audit.md note for such probes

    @property
    def prog(self) -> str:
        """The command that runs this audit."""
        return f"python -m recipes.{self.recipe}.audit_judge"
