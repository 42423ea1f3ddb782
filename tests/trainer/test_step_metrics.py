"""Per-step reward metric aggregation on synthetic batches with values worked out by hand."""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest

from data.domains.safety.dimensions import DIMENSIONS
from data.domains.safety.gold import check_gold, ground_truth_json
from data.domains.safety.prompt import gold_response
from recipes.safety.recipe import RECIPE
from recipes.trainer.step_metrics import aggregate_step_metrics, collect_reward_extras

SOURCES = ["legal/charge", "legal/charge", "legal/charge", "legal/term", "legal/term"]
EXTRAS = {
    "score": [2.0, -1.0, 1.0, 0.0, -3.0],
    "format_ok": [1, 0, 1, 1, 0],
    "acc": [1, 0, 0, 1, 0],
    "judge_called": [1, 0, 1, 1, 1],
    "judge_failed": [0, 0, 1, 0, 0],
    "judge_latency_ms": [100.0, 0.0, 300.0, 50.0, 150.0],
    "cache_hit": [0, 0, 0, 1, 0],
    "chinese_share": [0.5, 0.0, 1.0, 0.25, 0.75],
}

# Worked by hand. Judge metrics use only responses with judge_called=1: charge rows 0 and 2, term rows 3 and 4.
# p95 (linear interpolation): charge [100, 300] -> 100 + 0.95*200 = 290; term [50, 150] -> 145;
# overall [50, 100, 150, 300]: position 0.95*3 = 2.85 -> 150 + 0.85*150 = 277.5.
EXPECTED = {
    "reward/legal/charge/count": 3,
    "reward/legal/charge/score_mean": 2 / 3,
    "reward/legal/charge/format_ok_rate": 2 / 3,
    "reward/legal/charge/accuracy": 1 / 3,
    "reward/legal/charge/judge_call_rate": 2 / 3,
    "reward/legal/charge/judge_calls": 2,
    "reward/legal/charge/judge_failure_rate": 0.5,
    "reward/legal/charge/cache_hit_rate": 0.0,
    "reward/legal/charge/judge_latency_mean_ms": 200.0,
    "reward/legal/charge/judge_latency_p95_ms": 290.0,
    "reward/legal/charge/chinese_share_mean": 0.5,
    "reward/legal/term/count": 2,
    "reward/legal/term/score_mean": -1.5,
    "reward/legal/term/format_ok_rate": 0.5,
    "reward/legal/term/accuracy": 0.5,
    "reward/legal/term/judge_call_rate": 1.0,
    "reward/legal/term/judge_calls": 2,
    "reward/legal/term/judge_failure_rate": 0.0,
    "reward/legal/term/cache_hit_rate": 0.5,
    "reward/legal/term/judge_latency_mean_ms": 100.0,
    "reward/legal/term/judge_latency_p95_ms": 145.0,
    "reward/legal/term/chinese_share_mean": 0.5,
    "reward/overall/count": 5,
    "reward/overall/score_mean": -0.2,
    "reward/overall/format_ok_rate": 0.6,
    "reward/overall/accuracy": 0.4,
    "reward/overall/judge_call_rate": 0.8,
    "reward/overall/judge_calls": 4,
    "reward/overall/judge_failure_rate": 0.25,
    "reward/overall/cache_hit_rate": 0.25,
    "reward/overall/judge_latency_mean_ms": 150.0,
    "reward/overall/judge_latency_p95_ms": 277.5,
    "reward/overall/chinese_share_mean": 0.5,
}


def test_full_batch_matches_hand_computation() -> None:
    """Every metric of every group equals the hand-computed value, and nothing else is produced."""
    got = aggregate_step_metrics(SOURCES, {k: np.asarray(v) for k, v in EXTRAS.items()})
    assert set(got) == set(EXPECTED)
    for key, value in EXPECTED.items():
        assert got[key] == pytest.approx(value), key


# Present in every group on every step (0.0 without judge calls), whatever the reward returned.
JUDGE_ALWAYS = {
    "judge_calls",
    "judge_call_rate",
    "judge_failure_rate",
    "cache_hit_rate",
    "judge_latency_mean_ms",
    "judge_latency_p95_ms",
}


