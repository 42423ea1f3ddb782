"""scripts/train_grpo.sh's judge lifecycle with a real vLLM process (CPU build, tiny model).

Stand-ins only for what a CPU box lacks: `nvidia-smi` (8 fake GPUs), the trainer (records that it ran and that the
judge answered /health then), and the one "GPU stack installed?" probe. The judge is the configured server command,
for real: started, reused when healthy, stopped on exit, on Ctrl-C and on a startup timeout, with no process of its
group left behind (checked by PID).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.real_vllm import REPO_ROOT, RealVLLM, alive, free_port, group_members, script_env, stop_group

# Generous bound: a vLLM start on a busy 2-core box takes minutes (the session server's start counts toward the first
# test that needs it).
pytestmark = [pytest.mark.vllm, pytest.mark.timeout(1500)]

TRAINER = """#!/usr/bin/env bash
# Stand-in trainer: records its arguments, the judge's health and the judge's process group at that moment.
state=down
{py} -m recipes.commands health "$FAKE_JUDGE_HEALTH" && state=healthy
echo "$state" > "$FAKE_TRAINER_RAN"
pgid="$(cat "$FAKE_JUDGE_PIDFILE" 2>/dev/null || true)"
[ -z "$pgid" ] || pgrep -g "$pgid" > "$FAKE_JUDGE_GROUP" || true
"""


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped sample prepared as train/test parquet."""
    out = tmp_path_factory.mktemp("lifecycle_data")
    subprocess.run(
        [sys.executable, "-m", "data.prepare", "--source", "cail2018", "--input", "data/samples/cail2018_sample.jsonl",
         "--output", str(out)],
        cwd=REPO_ROOT, check=True, capture_output=True,
    )  # fmt: skip
    return out


