"""Training-time judge audits (reward kwarg judge_audit_rate): through verl's reward loop and the step metrics."""

from __future__ import annotations

import math
import pathlib

import pytest
from helpers.dataproto import make_reward_dataproto
from helpers.judge_fixtures import close_judge_connections, no_judge_env  # noqa: F401 - autouse fixtures
from helpers.judge_server import ScriptedJudgeServer
from helpers.legal_cases import GOLD as LEGAL_GOLD
from helpers.legal_cases import scripted_reply, wrap
from omegaconf import OmegaConf
from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager
from verl.trainer.ppo.reward import get_custom_reward_fn

from data.domains.legal.agreement import AGREEMENT_TASKS, agreement_rate, scores_agree
from recipes.trainer.step_metrics import aggregate_step_metrics, collect_reward_extras
from rewards.legal import RESULT_KEYS, audit_selected, compute_score, get_options
from rewards.rules import Gold, gold_from

REPO = pathlib.Path(__file__).resolve().parents[2]

GOLD = {task: LEGAL_GOLD[task] for task in ("charge", "article", "term")}


@pytest.fixture(scope="module")
def judge():
    """A healthy loopback judge answering what the prediction asks for."""
    with ScriptedJudgeServer(reply=scripted_reply, model="judge-model") as srv:
        yield srv


def judge_kwargs(server: ScriptedJudgeServer, **extra) -> dict:
    """Reward kwargs for hybrid mode against a loopback judge (no retries)."""
    return {
        "mode": "hybrid",
        "judge_base_url": server.base_url,
        "judge_model": "judge-model",
        "max_retries": 0,
        "backoff_s": 0.0,
        "timeout_s": 10.0,
        **extra,
    }


def reward_manager(tokenizer, reward_kwargs: dict) -> NaiveRewardManager:
    """verl's NaiveRewardManager over rewards/legal.py loaded by path, as training loads it."""
    config = OmegaConf.create(
        {
            "reward": {
                "custom_reward_function": {
                    "path": str(REPO / "rewards" / "legal.py"),
                    "name": "compute_score",
                    "reward_kwargs": reward_kwargs,
                }
            }
        }
    )
    return NaiveRewardManager(config, tokenizer, get_custom_reward_fn(config))


async def run_single(manager: NaiveRewardManager, tokenizer, task: str, answer: str) -> dict:
    """One response through verl's run_single."""
    ground_truth, extra_info = GOLD[task]
    data = make_reward_dataproto(
        tokenizer,
        prompts=["请预测"],
        responses=[wrap(answer)],
        data_sources=[f"legal/{task}"],
        ground_truths=[ground_truth],
        extra_infos=[extra_info],
        response_length=256,
    )
    return await manager.run_single(data)


# ---------------------------------------------------------------------------------------------------- definition


@pytest.mark.parametrize(
    ("judge_score", "rules_score", "agree"),
    [(2.0, 2.0, True), (1.0, 1.0, True), (-2.0, -2.0, True), (2.0, 1.0, False), (0.0, -2.0, False)],
)
def test_scores_agree(judge_score, rules_score, agree):
    """Agreement = equal task scores; an unreadable judge grade (0) never equals a rules grade."""
    assert scores_agree(judge_score, rules_score) is agree


def test_agreement_rate():
    """Share of agreeing pairs; None without pairs."""
    assert agreement_rate([(2.0, 2.0), (1.0, -2.0), (-2.0, -2.0), (0.0, 1.0)]) == 0.5
    assert agreement_rate([]) is None


def test_audit_selection_is_deterministic_and_near_the_rate():
    """The same (task, gold, answer) always gets the same decision; the share is close to the rate."""
    gold = gold_from("charge", *GOLD["charge"])
    answers = [f"盗窃罪{i}" for i in range(4000)]
    chosen = [audit_selected("charge", a, gold, 0.1) for a in answers]
    assert chosen == [audit_selected("charge", a, gold, 0.1) for a in answers]
    assert 0.08 < sum(chosen) / len(chosen) < 0.12
    assert not any(audit_selected("charge", a, gold, 0.0) for a in answers[:200])
    assert all(audit_selected("charge", a, gold, 1.0) for a in answers[:200])
    term_gold = gold_from("term", *GOLD["term"])
    assert not audit_selected("term", "有期徒刑三年", term_gold, 1.0)  # the term judge is not on the grade scale
    assert "term" not in AGREEMENT_TASKS


