"""A real vLLM (CPU build, .venv-vllm) serving the tiny model, started through scripts/serve_judge.sh.

One server at a time: the session fixture owns it; tests that need it gone (killed mid-batch, the launch scripts'
own start) stop it, and the next test that needs it starts it again. Every process is stopped by its group id.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from recipes.trainer.cpu.judge import (  # noqa: F401  (re-exported: one set of server settings for tests and the loop)
    MAX_MODEL_LEN,
    SERVER_ARGS,
    SERVER_ENV,
    SERVER_MODULE,
    STARTUP_TIMEOUT_S,
    judge_overrides,
    vllm_python,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
# Variables of the caller that would change what the scripts do.
SCRUB = (
    "JUDGE_BASE_URL", "JUDGE_PORT", "JUDGE_HOST", "JUDGE_GPUS", "JUDGE_MODEL", "JUDGE_STARTUP_TIMEOUT_S", "NNODES",
    "RAY_ADDRESS", "RUN_TAG", "RUN_NAME", "CUDA_VISIBLE_DEVICES", "VLLM", "PYTHON", "PYTHON_BIN",
)  # fmt: skip


def tier_off_reason() -> str | None:
    """Why the real-vLLM tier cannot run in this pytest process, or None when it runs."""
    if os.environ.get("LEGAL_VLLM_TIER") == "off":
        return "turned off by scripts/test.sh (--no-vllm, LEGAL_NO_VLLM=1 or a CPU without AVX-512)"
    if os.environ.get("LEGAL_VLLM_TIER") == "on":
        return None  # test.sh built the venv: any problem with it is a failure, not a reason to leave tests out
    from recipes.trainer.cpu.judge import cpu_has_avx512

    if not cpu_has_avx512(Path(os.environ.get("LEGAL_CPUINFO") or "/proc/cpuinfo")):
        return "this CPU lacks AVX-512 (avx512f), which vLLM's CPU build needs"
    if not vllm_python().is_file():
        return f"no vLLM venv at {vllm_python()} (bash scripts/test.sh creates it)"
    return None


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now: the first free one from $LEGAL_TEST_PORT_BASE, else one the OS picks."""
    base = int(os.environ.get("LEGAL_TEST_PORT_BASE") or 0)
    for port in range(base, base + 1000) if base else [0]:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError(f"no free port in {base}..{base + 999}")


def script_env(**extra: str) -> dict[str, str]:
    """The caller's environment without judge/launch variables, plus the server's CPU settings and extra."""
    env = {k: v for k, v in os.environ.items() if k not in SCRUB}
    return {**env, **SERVER_ENV, **extra}


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def group_members(pgid: int) -> list[int]:
    """Live processes whose process group is pgid (the server and its engine workers)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().split(") ", 1)[1].split()
        except (FileNotFoundError, IndexError, ProcessLookupError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            pids.append(int(stat.parent.name))
    return pids


def stop_group(pgid: int, timeout_s: float = 30.0) -> None:
    """TERM the process group, KILL what is left after timeout_s; returns when none is alive."""
    for sig, wait_s in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if not group_members(pgid):
                return
            time.sleep(0.2)


class RealVLLM:
    """The tiny model served by a real vLLM on 127.0.0.1, started by scripts/serve_judge.sh from the config."""

    def __init__(self, model_dir: Path, work_dir: Path, port: int | None = None) -> None:
        self.model_dir = Path(model_dir)
        self.work_dir = Path(work_dir)
        self.port = port or free_port()
        self.log = self.work_dir / f"judge-{self.port}.log"
        self.pid: int | None = None
        self.last_start: subprocess.CompletedProcess | None = None
        self.start_seconds: list[float] = []

    @property
    def model(self) -> str:
        """The served model id (the model directory, as judge.model)."""
        return str(self.model_dir)

    @property
    def base_url(self) -> str:
        """OpenAI base URL."""
        return f"http://127.0.0.1:{self.port}/v1"

    def overrides(self, port: int | None = None, log: Path | None = None) -> list[str]:
        """Hydra overrides pointing the config's judge section at the tiny model and vLLM's CPU build."""
        port = port or self.port
        return judge_overrides(self.model_dir, port, log or self.work_dir / f"judge-{port}.log")

    def running(self) -> bool:
        """The server we started is alive."""
        return self.pid is not None and alive(self.pid)

    def start(self) -> subprocess.CompletedProcess:
        """Run scripts/serve_judge.sh; raises with its output when it does not report the server healthy."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        result = subprocess.run(
            ["bash", "scripts/serve_judge.sh", *self.overrides()],
            cwd=REPO_ROOT,
            env=script_env(JUDGE_STARTUP_TIMEOUT_S=str(STARTUP_TIMEOUT_S)),
            capture_output=True,
            text=True,
            timeout=STARTUP_TIMEOUT_S + 60,
            check=False,
        )
        self.last_start = result
        pid_file = Path(f"{self.log}.pid")
        if result.returncode != 0 or not pid_file.is_file():
            log_tail = self.log.read_text(errors="replace")[-4000:] if self.log.is_file() else ""
            raise RuntimeError(
                f"serve_judge.sh failed ({result.returncode}):\n{result.stdout}{result.stderr}{log_tail}"
            )
        self.pid = int(pid_file.read_text().strip())
        self.start_seconds.append(time.monotonic() - t0)
        return result

    def ensure_running(self) -> RealVLLM:
        """Start the server unless ours is alive."""
        if not self.running():
            self.start()
        return self

    def stop(self) -> None:
        """Stop the server's whole process group; the pid file goes with it."""
        if self.pid is not None:
            stop_group(self.pid)
            Path(f"{self.log}.pid").unlink(missing_ok=True)
            self.pid = None

    def kill(self) -> None:
        """SIGKILL the server's whole process group at once (a crash, not a shutdown)."""
        if self.pid is not None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.stop()

    def rss_mib(self) -> float:
        """Resident memory of the server's process group, MiB."""
        if self.pid is None:
            return 0.0
        total = 0
        for pid in group_members(self.pid):
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except FileNotFoundError:
                continue
        return total / 1024


def run_module(module_and_args: list[str], timeout_s: float = 1200.0) -> str:
    """`python -m <module> <args>` in the vLLM venv, its process group stopped after; it must exit 0 (the output
    tails are the failure message). Returns its stdout."""
    proc = subprocess.Popen(
        [str(vllm_python()), "-m", *module_and_args],
        cwd=REPO_ROOT, env=script_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        stdout, stderr = proc.communicate(timeout=timeout_s)
    finally:
        stop_group(proc.pid)  # vLLM's engine and helper processes too, whatever happened
    assert proc.returncode == 0, stdout[-3000:] + stderr[-6000:]
    return stdout
