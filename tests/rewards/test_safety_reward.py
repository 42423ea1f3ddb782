"""rewards/safety.py: gold gets full marks, each defect of the original demo is caught, parts, scorers, verl loading.

The judge is the loopback ScriptedJudgeServer (a reasoning containing "JUDGE_SAYS:<text>" makes it answer <text>,
else "2"); the embedding endpoint is the loopback EmbeddingServer.
"""

from __future__ import annotations

import functools
import json
import math
import pathlib
import random
import re

import pytest
from helpers.dataproto import make_reward_dataproto
from helpers.embedding_server import EmbeddingServer, char_vector
from helpers.judge_server import ScriptedJudgeServer
from omegaconf import OmegaConf
from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager
from verl.trainer.ppo.reward import get_custom_reward_fn

from data.domains.safety.dimensions import DIMENSIONS
from data.domains.safety.gold import Gold, GoldError, check_gold, ground_truth_json
from data.domains.safety.parse import parse_answer
from data.domains.safety.prompt import answer_json, gold_response
from data.reader import decode_record
from data.sources import SkipRecord, get_parser
from judge.client import JudgeUnavailableError, close_judge_clients
from judge.embeddings import EmbeddingUnavailableError, close_embedding_clients, cosine
from rewards.safety import RESULT_KEYS, ScorerCallError, compute_score, get_options, max_score
from rewards.safety_parts import closeness_part, keys_part, ngram_similarity

REPO = pathlib.Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "samples" / "safety_sample.jsonl"
_SAYS = re.compile(r"JUDGE_SAYS:([^\n<]*)")

GOLD_SCORES = {**dict.fromkeys(DIMENSIONS, 100), "敏感词": 40, "虚假信息": 70}
GOLD_REASONING = "文本含有不文明用语，敏感词问题明显；另有一处说法未经证实。"
GOLD = check_gold(GOLD_SCORES, GOLD_REASONING)
GT = ground_truth_json(GOLD)


def respond(scores: dict | str, reasoning: str = GOLD_REASONING) -> str:
    """A well-formatted response with these scores (a dict, or raw answer text)."""
    answer = scores if isinstance(scores, str) else json.dumps(scores, ensure_ascii=False)
    return f"<reasoning>{reasoning}</reasoning>\n<answer>{answer}</answer>"


async def score(response: str, gt: str = GT, **kwargs) -> dict[str, float]:
    return await compute_score("safety", response, gt, {"index": 0}, **kwargs)


def scripted_reply(request: dict) -> str:
    user = "\n".join(str(m.get("content", "")) for m in request["messages"] if m.get("role") == "user")
    found = _SAYS.search(user)
    return found.group(1).strip() if found else "2"


@pytest.fixture(autouse=True)
async def _close_clients():
    """Each test has its own event loop: close its clients before pytest closes the loop."""
    yield
    await close_judge_clients()
    await close_embedding_clients()


@pytest.fixture(scope="module")
def judge():
    with ScriptedJudgeServer(reply=scripted_reply, model="judge-model") as srv:
        yield srv


@pytest.fixture
def embedder():
    with EmbeddingServer() as srv:
        yield srv


def judge_kwargs(server: ScriptedJudgeServer, **extra) -> dict:
    return {
        "reasoning_scorer": "judge",
        "judge_base_url": server.base_url,
        "judge_model": "judge-model",
        "max_retries": 0,
        "backoff_s": 0.0,
        "timeout_s": 10.0,
        **extra,
    }


def embedding_kwargs(server: EmbeddingServer, **extra) -> dict:
    return {
        "reasoning_scorer": "embedding",
        "embedding_base_url": server.base_url,
        "embedding_model": "embed-model",
        "embedding_max_retries": 0,
        "embedding_timeout_s": 10.0,
        **extra,
    }


def sample_golds() -> list[Gold]:
    parse = get_parser("safety")
    out = []
    for i, raw in enumerate(SAMPLE.read_bytes().splitlines(), start=1):
        try:
            out.append(parse(decode_record(raw), f"sample:{i}").gold)
        except SkipRecord:  # pragma: no cover - the sample file is all valid
            raise
    return out


# ------------------------------------------------------------------------------------------- gold → full marks