def test_audit_rate_default_and_validation(judge):
    """Default 0.02; out-of-range or non-numeric values are rejected naming the kwarg."""
    assert get_options(judge_kwargs(judge)).judge_audit_rate == 0.02
    assert get_options(judge_kwargs(judge, judge_audit_rate=0.5)).judge_audit_rate == 0.5
    for bad in (1.5, -0.1, "often"):
        with pytest.raises(ValueError, match="judge_audit_rate"):
            get_options(judge_kwargs(judge, judge_audit_rate=bad))


# ---------------------------------------------------------------------------------------------------- reward loop


@pytest.mark.parametrize(
    ("task", "answer", "rules_score", "agree"),
    [
        ("charge", "盗窃罪 JUDGE_SAYS:1", 1.0, 1.0),  # rules +1 (overlap), judge 1 → +1: agree
        ("charge", "盗窃罪 JUDGE_SAYS:2", 1.0, 0.0),  # judge 2 → +2: disagree
        ("article", "第67条、第264条 JUDGE_SAYS:2", 2.0, 1.0),
        ("article", "第67条、第264条 JUDGE_SAYS:0", 2.0, 0.0),
        ("article", "第67条、第264条 JUDGE_SAYS:无法判断", 2.0, 0.0),  # unreadable grade never agrees
    ],
)
async def test_audit_through_verl_reward_loop(judge, tiny_tokenizer, task, answer, rules_score, agree):
    """With rate 1 every rules-decided answer is audited: score stays the rules', agreement and load recorded."""
    judge.reset()
    manager = reward_manager(tiny_tokenizer, judge_kwargs(judge, judge_audit_rate=1.0))
    result = await run_single(manager, tiny_tokenizer, task, answer)
    extra = result["reward_extra_info"]
    assert tuple(extra) == RESULT_KEYS
    assert result["reward_score"] == rules_score
    assert extra["rules_used"] == 1.0
    assert (extra["judge_audited"], extra["judge_called"], extra["judge_rules_agree"]) == (1.0, 1.0, agree)
    assert len(judge.ok_requests) == 1


async def test_no_audit_at_rate_zero_nor_for_term(judge, tiny_tokenizer):
    """Rate 0: the rules-decided answer never reaches the judge; the term task is never audited."""
    judge.reset()
    off = reward_manager(tiny_tokenizer, judge_kwargs(judge, judge_audit_rate=0.0))
    result = await run_single(off, tiny_tokenizer, "charge", "盗窃罪")
    assert result["reward_extra_info"]["judge_audited"] == 0.0
    on = reward_manager(tiny_tokenizer, judge_kwargs(judge, judge_audit_rate=1.0))
    result = await run_single(on, tiny_tokenizer, "term", "有期徒刑三年")
    assert result["reward_score"] == pytest.approx(-6 / 240)
    assert (result["reward_extra_info"]["judge_audited"], result["reward_extra_info"]["judge_called"]) == (0.0, 0.0)
    assert judge.ok_requests == []


async def test_failed_audit_counts_and_never_raises(tiny_tokenizer):
    """A failing judge: judge_failed=1, no agreement, rules score kept, even with on_judge_error=raise."""
    with ScriptedJudgeServer(reply="2", fail=1.0, model="judge-model") as broken:
        kwargs = judge_kwargs(broken, judge_audit_rate=1.0, on_judge_error="raise")
        result = await run_single(reward_manager(tiny_tokenizer, kwargs), tiny_tokenizer, "charge", "盗窃罪")
    extra = result["reward_extra_info"]
    assert result["reward_score"] == 1.0
    assert (extra["judge_audited"], extra["judge_failed"], extra["judge_rules_agree"]) == (1.0, 1.0, 0.0)


async def test_identical_audited_answers_share_one_call(judge):
    """A GRPO group's identical answers: one audit decision, one judge request (cache + in-flight dedup)."""
    judge.reset()
    ground_truth, extra_info = GOLD["charge"]
    kwargs = judge_kwargs(judge, judge_audit_rate=1.0)
    outs = [
        await compute_score("legal/charge", wrap("诈骗罪"), ground_truth, dict(extra_info), **kwargs) for _ in range(16)
    ]
    assert all(o["judge_audited"] == 1.0 for o in outs)
    assert sum(o["cache_hit"] for o in outs) == 15
    assert len(judge.ok_requests) == 1


