"""The CPU training loop: a launch config's real trainer command for N GRPO steps, a checkpoint, then a resumed step.

    python -m recipes.rehearse --config legal_grpo --model TINY --data DIR [--steps N] [overrides...]

Runs the command scripts/train_grpo.sh builds (``python3 -m recipes.main_ppo …``; for a multi-node config
``ray job submit`` to a local two-raylet cluster) with verl's own trainer on the CPU (recipes.trainer.cpu): rollout,
reward (our reward function and judge), advantages, actor update, weight sync into the rollout, validation,
checkpoint. The only changes to the config are model, data, sizes, device, rollout backend and Ray resources
(recipes.trainer.cpu.overrides); each is printed. Then the same command runs again under the same run name and
resumes from the step-N checkpoint for one more step. verl's file logger truncates its file when a run starts, so
each phase logs to its own file and ``metrics.jsonl`` gets both, in verl's format.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recipes.launch.commands import build_plan, compose_config, is_multi_node
from recipes.rehearsal.cluster import (
    CPUS_PER_GPU,
    SPARE_CPUS,
    STAGES,
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
from recipes.trainer.cpu import WEIGHTS_LOG_ENV, cpu_env
from recipes.trainer.cpu.overrides import Change, cpu_changes, hydra_overrides
from recipes.trainer.step_metrics import STOP_PREFIX

METRICS_FILE = "metrics.jsonl"
RUN_NAME_PREFIX = "rehearse"
Emit = Callable[[str], None]


class CannotRehearse(RuntimeError):
    """The config cannot run on the CPU (the message is the one line saying why and what covers it instead)."""


@dataclass
class Phase:
    """One trainer run of the rehearsal."""

    name: str
    first_step: int
    last_step: int
    returncode: int = -1
    seconds: float = 0.0
    log: str = ""
    records: list[dict[str, Any]] = field(default_factory=list)

    def error(self) -> str:
        """The trainer's stop line, else its last error line ('' when none)."""
        lines = [_plain(line) for line in self.log.splitlines()]
        stops = [line for line in lines if line.startswith(STOP_PREFIX)]
        if stops:
            return stops[-1]
        errors = [line for line in lines if re.match(r"^(?:\S+\.)?[A-Z]\w*(?:Error|Exception)\b", line)]
        return errors[-1][:600] if errors else ""


@dataclass
class LoopResult:
    """What the rehearsal ran and what it found."""

    config: str
    out_dir: Path
    steps: int
    resume: bool = True
    phases: list[Phase] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def phase_count(self) -> int:
        """2 (train, resume), or 1 without the resume."""
        return 2 if self.resume else 1

    @property
    def passed(self) -> bool:
        """Every check held."""
        return not self.problems and len(self.phases) == self.phase_count

    @property
    def metrics_path(self) -> Path:
        """Both phases' metrics, verl's file-logger format."""
        return self.out_dir / METRICS_FILE

    def records(self) -> list[dict[str, Any]]:
        """Every {"step", "data"} record of both phases, in order."""
        return [record for phase in self.phases for record in phase.records]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a JSONL file ([] when it does not exist); a torn last line is left out."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def judge_plan(cfg: Any, environ: Mapping[str, str]) -> str:
    """How the config gets its judge on the CPU: 'none', 'env' (JUDGE_BASE_URL) or 'vllm_cpu'; raises otherwise."""
    from recipes.recipe import recipe_of_config

    mode = str((cfg.get("judge") or {}).get("mode", "external"))
    kwargs = dict(cfg.reward.custom_reward_function.get("reward_kwargs") or {})
    if mode == "verl_pool":
        raise CannotRehearse(
            "verl serves this config's judge itself, on a vLLM pool of its own (reward.reward_model), and verl's "
            "vLLM rollout has no CPU build: the CPU loop cannot run it; `--wall` rehearses its placement"
        )
    if mode == "none" or not recipe_of_config(cfg).uses_judge(kwargs):
        return "none"
    if environ.get("JUDGE_BASE_URL"):
        return "env"
    from recipes.trainer.cpu.judge import cpu_judge_unavailable

    reason = cpu_judge_unavailable()
    if reason:
        raise CannotRehearse(
            f"this config needs a judge and none is available: set JUDGE_BASE_URL to an OpenAI-compatible judge, "
            f"or let the rehearsal serve the tiny model with vLLM's CPU build ({reason})"
        )
    return "vllm_cpu"


