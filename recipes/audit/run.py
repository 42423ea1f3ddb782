"""Judge audit machinery shared by the recipes: pairs whose right grade is known, probes, the judge, the command line.

    python -m recipes.<recipe>.audit_judge --data DIR/test.parquet [--judge-base-url URL] [--judge-model ID]
        [--config NAME] [--n 400] [--seed 0] [--probes FILE] --out DIR

A recipe describes its audit in one AuditSpec (recipes/<recipe>/audit_judge.py): how it builds (gold, prediction)
pairs from its rows, how training asks its judge (same client, prompts and gold text), how its reward kwargs give the
judge settings, and its advice. This module loads the rows, builds and samples the pairs, adds the shared probe set
(recipes/audit/probes.yaml), asks the judge and writes audit.json, audit.md and PNG plots
(recipes/audit/report.py). The judge settings are the training config's reward kwargs (``--config``);
``--judge-base-url`` (or env ``JUDGE_BASE_URL``) replaces its URL, ``--judge-model`` (or ``JUDGE_MODEL``) its model.
Before the first question it asks each endpoint for its models once (``GET /v1/models``): an endpoint that is down
or does not serve the judge model stops the audit with one line naming the models it serves.
Exit codes: 0 written; 1 the judge is unavailable (one line says where); 2 bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from judge.client import (
    ENV_BASE_URL,
    ENV_MODEL,
    JudgeConfig,
    JudgeResult,
    JudgeUnavailableError,
    close_judge_clients,
)
from recipes.audit.spec import AuditPair, AuditRecord, AuditSpec, Probe

__all__ = [
    "DEFAULT_PROBES_PATH",
    "AuditInputError",
    "AuditPair",
    "AuditRecord",
    "AuditSpec",
    "Probe",
    "ask_all",
    "build_parser",
    "check_judge",
    "load_probes",
    "load_rows",
    "main",
    "reward_kwargs_from",
    "run",
    "select_pairs",
]

logger = logging.getLogger(__name__)

DEFAULT_PROBES_PATH = Path(__file__).with_name("probes.yaml")
MAX_TEXT_CHARS = 200  # judge replies kept in audit.json


class AuditInputError(ValueError):
    """Bad audit input (data file, config, probe set): the message names where."""


# ---------------------------------------------------------------------------------------------------- inputs


def load_probes(path: str | Path = DEFAULT_PROBES_PATH) -> list[Probe]:
    """The probe set from YAML; errors name the file and the entry."""
    file = Path(path)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read probe set {file}: {exc}") from exc
    entries = data.get("probes") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{file}: expected a non-empty list under 'probes'")
    probes: list[Probe] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or "text" not in entry:
            raise ValueError(f"{file}: probes[{i}] must be a mapping with 'name' (string) and 'text'")
        text = "" if entry["text"] is None else str(entry["text"])
        probes.append(Probe(entry["name"], text))
    names = [p.name for p in probes]
    if len(set(names)) != len(names):
        raise ValueError(f"{file}: probe names must be unique, got {names}")
    return probes


def load_rows(path: str | Path, recipe: str) -> list[dict[str, Any]]:
    """A recipe's rows of a prepared parquet (data_source, reward_model, extra_info.index); errors name the row."""
    import pyarrow.parquet as pq

    from recipes.recipe import load_recipe

    owner = load_recipe(recipe)
    file = Path(path)
    if not file.exists():
        raise AuditInputError(f"--data {file}: file not found (run `python -m data.prepare` first)")
    try:
        rows = pq.read_table(file).to_pylist()
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a file that is not parquet
        raise AuditInputError(f"--data {file}: not a readable parquet file ({type(exc).__name__}: {exc})") from exc
    seen: set[tuple[str, int]] = set()
    for i, row in enumerate(rows):
        where = f"{file} row {i}"
        for name in ("data_source", "reward_model", "extra_info"):
            if row.get(name) is None:
                raise AuditInputError(f"{where}: missing column {name!r}")
        ds = str(row["data_source"])
        task = ds.partition("/")[2]
        if not owner.owns(ds) or (task and task not in owner.tasks):
            raise AuditInputError(
                f"{where}: data_source {ds!r} is not a {recipe} row (use python -m recipes.<recipe>.audit_judge "
                f"for its recipe)"
            )
        index = row["extra_info"].get("index")
        if not isinstance(index, int):
            raise AuditInputError(f"{where}: extra_info.index must be an int, got {index!r}")
        if (ds, index) in seen:
            raise AuditInputError(f"{where}: duplicate (data_source, index) {(ds, index)}")
        seen.add((ds, index))
    logger.info("loaded %d rows from %s", len(rows), file)
    return rows


