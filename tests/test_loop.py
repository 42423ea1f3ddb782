"""Full-loop tier: every launchable config trains for real on the CPU through verl's own trainer and Ray.

Each config runs its exact trainer command (recipes.rehearse_loop; multi-node: `ray job submit` to a local two-raylet
cluster) for 2 real GRPO steps of the tiny random Qwen2 on its shipped sample, checkpoints, then resumes for a third
step. The checks: our reward metrics on every step equal what the step's rollout dump recomputes, the dump holds
every reward part, validation before and after, the checkpoint, the resumed step, the same weights after the resume.
A config verl cannot run on the CPU names verl's reason here; `--wall` (tests/test_rehearsal.py) keeps covering it.

Slow (minutes per config: two Ray start-ups); one Ray cluster at a time.
"""

from __future__ import annotations

import importlib
import json
import math
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers.judge_server import ScriptedJudgeServer
from helpers.tiny_model import build_tiny_model

from recipes.commands import compose_config, launchable_configs, recipe_sample
from recipes.recipe import recipe_of_config
from recipes.rehearse import prepare_sample
from recipes.rehearse_loop import CannotRehearse, judge_plan, read_jsonl, rehearse_loop

STEPS = 2


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


@pytest.fixture(scope="module")
def tiny_model() -> str:
    """The shared cached tiny random Qwen2 (tests/helpers/tiny_model.py)."""
    return str(build_tiny_model())


@pytest.fixture(scope="module")
def sample_data(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], str]:
    """The config's own shipped sample, prepared once per sample."""
    prepared: dict[tuple[str, str], str] = {}

    def for_config(name: str) -> str:
        cfg = compose_config(name)
        sample = recipe_sample(cfg)
        assert sample is not None, f"configs/{name}.yaml names no shipped sample"
        if sample not in prepared:
            prepared[sample] = str(prepare_sample(cfg, tmp_path_factory.mktemp(f"prepared-{sample[0]}")))
        return prepared[sample]

    return for_config


@pytest.fixture(scope="module")
def loop_judge(tiny_model: str) -> Any:
    """A loopback judge answering every question with the top grade (it serves the tiny model's name)."""
    with ScriptedJudgeServer(reply="2", model=tiny_model) as server:
        yield server


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
@pytest.mark.parametrize("name", LOOP)
def test_config_trains_checkpoints_and_resumes_on_cpu(
    name: str, tiny_model: str, sample_data: Callable[[str], str], loop_judge: Any, tmp_path: Path
) -> None:
    """N real steps, validation, checkpoint, a resumed step N+1 with the same weights; our metrics match the dump."""
    lines: list[str] = []
    env = {"JUDGE_BASE_URL": loop_judge.base_url, "PATH": __import__("os").environ["PATH"]}
    result = rehearse_loop(name, tiny_model, sample_data(name), tmp_path / "out", STEPS, environ=env,
                           emit=lines.append)  # fmt: skip
    log_tail = "\n".join((result.phases[-1].log if result.phases else "").splitlines()[-40:])
    assert result.passed, f"{result.problems}\n{log_tail}"
    assert any(line.startswith(f"[rehearse] {name}: step {STEPS + 1}/{STEPS + 1}: reward") for line in lines), lines

    recipe = recipe_of_config(compose_config(name)).name
    keys = _reward_keys(name)
    training = [r for r in result.records() if "timing_s/step" in r["data"]]
    assert [r["step"] for r in training] == [1, 2, 3]
    for record in training:
        data, step = record["data"], record["step"]
        rows = read_jsonl(result.out_dir / "rollouts" / f"{step}.jsonl")
        assert rows, f"no rollout dump for step {step}"
        for row in rows:  # every reward part of every response is in the dump
            missing = [k for k in ("data_source", *keys) if k not in row]
            assert not missing, f"step {step}: dump row lacks {missing}"
            assert row["data_source"].split("/")[0] == recipe
        assert any(k.startswith(f"reward/{recipe}") for k in data)
        for key, want in _recomputed(rows).items():
            assert key in data, f"step {step}: {key} missing from the metrics"
            assert math.isclose(data[key], want, rel_tol=1e-6, abs_tol=1e-9), (step, key, data[key], want)
        assert data["reward/overall/unscored"] == 0.0
    val_steps = [r["step"] for r in result.records() if any(k.startswith("val-core/") for k in r["data"])]
    assert val_steps[0] == 0 and val_steps[-1] == STEPS + 1, val_steps
    metrics_lines = result.metrics_path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["step"] for line in metrics_lines] == [r["step"] for r in result.records()]


@pytest.mark.parametrize("name", sorted(CANNOT))
def test_config_verl_cannot_run_on_cpu_names_the_reason(name: str) -> None:
    """A judge that verl serves on its own vLLM pool cannot run on the CPU: the loop says why in one line."""
    reason = CANNOT[name]
    assert "\n" not in reason and "vLLM" in reason and "--wall" in reason
    assert str(compose_config(name).judge.mode) == "verl_pool"
