"""Human-readable evaluation report (report.md + PNG plots) and the side-by-side comparison of several reports."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

TASKS = ("charge", "article", "term", "verdict")
TASK_TITLES = {"charge": "罪名 charge", "article": "法条 article", "term": "刑期 term", "verdict": "判决 verdict"}
# (key, label, kind) per task: the write-up's metrics first, then the field's scores, then counts.
# kind: "rate" → shown as %, "x100" → already ×100, "num" → plain number, "int" → count.
ROWS: dict[str, list[tuple[str, str, str]]] = {
    "charge": [
        ("accuracy", "accuracy (set exactly equal)", "rate"),
        ("set_f1", "per-item set F1 (LawBench 3-3 style)", "rate"),
        ("cail_score", "CAIL2018 score ((micro+macro F1)/2 ×100)", "x100"),
        ("cail_micro_f1", "CAIL micro-F1", "rate"),
        ("cail_macro_f1", "CAIL macro-F1 (labels seen on either side)", "rate"),
        ("cail_score_vocab", "CAIL2018 score, official judger over the label vocabulary", "x100"),
    ],
    "article": [
        ("accuracy", "accuracy (set exactly equal)", "rate"),
        ("set_f1", "per-item set F1 (LawBench 3-1 style)", "rate"),
        ("cail_score", "CAIL2018 score ((micro+macro F1)/2 ×100)", "x100"),
        ("cail_micro_f1", "CAIL micro-F1", "rate"),
        ("cail_macro_f1", "CAIL macro-F1 (labels seen on either side)", "rate"),
        ("cail_score_vocab", "CAIL2018 score, official judger over the label vocabulary", "x100"),
    ],
    "term": [
        ("mae_months", "mean absolute error (months, month-count golds)", "num"),
        ("mae_items", "items with a month-count error", "int"),
        ("accuracy", "exact term", "rate"),
        ("kind_accuracy", "life/death kind accuracy", "rate"),
        ("cail_term_score", "CAIL2018 log-distance score (×100)", "x100"),
        ("lawbench_term_score", "LawBench 3-4/3-5 score (×100)", "x100"),
    ],
    "verdict": [
        ("judge_score_mean", "mean judge score (−2 … +2)", "num"),
        ("accuracy", "fully correct (acc)", "rate"),
    ],
}
COMMON_ROWS: list[tuple[str, str, str]] = [
    ("judge_rules_agreement", "judge–rules agreement", "rate"),
    ("judge_rules_pairs", "responses with both grades", "int"),
    ("format_ok_rate", "format-ok rate", "rate"),
    ("mean_reward", "mean reward", "num"),
    ("n_items", "items", "int"),
    ("n_responses", "responses", "int"),
    ("unparseable", "unparseable answers", "int"),
    ("judge_calls", "judge calls", "int"),
    ("judge_failures", "judge failures", "int"),
]
# Headline metric per task for compare bar charts (all "higher is better" except mae_months).
HEADLINE = {
    "charge": ["accuracy", "set_f1", "cail_score"],
    "article": ["accuracy", "set_f1", "cail_score"],
    "term": ["mae_months", "cail_term_score", "lawbench_term_score", "kind_accuracy"],
    "verdict": ["judge_score_mean", "judge_rules_agreement"],
}
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "SimHei", "WenQuanYi Zen Hei", "Microsoft YaHei")


def fmt(value: Any, kind: str) -> str:
    """Format one metric for a table ('—' when undefined)."""
    if value is None:
        return "—"
    if kind == "rate":
        return f"{value * 100:.1f}%"
    if kind == "int":
        return str(int(value))
    return f"{value:.2f}"


def _plt():
    """matplotlib.pyplot with the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _cjk_font() -> str | None:
    """A font that can draw Chinese labels, when one is installed (else charts use codes C1, C2, …)."""
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in installed), None)


def task_table(task: str, block: dict[str, Any]) -> list[str]:
    """Markdown table (metric, value) for one task."""
    lines = ["| metric | value |", "| --- | --- |"]
    for key, label, kind in ROWS[task] + COMMON_ROWS:
        if key in block:
            lines.append(f"| {label} | {fmt(block[key], kind)} |")
    return lines


