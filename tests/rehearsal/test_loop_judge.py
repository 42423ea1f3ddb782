"""The judge inside the real CPU training loop: a judge that dies stops the run; a response it could not judge
teaches nothing (on_judge_error: mask); a real vLLM judge is called and answers.

The policy is the tiny model primed to write a well-formed legal answer (tests/helpers/tiny_model.py
build_primed_model) under a constant prompt template, so every response reaches the judge in `mode: judge`.
"""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers.judge_server import ScriptedJudgeServer
from helpers.loop_judge import judge_reply, prediction
from helpers.processes import ProcessWatcher
from helpers.tiny_model import PRIMED_TEMPLATE, build_primed_model

from recipes.launch.commands import compose_config
from recipes.rehearsal.rehearse import prepare_sample
from recipes.rehearsal.rehearse_loop import read_jsonl, rehearse_loop
from recipes.trainer.step_metrics import MASKED_METRIC, STOP_PREFIX, UNSCORED_METRIC

CONFIG = "legal_grpo"
KWARGS = "reward.custom_reward_function.reward_kwargs"
# verl's GRPO epsilon (verl/trainer/ppo/core_algos.py compute_grpo_outcome_advantage).
GRPO_EPSILON = 1e-6
# Sampled at verl's default temperature 1.0 the primed model writes its answer well-formed about 77% of the time
# (measured over 200 samples), so a step of 2 prompts x 2 responses sometimes asks the judge nothing and a dead judge
# goes unnoticed until validation. At 0.5 it was well-formed in 200 of 200: every step asks the judge.
WELL_FORMED = "actor_rollout_ref.rollout.temperature=0.5"


