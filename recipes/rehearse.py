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
import contextlib
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recipes.commands import (
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
from recipes.step_metrics import STOP_PREFIX

logger = logging.getLogger(__name__)

# verl's resource pool bundles ask max_colocate_count (3) CPUs per GPU; TransferQueue, the reward and agent-loop
# workers need more slots on top (init hangs without them on a small box).
CPUS_PER_GPU = 3
SPARE_CPUS = 32
# Stages in the order verl reaches them: (name, a line of the trainer's output that proves it).
STAGES: tuple[tuple[str, str], ...] = (
    ("verl validate_config", r"\[validate_config\] All configuration checks passed"),
    ("ray up", r"Started a local Ray instance|Connected to Ray cluster|Connecting to existing Ray cluster"),
    ("task runner on a Ray worker", r"\(RecipeTaskRunner pid=\d+"),
    ("datasets", "train and validate dataloader initialized"),
    ("worker group", "create worker group"),
    ("workers' model init", r"actor_rollout(?:_ref)?_init_model"),
)
# The worker group's model-init call: actor_rollout_ref_… with a reference policy, actor_rollout_… without one
# (e.g. Dr. GRPO, no KL loss).
INIT_MODEL = re.compile(STAGES[-1][1])
# What stops a CPU run at the model init: no NCCL / CUDA in this torch.
WALL = re.compile(r"NCCL|CUDA|cuda|nvidia|GPU", re.UNICODE)
# What another process taking verl's rendezvous port between its choice and its bind looks like: retried once.
PORT_RACE = re.compile(r"EADDRINUSE|[Aa]ddress already in use")
ERROR_LINE = re.compile(r"^(?:\S+\.)?[A-Z]\w*(?:Error|Exception)\b.*|^" + re.escape(STOP_PREFIX) + " .*")


@dataclass
class Ports:
    """Ports of a local two-raylet cluster (head + one more node); all inside one range."""

    base: int = 21000

    def head(self) -> list[str]:
        """`ray start --head` port flags."""
        b = self.base
        return [
            f"--port={b}",
            f"--dashboard-port={b + 1}",
            f"--ray-client-server-port={b + 2}",
            *self._node(b + 3),
        ]

    def worker(self) -> list[str]:
        """`ray start --address` port flags of the second raylet."""
        return self._node(self.base + 13, worker_ports=(self.base + 400, self.base + 699))

    def _node(self, b: int, worker_ports: tuple[int, int] | None = None) -> list[str]:
        low, high = worker_ports or (self.base + 100, self.base + 399)
        return [
            f"--node-manager-port={b}",
            f"--object-manager-port={b + 1}",
            f"--metrics-export-port={b + 2}",
            f"--dashboard-agent-listen-port={b + 3}",
            f"--dashboard-agent-grpc-port={b + 4}",
            f"--runtime-env-agent-port={b + 5}",
            f"--min-worker-port={low}",
            f"--max-worker-port={high}",
        ]

    @property
    def gcs(self) -> str:
        """The head's GCS address."""
        return f"127.0.0.1:{self.base}"

    @property
    def dashboard(self) -> str:
        """The job-submission address."""
        return f"http://127.0.0.1:{self.base + 1}"


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


def _plain(line: str) -> str:
    """A log line without Ray's ANSI colours and (Actor pid=…) prefix."""
    line = re.sub(r"\x1b\[[0-9;]*m", "", line)
    return re.sub(r"^\([^)]*pid=\d+[^)]*\)\s*", "", line).strip()


def _env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The launch script's environment: this venv first on PATH, the repo on PYTHONPATH, no inherited cluster."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "NNODES", "CUDA_VISIBLE_DEVICES")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = f"{REPO_ROOT}{os.pathsep}{env['PYTHONPATH']}" if env.get("PYTHONPATH") else str(REPO_ROOT)
    env.setdefault("RAY_DISABLE_USAGE_STATS", "1")
    env.update(extra or {})
    return env


def _run(
    command: Sequence[str],
    env: Mapping[str, str],
    timeout_s: float,
    log_path: Path,
    on_output: Callable[[str], None] | None = None,
) -> tuple[str, float, int]:
    """Run command in its own process group, output to log_path (on_output sees it as it grows); stop the group on
    timeout or when done; (output, seconds, exit status: 124 on timeout)."""
    start = time.monotonic()
    returncode = 124
    with log_path.open("w", encoding="utf-8", errors="replace") as log:
        proc = subprocess.Popen(
            list(command), cwd=REPO_ROOT, env=dict(env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            while proc.poll() is None:
                if time.monotonic() - start > timeout_s:
                    _stop_group(proc.pid)
                    log.write(f"\nTimeoutError: the rehearsal did not end within {timeout_s:.0f} s\n")
                    break
                time.sleep(2.0)
                if on_output is not None:
                    on_output(log_path.read_text(encoding="utf-8", errors="replace"))
            else:
                returncode = proc.returncode
        finally:
            _stop_group(proc.pid, grace_s=2.0)
    return log_path.read_text(encoding="utf-8", errors="replace"), time.monotonic() - start, returncode


def stages_reached(output: str) -> list[str]:
    """The STAGES whose line is in output, in order, up to the first missing one."""
    reached = []
    for name, pattern in STAGES:
        if not re.search(pattern, output):
            break
        reached.append(name)
    return reached


def _stop_group(pgid: int, grace_s: float = 10.0) -> None:
    """TERM the process group, KILL it after grace_s; quiet when it is already gone."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 0.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)


def stop_processes_mentioning(marker: str) -> list[int]:
    """Stop (TERM, then KILL) the processes whose command line contains marker (our private Ray temp dir)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            pids.append(int(entry.name))
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        if sig == signal.SIGTERM and pids:
            time.sleep(2.0)
    return pids


@contextlib.contextmanager
def private_temp_dir() -> Iterator[Path]:
    """A short private directory for Ray (its socket paths must stay under 107 characters); removed after."""
    path = Path(tempfile.mkdtemp(prefix="lr", dir="/tmp"))
    try:
        yield path
    finally:
        stop_processes_mentioning(str(path))
        shutil.rmtree(path, ignore_errors=True)


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


def port_race(output: str) -> bool:
    """Whether a run failed because another process took a port between its choice and its bind (EADDRINUSE)."""
    return bool(PORT_RACE.search(output))


def _wait_for_nodes(address: str, count: int, env: Mapping[str, str], timeout_s: float = 120.0) -> None:
    """Until `count` alive nodes are registered with the head."""
    probe = (
        "import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR'); "
        "print(sum(1 for n in ray.nodes() if n['Alive']))"
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        proc = subprocess.run(
            [sys.executable, "-c", probe, address], env=dict(env), capture_output=True, text=True, timeout=60
        )
        if proc.returncode == 0 and proc.stdout.strip().splitlines()[-1:] == [str(count)]:
            return
        time.sleep(2.0)
    raise TimeoutError(f"the local Ray cluster did not reach {count} nodes in {timeout_s:.0f} s")


@contextlib.contextmanager
def local_cluster(tmp: Path, env: Mapping[str, str], gpus_per_node: int, cpus_per_node: int,
                  ports: Ports | None = None) -> Iterator[Ports]:
    """A head and a second raylet on this machine (private temp dir, ports of `ports`); stopped on exit."""
    ports = ports or Ports()
    node = [f"--num-cpus={cpus_per_node}", f"--num-gpus={gpus_per_node}"]
    ray = str(Path(sys.executable).parent / "ray")
    cluster_env = {k: v for k, v in env.items() if k != "RAY_ADDRESS"}
    head = subprocess.Popen(
        [ray, "start", "--head", "--block", "--node-ip-address=127.0.0.1", "--dashboard-host=127.0.0.1",
         "--include-dashboard=true", f"--temp-dir={tmp / 'ray'}", "--disable-usage-stats", *ports.head(), *node],
        env=cluster_env, stdout=(tmp / "head.log").open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    second = None
    try:
        _wait_for_nodes(ports.gcs, 1, cluster_env)
        second = subprocess.Popen(
            [ray, "start", "--block", f"--address={ports.gcs}", "--node-ip-address=127.0.0.1", *ports.worker(),
             *node],
            env=cluster_env, stdout=(tmp / "node2.log").open("w"), stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        _wait_for_nodes(ports.gcs, 2, cluster_env)
        yield ports
    finally:
        for proc in (second, head):
            if proc is not None:
                _stop_group(proc.pid)


def cluster_env(tmp: Path, ports: Ports, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The submitting shell's environment for a private local cluster (shared dir inside tmp, no token auth)."""
    shared = tmp / "shared"
    shared.mkdir(exist_ok=True)
    # Token auth off for this throwaway cluster: its token file (~/.ray) would be shared with any other cluster of
    # this user on the machine.
    return _env({"LEGAL_SHARED_DIR": str(shared), "RAY_ADDRESS": ports.dashboard, "RAY_AUTH_MODE": "disabled",
                 **(extra or {})})


def write_runtime_env(plan: Any, env: Mapping[str, str], extra_env: Mapping[str, str] | None = None) -> Path:
    """The plan's runtime-env file as `recipes.commands runtime-env` writes it, plus extra_env; the path."""
    import yaml

    from recipes.commands import RUNTIME_ENV_TEMPLATE, build_runtime_env

    data = build_runtime_env(RUNTIME_ENV_TEMPLATE, env)
    data["env_vars"].update(extra_env or {})
    path = REPO_ROOT / plan.runtime_env_path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        yaml.safe_dump(data, handle, sort_keys=False)
    return path


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
        from recipes.rehearse_loop import main_loop

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
