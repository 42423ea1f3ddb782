"""The SFT stage on the CPU: verl's own SFT trainer for N real LoRA steps of a tiny model, then the export.

    python -m recipes.rehearsal.rehearse_sft --model TINY --data DIR --out OUT [--steps N] [--config safety_sft]
    [overrides...]

Runs the command scripts/train_sft.sh builds (``python -m torch.distributed.run … -m verl.trainer.sft_trainer``,
recipes/launch/sft_launch.py) on the CPU (recipes.trainer.cpu: the platform, the process-group stand-in), one process,
on
DIR/sft.parquet (the config's shipped sample prepared with its ``--sft-fraction`` when missing). The only changes to the
config are model, data, sizes, device and the learning rate (recipes.trainer.cpu.overrides.sft_cpu_changes), each
printed; the user's overrides come last and win. LoRA rank and alpha stay the config's. Then verl's model merger
exports the last checkpoint (recipes/evaluation/export.py) to OUT/checkpoints/hf (+ lora_adapter), the directory the
GRPO stage
starts from. Checks: N steps logged, the loss of the last step below the first, the checkpoint, the adapter.
Writes OUT/metrics.jsonl (verl's file logger), OUT/train.log, OUT/checkpoints/; last line ``sft rehearsal passed: …``
or ``sft rehearsal FAILED: …``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recipes.launch.commands import REPO_ROOT, compose_config, sample_prep_argv
from recipes.trainer.cpu import cpu_env
from recipes.trainer.cpu.overrides import hydra_overrides, sft_cpu_changes

__all__ = ["SftResult", "main", "prepare_sft_sample", "rehearse_sft"]

DEFAULT_CONFIG = "safety_sft"
METRICS_FILE = "metrics.jsonl"
RUN_NAME = "rehearse-sft"
Emit = Callable[[str], None]


@dataclass
class SftResult:
    """What the SFT rehearsal ran and found."""

    config: str
    out_dir: Path
    steps: int
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    returncode: int = -1
    hf_dir: str | None = None
    adapter: str | None = None
    grpo_overrides: list[str] = field(default_factory=list)
    lora: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Every check held."""
        return self.returncode == 0 and not self.problems

    def summary(self) -> dict[str, Any]:
        """The stage's block of the pipeline summary."""
        return {
            "ok": self.passed,
            "steps": len(self.losses),
            "loss_first": self.losses[0] if self.losses else None,
            "loss_last": self.losses[-1] if self.losses else None,
            "losses": self.losses,
            "lora_rank": self.lora.get("rank"),
            "lora_alpha": self.lora.get("alpha"),
            "seconds": round(self.seconds, 1),
            "checkpoint_dir": str(self.out_dir / "checkpoints"),
            "hf_dir": self.hf_dir,
            "lora_adapter": self.adapter,
            "metrics": str(self.out_dir / METRICS_FILE),
            "problems": self.problems,
        }


def prepare_sft_sample(cfg: Any, out_dir: str | Path) -> Path:
    """The config's shipped sample prepared into out_dir with its SFT share (sft, train and test parquet files)."""
    from omegaconf import OmegaConf

    from data.prepare import main as prepare

    argv = sample_prep_argv(cfg, out_dir)
    fraction = OmegaConf.select(cfg, "recipe.sample_sft_fraction", default=None)
    if argv is None or fraction is None:
        raise SystemExit("the SFT config names no shipped sample (recipe.sample_* and recipe.sample_sft_fraction)")
    argv = [*argv, "--sft-fraction", str(fraction)]
    if prepare(argv) != 0:
        raise SystemExit(f"could not prepare the sample data (python -m data.prepare {' '.join(argv)})")
    return Path(out_dir)


def read_losses(path: Path) -> list[tuple[int, float]]:
    """(step, train/loss) of every training record in verl's file-logger JSONL (a torn last line is left out)."""
    out = []
    if not path.is_file():
        return out
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        loss = (record.get("data") or {}).get("train/loss")
        if isinstance(loss, int | float):
            out.append((int(record["step"]), float(loss)))
    return out


class _Progress:
    """One line per logged step, as the metrics file grows."""

    def __init__(self, config: str, metrics: Path, total: int, emit: Emit) -> None:
        self.config, self.metrics, self.total, self.emit = config, metrics, total, emit
        self.seen = 0
        self.last = time.monotonic()

    def __call__(self, output: str) -> None:
        losses = read_losses(self.metrics)
        for step, loss in losses[self.seen :]:
            now = time.monotonic()
            seconds = now - self.last
            self.emit(f"[rehearse-sft] {self.config}: step {step}/{self.total}: loss {loss:.4f}, {seconds:.1f} s")
            self.last = now
        self.seen = len(losses)


