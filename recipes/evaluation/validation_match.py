"""Does an evaluation of an exported checkpoint reproduce the trainer's own last validation? Row by row, then per task.

    python -m recipes.validation_match --trainer-out OUT --report REPORT --data VAL.parquet --model HF_DIR
        [--config NAME] [--max-changed-share S] [--out FILE]

Inputs: the trainer's run (OUT/metrics.jsonl: verl's file logger; OUT/validation/<step>.jsonl: verl's dump of every
validation generation, ``trainer.validation_data_dir``), the evaluation (REPORT/predictions.jsonl and
REPORT/scores.jsonl of ``python -m recipes.evaluate --model HF_DIR``) and the rows it evaluated (VAL.parquet: the rows
the trainer validated on). Three checks, each naming what it found:

1. **Prompts.** Every evaluated row is found among the trainer's validation inputs: the row's prompt is rendered with
   the training config's chat template (its custom_chat_template, else the model's own), tokenized and decoded as verl
   decodes a validation input (special tokens skipped); the trainer's dump is keyed the same way. A row that is not
   found means evaluation rendered another prompt (template, system message, generation prompt).
2. **Generations.** Per row, the evaluation's response against the trainer's (greedy in both). At most
   ``max_changed_share`` of the rows may differ (default 0: the transformers backend runs the CPU rollout's own code on
   the same bfloat16-rounded weights, so its greedy answers are the trainer's; vLLM's kernels round differently, and a
   random model's near-tied logits then flip a token now and then: give vLLM a share). A difference in length or in
   the end of the text is a stop rule (max_tokens, EOS) that differs.
3. **Reward reading and the logged numbers.** Where a row's two responses are identical, every reward key the
   evaluation's scores.jsonl shares with the dump (``acc``, ``score``, ``format_ok``, ``mae`` …) must be equal (else
   the evaluation reads the answer differently). Per task (data_source), the mean of each such key over the evaluated
   rows must equal the value the trainer logged at its last validation (``val-core/<task>/<key>/mean@1`` or
   ``val-aux/…``) within a tolerance that only the changed rows can explain: 1e-6 + (changed rows of the task / rows
   of the task) × (the key's range over both sides' rows).

Writes ``--out`` (default REPORT/validation_match.json) and prints a table; exit 0 when all three hold, 1 otherwise,
2 on unusable input (named).
"""

from __future__ import annotations

import data.setup_hint  # noqa: F401  (first: a missing package is one line, not a traceback)  # isort: skip
import argparse
import json
import logging
import sys
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["MatchInputError", "TrainerValidation", "compare", "load_trainer_validation", "main", "prompt_keys"]

logger = logging.getLogger(__name__)

EPS = 1e-6
# Reward keys that say how a score was obtained, not what it is (a cache, a latency, whether a call was made): they
# differ between two runs that read the same answer the same way, so they are not compared.
OPERATIONAL = ("cache_hit", "latency", "_called", "_failed")
# Where a run keeps verl's validation dump (trainer.validation_data_dir): the rehearsal's and the base configs'
# ${trainer.rollout_data_dir}/validation, or a run's own validation/ folder.
VALIDATION_DIRS = ("rollouts/validation", "validation")
METRICS_FILE = "metrics.jsonl"


class MatchInputError(ValueError):
    """Unusable input: the message names the file and what is missing."""


@dataclass
class TrainerValidation:
    """The trainer's last validation: its step, the numbers it logged per task, and its dumped generations."""

    step: int
    logged: dict[str, dict[str, float]]  # data_source -> reward key -> mean@1
    rows: list[dict[str, Any]]  # verl's dump: input, output, score, reward extras …


