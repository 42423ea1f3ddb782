"""Evaluate predictions (or a model) on a prepared test set, for any recipe; compare reports of several runs.

    python -m recipes.evaluate --data DIR/test.parquet (--predictions PRED.jsonl | --model PATH) --out REPORT_DIR
        [--backend vllm|hf] [--lora-adapter DIR|none] [--name LABEL] [--strict] [--config NAME]
        [--sampling-config YAML] [recipe flags]
    python -m recipes.evaluate compare REPORT_A REPORT_B [...] --out DIR

The recipe comes from the rows' ``data_source`` (recipes.recipe.recipe_of_data_source; every row must belong to the
same recipe) and, for ``compare``, from ``overall.recipe`` of each metrics.json. Its ``Recipe.evaluation`` names
the module that scores it (recipes/legal/evaluate.py, recipes/safety/evaluate.py); that module's flags are shown by
``--data FILE --help``. Everything else is shared: the rows and the predictions JSONL are read by
recipes/evaluation/inputs.py (every line kept or counted with its reason; ``--strict`` names the first bad line),
``--model`` generates the predictions first (recipes/evaluation/predictions.py: the recipe's training config's prompt
template,
its sampling YAML; ``--backend vllm``, the default, or ``--backend hf``: transformers on the CPU, the code the CPU
rollout of verl's trainer generates with; a LoRA run exported by recipes/evaluation/export.py gets its ``lora_adapter/``
applied
unless ``--lora-adapter`` says otherwise), and the run writes metrics.json (``overall`` holds the run description and
the input accounting), scores.jsonl (one scored record per response), report.md and plots.

A recipe's evaluation module provides (module attributes):
- ``DEFAULT_CONFIG`` (training config whose chat template ``--model`` renders with), ``DEFAULT_SAMPLING_CONFIG``
  (YAML path), ``CHAT_TEMPLATE_REQUIRED`` (False: the model's own template when the config sets none),
  ``COMPARE_PLOTS`` (what compare draws, for the line it prints);
- ``check_row(row)``: raise ValueError for a row it cannot score; ``add_arguments(parser)``: its own flags;
- ``score(args, data, loaded) -> Scored``: metrics (``overall`` plus its own blocks) and per-response records;
- ``write_report(out_dir, metrics, records)``, ``compare_sections(runs, names, out_dir, coverage) -> lines`` and
  ``headline_table(runs) -> str`` (what compare prints, under a line with each run's item count that says whether the
  runs scored the same items: recipes.evaluation.report.item_coverage).

Exit codes: 0 done, 2 bad input (the message names file, line or flag), 3 scoring stopped part-way (the judge is
gone): the scored responses are written anyway, with ``overall.complete`` false and ``overall.stopped``.
"""

from __future__ import annotations

import data.setup_hint  # noqa: F401  (first: a missing package is one line, not a traceback)  # isort: skip
import argparse
import importlib
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from recipes.evaluation.inputs import (
    EvaluationInputError,
    LoadResult,
    ScoringStoppedError,
    data_file,
    load_predictions,
    load_rows,
    read_table,
    skipped_summary,
    stopped_block,
)
from recipes.evaluation.report import clean, write_compare
from recipes.recipe import Recipe, RecipeError, load_recipe, recipe_of_data_source

__all__ = ["Scored", "build_compare_parser", "build_parser", "evaluation_of", "main", "run", "write_outputs"]

logger = logging.getLogger(__name__)

PROG = "python -m recipes.evaluate"


@dataclass
class Scored:
    """What a recipe's score() returns: metrics.json body, one record per scored response, and a stop if any."""

    metrics: dict[str, Any]
    records: list[dict[str, Any]]
    stopped: ScoringStoppedError | None = None


def evaluation_of(recipe: Recipe) -> ModuleType:
    """The module named by recipe.evaluation (see the module docstring for what it provides)."""
    if not recipe.evaluation:
        raise EvaluationInputError(f"recipe {recipe.name!r} names no evaluation module (Recipe.evaluation)")
    return importlib.import_module(recipe.evaluation)


def recipe_of_data(path: str | Path) -> Recipe:
    """The one recipe the rows of a prepared parquet belong to (by data_source); errors name the row."""
    path = data_file(path)
    sources = read_table(path, columns=["data_source"]).column("data_source").to_pylist()
    if not sources:
        raise EvaluationInputError(f"--data {path}: no rows")
    recipes: dict[str, int] = {}
    for i, source in enumerate(sources):
        try:
            name = recipe_of_data_source(str(source)).name
        except RecipeError as exc:
            raise EvaluationInputError(f"{path} row {i}: {exc}") from exc
        recipes.setdefault(name, i)
    if len(recipes) > 1:
        first = ", ".join(f"{name} (from row {i})" for name, i in recipes.items())
        raise EvaluationInputError(f"{path}: rows of several recipes: {first}; one recipe at a time")
    return load_recipe(next(iter(recipes)))


