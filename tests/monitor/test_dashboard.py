"""The workspace keys, the offline report and the validation table on real trainer outputs of both recipes.

The session's CPU-loop run of each recipe's no-judge config (legal_grpo_rules, safety_grpo_ngram; the legal judge
metrics are logged as 0.0 without a judge, so the keys are the hybrid config's), shared with the loop tier
(tests/helpers/loop_runs.py: `bash scripts/train_grpo.sh --rehearse`, 2 steps plus the resumed one, validations,
rollout and validation dumps):
- unshuffled data: the prepared sample lists each case's tasks in turn, so the three steps of 2 prompts log
  reward/legal/<task>/* for all four tasks;
- trainer.log_val_generations=3 (fewer than the 8 validation samples: the table is a choice, not everything);
- wandb in offline mode beside the file logger (WANDB_MODE=offline, its own WANDB_DIR): the val/generations table
  the trainer logs is read back from the offline run's files.

Slow the first time a run is asked for (two Ray start-ups); free when the loop tier ran it already.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import struct
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from helpers.loop_runs import STEPS, VAL_TABLE_ROWS, LoopRun, LoopRuns

from recipes.monitor.panels import data_sources, recipe_sections, reward_result_keys
from recipes.monitor.plots import pictures_of
from recipes.monitor.report import GOLD_CHARS, md_text
from recipes.recipe import load_recipe
from recipes.rehearsal.rehearse_loop import read_jsonl
from recipes.trainer.cpu.overrides import VAL_SAMPLES
from recipes.trainer.step_metrics import aggregate_step_metrics
from recipes.trainer.val_generations import IN_TABLE, VAL_TABLE_KEY, select_indices

REPO = Path(__file__).resolve().parents[2]
CONFIGS = {"legal": "legal_grpo_rules", "safety": "safety_grpo_ngram"}
pytestmark = pytest.mark.loop_runs(*CONFIGS.values())
TABLE_ROWS = VAL_TABLE_ROWS


@dataclass
class Runs:
    """The real runs: per recipe its loop run (tests/helpers/loop_runs.py) and prepared data; the offline wandb dir."""

    results: dict[str, LoopRun] = field(default_factory=dict)
    data: dict[str, Path] = field(default_factory=dict)
    wandb_dir: Path = Path()

    def __getitem__(self, recipe: str) -> LoopRun:
        return self.results[recipe]


@pytest.fixture(scope="module")
def runs(loop_runs: LoopRuns) -> Runs:
    """The session's real CPU-loop run of each recipe's no-judge config (module docstring), checked to have passed."""
    out = Runs(wandb_dir=loop_runs.wandb_dir)
    for recipe, config in CONFIGS.items():
        run = loop_runs.get(config)
        assert run.proc.returncode == 0, f"{config}: {run.failure()}"
        out.results[recipe], out.data[recipe] = run, run.data
    return out


def _logged_keys(result: LoopRun) -> set[str]:
    return {key for record in read_jsonl(result.metrics_path) for key in record["data"]}


def _printed_keys(recipe: str) -> list[str]:
    """`python -m recipes.dashboard --print-keys`, with wandb pointed at nowhere (it must not need the network)."""
    env = {
        **os.environ,
        "WANDB_BASE_URL": "http://127.0.0.1:9",
        "WANDB_API_KEY": "",
        "HTTPS_PROXY": "http://127.0.0.1:9",
    }
    proc = subprocess.run([sys.executable, "-m", "recipes.dashboard", "--recipe", recipe, "--print-keys"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.splitlines()


def _dump_rows(result: LoopRun) -> list[dict[str, Any]]:
    rows = []
    for path in sorted((result.out / "rollouts").glob("*.jsonl")):
        rows += read_jsonl(path)
    return rows


def _audit_only_keys(recipe: str, rows: list[dict[str, Any]]) -> set[str]:
    """Keys the step metrics add for the run's own dump rows once one response is a judge audit of a rules-decided
    answer that the judge answered (the tiny random policy never writes an answer the rules can decide)."""
    keys = reward_result_keys(load_recipe(recipe))
    if "judge_audited" not in keys:
        return set()

    def metrics(batch: list[dict[str, Any]]) -> set[str]:
        return set(aggregate_step_metrics([r["data_source"] for r in batch], {k: [r[k] for r in batch] for k in keys}))

    audited = [dict(row) for row in rows]
    audited[0].update(judge_called=1.0, judge_audited=1.0, judge_rules_agree=1.0, judge_failed=0.0)
    return metrics(audited) - metrics(rows)


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("recipe", ["legal", "safety"])
def test_every_printed_key_is_one_a_real_run_logged(recipe: str, runs: Runs) -> None:
    """No panel plots a key nothing logs: each key --print-keys prints is in the real run's metrics, except the
    judge-rules agreement, which exists only for audited answers (shown to be exactly what the metrics add then)."""
    result = runs[recipe]
    printed = _printed_keys(recipe)
    assert len(printed) == len(set(printed)) and len(printed) > 40
    logged = _logged_keys(result)
    rows = _dump_rows(result)
    assert {row["data_source"] for row in rows} == set(data_sources(load_recipe(recipe)))  # every task trained
    unlogged = set(printed) - logged
    assert unlogged == _audit_only_keys(recipe, rows) & set(printed)
    assert unlogged == ({"reward/overall/judge_rules_agreement"} if recipe == "legal" else set())
    for wanted in ("actor/kl_loss", "actor/entropy", "response_length/min", "response_length/max",
                   f"reward/{data_sources(load_recipe(recipe))[-1]}/format_ok_rate"):  # fmt: skip
        assert wanted in printed


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def _report(run: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "recipes.run_report", "--run", str(run), "--out", str(out), *extra],
                          cwd=REPO, capture_output=True, text=True, timeout=600)  # fmt: skip


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("recipe", ["legal", "safety"])
def test_offline_report_of_a_real_run(recipe: str, runs: Runs, tmp_path: Path) -> None:
    """report.md + a PNG per curve (every picture's keys logged), best/worst tables of each step with every reward
    part, and the validation table: the rows the trainer marked, with prompt, response, gold and parts."""
    result = runs[recipe]
    proc = _report(result.out, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    expected = [p.name for p in pictures_of(recipe_sections(load_recipe(recipe)))]
    wanted = {"reward_per_task", "format_rate", "response_length", "kl", "entropy", "judge_calls_latency", "validation"}
    assert wanted <= set(expected) and ("chinese_share" in expected) == (recipe == "legal")
    assert ("recipe" in expected) == (recipe == "safety")
    for name in expected:
        width, height = _png_size(tmp_path / f"{name}.png")
        assert 300 <= width <= 1600 and 200 <= height <= 1200 and (tmp_path / f"{name}.png").stat().st_size < 150_000
        assert f"]({name}.png)" in report
    assert "Not logged in this run" not in report and "## Left out" not in report
    parts = reward_result_keys(load_recipe(recipe))
    for step in (1, 2):
        section = report.split(f"### Step {step} (")[1].split("\n### ")[0]
        for part in parts:
            if part != "score":
                assert f"\n| {md_text(part, 60)} |" in section, (step, part)
        assert "best 1" in section and "worst 1" in section
    validation = report.split("## Validation generations")[1]
    for step in (0, STEPS + 1):  # the first and the last validation the report shows
        rows = read_jsonl(result.out / "rollouts" / "validation" / f"{step}.jsonl")
        table = [row for row in rows if row[IN_TABLE]]
        section = validation.split(f"### Validation at step {step} (")[1].split("\n### ")[0]
        assert section.startswith(f"{TABLE_ROWS} of {len(rows)} responses)")
        for row in table:
            assert md_text(row["gts"], GOLD_CHARS) in section
        assert f"\n| {md_text(parts[1], 60)} |" in section


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("recipe", ["legal", "safety"])
def test_validation_dump_marks_the_table_and_carries_gold_and_parts(recipe: str, runs: Runs) -> None:
    """Every validation's dump: data_source, the row's gold from the data, every reward part; in_table marks verl's
    choice of log_val_generations rows."""
    result = runs[recipe]
    directory = result.out / "rollouts" / "validation"
    steps = sorted(int(p.stem) for p in directory.glob("*.jsonl"))
    val_steps = sorted({r["step"] for r in read_jsonl(result.metrics_path) if any("val-core/" in k for k in r["data"])})
    assert steps == val_steps and steps[0] == 0
    table = pq.read_table(runs.data[recipe] / "test.parquet", columns=["data_source", "reward_model"]).to_pylist()
    golds = {(row["data_source"], str(row["reward_model"]["ground_truth"])) for row in table}
    parts = reward_result_keys(load_recipe(recipe))
    for step in steps:
        rows = read_jsonl(directory / f"{step}.jsonl")
        assert len(rows) == VAL_SAMPLES
        for row in rows:
            missing = [k for k in ("data_source", "gts", "input", "output", IN_TABLE, *parts) if k not in row]
            assert not missing, (step, missing)
            assert (row["data_source"], str(row["gts"])) in golds
            assert row["step"] == step and isinstance(row["score"], float) and not math.isnan(row["score"])
        chosen = select_indices([row["input"] for row in rows], TABLE_ROWS)
        assert [i for i, row in enumerate(rows) if row[IN_TABLE]] == sorted(chosen)


@pytest.mark.timeout(3600)
def test_the_trainer_logged_the_table_to_wandb(runs: Runs) -> None:
    """The offline wandb runs hold val/generations tables: the dump's in_table rows with gold and every part."""
    wandb_dir = runs.wandb_dir
    tables = sorted(wandb_dir.glob("wandb/offline-run-*/files/media/table/val/generations_*.table.json"))
    assert tables, f"no val/generations table under {wandb_dir}"
    for recipe in ("legal", "safety"):
        parts = sorted(set(reward_result_keys(load_recipe(recipe))) - {"score"})
        mine = []
        for path in tables:
            table = json.loads(path.read_text(encoding="utf-8"))
            if table["columns"] == ["step", "data_source", "prompt", "response", "gold", "score", *parts]:
                mine.append(table)
        assert mine, f"no {recipe} table with columns step, data_source, prompt, response, gold, score, {parts}"
        last = max(mine, key=lambda t: len(t["data"]))
        result = runs[recipe]
        for row in last["data"]:
            dump = read_jsonl(result.out / "rollouts" / "validation" / f"{row[0]}.jsonl")
            marked = {(r["input"], r["output"], str(r["gts"])) for r in dump if r[IN_TABLE]}
            assert (row[2], row[3], str(row[4])) in marked
    assert VAL_TABLE_KEY == "val/generations"


@pytest.mark.timeout(3600)
def test_torn_lines_of_a_real_run_are_reported_not_fatal(runs: Runs, tmp_path: Path) -> None:
    """A killed run's torn last line and stray bytes in a dump: the report is written and names each file and line."""
    run = tmp_path / "run"
    shutil.copytree(runs["legal"].out, run, ignore=shutil.ignore_patterns("checkpoints"))
    metrics = run / "metrics.jsonl"
    n_lines = len(metrics.read_text(encoding="utf-8").splitlines())
    with metrics.open("a", encoding="utf-8") as handle:
        handle.write('{"step": 3, "data": {"actor/entropy": 7.')
    with (run / "rollouts" / "1.jsonl").open("ab") as handle:
        handle.write(b"\xff\xfe not json\n")
    proc = _report(run, tmp_path / "report")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"run_report: warning: {metrics}: 1 unreadable line(s) skipped (line {n_lines + 1}: not JSON" in proc.stderr
    assert f"{run / 'rollouts' / '1.jsonl'}: 1 unreadable line(s) skipped" in proc.stderr
    report = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    assert "## Left out" in report and md_text(str(metrics), 2000) in report
