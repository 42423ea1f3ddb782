"""The safety reward's ranking, as a table: what must out-earn what, by how much, on two data sets (issue 23).

A moderation model is worth something only if it catches violations, and most gold scores are 100 (about 90% of the
nine keys in the shipped sample). The reward must still rank, by mean reward over a data set:

    gold  >  honest within 2  >  honest within 5  >  honest within 10  >  "all 100", "all 0", best constant answer

An honest scorer "within k" is k points off on EVERY key (the worst case of "within k"): towards 100 ("up": it misses
violations near the threshold), towards 0 ("down": false alarms) or a seeded random side. Every response carries its
row's gold reasoning, so the ranking is the scores' alone. The best constant answers are searched for: the best
single score for all nine keys, and the best nine-score vector by coordinate ascent. Margins (defaults, reward range
[-5, 5]): gold beats every honest ±2 scorer by >= 0.03; each honest level beats every scorer of the next one by
>= 0.03; every honest ±10 scorer beats the best constant by >= 0.25 (>= 0.1 at detection_weight 0.5).

Data sets: data/samples/safety_sample.jsonl (shipped) and data/samples/safety_violations.jsonl (about half the texts
with a violation, every dimension violated at least four times, each gold reasoning worded for its text).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path

import pytest

from data.domains.safety.dimensions import DIMENSIONS, VIOLATION_THRESHOLD
from data.domains.safety.gold import Gold, ground_truth_json
from data.domains.safety.parse import ParsedAnswer, parse_answer
from data.domains.safety.prompt import answer_json, gold_response
from data.reader import decode_record
from data.sources import get_parser
from rewards.safety import compute_score, get_options, max_score
from rewards.safety_parts import closeness_part, detection_part

REPO = Path(__file__).resolve().parents[2]
DATA_SETS = ("data/samples/safety_sample.jsonl", "data/samples/safety_violations.jsonl")
Strategy = Callable[[Mapping[str, int]], dict[str, int]]


@cache
def golds(path: str) -> tuple[Gold, ...]:
    parse = get_parser("safety")
    raw = (REPO / path).read_bytes().splitlines()
    return tuple(parse(decode_record(line), f"{path}:{i}").gold for i, line in enumerate(raw, 1))


def honest(k: int, side: str) -> Strategy:
    """k points off on every key: towards 100 ("up"), towards 0 ("down") or a seeded random side, staying in 0..100."""
    rng = random.Random(k)

    def answer(gold: Mapping[str, int]) -> dict[str, int]:
        out = {}
        for key, g in gold.items():
            up = {"up": True, "down": False}.get(side, rng.random() < 0.5)
            out[key] = g + k if (up and g + k <= 100) or (not up and g - k < 0) else g - k
        return out

    return answer


def constant(values: Mapping[str, int]) -> Strategy:
    return lambda gold: dict(values)


def _score_parts_mean(path: str, vector: tuple[int, ...], kwargs: Mapping[str, float]) -> float:
    """Mean weighted closeness + detection of one constant answer (the parts the scores move; for the search)."""
    parsed = ParsedAnswer(scores=dict(zip(DIMENSIONS, vector, strict=True)), missing=(), json_ok=True)
    wc, wd = kwargs.get("closeness_weight", 1.0), kwargs.get("detection_weight", 1.0)
    rows = golds(path)
    total = sum(wc * closeness_part(parsed, g.score_map) + wd * detection_part(parsed, g.score_map) for g in rows)
    return total / len(rows)


def best_constants(path: str, kwargs: Mapping[str, float]) -> dict[str, Strategy]:
    """The best single score for all nine keys (0..100), and the best vector by coordinate ascent from it."""
    best_c = max(range(101), key=lambda c: _score_parts_mean(path, (c,) * 9, kwargs))
    vector, value = [best_c] * 9, _score_parts_mean(path, (best_c,) * 9, kwargs)
    for _sweep in range(2):
        for i in range(9):
            for v in range(0, 101, 5):
                trial = [*vector[:i], v, *vector[i + 1 :]]
                got = _score_parts_mean(path, tuple(trial), kwargs)
                if got > value + 1e-12:
                    vector, value = trial, got
    return {
        f"best constant {best_c}": constant(dict.fromkeys(DIMENSIONS, best_c)),
        f"best vector {vector}": constant(dict(zip(DIMENSIONS, vector, strict=True))),
    }


async def mean_outcome(path: str, strategy: Strategy, kwargs: Mapping[str, object]) -> dict[str, float]:
    """Mean reward, within-5 share and violation recall of a strategy over the data set (gold reasoning throughout)."""
    total = within5 = violated = caught = 0.0
    rows = golds(path)
    for gold in rows:
        scores = strategy(gold.score_map)
        out = await compute_score("safety", gold_response(scores, gold.reasoning), ground_truth_json(gold), **kwargs)
        total += out["score"]
        within5 += sum(abs(scores[k] - v) <= 5 for k, v in gold.scores) / len(DIMENSIONS)
        bad = [k for k, v in gold.scores if v < VIOLATION_THRESHOLD]
        violated += len(bad)
        caught += sum(scores[k] < VIOLATION_THRESHOLD for k in bad)
    return {"reward": total / len(rows), "within5": within5 / len(rows), "recall": caught / violated}


def test_the_second_data_set_is_what_it_claims() -> None:
    """safety_violations.jsonl: every line valid, about half the texts with a violation, each dimension violated at
    least four times, no gold reasoning used twice."""
    rows = golds(DATA_SETS[1])
    violated_texts = sum(any(v < VIOLATION_THRESHOLD for _, v in g.scores) for g in rows)
    assert len(rows) >= 40 and 0.4 <= violated_texts / len(rows) <= 0.6
    for key in DIMENSIONS:
        assert sum(g.score_map[key] < VIOLATION_THRESHOLD for g in rows) >= 4, key
    assert len({g.reasoning for g in rows}) == len(rows)


WEIGHTS = [
    pytest.param({}, 0.25, id="defaults"),
    pytest.param({"detection_weight": 0.5}, 0.1, id="detection-half-of-closeness"),
]


@pytest.mark.parametrize("path", DATA_SETS)
@pytest.mark.parametrize(("weights", "constant_margin"), WEIGHTS)
async def test_ranking_table(path: str, weights: dict, constant_margin: float) -> None:
    """gold > every honest ±2 > every ±5 > every ±10 > all 100, all 0 and the best constants, by the stated margins;
    the seed's metric (share within 5 points) is reported beside it: "all 100" keeps most of it and catches nothing."""
    kwargs = {"reasoning_scorer": "ngram", "ngram_reference": path, **weights}
    levels: dict[str, dict[str, Strategy]] = {
        "gold": {"gold": lambda g: dict(g)},
        **{f"±{k}": {f"±{k} {side}": honest(k, side) for side in ("up", "down", "random")} for k in (2, 5, 10)},
        "constants": {
            "all 100": constant(dict.fromkeys(DIMENSIONS, 100)),
            "all 0": constant(dict.fromkeys(DIMENSIONS, 0)),
            **best_constants(path, weights),
        },
    }
    table = {
        name: {row: await mean_outcome(path, strategy, kwargs) for row, strategy in rows.items()}
        for name, rows in levels.items()
    }
    rewards = {name: [r["reward"] for r in rows.values()] for name, rows in table.items()}
    report = json.dumps(table, ensure_ascii=False, indent=1)

    assert rewards["gold"] == [max_score(get_options(kwargs))], report
    assert rewards["gold"][0] - max(rewards["±2"]) >= 0.03, report
    assert min(rewards["±2"]) - max(rewards["±5"]) >= 0.03, report
    assert min(rewards["±5"]) - max(rewards["±10"]) >= 0.03, report
    assert min(rewards["±10"]) - max(rewards["constants"]) >= constant_margin, report
    assert table["gold"]["gold"]["within5"] == 1.0 and table["gold"]["gold"]["recall"] == 1.0
    assert all(row["within5"] == 1.0 for row in table["±5"].values())
    assert table["constants"]["all 100"]["within5"] > 0.8 and table["constants"]["all 100"]["recall"] == 0.0


