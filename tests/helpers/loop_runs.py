"""The CPU training loop's runs, one per launch config per test session, shared by every test that reads them.

A run is what a user runs: `bash scripts/train_grpo.sh --rehearse --config NAME` (the default config: plain
`bash scripts/train_grpo.sh`, which runs the rehearsal itself on a machine without GPUs), with a loopback judge
behind JUDGE_BASE_URL and the outputs in a session folder (LEGAL_REHEARSE_DIR). The same few test overrides apply to
every run, so one run serves the loop tier (tests/rehearsal/test_loop.py), the dashboard and report tests
(test_dashboard.py)
and the export/evaluate test (test_trained_checkpoints.py):
- `data.shuffle=false`: the prepared samples list each case's tasks in turn, so the 2 + 1 steps of 2 prompts cover
  all four legal tasks, and validation takes the first VAL_SAMPLES rows of test.parquet;
- `trainer.log_val_generations=3`: the validation table is a choice, not every sample;
- wandb in offline mode beside the file logger (its own WANDB_DIR): the table the trainer logs is read back.

The session's runs start together, PARALLEL_RUNS at a time, when the first test asks for one (`run_all`, from the
`loop_runs` fixture, with the configs its selected tests name in `@pytest.mark.loop_runs(...)`): a run keeps one of
the two cores busy for most of its ~160 s (its Ray processes start one after the other), so two at a time take about
two thirds of the time of two in turn (measured: legal_grpo_rules + safety_grpo_ngram 218 s together, 325 s in turn).
Runs share nothing but the loopback judge, the wandb folder and the tiny model (built once, before they start); each
Ray has its own temp dir and ports, and the multi-node cluster's fixed ports lie outside Ray's random worker range.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers.tiny_model import build_tiny_model

from recipes.launch.commands import DEFAULT_CONFIG
from recipes.rehearsal.rehearse_loop import read_jsonl

REPO_ROOT = Path(__file__).resolve().parents[2]
STEPS = 2
VAL_TABLE_ROWS = 3
OVERRIDES = [
    "data.shuffle=false",
    f"trainer.log_val_generations={VAL_TABLE_ROWS}",
    "trainer.logger=[console,file,wandb]",
]
TIMEOUT_S = 2300
PARALLEL_RUNS = 2


@dataclass
class LoopRun:
    """One config's rehearsal: the script's completed process and its output folders."""

    config: str
    proc: subprocess.CompletedProcess
    work: Path

    @property
    def out(self) -> Path:
        """The rehearsal's outputs: metrics.jsonl, rollouts/, checkpoints/, train.log, resume.log."""
        return self.work / self.config

    @property
    def out_dir(self) -> Path:
        """Alias of out."""
        return self.out

    @property
    def data(self) -> Path:
        """The prepared shipped sample the run trained and validated on."""
        return self.work / f"data-{self.config}"

    @property
    def metrics_path(self) -> Path:
        """Both phases' metrics in verl's file-logger format."""
        return self.out / "metrics.jsonl"

    def records(self) -> list[dict[str, Any]]:
        """Every {"step", "data"} record of the run."""
        return read_jsonl(self.metrics_path)

    def failure(self) -> str:
        """What to show when the run did not pass."""
        return self.proc.stdout[-4000:] + self.proc.stderr[-4000:]


class LoopRuns:
    """Runs a config's rehearsal the first time a test asks for it; later tests get the same run."""

    def __init__(self, work: Path, judge_url: str, wandb_dir: Path) -> None:
        self.work, self.judge_url, self.wandb_dir = work, judge_url, wandb_dir
        self._runs: dict[str, Future[LoopRun]] = {}
        self._pool = ThreadPoolExecutor(max_workers=PARALLEL_RUNS, thread_name_prefix="loop-run")

    @property
    def tiny_model(self) -> Path:
        """Where the script builds the tiny model (the loopback judge serves this name)."""
        return self.work / "tiny_qwen"

    def run_all(self, configs: Iterable[str]) -> None:
        """Run the configs not run yet, PARALLEL_RUNS at a time, and wait for all of them."""
        new = [config for config in dict.fromkeys(configs) if config not in self._runs]
        if new:
            build_tiny_model(self.tiny_model)  # before any script: concurrent scripts must not build it at once
        for config in new:
            self._runs[config] = self._pool.submit(self._run, config)
        for future in list(self._runs.values()):
            future.exception()  # waits; a run's own error is raised by get() in the test that asks for it

    def get(self, config: str) -> LoopRun:
        """The config's run (started now when no test asked for it before)."""
        self.run_all([config])
        return self._runs[config].result()

    def close(self) -> None:
        """Wait for runs still going (none once run_all returned) and stop the pool."""
        self._pool.shutdown(wait=True)

    def _run(self, config: str) -> LoopRun:
        return LoopRun(config, self._run_script(config), self.work)

    def _run_script(self, config: str) -> subprocess.CompletedProcess:
        skip = ("JUDGE_", "RAY_", "NNODES", "CUDA_VISIBLE", "WANDB_")
        env = {k: v for k, v in os.environ.items() if not k.startswith(skip)}
        env.update(
            JUDGE_BASE_URL=self.judge_url,
            LEGAL_REHEARSE_DIR=str(self.work),
            PATH=f"/nonexistent-gpu-tools:{env['PATH']}",  # no nvidia-smi: the embedded default runs
            WANDB_MODE="offline",
            WANDB_DIR=str(self.wandb_dir),
            WANDB_SILENT="true",
        )
        args = [] if config == DEFAULT_CONFIG else ["--rehearse", "--config", config]
        return subprocess.run(["bash", "scripts/train_grpo.sh", *args, *OVERRIDES], cwd=REPO_ROOT, env=env,
                              capture_output=True, text=True, timeout=TIMEOUT_S)  # fmt: skip
