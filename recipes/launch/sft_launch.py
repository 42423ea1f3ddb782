"""The SFT stage's launch: verl's own SFT trainer under torchrun, and the checks to run before it (CPU, offline).

scripts/train_sft.sh runs exactly what this module prints; composition, run naming and override handling are the
GRPO launch's (recipes/launch/commands.py), so both stages name runs and read configs the same way:

    python -m recipes.sft_launch plan [--dry-run] --config safety_sft [overrides...]
    python -m recipes.sft_launch export --checkpoint-dir checkpoints/safety-sft/<run>

prints bash variables for the script on stdout and the checks (PASS/WARN/FAIL lines) on stderr; PLAN_CHECK_FAILED=1
when one failed (missing data is a WARN with --dry-run, nothing trains then; a FAIL otherwise).

The trainer is `torchrun --standalone --nnodes=1 --nproc_per_node=<trainer.n_gpus_per_node> -m
verl.trainer.sft_trainer` (verl 0.9.1's examples/sft scripts launch it the same way), spelled
`python -m torch.distributed.run` so the project's interpreter runs it. One node only.
`export` turns the latest checkpoint into what the GRPO stage reads, with verl's own merger
(`python -m verl.model_merger merge --backend fsdp`): `<dir>/hf/` (base weights, config, tokenizer) and
`<dir>/hf/lora_adapter/` (the adapter, unmerged), then prints the GRPO overrides that start from it.
Environment read here: RUN_NAME, RUN_TAG (run naming), PYTHON (trainer interpreter).
"""

from __future__ import annotations

import data.setup_hint  # noqa: F401  (first: a missing package is one line, not a traceback)  # isort: skip
import argparse
import datetime as _dt
import os
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recipes.launch.commands import (
    CONFIG_DIR,
    EXPERIMENT_KEY,
    ConfigError,
    compose_config,
    config_name_of,
    override_keys,
    run_name,
)

DEFAULT_CONFIG = "safety_sft"
SFT_TRAINERS = ("sft_trainer_engine",)  # the verl trainer config scripts/train_sft.sh launches
SFT_MODULE = "verl.trainer.sft_trainer"
PASS, WARN, FAIL = "PASS", "WARN", "FAIL"


def sft_command(config_name: str, overrides: Sequence[str], nproc_per_node: int, python: str = "python3") -> list[str]:
    """`python3 -m torch.distributed.run --standalone --nnodes=1 --nproc_per_node=N -m verl.trainer.sft_trainer ...`."""
    return [
        python,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nnodes=1",
        f"--nproc_per_node={nproc_per_node}",
        "-m",
        SFT_MODULE,
        f"--config-path={CONFIG_DIR}",
        f"--config-name={config_name_of(config_name, trainers=SFT_TRAINERS)}",
        *overrides,
    ]


def train_files(cfg: Any) -> list[str]:
    """data.train_files and data.val_files (each a path, a list, or null), as paths."""
    from omegaconf import ListConfig

    out: list[str] = []
    for key in ("train_files", "val_files"):
        value = cfg.data.get(key)
        if value is None:
            continue
        items = list(value) if isinstance(value, (list, tuple, ListConfig)) else [value]
        out.extend(os.path.expanduser(str(v)) for v in items)
    return out


def export_command(step_dir: str, target_dir: str, python: str = "python3") -> list[str]:
    """verl's merger: FSDP shards of a PEFT model -> target_dir (base weights) + target_dir/lora_adapter."""
    return [python, "-m", "verl.model_merger", "merge", "--backend", "fsdp", "--local_dir", step_dir,
            "--target_dir", target_dir]  # fmt: skip


def grpo_overrides(target_dir: str, cfg: Any) -> list[str]:
    """The GRPO overrides that start from the exported SFT model (LoRA on, the adapter loaded trainable)."""
    prefix = "actor_rollout_ref.model"
    return [
        f"{prefix}.path={target_dir}",
        f"{prefix}.lora_adapter_path={target_dir}/lora_adapter",
        f"{prefix}.lora_rank={int(cfg.model.lora_rank)}",
        f"{prefix}.lora_alpha={int(cfg.model.lora_alpha)}",
    ]


def latest_step_dir(checkpoint_dir: str) -> str | None:
    """The newest global_step_<N> under checkpoint_dir (verl's tracker file), or None."""
    from verl.utils.checkpoint.checkpoint_manager import find_latest_ckpt_path

    return find_latest_ckpt_path(checkpoint_dir)


@dataclass
class SftPlan:
    """Everything scripts/train_sft.sh needs, from one composition."""

    config_name: str
    overrides: list[str]
    run_name: str
    checkpoint_dir: str
    nproc_per_node: int
    data_files: list[str]
    data_missing: bool
    trainer_cmd: list[str]
    export_cmd: list[str]
    cfg: Any


