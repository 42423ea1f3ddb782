"""`python -m recipes.safety.rejection_sample`: one self-improvement round — generate, score, keep the best, report.

    python -m recipes.safety.rejection_sample --model CKPT --data DIR/train.parquet --n 8 --out DIR2
        [--keep K] [--threshold T] [--reasoning-scorer ngram|embedding|judge] [--reward-kwarg KEY=VALUE ...]
        [--lora-adapter CKPT/lora_adapter|none] [--backend vllm|hf] [--base-sft PARQUET] [--keep-collapsed]
    python -m recipes.safety.rejection_sample --samples DIR2/samples.jsonl --data DIR/train.parquet --out DIR3 ...

1. generate: vLLM offline (recipes/evaluation/generation.py, the code `evaluate --model` uses; `--backend hf`:
transformers on
   the CPU, the code the CPU trainer's rollout generates with), n answers per row of a safety GRPO parquet, prompts
   rendered with the policy's chat template as training renders them (the training config's custom_chat_template
   when it sets one; a LoRA export's lora_adapter/ applied); written to DIR2/samples.jsonl at once. `--samples`
   reads such a file instead (re-select with another threshold without generating again).
2. score: rewards/safety.py compute_score with configs/safety_rejection.yaml's reward_kwargs (ngram reasoning
   scorer: no server; its ngram_reference defaults to --data); DIR2/scores.jsonl has every answer's reward and parts.
3. select (recipes/safety/selection.py): per text the at most --keep best answers with reward >= --threshold that
   differ in meaning (scores + normalized reasoning).
4. write: DIR2/sft.parquet (data/sft.py: the row's prompt + each kept answer; `--base-sft` rows first) for the next
   SFT round; DIR2/train.parquet (the input rows, same schema, of the texts where some answer fell below the
   threshold: a text whose n answers all pass leaves GRPO little to learn) for the next GRPO round and the next
   rejection-sampling round; round.json / round.md (recipes/safety/round_report.py) with the distribution line.
   A kept set that is a collapse (round_report: the kept answers let the gold's violations through, or their score
   vectors are few) is refused: one ERROR line names it, round.json / round.md / scores.jsonl are written with
   ``"refused"``, sft.parquet and train.parquet are not. --keep-collapsed writes them anyway.
Exit codes: 0 done, 2 bad input (named: file, row or line, field), 3 scoring stopped (samples.jsonl is kept),
4 round refused as a collapse.
"""

from __future__ import annotations

import data.setup_hint  # noqa: F401  (first: a missing package is one line, not a traceback)  # isort: skip
import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from data.domains.safety.dimensions import DATA_SOURCE
from data.domains.safety.gold import GoldError, gold_from_ground_truth
from data.domains.safety.parse import sanitize
from data.sft import SftParquetWriter, SftRow, read_sft_rows
from recipes.safety.round_report import CollapseLimits, render_markdown, round_summary
from recipes.safety.selection import Scored, saturated_texts, select

__all__ = ["RoundInputError", "RoundRefusedError", "ScoringStoppedError", "build_parser", "main", "run"]

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = REPO_ROOT / "configs" / "safety_rejection.yaml"
DEFAULT_TRAINING_CONFIG = "safety_grpo"
SECTIONS = ("llm", "sampling", "selection", "reward_kwargs", "report")


class RoundInputError(ValueError):
    """Unusable input: the message names the file and the row, line or field."""


class ScoringStoppedError(RuntimeError):
    """compute_score raised (a judge or embedding server that is gone): the round stops, samples.jsonl stays."""


class RoundRefusedError(RuntimeError):
    """The kept set is a collapse and --keep-collapsed was not given: no sft.parquet / train.parquet were written."""


# ------------------------------------------------------------------------------------------------------- inputs
def load_rows(path: str | Path) -> tuple[Any, list[dict[str, Any]], list[dict[str, int]]]:
    """The GRPO parquet (table, rows, gold scores per row); every row must be a safety row with a usable gold."""
    path = Path(path)
    if not path.is_file():
        raise RoundInputError(f"--data {path}: no such file")
    try:
        table = pq.read_table(str(path))
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise RoundInputError(f"--data {path}: not a readable parquet file ({exc})") from exc
    missing = {"data_source", "prompt", "reward_model"} - set(table.column_names)
    if missing:
        raise RoundInputError(f"--data {path}: missing column(s) {', '.join(sorted(missing))} (a safety GRPO parquet)")
    rows = table.to_pylist()
    golds = []
    for i, row in enumerate(rows):
        if str(row["data_source"]).partition("/")[0] != DATA_SOURCE:
            raise RoundInputError(f"{path}: row {i}: data_source {row['data_source']!r} is not {DATA_SOURCE!r}")
        if not isinstance(row["prompt"], list) or not row["prompt"]:
            raise RoundInputError(f"{path}: row {i}: prompt must be a non-empty list of chat messages")
        try:
            golds.append(gold_from_ground_truth(str((row["reward_model"] or {}).get("ground_truth"))).score_map)
        except GoldError as exc:
            raise RoundInputError(f"{path}: row {i}: reward_model.ground_truth: {exc}") from exc
    if not rows:
        raise RoundInputError(f"--data {path}: no rows")
    return table, rows, golds


