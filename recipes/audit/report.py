"""Judge-audit figures and outputs shared by the recipes: audit.json, audit.md and PNG plots from the records.

Definitions (failed calls are counted apart and stay out of every rate):
- a grade task: ``accuracy`` = share of answered pairs whose judge grade is the right one (an unreadable grade is
  wrong); ``confusion[right][judged]`` counts answered pairs, judged ∈ 0 / 1 / 2 / unreadable. A recipe may give a
  task its own block (the legal term task: error in months against the true difference).
- probes: a false positive is a probe that scored (by default any grade 1 or 2); ``false_positive_rate`` = false
  positives / answered probes. ``reaches_judge_in_training`` is false for a probe that training scores before any
  judge call (an empty answer); the advice counts only the probes that do.
- latency over answered calls that were not cache hits (mean, p50, p95, max in ms).
The advice line is the recipe's (AuditSpec.advice); ``failure_head`` and ``trust`` are the parts they share.
audit.md prints each grade task's confusion as a Markdown table; every plot has a title, and every bar carries its
value (a 0% bar reads "0%", a kind with no answered pair "n/a").
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from recipes.audit.spec import AuditRecord, AuditSpec

__all__ = [
    "MAX_FAILURE_RATE",
    "TRUST_ACCURACY",
    "compute_audit",
    "failure_head",
    "grade_block",
    "mean",
    "pct",
    "rounded",
    "trusted",
    "write_outputs",
]

TRUST_ACCURACY = 0.9  # a task is trusted when the judge is right on at least this share of its pairs, no probe passes
MAX_FAILURE_RATE = 0.05  # above this share of failed calls the advice says to fix the server first
JUDGED = ("0", "1", "2", "unreadable")
_ROUND = 6


def rounded(value: float | None) -> float | None:
    """value rounded for audit.json; None for None or a non-finite value."""
    return None if value is None or not math.isfinite(value) else round(value, _ROUND)


def mean(values: Iterable[float]) -> float | None:
    """Arithmetic mean; None without values."""
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


def _exact_share(pairs: Sequence[tuple[int | None, int]]) -> float | None:
    return mean(float(judged == right) for judged, right in pairs)


def grade_block(
    records: Sequence[AuditRecord],
    accuracy: Callable[[Sequence[tuple[int | None, int]]], float | None] = _exact_share,
) -> dict[str, Any]:
    """n, failures, accuracy over (judged, right) grade pairs, unreadable count and the 3 × 4 confusion."""
    answered = [r for r in records if not r.failed]
    confusion = [[0] * len(JUDGED) for _ in range(3)]
    for r in answered:
        col = r.value if r.value in (0, 1, 2) else 3
        confusion[r.pair.expected_grade][col] += 1
    return {
        "n": len(records),
        "failures": len(records) - len(answered),
        "answered": len(answered),
        "accuracy": rounded(accuracy([(r.value, r.pair.expected_grade) for r in answered])),
        "unreadable": sum(1 for r in answered if r.value not in (0, 1, 2)),
        "confusion": {"rows_right_grade": [0, 1, 2], "columns_judged": list(JUDGED), "counts": confusion},
    }


def _grade_false_positive(record: AuditRecord) -> bool:
    return record.value in (1, 2)


def _probe_block(records: Sequence[AuditRecord], spec: AuditSpec) -> dict[str, Any]:
    is_fp = spec.false_positive or _grade_false_positive
    answered = [r for r in records if not r.failed]
    fps = [r for r in answered if is_fp(r)]
    return {
        "n": len(records),
        "failures": len(records) - len(answered),
        "answered": len(answered),
        "false_positives": len(fps),
        "false_positive_rate": rounded(len(fps) / len(answered)) if answered else None,
        "false_positives_reaching_training": sum(1 for r in fps if spec.reaches_judge(r.pair.prediction)),
    }


def _latency(records: Sequence[AuditRecord]) -> dict[str, Any]:
    values = [r.latency_ms for r in records if not r.failed and not r.cache_hit]
    return {
        "n": len(values),
        "mean_ms": rounded(mean(values)),
        "p50_ms": rounded(_percentile(values, 50)),
        "p95_ms": rounded(_percentile(values, 95)),
        "max_ms": rounded(max(values) if values else None),
    }


def compute_audit(records: Sequence[AuditRecord], spec: AuditSpec) -> dict[str, Any]:
    """The audit.json body (without the run description): tasks, kinds, probes, latency, failures, advice."""
    pairs = [r for r in records if not r.pair.probe]
    probes = [r for r in records if r.pair.probe]
    is_fp = spec.false_positive or _grade_false_positive
    tasks: dict[str, Any] = {}
    for task in spec.tasks:
        mine = [r for r in pairs if r.pair.task == task]
        if not mine:
            continue
        block = spec.blocks.get(task, grade_block)
        tasks[task] = block(mine)
        tasks[task]["kinds"] = {
            kind: block([r for r in mine if r.pair.kind == kind])
            for kind in spec.kinds[task]
            if any(r.pair.kind == kind for r in mine)
        }
        tasks[task]["probes"] = _probe_block([r for r in probes if r.pair.task == task], spec)
    by_probe: dict[str, Any] = {}
    for name in dict.fromkeys(r.pair.kind for r in probes):
        mine = [r for r in probes if r.pair.kind == name]
        by_probe[name] = {
            **_probe_block(mine, spec),
            "false_positive_tasks": [r.pair.task for r in mine if not r.failed and is_fp(r)],
            "reaches_judge_in_training": spec.reaches_judge(mine[0].pair.prediction),
        }
    failed = [r for r in records if r.failed]
    errors = Counter(r.error or "unknown" for r in failed)
    out: dict[str, Any] = {
        "n_questions": len(records),
        "n_pairs": len(pairs),
        "n_probes": len(probes),
        "tasks": tasks,
        "probes": {**_probe_block(probes, spec), "by_probe": by_probe},
        "latency": _latency(records),
        "failures": {
            "n": len(failed),
            "rate": rounded(len(failed) / len(records)) if records else None,
            "errors": dict(errors.most_common(5)),
        },
    }
    out["advice"] = spec.advice(out)
    return out


# ---------------------------------------------------------------------------------------------------- advice parts


def pct(value: float | None) -> str:
    """A share as a whole percentage ("n/a" for None)."""
    return "n/a" if value is None else f"{100 * value:.0f}%"


def trusted(block: dict[str, Any]) -> bool:
    """A task block the judge can be trusted on: accuracy >= TRUST_ACCURACY and no probe that training sends scored."""
    acc = block["accuracy"]
    return acc is not None and acc >= TRUST_ACCURACY and block["probes"]["false_positives_reaching_training"] == 0


def failure_head(audit: dict[str, Any]) -> str:
    """The advice's opening when too many calls failed ("" otherwise)."""
    rate = audit["failures"]["rate"]
    if rate is not None and rate > MAX_FAILURE_RATE:
        return f"{pct(rate)} of judge calls failed — fix the server first; "
    return ""