def build_sft_plan(
    config: str, user_overrides: Sequence[str], environ: Mapping[str, str], today: _dt.date | None = None
) -> SftPlan:
    """Compose once; add the run name (unless given) and build the trainer command."""
    from omegaconf import open_dict

    name = config_name_of(config, trainers=SFT_TRAINERS)
    cfg = compose_config(name, user_overrides)
    overrides = list(user_overrides)
    if EXPERIMENT_KEY not in override_keys(user_overrides):
        run = run_name(str(cfg.trainer.experiment_name), environ, today)
        overrides.append(f"{EXPERIMENT_KEY}={run}")
        with open_dict(cfg):
            cfg.trainer.experiment_name = run
    files = train_files(cfg)
    nproc = int(cfg.trainer.n_gpus_per_node)
    python = environ.get("PYTHON", "python3")
    ckpt = str(cfg.trainer.default_local_dir)
    return SftPlan(
        config_name=name,
        overrides=overrides,
        run_name=str(cfg.trainer.experiment_name),
        checkpoint_dir=ckpt,
        nproc_per_node=nproc,
        data_files=files,
        data_missing=any(not Path(f).is_file() for f in files),
        trainer_cmd=sft_command(name, overrides, nproc, python=python),
        export_cmd=[python, "-m", "recipes.sft_launch", "export", "--config", name, *overrides],
        cfg=cfg,
    )


def plan_to_bash(plan: SftPlan) -> str:
    """Bash assignments (for `eval`); every value shell-quoted."""

    def array(values: Sequence[str]) -> str:
        return "(" + " ".join(shlex.quote(v) for v in values) + ")"

    return (
        f"PLAN_CONFIG={shlex.quote(plan.config_name)}\n"
        f"PLAN_OVERRIDES={array(plan.overrides)}\n"
        f"PLAN_RUN_NAME={shlex.quote(plan.run_name)}\n"
        f"PLAN_CHECKPOINT_DIR={shlex.quote(plan.checkpoint_dir)}\n"
        f"PLAN_GPUS={plan.nproc_per_node}\n"
        f"PLAN_DATA_FILES={array(plan.data_files)}\n"
        f"PLAN_DATA_MISSING={int(plan.data_missing)}\n"
        f"PLAN_TRAINER_CMD={array(plan.trainer_cmd)}\n"
        f"PLAN_EXPORT_CMD={array(plan.export_cmd)}\n"
    )


# ------------------------------------------------------------------------------------------------------ checks


def fitting_batch(limit: int, gpus: int, micro: int) -> list[str]:
    """The overrides of the largest global batch <= limit that splits into micro batches on every GPU.

    Keeps the GPUs and micro batch when one step of them fits (batch = a multiple of GPUs x micro), else lowers the
    micro batch, then the GPUs: ``data.train_batch_size=N`` plus whichever of the two changed. [] when limit < 1.
    """
    for g in range(gpus, 0, -1):
        for m in range(micro, 0, -1):
            step = g * m
            if step <= limit:
                out = [f"data.train_batch_size={limit // step * step}"]
                out += [f"data.micro_batch_size_per_gpu={m}"] if m != micro else []
                return out + ([f"trainer.n_gpus_per_node={g}"] if g != gpus else [])
    return []


def _try(overrides: Sequence[str]) -> str:
    """' — try A B' for a list of overrides ('' when there is none)."""
    return f" — try {' '.join(overrides)}" if overrides else ""


def check_shape(cfg: Any) -> list[tuple[str, str]]:
    """One node; the global batch splits into micro batches on every GPU; LoRA on with a non-zero alpha."""
    out = []
    nnodes, gpus = int(cfg.trainer.nnodes), int(cfg.trainer.n_gpus_per_node)
    if nnodes != 1:
        out.append((FAIL, f"trainer.nnodes={nnodes}: scripts/train_sft.sh launches one node (torchrun --standalone)"))
    batch, micro = int(cfg.data.train_batch_size), int(cfg.data.micro_batch_size_per_gpu)
    per_gpu, rest = divmod(batch, gpus)
    fit = _try(fitting_batch(batch, gpus, 1 if cfg.data.use_dynamic_bsz else micro))
    if rest or per_gpu == 0:
        out.append((FAIL, f"data.train_batch_size={batch} does not split over trainer.n_gpus_per_node={gpus}{fit}"))
    elif not cfg.data.use_dynamic_bsz and per_gpu % micro:
        out.append((FAIL, f"{batch} / {gpus} GPUs = {per_gpu} per GPU does not divide by micro batch {micro}{fit}"))
    else:
        accumulation = "token budget" if cfg.data.use_dynamic_bsz else f"accumulation {per_gpu // micro}"
        out.append((PASS, f"batch {batch} = {gpus} GPUs x {per_gpu} per GPU ({accumulation})"))
    rank, alpha = int(cfg.model.lora_rank or 0), int(cfg.model.lora_alpha or 0)
    if rank <= 0 or alpha <= 0:
        out.append((FAIL, f"model.lora_rank={rank}, model.lora_alpha={alpha}: the SFT stage is LoRA (both > 0)"))
    else:
        out.append((PASS, f"LoRA r={rank} alpha={alpha} on {cfg.model.target_modules}"))
    return out