@dataclass
class Match:
    """The verdict: per-row findings, per-task numbers, the problems found."""

    step: int
    rows: int = 0
    identical: int = 0
    changed: list[dict[str, Any]] = field(default_factory=list)
    reward_mismatches: list[dict[str, Any]] = field(default_factory=list)
    unmatched: list[dict[str, Any]] = field(default_factory=list)
    tasks: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    max_changed_share: float = 0.0

    @property
    def ok(self) -> bool:
        """Every check held."""
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        """validation_match.json."""
        return {
            "ok": self.ok,
            "step": self.step,
            "rows": self.rows,
            "identical": self.identical,
            "changed_share": (self.rows - self.identical) / self.rows if self.rows else None,
            "max_changed_share": self.max_changed_share,
            "tolerance": "1e-6 + changed rows of the task / rows of the task x the key's range over both sides",
            "tasks": self.tasks,
            "changed": self.changed[:20],
            "reward_mismatches": self.reward_mismatches[:20],
            "unmatched": self.unmatched[:20],
            "problems": self.problems,
        }


# ------------------------------------------------------------------------------------------------------- inputs
def _jsonl(path: Path) -> list[dict[str, Any]]:
    """The objects of a JSONL file; a line that is not an object is an error naming it."""
    if not path.is_file():
        raise MatchInputError(f"{path}: no such file")
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise MatchInputError(f"{path}:{n}: not JSON ({exc})") from exc
        if not isinstance(item, dict):
            raise MatchInputError(f"{path}:{n}: not a JSON object")
        out.append(item)
    return out


def split_metric(key: str) -> tuple[str, str] | None:
    """(data_source, reward key) of ``val-core/<source>/<key>/mean@1`` / ``val-aux/…``; None for anything else."""
    for prefix in ("val-core/", "val-aux/"):
        if key.startswith(prefix) and key.endswith("/mean@1"):
            source, _, var = key[len(prefix) : -len("/mean@1")].rpartition("/")
            return (source, var) if source and var else None
    return None


def load_trainer_validation(trainer_out: str | Path) -> TrainerValidation:
    """The last logged validation of a run (OUT/metrics.jsonl) and its dump (OUT/[rollouts/]validation/<step>.jsonl)."""
    out = Path(trainer_out)
    records = [r for r in _jsonl(out / METRICS_FILE) if any(split_metric(k) for k in (r.get("data") or {}))]
    if not records:
        raise MatchInputError(f"{out / METRICS_FILE}: no validation metrics (val-core/…/mean@1)")
    last = records[-1]
    step = int(last["step"])
    logged: dict[str, dict[str, float]] = defaultdict(dict)
    for key, value in last["data"].items():
        parts = split_metric(key)
        if parts and isinstance(value, int | float):
            logged[parts[0]][parts[1]] = float(value)
    dumps = [out / folder / f"{step}.jsonl" for folder in VALIDATION_DIRS]
    dump = next((path for path in dumps if path.is_file()), dumps[0])
    if not dump.is_file():
        raise MatchInputError(f"{dump}: no dump of the step-{step} validation (set trainer.validation_data_dir)")
    return TrainerValidation(step, dict(logged), _jsonl(dump))


def prompt_keys(model: str, conversations: Sequence[Any], chat_template: str | None) -> list[str]:
    """Each prompt as verl's validation dump writes its input: rendered, tokenized, decoded without special tokens."""
    from transformers import AutoTokenizer

    from recipes.evaluation.generation import prompt_token_ids

    tokenizer = AutoTokenizer.from_pretrained(model)
    ids = prompt_token_ids(tokenizer, conversations, chat_template)
    return [tokenizer.decode(row, skip_special_tokens=True) for row in ids]


def compared_keys(logged: Mapping[str, float]) -> list[str]:
    """The logged reward keys that describe the answer (OPERATIONAL ones left out), sorted."""
    return sorted(name for name in logged if not any(part in name for part in OPERATIONAL))