def recipe_of_reports(report_dirs: Sequence[Path]) -> Recipe:
    """The one recipe every report's metrics.json names in overall.recipe."""
    from recipes.evaluation.report import load_metrics

    names = {}
    for d in report_dirs:
        name = load_metrics(d).get("overall", {}).get("recipe")
        if not name:
            raise EvaluationInputError(
                f"{Path(d) / 'metrics.json'}: no overall.recipe (a report written before recipes.evaluate): "
                "compare legal reports with `python -m recipes.legal.evaluate compare`"
            )
        names[str(name)] = d
    if len(names) > 1:
        raise EvaluationInputError(f"reports of several recipes cannot be compared: {sorted(names)}")
    try:
        return load_recipe(next(iter(names)))
    except RecipeError as exc:
        raise EvaluationInputError(str(exc)) from exc


# ------------------------------------------------------------------------------------------------------------ run
def run(args: argparse.Namespace, recipe: Recipe) -> dict[str, Any]:
    """Evaluate one run: load, (generate,) score, write metrics.json, scores.jsonl, report.md and plots."""
    ev = evaluation_of(recipe)
    out_dir = Path(args.out)
    data = load_rows(args.data, ev.check_row)
    predictions_path = Path(args.predictions) if args.predictions else None
    if args.model:
        from recipes.evaluation.generation import resolve_adapter
        from recipes.evaluation.predictions import generate_predictions, load_chat_template, load_sampling_config

        template = load_chat_template(args.config, required=ev.CHAT_TEMPLATE_REQUIRED)
        sampling = load_sampling_config(args.sampling_config)
        args.lora_adapter = resolve_adapter(args.model, args.lora_adapter)
        predictions_path = generate_predictions(
            args.model, data, template, sampling, out_dir / "predictions.jsonl", args.lora_adapter, args.backend
        )
    assert predictions_path is not None
    loaded = load_predictions(predictions_path, data, strict=args.strict)
    scored = ev.score(args, data, loaded)
    scored.metrics.setdefault("overall", {}).update(
        run_description(args, recipe, predictions_path, loaded, scored.stopped)
    )
    write_outputs(out_dir, scored.metrics, scored.records, ev.write_report)
    if loaded.skipped:  # the console's one word on bad lines; the report has every line and reason
        listed_in = f"{out_dir / 'metrics.json'} (overall.issues) and {out_dir / 'report.md'} (Input problems)"
        logger.warning("%s", skipped_summary(loaded.skipped, loaded.lines_read, listed_in))
    if scored.stopped is not None:
        raise scored.stopped
    return scored.metrics


def run_description(
    args: argparse.Namespace,
    recipe: Recipe,
    predictions_path: Path,
    loaded: LoadResult,
    stopped: ScoringStoppedError | None,
) -> dict[str, Any]:
    """overall's run fields: name, recipe, inputs, every skipped line by reason, and whether scoring finished."""
    return {
        "name": args.name or Path(args.out).name,
        "recipe": recipe.name,
        "data": str(args.data),
        "predictions": str(predictions_path),
        "model": args.model,
        "generation": {"backend": args.backend, "lora_adapter": args.lora_adapter} if args.model else None,
        "skipped": dict(sorted(loaded.skipped.items())),
        "skipped_total": sum(loaded.skipped.values()),
        "empty_responses": loaded.empty_responses,
        "repeated_without_sample": loaded.repeated_without_sample,
        "surrogates_replaced": loaded.surrogates_replaced,
        "issues": loaded.issues,
        "complete": stopped is None,
        "stopped": None if stopped is None else stopped_block(stopped),
    }


def write_outputs(
    out_dir: Path, metrics: dict[str, Any], records: Sequence[dict[str, Any]], write_report: Any
) -> dict[str, Any]:
    """metrics.json, scores.jsonl (one line per scored response), then the recipe's report.md and plots."""
    metrics = clean(metrics)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, ensure_ascii=False, indent=2), encoding="utf-8")
    with (out_dir / "scores.jsonl").open("w", encoding="utf-8") as handle:
        for rec in records:
            handle.write(json.dumps(clean(rec), ensure_ascii=False) + "\n")
    write_report(out_dir, metrics, records)
    logger.info("wrote %s", out_dir / "metrics.json")
    return metrics


