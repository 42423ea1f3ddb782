"""scripts/train_grpo.sh and scripts/serve_judge.sh as subprocesses (CPU: --dry-run, and the healthy-judge no-op).

Not run here: a real launch (vLLM, GPUs, Ray), the judge start/health-wait/stop path of serve_judge.sh (needs vllm),
the .[train] install step, `ray job submit`.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
from pathlib import Path

import pytest
from helpers.judge_fixtures import judge_server  # noqa: F401 - fixture

from recipes.legal.commands import CONFIG_DIR, REPO_ROOT

SCRUB = ("JUDGE_BASE_URL", "JUDGE_PORT", "JUDGE_HOST", "JUDGE_GPUS", "JUDGE_MODEL", "NNODES", "RAY_ADDRESS", "RUN_TAG")


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in SCRUB}
    return subprocess.run(
        ["bash", *args], cwd=REPO_ROOT, env={**base, **env}, capture_output=True, text=True, timeout=240, check=False
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty directory the configured data points at: the script must prepare the sample into it."""
    return tmp_path_factory.mktemp("data")


def test_dry_run_prepares_data_passes_preflight_and_prints_the_trainer_command(data_dir: Path) -> None:
    """Fresh checkout on a CPU box: exit 0, sample prepared (and said so), the full trainer command printed."""
    overrides = [f"data.train_files={data_dir}/train.parquet", f"data.val_files={data_dir}/test.parquet"]
    result = _run(["scripts/train_grpo.sh", "--dry-run", *overrides], RUN_NAME="legal-qwen2.5-7b-0312")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "preparing the shipped sample" in result.stdout
    assert (data_dir / "train.parquet").is_file() and (data_dir / "test.parquet").is_file()
    trainer = [
        "python3", "-m", "recipes.legal.main_ppo", f"--config-path={CONFIG_DIR}", "--config-name=legal_grpo",
        *overrides, "trainer.experiment_name=legal-qwen2.5-7b-0312",
    ]  # fmt: skip
    printed = [shlex.split(line) for line in result.stdout.splitlines() if "recipes.legal.main_ppo" in line]
    assert trainer in printed
    assert any(line.strip().startswith("CUDA_VISIBLE_DEVICES=7 vllm serve") for line in result.stdout.splitlines())
    assert "preflight: 0 failure(s)" in result.stdout and "dry run OK" in result.stdout


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        pytest.param(["data.train_batch_size=5"], "FAIL batch: data.train_batch_size x rollout.n = 5 x 16", id="batch"),
        pytest.param(["+reward_model.enable=true"], "FAIL legacy reward keys: reward_model.enable=True", id="legacy"),
        pytest.param(["data.val_files=/nonexistent/test.parquet"],
                     "FAIL data: /nonexistent/test.parquet does not exist", id="missing-data"),
    ],
)  # fmt: skip
def test_dry_run_broken_config_fails_with_one_line(data_dir: Path, overrides: list[str], needle: str) -> None:
    """A broken launch exits non-zero and names the problem (and the fix) on one line."""
    test_dry_run_data = [f"data.train_files={data_dir}/train.parquet", f"data.val_files={data_dir}/test.parquet"]
    if not (data_dir / "train.parquet").is_file():
        subprocess.run(
            [str(REPO_ROOT / ".venv/bin/python"), "-m", "data.prepare", "--source", "cail2018", "--input",
             "data/samples/cail2018_sample.jsonl", "--output", str(data_dir)],
            cwd=REPO_ROOT, check=True, capture_output=True,
        )  # fmt: skip
    result = _run(["scripts/train_grpo.sh", "--dry-run", *test_dry_run_data, *overrides])
    assert result.returncode != 0
    lines = [line for line in result.stdout.splitlines() if line.startswith(needle)]
    assert lines and " — " in lines[0], result.stdout + result.stderr
    assert "preflight failed" in result.stderr


def test_without_gpus_a_real_run_stops_after_the_preflight(data_dir: Path) -> None:
    """No --dry-run on a CPU box: the preflight runs, then a clear non-zero exit; nothing is installed or started."""
    overrides = [f"data.train_files={data_dir}/train.parquet", f"data.val_files={data_dir}/test.parquet"]
    result = _run(
        ["scripts/train_grpo.sh", "--no-install", *overrides], PATH=f"/nonexistent-gpu-tools:{os.environ['PATH']}"
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "preflight: 0 failure(s)" in result.stdout
    assert "no GPU found on this machine" in result.stderr and "--dry-run" in result.stderr
    assert "vllm serve" not in result.stdout and "stopping the judge" not in result.stdout


def test_serve_judge_dry_run_prints_vllm_serve() -> None:
    """Nothing answers on the port: the dry run prints the exact command it would start."""
    port = _free_port()
    result = _run(["scripts/serve_judge.sh", "--dry-run", "--port", str(port), "--gpus", "6"])
    assert result.returncode == 0, result.stdout + result.stderr
    expected = (
        f"CUDA_VISIBLE_DEVICES=6 vllm serve Qwen/Qwen2.5-7B-Instruct --served-model-name Qwen/Qwen2.5-7B-Instruct "
        f"--host 127.0.0.1 --port {port} --tensor-parallel-size 1 --data-parallel-size 1 --max-model-len 8192 "
        f"--gpu-memory-utilization 0.9"
    )
    assert expected in [line.strip() for line in result.stdout.splitlines()]
    assert f"http://127.0.0.1:{port}/health" in result.stdout


def test_serve_judge_does_nothing_when_a_healthy_judge_answers(judge_server) -> None:  # noqa: F811
    """A judge already answering /health: exit 0, say so, start nothing (vllm is not even installed here)."""
    server = judge_server()
    result = _run(["scripts/serve_judge.sh", "--port", str(server.port)], VLLM="/nonexistent/vllm")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"a healthy judge already answers at {server.base_url}" in result.stdout
    assert any(r.path == "/health" for r in server.all_requests)
    assert not list((REPO_ROOT / "logs").glob(f"judge-{server.port}.log*"))