# ---------------------------------------------------------------------------------------------------- step metrics


async def test_step_metrics_from_the_reward_loop(judge, tiny_tokenizer):
    """reward/legal/<task>/judge_rules_agreement and judge_audited from real run_single outputs, by hand.

    charge: 4 audited (judge 1, 1, 2, 0 against rules +1) → 2 agree of 4 → 0.5;
    article: 1 audited (judge 2 against rules +2) → 1.0; term: 1 response, none audited → count 0, no agreement.
    """
    judge.reset()
    manager = reward_manager(tiny_tokenizer, judge_kwargs(judge, judge_audit_rate=1.0))
    batch = [
        ("charge", "盗窃罪 JUDGE_SAYS:1"),
        ("charge", "诈骗罪 JUDGE_SAYS:1"),
        ("charge", "盗窃罪 JUDGE_SAYS:2"),
        ("charge", "诈骗罪 JUDGE_SAYS:0"),
        ("article", "第67条、第264条 JUDGE_SAYS:2"),
        ("term", "有期徒刑三年六个月"),
    ]
    results = [await run_single(manager, tiny_tokenizer, task, answer) for task, answer in batch]
    extras = collect_reward_extras({"reward_extra_info": r["reward_extra_info"]} for r in results)
    metrics = aggregate_step_metrics([f"legal/{t}" for t, _ in batch], extras)
    assert metrics["reward/legal/charge/judge_audited"] == 4
    assert metrics["reward/legal/charge/judge_rules_agreement"] == 0.5
    assert metrics["reward/legal/charge/judge_calls"] == 4  # the audit load is in the judge metrics
    assert metrics["reward/legal/article/judge_audited"] == 1
    assert metrics["reward/legal/article/judge_rules_agreement"] == 1.0
    assert metrics["reward/legal/term/judge_audited"] == 0
    assert "reward/legal/term/judge_rules_agreement" not in metrics
    assert metrics["reward/overall/judge_audited"] == 5
    assert metrics["reward/overall/judge_rules_agreement"] == pytest.approx(3 / 5)


def test_step_metrics_skip_failed_audits():
    """Failed audit calls count as audited but stay out of the agreement; no audit key → no audit metrics."""
    sources = ["legal/charge"] * 4
    extras = {
        "judge_audited": [1, 1, 1, 0],
        "judge_failed": [0, 1, 0, 0],
        "judge_rules_agree": [1, 0, 0, 0],
        "judge_called": [1, 1, 1, 0],
    }
    metrics = aggregate_step_metrics(sources, extras)
    assert metrics["reward/legal/charge/judge_audited"] == 3
    assert metrics["reward/legal/charge/judge_rules_agreement"] == 0.5  # 1 of the 2 answered audits
    no_audit_key = aggregate_step_metrics(sources, {"judge_called": [0, 0, 0, 0]})
    assert not any("audit" in k or "agreement" in k for k in no_audit_key)
    assert math.isclose(metrics["reward/legal/charge/judge_failure_rate"], 1 / 3)


def test_gold_dataclass_is_what_audit_hashes():
    """audit_selected depends on the gold text the judge sees: a different gold changes the hash input."""
    a, b = Gold(text="盗窃罪"), Gold(text="诈骗罪")
    picks_a = [audit_selected("charge", f"x{i}", a, 0.5) for i in range(400)]
    picks_b = [audit_selected("charge", f"x{i}", b, 0.5) for i in range(400)]
    assert picks_a != picks_b


def test_evaluate_shares_the_definition_and_runs_no_audits():
    """evaluate imports the one agreement definition and asks compute_score for no training-time audits."""
    from data.domains.legal import agreement
    from recipes.legal import eval_summary, evaluate

    assert evaluate.AGREEMENT_TASKS is agreement.AGREEMENT_TASKS
    assert eval_summary.agreement_rate is agreement.agreement_rate
    assert evaluate.reward_kwargs("hybrid", "http://127.0.0.1:27001/v1", None)["judge_audit_rate"] == 0.0