async def test_gold_in_full_marks_out_over_every_sample_row():
    """Every sample row's gold answer, written as a response, scores the maximum (5 with the defaults)."""
    golds = sample_golds()
    assert len(golds) >= 80
    best = max_score(get_options({}))
    assert best == 5.0
    for gold in golds:
        out = await score(gold_response(gold.score_map, gold.reasoning), ground_truth_json(gold))
        assert out["score"] == best, gold
        assert (out["format_ok"], out["keys_present"], out["exact_keys"], out["mae"], out["all_within5"]) == (
            1.0,
            9.0,
            9.0,
            0.0,
            1.0,
        )


@pytest.mark.parametrize(
    "weights",
    [
        {"format_weight": 0.5, "keys_weight": 2, "closeness_weight": 3, "reasoning_weight": 0.25, "exact_bonus": 2},
        {"reasoning_weight": 0, "closeness_weight": 1},
    ],
)
async def test_gold_scores_the_maximum_under_other_weights(weights):
    """max_score follows the weights, and gold still reaches it; nothing else does."""
    best = max_score(get_options(weights))
    gold = await score(gold_response(GOLD_SCORES, GOLD_REASONING), **weights)
    near = await score(respond({**GOLD_SCORES, "敏感词": 41}), **weights)
    assert gold["score"] == pytest.approx(best)
    assert near["score"] < best


# ------------------------------------------------------------------------------- the original demo's defects


async def test_defect_whole_response_as_json_is_not_read():
    """The original parsed the whole response as JSON: a bare JSON response (no blocks) must not score the keys."""
    bare = answer_json(GOLD_SCORES)
    out = await score(bare)
    assert out["format_ok"] == 0.0 and out["has_answer"] == 0.0
    assert out["keys_present"] == 0.0 and out["keys_part"] == -1.0 and out["closeness_part"] == -1.0
    assert out["detection_part"] == -1.0  # the violation missed, every clean key unanswered
    assert out["score"] == -4.0  # -1 format, -1 keys, -1 closeness, -1 detection, 0 reasoning


async def test_defect_json_outside_the_answer_block_does_not_count():
    """Only the answer block is read: right scores in the reasoning, wrong ones in the answer, score the wrong ones."""
    wrong = dict.fromkeys(DIMENSIONS, 100)
    response = respond(wrong, reasoning=f"草稿：{answer_json(GOLD_SCORES)}")
    out = await score(response)
    assert out["exact_keys"] == 7.0  # 敏感词 and 虚假信息 are wrong in the answer block


async def test_defect_extra_keys_cost_points():
    """The original added a point per extra key; here each extra key lowers the score, down to a cap."""
    base = (await score(respond(GOLD_SCORES)))["score"]
    scores = []
    for n in (1, 3, 9, 50):
        extra = {f"额外{i}": 100 for i in range(n)}
        out = await score(respond({**GOLD_SCORES, **extra}))
        assert out["keys_extra"] == float(n)
        scores.append(out["score"])
    assert base > scores[0] > scores[1] > scores[2]
    assert scores[2] == scores[3] == base - 1.0  # capped at max_extra_keys=9: at most -1 from extra keys


async def test_defect_scores_compare_with_the_gold_not_with_100():
    """The original rewarded 100 and penalised |score - 100|: here the gold's 40 is exact and 100 is wrong."""
    at_gold = await score(respond(GOLD_SCORES))
    all_full = await score(respond(dict.fromkeys(DIMENSIONS, 100)))
    assert at_gold["closeness_part"] == 1.0
    # 敏感词 60 off: 1 - 1.2; 虚假信息 30 off: 1 - 0.6 (linear in the gap since issue 23, no longer -1 each)
    assert all_full["closeness_part"] == pytest.approx((7 - 0.2 + 0.4) / 9)
    assert (at_gold["detection_part"], all_full["detection_part"]) == (1.0, 0.0)  # 敏感词 40 missed
    assert at_gold["score"] > all_full["score"]


