"""Rehearse a launch on CPU: the exact trainer command through a real local Ray, up to verl's GPU wall.

    python -m recipes.rehearse --config legal_grpo --model TINY_MODEL_DIR --data PREPARED_DIR [--cluster]

Runs the command scripts/train_grpo.sh builds (`python3 -m recipes.main_ppo --config-path=… --config-name=…`,
or for a multi-node config `ray job submit --runtime-env=… --working-dir . -- …` against a local two-raylet Ray
cluster) with only these overrides: the model path (policy and judge), the data files, the console logger and Ray
resources (CPU slots for verl's TransferQueue, as many Ray GPUs as the config asks for, a private Ray temp dir).
Without a GPU, verl stops at the workers' model init (`actor_rollout[_ref]_init_model`: NCCL/CUDA); everything before
it — hydra, validate_config, Ray start-up, unpickling our TaskRunner and trainer on a Ray worker, the datasets, the
resource pools, the worker group — is real. Prints one line per stage reached; exit 0 only when the run stopped at
that wall. Use `bash scripts/train_grpo.sh --rehearse [--config NAME]`, which builds a tiny model and sample data.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recipes.launch.commands import (
    GRPO_TRAINERS,
    REPO_ROOT,
    ConfigError,
    JudgeSpec,
    build_plan,
    compose_config,
    is_multi_node,
    judge_gpu_count,
    sample_prep_argv,
)
from recipes.rehearsal.cluster import (
    CPUS_PER_GPU,
    SPARE_CPUS,
    STAGES,
    Ports,
    _env,
    _plain,
    _run,
    cluster_env,
    local_cluster,
    port_race,
    private_temp_dir,
    stages_reached,
    write_runtime_env,
)
from recipes.trainer.step_metrics import STOP_PREFIX

logger = logging.getLogger(__name__)

# The worker group's model-init call: actor_rollout_ref_… with a reference policy, actor_rollout_… without one
# (e.g. Dr. GRPO, no KL loss).
INIT_MODEL = re.compile(STAGES[-1][1])
# What stops a CPU run at the model init: no NCCL / CUDA in this torch.
WALL = re.compile(r"NCCL|CUDA|cuda|nvidia|GPU", re.UNICODE)
ERROR_LINE = re.compile(r"^(?:\S+\.)?[A-Z]\w*(?:Error|Exception)\b.*|^" + re.escape(STOP_PREFIX) + " .*")


@dataclass
class Rehearsal:
    """What one rehearsal ran and how far it got."""

    config: str
    command: list[str]
    stages: list[str] = field(default_factory=list)
    at_wall: bool = False
    reason: str = ""
    seconds: float = 0.0
    log: str = ""

    def lines(self) -> list[str]:
        """One line per stage reached, then the verdict."""
        out = [f"[rehearse] {self.config}: {stage}" for stage in self.stages]
        if self.at_wall:
            out.append(
                f"[rehearse] {self.config}: OK — stopped at the GPU wall ({self.reason}) in {self.seconds:.0f} s"
            )
        else:
            out.append(
                f"[rehearse] {self.config}: FAILED before the GPU wall after {self.seconds:.0f} s: {self.reason}"
            )
        return out


def ray_gpus(config: str) -> int:
    """GPUs Ray must offer for the config's resource pools (training GPUs, plus a verl-served judge's pool)."""
    cfg = compose_config(config)
    judge = JudgeSpec.from_config(cfg)
    pool = judge_gpu_count(cfg, judge) if judge.mode == "verl_pool" else 0
    return int(cfg.trainer.n_gpus_per_node) * int(cfg.trainer.nnodes) + pool * int(cfg.reward.reward_model.nnodes)


def rehearsal_overrides(model: str, data_dir: str, ray_temp_dir: str | None, gpus: int | None) -> list[str]:
    """The only overrides: model path (policy + judge), data files, logger, Ray resources (None: the cluster's)."""
    out = [
        f"actor_rollout_ref.model.path={model}",
        f"judge.model={model}",
        f"data.train_files={data_dir}/train.parquet",
        f"data.val_files={data_dir}/test.parquet",
        "trainer.logger=[console]",
    ]
    if gpus is not None:
        out += [
            f"ray_kwargs.ray_init.num_cpus={CPUS_PER_GPU * gpus + SPARE_CPUS}",
            f"+ray_kwargs.ray_init.num_gpus={gpus}",
            f"+ray_kwargs.ray_init._temp_dir={ray_temp_dir}",
            "+ray_kwargs.ray_init.include_dashboard=false",
        ]
    return out


def analyse(config: str, command: list[str], output: str, seconds: float) -> Rehearsal:
    """Stages reached (in order, each proven by a line of output) and whether the run ended at the GPU wall."""
    result = Rehearsal(config=config, command=command, seconds=seconds, log=output)
    result.stages = stages_reached(output)
    errors = [line for line in output.splitlines() if ERROR_LINE.match(_plain(line))]
    last = _plain(errors[-1]) if errors else "no error line in the output (see the log)"
    init = INIT_MODEL.search(output)
    init_tail = output[init.start() :] if init else ""
    wall = [_plain(line) for line in init_tail.splitlines() if ERROR_LINE.match(_plain(line)) and WALL.search(line)]
    if result.stages and result.stages[-1] == STAGES[-1][0] and wall:
        result.at_wall, result.reason = True, wall[-1][:300]
    else:
        result.reason = last[:600]
    return result


def rehearse_single_node(
    config: str, model: str, data_dir: str, timeout_s: float = 600.0, on_output: Callable[[str], None] | None = None
) -> Rehearsal:
    """The exact single-node trainer command through a local Ray started by verl's own ray.init (run once more when
    another process took verl's rendezvous port between its choice and its bind: PORT_RACE)."""
    for attempt in (1, 2):
        with private_temp_dir() as tmp:
            overrides = rehearsal_overrides(model, data_dir, str(tmp / "ray"), ray_gpus(config))
            plan = build_plan(config, overrides, _env())
            if plan.multi_node:
                raise ValueError(f"{config} is a multi-node config: rehearse it with --cluster")
            output, seconds, _ = _run(plan.trainer_cmd, _env(), timeout_s, tmp / "trainer.log", on_output)
        result = analyse(config, plan.trainer_cmd, output, seconds)
        if result.at_wall or attempt == 2 or not port_race(output):
            return result
    raise AssertionError("unreachable")


def rehearse_cluster(
    config: str,
    model: str,
    data_dir: str,
    ports: Ports | None = None,
    timeout_s: float = 600.0,
    on_output: Callable[[str], None] | None = None,
) -> Rehearsal:
    """A head and a second raylet on this machine, then `ray job submit` exactly as train_grpo.sh builds it."""
    ports = ports or Ports()
    gpus = ray_gpus(config)
    per_node_gpus = -(-gpus // 2)
    with private_temp_dir() as tmp:
        env = cluster_env(tmp, ports)
        with local_cluster(tmp, env, per_node_gpus, CPUS_PER_GPU * per_node_gpus + SPARE_CPUS // 2, ports):
            overrides = rehearsal_overrides(model, data_dir, None, None)
            plan = build_plan(config, overrides, env)
            runtime_env = write_runtime_env(plan, env)
            try:
                output, seconds, _ = _run(plan.submit_cmd, env, timeout_s, tmp / "submit.log", on_output)
            finally:
                runtime_env.unlink(missing_ok=True)
    return analyse(config, plan.submit_cmd, output, seconds)


def prepare_sample(cfg: Any, out_dir: str | Path) -> Path:
    """Prepare the config's shipped fictional sample (recipe.sample_*) into out_dir with data.prepare."""
    from data.prepare import main as prepare

    argv = sample_prep_argv(cfg, out_dir)
    if argv is None:
        raise SystemExit("the config names no shipped sample (recipe.sample_source / recipe.sample_input): pass --data")
    if prepare([*argv]) != 0:
        raise SystemExit(f"could not prepare the sample data ({' '.join(argv)})")
    return Path(out_dir)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: the CPU training loop (default) or, with --wall, the exact placement up to the GPU wall."""
    parser = argparse.ArgumentParser(prog="python -m recipes.rehearse", description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="config name in configs/")
    parser.add_argument("--model", required=True, help="a local (tiny) model directory")
    parser.add_argument(
        "--data",
        required=True,
        help="directory with train.parquet and test.parquet (prepared from the config's shipped sample when missing)",
    )
    parser.add_argument("--steps", type=int, default=2, help="training steps before the resumed one (default: 2)")
    parser.add_argument("--out", help="output directory of the loop (default: outputs/rehearse/<config>)")
    parser.add_argument(
        "--wall",
        action="store_true",
        help="instead of the CPU loop: the config's exact GPU placement through Ray, up to the workers' model init",
    )
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="--wall: a local two-raylet cluster + ray job submit (the default for a multi-node config)",
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per trainer run (default: %(default)s)")
    parser.add_argument("--log", help="--wall: write the trainer's whole output here")
    parser.add_argument("overrides", nargs="*", help="hydra overrides, applied after the CPU changes")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    try:  # a GRPO config (an SFT one names its own script: bash scripts/train_sft.sh --rehearse)
        cfg = compose_config(args.config, args.overrides, trainers=GRPO_TRAINERS)
    except ConfigError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    if not (Path(args.data) / "test.parquet").exists():
        prepare_sample(cfg, args.data)
    if not args.wall:
        from recipes.rehearsal.rehearse_loop import main_loop

        out = args.out or str(REPO_ROOT / "outputs" / "rehearse" / args.config)
        return main_loop(args.config, args.model, args.data, out, args.steps, args.overrides, args.timeout)
    if args.overrides:
        parser.error("--wall rehearses the config as it is: it takes no hydra overrides")
    cluster = args.cluster or is_multi_node(cfg, {})
    run = rehearse_cluster if cluster else rehearse_single_node
    printed: list[str] = []

    def progress(output: str) -> None:
        for stage in stages_reached(output)[len(printed) :]:
            printed.append(stage)
            sys.stdout.write(f"[rehearse] {args.config}: {stage}\n")
            sys.stdout.flush()

    sys.stdout.write(
        f"[rehearse] {args.config}: {'ray job submit to a local 2-node cluster' if cluster else 'local Ray'}\n"
    )
    result = run(args.config, args.model, args.data, timeout_s=args.timeout, on_output=progress)
    if args.log:
        Path(args.log).write_text(result.log, encoding="utf-8")
    sys.stdout.write("\n".join(result.lines()[len(printed) :]) + "\n")
    return 0 if result.at_wall else 1


if __name__ == "__main__":
    sys.exit(main())