# ------------------------------------------------------------------------------------------------------------ CLI
def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (a semaphore of 0 would wait forever)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def build_parser(prog: str = PROG, ev: ModuleType | None = None) -> argparse.ArgumentParser:
    """The evaluate parser: the shared flags, plus the recipe's own when its evaluation module is known."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="prepared test parquet (DIR/test.parquet; DIR stands for it)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--predictions", help="JSONL of {index, data_source, response[, sample]}")
    source.add_argument("--model", help="model path or name: generate first (--backend)")
    parser.add_argument("--out", required=True, help="report directory")
    parser.add_argument(
        "--backend",
        choices=("vllm", "hf"),
        default="vllm",
        help="--model generates with vLLM (GPU; default) or hf: transformers on the CPU, as the CPU trainer does",
    )
    parser.add_argument(
        "--lora-adapter",
        default=None,
        metavar="DIR|none",
        help="LoRA adapter on --model (default: MODEL/lora_adapter when the export has one; none: the base alone)",
    )
    parser.add_argument("--name", default=None, help="label of this run in reports (default: --out's name)")
    parser.add_argument("--strict", action="store_true", help="bad prediction lines are errors naming the line")
    if ev is None:
        parser.epilog = "A recipe's own flags (and its defaults) are listed by `--data FILE --help`."
        parser.add_argument("--sampling-config", default=None, help="YAML for --model (default: the recipe's)")
        parser.add_argument("--config", default=None, help="training config whose chat template --model renders with")
        return parser
    parser.add_argument(
        "--sampling-config", default=str(ev.DEFAULT_SAMPLING_CONFIG), help="YAML for --model (default: %(default)s)"
    )
    parser.add_argument(
        "--config",
        default=ev.DEFAULT_CONFIG,
        help="training config whose chat template --model renders with (default: %(default)s)",
    )
    ev.add_arguments(parser)
    return parser


def build_compare_parser(prog: str = PROG) -> argparse.ArgumentParser:
    """Argument parser of the compare subcommand."""
    parser = argparse.ArgumentParser(prog=f"{prog} compare", description="compare reports")
    parser.add_argument("reports", nargs="+", help="report directories (each with metrics.json)")
    parser.add_argument("--out", required=True, help="output directory")
    return parser


def _data_flag(argv: Sequence[str]) -> str | None:
    """--data's value, read before the recipe (and so the full parser) is known."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--data", default=None)
    return pre.parse_known_args(list(argv))[0].data


def compare(report_dirs: Sequence[Path], out_dir: Path, recipe: Recipe) -> str:
    """Write compare.md/compare.json and the recipe's plots; return what compare prints (items line, then table)."""
    ev = evaluation_of(recipe)
    path, coverage = write_compare(report_dirs, out_dir, ev.compare_sections)
    runs = json.loads(path.with_name("compare.json").read_text(encoding="utf-8"))
    return f"wrote {path} (+ compare.json, {ev.COMPARE_PLOTS})\n{coverage.line()}\n" + ev.headline_table(runs) + "\n"


def main(argv: Sequence[str] | None = None, recipe_name: str | None = None, prog: str = PROG) -> int:
    """Entry point: evaluate, or `compare`; input errors exit 2 with the message, a stopped scoring run exits 3.

    recipe_name fixes the recipe (a recipe's own entry point); otherwise it comes from the data or the reports.
    """
    import pyarrow  # noqa: F401  (before any input check: outside the environment the one line names the package)

    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    out = None
    try:
        fixed = load_recipe(recipe_name) if recipe_name else None
        if argv and argv[0] == "compare":
            args = build_compare_parser(prog).parse_args(argv[1:])
            dirs = [Path(p) for p in args.reports]
            sys.stdout.write(compare(dirs, Path(args.out), fixed or recipe_of_reports(dirs)))
            return 0
        data = _data_flag(argv)
        recipe = fixed or (recipe_of_data(data) if data else None)
        args = build_parser(prog, evaluation_of(recipe) if recipe else None).parse_args(argv)
        args.data = str(data_file(args.data))  # a directory: its test.parquet
        out = args.out
        assert recipe is not None  # --data is required: parse_args has exited without it
        run(args, recipe)
    except EvaluationInputError as exc:
        logger.error("%s", exc)
        return 2
    except ScoringStoppedError as exc:
        logger.error("%s; the %d scored responses are in %s (overall.stopped)", exc, len(exc.records), out)
        if not _is_judge_error(exc.cause):  # not the judge: a fault of ours, keep its traceback
            logger.error("cause", exc_info=exc.cause)
        return 3
    return 0


def _is_judge_error(exc: BaseException) -> bool:
    """Whether exc says the judge is gone (the run stopped for a known reason)."""
    from judge.client import JudgeUnavailableError

    return isinstance(exc, JudgeUnavailableError) or type(exc).__name__ == "JudgeCallFailedError"


if __name__ == "__main__":
    sys.exit(main())
