"""The n-gram reasoning scorer (rewards/safety_ngram.py) cannot be paid by text that ignores the input (issue 23).

The adversary is searched for by the test itself: a constant reasoning built greedily, phrase by phrase, to score as
high as possible on one half of a data set, then checked on the other half against the honest baseline of "some other
text's gold reasoning". Also: a reasoning that restates the answer's own scores, and a GRPO group of answers that
differ only in punctuation, spacing, invisible characters or digits.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage

from data.domains.safety.dimensions import DIMENSIONS
from data.domains.safety.gold import check_gold, ground_truth_json
from data.domains.safety.prompt import gold_response
from rewards.safety import compute_score, get_options
from rewards.safety_ngram import NgramReference, NgramReferenceError, load_reference, ngram_reasoning_score

REPO = Path(__file__).resolve().parents[2]
DATA_SETS = ("data/samples/safety_sample.jsonl", "data/samples/safety_violations.jsonl")


def records(path: str) -> list[dict]:
    return [json.loads(line) for line in (REPO / path).read_text(encoding="utf-8").splitlines() if line.strip()]


def reward_scorer(path: str) -> Callable[[str, str], float]:
    """The reasoning part exactly as compute_score computes it with reasoning_scorer=ngram, ngram_reference=path."""
    options = get_options({"reasoning_scorer": "ngram", "ngram_reference": path})
    return lambda pred, gold: ngram_reasoning_score(
        pred, gold, options.ngram_n, options.ngram_reference, options.ngram_step
    )


def greedy_constant(score: Callable[[str, str], float], golds: list[str], steps: int = 8) -> tuple[str, float]:
    """The constant reasoning that scores highest on these golds, built by appending the best phrase each step.

    Candidate phrases: every clause of these golds (split at punctuation) and their 40 most frequent bigrams.
    """
    phrases = {p for g in golds for p in re.split(r"[，。；、“”：,.;:]", g) if p}
    bigrams = Counter(g[i : i + 2] for g in golds for i in range(len(g) - 1))
    candidates = sorted(phrases | {b for b, _ in bigrams.most_common(40)})
    best, best_value = "", 0.0
    for _ in range(steps):
        step_best = None
        for phrase in candidates:
            trial = f"{best}，{phrase}" if best else phrase
            value = sum(score(trial, g) for g in golds) / len(golds)
            if value > best_value + 1e-12:
                step_best, best_value = trial, value
        if step_best is None:
            break
        best = step_best
    return best, best_value


def halves(path: str) -> tuple[list[str], list[str]]:
    reasonings = sorted({r["reasoning"] for r in records(path)})
    random.Random(23).shuffle(reasonings)
    middle = len(reasonings) // 2
    return reasonings[:middle], reasonings[middle:]


@pytest.mark.parametrize("path", DATA_SETS)
def test_a_searched_constant_earns_no_more_than_another_texts_reasoning(path: str) -> None:
    """Searched on half A, the constant scores on half B at most what another text's gold reasoning scores there.

    Before issue 23 (plain character-bigram Dice) the constant won: 0.124 against 0.075 on the shipped sample.
    """
    score = reward_scorer(path)
    search, check = halves(path)
    constant, in_sample = greedy_constant(score, search)
    held_out = sum(score(constant, g) for g in check) / len(check)
    other = sum(score(o, g) for g in check for o in check if o != g) / (len(check) * (len(check) - 1))
    assert constant and in_sample > 0  # the search found something to say
    assert held_out <= other, (constant, held_out, other)


def restatements(scores: dict[str, int]) -> list[str]:
    """Reasonings that only restate the answer's own scores."""
    listed = "，".join(f"{k}{v}分" for k, v in scores.items())
    return [
        f"{listed}。",
        "评分如下：" + "；".join(f"“{k}”：{v}" for k, v in scores.items()) + "。",
        "九个维度的得分分别为" + "、".join(str(v) for v in scores.values()) + "，满分100分，分数越高越合规。",
    ]


@pytest.mark.parametrize("path", DATA_SETS)
def test_restating_the_scores_earns_nothing(path: str) -> None:
    """A reasoning made of the answer's own scores and the prompt's words scores 0 on every row (before: up to 0.11),
    while another text's reasoning earns something on average."""
    score = reward_scorer(path)
    rows = records(path)
    golds = [r["reasoning"] for r in rows]
    other = sum(score(golds[(i + 7) % len(golds)], g) for i, g in enumerate(golds)) / len(golds)
    for row in rows:
        for text in restatements(row["scores"]):
            assert score(text, row["reasoning"]) == 0.0, text
    assert other > 0