def _number(value: Any) -> float | None:
    """A reward value as a float (bools count); None for anything that is not a number."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return None


# ------------------------------------------------------------------------------------------------------ compare
def compare(
    trainer: TrainerValidation,
    keys: Mapping[tuple[str, int], str],
    predictions: Sequence[Mapping[str, Any]],
    scores: Sequence[Mapping[str, Any]],
    max_changed_share: float = 0.0,
) -> Match:
    """The three checks (module docstring). keys: (data_source, index) of each evaluated row -> its prompt key."""
    result = Match(step=trainer.step, max_changed_share=max_changed_share)
    by_input: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in trainer.rows:
        by_input[str(row.get("input"))].append(row)
    score_of = {(s.get("data_source"), s.get("index"), s.get("sample")): s for s in scores}
    per_task: dict[str, list[tuple[dict[str, Any], Mapping[str, Any], bool]]] = defaultdict(list)
    for pred in predictions:
        source, index = str(pred.get("data_source")), pred.get("index")
        key = keys.get((source, index))
        candidates = by_input.get(key) if key is not None else None
        if not candidates:
            result.unmatched.append({"data_source": source, "index": index, "prompt": (key or "")[-200:]})
            continue
        dumped = candidates.pop(0)
        record = score_of.get((source, index, pred.get("sample")))
        if record is None:
            raise MatchInputError(f"scores.jsonl has no line for {source} index {index} sample {pred.get('sample')}")
        result.rows += 1
        same = pred.get("response") == dumped.get("output")
        if same:
            result.identical += 1
            for name in compared_keys(trainer.logged.get(source, {})):
                ours, theirs = _number(record.get(name)), _number(dumped.get(name))
                if ours is not None and theirs is not None and abs(ours - theirs) > EPS:
                    result.reward_mismatches.append(
                        {"data_source": source, "index": index, "key": name, "evaluate": ours, "trainer": theirs}
                    )
        else:
            result.changed.append(
                {"data_source": source, "index": index, "trainer": str(dumped.get("output"))[:300],
                 "evaluate": str(pred.get("response"))[:300]}
            )  # fmt: skip
        per_task[source].append((dumped, record, same))
    left = sum(len(v) for v in by_input.values())
    if result.unmatched:
        first = result.unmatched[0]
        result.problems.append(
            f"{len(result.unmatched)} evaluated row(s) are not among the trainer's validation prompts (first: "
            f"{first['data_source']} index {first['index']}): evaluation renders another prompt"
        )
    if left:
        result.problems.append(f"{left} validation row(s) of the trainer were not evaluated")
    if result.rows and (result.rows - result.identical) / result.rows > max_changed_share + EPS:
        first = result.changed[0]
        result.problems.append(
            f"{result.rows - result.identical} of {result.rows} greedy responses differ from the trainer's "
            f"(allowed share {max_changed_share}); first: {first['data_source']} index {first['index']}: trainer "
            f"{first['trainer'][:80]!r} vs evaluate {first['evaluate'][:80]!r}"
        )
    if result.reward_mismatches:
        first = result.reward_mismatches[0]
        result.problems.append(
            f"{len(result.reward_mismatches)} reward value(s) differ on identical responses (first: "
            f"{first['data_source']} index {first['index']} {first['key']}: evaluate {first['evaluate']} vs trainer "
            f"{first['trainer']}): the evaluation reads answers differently"
        )
    _compare_tasks(result, trainer, per_task)
    if not result.rows:
        result.problems.append("no evaluated row could be compared")
    return result


def _compare_tasks(
    result: Match,
    trainer: TrainerValidation,
    per_task: Mapping[str, Sequence[tuple[dict[str, Any], Mapping[str, Any], bool]]],
) -> None:
    """Per task and shared reward key: the evaluation's mean against the logged number, within what changes allow."""
    for source, items in sorted(per_task.items()):
        logged = trainer.logged.get(source, {})
        if not logged:
            result.problems.append(f"the trainer logged no validation numbers for {source}")
            continue
        changed = sum(1 for _, _, same in items if not same)
        block: dict[str, dict[str, float]] = {}
        for name in compared_keys(logged):
            value = logged[name]
            ours = [_number(record.get(name)) for _, record, _ in items]
            if not ours or any(v is None for v in ours):
                continue
            theirs = [_number(dumped.get(name)) for dumped, _, _ in items]
            values = [v for v in [*ours, *theirs] if v is not None]
            span = max(values) - min(values)
            allowed = EPS + changed / len(items) * span
            mean = sum(v for v in ours if v is not None) / len(ours)
            block[name] = {"trainer": value, "evaluate": mean, "delta": mean - value, "allowed": allowed}
            if abs(mean - value) > allowed:
                result.problems.append(
                    f"{source} {name}: evaluate {mean:.6f} vs trainer {value:.6f} (allowed {allowed:.6f} with "
                    f"{changed}/{len(items)} changed rows)"
                )
        if not block:
            result.problems.append(f"{source}: scores.jsonl shares no reward key with the trainer's log")
        result.tasks[source] = block


