"""The legal judge audit's own figures and advice; the shared ones are recipes/audit/report.py's.

Definitions (failed calls are counted apart and stay out of every rate):
- charge / article / verdict: ``accuracy`` = share of answered pairs whose judge grade is the right one; it is the
  judge–rules agreement of data/domains/legal/agreement.py (the right grade is the rules grade), so an unreadable grade
  is wrong. ``confusion[right][judged]`` counts answered pairs, judged ∈ 0 / 1 / 2 / unreadable.
- term, ``diff_<d>`` kinds: the judge's error against the true difference d: ``exact_rate`` (error == d; an
  unreadable error counts as not exact), ``mae_months`` = mean |error − d| and ``bias_months`` = mean (error − d)
  over readable errors; ``life_vs_fixed`` / ``death_vs_fixed``: passed when the judge pays no more than the rules'
  -1 (unreadable, or an error of 240 months or more). The term ``accuracy`` is over all its kinds.
- probes: a false positive is any grade 1 or 2 (a readable month error on the term task).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from data.domains.legal.agreement import agreement_rate
from recipes.audit.report import TRUST_ACCURACY, failure_head, grade_block, mean, pct, rounded, trusted
from recipes.audit.run import AuditRecord
from recipes.legal.audit_pairs import GRADE_SCORE
from rewards.format import extract_answer

__all__ = [
    "LIFE_DEATH_PASS_MONTHS",
    "TRUST_ACCURACY",
    "advice",
    "false_positive",
    "legal_grade_block",
    "reaches_judge",
    "term_block",
    "spread",
    "term_detail",
    "term_plot",
]

LIFE_DEATH_PASS_MONTHS = 240  # -(240)/240 = -1: the rules' score for a life/death answer to a fixed gold


def _agreement(pairs: Sequence[tuple[int | None, int]]) -> float | None:
    """Judge–rules agreement on the reward's task-score scale (an unreadable grade scores 0: never agrees)."""
    return agreement_rate((GRADE_SCORE.get(judged, 0.0), GRADE_SCORE[right]) for judged, right in pairs)


def legal_grade_block(records: Sequence[AuditRecord]) -> dict[str, Any]:
    """The shared grade block with accuracy = judge–rules agreement (also under that name)."""
    block = grade_block(records, accuracy=_agreement)
    block["judge_rules_agreement"] = block["accuracy"]
    return block


def _term_correct(record: AuditRecord) -> bool:
    if record.pair.expected_error is not None:
        return record.value == record.pair.expected_error
    return record.value is None or record.value >= LIFE_DEATH_PASS_MONTHS


def term_block(records: Sequence[AuditRecord]) -> dict[str, Any]:
    """n, failures, accuracy, and for diff pairs exact rate, MAE and bias against the true difference."""
    answered = [r for r in records if not r.failed]
    diffs = [r for r in answered if r.pair.expected_error is not None]
    readable = [r for r in diffs if r.value is not None]
    errors = [r.value - r.pair.expected_error for r in readable]
    return {
        "n": len(records),
        "failures": len(records) - len(answered),
        "answered": len(answered),
        "accuracy": rounded(mean(float(_term_correct(r)) for r in answered)),
        "exact_rate": rounded(mean(float(r.value == r.pair.expected_error) for r in diffs)),
        "mae_months": rounded(mean(abs(e) for e in errors)),
        "bias_months": rounded(mean(errors)),
        "unreadable": sum(1 for r in answered if r.value is None),
        "readable_diff_pairs": len(readable),
    }


def reaches_judge(prediction: str) -> bool:
    """Whether training would send this answer to the judge (an empty <answer> scores -2 before any call)."""
    return extract_answer(f"</think><answer>{prediction}</answer>") is not None


def false_positive(record: AuditRecord) -> bool:
    """A probe that scored: a readable month error on the term task, else a grade 1 or 2."""
    if record.pair.task == "term":
        return record.value is not None
    return record.value in (1, 2)


def term_detail(task: str, kind: str, block: dict[str, Any]) -> str:
    """audit.md detail of a term block."""
    if kind in ("life_vs_fixed", "death_vs_fixed"):
        return f"passed: unreadable or >= {LIFE_DEATH_PASS_MONTHS} months ({block['unreadable']} unreadable)"
    return f"exact {pct(block['exact_rate'])}, MAE {block['mae_months']}, bias {block['bias_months']}"