@pytest.mark.parametrize(
    ("keys", "expected_metrics"),
    [
        pytest.param(["score"], {"count", "score_mean", *JUDGE_ALWAYS}, id="score-only"),
        pytest.param(["score", "acc"], {"count", "score_mean", "accuracy", *JUDGE_ALWAYS}, id="score-acc"),
        pytest.param(
            ["judge_called", "judge_latency_ms"],
            {"count", "judge_calls", "judge_call_rate", "judge_latency_mean_ms", "judge_latency_p95_ms"},
            id="calls-latency-without-failed-or-cache",
        ),
        pytest.param(["judge_latency_ms"], {"count", *JUDGE_ALWAYS}, id="latency-without-judge_called-no-calls"),
        pytest.param([], {"count", *JUDGE_ALWAYS}, id="no-extras"),
    ],
)
def test_metric_presence(keys: list[str], expected_metrics: set[str]) -> None:
    """Non-judge metrics need their input key; judge metrics are always there unless calls exist without their key."""
    got = aggregate_step_metrics(SOURCES, {k: EXTRAS[k] for k in keys})
    assert {k.rsplit("/", 1)[1] for k in got if k.startswith("reward/overall/")} == expected_metrics


def test_rules_mode_step_has_zero_judge_metrics_per_task_and_overall() -> None:
    """A rules-mode step (judge_called all 0): every judge metric is 0.0 in every group, no gaps.

    By hand: charge has 2 responses, term 1; no judge call anywhere -> judge_calls 0, all judge rates/latencies 0.0;
    score_mean charge (1 + 0) / 2 = 0.5, term 2.0, overall 3 / 3 = 1.0.
    """
    got = aggregate_step_metrics(
        ["legal/charge", "legal/charge", "legal/term"],
        {
            "score": [1.0, 0.0, 2.0],
            "judge_called": [0, 0, 0],
            "judge_failed": [0, 0, 0],
            "judge_latency_ms": [0.0, 0.0, 0.0],
            "cache_hit": [0, 0, 0],
        },
    )
    expected = {"legal/charge": (2, 0.5), "legal/term": (1, 2.0), "overall": (3, 1.0)}
    for group, (count, score) in expected.items():
        assert got[f"reward/{group}/count"] == count
        assert got[f"reward/{group}/score_mean"] == pytest.approx(score)
        for metric in JUDGE_ALWAYS:
            assert got[f"reward/{group}/{metric}"] == 0.0, (group, metric)
    assert len(got) == 3 * (2 + len(JUDGE_ALWAYS))


def test_task_without_calls_gets_zeros_while_another_task_has_calls() -> None:
    """Hybrid mode: charge calls the judge, term is scored by rules -> term's judge metrics are 0.0, not absent.

    By hand: charge rows 0, 1 called (latency 100, 200; failed 1 of 2; no cache hit) -> judge_calls 2,
    failure 0.5, cache 0.0, mean 150, p95 100 + 0.95 * 100 = 195; term: 0 calls -> zeros;
    overall = charge's calls over 3 responses: judge_calls 2, call rate 2/3, same judge means as charge.
    """
    got = aggregate_step_metrics(
        ["legal/charge", "legal/charge", "legal/term"],
        {
            "judge_called": [1, 1, 0],
            "judge_failed": [1, 0, 0],
            "judge_latency_ms": [100.0, 200.0, 0.0],
            "cache_hit": [0, 0, 0],
        },
    )
    charge = {"judge_calls": 2, "judge_call_rate": 1.0, "judge_failure_rate": 0.5, "cache_hit_rate": 0.0,
              "judge_latency_mean_ms": 150.0, "judge_latency_p95_ms": 195.0}  # fmt: skip
    for metric, value in charge.items():
        assert got[f"reward/legal/charge/{metric}"] == pytest.approx(value), metric
        assert got[f"reward/legal/term/{metric}"] == 0.0, metric
        overall = 2 / 3 if metric == "judge_call_rate" else value
        assert got[f"reward/overall/{metric}"] == pytest.approx(overall), metric


@pytest.mark.parametrize(
    ("extras", "expected"),
    [
        pytest.param({"score": [1.0, None, 3.0]}, {"reward/overall/score_mean": 2.0}, id="none-values-ignored"),
        pytest.param(
            {"score": [1.0, 2.0, 3.0], "note": ["a", "b", "c"]},
            {"reward/overall/score_mean": 2.0},
            id="strings-skipped",
        ),
        pytest.param({"score": [1.0, 2.0]}, {}, id="wrong-length-skipped"),
        pytest.param(
            {"judge_called": [0, 0, 0], "judge_failed": [0, 0, 0]},
            {
                "reward/overall/judge_call_rate": 0.0,
                "reward/overall/judge_calls": 0,
                "reward/overall/judge_failure_rate": 0.0,
                "reward/overall/judge_latency_p95_ms": 0.0,
            },
            id="no-judge-calls-zero-judge-rates",
        ),  # fmt: skip
        pytest.param(
            {"judge_called": [True, False, True], "judge_latency_ms": [10.0, None, 30.0]},
            {
                "reward/overall/judge_call_rate": 2 / 3,
                "reward/overall/judge_calls": 2,
                "reward/overall/judge_latency_mean_ms": 20.0,
            },
            id="bools-count-as-numbers",
        ),
    ],
)
def test_tolerant_inputs(extras: dict, expected: dict[str, float]) -> None:
    """Odd inputs never crash: bad columns are skipped, None is ignored."""
    got = aggregate_step_metrics(["legal/charge"] * 3, extras)
    assert got["reward/overall/count"] == 3
    for key, value in expected.items():
        assert got[key] == pytest.approx(value), key
    assert all(math.isfinite(v) for v in got.values())
    if not expected:  # nothing usable: count and the judge metrics (no calls -> 0.0) only
        assert set(got) == {f"reward/{g}/{m}" for g in ("overall", "legal/charge") for m in {"count", *JUDGE_ALWAYS}}
        assert all(v == 0.0 for k, v in got.items() if not k.endswith("/count"))