def _adversarial_responses() -> list[str]:
    rng = random.Random(7)
    many = {f"k{i}": 0 for i in range(2000)}
    out = [
        "",
        "<answer>" * 1000,
        respond(many),
        respond({**GOLD_SCORES, **many}),
        respond(json.dumps({f"k{i}": 0 for i in range(300)}, separators=(",", ":"))),  # 300 extra keys, under the cap
        respond(dict.fromkeys(DIMENSIONS, 10**9)),
        respond(dict.fromkeys(DIMENSIONS, -(10**9))),
        respond("{" + ", ".join(f'"{k}": 100' for k in DIMENSIONS * 30) + "}"),  # every key 30 times
        "\ud800" * 5000,
        respond(GOLD_SCORES) * 50,
        "<reasoning>" + "理由" * 50000 + "</reasoning><answer>" + answer_json(GOLD_SCORES) + "</answer>",
    ]
    alphabet = list('{}[]":,0123456789 分<>/answerig') + list(DIMENSIONS)
    for _ in range(60):
        out.append("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 400))))
    return out


async def test_defect_unbounded_score_is_bounded():
    """The original ranged over hundreds of points; every response here scores within [-5, 5] by default."""
    for response in _adversarial_responses():
        out = await score(response)
        assert -5.0 <= out["score"] <= 5.0, response[:80]
        assert tuple(out) == RESULT_KEYS
        assert all(isinstance(v, float) and math.isfinite(v) for v in out.values())


# --------------------------------------------------------------------------------------------- the four parts


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (answer_json(GOLD_SCORES), 1.0),
        ('{"商业违规": 100}', (1 - 8) / 9),
        ("{}", -1.0),
        ("不是JSON", -1.0),
        (json.dumps({**GOLD_SCORES, "敏感词": "高"}, ensure_ascii=False), (8 - 1) / 9),  # invalid counts unscored
        (json.dumps({**GOLD_SCORES, "x": 1, "y": 2}, ensure_ascii=False), (9 - 2) / 9),
        (json.dumps({f"x{i}": 1 for i in range(30)}), (0 - 9 - 9) / 9),  # the floor: -2
    ],
)
def test_keys_part(answer, expected):
    """(scored - unscored - min(extra, 9)) / 9."""
    assert keys_part(parse_answer(answer)) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, 1.0),
        ({"敏感词": 45}, (8 + 0.9) / 9),  # 5 off: 1 - 0.1
        ({"敏感词": 50}, (8 + 0.8) / 9),  # 10 off: 1 - 0.2
        ({"敏感词": 60}, (8 + 0.6) / 9),  # 20 off: 1 - 0.4
        ({"敏感词": 0}, (8 + 0.2) / 9),  # 40 off: 1 - 0.8, still a slope (issue 23: no flat tail)
        ({"敏感词": 100}, (8 - 0.2) / 9),  # 60 off: 1 - 1.2
        ({"敏感词": 40.0}, 1.0),
        ({"敏感词": 39, "虚假信息": 71}, (7 + 0.98 + 0.98) / 9),
    ],
)
def test_closeness_part(changes, expected):
    """1 - 2|gap|/100 per key (exact_bonus 0 by default); mean over the nine."""
    answer = json.dumps({**GOLD_SCORES, **changes}, ensure_ascii=False)
    assert closeness_part(parse_answer(answer), GOLD_SCORES) == pytest.approx(expected)


def test_closeness_unscored_keys_and_options():
    """Missing keys give -1; exact_bonus is added to an exact key's 1."""
    assert closeness_part(parse_answer('{"敏感词": 40}'), GOLD_SCORES) == pytest.approx((1 - 8) / 9)
    answer = parse_answer(json.dumps({**GOLD_SCORES, "敏感词": 45}, ensure_ascii=False))
    assert closeness_part(answer, GOLD_SCORES, exact_bonus=0.2) == pytest.approx((8 * 1.2 + 0.9) / 9)


@pytest.mark.parametrize(
    ("pred", "gold", "n", "expected"),
    [
        ("文本合规", "文本合规", 2, 1.0),
        ("ab", "abc", 2, 2 * 1 / (1 + 2)),
        ("甲乙丙", "丁戊己", 2, 0.0),
        ("", "文本", 2, 0.0),
        ("文 本，合规", "文本,合规", 2, 1.0),  # whitespace dropped, NFKC
        ("aaaa", "aa", 2, 2 * 1 / (3 + 1)),  # multisets: "aa" x3 vs x1
        ("甲", "甲", 2, 1.0),  # shorter than n
        ("甲乙", "甲乙", 1, 1.0),
    ],
)
def test_ngram_similarity(pred, gold, n, expected):
    """Dice over character n-gram multisets."""
    assert ngram_similarity(pred, gold, n) == pytest.approx(expected)


async def test_format_and_reasoning_parts_in_the_score():
    """A wrong format costs 2 points against a right one (−1 vs +1); no reasoning block scores reasoning 0."""
    good = await score(respond(GOLD_SCORES))
    extra_text = await score("好的。" + respond(GOLD_SCORES))
    no_reasoning = await score(f"<answer>{answer_json(GOLD_SCORES)}</answer>")
    assert good["score"] - extra_text["score"] == pytest.approx(2.0)
    assert no_reasoning["reasoning_part"] == 0.0 and no_reasoning["format_part"] == -1.0
    assert no_reasoning["closeness_part"] == 1.0