def test_near_identical_answers_of_a_group_get_the_same_reward_and_no_advantage() -> None:
    """Eight answers with the same scores whose reasonings differ only in punctuation, spacing, zero-width spaces,
    full-width forms and digits: one reward, so GRPO's advantages are all 0 (before: five different rewards, each
    turned into a full-size advantage by the group's std)."""
    path = DATA_SETS[0]
    gold = check_gold(
        {**dict.fromkeys(DIMENSIONS, 100), "商业违规": 30, "虚假信息": 35}, records(path)[25]["reasoning"]
    )
    base = "文本是广告，有夸大之处"
    variants = [
        base,
        base + "。",
        base.replace("，", ","),
        base.replace("，", "， "),
        "文本是广告\u200b，有夸大之处。",
        base + "（商业违规30分，虚假信息35分）",
        "文本是广告；有夸大之处！",
        " 文本是广告，有夸大之处\n",
    ]
    kwargs = {"reasoning_scorer": "ngram", "ngram_reference": path}

    async def score_all() -> list[dict]:
        return [
            await compute_score("safety", gold_response(gold.score_map, v), ground_truth_json(gold), None, **kwargs)
            for v in variants
        ]

    outs = asyncio.run(score_all())
    assert 0 < outs[0]["reasoning_part"] < 1  # a partial reasoning: neither nothing nor the gold
    rewards = torch.tensor([[o["score"]] for o in outs])
    advantages, _ = compute_grpo_outcome_advantage(rewards, torch.ones_like(rewards), np.zeros(len(outs)))
    assert len({o["score"] for o in outs}) == 1
    assert torch.count_nonzero(advantages) == 0


@pytest.mark.parametrize("path", DATA_SETS)
def test_every_gold_reasoning_scores_one_against_its_data_set(path: str) -> None:
    """With the data set as reference (its own reasoning included), each row's gold response keeps the maximum."""
    kwargs = {"reasoning_scorer": "ngram", "ngram_reference": path}

    async def run() -> list[float]:
        out = []
        for row in records(path):
            gold = check_gold(row["scores"], row["reasoning"])
            response = gold_response(gold.score_map, gold.reasoning)
            out.append((await compute_score("safety", response, ground_truth_json(gold), None, **kwargs))["score"])
        return out

    assert set(asyncio.run(run())) == {5.0}


@pytest.mark.parametrize(
    ("pred", "gold", "reference", "expected"),
    [
        # content bigrams of the gold: 本是 是家 家常 常菜 菜做 做法 (文本 is the prompt's, 。 is no letter)
        pytest.param(
            "文本是家常菜做法。",
            "文本是家常菜做法。",
            ["文本是家常菜做法！", "其他理由"],
            1.0,
            id="same-ngrams-left-out",
        ),
        pytest.param("家常菜", "文本是家常菜做法。", [], 0.5, id="no-other-reasoning-dice"),  # 2 x 2 / (2 + 6)
        pytest.param("合规，风险很低。", "文本是家常菜做法。", ["宠物趣事"], 0.0, id="nothing-in-common"),
        pytest.param("家常菜做法", "文本是家常菜做法。", ["家常菜做法的推荐", "宠物趣事"], 1.0, id="ranked-first"),
        pytest.param(
            "家常菜做法",
            "文本是家常菜做法。",
            ["家常菜做法", "家常菜做法的推荐", "宠物趣事", "户外游玩"],
            0.5,
            id="one-closer",
        ),  # own 0.8; 家常菜做法 1.0 >= 0.8, the other three below: F = 3/4, 2F - 1 = 0.5
        pytest.param("合规。", "合规。", ["宠物趣事"], 1.0, id="gold-without-content-plain-dice"),
        pytest.param("文本合规", "合规。", ["宠物趣事"], 0.4, id="gold-without-content-partial"),  # 2 x 1 / (3 + 2)
    ],
)
def test_scorer_cases(pred: str, gold: str, reference: list[str], expected: float) -> None:
    """Hand-worked cases (content bigrams: letters only, the prompt's own bigrams removed; step 0.1)."""
    ref = NgramReference.build([gold, *reference])
    assert ngram_reasoning_score(pred, gold, 2, ref, step=0.1) == pytest.approx(expected)


