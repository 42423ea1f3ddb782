"""Turn a trained checkpoint (SFT or GRPO) into a Hugging Face directory with verl's own model merger.

    python -m recipes.export CHECKPOINT [--out DIR]

CHECKPOINT is a step directory (``…/global_step_<N>``: an SFT run's, or a GRPO run's, whose ``actor/`` holds the
policy) or a run's checkpoint directory (its latest step, from verl's ``latest_checkpointed_iteration.txt``). DIR
defaults to ``<run>/hf`` beside the steps. It runs ``python -m verl.model_merger merge --backend fsdp --local_dir
<step>[/actor] --target_dir DIR``, which writes config, tokenizer, chat template, generation config and the weights
in bfloat16; for a LoRA run the weights in DIR are the base the run started from and the adapter goes, unmerged, to
``DIR/lora_adapter`` (what the GRPO stage starts from, README "Stages (safety)"). The merger writes into a fresh
``DIR.partial`` that replaces DIR only when complete, so DIR is always one whole export; ``DIR/export.json`` names the
checkpoint it came from. Then the files are checked (config, weights, adapter) and the ways to load it are printed.

Exit codes: 0 exported, 1 the merger failed or wrote an incomplete directory, 2 no such checkpoint.
"""

from __future__ import annotations

import data.setup_hint  # noqa: F401  (first: a missing package is one line, not a traceback)  # isort: skip
import argparse
import json
import logging
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["ExportError", "Exported", "NoCheckpointError", "export", "find_step_dir", "merger_command"]

logger = logging.getLogger(__name__)

ADAPTER_DIR = "lora_adapter"
RECORD = "export.json"
STEP_DIR = re.compile(r"^global_step_(\d+)$")
TRACKER = "latest_checkpointed_iteration.txt"


class ExportError(RuntimeError):
    """The merger failed or wrote an incomplete directory (the message says what and where)."""


class NoCheckpointError(ExportError):
    """The path is not a checkpoint verl wrote (the message says what was expected)."""


@dataclass(frozen=True)
class Exported:
    """What an export wrote."""

    hf_dir: str
    adapter: str | None  # DIR/lora_adapter for a LoRA run, else None
    checkpoint: str  # the directory the merger read (the step, or its actor/)
    global_step: int


def find_step_dir(checkpoint: str | Path) -> tuple[Path, int]:
    """(the directory holding the model shards, its step) for a step directory, a GRPO step or a run directory."""
    path = Path(checkpoint)
    if not path.is_dir():
        raise NoCheckpointError(f"{path}: no such checkpoint directory")
    if not STEP_DIR.match(path.name) and (path / TRACKER).is_file():
        text = (path / TRACKER).read_text(encoding="utf-8").strip()
        if not text.isdigit():
            raise NoCheckpointError(f"{path / TRACKER}: expected a step number, got {text[:40]!r}")
        path = path / f"global_step_{int(text)}"
    match = STEP_DIR.match(path.name)
    if match is None:
        raise NoCheckpointError(f"{path}: not a global_step_<N> directory, nor a run directory with {TRACKER}")
    step = int(match.group(1))
    for candidate in (path / "actor", path):  # GRPO: the policy is in actor/; SFT: the step holds it directly
        if any(candidate.glob("model_world_size_*_rank_*.pt")):
            if not (candidate / "huggingface" / "config.json").is_file():
                raise NoCheckpointError(f"{candidate}: no huggingface/config.json (verl writes one per checkpoint)")
            return candidate, step
    raise NoCheckpointError(f"{path}: no FSDP model shards (model_world_size_*_rank_*.pt) here or in {path / 'actor'}")


def default_out(step_dir: Path) -> Path:
    """<run>/hf: beside the run's global_step_<N> directories (the layout README "Stages (safety)" names)."""
    step = step_dir.parent if step_dir.name == "actor" else step_dir
    return step.parent / "hf"


def merger_command(step_dir: str | Path, target_dir: str | Path, python: str = sys.executable) -> list[str]:
    """verl's merger on FSDP shards: target_dir (base weights) [+ target_dir/lora_adapter]."""
    return [python, "-m", "verl.model_merger", "merge", "--backend", "fsdp", "--local_dir", str(step_dir),
            "--target_dir", str(target_dir)]  # fmt: skip


def check_export(hf_dir: Path, lora: bool) -> str | None:
    """DIR holds a loadable config, weights and (for a LoRA run) the adapter; the adapter path or None."""
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(str(hf_dir))
    except Exception as exc:  # transformers raises several types for a bad config
        raise ExportError(f"{hf_dir}: the merger wrote no loadable config.json ({exc})") from exc
    if not any(hf_dir.glob("*.safetensors")):
        raise ExportError(f"{hf_dir}: the merger wrote no *.safetensors weights")
    adapter = hf_dir / ADAPTER_DIR
    if not lora:
        return None
    if not (adapter / "adapter_config.json").is_file() or not (adapter / "adapter_model.safetensors").is_file():
        raise ExportError(f"{hf_dir}: a LoRA checkpoint, but the merger wrote no {ADAPTER_DIR}/ adapter")
    return str(adapter)


def export(checkpoint: str | Path, out: str | Path | None = None, python: str = sys.executable) -> Exported:
    """Merge the checkpoint into out (default <run>/hf), whole or not at all."""
    step_dir, step = find_step_dir(checkpoint)
    target = Path(out) if out else default_out(step_dir)
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    cmd = merger_command(step_dir, partial, python)
    logger.info("export: %s", shlex.join(cmd))
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise ExportError(f"verl.model_merger failed on {step_dir} (exit {result.returncode}):\n{tail}")
    lora = (step_dir / "lora_train_meta.json").is_file() or (partial / ADAPTER_DIR).is_dir()
    try:
        check_export(partial, lora)
    except ExportError:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    record = Exported(str(target), str(target / ADAPTER_DIR) if lora else None, str(step_dir), step)
    (partial / RECORD).write_text(json.dumps(asdict(record), indent=2) + "\n", encoding="utf-8")
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    partial.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return record


def usage_lines(exported: Exported) -> list[str]:
    """How to load what was exported (printed after an export)."""
    hf, adapter = exported.hf_dir, exported.adapter
    lines = [f"exported global_step_{exported.global_step} ({exported.checkpoint}) to {hf}"]
    if adapter:
        lines += [
            f"  LoRA: base weights in {hf}, the adapter unmerged in {adapter}",
            f"  evaluate (applies the adapter): python -m recipes.evaluate --data TEST.parquet --model {hf} --out R",
            f"  transformers: PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained('{hf}'), '{adapter}')",
            f"  vLLM: vllm serve {hf} --enable-lora --lora-modules policy={adapter}",
            f"  GRPO from it: actor_rollout_ref.model.path={hf} actor_rollout_ref.model.lora_adapter_path={adapter}",
        ]
    else:
        lines += [
            f"  evaluate: python -m recipes.evaluate --data TEST.parquet --model {hf} --out REPORT",
            f"  transformers: AutoModelForCausalLM.from_pretrained('{hf}'); vLLM: vllm serve {hf}",
        ]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: export, print how to use it; 1 when the merger failed, 2 when there is no checkpoint."""
    parser = argparse.ArgumentParser(prog="python -m recipes.export", description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", help="global_step_<N> directory (SFT or GRPO) or a run's checkpoint directory")
    parser.add_argument("--out", default=None, help="target directory (default: <run>/hf)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        exported = export(args.checkpoint, args.out)
    except ExportError as exc:
        logger.error("%s", exc)
        return 2 if isinstance(exc, NoCheckpointError) else 1
    for line in usage_lines(exported):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