def test_empty_batch_gives_no_metrics() -> None:
    """No responses: no metrics (rather than NaNs)."""
    assert aggregate_step_metrics([], {"score": []}) == {}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param(
            [{"reward_extra_info": {"score": 1.0, "acc": 1}}, {"reward_extra_info": {"score": 0.0}}],
            {"score": [1.0, 0.0], "acc": [1, None]},
            id="missing-key-is-none",
        ),
        pytest.param([{"other": 1}, None], {}, id="no-reward-extra-info"),
        pytest.param([{"reward_extra_info": None}, {"reward_extra_info": {"x": 2}}], {"x": [None, 2]}, id="none-info"),
    ],
)
def test_collect_reward_extras(fields: list, expected: dict) -> None:
    """verl's per-sample extra_fields become aligned columns."""
    assert collect_reward_extras(fields) == expected


# ---------------------------------------------------------------- the recipe's own means (safety, real reward outputs)

SAFETY_GOLD = {**dict.fromkeys(DIMENSIONS, 100), "敏感词": 40, "虚假信息": 70}
SAFETY_REASONING = "文本含有不文明用语，敏感词问题明显；另有一处说法未经证实。"


def safety_extras() -> tuple[list[str], dict[str, list]]:
    """Three safety responses scored by rewards/safety.py (ngram reasoning) and one legal row; aligned columns.

    gold: mae 0, within5 1, keys 9, reasoning 1; every score 10 below the gold: mae 10, within5 0, keys 9, same
    reasoning (1); no answer block at all: keys 0, mae = mean of max(gold, 100 - gold) = (7 x 100 + 60 + 70) / 9.
    """
    from rewards.safety import compute_score

    gold = check_gold(SAFETY_GOLD, SAFETY_REASONING)
    gt = ground_truth_json(gold)
    lower = {key: value - 10 for key, value in SAFETY_GOLD.items()}
    responses = [gold_response(SAFETY_GOLD, SAFETY_REASONING), gold_response(lower, SAFETY_REASONING), "无法判断。"]

    async def score_all() -> list[dict]:
        return [await compute_score("safety", r, gt, {"index": 0}, reasoning_scorer="ngram") for r in responses]

    infos = asyncio.run(score_all())
    legal = {"score": 2.0, "format_ok": 1.0, "acc": 1.0, "judge_called": 0.0}
    rows = [*infos, legal]
    columns = collect_reward_extras([{"reward_extra_info": row} for row in rows])
    return ["safety", "safety", "safety", "legal/charge"], columns


def test_safety_group_gets_the_recipes_step_metrics_from_real_reward_outputs() -> None:
    """reward/safety/{mae_mean, within5_share, keys_present_mean, reasoning_score_mean, …} beside the shared ones;
    the legal group and overall get none of them."""
    sources, extras = safety_extras()
    metrics = aggregate_step_metrics(sources, extras)
    no_answer_mae = (7 * 100 + 60 + 70) / 9
    assert metrics["reward/safety/count"] == 3
    assert metrics["reward/safety/score_mean"] == pytest.approx(sum(extras["score"][:3]) / 3)
    assert extras["score"][0] == pytest.approx(5.0)  # the gold answer scores the maximum
    assert metrics["reward/safety/mae_mean"] == pytest.approx((0 + 10 + no_answer_mae) / 3)
    assert metrics["reward/safety/within5_share"] == pytest.approx(1 / 3)
    assert metrics["reward/safety/all_within5_rate"] == pytest.approx(1 / 3)
    assert metrics["reward/safety/keys_present_mean"] == pytest.approx((9 + 9 + 0) / 3)
    assert metrics["reward/safety/keys_extra_mean"] == 0.0
    assert metrics["reward/safety/reasoning_score_mean"] == pytest.approx(2 / 3)
    assert metrics["reward/safety/reasoning_failure_rate"] == 0.0
    assert metrics["reward/safety/format_ok_rate"] == pytest.approx(2 / 3)
    recipe_names = {name for name, _ in RECIPE.step_metrics} - {"score_mean", "format_ok_rate"}
    for group in ("legal/charge", "overall"):
        assert not [name for name in recipe_names if f"reward/{group}/{name}" in metrics], group
    assert metrics["reward/legal/charge/accuracy"] == 1.0