def select_pairs(
    pairs: Sequence[AuditPair], n: int, order: Sequence[tuple[str, str]], seed: int = 0
) -> list[AuditPair]:
    """Up to n pairs, spread evenly over (task, kind): round robin over the shuffled buckets, in `order`."""
    if n < 0:
        raise ValueError(f"--n must be >= 0, got {n}")
    rng = random.Random(seed)
    buckets: dict[tuple[str, str], list[AuditPair]] = {}
    for pair in pairs:
        buckets.setdefault((pair.task, pair.kind), []).append(pair)
    keys = [key for key in order if key in buckets]
    for key in keys:
        rng.shuffle(buckets[key])
    chosen: list[AuditPair] = []
    depth = 0
    while len(chosen) < n and any(depth < len(buckets[key]) for key in keys):
        for key in keys:
            if depth < len(buckets[key]) and len(chosen) < n:
                chosen.append(buckets[key][depth])
        depth += 1
    return chosen


def reward_kwargs_from(config: str | None, base_url: str | None, model: str | None) -> dict[str, Any]:
    """The training config's reward kwargs with the URL / model overrides (flags, else JUDGE_* env)."""
    kwargs: dict[str, Any] = {}
    if config:
        from omegaconf import OmegaConf

        from recipes.launch.commands import ConfigError, compose_config

        try:
            cfg = compose_config(config)
        except ConfigError as exc:
            raise AuditInputError(str(exc)) from exc
        section = OmegaConf.select(cfg, "reward.custom_reward_function.reward_kwargs", default=None)
        kwargs = dict(OmegaConf.to_container(section, resolve=True)) if section is not None else {}
    url = base_url or os.environ.get(ENV_BASE_URL)
    if url:
        kwargs["judge_base_url"] = url
    if model or os.environ.get(ENV_MODEL):
        kwargs["judge_model"] = model or os.environ.get(ENV_MODEL)
    kwargs.pop("reward_router_address", None)  # verl's own judge router does not exist outside training
    return kwargs


# ---------------------------------------------------------------------------------------------------- judge

CHECK_TIMEOUT_S = 10.0  # bound on the one GET /v1/models before the audit asks anything


def check_judge(config: JudgeConfig, serve_hint: str = "bash scripts/serve_judge.sh") -> None:
    """GET /v1/models once per endpoint before any question; JudgeUnavailableError (one line) when an endpoint is
    down, refuses, or does not serve the configured model (the line names the models it serves)."""
    import openai

    for url in config.base_urls:
        client = openai.OpenAI(
            base_url=url,
            api_key=config.api_key or "EMPTY",
            max_retries=0,
            timeout=min(config.timeout_s, CHECK_TIMEOUT_S),
        )
        try:
            served = [model.id for model in client.models.list()]
        except openai.APIStatusError as exc:
            hint = "check the API key (JUDGE_API_KEY)" if exc.status_code in (401, 403) else "is it an OpenAI API?"
            raise JudgeUnavailableError(
                f"judge unavailable: GET {url}/models answered HTTP {exc.status_code} — {hint} "
                "(the base URL ends in /v1)"
            ) from exc
        except openai.APIError as exc:  # connection refused, timeout, a body that is not JSON
            raise JudgeUnavailableError(
                f"judge unavailable: nothing answers GET {url}/models ({type(exc).__name__}) — start a judge "
                f"({serve_hint}) or pass --judge-base-url"
            ) from exc
        finally:
            client.close()
        if not served:
            raise JudgeUnavailableError(f"judge unavailable: {url} serves no model (GET /v1/models lists none)")
        if config.model and config.model not in served:
            raise JudgeUnavailableError(
                f"judge at {url} does not serve model {config.model!r}; it serves: {', '.join(served)} — pass "
                f"--judge-model {served[0]} (or set JUDGE_MODEL)"
            )


