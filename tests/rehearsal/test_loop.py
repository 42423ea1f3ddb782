"""Full-loop tier: every launchable config trains for real on the CPU through verl's own trainer and Ray.

Each config runs as a user runs it, `bash scripts/train_grpo.sh --rehearse --config NAME` (the default config: plain
`bash scripts/train_grpo.sh`, which runs the rehearsal itself without GPUs): its exact trainer command
(recipes.rehearsal.rehearse_loop; multi-node: `ray job submit` to a local two-raylet cluster) for 2 real GRPO steps of
the tiny
random Qwen2 on its shipped sample, a checkpoint, then a resumed third step. The checks: our reward metrics on every
step equal what the step's rollout dump recomputes, the dump holds every reward part and the advantage, validation
before and after, the checkpoint, the resumed step, the same weights after the resume.
A config verl cannot run on the CPU names verl's reason here; `--wall` (tests/rehearsal/test_rehearsal.py) keeps
covering it.

Slow (minutes per config: two Ray start-ups); the session's runs go two at a time (tests/helpers/loop_runs.py).
"""

from __future__ import annotations

import importlib
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from helpers.loop_runs import STEPS, LoopRuns

from recipes.launch.commands import DEFAULT_CONFIG, compose_config, launchable_configs
from recipes.recipe import recipe_of_config
from recipes.rehearsal.rehearse_loop import CannotRehearse, judge_plan, read_jsonl, weights_at_resume, weights_file


def _cannot(name: str) -> str | None:
    """verl's reason a config cannot run on the CPU, or None (a judge from JUDGE_BASE_URL is assumed)."""
    try:
        judge_plan(compose_config(name), {"JUDGE_BASE_URL": "http://127.0.0.1:1/v1"})
    except CannotRehearse as exc:
        return str(exc)
    return None


CONFIGS = launchable_configs()
CANNOT = {name: reason for name in CONFIGS if (reason := _cannot(name)) is not None}
LOOP = [name for name in CONFIGS if name not in CANNOT]


def _reward_keys(name: str) -> tuple[str, ...]:
    """The keys the config's reward function returns on every call (its RESULT_KEYS)."""
    cfg = compose_config(name)
    module = Path(str(cfg.reward.custom_reward_function.path)).with_suffix("").as_posix().replace("/", ".")
    return tuple(importlib.import_module(module).RESULT_KEYS)


def _recomputed(rows: list[dict[str, Any]]) -> dict[str, float]:
    """reward/<source>/* and reward/overall/* means recomputed from one step's rollout dump, by hand."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[f"reward/{row['data_source']}"].append(row)
        groups["reward/overall"].append(row)
    out = {}
    for prefix, members in groups.items():
        calls = [r for r in members if r["judge_called"] > 0]
        out[f"{prefix}/count"] = float(len(members))
        out[f"{prefix}/score_mean"] = sum(r["score"] for r in members) / len(members)
        out[f"{prefix}/format_ok_rate"] = sum(r["format_ok"] for r in members) / len(members)
        out[f"{prefix}/judge_calls"] = float(len(calls))
        out[f"{prefix}/judge_failure_rate"] = sum(r["judge_failed"] for r in calls) / len(calls) if calls else 0.0
    return out


@pytest.mark.timeout(2400)
@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.loop_runs(name)) for name in LOOP])
def test_config_trains_checkpoints_and_resumes_on_cpu(name: str, loop_runs: LoopRuns) -> None:
    """N real steps, validation, checkpoint, a resumed step N+1 with the same weights; our metrics match the dump."""
    run = loop_runs.get(name)
    proc = run.proc
    lines = proc.stdout.splitlines()
    passed = [line for line in lines if line.startswith("rehearsal passed:")]
    assert proc.returncode == 0 and passed, proc.stdout[-4000:] + proc.stderr[-4000:]
    if name == DEFAULT_CONFIG:  # the embedded default: says so first, ends with where to look and what to run
        assert "no GPU on this machine" in proc.stdout.split("[rehearse]", 1)[0]
        assert "metrics.jsonl" in lines[-1] and f"bash scripts/train_grpo.sh --config {name}" in lines[-1]
    else:
        assert lines[-1] == passed[0]
    assert any(line.startswith(f"[rehearse] {name}: step {STEPS + 1}/{STEPS + 1}: reward") for line in lines)
    assert any(line.startswith(f"[rehearse] {name}: change trainer.device") for line in lines)

    out = run.out
    records = run.records()
    recipe = recipe_of_config(compose_config(name)).name
    keys = _reward_keys(name)
    training = [r for r in records if "timing_s/step" in r["data"]]
    assert [r["step"] for r in training] == [1, 2, 3]
    for record in training:
        data, step = record["data"], record["step"]
        rows = read_jsonl(out / "rollouts" / f"{step}.jsonl")
        assert rows, f"no rollout dump for step {step}"
        for row in rows:  # every reward part of every response is in the dump
            missing = [k for k in ("data_source", "advantage", *keys) if k not in row]
            assert not missing, f"step {step}: dump row lacks {missing}"
            assert row["data_source"].split("/")[0] == recipe
        for key, want in _recomputed(rows).items():
            assert key in data, f"step {step}: {key} missing from the metrics"
            assert math.isclose(data[key], want, rel_tol=1e-6, abs_tol=1e-9), (step, key, data[key], want)
        assert data["reward/overall/unscored"] == 0.0 and data["reward/overall/masked"] == 0.0
    val_steps = [r["step"] for r in records if any(k.startswith("val-core/") for k in r["data"])]
    assert val_steps[0] == 0 and val_steps[-1] == STEPS + 1, val_steps
    assert (out / "checkpoints" / f"global_step_{STEPS}").is_dir()
    saved, resumed = weights_at_resume(weights_file(out, "train"), weights_file(out, "resume"), STEPS)
    assert saved is not None and saved == resumed


@pytest.mark.parametrize("name", sorted(CANNOT))
def test_config_verl_cannot_run_on_cpu_names_the_reason(name: str) -> None:
    """A judge that verl serves on its own vLLM pool cannot run on the CPU: the loop says why in one line."""
    reason = CANNOT[name]
    assert "\n" not in reason and "vLLM" in reason and "--wall" in reason
    assert str(compose_config(name).judge.mode) == "verl_pool"