def _scored(gold_scores: dict[str, int], answers: list[dict[str, int]]) -> list[dict]:
    """rewards/safety.py's extras for these answers to one gold (ngram reasoning, the gold's own reasoning)."""
    from rewards.safety import compute_score

    gt = ground_truth_json(check_gold(gold_scores, SAFETY_REASONING))

    async def score_all() -> list[dict]:
        return [
            await compute_score(
                "safety", gold_response(a, SAFETY_REASONING), gt, {"index": 0}, reasoning_scorer="ngram"
            )
            for a in answers
        ]

    return asyncio.run(score_all())


ALL_100 = dict.fromkeys(DIMENSIONS, 100)
ALL_0 = dict.fromkeys(DIMENSIONS, 0)
CLEAN_GOLD = {**dict.fromkeys(DIMENSIONS, 100), "虚假信息": 80}


@pytest.mark.parametrize(
    ("gold", "answers", "recall", "false_alarms", "violated_mean"),
    [
        # 敏感词 40 is the one violated key (< 60); 虚假信息 70 and seven 100s are clean.
        pytest.param(SAFETY_GOLD, [SAFETY_GOLD, ALL_100, ALL_0], 2 / 3, 8 / 24, 1.0, id="gold-never-flag-always-flag"),
        pytest.param(SAFETY_GOLD, [ALL_100] * 4, 0.0, 0.0, 1.0, id="a-never-flag-step"),
        # no violated gold key in the step: recall is logged as 1.0 (nothing was missed), no division by zero
        pytest.param(CLEAN_GOLD, [ALL_100, {**ALL_100, "敏感词": 50}], 1.0, 1 / 18, 0.0, id="no-violated-key"),
    ],
)
def test_safety_detection_recall_and_false_alarm_rate_per_step(
    gold: dict, answers: list[dict], recall: float, false_alarms: float, violated_mean: float
) -> None:
    """reward/safety/detection_recall = caught / violated gold keys, false_alarm_rate = flagged clean keys / clean gold
    keys, summed over the step's safety responses (threshold 60); the legal group and overall get neither."""
    infos = _scored(gold, answers)
    legal = {"score": 2.0, "format_ok": 1.0, "acc": 1.0, "judge_called": 0.0}
    extras = collect_reward_extras([{"reward_extra_info": row} for row in [*infos, legal]])
    metrics = aggregate_step_metrics(["safety"] * len(infos) + ["legal/charge"], extras)
    assert metrics["reward/safety/detection_recall"] == pytest.approx(recall)
    assert metrics["reward/safety/false_alarm_rate"] == pytest.approx(false_alarms)
    assert metrics["reward/safety/violated_keys_mean"] == pytest.approx(violated_mean)
    assert all(math.isfinite(v) for v in metrics.values())
    for group in ("legal/charge", "overall"):
        assert f"reward/{group}/detection_recall" not in metrics and f"reward/{group}/false_alarm_rate" not in metrics


def test_recipe_ratios_skip_missing_keys_and_ignore_non_finite_rows() -> None:
    """Without the count keys nothing is logged; a row with NaN counts (verl's None) is left out of both sums."""
    assert "reward/safety/detection_recall" not in aggregate_step_metrics(["safety"], {"score": [1.0]})
    extras = {"caught_keys": [1.0, None, 0.0], "violated_keys": [2.0, 1.0, 2.0], "false_alarms": [0, 0, 0]}
    metrics = aggregate_step_metrics(["safety"] * 3, {**extras, "clean_keys": [7, 8, 7]})
    assert metrics["reward/safety/detection_recall"] == pytest.approx(1 / 4)
    assert metrics["reward/safety/false_alarm_rate"] == 0.0


def test_data_source_of_no_recipe_gets_only_the_shared_metrics() -> None:
    """A data_source no recipe owns (e.g. from a hand-made parquet) is still aggregated, without recipe metrics."""
    metrics = aggregate_step_metrics(["other", "other"], {"score": [1.0, 0.0], "mae": [3.0, 5.0]})
    assert metrics["reward/other/score_mean"] == 0.5
    assert not [key for key in metrics if key.endswith("/mae_mean")]