def step_line(config: str, record: Mapping[str, Any], total: int, recipe: str) -> str | None:
    """One progress line for a logged step: reward mean, judge calls, seconds (None for a validation-only record)."""
    data = record.get("data") or {}
    step = record.get("step")
    if "timing_s/step" not in data:
        accs = {k.split("/")[2]: v for k, v in data.items() if k.startswith("val-core/")}
        if not accs:
            return None
        shown = ", ".join(f"{task} {value:.2f}" for task, value in sorted(accs.items()))
        return f"[rehearse] {config}: validation at step {step}: acc {shown}"
    score = data.get("reward/overall/score_mean", data.get("critic/score/mean", float("nan")))
    calls = data.get("reward/overall/judge_calls", 0.0)
    return (
        f"[rehearse] {config}: step {step}/{total}: reward {score:+.3f}, judge calls {calls:.0f}, "
        f"{data['timing_s/step']:.1f} s"
    )


class _Progress:
    """Prints stage lines from the trainer's output and step lines from the phase's metrics file as they grow."""

    def __init__(self, config: str, metrics: Path, total: int, emit: Emit, stages_done: list[str]) -> None:
        self.config, self.metrics, self.total, self.emit = config, metrics, total, emit
        self.stages = stages_done
        self.lines_seen = 0

    def __call__(self, output: str) -> None:
        for stage in stages_reached(output)[len(self.stages) :]:
            self.stages.append(stage)
            self.emit(f"[rehearse] {self.config}: {stage}")
        records = read_jsonl(self.metrics)
        for record in records[self.lines_seen :]:
            line = step_line(self.config, record, self.total, "")
            if line:
                self.emit(line)
        self.lines_seen = len(records)


def run_phase(
    phase: Phase,
    config: str,
    overrides: Sequence[str],
    environ: Mapping[str, str],
    out_dir: Path,
    multi_node: bool,
    timeout_s: float,
    emit: Emit,
) -> Phase:
    """One trainer run (retried once when verl's rendezvous port was taken in between, EADDRINUSE)."""
    for attempt in (1, 2):
        metrics = out_dir / f"{phase.name}.jsonl"
        metrics.unlink(missing_ok=True)
        _run_once(phase, config, overrides, environ, out_dir, metrics, multi_node, timeout_s, emit)
        if phase.returncode == 0 or attempt == 2 or not port_race(phase.log):
            break
        emit(f"[rehearse] {config}: {phase.name}: a port was taken between its choice and its bind; running again")
    return phase


