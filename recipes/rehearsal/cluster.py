"""A local Ray for the rehearsals: its ports, a private temp dir, the trainer process and what its output shows.

Shared by the launch wall (recipes/rehearsal/rehearse.py) and the real CPU loop (recipes/rehearsal/rehearse_loop.py).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recipes.launch.commands import REPO_ROOT

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


# What another process taking verl's rendezvous port between its choice and its bind looks like: retried once.
PORT_RACE = re.compile(r"EADDRINUSE|[Aa]ddress already in use")


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
def local_cluster(
    tmp: Path, env: Mapping[str, str], gpus_per_node: int, cpus_per_node: int, ports: Ports | None = None
) -> Iterator[Ports]:
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
    return _env(
        {"LEGAL_SHARED_DIR": str(shared), "RAY_ADDRESS": ports.dashboard, "RAY_AUTH_MODE": "disabled", **(extra or {})}
    )


def write_runtime_env(plan: Any, env: Mapping[str, str], extra_env: Mapping[str, str] | None = None) -> Path:
    """The plan's runtime-env file as `recipes.commands runtime-env` writes it, plus extra_env; the path."""
    import yaml

    from recipes.launch.commands import RUNTIME_ENV_TEMPLATE, build_runtime_env

    data = build_runtime_env(RUNTIME_ENV_TEMPLATE, env)
    data["env_vars"].update(extra_env or {})
    path = REPO_ROOT / plan.runtime_env_path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        yaml.safe_dump(data, handle, sort_keys=False)
    return path