def plot_score_distribution(records: Sequence[dict[str, Any]], path: Path) -> Path:
    """Histogram of per-response reward per task (2×2 grid)."""
    plt = _plt()
    fig, axes = plt.subplots(2, 2, figsize=(9, 6.5))
    for ax, task in zip(axes.flat, TASKS, strict=True):
        scores = [r["score"] for r in records if r["task"] == task]
        if scores:
            ax.hist(scores, bins=20, color="#4c72b0")
        ax.set_title(f"{task} (n={len(scores)})")
        ax.set_xlabel("reward")
        ax.set_ylabel("responses")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_term_errors(records: Sequence[dict[str, Any]], path: Path) -> Path:
    """Histogram of signed term error (predicted − gold months) over month-count golds."""
    plt = _plt()
    errors = [r["signed_err"] for r in records if r["task"] == "term" and r.get("signed_err") is not None]
    fig, ax = plt.subplots(figsize=(7, 4))
    if errors:
        ax.hist(errors, bins=min(40, max(5, len(set(errors)))), color="#dd8452")
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_title(f"term error, predicted − gold (n={len(errors)})")
    ax.set_xlabel("months")
    ax.set_ylabel("responses")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def charge_confusion(
    records: Sequence[dict[str, Any]], top_k: int = 10
) -> tuple[list[str], list[str], list[list[float]]]:
    """Confusion counts for the top_k most frequent gold charges: rows gold, columns predicted (+ 其他, 无).

    Each response weighs 1/k (k responses for its item). For a gold charge g: a hit counts (g, g); a miss counts
    every predicted charge (a top-k column, else 其他 "other") or 无 ("none") when nothing was predicted.
    """
    recs = [r for r in records if r["task"] == "charge"]
    sizes = Counter((r["data_source"], r["index"]) for r in recs)
    freq = Counter(g for r in recs for g in r.get("gold_labels") or [])
    rows = [g for g, _ in freq.most_common(top_k)]
    cols = rows + ["其他", "无"]
    pos = {c: i for i, c in enumerate(cols)}
    matrix = [[0.0] * len(cols) for _ in rows]
    for r in recs:
        w = 1.0 / sizes[(r["data_source"], r["index"])]
        pred = set(r.get("pred_labels") or [])
        for g in r.get("gold_labels") or []:
            if g not in pos or pos[g] >= len(rows):
                continue
            row = matrix[pos[g]]
            if g in pred:
                row[pos[g]] += w
            elif not pred:
                row[pos["无"]] += w
            else:
                for p in pred:  # a wrong guess splits its weight over the predicted charges
                    col = pos[p] if p in pos and pos[p] < len(rows) else pos["其他"]
                    row[col] += w / len(pred)
    return rows, cols, matrix