def _run_once(
    phase: Phase,
    config: str,
    overrides: Sequence[str],
    environ: Mapping[str, str],
    out_dir: Path,
    metrics: Path,
    multi_node: bool,
    timeout_s: float,
    emit: Emit,
) -> None:
    extra = {
        **cpu_env(),
        "VERL_FILE_LOGGER_PATH": str(metrics),
        WEIGHTS_LOG_ENV: str(weights_file(out_dir, phase.name)),
        "RUN_NAME": f"{RUN_NAME_PREFIX}-{config}",
        "RAY_AUTH_MODE": "disabled",
    }
    progress = _Progress(config, metrics, phase.last_step, emit, [])
    with private_temp_dir() as tmp:
        if multi_node:
            gpus = 1
            env = {k: v for k, v in cluster_env(tmp, _ports(), extra).items() if k != "CUDA_VISIBLE_DEVICES"}
            env.update(_judge_env(environ))
            with local_cluster(tmp, env, gpus, CPUS_PER_GPU * gpus + SPARE_CPUS // 2, _ports()):
                plan = build_plan(config, overrides, env)
                runtime_env = write_runtime_env(plan, env, {**extra, **_judge_env(environ)})
                try:
                    log = out_dir / f"{phase.name}.log"
                    output, seconds, code = _run(plan.submit_cmd, env, timeout_s, log, progress)
                finally:
                    runtime_env.unlink(missing_ok=True)
        else:
            env = {k: v for k, v in _env({**_judge_env(environ), **extra}).items() if k != "CUDA_VISIBLE_DEVICES"}
            temp = [f"+ray_kwargs.ray_init._temp_dir={tmp / 'ray'}"]
            plan = build_plan(config, [*overrides, *temp], env)
            output, seconds, code = _run(plan.trainer_cmd, env, timeout_s, out_dir / f"{phase.name}.log", progress)
    progress(output)
    phase.log, phase.seconds = output, seconds
    phase.returncode = code
    phase.records = read_jsonl(metrics)


def _ports() -> Any:
    from recipes.rehearsal.cluster import Ports

    return Ports(base=int(os.environ.get("LEGAL_REHEARSE_PORT_BASE", "21000")))


def _judge_env(environ: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in environ.items() if k in ("JUDGE_BASE_URL", "JUDGE_API_KEY")}


def check(result: LoopResult) -> list[str]:
    """What the two phases must show: N steps, validation before and at the end, checkpoint, resumed step N+1,
    the same weights after the resume, and our reward metrics on every training step."""
    problems: list[str] = []
    n = result.steps
    first, second = result.phases[0], result.phases[-1]
    for phase in result.phases:
        if phase.returncode != 0:
            problems.append(f"{phase.name} failed: {phase.error() or 'see ' + str(result.out_dir / phase.name)}.log")
    if problems:
        return problems
    train_steps = [r["step"] for r in first.records if "timing_s/step" in r.get("data", {})]
    if train_steps != list(range(1, n + 1)):
        problems.append(f"training steps logged {train_steps}, expected 1..{n}")
    last = n + 1 if result.resume else n
    if result.resume:
        resumed = [r["step"] for r in second.records if "timing_s/step" in r.get("data", {})]
        if resumed != [n + 1]:
            problems.append(f"the resumed run logged steps {resumed}, expected [{n + 1}]")
    validated = [r["step"] for r in result.records() if any(k.startswith("val-core/") for k in r.get("data", {}))]
    if 0 not in validated or last not in validated:
        problems.append(f"validation logged at steps {validated}, expected before training (0) and at {last}")
    for record in result.records():
        data = record.get("data", {})
        if "timing_s/step" in data and not any(k.startswith("reward/overall/") for k in data):
            problems.append(f"step {record['step']} has no reward/overall/* metrics")
    ckpt = result.out_dir / "checkpoints" / f"global_step_{n}"
    if not ckpt.is_dir():
        problems.append(f"no checkpoint at {ckpt}")
    if result.resume:
        saved, loaded = weights_at_resume(weights_file(result.out_dir, first.name),
                                          weights_file(result.out_dir, second.name), n)  # fmt: skip
        if saved is None or loaded is None or saved != loaded:
            problems.append(f"weights at step {n}: saved checksum {saved}, after resume {loaded}")
    return problems


def weights_file(out_dir: Path, phase: str) -> Path:
    """Where a phase's weight syncs log their checksums (recipes.trainer.cpu.rollout.log_weights)."""
    return out_dir / f"weights-{phase}.jsonl"


def weights_at_resume(first: Path, resumed: Path, step: int) -> tuple[float | None, float | None]:
    """(checksum of the last weights replica 0 got at `step` in the first run, the first it got after the resume)."""
    before = [r["checksum"] for r in read_jsonl(first) if r.get("replica") == 0 and r.get("global_steps") == step]
    after = [r["checksum"] for r in read_jsonl(resumed) if r.get("replica") == 0]
    return (before[-1] if before else None), (after[0] if after else None)


def rehearse_loop(
    config: str,
    model: str | Path,
    data_dir: str | Path,
    out_dir: str | Path,
    steps: int = 2,
    user_overrides: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    timeout_s: float = 900.0,
    emit: Emit = print,
    resume: bool = True,
) -> LoopResult:
    """Run phase 1 (steps 1..N, checkpoint at N) and phase 2 (resume, step N+1); check what they logged.
    resume=False runs phase 1 only (and checks it alone)."""
    env = dict(os.environ if environ is None else environ)
    out = Path(out_dir)
    if out.exists():
        shutil.rmtree(out)  # a fresh run: an old checkpoint would be resumed from
    out.mkdir(parents=True)
    cfg = compose_config(config, user_overrides)
    multi = is_multi_node(cfg, {})
    nodes = 2 if multi else 1
    result = LoopResult(config=config, out_dir=out, steps=steps, resume=resume)
    judge = judge_plan(cfg, env)
    changes = cpu_changes(cfg, model, data_dir, out, steps, nodes=nodes)
    for change in changes:
        emit(f"[rehearse] {config}: change {change.line()}")
    with _judge_for(judge, config, model, env, out, emit) as judge_env:
        phases = [("train", 1, steps), ("resume", steps + 1, steps + 1)][: 2 if resume else 1]
        for name, first_step, last_step in phases:
            overrides = _overrides(cfg, changes, last_step, user_overrides)
            phase = Phase(name=name, first_step=first_step, last_step=last_step)
            emit(
                f"[rehearse] {config}: {name}: steps {first_step}..{last_step}"
                + (" (ray job submit to a local 2-node cluster)" if multi else " (local Ray)")
            )
            run_phase(phase, config, overrides, {**env, **judge_env}, out, multi, timeout_s, emit)
            result.phases.append(phase)
            if phase.returncode != 0:
                break
    _write_metrics(result)
    if len(result.phases) == result.phase_count:
        result.problems = check(result)
    else:
        failed = result.phases[-1]
        result.problems = [f"{failed.name} failed: {failed.error() or 'see ' + str(out / failed.name) + '.log'}"]
    return result


def _overrides(cfg: Any, changes: Sequence[Change], total_steps: int, user_overrides: Sequence[str]) -> list[str]:
    """CPU changes (total steps set per phase), then the user's overrides, which win."""
    phase_changes = [
        Change(c.key, total_steps, c.was, c.why) if c.key == "trainer.total_training_steps" else c for c in changes
    ]
    return [*hydra_overrides(cfg, phase_changes), *user_overrides]


def _write_metrics(result: LoopResult) -> None:
    """Both phases' records, in order, to metrics.jsonl (verl's {"step", "data"} lines)."""
    lines = [json.dumps(record, ensure_ascii=False) for record in result.records()]
    result.metrics_path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


class _judge_for:  # noqa: N801 - used as a context manager
    """The judge environment of the run: nothing, JUDGE_BASE_URL as given, or a vLLM CPU judge started here."""

    def __init__(
        self, how: str, config: str, model: str | Path, environ: Mapping[str, str], out: Path, emit: Emit
    ) -> None:
        self.how, self.config, self.model, self.environ, self.out, self.emit = how, config, model, environ, out, emit
        self.server: Any = None

    def __enter__(self) -> dict[str, str]:
        if self.how == "none":
            return {}
        if self.how == "env":
            self.emit(f"[rehearse] {self.config}: judge: JUDGE_BASE_URL={self.environ['JUDGE_BASE_URL']}")
            return {}
        from recipes.trainer.cpu.judge import start_cpu_judge

        self.server = start_cpu_judge(self.config, self.model, self.out, self.emit)
        return {"JUDGE_BASE_URL": self.server.base_url}

    def __exit__(self, *exc: object) -> None:
        if self.server is not None:
            self.server.stop()


def summary_line(result: LoopResult, elapsed_s: float) -> str:
    """The last line of the rehearsal: `rehearsal passed: …` or `rehearsal FAILED: …`."""
    if result.passed:
        return (
            f"rehearsal passed: {result.config}: {result.steps} steps, validation, checkpoint global_step_"
            f"{result.steps}, resumed step {result.steps + 1} with the same weights in {elapsed_s:.0f} s; "
            f"metrics: {result.metrics_path}"
        )
    return f"rehearsal FAILED: {result.config}: {'; '.join(result.problems)}"


def main_loop(
    config: str, model: str, data_dir: str, out_dir: str, steps: int, overrides: Sequence[str], timeout_s: float
) -> int:
    """CLI body: run, print the verdict, exit status."""
    start = time.monotonic()

    def emit(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    try:
        result = rehearse_loop(config, model, data_dir, out_dir, steps, overrides, timeout_s=timeout_s, emit=emit)
    except CannotRehearse as exc:
        emit(f"rehearsal FAILED: {config}: {exc}")
        return 1
    emit(summary_line(result, time.monotonic() - start))
    return 0 if result.passed else 1


__all__ = ["STAGES", "CannotRehearse", "LoopResult", "Phase", "check", "main_loop", "rehearse_loop"]