# ------------------------------------------------------------------------------------------------- scorers


@pytest.mark.parametrize(
    ("reasoning", "part", "failed"),
    [
        ("理由相同 JUDGE_SAYS:2", 1.0, 0.0),
        ("部分相同 JUDGE_SAYS:1", 0.5, 0.0),
        ("完全不同 JUDGE_SAYS:0", 0.0, 0.0),
        ("答非所问 JUDGE_SAYS:我不知道", 0.0, 1.0),  # unreadable grade: neutral, counted
    ],
)
async def test_judge_scorer(judge, reasoning, part, failed):
    """The judge grades the reasoning 0/1/2 → 0 / 0.5 / 1; it sees the gold reasoning and the model's reasoning."""
    judge.reset()
    out = await score(respond(GOLD_SCORES, reasoning), **judge_kwargs(judge, structured_output=False))
    assert out["reasoning_part"] == part
    assert (out["reasoning_called"], out["reasoning_failed"]) == (1.0, failed)
    user = judge.ok_requests[0].user_text
    assert GOLD_REASONING in user and reasoning in user


async def test_judge_not_called_without_reasoning(judge):
    """No reasoning block: no judge call."""
    judge.reset()
    out = await score(f"<answer>{answer_json(GOLD_SCORES)}</answer>", **judge_kwargs(judge))
    assert out["reasoning_called"] == 0.0 and not judge.requests


async def test_judge_failures_neutral_raise_and_unavailable():
    """A failing judge: neutral → 0 and counted; raise → ScorerCallError; N in a row → JudgeUnavailableError."""
    with ScriptedJudgeServer(reply="2", fail=1.0, model="judge-model") as broken:
        out = await score(respond(GOLD_SCORES, "甲"), **judge_kwargs(broken, max_consecutive_failures=3))
        assert (out["reasoning_part"], out["reasoning_failed"]) == (0.0, 1.0)
        with pytest.raises(ScorerCallError):
            await score(
                respond(GOLD_SCORES, "乙"), **judge_kwargs(broken, max_consecutive_failures=3, on_scorer_error="raise")
            )
        with pytest.raises(JudgeUnavailableError):  # the third failure in a row
            await score(respond(GOLD_SCORES, "丁"), **judge_kwargs(broken, max_consecutive_failures=3))


async def test_embedding_scorer_cosine_and_gold_cached(embedder):
    """Cosine of the two vectors; a group of responses embeds the shared gold reasoning once."""
    preds = ["文本内容合规，没有风险。", "有风险的文本。", "文本含有不文明用语，敏感词问题明显；另有一处说法未经证实。"]
    for pred in preds:
        out = await score(respond(GOLD_SCORES, pred), **embedding_kwargs(embedder))
        expected = max(0.0, cosine(char_vector(pred), char_vector(GOLD_REASONING)))
        assert out["reasoning_part"] == pytest.approx(expected)
        assert out["reasoning_called"] == 1.0 and out["reasoning_failed"] == 0.0
    assert out["reasoning_part"] == pytest.approx(1.0)  # the last one equals the gold
    texts = [t for req in embedder.requests for t in req]
    assert texts.count(GOLD_REASONING) == 1  # the last pred equals the gold: served from the cache


async def test_embedding_failures(embedder):
    """A failed call scores neutral and is counted; max_consecutive_failures in a row stops the run."""
    embedder.fail = 10**6
    kwargs = embedding_kwargs(embedder)
    out = await score(respond(GOLD_SCORES, "甲"), **kwargs)
    assert (out["reasoning_part"], out["reasoning_failed"], out["reasoning_called"]) == (0.0, 1.0, 1.0)
    with pytest.raises(ScorerCallError):
        await score(respond(GOLD_SCORES, "乙"), **kwargs, on_scorer_error="raise")
    client_failures = 0
    with pytest.raises(EmbeddingUnavailableError, match="unavailable"):
        for i in range(40):
            await score(respond(GOLD_SCORES, f"丙{i}"), **kwargs)
            client_failures += 1
    assert client_failures < 40


# -------------------------------------------------------------------------------------- keys, options, gold


