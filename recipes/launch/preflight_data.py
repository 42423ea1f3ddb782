"""Preflight checks of the recipe and its data: the config names a known recipe, the data files exist with verl's
row schema, every row belongs to that recipe and carries gold its reward can score (``Recipe.check_gold``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from recipes.launch.checks import FAIL, PASS, WARN, CheckResult, one_line
from recipes.launch.commands import data_files, recipe_sample
from recipes.recipe import KNOWN_RECIPES, Recipe, RecipeError, recipe_of_config, recipe_of_data_source

__all__ = ["REQUIRED_COLUMNS", "check_data", "check_recipe", "prepare_hint"]

REQUIRED_COLUMNS: dict[str, str] = {
    "data_source": "string",
    "prompt": "list of {role, content}",
    "ability": "string",
    "reward_model": "struct {style, ground_truth}",
    "extra_info": "struct {index, ...}",
}
MAX_REASON_CHARS = 200


def check_recipe(cfg: Any) -> tuple[list[CheckResult], Recipe | None]:
    """The config's ``recipe.name`` names a known recipe; a reward path other than the recipe's only warns."""
    from omegaconf import OmegaConf

    try:
        recipe = recipe_of_config(cfg)
    except RecipeError as exc:
        return [
            CheckResult(
                "recipe",
                FAIL,
                f"{one_line(exc)} — set recipe.name to one of {', '.join(KNOWN_RECIPES)} (configs/base/*.yaml set it)",
            )
        ], None
    path = OmegaConf.select(cfg, "reward.custom_reward_function.path", default=None)
    if path and str(path) != recipe.reward_path:
        return [
            CheckResult(
                "recipe",
                WARN,
                f"{recipe.name}: reward.custom_reward_function.path={path}, not the recipe's {recipe.reward_path} — "
                "fine for a reward of your own, else set it back",
            )
        ], recipe
    where = f"recipes/{recipe.name}/recipe.py, reward {recipe.reward_path}"
    return [CheckResult("recipe", PASS, f"{recipe.name} ({where})")], recipe


def prepare_hint(cfg: Any, output: Path | str) -> str:
    """The data.prepare command for this config's recipe (its ``recipe.sample_source``) into output."""
    sample = recipe_sample(cfg)
    source = sample[0] if sample else "<source>"
    return f"`python -m data.prepare --source {source} --input <jsonl> --output {output}`"


def _type_ok(field_type: Any, expected: str) -> bool:
    import pyarrow as pa

    if expected == "string":
        return pa.types.is_string(field_type) or pa.types.is_large_string(field_type)
    if expected.startswith("list"):
        if not (pa.types.is_list(field_type) or pa.types.is_large_list(field_type)):
            return False
        item = field_type.value_type
        return pa.types.is_struct(item) and {"role", "content"} <= {f.name for f in item}
    if expected.startswith("struct {style"):
        return pa.types.is_struct(field_type) and {"style", "ground_truth"} <= {f.name for f in field_type}
    if expected.startswith("struct {index"):
        return pa.types.is_struct(field_type) and "index" in {f.name for f in field_type}
    return True


def check_data(cfg: Any, recipe: Recipe | None) -> tuple[list[CheckResult], dict[str, dict[str, Any]]]:
    """Data files exist and have the row schema; with a recipe, every row is its own and its gold scoreable.

    Returns the results and the first row of each data_source (for the reward check).
    """
    import pyarrow.parquet as pq

    out: list[CheckResult] = []
    samples: dict[str, dict[str, Any]] = {}
    files = data_files(cfg)
    if not files:
        return [CheckResult("data", FAIL, "data.train_files/val_files are empty or unresolvable — set them")], samples
    for path_text in files:
        path = Path(os.path.expanduser(path_text))
        if not path.is_file():
            out.append(
                CheckResult(
                    "data",
                    FAIL,
                    f"{path_text} does not exist — run {prepare_hint(cfg, path.parent)} "
                    "(or let scripts/train_grpo.sh prepare the shipped sample)",
                )
            )
            continue
        try:
            schema = pq.read_schema(path)
        except Exception as exc:
            out.append(CheckResult("data", FAIL, f"{path_text} is not a readable parquet file: {one_line(exc)}"))
            continue
        bad = [
            f"{name} (want {want})"
            for name, want in REQUIRED_COLUMNS.items()
            if name not in schema.names or not _type_ok(schema.field(name).type, want)
        ]
        if bad:
            out.append(
                CheckResult(
                    "data",
                    FAIL,
                    f"{path_text}: missing or mistyped column(s) {', '.join(bad)} — regenerate it with "
                    "`python -m data.prepare`",
                )
            )
            continue
        table = pq.read_table(path, columns=["data_source", "reward_model", "extra_info"])
        if table.num_rows == 0:
            out.append(CheckResult("data", FAIL, f"{path_text} has no rows — prepare data with rows in it"))
            continue
        out += _check_rows(cfg, recipe, path_text, table, samples)
    return out, samples


def _check_rows(
    cfg: Any, recipe: Recipe | None, path_text: str, table: Any, samples: dict[str, dict[str, Any]]
) -> list[CheckResult]:
    """Rows of one file: all of the recipe's data sources, all with gold the reward can score."""
    sources = [str(s) for s in table.column("data_source").to_pylist()]
    counts: dict[str, int] = {}
    for source in sources:
        counts[source] = counts.get(source, 0) + 1
    per_source = ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))
    if recipe is None:  # the recipe check failed: only the schema can be checked
        return [CheckResult("data", PASS, f"{path_text}: {table.num_rows} rows ({per_source}); gold not checked")]
    foreign = [(row, source) for row, source in enumerate(sources) if not recipe.owns(source)]
    if foreign:
        row, source = foreign[0]
        try:
            owner = f"which belongs to recipe {recipe_of_data_source(source).name}"
        except RecipeError:
            owner = "which belongs to no recipe"
        return [
            CheckResult(
                "recipe",
                FAIL,
                f"{path_text}: {len(foreign)} row(s) not of recipe {recipe.name} (first: row {row}: data_source "
                f"{source!r}, {owner}) — point data.* at {recipe.name} data ({prepare_hint(cfg, '<dir>')}) or "
                "launch a config of the recipe the rows belong to",
            )
        ]
    rewards = table.column("reward_model").to_pylist()
    infos = table.column("extra_info").to_pylist()
    bad: list[tuple[int, str]] = []
    for row, (source, reward, info) in enumerate(zip(sources, rewards, infos, strict=True)):
        ground_truth = (reward or {}).get("ground_truth")
        try:
            recipe.check_gold(source, ground_truth, info)
        except (ValueError, TypeError, KeyError) as exc:
            bad.append((row, " ".join(str(exc).split())[:MAX_REASON_CHARS] or type(exc).__name__))
            continue
        samples.setdefault(source, {"data_source": source, "ground_truth": ground_truth, "extra_info": info})
    if bad:
        row, reason = bad[0]
        return [
            CheckResult(
                "data",
                FAIL,
                f"{path_text}: {len(bad)} row(s) the reward cannot score (first: row {row}: {reason}) — a reward "
                "worker would stop the run there; regenerate the file with `python -m data.prepare`",
            )
        ]
    return [CheckResult("data", PASS, f"{path_text}: {table.num_rows} rows ({per_source})")]