def spread(values: Sequence[float], width: float = 0.6) -> list[float]:
    """x offsets that put equal values side by side: the i-th of m equal values at (i − (m−1)/2)·width/m."""
    seen: dict[float, int] = {}
    totals: dict[float, int] = {}
    for v in values:
        totals[v] = totals.get(v, 0) + 1
    out = []
    for v in values:
        i, m = seen.get(v, 0), totals[v]
        seen[v] = i + 1
        out.append((i - (m - 1) / 2) * width / m)
    return out


def term_plot(audit: dict[str, Any], records: Sequence[AuditRecord], out: Path) -> list[str]:
    """term_error.png: the judge's error per true difference, a box per difference with every pair's point beside.

    One column per true difference (0, 3, 12, 36 months …): a box of the judge's readable errors, each pair a dot
    (equal errors spread sideways, never drawn on top of each other) and the true difference as a red bar.
    """
    asked = [r for r in records if not r.pair.probe and r.pair.expected_error is not None and not r.failed]
    diffs = [r for r in asked if r.value is not None]
    if not diffs:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    truths = sorted({r.pair.expected_error for r in asked})  # a difference whose answers were all unreadable too
    unreadable = {d: sum(r.pair.expected_error == d and r.value is None for r in asked) for d in truths}
    fig, ax = plt.subplots(figsize=(max(5.0, 1.4 * len(truths) + 1.5), 4.2))
    for i, truth in enumerate(truths):
        errors = [float(r.value) for r in diffs if r.pair.expected_error == truth]
        if errors:
            ax.boxplot([errors], positions=[i], widths=0.7, showfliers=False, medianprops={"color": "tab:blue"})
            ax.scatter([i + dx for dx in spread(errors)], errors, s=14, alpha=0.8, color="tab:blue", zorder=5)
        ax.hlines(truth, i - 0.42, i + 0.42, color="tab:red", linestyle="--", zorder=4)
    ax.plot([], [], color="tab:red", linestyle="--", label="true difference")
    labels = [
        f"{d} months\n(n={sum(r.pair.expected_error == d for r in diffs)}"
        + (f", {unreadable[d]} unreadable)" if unreadable[d] else ")")
        for d in truths
    ]
    ax.set_xticks(range(len(truths)), labels, fontsize=8)
    ax.set_xlim(-0.6, len(truths) - 0.4)
    term = audit["tasks"]["term"]
    summary = f"MAE {term['mae_months']:.1f} months, bias {term['bias_months']:+.1f}"  # diffs: readable errors exist
    ax.set_title(f"judge's term error against the true difference: {summary}", fontsize=10)
    ax.set_xlabel("true difference between answer and gold")
    ax.set_ylabel("judge's error (months)")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(out / "term_error.png", dpi=100)
    plt.close(fig)
    return ["term_error.png"]


def advice(audit: dict[str, Any]) -> str:
    """One line read from the numbers: which tasks the judge can be trusted on and which reward mode fits."""
    tasks = audit["tasks"]
    trusted_tasks, doubtful = [], []
    for task, block in tasks.items():
        acc, fp = block["accuracy"], block["probes"]["false_positives_reaching_training"]
        if trusted(block):
            trusted_tasks.append(f"{task} {pct(acc)}")
            continue
        why = f"{pct(acc)}"
        if task == "term" and block["mae_months"] is not None:
            why += f", MAE {block['mae_months']:.1f} months, bias {block['bias_months']:+.1f}"
        if fp:
            why += f", {fp} probe(s) scored"
        doubtful.append((task, f"{task} ({why})"))
    names = {t for t, _ in doubtful}
    probes = audit["probes"]
    if not tasks or all(b["answered"] == 0 for b in tasks.values()):
        return "Advice: the judge answered no audit question — check the server before training."
    if not names:
        mode = "mode=judge fits (the original recipe); hybrid gives the same grades with fewer judge calls"
    elif "verdict" in names:
        mode = "mode=rules (hybrid and judge both leave every verdict to the judge)"
    else:
        rules_for = ", ".join(sorted(names & {"term", "charge", "article"}))
        mode = f"mode=hybrid (rules for {rules_for} where the labels are known; the judge for verdicts)"
    return (
        f"Advice: {failure_head(audit)}trust the judge on {', '.join(trusted_tasks) or 'no task'}; "
        f"not on {', '.join(d for _, d in doubtful) or 'none'}; "
        f"probes {probes['false_positives']}/{probes['answered']} false positives → {mode}."
    )
