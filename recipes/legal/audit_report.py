"""Judge-audit figures, report and advice: audit.json, audit.md and PNG plots from the audit records.

Definitions (failed calls are counted apart and stay out of every rate):
- charge / article / verdict: ``accuracy`` = share of answered pairs whose judge grade is the right one; it is the
  judge–rules agreement of recipes/legal/agreement.py (the right grade is the rules grade), so an unreadable grade
  is wrong. ``confusion[right][judged]`` counts answered pairs, judged ∈ 0 / 1 / 2 / unreadable.
- term, ``diff_<d>`` kinds: the judge's error against the true difference d: ``exact_rate`` (error == d; an
  unreadable error counts as not exact), ``mae_months`` = mean |error − d| and ``bias_months`` = mean (error − d)
  over readable errors; ``life_vs_fixed`` / ``death_vs_fixed``: passed when the judge pays no more than the rules'
  -1 (unreadable, or an error of 240 months or more). The term ``accuracy`` is over all its kinds.
- probes: a false positive is any grade 1 or 2 (a readable month error on the term task);
  ``false_positive_rate`` = false positives / answered probes. ``reaches_judge_in_training`` is false for a probe
  that training scores before any judge call (an empty answer); the advice counts only the probes that do.
- latency over answered calls that were not cache hits (mean, p50, p95, max in ms).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from recipes.legal.agreement import agreement_rate
from recipes.legal.audit_pairs import GRADE_SCORE, KINDS
from recipes.legal.tasks import TASKS
from rewards.format import extract_answer

__all__ = ["TRUST_ACCURACY", "advice", "compute_audit", "write_outputs"]

TRUST_ACCURACY = 0.9  # a task is trusted when the judge is right on at least this share of its pairs, no probe passes
MAX_FAILURE_RATE = 0.05  # above this share of failed calls the advice says to fix the server first
LIFE_DEATH_PASS_MONTHS = 240  # -(240)/240 = -1: the rules' score for a life/death answer to a fixed gold
GRADE_TASKS = ("charge", "article", "verdict")
_JUDGED = ("0", "1", "2", "unreadable")
_ROUND = 6


def _r(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, _ROUND)


def _mean(values: Iterable[float]) -> float | None:
    items = list(values)
    return sum(items) / len(items) if items else None


def _percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolation percentile (numpy's default), q in [0, 100]."""
    items = sorted(values)
    if not items:
        return None
    pos = (len(items) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return items[lo] + (items[hi] - items[lo]) * (pos - lo)


def _grade_block(records: Sequence[Any]) -> dict[str, Any]:
    """n, failures, accuracy (= judge–rules agreement) and the 3 × 4 confusion of grade pairs."""
    answered = [r for r in records if not r.failed]
    confusion = [[0] * len(_JUDGED) for _ in range(3)]
    for r in answered:
        col = r.value if r.value in (0, 1, 2) else 3
        confusion[r.pair.expected_grade][col] += 1
    pairs = [(GRADE_SCORE.get(r.value, 0.0), GRADE_SCORE[r.pair.expected_grade]) for r in answered]
    accuracy = agreement_rate(pairs)
    return {
        "n": len(records),
        "failures": len(records) - len(answered),
        "answered": len(answered),
        "accuracy": _r(accuracy),
        "judge_rules_agreement": _r(accuracy),
        "unreadable": sum(1 for r in answered if r.value not in (0, 1, 2)),
        "confusion": {"rows_right_grade": [0, 1, 2], "columns_judged": list(_JUDGED), "counts": confusion},
    }


def _term_correct(record: Any) -> bool:
    if record.pair.expected_error is not None:
        return record.value == record.pair.expected_error
    return record.value is None or record.value >= LIFE_DEATH_PASS_MONTHS


def _term_block(records: Sequence[Any]) -> dict[str, Any]:
    """n, failures, accuracy, and for diff pairs exact rate, MAE and bias against the true difference."""
    answered = [r for r in records if not r.failed]
    diffs = [r for r in answered if r.pair.expected_error is not None]
    readable = [r for r in diffs if r.value is not None]
    errors = [r.value - r.pair.expected_error for r in readable]
    return {
        "n": len(records),
        "failures": len(records) - len(answered),
        "answered": len(answered),
        "accuracy": _r(_mean(float(_term_correct(r)) for r in answered)),
        "exact_rate": _r(_mean(float(r.value == r.pair.expected_error) for r in diffs)),
        "mae_months": _r(_mean(abs(e) for e in errors)),
        "bias_months": _r(_mean(errors)),
        "unreadable": sum(1 for r in answered if r.value is None),
        "readable_diff_pairs": len(readable),
    }


def _reaches_judge(prediction: str) -> bool:
    """Whether training would send this answer to the judge (an empty <answer> scores -2 before any call)."""
    return extract_answer(f"</think><answer>{prediction}</answer>") is not None


def _probe_block(records: Sequence[Any]) -> dict[str, Any]:
    answered = [r for r in records if not r.failed]
    fps = [r for r in answered if _false_positive(r)]
    return {
        "n": len(records),
        "failures": len(records) - len(answered),
        "answered": len(answered),
        "false_positives": len(fps),
        "false_positive_rate": _r(len(fps) / len(answered)) if answered else None,
        "false_positives_reaching_training": sum(1 for r in fps if _reaches_judge(r.pair.prediction)),
    }


def _false_positive(record: Any) -> bool:
    if record.pair.task == "term":
        return record.value is not None
    return record.value in (1, 2)


def _latency(records: Sequence[Any]) -> dict[str, Any]:
    values = [r.latency_ms for r in records if not r.failed and not r.cache_hit]
    return {
        "n": len(values),
        "mean_ms": _r(_mean(values)),
        "p50_ms": _r(_percentile(values, 50)),
        "p95_ms": _r(_percentile(values, 95)),
        "max_ms": _r(max(values) if values else None),
    }


def compute_audit(records: Sequence[Any]) -> dict[str, Any]:
    """The audit.json body (without the run description): tasks, kinds, probes, latency, failures, advice."""
    pairs = [r for r in records if not r.pair.probe]
    probes = [r for r in records if r.pair.probe]
    tasks: dict[str, Any] = {}
    for task in TASKS:
        mine = [r for r in pairs if r.pair.task == task]
        block = _term_block if task == "term" else _grade_block
        if not mine:
            continue
        tasks[task] = block(mine)
        tasks[task]["kinds"] = {
            kind: block([r for r in mine if r.pair.kind == kind])
            for kind in KINDS[task]
            if any(r.pair.kind == kind for r in mine)
        }
        tasks[task]["probes"] = _probe_block([r for r in probes if r.pair.task == task])
    by_probe: dict[str, Any] = {}
    for name in dict.fromkeys(r.pair.kind for r in probes):
        mine = [r for r in probes if r.pair.kind == name]
        by_probe[name] = {
            **_probe_block(mine),
            "false_positive_tasks": [r.pair.task for r in mine if not r.failed and _false_positive(r)],
            "reaches_judge_in_training": _reaches_judge(mine[0].pair.prediction),
        }
    failed = [r for r in records if r.failed]
    errors = Counter(r.error or "unknown" for r in failed)
    out: dict[str, Any] = {
        "n_questions": len(records),
        "n_pairs": len(pairs),
        "n_probes": len(probes),
        "tasks": tasks,
        "probes": {**_probe_block(probes), "by_probe": by_probe},
        "latency": _latency(records),
        "failures": {
            "n": len(failed),
            "rate": _r(len(failed) / len(records)) if records else None,
            "errors": dict(errors.most_common(5)),
        },
    }
    out["advice"] = advice(out)
    return out


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def advice(audit: dict[str, Any]) -> str:
    """One line read from the numbers: which tasks the judge can be trusted on and which reward mode fits."""
    tasks = audit["tasks"]
    trusted, doubtful = [], []
    for task, block in tasks.items():
        acc, fp = block["accuracy"], block["probes"]["false_positives_reaching_training"]
        if acc is not None and acc >= TRUST_ACCURACY and fp == 0:
            trusted.append(f"{task} {_pct(acc)}")
            continue
        why = f"{_pct(acc)}"
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
    head = ""
    rate = audit["failures"]["rate"]
    if rate is not None and rate > MAX_FAILURE_RATE:
        head = f"{_pct(rate)} of judge calls failed — fix the server first; "
    return (
        f"Advice: {head}trust the judge on {', '.join(trusted) or 'no task'}; "
        f"not on {', '.join(d for _, d in doubtful) or 'none'}; "
        f"probes {probes['false_positives']}/{probes['answered']} false positives → {mode}."
    )


# ---------------------------------------------------------------------------------------------------- outputs


def _record_json(record: Any) -> dict[str, Any]:
    p = record.pair
    return {
        "task": p.task,
        "kind": p.kind,
        "probe": p.probe,
        "index": p.index,
        "variant": p.variant,
        "gold": p.gold.text,
        "prediction": p.prediction,
        "expected_grade": p.expected_grade,
        "expected_error": p.expected_error,
        "judged": record.value,
        "judge_text": record.text,
        "failed": record.failed,
        "error": record.error,
        "latency_ms": round(record.latency_ms, 3),
        "cache_hit": record.cache_hit,
    }


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} ms"