def rehearse_sft(
    config: str,
    model: str | Path,
    data_dir: str | Path,
    out_dir: str | Path,
    steps: int = 4,
    user_overrides: Sequence[str] = (),
    timeout_s: float = 1800.0,
    emit: Emit = print,
) -> SftResult:
    """Train N steps on the CPU, export the last checkpoint, check the loss fell; OUT is started afresh."""
    from recipes.evaluation.export import ExportError, export
    from recipes.launch.sft_launch import build_sft_plan
    from recipes.rehearsal.cluster import _env, _plain, _run

    out = Path(out_dir)
    if out.exists():
        shutil.rmtree(out)  # a fresh run: an old checkpoint would be resumed from
    out.mkdir(parents=True)
    result = SftResult(config=config, out_dir=out, steps=steps)
    cfg = compose_config(config, user_overrides)
    train_file = Path(data_dir) / "sft.parquet"
    if not train_file.is_file():
        emit(f"[rehearse-sft] {config}: preparing the shipped sample into {data_dir} (sft.parquet, train, test)")
        prepare_sft_sample(cfg, data_dir)
    changes = sft_cpu_changes(cfg, model, train_file, out, steps)
    for change in changes:
        emit(f"[rehearse-sft] {config}: change {change.line()}")
    overrides = [*hydra_overrides(cfg, changes), *user_overrides]
    env = _env({**cpu_env(), "VERL_FILE_LOGGER_PATH": str(out / METRICS_FILE), "RUN_NAME": RUN_NAME})
    plan = build_sft_plan(config, overrides, env)
    result.lora = {"rank": int(plan.cfg.model.lora_rank or 0), "alpha": int(plan.cfg.model.lora_alpha or 0)}
    emit(f"[rehearse-sft] {config}: {steps} real SFT step(s) on the CPU (LoRA r={result.lora['rank']} "
         f"alpha={result.lora['alpha']}); log {out / 'train.log'}")  # fmt: skip
    progress = _Progress(config, out / METRICS_FILE, steps, emit)
    output, result.seconds, result.returncode = _run(plan.trainer_cmd, env, timeout_s, out / "train.log", progress)
    progress(output)
    result.losses = [loss for _, loss in read_losses(out / METRICS_FILE)]
    if result.returncode != 0:
        errors = [_plain(line) for line in output.splitlines() if "Error" in line] or [f"see {out / 'train.log'}"]
        result.problems.append(f"the SFT trainer failed (exit {result.returncode}): {errors[-1][:400]}")
        return result
    if len(result.losses) != steps:
        result.problems.append(f"{len(result.losses)} training steps logged, expected {steps}")
    elif not result.losses[-1] < result.losses[0]:
        result.problems.append(f"the loss did not fall: first {result.losses[0]}, last {result.losses[-1]}")
    try:
        exported = export(plan.checkpoint_dir)
    except ExportError as exc:
        result.problems.append(f"export failed: {exc}")
        return result
    result.hf_dir, result.adapter = exported.hf_dir, exported.adapter
    if result.lora["rank"] > 0 and not exported.adapter:
        result.problems.append(f"a LoRA run, but {exported.hf_dir} holds no lora_adapter/")
    from recipes.launch.sft_launch import grpo_overrides

    result.grpo_overrides = grpo_overrides(exported.hf_dir, plan.cfg)
    return result


def summary_line(result: SftResult) -> str:
    """The last line: `sft rehearsal passed: …` or `sft rehearsal FAILED: …`."""
    if not result.passed:
        return f"sft rehearsal FAILED: {result.config}: {'; '.join(result.problems) or 'see the log'}"
    return (
        f"sft rehearsal passed: {result.config}: {len(result.losses)} steps, loss {result.losses[0]:.4f} -> "
        f"{result.losses[-1]:.4f} in {result.seconds:.0f} s; exported {result.hf_dir} (+ lora_adapter); "
        f"GRPO from it: {' '.join(result.grpo_overrides)}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: run, print the verdict, exit 0 when every check held."""
    parser = argparse.ArgumentParser(
        prog="python -m recipes.rehearsal.rehearse_sft", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="SFT config in configs/ (default: %(default)s)")
    parser.add_argument("--model", required=True, help="a local (tiny) model directory")
    parser.add_argument("--data", required=True, help="directory with sft.parquet (the shipped sample when missing)")
    parser.add_argument("--out", default=None, help="output directory (default: outputs/rehearse/<config>)")
    parser.add_argument("--steps", type=int, default=4, help="SFT steps (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds for the trainer (default: %(default)s)")
    parser.add_argument("overrides", nargs="*", help="hydra overrides, applied after the CPU changes")
    args = parser.parse_args(argv)
    if args.steps < 2:
        parser.error("--steps must be at least 2 (the loss of the last step is compared with the first)")

    def emit(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    out = args.out or str(REPO_ROOT / "outputs" / "rehearse" / args.config)
    result = rehearse_sft(args.config, args.model, args.data, out, args.steps, args.overrides, timeout_s=args.timeout,
                          emit=emit)  # fmt: skip
    emit(summary_line(result))
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
