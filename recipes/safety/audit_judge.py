"""Audit the safety recipe's reasoning grader before training: pairs with a certain grade, plus probes that must fail.

    python -m recipes.safety.audit_judge --data DIR/test.parquet [--judge-base-url URL] [--judge-model ID]
        [--config safety_grpo] [--n 400] [--seed 0] [--probes FILE] --out DIR

The judge settings are the training config's reward kwargs with reasoning_scorer=judge; ``--judge-base-url`` (or
env ``JUDGE_BASE_URL``) replaces its URL, ``--judge-model`` (or ``JUDGE_MODEL``) its model. Every question goes
through rewards.safety.ask_judge: the same client, prompts (data/domains/safety/judge_prompts.yaml) and cap as training.
Pairs: recipes/safety/audit_pairs.py; the shared probe set, runner and report: recipes/audit/. Writes
audit.json, audit.md and PNG plots into --out. Exit codes: 0 written; 1 the judge is unavailable; 2 bad input.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from data.domains.safety.parse import REASONING_CLOSE, REASONING_OPEN, extract_reasoning
from judge.client import JudgeConfig, JudgeResult
from recipes.audit import run as judge_audit
from recipes.audit.report import failure_head, pct, trusted
from recipes.audit.run import AuditPair, AuditSpec
from recipes.safety import audit_pairs

__all__ = ["SPEC", "advice", "judge_config", "main", "reaches_judge"]

DEFAULT_CONFIG = "safety_grpo"


def judge_config(kwargs: dict[str, Any]) -> JudgeConfig:
    """JudgeConfig as training builds it from these reward kwargs with reasoning_scorer=judge."""
    from rewards.safety import get_options

    options = get_options({**kwargs, "reasoning_scorer": "judge"})
    assert options.judge is not None  # reasoning_scorer=judge needs one, else get_options raised
    return options.judge


async def ask(pair: AuditPair, config: JudgeConfig) -> JudgeResult:
    """The question training asks about a reasoning (rewards.safety.ask_judge)."""
    from rewards.safety import ask_judge

    return await ask_judge(config, pair.gold.reasoning, pair.prediction)


def reaches_judge(prediction: str) -> bool:
    """Whether training would send this reasoning to the judge (an empty reasoning block scores 0 without a call)."""
    return extract_reasoning(f"{REASONING_OPEN}{prediction}{REASONING_CLOSE}") is not None


def advice(audit: dict[str, Any]) -> str:
    """One line read from the numbers: whether the judge can grade the reasoning, and which reasoning_scorer fits."""
    block = audit["tasks"].get(audit_pairs.TASK)
    if block is None or block["answered"] == 0:
        return "Advice: the judge answered no audit question — check the server before training."
    probes = audit["probes"]
    tail = f"probes {probes['false_positives']}/{probes['answered']} false positives"
    if trusted(block):
        return (
            f"Advice: {failure_head(audit)}trust the judge on the reasoning ({pct(block['accuracy'])}); {tail} "
            f"→ reasoning_scorer=judge fits."
        )
    why = pct(block["accuracy"])
    kinds = [(kb["accuracy"], kind) for kind, kb in block["kinds"].items() if kb["accuracy"] is not None]
    if kinds:
        worst_acc, worst = min(kinds)
        why += f", weakest on {worst} {pct(worst_acc)}"
    fp = block["probes"]["false_positives_reaching_training"]
    if fp:
        why += f", {fp} probe(s) scored"
    return (
        f"Advice: {failure_head(audit)}do not trust the judge on the reasoning ({why}); {tail} "
        f"→ reasoning_scorer=embedding or ngram until a judge passes this audit."
    )


SPEC = AuditSpec(
    recipe="safety",
    tasks=(audit_pairs.TASK,),
    kinds=audit_pairs.KINDS,
    default_config=DEFAULT_CONFIG,
    build_pairs=audit_pairs.build_pairs,
    probe_pairs=audit_pairs.probe_pairs,
    judge_config=judge_config,
    ask=ask,
    gold_text=lambda pair: pair.gold.reasoning,
    reaches_judge=reaches_judge,
    advice=advice,
    not_in_training="no (an empty reasoning scores 0 before the judge)",
)
"""The safety audit for the shared machinery (recipes/audit/run.py)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: 0 written, 1 judge unavailable, 2 bad input."""
    return judge_audit.main(SPEC, argv, description=__doc__.split("\n")[0])


if __name__ == "__main__":
    sys.exit(main())