@pytest.fixture(scope="module")
def legal_data(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The legal recipe's shipped sample, prepared."""
    return str(prepare_sample(compose_config(CONFIG), tmp_path_factory.mktemp("legal-sample")))


def _overrides(**kwargs: Any) -> list[str]:
    """The constant prompt the primed model answers, the judge asked for every task, and the given reward kwargs."""
    out = [f"actor_rollout_ref.model.custom_chat_template='{PRIMED_TEMPLATE}'", f"{KWARGS}.mode=judge"]
    return out + [f"{KWARGS}.{key}={value}" for key, value in kwargs.items()]


def _logged(path: Path, step: int) -> bool:
    """Whether the metrics file at path holds training step `step`."""
    return any(record.get("step") == step and "timing_s/step" in record.get("data", {}) for record in read_jsonl(path))


@pytest.mark.timeout(1800)
def test_a_judge_that_dies_stops_the_run_at_the_end_of_that_step(legal_data: str, tmp_path: Path) -> None:
    """The judge dies after step 1: step 2 logs its unscored responses, the run prints the one stop line and exits
    non-zero in bounded time, and every process it started is gone."""
    model = build_primed_model(("盗窃罪",))
    out = tmp_path / "out"
    died_at: list[float] = []

    def dead_once_step_1_is_logged(body: dict[str, Any], index: int) -> int | None:
        """Asked as each judge request arrives: answer step 1, die on step 2's first request (a 503, then the server
        goes away). verl logs a step before it generates the next, so the metrics line splits the two steps' requests
        exactly; a thread killing the judge on seeing the line raced step 2's generation and sometimes lost."""
        if not died_at and _logged(out / "train.jsonl", 1):
            died_at.append(time.monotonic())
            threading.Thread(target=judge.stop, name="judge-dies", daemon=True).start()
        return 503 if died_at else None

    with (
        ScriptedJudgeServer(reply=judge_reply, model=str(model), fail=dead_once_step_1_is_logged) as judge,
        ProcessWatcher() as processes,
    ):
        env = {"JUDGE_BASE_URL": judge.base_url}
        overrides = [*_overrides(max_retries=0, max_consecutive_failures=2, probe_after_s=1, on_judge_error="rules"),
                     WELL_FORMED]  # fmt: skip
        result = rehearse_loop(CONFIG, model, legal_data, out, steps=3, user_overrides=overrides, environ=env,
                               emit=lambda line: None, resume=False)  # fmt: skip
    ended = time.monotonic()
    phase = result.phases[0]
    assert died_at, "no judge request came after step 1 was logged: " + phase.log[-3000:]
    assert phase.returncode not in (0, 124), phase.log[-3000:]
    stops = [line for line in phase.log.splitlines() if f"{STOP_PREFIX} run stopped at step 2" in line]
    assert len(stops) == 1, phase.log[-3000:]
    assert "could not be scored" in stops[0] and judge.base_url.rsplit("/v1", 1)[0] in stops[0], stops[0]
    assert phase.error().startswith(f"{STOP_PREFIX} run stopped at step 2")
    step2 = [r["data"] for r in read_jsonl(out / "train.jsonl") if r.get("step") == 2]
    assert step2 and step2[-1][UNSCORED_METRIC] > 0, step2
    assert ended - died_at[0] < 600, f"the run took {ended - died_at[0]:.0f} s to stop after the judge died"
    assert processes.seen and not processes.left_behind(), processes.left_behind()


def _expected_advantages(rows: list[dict[str, Any]]) -> dict[str, float]:
    """verl's GRPO advantage per dumped response (key → value), with masked responses out of their groups."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        group = row["uid"] if row["judge_masked"] else row["uid"].rsplit("_", 2)[0]
        groups[group].append(row)
    out = {}
    for members in groups.values():
        scores = torch.tensor([float(r["score"]) for r in members])
        mean, std = (scores.mean(), scores.std()) if len(members) > 1 else (torch.tensor(0.0), torch.tensor(1.0))
        for row, value in zip(members, (scores - mean) / (std + GRPO_EPSILON), strict=True):
            out[row["uid"]] = float(value)
    return out


@pytest.mark.timeout(1800)
def test_a_response_the_judge_could_not_judge_teaches_nothing(legal_data: str, tmp_path: Path) -> None:
    """on_judge_error=mask with a judge failing every question about one of the two answers: those responses score
    the placeholder 0, are counted per step, get an advantage of exactly 0, and their groups' baselines are over the
    judged responses only."""
    model = build_primed_model(("盗窃罪", "诈骗罪"))

    def fail_fraud(body: dict[str, Any], index: int) -> int | None:
        return 503 if "诈骗罪" in prediction(body) else None

    with ScriptedJudgeServer(reply=judge_reply, model=str(model), fail=fail_fraud) as judge:
        overrides = [*_overrides(max_retries=0, max_consecutive_failures=1000, on_judge_error="mask"),
                     "actor_rollout_ref.rollout.n=4", "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=8",
                     "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=8",
                     "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=8"]  # fmt: skip
        result = rehearse_loop(
            CONFIG,
            model,
            legal_data,
            tmp_path / "out",
            steps=2,
            user_overrides=overrides,
            environ={"JUDGE_BASE_URL": judge.base_url},
            emit=lambda line: None,
            resume=False,
        )
    assert result.passed, f"{result.problems}\n{result.phases[-1].log[-3000:]}"
    masked_total = 0
    for record in (r for r in result.records() if "timing_s/step" in r["data"]):
        rows = read_jsonl(result.out_dir / "rollouts" / f"{record['step']}.jsonl")
        masked = [row for row in rows if row["judge_masked"]]
        masked_total += len(masked)
        assert record["data"][MASKED_METRIC] == len(masked)
        assert all(row["judge_failed"] == 1.0 and row["score"] == 0.0 for row in masked), masked
        assert all(row["advantage"] == 0.0 for row in masked), [row["advantage"] for row in masked]
        for row in (row for row in rows if row["judge_called"]):  # exactly the questions the judge failed
            assert ("诈骗罪" in row["output"]) == bool(row["judge_masked"]), row["output"]
        expected = _expected_advantages(rows)
        for row in rows:
            assert row["advantage"] == pytest.approx(expected[row["uid"]], abs=1e-3), (row["uid"], row["score"])
    assert masked_total > 0, "no response was masked: the primed model never wrote the failing answer"


@pytest.mark.vllm
@pytest.mark.timeout(2400)
def test_the_real_vllm_cpu_judge_is_called_inside_the_loop(legal_data: str, tmp_path: Path) -> None:
    """vLLM's CPU build serves the tiny model as the judge (started by the rehearsal itself through serve_judge.sh):
    every step calls it and no call fails."""
    model = build_primed_model(("盗窃罪",))
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUDGE_")}
    overrides = [*_overrides(), WELL_FORMED]
    result = rehearse_loop(CONFIG, model, legal_data, tmp_path / "out", steps=2, user_overrides=overrides,
                           environ=env, emit=lambda line: None)  # fmt: skip
    assert result.passed, f"{result.problems}\n{result.phases[-1].log[-3000:]}"
    for record in (r for r in result.records() if "timing_s/step" in r["data"]):
        assert record["data"]["reward/overall/judge_calls"] > 0, record["step"]
        assert record["data"]["reward/overall/judge_failure_rate"] == 0.0, record["step"]