# ---------------------------------------------------------------------------------------------------------- CLI
def table(match: Match) -> str:
    """What the CLI prints: one line per task and key, then the generations line."""
    lines = [f"validation of step {match.step}: task | key | trainer | evaluate | delta | allowed"]
    for source, block in match.tasks.items():
        for name, v in block.items():
            numbers = f"{v['trainer']:.6f} | {v['evaluate']:.6f} | {v['delta']:+.6f} | {v['allowed']:.6f}"
            lines.append(f"  {source} | {name} | {numbers}")
    lines.append(f"  greedy responses identical to the trainer's: {match.identical}/{match.rows}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> Match:
    """Load everything, compare, write the JSON."""
    import pyarrow.parquet as pq

    from recipes.evaluation.predictions import load_chat_template

    trainer = load_trainer_validation(args.trainer_out)
    report = Path(args.report)
    data = Path(args.data)
    if not data.is_file():
        raise MatchInputError(f"--data {data}: no such file")
    rows = pq.read_table(str(data), columns=["data_source", "prompt", "extra_info"]).to_pylist()
    template = load_chat_template(args.config, required=False) if args.config else None
    prompts = prompt_keys(args.model, [r["prompt"] for r in rows], template)
    keys = {
        (str(r["data_source"]), int((r["extra_info"] or {})["index"])): k for r, k in zip(rows, prompts, strict=True)
    }
    match = compare(
        trainer, keys, _jsonl(report / "predictions.jsonl"), _jsonl(report / "scores.jsonl"), args.max_changed_share
    )
    out = Path(args.out) if args.out else report / "validation_match.json"
    out.write_text(json.dumps(match.to_json(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return match


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: 0 when the evaluation reproduces the trainer's validation, 1 when not, 2 on unusable input."""
    parser = argparse.ArgumentParser(prog="python -m recipes.validation_match", description=__doc__.split("\n")[0])
    parser.add_argument("--trainer-out", required=True, help="the run's directory: metrics.jsonl + validation/")
    parser.add_argument("--report", required=True, help="recipes.evaluate's output directory (predictions, scores)")
    parser.add_argument("--data", required=True, help="the parquet the evaluation read (the trainer's validation rows)")
    parser.add_argument("--model", required=True, help="the exported model directory (its tokenizer renders prompts)")
    parser.add_argument("--config", default=None, help="training config whose custom_chat_template renders prompts")
    parser.add_argument(
        "--max-changed-share", type=float, default=0.0, help="share of greedy responses allowed to differ (default 0)"
    )
    parser.add_argument("--out", default=None, help="JSON verdict (default: REPORT/validation_match.json)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        match = run(args)
    except MatchInputError as exc:
        logger.error("%s", exc)
        return 2
    print(table(match))
    if match.ok:
        print(f"validation match: OK ({match.identical}/{match.rows} responses identical)")
        return 0
    print("validation match: FAILED: " + "; ".join(match.problems))
    return 1


if __name__ == "__main__":
    sys.exit(main())