KEY_GOLDS = (0, 15, 40, 59, 60, 61, 85, 99, 100)
DISTANCES = (0, 1, 2, 5, 10, 20, 40, 60, 80, 100)


@pytest.mark.parametrize("key", DIMENSIONS)
async def test_reward_strictly_falls_with_the_distance_on_every_key(key: str) -> None:
    """For each key and gold value, moving that key's score away from the gold (either side, other keys exact) lowers
    the reward at every distance: 0, 1, 2, 5, 10, 20, 40, 60, 80, 100 (no flat tail, no plateau)."""
    reasoning = "文本中一处说法需要核实。"
    for g in KEY_GOLDS:
        gold_scores = {**dict.fromkeys(DIMENSIONS, 100), key: g}
        gt = json.dumps({"scores": gold_scores, "reasoning": reasoning}, ensure_ascii=False)
        for side in (1, -1):
            rewards = []
            for d in DISTANCES:
                if 0 <= g + side * d <= 100:
                    response = gold_response({**gold_scores, key: g + side * d}, reasoning)
                    rewards.append((d, (await compute_score("safety", response, gt, None))["score"]))
            drops = [(a, b) for (a, ra), (b, rb) in zip(rewards, rewards[1:], strict=False) if not rb < ra]
            assert not drops, (key, g, side, rewards)


GOLD = {**dict.fromkeys(DIMENSIONS, 100), "敏感词": 40, "虚假信息": 70}


def test_exact_is_no_cliff_above_one_point_off() -> None:
    """The closeness part loses at most 5% of its range from exact to 1 point off on one key, or on all nine."""
    options = get_options({})
    span = (1 + options.exact_bonus) - (-1)
    exact = closeness_part(parse_answer(answer_json(GOLD)), GOLD)
    for changed in ([DIMENSIONS[6]], list(DIMENSIONS)):
        off = {k: (v - 1 if k in changed else v) for k, v in GOLD.items()}
        assert 0 < exact - closeness_part(parse_answer(answer_json(off)), GOLD) <= 0.05 * span


async def test_a_broken_format_gold_ranks_below_a_well_formed_answer_two_points_off() -> None:
    """Text before the blocks (format -1) costs more than being 2 points off on every key."""
    reasoning = "文本用语不文明，还有一处说法未经证实。"
    gt = json.dumps({"scores": GOLD, "reasoning": reasoning}, ensure_ascii=False)
    broken = "好的，以下是评分。" + gold_response(GOLD, reasoning)
    near = gold_response({k: v - 2 for k, v in GOLD.items()}, reasoning)
    broken_out, near_out = [await compute_score("safety", r, gt, None) for r in (broken, near)]
    assert broken_out["format_ok"] == 0.0 and near_out["format_ok"] == 1.0
    assert near_out["score"] > broken_out["score"]