def load_round_config(path: str | Path, args: argparse.Namespace) -> dict[str, Any]:
    """configs/safety_rejection.yaml with the command line's overrides applied."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise RoundInputError(f"--config {path}: no such file")
    cfg = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for section in SECTIONS:
        if not isinstance(cfg.get(section), dict):
            raise RoundInputError(f"{path}: section {section!r} must be a mapping")
    if args.n is not None:
        cfg["sampling"]["n"] = args.n
    if args.keep is not None:
        cfg["selection"]["keep"] = args.keep
    if args.threshold is not None:
        cfg["selection"]["threshold"] = args.threshold
    if args.reasoning_scorer is not None:
        cfg["reward_kwargs"]["reasoning_scorer"] = args.reasoning_scorer
    for item in args.reward_kwarg:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise RoundInputError(f"--reward-kwarg {item!r}: expected KEY=VALUE")
        cfg["reward_kwargs"][key.strip()] = yaml.safe_load(value)
    keep, threshold = cfg["selection"].get("keep"), cfg["selection"].get("threshold")
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise RoundInputError(f"selection.keep (--keep) must be an integer >= 1, got {keep!r}")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise RoundInputError(f"selection.threshold (--threshold) must be a number, got {threshold!r}")
    n = cfg["sampling"].get("n", 1)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise RoundInputError(f"sampling.n (--n) must be an integer >= 1, got {n!r}")
    try:
        CollapseLimits(**cfg["report"])
    except TypeError as exc:
        raise RoundInputError(f"{path}: section 'report': {exc}") from exc
    return cfg


def check_reward_kwargs(cfg: dict[str, Any], data: str) -> None:
    """Validate the reward options (a wrong one stops before generating); the n-gram scorer ranks against --data."""
    from rewards.safety import get_options

    kwargs = cfg["reward_kwargs"]
    if str(kwargs.get("reasoning_scorer", "ngram")).strip().lower() == "ngram" and not kwargs.get("ngram_reference"):
        kwargs["ngram_reference"] = str(data)
    try:
        get_options(kwargs)
    except ValueError as exc:
        raise RoundInputError(f"reward_kwargs (--reasoning-scorer / --reward-kwarg): {exc}") from exc


def chat_template(model: str, training_config: str) -> str:
    """The template training renders prompts with: the config's custom_chat_template, else the model's own."""
    from omegaconf import OmegaConf

    from recipes.launch.commands import compose_config

    template = OmegaConf.select(compose_config(training_config), "actor_rollout_ref.model.custom_chat_template")
    if isinstance(template, str) and template.strip():
        return template
    from transformers import AutoTokenizer

    own = AutoTokenizer.from_pretrained(model).chat_template
    if not isinstance(own, str) or not own.strip():
        raise RoundInputError(f"--model {model}: its tokenizer has no chat template and {training_config} sets none")
    return own


def read_samples(path: str | Path, n_rows: int) -> list[list[str]]:
    """samples.jsonl (recipes.evaluation.generation.write_samples, keys with `row`) back as completions per row."""
    path = Path(path)
    if not path.is_file():
        raise RoundInputError(f"--samples {path}: no such file")
    completions: list[list[str]] = [[] for _ in range(n_rows)]
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, 1):
            try:
                item = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as exc:
                raise RoundInputError(f"{path}:{line_no}: not a JSON line ({exc})") from exc
            row, response = item.get("row") if isinstance(item, dict) else None, item.get("response")
            if isinstance(row, bool) or not isinstance(row, int) or not 0 <= row < n_rows:
                raise RoundInputError(f"{path}:{line_no}: field 'row' must be a row number of --data (0..{n_rows - 1})")
            if not isinstance(response, str):
                raise RoundInputError(f"{path}:{line_no}: field 'response' must be a string")
            completions[row].append(response)
    return completions


# ------------------------------------------------------------------------------------------------------ scoring
async def score_answers(
    rows: Sequence[Mapping[str, Any]],
    completions: Sequence[Sequence[str]],
    reward_kwargs: Mapping[str, Any],
    concurrency: int,
) -> list[tuple[Scored, dict[str, float]]]:
    """Every answer scored by rewards/safety.py compute_score (at most `concurrency` at once), in row/sample order."""
    from judge.client import close_judge_clients
    from judge.embeddings import close_embedding_clients
    from rewards.safety import compute_score

    gate = asyncio.Semaphore(concurrency)

    async def one(i: int, k: int, response: str) -> tuple[Scored, dict[str, float]]:
        row = rows[i]
        async with gate:
            try:
                result = await compute_score(
                    row["data_source"], response, row["reward_model"]["ground_truth"], row.get("extra_info"),
                    **reward_kwargs,
                )  # fmt: skip
            except Exception as exc:
                raise ScoringStoppedError(f"row {i} sample {k}: {type(exc).__name__}: {exc}") from exc
        return Scored(text_id=i, sample=k, response=response, score=float(result["score"])), result

    try:
        return list(
            await asyncio.gather(*(one(i, k, r) for i, texts in enumerate(completions) for k, r in enumerate(texts)))
        )
    finally:
        await close_judge_clients()
        await close_embedding_clients()


# ------------------------------------------------------------------------------------------------------ outputs
def write_sft(path: Path, rows: Sequence[Mapping[str, Any]], kept: Sequence[Scored], base: str | None) -> int:
    """sft.parquet: the --base-sft rows (re-numbered), then one row per kept answer (the row's prompt + it)."""
    writer = SftParquetWriter(path)
    try:
        previous = read_sft_rows(base) if base else []
        for row in previous:
            writer.add(SftRow(row.prompt, row.response, row.data_source, writer.count))
        for answer in kept:
            row = rows[answer.text_id]
            writer.add(SftRow(row["prompt"], answer.response, row["data_source"], writer.count))
    except BaseException:
        writer.abort()
        raise
    return writer.close()


def write_grpo(path: Path, table: Any, keep_rows: Sequence[int]) -> int:
    """train.parquet: the input rows at keep_rows, in input order and the input schema."""
    import pyarrow as pa

    partial = path.with_name(path.name + ".partial")
    pq.write_table(table.take(pa.array(sorted(keep_rows), type=pa.int64())), str(partial))
    partial.replace(path)
    return len(keep_rows)


def write_scores(path: Path, scored: Sequence[tuple[Scored, dict[str, float]]], kept: Sequence[Scored]) -> None:
    """scores.jsonl: every answer's row, sample, reward parts and whether it was kept."""
    chosen = {(a.text_id, a.sample) for a in kept}
    with path.open("w", encoding="utf-8") as handle:
        for answer, result in scored:
            line = {"row": answer.text_id, "sample": answer.sample, "kept": (answer.text_id, answer.sample) in chosen}
            handle.write(json.dumps({**line, **result}, ensure_ascii=False) + "\n")


# ------------------------------------------------------------------------------------------------------------ run
def run(args: argparse.Namespace) -> dict[str, Any]:
    """One round (module docstring); returns round.json's content."""
    cfg = load_round_config(args.config, args)
    table, rows, golds = load_rows(args.data)
    check_reward_kwargs(cfg, args.data)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.model:
        from recipes.evaluation.generation import GenerationError, generate, resolve_adapter, write_samples

        prompts, template = [r["prompt"] for r in rows], chat_template(args.model, args.training_config)
        args.lora_adapter = resolve_adapter(args.model, args.lora_adapter)
        try:
            completions = generate(args.model, prompts, template, cfg, adapter=args.lora_adapter, backend=args.backend)
        except GenerationError as exc:
            raise RoundInputError(f"--model: {exc}; or generate elsewhere and pass --samples") from exc
        keys = [{"row": i, "index": (r.get("extra_info") or {}).get("index", i)} for i, r in enumerate(rows)]
        samples_path = write_samples(out / "samples.jsonl", keys, completions)
    else:
        samples_path = Path(args.samples)
        completions = read_samples(samples_path, len(rows))
    cleaned = [[sanitize(text) for text in texts] for texts in completions]
    changed = sum(a != b for x, y in zip(completions, cleaned, strict=True) for a, b in zip(x, y, strict=True))
    scored = asyncio.run(score_answers(rows, cleaned, cfg["reward_kwargs"], args.concurrency))
    answers = [a for a, _ in scored]
    threshold, keep = float(cfg["selection"]["threshold"]), int(cfg["selection"]["keep"])
    selection = select(answers, threshold, keep)
    saturated = saturated_texts(answers, threshold)
    grpo_rows = [i for i in range(len(rows)) if i not in saturated]
    summary = round_summary(golds, answers, selection, CollapseLimits(**cfg["report"]))
    write_scores(out / "scores.jsonl", scored, selection.kept)
    refused = bool(summary["collapse"]) and not args.keep_collapsed
    sft_rows = 0
    if not refused:
        sft_rows = write_sft(out / "sft.parquet", rows, selection.kept, args.base_sft)
        write_grpo(out / "train.parquet", table, grpo_rows)
    result = {
        "config": {
            "model": args.model,
            "lora_adapter": args.lora_adapter,
            "backend": args.backend if args.model else None,
            "samples": str(samples_path),
            "data": str(args.data),
            "n": cfg["sampling"].get("n", 1),
            "threshold": threshold,
            "keep": keep,
            "reward_kwargs": cfg["reward_kwargs"],
            "sampling": cfg["sampling"],
            "base_sft": args.base_sft,
            "keep_collapsed": args.keep_collapsed,
        },
        **summary,
        "refused": "; ".join(summary["collapse"]) if refused else None,
        "reasoning_failed": int(sum(r.get("reasoning_failed", 0.0) for _, r in scored)),
        "responses_sanitized": changed,
        "outputs": {"scores": str(out / "scores.jsonl")}
        if refused
        else {
            "sft": {
                "path": str(out / "sft.parquet"),
                "rows": sft_rows,
                "from_base_sft": sft_rows - len(selection.kept),
            },
            "grpo": {
                "path": str(out / "train.parquet"),
                "rows": len(grpo_rows),
                "saturated_texts_left_out": len(saturated),
            },
            "scores": str(out / "scores.jsonl"),
        },
    }
    (out / "round.json").write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    (out / "round.md").write_text(render_markdown(summary), encoding="utf-8")
    if refused:
        raise RoundRefusedError(result["refused"])
    return result


def build_parser() -> argparse.ArgumentParser:
    """The command line (issue 14 contract)."""
    p = argparse.ArgumentParser(prog="python -m recipes.safety.rejection_sample", description=__doc__.splitlines()[0])
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", metavar="CKPT", help="HF model directory (or hub id) to generate with (vLLM)")
    source.add_argument("--samples", metavar="JSONL", help="a samples.jsonl of an earlier round instead of --model")
    p.add_argument(
        "--lora-adapter",
        metavar="DIR",
        help="PEFT LoRA adapter on --model (default: <model>/lora_adapter when verl's merger wrote one; none: the "
        "base alone)",
    )
    p.add_argument(
        "--backend",
        choices=("vllm", "hf"),
        default="vllm",
        help="generate with vLLM (GPU; default) or hf: transformers on the CPU (recipes/evaluation/generation.py)",
    )
    p.add_argument(
        "--data", required=True, metavar="PARQUET", help="safety GRPO parquet (data.prepare's train.parquet)"
    )
    p.add_argument("--out", required=True, metavar="DIR", help="writes sft.parquet, train.parquet, round.json/md, …")
    p.add_argument("--n", type=int, default=None, help="answers per text (default: the config's sampling.n)")
    p.add_argument("--keep", type=int, default=None, metavar="K", help="at most K answers per text (selection.keep)")
    p.add_argument("--threshold", type=float, default=None, metavar="T", help="keep rewards >= T (selection.threshold)")
    p.add_argument(
        "--reasoning-scorer", choices=("ngram", "embedding", "judge"), default=None, help="reward's reasoning scorer"
    )
    p.add_argument(
        "--reward-kwarg", action="append", default=[], metavar="KEY=VALUE", help="more compute_score options (YAML)"
    )
    p.add_argument("--base-sft", metavar="PARQUET", help="an SFT parquet whose rows come first in sft.parquet")
    p.add_argument(
        "--keep-collapsed",
        action="store_true",
        help="write sft.parquet / train.parquet even when the kept set is a collapse (refused by default, exit 4)",
    )
    p.add_argument(
        "--config", default=str(DEFAULT_CONFIG), metavar="YAML", help="round settings (configs/safety_rejection.yaml)"
    )
    p.add_argument(
        "--training-config",
        default=DEFAULT_TRAINING_CONFIG,
        metavar="NAME",
        help="configs/<name>.yaml whose chat template is used",
    )
    p.add_argument(
        "--concurrency", type=int, default=64, metavar="N", help="answers scored at once (judge/embedding calls)"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry: 0 done, 2 bad input, 3 scoring stopped, 4 round refused as a collapse."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    if args.concurrency < 1:
        build_parser().error(f"--concurrency must be >= 1, got {args.concurrency}")
    if args.lora_adapter and args.lora_adapter != "none" and not args.model:
        build_parser().error("--lora-adapter goes with --model (the answers of --samples are generated already)")
    try:
        result = run(args)
    except RoundInputError as exc:
        logger.error("%s", exc)
        return 2
    except ScoringStoppedError as exc:
        logger.error("scoring stopped (%s); the generated answers are in %s/samples.jsonl", exc, args.out)
        return 3
    except RoundRefusedError as exc:
        logger.error(
            "round refused, model collapse: %s; no sft.parquet / train.parquet written (%s/round.md has the numbers; "
            "--keep-collapsed keeps the round)",
            exc,
            args.out,
        )
        return 4
    print(result["distribution_line"])
    print(f"round: {Path(args.out) / 'round.json'}, {Path(args.out) / 'round.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