def _md(audit: dict[str, Any]) -> str:
    lines = ["# Judge audit", "", audit["advice"], ""]
    run = audit.get("run", {})
    if run:
        lines += [
            f"Judge {', '.join(run.get('judge_base_urls', []))} (model {run.get('judge_model') or 'discovered'}); "
            f"data {run.get('data')}: {audit['n_pairs']} pairs + {audit['n_probes']} probes; "
            f"skipped {run.get('skipped') or 'none'}.",
            "",
        ]
    lines += ["| task | kind | n | failed | accuracy | details |", "| --- | --- | --- | --- | --- | --- |"]
    for task, block in audit["tasks"].items():
        for kind, kb in [("all", block), *block["kinds"].items()]:
            if task == "term" and kind in ("life_vs_fixed", "death_vs_fixed"):
                detail = f"passed: unreadable or >= {LIFE_DEATH_PASS_MONTHS} months ({kb['unreadable']} unreadable)"
            elif task == "term":
                detail = f"exact {_pct(kb['exact_rate'])}, MAE {kb['mae_months']}, bias {kb['bias_months']}"
            else:
                detail = f"confusion {kb['confusion']['counts']}"
            lines.append(f"| {task} | {kind} | {kb['n']} | {kb['failures']} | {_pct(kb['accuracy'])} | {detail} |")
    lines += ["", "Confusion rows: right grade 0/1/2; columns: judged 0/1/2/unreadable.", ""]
    lines += ["## Probes (must never score)", "", "| probe | answered | false positives | tasks | in training |"]
    lines += ["| --- | --- | --- | --- | --- |"]
    for name, pb in audit["probes"]["by_probe"].items():
        tasks = ", ".join(pb["false_positive_tasks"]) or "—"
        seen = "yes" if pb["reaches_judge_in_training"] else "no (scored -2 before the judge)"
        lines.append(f"| {name} | {pb['answered']} | {pb['false_positives']} | {tasks} | {seen} |")
    lat, fail = audit["latency"], audit["failures"]
    lines += [
        "",
        f"Probe false-positive rate: {_pct(audit['probes']['false_positive_rate'])} "
        f"({audit['probes']['false_positives']}/{audit['probes']['answered']}).",
        f"Latency (uncached answers, n={lat['n']}): mean {_ms(lat['mean_ms'])}, p50 {_ms(lat['p50_ms'])}, "
        f"p95 {_ms(lat['p95_ms'])}, max {_ms(lat['max_ms'])}.",
        f"Failures: {fail['n']} ({_pct(fail['rate'])}) {fail['errors'] or ''}",
        "",
        "Plots: accuracy.png, confusion.png, term_error.png, probes.png, latency.png. Every question: audit.json.",
        "",
    ]
    return "\n".join(lines)


