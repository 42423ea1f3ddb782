"""Audit the legal LLM judge before training: grade pairs whose right answer the rules know, plus probes that must fail.

    python -m recipes.legal.audit_judge --data DIR/test.parquet [--judge-base-url URL] [--judge-model ID]
        [--config legal_grpo] [--n 400] [--seed 0] [--probes FILE] --out DIR

The judge settings are the training config's reward kwargs (``--config``, composed like training composes it, with
mode=judge); ``--judge-base-url`` (or env ``JUDGE_BASE_URL``) replaces its URL, ``--judge-model`` (or
``JUDGE_MODEL``) its model. Every question goes through rewards.legal.ask_judge: the same client, prompts and gold
text as training. Pairs: recipes/legal/audit_pairs.py; the legal figures and advice: recipes/legal/audit_report.py;
the shared probe set, runner and report: recipes/audit/. Writes audit.json, audit.md and PNG plots into
--out. Exit codes: 0 written; 1 the judge is unavailable (one line says where); 2 bad input.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from data.domains.legal.tasks import TASKS
from judge.client import JudgeConfig, JudgeResult
from recipes.audit import run as judge_audit
from recipes.audit.run import AuditInputError, AuditPair, AuditRecord, AuditSpec
from recipes.legal import audit_pairs, audit_report

__all__ = ["SPEC", "AuditInputError", "AuditRecord", "ask_all", "judge_config", "main"]

DEFAULT_CONFIG = "legal_grpo"


def judge_config(kwargs: dict[str, Any]) -> JudgeConfig:
    """JudgeConfig as training builds it from these reward kwargs in mode=judge (ValueError names a bad kwarg)."""
    from rewards.legal import get_options

    options = get_options({**kwargs, "mode": "judge"})
    assert options.judge is not None  # mode=judge needs one, else get_options raised
    return options.judge


async def ask(pair: AuditPair, config: JudgeConfig) -> JudgeResult:
    """The question training asks for the pair's task (rewards.legal.ask_judge)."""
    from rewards.legal import ask_judge

    return await ask_judge(pair.task, pair.prediction, pair.gold, config)


SPEC = AuditSpec(
    recipe="legal",
    tasks=TASKS,
    kinds=audit_pairs.KINDS,
    default_config=DEFAULT_CONFIG,
    build_pairs=audit_pairs.build_pairs,
    probe_pairs=audit_pairs.probe_pairs,
    judge_config=judge_config,
    ask=ask,
    gold_text=lambda pair: pair.gold.text,
    reaches_judge=audit_report.reaches_judge,
    advice=audit_report.advice,
    blocks={
        "charge": audit_report.legal_grade_block,
        "article": audit_report.legal_grade_block,
        "verdict": audit_report.legal_grade_block,
        "term": audit_report.term_block,
    },
    false_positive=audit_report.false_positive,
    detail=audit_report.term_detail,
    extra_plots=audit_report.term_plot,
    not_in_training="no (scored -2 before the judge)",
)
"""The legal audit for the shared machinery (recipes/audit/run.py)."""


async def ask_all(pairs: Sequence[AuditPair], config: JudgeConfig) -> list[AuditRecord]:
    """Every pair through rewards.legal.ask_judge; records in input order."""
    return await judge_audit.ask_all(pairs, config, ask)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: 0 written, 1 judge unavailable, 2 bad input."""
    return judge_audit.main(SPEC, argv, description=__doc__.split("\n")[0])


if __name__ == "__main__":
    sys.exit(main())
