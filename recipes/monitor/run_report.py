"""The same pictures offline: a run's curves, best and worst responses and validation generations as report.md + PNGs.

    python -m recipes.run_report --run DIR --out OUT [--steps 1,50,100] [--top 3] [--val-steps 0,100]
    python -m recipes.run_report --run METRICS.jsonl --rollouts ROLLOUT_DIR --out OUT

``DIR`` is a run directory (``python -m recipes.rehearse --out DIR``: metrics.jsonl, rollouts/, rollouts/validation/)
or any run's verl file-logger JSONL (``trainer.logger`` with ``file``, ``VERL_FILE_LOGGER_PATH``) plus its
``trainer.rollout_data_dir``. Writes OUT/report.md and one PNG per curve: reward per task, format rate, response length
min/mean/max, Chinese share, KL, entropy, judge calls and latency, the recipe's own metrics, validation. Needs no
network and no wandb account. Unreadable lines are skipped and listed in the report; a missing metrics file is the
one error.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from recipes.monitor.report import ReportOptions, write_report
from recipes.monitor.run_files import RunFilesError, locate
from recipes.recipe import KNOWN_RECIPES, RecipeError


def _steps(text: str) -> tuple[int, ...]:
    try:
        steps = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated step numbers, got {text!r}") from None
    if any(step < 0 for step in steps):
        raise argparse.ArgumentTypeError(f"steps are >= 0, got {text!r}")
    return steps


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m recipes.run_report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="run directory (metrics.jsonl, rollouts/) or a metrics JSONL file")
    parser.add_argument("--out", required=True, help="directory for report.md and the PNGs")
    parser.add_argument("--rollouts", help="rollout dump directory (default: <run>/rollouts)")
    parser.add_argument("--validation", help="validation dump directory (default: <rollouts>/validation)")
    parser.add_argument("--steps", type=_steps, default=(), help="steps of the best/worst tables (default: first, "
                        "middle, last)")  # fmt: skip
    parser.add_argument("--top", type=_positive, default=3, help="best and worst responses per step (default 3)")
    parser.add_argument("--val-steps", type=_steps, default=(), help="validation steps shown (default: first, last)")
    parser.add_argument("--val-rows", type=_positive, default=10, help="rows per validation when the dump does not "
                        "mark the table's rows (default 10, verl's trainer.log_val_generations)")  # fmt: skip
    parser.add_argument("--recipe", choices=KNOWN_RECIPES, help="recipe (default: read from the metric keys)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Write the report; print where it is and what was left out."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[run_report] %(message)s", stream=sys.stderr)
    options = ReportOptions(args.steps, args.top, args.val_steps, args.val_rows, args.recipe or "")
    try:
        files = locate(args.run, args.rollouts, args.validation)
        result = write_report(files, Path(args.out), options)
    except (RunFilesError, RecipeError) as exc:
        sys.stderr.write(f"run_report: error: {exc}\n")
        return 2
    for skipped in result.skipped:
        sys.stderr.write(f"run_report: warning: {skipped.line()}\n")
    for note in result.notes:
        sys.stderr.write(f"run_report: warning: {note}\n")
    drawn = [p.path.name for p in result.pictures if p.path is not None]
    pictures = f"{len(drawn)} pictures: {', '.join(drawn)}" if drawn else "no pictures: none of their keys was logged"
    sys.stdout.write(f"report: {result.report} ({pictures})\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
