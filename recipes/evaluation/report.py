"""The report/compare framework every recipe's evaluation uses: number formatting, JSON cleaning, matplotlib, fonts.

Display conventions: values are rounded for display (rates as %, 1 decimal; counts as integers, a weighted count
with at most 2 decimals; others 2 decimals; −0.00 shows as 0.00); a missing value is "—" in tables and "n/a" on
compare bars (never an empty bar that reads as 0); a compare panel where no run has a value is not drawn.
``compare`` (recipes/evaluation/evaluate.py) writes compare.md from the recipe's sections and compare.json (run name →
metrics.json) with this module's table and bar helpers. Its headline gives each run's item count, and it marks runs
scored on different item sets (``item_coverage``: items are (data_source, index) pairs read from each report's
scores.jsonl, so two runs compare item for item only when they scored the same rows); it marks rather than refuses,
since a partial run (stopped, or with skipped lines) is still worth seeing next to a full one.
"""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recipes.evaluation.inputs import EvaluationInputError

__all__ = [
    "CJK_FONTS",
    "ItemCoverage",
    "Panel",
    "bar_labels",
    "cjk_font",
    "clean",
    "coverage_of",
    "fmt",
    "input_problems",
    "item_coverage",
    "load_metrics",
    "load_runs",
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

    kind: "rate" → shown as %, "x100" → already ×100, "num" → plain number, "int" → count, "count" → a count that
    may be weighted (1/k per response): an integer when whole, else at most 2 decimals (2.5, never 0.00).
    """
    if value is None:
        return "—"
    if kind == "rate":
        return f"{round(value * 100, 1) + 0.0:.1f}%"
    if kind == "int":
        return str(int(value))
    if kind == "count":
        return f"{round(value, 2) + 0.0:g}"
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


def bar_labels(values: Sequence[float | None], kind: str = "num") -> list[str]:
    """Labels written on compare bars: the value as the tables show it (rates as %), "n/a" when the run has none."""
    if kind == "num":  # short: 51.43, 2, 0 (the tables' 2 decimals without trailing zeros)
        return ["n/a" if v is None else f"{round(v, 2) + 0.0:g}" for v in values]
    return [fmt(v, kind).replace("—", "n/a") for v in values]


@dataclass(frozen=True)
class Panel:
    """One compare bar panel: a readable title, the value of one run's metrics, its fmt kind, a note per bar."""

    title: str
    value: Callable[[dict[str, Any]], float | None]
    kind: str = "num"
    note: Callable[[dict[str, Any]], str] | None = None  # written under the bar's value (e.g. who graded it)
    scale: tuple[float, float] | None = None  # the metric's whole range (default: 0–100 for rates and ×100 scores)


ItemKeys = frozenset[tuple[str, Any]]  # (data_source, index) of the items a run scored


@dataclass(frozen=True)
class ItemCoverage:
    """How many items each compared run scored, and whether they scored the same ones."""

    names: tuple[str, ...]
    counts: tuple[int | None, ...]
    common: int | None  # items every run scored (None: some report has no scores.jsonl)
    same: bool | None  # True: the same item set; None: unknown (equal counts, a scores.jsonl missing)
    data_files: tuple[str, ...] = ()  # the runs' --data, when they differ (the same indices may be other rows)
    keys: tuple[ItemKeys | None, ...] = field(default=(), repr=False)  # each run's items (None: no scores.jsonl)

    @staticmethod
    def _n(count: int | None) -> str:
        return "?" if count is None else str(count)

    def headline(self) -> str:
        """ "base (80 items) vs step400 (25 items)" """
        return " vs ".join(f"{n} ({self._n(c)} items)" for n, c in zip(self.names, self.counts, strict=True))

    def line(self) -> str:
        """One line: each run's item count and whether the comparison is item for item."""
        counts = ", ".join(f"{n} {self._n(c)}" for n, c in zip(self.names, self.counts, strict=True))
        if self.same:
            verdict = "the same items"
        elif self.same is None:
            verdict = "item sets not checked (a report has no scores.jsonl)"
        else:
            verdict = (
                f"DIFFERENT ITEM SETS ({self._n(self.common)} in common): each run's numbers are over its own "
                "items, not comparable item for item"
            )
        files = f"; {self._files()}" if self.data_files else ""
        return f"items: {counts} — {verdict}{files}"

    def _files(self) -> str:
        return f"different --data files ({', '.join(self.data_files)}): the same items only if they hold the same rows"

    def mark(self) -> str:
        """A plot's warning line when the item sets differ (or cannot be checked); "" when they are the same."""
        if self.same:
            return self._files() if self.data_files else ""
        if self.same is None:
            return "item sets not checked (a report has no scores.jsonl)"
        return f"DIFFERENT ITEM SETS ({self._n(self.common)} in common): not comparable item for item"

    def only(self, data_sources: Callable[[str], bool], counts: Sequence[int | None]) -> ItemCoverage:
        """The coverage of the items whose data_source passes (counts: each run's, for a report without keys)."""
        known = self.keys or (None,) * len(self.names)
        keys = [None if k is None else frozenset(x for x in k if data_sources(x[0])) for k in known]
        return coverage_of(self.names, keys, counts, self.data_files)


def coverage_of(
    names: Sequence[str],
    keys: Sequence[ItemKeys | None],
    counts: Sequence[int | None],
    data_files: Sequence[str] = (),
) -> ItemCoverage:
    """ItemCoverage from each run's item keys (None: unknown, then its count stands in for them)."""
    counts = tuple(len(k) if k is not None else c for k, c in zip(keys, counts, strict=True))
    if keys and all(k is not None for k in keys):
        known = [k for k in keys if k is not None]
        common: int | None = len(frozenset.intersection(*known))
        same: bool | None = all(k == known[0] for k in known)
    else:
        common = None
        same = False if len(set(counts)) > 1 else None
    return ItemCoverage(tuple(names), counts, common, same, tuple(data_files), tuple(keys))


def _item_keys(report_dir: Path) -> ItemKeys | None:
    """(data_source, index) of every scored response in report_dir/scores.jsonl; None when the file is absent."""
    path = Path(report_dir) / "scores.jsonl"
    if not path.exists():
        return None
    keys = set()
    with path.open(encoding="utf-8") as handle:
        for no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                keys.add((str(rec["data_source"]), rec["index"]))
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise EvaluationInputError(
                    f"{path} line {no}: not a scored record with data_source and index ({exc})"
                ) from None
    return frozenset(keys)


def item_coverage(report_dirs: Sequence[Path], runs: Sequence[dict[str, Any]], names: Sequence[str]) -> ItemCoverage:
    """Each run's item count (its scores.jsonl, else overall.n_items) and whether all runs scored the same items."""
    overall = [m.get("overall", {}) for m in runs]
    data = [str(o["data"]) for o in overall if o.get("data")]
    differ = len(data) == len(overall) and len(set(data)) > 1  # (a report that does not say is not held against it)
    keys = [_item_keys(d) for d in report_dirs]
    return coverage_of(names, keys, [o.get("n_items") for o in overall], data if differ else ())


def _wrap(title: str, width: int = 40) -> str:
    return "\n".join(textwrap.wrap(title, width)) or title


def plot_bars(
    title: str,
    panels: Sequence[Panel],
    runs: Sequence[dict[str, Any]],
    names: Sequence[str],
    path: Path,
    counts: Sequence[int | None] | None = None,
    mark: str = "",
) -> Path:
    """Grouped bars: one panel per Panel that some run has a value for, one bar per run (rates drawn as %).

    counts: items behind each run's bars (written under its name); mark: a warning line under the title (e.g.
    the runs scored different items). With no panel left, the figure says so.
    """
    pyplot = plt()
    drawn = [(p, [p.value(m) for m in runs]) for p in panels]
    drawn = [(p, values) for p, values in drawn if any(v is not None for v in values)]
    ticks = list(names)
    if counts is not None:
        ticks = [f"{n}\n{'?' if c is None else c} items" for n, c in zip(names, counts, strict=True)]
    panels_wide = max(1, len(drawn))
    width = max(5.0, 3.4 * panels_wide)
    fig, axes = pyplot.subplots(1, panels_wide, figsize=(width, 3.9 + 0.3 * bool(mark)), squeeze=False)
    for ax, (panel, values) in zip(axes[0], drawn, strict=False):  # strict=False: one empty axes when nothing is drawn
        factor = 100.0 if panel.kind == "rate" else 1.0
        bars = ax.bar(range(len(names)), [0.0 if v is None else v * factor for v in values], color="#55a868")
        # a missing value must not read as 0 (for an MAE, "lower is better", an empty bar would look perfect)
        labels = bar_labels(values, panel.kind)
        if panel.note is not None:
            labels = [f"{label}\n{panel.note(m)}" for label, m in zip(labels, runs, strict=True)]
        ax.bar_label(bars, labels=labels, fontsize=8)
        ax.margins(y=0.2)  # room for the value written on the bar
        scale = panel.scale or ((0.0, 100.0) if panel.kind in ("rate", "x100") else None)
        if scale is not None:  # the metric's whole range, so that bars of different charts read alike
            lo, hi = scale
            ax.set_ylim(lo - 0.08 * (hi - lo) * (lo < 0), hi + 0.15 * (hi - lo))
            if lo < 0:
                ax.axhline(0, color="#555555", linewidth=0.8)
        if panel.kind == "rate":
            ax.set_yticks(range(0, 101, 20))
            ax.set_ylabel("%", fontsize=8)
        ax.set_xticks(range(len(names)), ticks, fontsize=8)
        ax.set_title(_wrap(panel.title), fontsize=9)
    if not drawn:
        axes[0][0].axis("off")
        axes[0][0].text(0.5, 0.5, "no run has a value here", ha="center", va="center")
    if mark:
        mark = "\n" + "\n".join(textwrap.wrap(mark, int(width * 9)))
    fig.suptitle(title + mark, color="#b22222" if mark else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    pyplot.close(fig)
    return path


# (runs' metrics, run names, output directory, item coverage) -> compare.md body lines; writes the recipe's plots
CompareSections = Callable[[Sequence[dict[str, Any]], Sequence[str], Path, ItemCoverage], list[str]]


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


def load_runs(report_dirs: Sequence[Path]) -> tuple[list[dict[str, Any]], list[str]]:
    """Each report's metrics.json and its distinct run name (overall.name, else the directory's name)."""
    runs = [load_metrics(d) for d in report_dirs]
    names = unique_names(
        [m.get("overall", {}).get("name") or Path(d).name for m, d in zip(runs, report_dirs, strict=True)]
    )
    return runs, names


def write_compare(report_dirs: Sequence[Path], out_dir: Path, sections: CompareSections) -> tuple[Path, ItemCoverage]:
    """compare.md (its headline with each run's item count, a mark when the item sets differ, the recipe's sections)
    and compare.json (run name → metrics.json); returns compare.md's path and the item coverage."""
    runs, names = load_runs(report_dirs)
    coverage = item_coverage(report_dirs, runs, names)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = ["# Comparison: " + coverage.headline(), ""]
    lines += [("**" + coverage.line() + "**") if not coverage.same else coverage.line(), ""]
    lines += sections(runs, names, out_dir, coverage)
    path = out_dir / "compare.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    (out_dir / "compare.json").write_text(
        json.dumps(dict(zip(names, runs, strict=True)), ensure_ascii=False, indent=2), encoding="utf-8"
    )
    return path, coverage
