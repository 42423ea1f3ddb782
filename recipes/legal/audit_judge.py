"""Audit the LLM judge before training: grade pairs whose right answer the rules know, plus probes that must fail.

    python -m recipes.legal.audit_judge --data DIR/test.parquet [--judge-base-url URL] [--judge-model ID]
        [--config legal_grpo] [--n 400] [--seed 0] [--probes FILE] --out DIR

The judge settings are the training config's reward kwargs (``--config``, composed like training composes it);
``--judge-base-url`` (or env ``JUDGE_BASE_URL``) replaces its URL, ``--judge-model`` (or ``JUDGE_MODEL``) its model.
Any OpenAI-compatible server works. Every question goes through rewards.legal.ask_judge: the same client, prompts
and gold text as training. Pairs: recipes/legal/audit_pairs.py; probes: recipes/legal/audit_probes.yaml; figures,
report and advice: recipes/legal/audit_report.py. Writes audit.json, audit.md and PNG plots into --out.
Exit codes: 0 written; 1 the judge is unavailable (one line says where); 2 bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from judge.client import ENV_BASE_URL, ENV_MODEL, JudgeConfig, JudgeUnavailableError, close_judge_clients
from recipes.legal.audit_pairs import (
    DEFAULT_PROBES_PATH,
    AuditPair,
    build_pairs,
    load_probes,
    probe_pairs,
    select_pairs,
)

logger = logging.getLogger(__name__)

DEFAULT_CONFIG = "legal_grpo"
MAX_TEXT_CHARS = 200  # judge replies kept in audit.json


class AuditInputError(ValueError):
    """Bad audit input (data file, config, probe set): the message names where."""


@dataclass
class AuditRecord:
    """One judge question and its outcome."""

    pair: AuditPair
    value: int | None  # grade 0/1/2 or error months; None when unreadable or failed
    text: str
    latency_ms: float
    failed: bool
    error: str
    cache_hit: bool


def judge_config_from(config: str | None, base_url: str | None, model: str | None) -> JudgeConfig:
    """JudgeConfig as training builds it from the config's reward kwargs, with URL / model overrides."""
    kwargs: dict[str, Any] = {}
    if config:
        from omegaconf import OmegaConf

        from recipes.commands import ConfigError, compose_config

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
    from rewards.legal import get_options

    kwargs["mode"] = "judge"
    kwargs.pop("reward_router_address", None)
    try:
        options = get_options(kwargs)
    except ValueError as exc:
        raise AuditInputError(f"judge settings: {exc}") from exc
    assert options.judge is not None  # mode=judge needs one, else get_options raised
    return options.judge


async def ask_all(pairs: Sequence[AuditPair], config: JudgeConfig) -> list[AuditRecord]:
    """Every pair through rewards.legal.ask_judge (the client bounds concurrency); records in input order."""
    from tqdm.auto import tqdm

    from rewards.legal import ask_judge

    async def one(pair: AuditPair) -> AuditRecord:
        result = await ask_judge(pair.task, pair.prediction, pair.gold, config)
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


def load_rows(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a prepared parquet file (data_source, reward_model, extra_info), checked by the evaluator's loader."""
    from recipes.legal.evaluate import EvaluationInputError, load_data

    try:
        return list(load_data(path).values())
    except EvaluationInputError as exc:
        raise AuditInputError(str(exc)) from exc


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Build the pairs, ask the judge, write audit.json, audit.md and plots; returns the audit dict."""
    from recipes.legal.audit_report import compute_audit, write_outputs

    if args.n < 0:
        raise AuditInputError(f"--n must be >= 0, got {args.n}")
    rows = load_rows(args.data)
    try:
        probes = load_probes(args.probes)
    except ValueError as exc:
        raise AuditInputError(str(exc)) from exc
    candidates, skipped = build_pairs(rows, seed=args.seed)
    pairs = select_pairs(candidates, args.n, seed=args.seed) + probe_pairs(rows, probes)
    if not pairs:
        raise AuditInputError(f"{args.data}: no usable gold to build audit pairs from (skipped: {skipped})")
    config = judge_config_from(args.config, args.judge_base_url, args.judge_model)
    logger.info("judge audit: %d questions (pairs and probes) to %s", len(pairs), ", ".join(config.base_urls))
    t0 = time.perf_counter()
    records = asyncio.run(ask_all(pairs, config))
    audit = compute_audit(records)
    audit["run"] = {
        "data": str(args.data),
        "rows": len(rows),
        "candidate_pairs": len(candidates),
        "n_requested": args.n,
        "seed": args.seed,
        "probes_file": str(args.probes),
        "skipped": skipped,
        "judge_base_urls": list(config.base_urls),
        "judge_model": config.model,
        "wall_s": round(time.perf_counter() - t0, 3),
    }
    write_outputs(audit, records, Path(args.out))
    logger.info("%s", audit["advice"])
    return audit


def build_parser() -> argparse.ArgumentParser:
    """Command-line flags."""
    parser = argparse.ArgumentParser(prog="python -m recipes.legal.audit_judge", description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="prepared test.parquet (python -m data.prepare)")
    parser.add_argument("--out", required=True, help="directory for audit.json, audit.md and plots")
    parser.add_argument("--judge-base-url", default=None, help="OpenAI-compatible base URL(s), comma list allowed")
    parser.add_argument("--judge-model", default=None, help="model id (default: config, else GET /v1/models)")
    parser.add_argument(
        "--config",
        default=DEFAULT_CONFIG,
        help="training config whose reward kwargs give the judge settings ('' = none: flags and JUDGE_* only)",
    )
    parser.add_argument("--n", type=int, default=400, help="pairs built from the gold (probes come on top)")
    parser.add_argument("--seed", type=int, default=0, help="seed for wrong labels, term notations and sampling")
    parser.add_argument("--probes", default=str(DEFAULT_PROBES_PATH), help="probe set YAML")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: 0 written, 1 judge unavailable, 2 bad input."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "httpx2", "openai"):  # one INFO line per judge request otherwise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except AuditInputError as exc:
        logger.error("%s", exc)
        return 2
    except JudgeUnavailableError as exc:
        logger.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
