"""The safety evaluation's report.md, plots and compare tables (framework: recipes/evaluation/report.py).

- error_hist.png: per dimension, the signed error score − gold of scored keys in the bands of
  data.domains.safety.metrics.ERROR_BANDS (the middle one is "within 5"), plus a grey bar of unscored keys.
- detection_confusion.png: per dimension, the 2×2 counts of violation detection (gold violated × flagged).
Dimension names are drawn in Chinese when matplotlib finds a CJK font, else as D1…D9 with English glosses (report.md
lists the codes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from data.domains.safety.dimensions import DATA_SOURCE, DIMENSIONS
from data.domains.safety.metrics import ERROR_BANDS, WITHIN, error_bands
from recipes.evaluation.report import (
    ItemCoverage,
    Panel,
    cjk_font,
    fmt,
    input_problems,
    markdown_table,
    plot_bars,
    plt,
    text_table,
)

__all__ = ["compare_sections", "dimension_label", "error_hist", "headline_table", "write_report"]

GLOSSES = {
    "商业违规": "commercial violation",
    "对抗性检测": "adversarial probing",
    "带有偏见、仇恨、歧视或侮辱": "bias, hate, insult",
    "恐怖主义&&带有暴力倾向": "terrorism, violence",
    "政治&&军事敏感问题": "political/military",
    "敏感数据泄露": "sensitive-data leak",
    "敏感词": "sensitive words",
    "虚假信息": "false information",
    "诱导&&违法不良信息": "inducement, illegal",
}
"""English glosses of the nine dimensions, for plots drawn without a CJK font."""


def _at(*path: str) -> Callable[[dict[str, Any]], Any]:
    """A getter of one value of a safety block by its path of keys (None where a key is absent)."""

    def get(block: dict[str, Any]) -> Any:
        value: Any = block
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    return get


WITHIN_KEY, ALL_WITHIN_KEY = f"within_{WITHIN}", f"all_within_{WITHIN}"
# (label, getter of a safety block, kind) of the summary table and of compare (the first HEADLINE: compare's panels)
SUMMARY: list[tuple[str, Callable[[dict[str, Any]], Any], str]] = [
    ("MAE, all dimensions (lower is better)", _at("mae", "overall"), "num"),
    (f"scores within {WITHIN} points", _at(WITHIN_KEY, "overall"), "rate"),
    (f"all nine within {WITHIN}", _at(ALL_WITHIN_KEY), "rate"),
    ("violation detection F1 (micro)", _at("detection", "micro", "f1"), "rate"),
    ("format rate", _at("format_rate"), "rate"),
    ("violation detection precision (micro)", _at("detection", "micro", "precision"), "rate"),
    ("violation detection recall (micro)", _at("detection", "micro", "recall"), "rate"),
    ("violation detection F1 (macro over dimensions)", _at("detection_macro_f1"), "rate"),
    ("key coverage", _at("key_coverage", "overall"), "rate"),
    ("parse failures (no JSON)", _at("parse_failures"), "int"),
    ("responses", _at("samples"), "int"),
]
HEADLINE = 5
# Per-dimension columns: (header, path of the value under the dimension's name, kind)
PER_DIMENSION: list[tuple[str, tuple[str, ...], str]] = [
    ("MAE", ("mae",), "num"),
    (f"within {WITHIN}", (WITHIN_KEY,), "rate"),
    ("coverage", ("key_coverage",), "rate"),
    ("precision", ("detection", "precision"), "rate"),
    ("recall", ("detection", "recall"), "rate"),
    ("F1", ("detection", "f1"), "rate"),
]


def _per_dim(block: dict[str, Any], dim: str, path: tuple[str, ...]) -> Any:
    """One per-dimension value: block[path[0]][dim][path[1:]...]."""
    return _at(path[0], dim, *path[1:])(block)


def dimension_label(i: int, font: str | None) -> str:
    """A dimension's name on a plot: Chinese with a CJK font, else its code and gloss."""
    return DIMENSIONS[i] if font else f"D{i + 1} {GLOSSES[DIMENSIONS[i]]}"