# ---------------------------------------------------------------------------------------------------- outputs


def _record_json(record: AuditRecord, spec: AuditSpec) -> dict[str, Any]:
    p = record.pair
    return {
        "task": p.task,
        "kind": p.kind,
        "probe": p.probe,
        "index": p.index,
        "variant": p.variant,
        "gold": spec.gold_text(p),
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


def confusion_detail(confusion: dict[str, Any]) -> str:
    """A kind's confusion in words, its non-zero cells only: "right 1 → judged 2: 3; right 2 → judged 2: 5"."""
    parts = []
    for right, row in zip(confusion["rows_right_grade"], confusion["counts"], strict=True):
        cells = [f"judged {col}: {n}" for col, n in zip(confusion["columns_judged"], row, strict=True) if n]
        if cells:
            parts.append(f"right {right} → " + ", ".join(cells))
    return "; ".join(parts) or "no answered pair"


def confusion_table(confusion: dict[str, Any]) -> list[str]:
    """A confusion block as a Markdown table: one row per right grade, one column per judged grade."""
    lines = ["| right grade ↓ / judged → | " + " | ".join(confusion["columns_judged"]) + " |"]
    lines.append("| --- |" + " --- |" * len(confusion["columns_judged"]))
    for right, row in zip(confusion["rows_right_grade"], confusion["counts"], strict=True):
        lines.append(f"| {right} | " + " | ".join(str(n) for n in row) + " |")
    return lines


def _md(audit: dict[str, Any], spec: AuditSpec) -> str:
    lines = ["# Judge audit", "", audit["advice"], ""]
    run = audit.get("run", {})
    if run:
        lines += [
            f"Judge {', '.join(run.get('judge_base_urls', []))} (model {run.get('judge_model') or 'discovered'}, "
            f"prompts {run.get('judge_prompts')}); data {run.get('data')}: {audit['n_pairs']} pairs + "
            f"{audit['n_probes']} probes; skipped {run.get('skipped') or 'none'}.",
            "",
        ]
    lines += ["| task | kind | n | failed | accuracy | details |", "| --- | --- | --- | --- | --- | --- |"]
    for task, block in audit["tasks"].items():
        for kind, kb in [("all", block), *block["kinds"].items()]:
            if "confusion" in kb:
                detail = confusion_detail(kb["confusion"])
            else:
                detail = spec.detail(task, kind, kb) if spec.detail else ""
            lines.append(f"| {task} | {kind} | {kb['n']} | {kb['failures']} | {pct(kb['accuracy'])} | {detail} |")
    lines += ["", "Details of a grade task: its answered pairs by right grade → judged grade (the tables below).", ""]
    for task, block in audit["tasks"].items():
        if "confusion" in block:
            lines += [f"### Confusion: {task}", "", *confusion_table(block["confusion"]), ""]
    lines += ["## Probes (must never score)", "", "| probe | answered | false positives | tasks | in training |"]
    lines += ["| --- | --- | --- | --- | --- |"]
    for name, pb in audit["probes"]["by_probe"].items():
        tasks = ", ".join(pb["false_positive_tasks"]) or "—"
        seen = "yes" if pb["reaches_judge_in_training"] else spec.not_in_training
        lines.append(f"| {name} | {pb['answered']} | {pb['false_positives']} | {tasks} | {seen} |")
    lat, fail = audit["latency"], audit["failures"]
    lines += [
        "",
        f"Probe false-positive rate: {pct(audit['probes']['false_positive_rate'])} "
        f"({audit['probes']['false_positives']}/{audit['probes']['answered']}).",
        f"Latency (uncached answers, n={lat['n']}): mean {_ms(lat['mean_ms'])}, p50 {_ms(lat['p50_ms'])}, "
        f"p95 {_ms(lat['p95_ms'])}, max {_ms(lat['max_ms'])}.",
        f"Failures: {fail['n']} ({pct(fail['rate'])}) {fail['errors'] or ''}",
        "",
        f"Plots: {', '.join(audit.get('plots', [])) or 'none'}. Every question: audit.json.",
        "",
    ]
    return "\n".join(lines)


def _barh(
    out: Path,
    name: str,
    labels: list[str],
    values: list[float | None],
    title: str,
    xlabel: str,
    color: str,
    line: float | None,
) -> None:
    """A horizontal bar per label (shares in [0, 1]), each with its value written beside it ("n/a" for None)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 0.3 * len(labels) + 1.5))
    bars = ax.barh(labels, [v or 0.0 for v in values], color=color)
    # a 0% bar has no width: its written value is what shows it (in red when under the line)
    texts = ax.bar_label(bars, labels=[pct(v) for v in values], padding=3, fontsize=8)
    for text, v in zip(texts, values, strict=True):
        if line is not None and v is not None and v < line:
            text.set_color("tab:red")
    if line is not None:
        ax.axvline(line, color="tab:red", linestyle="--", label=f"trust {line:.0%}")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xlim(0, 1.12)  # room for "100%" beside a full bar
    ax.set_xticks([0, 0.2, 0.4, 0.6, 0.8, 1.0], ["0%", "20%", "40%", "60%", "80%", "100%"])
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out / name, dpi=100)
    plt.close(fig)


def _plots(audit: dict[str, Any], records: Sequence[AuditRecord], out: Path, spec: AuditSpec) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    rows = [
        (f"{t}/{k} (n={kb['answered']})", kb["accuracy"])
        for t, b in audit["tasks"].items()
        for k, kb in b["kinds"].items()
    ]
    if rows:
        _barh(
            out,
            "accuracy.png",
            [r[0] for r in rows],
            [r[1] for r in rows],
            "judge accuracy per task / kind of pair (n: answered pairs)",
            "share of answered pairs the judge graded right",
            "tab:blue",
            TRUST_ACCURACY,
        )
        written.append("accuracy.png")

    grade = [t for t, b in audit["tasks"].items() if "confusion" in b]
    if grade:
        fig, axes = plt.subplots(1, len(grade), figsize=(max(4.6, 3.6 * len(grade)), 3.6), squeeze=False)
        for ax, task in zip(axes[0], grade, strict=True):
            counts = audit["tasks"][task]["confusion"]["counts"]
            ax.imshow(counts, cmap="Blues")
            peak = max(max(row) for row in counts)
            for i, row in enumerate(counts):
                for j, value in enumerate(row):
                    color = "white" if peak and value > peak / 2 else "black"
                    ax.text(j, i, str(value), ha="center", va="center", color=color)
            ax.set_xticks(range(len(JUDGED)), ["0", "1", "2", "?"])
            ax.set_yticks(range(3), ["0", "1", "2"])
            ax.set_xlabel("judged (? unreadable)")
            ax.set_ylabel("right grade")
            ax.set_title(task)
        fig.suptitle("judge grade confusion: answered pairs", fontsize=10)
        fig.tight_layout()
        fig.savefig(out / "confusion.png", dpi=100)
        plt.close(fig)
        written.append("confusion.png")

    if spec.extra_plots:
        written += spec.extra_plots(audit, records, out)

    by_probe = audit["probes"]["by_probe"]
    if by_probe:
        rates = [p["false_positive_rate"] for p in by_probe.values()]
        xlabel = "false-positive rate (share of tasks where the probe scored)"
        title = "probes: non-answers that must never score (0% is right)"
        _barh(out, "probes.png", list(by_probe), rates, title, xlabel, "tab:orange", None)
        written.append("probes.png")

    latencies = [r.latency_ms for r in records if not r.failed and not r.cache_hit]
    if latencies:
        fig, ax = plt.subplots(figsize=(5, 3.2))
        ax.hist(latencies, bins=min(30, max(5, len(latencies) // 5)), color="tab:green")
        lat = audit["latency"]
        ax.set_title(
            f"judge latency, answered uncached calls (n={lat['n']})\n"
            f"p50 {_ms(lat['p50_ms'])}, p95 {_ms(lat['p95_ms'])}, max {_ms(lat['max_ms'])}",
            fontsize=10,
        )
        ax.set_xlabel("judge latency (ms)")
        ax.set_ylabel("calls")
        fig.tight_layout()
        fig.savefig(out / "latency.png", dpi=100)
        plt.close(fig)
        written.append("latency.png")
    return written


def write_outputs(audit: dict[str, Any], records: Sequence[AuditRecord], out: Path, spec: AuditSpec) -> None:
    """audit.json (figures + every question), audit.md and the plots into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    audit["plots"] = _plots(audit, records, out, spec)
    body = {**audit, "records": [_record_json(r, spec) for r in records]}
    (out / "audit.json").write_text(json.dumps(body, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    (out / "audit.md").write_text(_md(audit, spec), encoding="utf-8")