async def ask_all(
    pairs: Sequence[AuditPair], config: JudgeConfig, ask: Callable[[AuditPair, JudgeConfig], Awaitable[JudgeResult]]
) -> list[AuditRecord]:
    """Every pair through the recipe's training question (the client bounds concurrency); records in input order."""
    from data.progress import tqdm

    async def one(pair: AuditPair) -> AuditRecord:
        result = await ask(pair, config)
        return AuditRecord(
            pair=pair,
            value=None if result.failed else result.value,
            text=(result.text or "")[:MAX_TEXT_CHARS],
            latency_ms=float(result.latency_ms),
            failed=bool(result.failed),
            error=str(result.error or "")[:MAX_TEXT_CHARS],
            cache_hit=bool(result.cache_hit),
        )

    tasks = [asyncio.ensure_future(one(p)) for p in pairs]
    try:
        for fut in tqdm(asyncio.as_completed(tasks), total=len(tasks), desc="judge audit", unit="q"):
            await fut
        return [t.result() for t in tasks]
    finally:
        for t in tasks:
            t.cancel()
        await close_judge_clients()


# ---------------------------------------------------------------------------------------------------- run


def run(spec: AuditSpec, args: argparse.Namespace) -> dict[str, Any]:
    """Build the pairs, ask the judge, write audit.json, audit.md and plots; returns the audit dict."""
    from recipes.audit.report import compute_audit, write_outputs

    if args.n < 0:
        raise AuditInputError(f"--n must be >= 0, got {args.n}")
    rows = load_rows(args.data, spec.recipe)
    try:
        probes = load_probes(args.probes)
    except ValueError as exc:
        raise AuditInputError(str(exc)) from exc
    candidates, skipped = spec.build_pairs(rows, args.seed)
    order = [(t, k) for t in spec.tasks for k in spec.kinds[t]]
    pairs = select_pairs(candidates, args.n, order, seed=args.seed) + spec.probe_pairs(rows, probes)
    if not pairs:
        raise AuditInputError(f"{args.data}: no usable gold to build audit pairs from (skipped: {skipped})")
    try:
        config = spec.judge_config(reward_kwargs_from(args.config, args.judge_base_url, args.judge_model))
    except ValueError as exc:
        raise AuditInputError(f"judge settings: {exc}") from exc
    check_judge(config, f"bash scripts/serve_judge.sh --config {args.config or spec.default_config}")
    logger.info("judge audit: %d questions (pairs and probes) to %s", len(pairs), ", ".join(config.base_urls))
    t0 = time.perf_counter()
    records = asyncio.run(ask_all(pairs, config, spec.ask))
    audit = compute_audit(records, spec)
    audit["run"] = {
        "recipe": spec.recipe,
        "data": str(args.data),
        "rows": len(rows),
        "candidate_pairs": len(candidates),
        "n_requested": args.n,
        "seed": args.seed,
        "probes_file": str(args.probes),
        "skipped": skipped,
        "judge_base_urls": list(config.base_urls),
        "judge_model": config.model,
        "judge_prompts": config.prompts_path or "judge/prompts.yaml",
        "wall_s": round(time.perf_counter() - t0, 3),
    }
    write_outputs(audit, records, Path(args.out), spec)
    logger.info("%s", audit["advice"])
    return audit


def build_parser(spec: AuditSpec, description: str) -> argparse.ArgumentParser:
    """Command-line flags (the same for every recipe)."""
    parser = argparse.ArgumentParser(prog=spec.prog, description=description)
    parser.add_argument("--data", required=True, help="prepared test.parquet (python -m data.prepare)")
    parser.add_argument("--out", required=True, help="directory for audit.json, audit.md and plots")
    parser.add_argument("--judge-base-url", default=None, help="OpenAI-compatible base URL(s), comma list allowed")
    parser.add_argument("--judge-model", default=None, help="model id (default: config, else GET /v1/models)")
    parser.add_argument(
        "--config",
        default=spec.default_config,
        help="training config whose reward kwargs give the judge settings ('' = none: flags and JUDGE_* only)",
    )
    parser.add_argument("--n", type=int, default=400, help="pairs built from the gold (probes come on top)")
    parser.add_argument("--seed", type=int, default=0, help="seed for wrong answers, notations and sampling")
    parser.add_argument("--probes", default=str(DEFAULT_PROBES_PATH), help="probe set YAML")
    return parser


def main(spec: AuditSpec, argv: Sequence[str] | None = None, description: str = "") -> int:
    """Entry point: 0 written, 1 judge unavailable, 2 bad input."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "httpx2", "openai"):  # one INFO line per judge request otherwise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    args = build_parser(spec, description or __doc__.split("\n")[0]).parse_args(argv)
    log = logging.getLogger(f"recipes.{spec.recipe}.audit_judge")
    try:
        run(spec, args)
    except AuditInputError as exc:
        log.error("%s", exc)
        return 2
    except JudgeUnavailableError as exc:
        log.error("%s", exc)
        return 1
    return 0