def _plots(audit: dict[str, Any], records: Sequence[Any], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    rows = [(f"{t}/{k}", kb["accuracy"]) for t, b in audit["tasks"].items() for k, kb in b["kinds"].items()]
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(rows) + 1.2))
    ax.barh([r[0] for r in rows], [r[1] or 0.0 for r in rows], color="tab:blue")
    ax.axvline(TRUST_ACCURACY, color="tab:red", linestyle="--", label=f"trust {TRUST_ACCURACY:.0%}")
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_xlabel("judge accuracy")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "accuracy.png", dpi=100)
    plt.close(fig)
    written.append("accuracy.png")

    grade = [t for t in GRADE_TASKS if t in audit["tasks"]]
    if grade:
        fig, axes = plt.subplots(1, len(grade), figsize=(3.6 * len(grade), 3.2), squeeze=False)
        for ax, task in zip(axes[0], grade, strict=True):
            counts = audit["tasks"][task]["confusion"]["counts"]
            ax.imshow(counts, cmap="Blues")
            for i, row in enumerate(counts):
                for j, value in enumerate(row):
                    ax.text(j, i, str(value), ha="center", va="center")
            ax.set_xticks(range(len(_JUDGED)), ["0", "1", "2", "?"])
            ax.set_yticks(range(3), ["0", "1", "2"])
            ax.set_xlabel("judged")
            ax.set_ylabel("right grade")
            ax.set_title(task)
        fig.tight_layout()
        fig.savefig(out / "confusion.png", dpi=100)
        plt.close(fig)
        written.append("confusion.png")

    diffs = [r for r in records if not r.pair.probe and r.pair.expected_error is not None and r.value is not None]
    if diffs:
        fig, ax = plt.subplots(figsize=(5, 4))
        xs = [r.pair.expected_error + ((i % 5) - 2) * 0.3 for i, r in enumerate(diffs)]
        ax.scatter(xs, [r.value for r in diffs], s=12, alpha=0.6)
        top = max(max(r.value for r in diffs), max(r.pair.expected_error for r in diffs)) + 3
        ax.plot([0, top], [0, top], color="tab:red", linestyle="--", label="judge = truth")
        term = audit["tasks"]["term"]
        ax.set_title(f"term error: MAE {term['mae_months']} months, bias {term['bias_months']}")
        ax.set_xlabel("true difference (months)")
        ax.set_ylabel("judge's error (months)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "term_error.png", dpi=100)
        plt.close(fig)
        written.append("term_error.png")

    by_probe = audit["probes"]["by_probe"]
    if by_probe:
        fig, ax = plt.subplots(figsize=(7, 0.3 * len(by_probe) + 1.2))
        ax.barh(list(by_probe), [p["false_positive_rate"] or 0.0 for p in by_probe.values()], color="tab:orange")
        ax.set_xlim(0, 1)
        ax.invert_yaxis()
        ax.set_xlabel("false-positive rate (share of tasks where the probe scored)")
        fig.tight_layout()
        fig.savefig(out / "probes.png", dpi=100)
        plt.close(fig)
        written.append("probes.png")

    latencies = [r.latency_ms for r in records if not r.failed and not r.cache_hit]
    if latencies:
        fig, ax = plt.subplots(figsize=(5, 3.2))
        ax.hist(latencies, bins=min(30, max(5, len(latencies) // 5)), color="tab:green")
        ax.set_xlabel("judge latency (ms)")
        ax.set_ylabel("calls")
        fig.tight_layout()
        fig.savefig(out / "latency.png", dpi=100)
        plt.close(fig)
        written.append("latency.png")
    return written


def write_outputs(audit: dict[str, Any], records: Sequence[Any], out: Path) -> None:
    """audit.json (figures + every question), audit.md and the plots into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    audit["plots"] = _plots(audit, records, out)
    body = {**audit, "records": [_record_json(r) for r in records]}
    (out / "audit.json").write_text(json.dumps(body, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    (out / "audit.md").write_text(_md(audit), encoding="utf-8")
