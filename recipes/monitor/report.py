"""The offline run report: report.md with the recipe's curves as PNGs, the best and worst responses of chosen steps and
the validation-generations table, every reward part shown (recipes.monitor.run_report is the command)."""

from __future__ import annotations

import html
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data.progress import tqdm
from recipes.monitor.panels import recipe_sections
from recipes.monitor.plots import Picture, draw_pictures, pictures_of
from recipes.monitor.run_files import Metrics, RunFiles, RunFilesError, Skipped, read_metrics, read_rows
from recipes.recipe import Recipe, RecipeError, recipe_of_data_source
from recipes.trainer.val_generations import IN_TABLE, reward_parts, select_indices

logger = logging.getLogger(__name__)

__all__ = ["REPORT_FILE", "ReportOptions", "ReportResult", "md_text", "pick_steps", "write_report"]

REPORT_FILE = "report.md"
RESPONSE_CHARS = 400  # characters of a response shown in a table cell (the dump has all of it)
GOLD_CHARS = 200
PROMPT_HEAD, PROMPT_TAIL = 60, 160  # a prompt is shown as its start ... its end (the case facts end it)
HEADINGS = {
    "reward_per_task": "Reward per task",
    "format_rate": "Format rate",
    "response_length": "Response length: min, mean, max",
    "chinese_share": "Chinese share of the thinking",
    "kl": "KL to the reference policy",
    "entropy": "Entropy",
    "judge_calls_latency": "Judge calls and latency",
    "validation": "Validation",
}
_ESCAPE = re.compile(r"([\\`*_\[\]|#])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class ReportOptions:
    """What the report shows: the steps of the best/worst tables, how many of each, the validation steps."""

    steps: tuple[int, ...] = ()  # rollout steps for the best/worst tables; () = first, middle and last
    top: int = 3  # best and worst responses per step
    val_steps: tuple[int, ...] = ()  # validation steps to show; () = first and last
    val_rows: int = 10  # rows per validation when the dump has no in_table column (verl's choice of samples)
    recipe: str = ""  # recipe name; "" = read from the metrics' reward/<data_source>/* keys


@dataclass
class ReportResult:
    """What was written and what was left out."""

    report: Path
    pictures: list[Picture] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def md_text(value: Any, limit: int) -> str:
    """Text for a markdown table cell: capped first, then escaped (no HTML, no table breaks, one line)."""
    text = "" if value is None else str(value)
    cut = len(text) > limit
    text = text[:limit]
    text = _CONTROL.sub("\ufffd", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = html.escape(text, quote=False)
    text = _ESCAPE.sub(r"\\\1", text).replace("\n", " ↵ ")
    return text + (" …" if cut else "")


def _prompt_text(prompt: Any) -> str:
    text = "" if prompt is None else str(prompt)
    if len(text) <= PROMPT_HEAD + PROMPT_TAIL:
        return md_text(text, PROMPT_HEAD + PROMPT_TAIL)
    return f"{md_text(text[:PROMPT_HEAD], PROMPT_HEAD)} … {md_text(text[-PROMPT_TAIL:], PROMPT_TAIL)}"


def _number(value: Any) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, (int, float)):
        return "nan" if isinstance(value, float) and math.isnan(value) else f"{value:.4g}"
    return md_text(value, 40)


def pick_steps(available: Sequence[int], wanted: Sequence[int]) -> tuple[list[int], list[int]]:
    """(steps to show, wanted steps with no dump); nothing wanted = first, middle and last available."""
    if wanted:
        return [s for s in wanted if s in available], [s for s in wanted if s not in available]
    if not available:
        return [], []
    return sorted({available[0], available[len(available) // 2], available[-1]}), []


def _responses_table(rows: Sequence[Mapping[str, Any]], ids: Sequence[str], with_prompt: bool) -> list[str]:
    head = ["#", "data_source", *(["prompt"] if with_prompt else []), "response", "gold", "score"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for rid, row in zip(ids, rows, strict=True):
        cells = [rid, md_text(row.get("data_source"), 40)]
        if with_prompt:
            cells.append(_prompt_text(row.get("input", row.get("prompt"))))
        cells += [md_text(row.get("output"), RESPONSE_CHARS), md_text(row.get("gts"), GOLD_CHARS)]
        cells.append(_number(row.get("score")))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _parts_table(rows: Sequence[Mapping[str, Any]], ids: Sequence[str]) -> list[str]:
    """Every reward part (rows) of each response (columns)."""
    parts = reward_parts(sorted({key for row in rows for key in row}))
    if not parts:
        return ["(these rows carry no reward parts)"]
    lines = ["| reward part | " + " | ".join(ids) + " |", "|---|" + "---|" * len(ids)]
    for part in parts:
        lines.append(f"| {md_text(part, 60)} | " + " | ".join(_number(row.get(part)) for row in rows) + " |")
    return lines


def _score(row: Mapping[str, Any]) -> float:
    value = row.get("score")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(float(value)):
        return -math.inf
    return float(value)


def _best_and_worst(rows: Sequence[Mapping[str, Any]], top: int) -> tuple[list[Mapping[str, Any]], list[str]]:
    order = sorted(range(len(rows)), key=lambda i: (-_score(rows[i]), i))
    best = order[:top]
    worst = [i for i in reversed(order) if i not in best][:top]
    return [rows[i] for i in best + worst], [f"best {n + 1}" for n in range(len(best))] + [
        f"worst {n + 1}" for n in range(len(worst))
    ]


def _recipe(metrics: Metrics, name: str, files: RunFiles) -> Recipe:
    from recipes.recipe import load_recipe

    if name:
        return load_recipe(name)
    for key in metrics.series:
        parts = key.split("/")
        if len(parts) >= 3 and parts[0] == "reward" and parts[1] != "overall":
            try:
                return recipe_of_data_source(parts[1])
            except RecipeError:
                continue
    raise RunFilesError(
        f"cannot tell the run's recipe: {files.metrics} has no reward/<data_source>/* key; pass --recipe"
    )


def _val_n(metrics: Metrics) -> int:
    found = [int(m.group(1)) for key in metrics.series if (m := re.search(r"^val-core/.*/mean@(\d+)$", key))]
    return max(found) if found else 1


def _curve_lines(picture: Picture, metrics: Metrics) -> list[str]:
    heading = HEADINGS.get(picture.name, picture.name.replace("_", " ").capitalize())
    lines = [f"### {heading}", ""]
    if picture.path is None:
        return [*lines, f"Not logged in this run: {', '.join(f'`{k}`' for k in picture.missing)}.", ""]
    lines += [f"![{heading}]({picture.path.name})", ""]
    lines += ["| series | first | last | min | max |", "|---|---|---|---|---|"]
    for panel in picture.panels:
        for key in panel.keys:
            steps, values = metrics.values(key)
            if steps:
                lines.append(
                    f"| `{key}` | {values[0]:.4g} (step {steps[0]}) | {values[-1]:.4g} (step {steps[-1]}) | "
                    f"{min(values):.4g} | {max(values):.4g} |"
                )
    if picture.missing:
        lines += ["", f"Not logged in this run: {', '.join(f'`{k}`' for k in picture.missing)}."]
    return [*lines, ""]


def _rollout_lines(files: RunFiles, options: ReportOptions, result: ReportResult) -> list[str]:
    lines = ["## Best and worst responses", ""]
    if files.rollouts is None:
        return [*lines, "No rollout directory (trainer.rollout_data_dir): no response tables.", ""]
    steps, absent = pick_steps(files.rollout_steps(), options.steps)
    if absent:
        result.notes.append(f"no rollout dump for step(s) {', '.join(map(str, absent))} in {files.rollouts}")
    lines += [f"From {files.rollouts}: the {options.top} highest and lowest scores of each step shown.", ""]
    for step in tqdm(steps, desc="rollout tables", unit="step"):
        rows, skipped = read_rows(files.rollouts, step)
        if skipped.count:
            result.skipped.append(skipped)
        chosen, ids = _best_and_worst(rows, options.top)
        lines += [f"### Step {step} ({len(rows)} responses)", ""]
        if not chosen:
            lines += ["No readable rows.", ""]
            continue
        lines += [*_responses_table(chosen, ids, with_prompt=False), "", *_parts_table(chosen, ids), ""]
    return lines


def _validation_lines(files: RunFiles, options: ReportOptions, result: ReportResult) -> list[str]:
    lines = ["## Validation generations", ""]
    if files.validation is None:
        return [
            *lines,
            "No validation dump (trainer.validation_data_dir; our configs write it under the rollout directory).",
            "",
        ]
    available = files.validation_steps()
    wanted = options.val_steps
    if not wanted and available:
        wanted = tuple(sorted({available[0], available[-1]}))
    steps, absent = pick_steps(available, wanted)
    if absent:
        result.notes.append(f"no validation dump for step(s) {', '.join(map(str, absent))} in {files.validation}")
    lines += [f"From {files.validation}: the rows of the wandb table val/generations (prompt, response, gold, "
              "every reward part).", ""]  # fmt: skip
    for step in tqdm(steps, desc="validation tables", unit="step"):
        rows, skipped = read_rows(files.validation, step)
        if skipped.count:
            result.skipped.append(skipped)
        if any(IN_TABLE in row for row in rows):
            chosen = [row for row in rows if row.get(IN_TABLE) is True]
        else:
            chosen = [rows[i] for i in select_indices([str(r.get("input")) for r in rows], options.val_rows)]
        ids = [str(n + 1) for n in range(len(chosen))]
        lines += [f"### Validation at step {step} ({len(chosen)} of {len(rows)} responses)", ""]
        if not chosen:
            lines += ["No readable rows.", ""]
            continue
        lines += [*_responses_table(chosen, ids, with_prompt=True), "", *_parts_table(chosen, ids), ""]
    return lines


def write_report(files: RunFiles, out_dir: Path, options: ReportOptions = ReportOptions()) -> ReportResult:
    """Read the run's files, draw the pictures and write out_dir/report.md (each file written whole)."""
    logger.info("reading %s", files.metrics)
    metrics, skipped = read_metrics(files.metrics)
    result = ReportResult(report=out_dir / REPORT_FILE)
    if skipped.count:
        result.skipped.append(skipped)
    recipe = _recipe(metrics, options.recipe, files)
    out_dir.mkdir(parents=True, exist_ok=True)
    sections = recipe_sections(recipe, val_n=_val_n(metrics))
    result.pictures = pictures_of(sections)
    draw_pictures(tqdm(result.pictures, desc="pictures", unit="png"), metrics, out_dir)
    steps = metrics.steps()
    lines = [
        f"# Run report: {recipe.name}",
        "",
        f"- metrics: {files.metrics} ({metrics.records} records, steps {steps[0] if steps else '-'}"
        f"..{steps[-1] if steps else '-'})",
        f"- rollouts: {files.rollouts or 'none'} ({len(files.rollout_steps())} steps)",
        f"- validation: {files.validation or 'none'} ({len(files.validation_steps())} validations)",
        "",
        "## Curves",
        "",
    ]
    for picture in result.pictures:
        lines += _curve_lines(picture, metrics)
    lines += _rollout_lines(files, options, result)
    lines += _validation_lines(files, options, result)
    if result.skipped or result.notes:
        lines += ["## Left out", ""]
        lines += [f"- {md_text(s.line(), 2000)}" for s in result.skipped]
        lines += [f"- {md_text(note, 2000)}" for note in result.notes]
        lines.append("")
    partial = result.report.with_name(f".{REPORT_FILE}.partial")
    partial.write_text("\n".join(lines), encoding="utf-8")
    partial.replace(result.report)
    return result