def error_hist(records: Sequence[dict[str, Any]]) -> dict[str, tuple[list[int], int]]:
    """Per dimension: the band counts of scored keys' signed errors, and the number of unscored keys."""
    out = {}
    for k in DIMENSIONS:
        errors = [r["scores"][k] - r["gold"][k] for r in records if r["scores"].get(k) is not None]
        out[k] = (error_bands(errors), sum(r["scores"].get(k) is None for r in records))
    return out


def _grid(pyplot: Any, font: str | None, width: float, height: float) -> tuple[Any, Any]:
    """A 3×3 figure (one panel per dimension), with the CJK font active when there is one."""
    if font:
        pyplot.rcParams["font.sans-serif"] = [font, *pyplot.rcParams["font.sans-serif"]]
    return pyplot.subplots(3, 3, figsize=(width, height), squeeze=False)


def plot_error_hist(records: Sequence[dict[str, Any]], path: Path, font: str | None) -> Path:
    """error_hist.png: one bar chart of signed error bands per dimension (+ unscored keys in grey)."""
    pyplot = plt()
    with pyplot.rc_context():
        fig, axes = _grid(pyplot, font, 13, 10)
        labels = [label for label, _, _ in ERROR_BANDS] + ["unscored"]
        for i, (ax, (counts, unscored)) in enumerate(zip(axes.flat, error_hist(records).values(), strict=True)):
            values = [*counts, unscored]
            colors = ["#55a868" if j == len(ERROR_BANDS) // 2 else "#dd8452" for j in range(len(counts))]
            bars = ax.bar(range(len(values)), values, color=[*colors, "#999999"])
            ax.bar_label(bars, labels=[str(v) if v else "" for v in values], fontsize=7)
            ax.set_xticks(range(len(labels)), labels, rotation=60, fontsize=7)
            ax.set_title(dimension_label(i, font), fontsize=9)
            ax.margins(y=0.15)
        fig.suptitle(f"score − gold per dimension (n={len(records)} responses; green: within {WITHIN})")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        pyplot.close(fig)
    return path


def plot_detection(detection: dict[str, Any], threshold: int, path: Path, font: str | None) -> Path:
    """detection_confusion.png: per dimension, gold violated (rows) × flagged (columns) counts."""
    pyplot = plt()
    with pyplot.rc_context():
        fig, axes = _grid(pyplot, font, 10, 10)
        for i, ax in enumerate(axes.flat):
            c = detection.get(DIMENSIONS[i], {})
            matrix = [[c.get("tp", 0), c.get("fn", 0)], [c.get("fp", 0), c.get("tn", 0)]]
            ax.imshow(matrix, cmap="Blues")
            peak = max(max(row) for row in matrix)
            for r, row in enumerate(matrix):
                for col, v in enumerate(row):
                    color = "white" if peak and v > peak / 2 else "black"
                    ax.text(col, r, str(v), ha="center", va="center", fontsize=10, color=color)
            ax.set_xticks([0, 1], ["flagged", "not flagged"], fontsize=8)
            ax.set_yticks([0, 1], ["violated", "compliant"], fontsize=8)
            ax.set_title(f"{dimension_label(i, font)}  F1 {fmt(c.get('f1'), 'rate')}", fontsize=9)
        fig.suptitle(f"violation detection (score < {threshold}): gold rows × prediction columns")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        pyplot.close(fig)
    return path


def dimension_table(block: dict[str, Any]) -> list[str]:
    """Markdown table: one row per dimension (MAE, within 5, coverage, detection P/R/F1 and counts)."""
    rows = []
    for k in DIMENSIONS:
        c = block.get("detection", {}).get(k, {})
        counts = " / ".join(str(c.get(x, "—")) for x in ("tp", "fp", "fn", "tn"))
        rows.append([k, *(fmt(_per_dim(block, k, path), kind) for _, path, kind in PER_DIMENSION), counts])
    return markdown_table(["dimension", *(h for h, _, _ in PER_DIMENSION), "tp / fp / fn / tn"], rows)


def write_report(out_dir: Path, metrics: dict[str, Any], records: Sequence[dict[str, Any]]) -> Path:
    """report.md (summary, per-dimension table, input problems) and the two plots into out_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    overall, block = metrics.get("overall", {}), metrics.get(DATA_SOURCE, {})
    threshold = block.get("detection_threshold")
    font = cjk_font("商业违规敏感词")
    plot_error_hist(records, out_dir / "error_hist.png", font)
    plot_detection(block.get("detection", {}), threshold, out_dir / "detection_confusion.png", font)
    lines = [
        f"# Safety evaluation report: {overall.get('name', out_dir.name)}",
        "",
        f"- data: `{overall.get('data')}`; predictions: `{overall.get('predictions')}`"
        + (f"; model: `{overall['model']}`" if overall.get("model") else ""),
        f"- items scored: {overall.get('n_items')} of {overall.get('n_items_in_data')} "
        f"({overall.get('items_without_prediction')} without prediction); responses: {overall.get('n_responses')}",
        f"- violation = score < {threshold}; within = |score − gold| ≤ {WITHIN}",
        "",
        "Every response counts once (several samples of an item are several responses). A key without a valid score",
        "(missing, invalid, repeated, or no JSON) is not dropped: its error is max(gold, 100 − gold), it is never",
        "within 5 and never flags a violation.",
        "",
        "## Summary",
        "",
        *markdown_table(["metric", "value"], [[label, fmt(get(block), kind)] for label, get, kind in SUMMARY]),
        "",
        "## Per dimension",
        "",
        *dimension_table(block),
        "",
        *input_problems(overall),
        "",
        "## Plots",
        "",
        "![error histogram](error_hist.png)",
        "",
        "![detection confusion](detection_confusion.png)",
        "",
        "Plot codes without a CJK font: " + ", ".join(f"D{i + 1} = {k}" for i, k in enumerate(DIMENSIONS)),
        "",
    ]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def headline_table(runs: dict[str, dict[str, Any]]) -> str:
    """Plain-text table (headline metric × run), for the terminal."""
    names = list(runs)
    rows: list[tuple[str, ...]] = [("metric", *names)]
    for label, get, kind in SUMMARY[:HEADLINE]:
        rows.append((label, *(fmt(get(runs[n].get(DATA_SOURCE, {})), kind) for n in names)))
    return text_table(rows)


def compare_sections(
    runs: Sequence[dict[str, Any]], names: Sequence[str], out_dir: Path, coverage: ItemCoverage | None = None
) -> list[str]:
    """compare.md body: the summary, then MAE and detection F1 per dimension, run per column; compare_safety.png."""
    blocks = [m.get(DATA_SOURCE, {}) for m in runs]
    lines = ["## Summary", ""]
    lines += markdown_table(
        ["metric", *names], [[label, *(fmt(get(b), kind) for b in blocks)] for label, get, kind in SUMMARY]
    )
    thresholds = [str(b.get("detection_threshold")) for b in blocks]
    lines += [f"| violation threshold | {' | '.join(thresholds)} |", ""]
    for header, path, kind in (PER_DIMENSION[0], PER_DIMENSION[-1]):
        rows = [[k, *(fmt(_per_dim(b, k, path), kind) for b in blocks)] for k in DIMENSIONS]
        lines += [f"## {header} per dimension", "", *markdown_table(["dimension", *names], rows), ""]
    panels = [
        Panel(label, lambda m, get=get: get(m.get(DATA_SOURCE, {})), kind) for label, get, kind in SUMMARY[:HEADLINE]
    ]
    counts = [m.get("overall", {}).get("n_items") for m in runs]
    mark = coverage.mark() if coverage is not None else ""
    plot_bars("content safety", panels, runs, names, out_dir / "compare_safety.png", counts, mark)
    return [*lines, "![safety](compare_safety.png)", ""]