def check_data(cfg: Any, files: Sequence[str]) -> list[tuple[str, str]]:
    """Each data file exists, has the messages column, and the train set fills at least one global batch."""
    import pyarrow.parquet as pq

    key, batch = str(cfg.data.messages_key), int(cfg.data.train_batch_size)
    out = []
    for i, path in enumerate(files):
        if not Path(path).is_file():
            out.append((FAIL, f"{path} not found — python -m data.prepare --source safety ... --sft-fraction 0.15"))
            continue
        try:
            meta = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow raises several types for a bad file
            out.append((FAIL, f"{path} is not a readable parquet file ({exc})"))
            continue
        if key not in meta.schema_arrow.names:
            out.append((FAIL, f"{path} has no column {key!r} (data.messages_key); columns: {meta.schema_arrow.names}"))
            continue
        rows = meta.metadata.num_rows
        if i == 0 and rows < batch:
            gpus, micro = int(cfg.trainer.n_gpus_per_node), int(cfg.data.micro_batch_size_per_gpu)
            fit = fitting_batch(rows, gpus, 1 if cfg.data.use_dynamic_bsz else micro)
            hint = f" — for {rows} rows try {' '.join(fit)}, or prepare more SFT rows" if fit else ""
            out.append(
                (FAIL, f"{path}: {rows} rows < data.train_batch_size={batch}: an epoch would have no step{hint}")
            )
        else:
            out.append((PASS, f"{path}: {rows} rows, column {key!r}"))
    return out


def run_checks(plan: SftPlan, dry_run: bool) -> int:
    """Print every check to stderr; missing data is a WARN in a dry run, a FAIL otherwise. 1 when one failed."""
    results = check_shape(plan.cfg)
    for status, line in check_data(plan.cfg, plan.data_files):
        if dry_run and status == FAIL and "not found" in line:
            status, line = WARN, f"{line} (a real run stops here)"
        results.append((status, line))
    for status, line in results:
        sys.stderr.write(f"[sft-check] {status} {line}\n")
    return 1 if any(status == FAIL for status, _ in results) else 0


# --------------------------------------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m recipes.sft_launch", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    s = sub.add_parser("plan", help="bash variables (stdout) and the checks (stderr)")
    s.add_argument("--config", default=DEFAULT_CONFIG, help="config name in configs/ (default: %(default)s)")
    s.add_argument("--dry-run", action="store_true", help="missing data is a warning, not a failure")
    s.add_argument("overrides", nargs="*", help="hydra overrides")
    e = sub.add_parser("export", help="latest checkpoint -> <checkpoint dir>/hf (+ lora_adapter) for GRPO")
    e.add_argument("--config", default=DEFAULT_CONFIG, help="config name in configs/ (default: %(default)s)")
    e.add_argument("overrides", nargs="*", help="the training run's hydra overrides (the checkpoint dir follows)")
    return p


def export(plan: SftPlan, python: str) -> int:
    """Run verl's merger on the run's latest checkpoint and print the GRPO overrides; 1 when there is none."""
    step_dir = latest_step_dir(plan.checkpoint_dir)
    if step_dir is None:
        sys.stderr.write(f"error: no checkpoint in {plan.checkpoint_dir} (latest_checkpointed_iteration.txt)\n")
        return 1
    target = str(Path(plan.checkpoint_dir) / "hf")
    cmd = export_command(step_dir, target, python=python)
    sys.stderr.write(f"[sft-export] {shlex.join(cmd)}\n")
    status = subprocess.run(cmd, check=False).returncode
    if status != 0 or not (Path(target) / "lora_adapter" / "adapter_config.json").is_file():
        sys.stderr.write(f"error: verl.model_merger failed (exit {status}) or wrote no {target}/lora_adapter\n")
        return 1
    sys.stdout.write("GRPO from this SFT run: " + " ".join(grpo_overrides(target, plan.cfg)) + "\n")
    return 0


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """CLI: the plan as bash variables, with the checks' verdict in PLAN_CHECK_FAILED."""
    args = _parser().parse_args(argv)
    env = dict(os.environ if environ is None else environ)
    try:
        plan = build_sft_plan(args.config, args.overrides, env)
    except ConfigError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    if args.what == "export":
        return export(plan, sys.executable)
    failed = run_checks(plan, args.dry_run)
    sys.stdout.write(plan_to_bash(plan) + f"PLAN_CHECK_FAILED={failed}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
