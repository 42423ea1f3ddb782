"""The report/compare framework every recipe's evaluation uses: number formatting, JSON cleaning, matplotlib, fonts.

Display conventions: values are rounded for display (rates as %, 1 decimal; others 2 decimals; −0.00 shows as
0.00); a missing value is "—" in tables and "n/a" on compare bars (never an empty bar that reads as 0).
``compare`` (recipes/evaluate.py) writes compare.md from the recipe's sections and compare.json (run name →
metrics.json) with this module's table and bar helpers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from recipes.eval_inputs import EvaluationInputError

__all__ = [
    "CJK_FONTS",
    "bar_labels",
    "cjk_font",
    "clean",
    "fmt",
    "input_problems",
    "load_metrics",
    "markdown_table",
    "plot_bars",
    "plt",
    "round_metric",
    "text_table",
    "unique_names",
    "write_compare",
]

CJK_FONTS = (
    "Noto Sans CJK SC",
    "Noto Sans CJK JP",
    "Noto Sans CJK TC",
    "Noto Sans SC",
    "Noto Serif CJK SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Droid Sans Fallback",
    "SimHei",
    "Microsoft YaHei",
    "PingFang SC",
    "Heiti SC",
    "AR PL UMing CN",
    "AR PL UKai CN",
    "Arial Unicode MS",
)
"""Fonts known to draw Chinese labels, tried first (then installed fonts whose name hints at CJK)."""
_CJK_NAME_HINTS = ("CJK", "WenQuanYi", "Droid Sans Fallback", "Source Han", "Hei", "Ming", "Song", "Kai")


def round_metric(value: float | None, ndigits: int = 6) -> float | None:
    """value rounded for storage/display (floating noise such as 1.6e-14 → 0.0; −0.0 → 0.0); None stays None."""
    if value is None:
        return None
    return round(float(value), ndigits) + 0.0


def clean(value: Any, ndigits: int | None = 6) -> Any:
    """JSON-safe copy: NaN/inf → None, floats rounded to ndigits (None: kept), tuples → lists."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return value if ndigits is None else round_metric(value, ndigits)
    if isinstance(value, dict):
        return {k: clean(v, ndigits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v, ndigits) for v in value]
    return value


def fmt(value: Any, kind: str) -> str:
    """Format one metric for a table ('—' when undefined; rounded so that float noise reads as 0.00).

    kind: "rate" → shown as %, "x100" → already ×100, "num" → plain number, "int" → count.
    """
    if value is None:
        return "—"
    if kind == "rate":
        return f"{round(value * 100, 1) + 0.0:.1f}%"
    if kind == "int":
        return str(int(value))
    return f"{round(value, 2) + 0.0:.2f}"


def input_problems(overall: dict[str, Any]) -> list[str]:
    """report.md's "Input problems" section: skipped lines by reason, empty responses, the first issues by line."""
    skipped = overall.get("skipped") or {}
    lines = ["## Input problems", ""]
    if skipped or overall.get("empty_responses"):
        lines += ["| problem | lines |", "| --- | --- |"]
        lines += [f"| {reason} (skipped) | {count} |" for reason, count in skipped.items()]
        lines += [f"| empty_response (scored) | {overall.get('empty_responses', 0)} |", ""]
        for issue in (overall.get("issues") or [])[:20]:
            lines.append(f"- line {issue['line']}: {issue['reason']} — {issue['detail']}")
    else:
        lines.append("None: every predictions line was scored.")
    return lines


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Lines of a markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def text_table(rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table with columns padded to their widest cell (for the terminal)."""
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def plt() -> Any:
    """matplotlib.pyplot with the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    return pyplot


def _draws(path: str, sample: str) -> bool:
    """Whether the font file has glyphs for every character of sample."""
    try:
        from matplotlib.ft2font import FT2Font

        font = FT2Font(path)
        return all(font.get_char_index(ord(ch)) for ch in sample)
    except Exception:  # unreadable font file: not usable
        return False


def cjk_font(sample: str = "盗窃罪诈骗") -> str | None:
    """Name of an installed font that draws sample (known CJK names first, then likely ones), else None."""
    from matplotlib import font_manager

    by_name: dict[str, str] = {}
    for entry in font_manager.fontManager.ttflist:
        by_name.setdefault(entry.name, entry.fname)
    candidates = [n for n in CJK_FONTS if n in by_name]
    candidates += sorted(n for n in by_name if n not in candidates and any(h in n for h in _CJK_NAME_HINTS))
    return next((name for name in candidates if _draws(by_name[name], sample)), None)


def load_metrics(report_dir: Path) -> dict[str, Any]:
    """metrics.json of a report directory (clear error when absent)."""
    path = Path(report_dir) / "metrics.json"
    if not path.exists():
        raise EvaluationInputError(f"{path} not found: is {report_dir} a report directory from evaluate?")
    return json.loads(path.read_text(encoding="utf-8"))


def bar_labels(values: Sequence[float | None]) -> list[str]:
    """Labels written on compare bars: the value rounded to 2 decimals, "n/a" when the run has none."""
    return ["n/a" if v is None else f"{round(v, 2) + 0.0:g}" for v in values]


def plot_bars(
    title: str,
    panels: Sequence[tuple[str, Callable[[dict[str, Any]], float | None]]],
    runs: Sequence[dict[str, Any]],
    names: Sequence[str],
    path: Path,
) -> Path:
    """Grouped bars: one panel per (panel title, metric getter), one bar per run."""
    pyplot = plt()
    fig, axes = pyplot.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.6), squeeze=False)
    for ax, (panel_title, get) in zip(axes[0], panels, strict=True):
        values = [get(m) for m in runs]
        bars = ax.bar(range(len(names)), [0.0 if v is None else v for v in values], color="#55a868")
        # a missing value must not read as 0 (for an MAE, "lower is better", an empty bar would look perfect)
        ax.bar_label(bars, labels=bar_labels(values), fontsize=8)
        if all(v is None for v in values):
            ax.set_ylim(0, 1)
        ax.margins(y=0.15)
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
        ax.set_title(panel_title, fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    pyplot.close(fig)
    return path


# (runs' metrics, run names, output directory) -> compare.md body lines; writes the recipe's plots into the directory
CompareSections = Callable[[Sequence[dict[str, Any]], Sequence[str], Path], list[str]]


def unique_names(names: Sequence[str]) -> list[str]:
    """Run names made distinct ("base", "base (2)", …), so that no run is lost in compare.json or a column."""
    used: set[str] = set()
    out = []
    for name in names:
        candidate, k = name, 1
        while candidate in used:
            k += 1
            candidate = f"{name} ({k})"
        used.add(candidate)
        out.append(candidate)
    return out


def write_compare(report_dirs: Sequence[Path], out_dir: Path, sections: CompareSections) -> Path:
    """compare.md ("# Comparison: a vs b" + the recipe's sections) and compare.json (run name → metrics.json)."""
    runs = [load_metrics(d) for d in report_dirs]
    names = unique_names(
        [m.get("overall", {}).get("name") or Path(d).name for m, d in zip(runs, report_dirs, strict=True)]
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = ["# Comparison: " + " vs ".join(names), "", *sections(runs, names, out_dir)]
    path = out_dir / "compare.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    (out_dir / "compare.json").write_text(
        json.dumps(dict(zip(names, runs, strict=True)), ensure_ascii=False, indent=2), encoding="utf-8"
    )
    return path