def test_rank_arithmetic_by_hand() -> None:
    """Own gold: Dice 14/15; one other reasoning matches better (1.0), two worse (0): F = 2/3, score 1/3."""
    gold = "茶包医疗功效宣传"
    ref = NgramReference.build([gold, "茶包医疗功效宣传夸大", "宠物趣事", "户外游玩经历"])
    assert ngram_reasoning_score("茶包医疗功效宣传夸大", gold, 2, ref, step=0.0) == pytest.approx(1 / 3)


def test_bounded_time_and_range_on_hostile_input() -> None:
    """1 MB of text, every letter bigram of the reference, lone surrogates, control characters: in [0, 1], fast."""
    rows = records(DATA_SETS[0])
    ref = load_reference((DATA_SETS[0],), 2)
    everything = "".join(r["reasoning"] for r in rows)
    hostile = [
        everything * 200,
        "\ud800" * 100_000,
        "家常菜" * 300_000,
        "\x00\u200b\ufeff" * 50_000,
        "".join(rows[0]["text"]),
    ]
    start = time.perf_counter()
    for text in hostile:
        for row in rows[:20]:
            assert 0.0 <= ngram_reasoning_score(text, row["reasoning"], 2, ref, 0.1) <= 1.0
    assert time.perf_counter() - start < 20.0


def test_the_reward_with_a_reference_stays_bounded_on_hostile_responses() -> None:
    """compute_score with the n-gram scorer and a reference: 1 MB reasonings, surrogates, tag floods score in
    bounded time, with the same float keys and a score within [-5, 5]."""
    from rewards.safety import RESULT_KEYS

    row = records(DATA_SETS[0])[30]
    gt = ground_truth_json(check_gold(row["scores"], row["reasoning"]))
    kwargs = {"reasoning_scorer": "ngram", "ngram_reference": DATA_SETS[0]}
    everything = "".join(r["reasoning"] for r in records(DATA_SETS[0]))
    hostile = [
        f"<reasoning>{everything * 100}</reasoning><answer>{{}}</answer>",
        "<reasoning>" + "\ud800" * 300_000 + "</reasoning>",
        "<reasoning>" * 100_000,
        gold_response(row["scores"], row["reasoning"]) * 500,
    ]

    async def run() -> list[dict]:
        return [await compute_score("safety", text, gt, None, **kwargs) for text in hostile]

    start = time.perf_counter()
    outs = asyncio.run(run())
    assert time.perf_counter() - start < 10.0
    for out in outs:
        assert tuple(out) == RESULT_KEYS and all(type(v) is float for v in out.values())
        assert -5.0 <= out["score"] <= 5.0


def test_reference_files_read_and_errors_name_the_place(tmp_path: Path) -> None:
    """JSONL records and prepared parquet files are read; a bad line or row is named; a missing file too."""
    good = tmp_path / "good.jsonl"
    good.write_text('{"reasoning": "文本是家常菜做法。"}\n\n{"reasoning": "宠物趣事。"}\n', encoding="utf-8")
    assert len(load_reference((str(good),), 2)) == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"reasoning": "x"}\n{"text": "no reasoning"}\n', encoding="utf-8")
    with pytest.raises(NgramReferenceError, match=r"bad.jsonl:2: field 'reasoning'"):
        load_reference((str(bad),), 2)
    with pytest.raises(NgramReferenceError, match="no such file"):
        load_reference((str(tmp_path / "nope.parquet"),), 2)
    gt = ground_truth_json(check_gold(dict.fromkeys(DIMENSIONS, 100), "文本记录日常出行。"))
    table = pa.Table.from_pylist([{"reward_model": {"style": "rule", "ground_truth": gt}}] * 2)
    pq.write_table(table, tmp_path / "train.parquet")
    assert len(load_reference((str(tmp_path / "train.parquet"),), 2)) == 1  # the same reasoning once
    broken = pa.Table.from_pylist([{"reward_model": {"style": "rule", "ground_truth": gt}}, {"reward_model": None}])
    pq.write_table(broken, tmp_path / "broken.parquet")
    with pytest.raises(NgramReferenceError, match=r"broken.parquet: row 1: reward_model.ground_truth"):
        load_reference((str(tmp_path / "broken.parquet"),), 2)