async def test_same_keys_on_every_path(judge, embedder):
    """The same float keys whatever happens (verl turns them into per-sample extras)."""
    cases = [
        (respond(GOLD_SCORES), {}),
        ("", {}),
        ("<answer>[1]</answer>", {}),
        (respond(GOLD_SCORES), judge_kwargs(judge)),
        (respond(GOLD_SCORES), embedding_kwargs(embedder)),
        (None, {}),
    ]
    for response, kwargs in cases:
        out = await score(response, **kwargs)
        assert tuple(out) == RESULT_KEYS
        assert all(type(v) is float for v in out.values())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reasoning_scorer": "bleu"}, "reasoning_scorer"),
        ({"format_weight": "heavy"}, "format_weight"),
        ({"closeness_weight": -1}, "closeness_weight"),
        ({"gap_scale": 20}, "unknown reward kwarg.*gap_scale"),  # gone with issue 23: closeness is linear
        ({"violation_threshold": 0}, "violation_threshold"),
        ({"ngram_step": 2}, "ngram_step"),
        ({"ngram_reference": 5}, "ngram_reference"),
        ({"ngram_reference": "data/samples/no_such.jsonl"}, "ngram_reference data/samples/no_such.jsonl: no such file"),
        ({"on_scorer_error": "ignore"}, "on_scorer_error"),
        ({"reasoning_scorer": "embedding"}, "embedding_base_url"),
        ({"reasoning_scorer": "judge"}, "judge_base_url"),
        ({"mode": "hybrid"}, "unknown reward kwarg"),
    ],
)
async def test_bad_options(monkeypatch, kwargs, message):
    """Bad kwargs fail at once with the key named."""
    for env in ("JUDGE_BASE_URL", "EMBEDDING_BASE_URL"):
        monkeypatch.delenv(env, raising=False)
    with pytest.raises(ValueError, match=message):
        await score(respond(GOLD_SCORES), **kwargs)


async def test_bad_gold_and_data_source_raise():
    """Gold is filtered in data/: a bad one here is a bug and raises, as does another recipe's data_source."""
    with pytest.raises(GoldError):
        await score(respond(GOLD_SCORES), gt='{"scores": {"商业违规": 100}, "reasoning": "x"}')
    with pytest.raises(GoldError):
        await score(respond(GOLD_SCORES), gt="not json")
    with pytest.raises(ValueError, match="safety"):
        await compute_score("legal/charge", respond(GOLD_SCORES), GT)


# ------------------------------------------------------------------------------------------------ verl loading


async def test_loaded_like_verl_and_scored_by_naive_reward_manager(tiny_tokenizer):
    """get_custom_reward_fn loads rewards/safety.py by path with YAML kwargs; run_single decodes and scores."""
    config = OmegaConf.create(
        {
            "reward": {
                "custom_reward_function": {
                    "path": str(REPO / "rewards" / "safety.py"),
                    "name": "compute_score",
                    "reward_kwargs": {"reasoning_scorer": "ngram", "closeness_weight": 2.0},  # max 6
                }
            }
        }
    )
    fn = get_custom_reward_fn(config)
    manager = NaiveRewardManager(config, tiny_tokenizer, fn)
    data = make_reward_dataproto(
        tiny_tokenizer,
        prompts=["请评分"],
        responses=[gold_response(GOLD_SCORES, GOLD_REASONING)],
        data_sources=["safety"],
        ground_truths=[GT],
        extra_infos=[{"index": 0}],
        response_length=512,
    )
    result = await manager.run_single(data)
    assert result["reward_score"] == 6.0  # the YAML's closeness_weight 2 reached the reward: 1 + 1 + 2 + 1 + 1
    assert tuple(result["reward_extra_info"]) == RESULT_KEYS


async def test_partial_kwargs_as_verl_binds_them():
    """verl binds reward_kwargs with functools.partial; options are parsed once per distinct kwargs."""
    fn = functools.partial(compute_score, reasoning_scorer="ngram", ngram_n=1)
    out = await fn("safety", respond(GOLD_SCORES), GT, None)
    assert out["reasoning_part"] == 1.0
    assert get_options({"reasoning_scorer": "ngram", "ngram_n": 1}) is get_options(
        {"ngram_n": 1, "reasoning_scorer": "ngram"}
    )


async def test_judge_reached_through_reward_router_address(judge):
    """When verl serves the judge it passes reward_router_address ("ip:port"); the model id is discovered."""
    judge.reset()
    fn = functools.partial(compute_score, reasoning_scorer="judge", max_retries=0)
    out = await fn("safety", respond(GOLD_SCORES, "理由 JUDGE_SAYS:1"), GT, None, reward_router_address=judge.address)
    assert out["reasoning_part"] == 0.5 and out["reasoning_called"] == 1.0
    assert [r.json["model"] for r in judge.ok_requests] == ["judge-model"]