def plot_charge_confusion(records: Sequence[dict[str, Any]], path: Path, top_k: int = 10) -> tuple[Path, list[str]]:
    """Heat map of charge_confusion; returns the path and the charge names behind the C1… codes."""
    plt = _plt()
    rows, cols, matrix = charge_confusion(records, top_k)
    font = _cjk_font()
    if font:
        plt.rcParams["font.sans-serif"] = [font, *plt.rcParams["font.sans-serif"]]
        ylabels, xlabels = rows, cols
    else:  # no CJK font installed: codes in the plot, names in report.md
        ylabels = [f"C{i + 1}" for i in range(len(rows))]
        xlabels = ylabels + ["other", "none"]
    fig, ax = plt.subplots(figsize=(1.2 + 0.6 * len(cols), 1.2 + 0.5 * max(1, len(rows))))
    if rows:
        image = ax.imshow(matrix, cmap="Blues", aspect="auto")
        fig.colorbar(image, ax=ax)
        ax.set_xticks(range(len(cols)), xlabels, rotation=60, ha="right")
        ax.set_yticks(range(len(rows)), ylabels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(f"charge confusion, top {len(rows)} gold charges")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path, rows


def write_report(out_dir: Path, metrics: dict[str, Any], records: Sequence[dict[str, Any]]) -> Path:
    """Write report.md and the three PNG plots into out_dir; returns the report path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    overall = metrics.get("overall", {})
    plot_score_distribution(records, out_dir / "score_distribution.png")
    plot_term_errors(records, out_dir / "term_error_hist.png")
    _, charges = plot_charge_confusion(records, out_dir / "charge_confusion.png")
    lines = [f"# Evaluation report: {overall.get('name', out_dir.name)}", ""]
    lines += [
        f"- data: `{overall.get('data')}`; predictions: `{overall.get('predictions')}`",
        f"- reward mode: **{overall.get('mode')}** (asked: {overall.get('mode_requested')})",
    ]
    if overall.get("mode_note"):
        lines.append(f"- note: {overall['mode_note']}")
    lines += [
        f"- items scored: {overall.get('n_items')} of {overall.get('n_items_in_data')} "
        f"({overall.get('items_without_prediction')} without prediction); responses: {overall.get('n_responses')}",
        f"- format-ok rate {fmt(overall.get('format_ok_rate'), 'rate')}, mean reward "
        f"{fmt(overall.get('mean_reward'), 'num')}, judge calls per response "
        f"{fmt(overall.get('judge_calls_per_response'), 'num')}",
        "",
        "Per-item metrics average each item's responses first; CAIL F1 counts each response with weight 1/k.",
        "CAIL macro-F1 averages over labels seen in gold or prediction; the *vocabulary* variant follows the",
        "official judger (every known label enters, a label absent from both sides counts F1 = 1).",
        "",
    ]
    for task in TASKS:
        block = metrics.get(task, {})
        lines += [f"## {TASK_TITLES[task]}", "", *task_table(task, block), ""]
    skipped = overall.get("skipped") or {}
    lines += ["## Input problems", ""]
    if skipped or overall.get("empty_responses"):
        lines += ["| problem | lines |", "| --- | --- |"]
        lines += [f"| {reason} (skipped) | {count} |" for reason, count in skipped.items()]
        lines += [f"| empty_response (scored) | {overall.get('empty_responses', 0)} |", ""]
        for issue in (overall.get("issues") or [])[:20]:
            lines.append(f"- line {issue['line']}: {issue['reason']} — {issue['detail']}")
    else:
        lines.append("None: every predictions line was scored.")
    lines += ["", "## Plots", ""]
    lines += ["![score distribution](score_distribution.png)", "", "![term error](term_error_hist.png)", ""]
    lines += ["![charge confusion](charge_confusion.png)", ""]
    if charges:
        lines += ["Charge codes: " + ", ".join(f"C{i + 1} = {c}" for i, c in enumerate(charges)), ""]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def load_metrics(report_dir: Path) -> dict[str, Any]:
    """metrics.json of a report directory (clear error when absent)."""
    path = Path(report_dir) / "metrics.json"
    if not path.exists():
        from recipes.legal.evaluate import EvaluationInputError

        raise EvaluationInputError(f"{path} not found: is {report_dir} a report directory from evaluate?")
    return json.loads(path.read_text(encoding="utf-8"))


def compare_reports(report_dirs: Sequence[Path], out_dir: Path) -> Path:
    """Side-by-side compare.md (one table per task, run per column) and one bar chart per task."""
    runs = [load_metrics(d) for d in report_dirs]
    names = [m.get("overall", {}).get("name") or Path(d).name for m, d in zip(runs, report_dirs, strict=True)]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = ["# Comparison: " + " vs ".join(names), ""]
    for task in TASKS:
        lines += [f"## {TASK_TITLES[task]}", "", "| metric | " + " | ".join(names) + " |"]
        lines.append("| --- |" + " --- |" * len(names))
        for key, label, kind in ROWS[task] + COMMON_ROWS:
            if any(key in m.get(task, {}) for m in runs):
                lines.append(f"| {label} | " + " | ".join(fmt(m.get(task, {}).get(key), kind) for m in runs) + " |")
        lines += ["", f"![{task}](compare_{task}.png)", ""]
        plot_compare(task, runs, names, out_dir / f"compare_{task}.png")
    path = out_dir / "compare.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    (out_dir / "compare.json").write_text(
        json.dumps(dict(zip(names, runs, strict=True)), ensure_ascii=False, indent=2), encoding="utf-8"
    )
    return path


def plot_compare(task: str, runs: Sequence[dict[str, Any]], names: Sequence[str], path: Path) -> Path:
    """Grouped bars: the task's headline metrics (one panel each), one bar per run."""
    plt = _plt()
    keys = HEADLINE[task]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 3.6), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        values = [m.get(task, {}).get(key) for m in runs]
        ax.bar(range(len(names)), [0.0 if v is None else v for v in values], color="#55a868")
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
        ax.set_title(key + (" (lower is better)" if key == "mae_months" else ""), fontsize=9)
    fig.suptitle(task)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