class Launch:
    """One train_grpo.sh run against the tiny model's real judge, on its own port and log."""

    def __init__(self, server: RealVLLM, tmp_path: Path, data_dir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.log = tmp_path / f"judge-{self.port}.log"
        self.pid_file = Path(f"{self.log}.pid")
        self.ran = tmp_path / "trainer.ran"
        self.group = tmp_path / "judge.group"
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir(exist_ok=True)
        scripts = {
            "nvidia-smi": "#!/usr/bin/env bash\nfor i in 0 1 2 3 4 5 6 7; do echo \"GPU $i: Fake\"; done\n",
            "trainer": TRAINER.format(py=sys.executable),
            "python": (f"#!/usr/bin/env bash\n[ \"$*\" = \"-c import verl, vllm, ray, hydra\" ] && exit 0\n"
                       f"exec {sys.executable} \"$@\"\n"),
        }  # fmt: skip
        for name, text in scripts.items():
            (bin_dir / name).write_text(text)
            (bin_dir / name).chmod(0o755)
        self.env = {
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "PYTHON_BIN": str(bin_dir / "python"),
            "PYTHON": str(bin_dir / "trainer"),
            "FAKE_TRAINER_RAN": str(self.ran),
            "FAKE_JUDGE_PIDFILE": str(self.pid_file),
            "FAKE_JUDGE_GROUP": str(self.group),
            "FAKE_JUDGE_HEALTH": f"http://127.0.0.1:{self.port}/health",
            "WANDB_MODE": "offline",
            "RUN_NAME": "vllm-lifecycle",
        }
        self.args = [
            "scripts/train_grpo.sh", "--no-install", f"data.train_files={data_dir}/train.parquet",
            f"data.val_files={data_dir}/test.parquet", *server.overrides(port=self.port, log=self.log),
        ]  # fmt: skip

    def start(self, startup_timeout_s: int) -> subprocess.Popen:
        """train_grpo.sh in its own session (a terminal's foreground group), output captured."""
        return subprocess.Popen(
            ["bash", *self.args], cwd=REPO_ROOT,
            env=script_env(**self.env, JUDGE_STARTUP_TIMEOUT_S=str(startup_timeout_s)),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip

    def judge_pid(self, proc: subprocess.Popen, timeout_s: float = 120.0) -> int:
        """The judge's pid once serve_judge.sh wrote it (it does so right after starting the server)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.pid_file.is_file() and self.pid_file.read_text().strip():
                return int(self.pid_file.read_text().strip())
            if proc.poll() is not None:
                raise AssertionError("train_grpo.sh exited before starting the judge:\n" + "".join(proc.communicate()))
            time.sleep(0.2)
        raise AssertionError("the judge was never started")


def _gone(pids: list[int], pgid: int, timeout_s: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not any(alive(p) for p in pids) and not group_members(pgid):
            return True
        time.sleep(0.2)
    return False


def _wait_for_group(pgid: int, at_least: int, timeout_s: float = 120.0) -> list[int]:
    """The judge's process group once it has at_least members (vLLM's API server spawns its engine core)."""
    deadline = time.monotonic() + timeout_s
    members = group_members(pgid)
    while len(members) < at_least and time.monotonic() < deadline:
        time.sleep(0.2)
        members = group_members(pgid)
    return members


def test_train_grpo_starts_the_real_judge_and_stops_it_on_exit(
    vllm_session: RealVLLM, tmp_path: Path, data_dir: Path
) -> None:
    """No judge answering: train_grpo.sh starts the configured server, trains once /health answers, and on exit
    stops every process of the judge's group."""
    launch = Launch(vllm_session, tmp_path, data_dir)
    proc = launch.start(startup_timeout_s=600)
    pgid = launch.judge_pid(proc)
    try:
        out, err = proc.communicate(timeout=720)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        stop_group(pgid)  # whatever happened, leave nothing behind
    assert proc.returncode == 0, out + err
    assert "[serve_judge] judge ready" in out
    assert launch.ran.read_text().strip() == "healthy"  # the trainer ran while the judge answered
    members = [int(p) for p in launch.group.read_text().split()]
    assert pgid in members and len(members) >= 2  # the API server and vLLM's engine core process
    assert f"stopping the judge we started (pid {pgid})" in out
    assert _gone(members, pgid, timeout_s=5), members
    assert not launch.pid_file.exists()


@pytest.mark.parametrize(
    ("event", "timeout_s", "status"),
    [pytest.param("ctrl-c", 600, 130, id="ctrl-c-while-loading"), pytest.param("timeout", 8, 1, id="startup-timeout")],
)
def test_train_grpo_stops_the_real_judge_it_started_when_it_never_trains(
    vllm_session: RealVLLM, tmp_path: Path, data_dir: Path, event: str, timeout_s: int, status: int
) -> None:
    """Ctrl-C while vLLM loads, or no /health within the startup timeout: the judge's whole group is gone."""
    launch = Launch(vllm_session, tmp_path, data_dir)
    proc = launch.start(startup_timeout_s=timeout_s)
    pgid = launch.judge_pid(proc)
    try:
        members = _wait_for_group(pgid, at_least=1, timeout_s=10)
        if event == "ctrl-c":
            time.sleep(3)  # vLLM is importing / loading: not yet healthy
            os.killpg(proc.pid, signal.SIGINT)  # what the terminal does: the whole foreground group
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        leftover = group_members(pgid)
        stop_group(pgid)
    assert not leftover, (leftover, out, err)
    assert proc.returncode == status, out + err
    assert not launch.ran.exists()
    assert _gone(members, pgid, timeout_s=5)
    assert not launch.pid_file.exists()
    if event == "timeout":
        assert f"no /health answer after {timeout_s}s — stopping it" in err


def test_train_grpo_reuses_a_healthy_real_judge(real_vllm: RealVLLM, tmp_path: Path, data_dir: Path) -> None:
    """A judge already answering on the configured port is used and left running after the run."""
    launch = Launch(real_vllm, tmp_path, data_dir, port=real_vllm.port)
    launch.log, launch.pid_file = real_vllm.log, Path(f"{real_vllm.log}.pid")  # the session server's own files
    launch.args = [a for a in launch.args if not a.startswith("judge.log_file=")] + [f"judge.log_file={real_vllm.log}"]
    proc = launch.start(startup_timeout_s=600)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, out + err
    assert f"judge already answers at {real_vllm.base_url}: using it" in out
    assert launch.ran.read_text().strip() == "healthy"
    assert real_vllm.running() and group_members(real_vllm.pid)
    assert "stopping the judge" not in out
