"""rewards/legal.py compute_score: modes, judge mappings, failure policies, options, fixed keys, verl integration.

The judge is the loopback ScriptedJudgeServer. Its reply is scripted by the prediction itself: an answer containing
"JUDGE_SAYS:<text>" makes the judge answer <text> (else "2"), so one module-wide server serves every case.
"""

from __future__ import annotations

import functools
import json
import math
import pathlib
import re

import pytest
from helpers.dataproto import make_reward_dataproto
from helpers.judge_fixtures import close_judge_connections, no_judge_env  # noqa: F401 - autouse fixtures
from helpers.judge_server import ScriptedJudgeServer
from helpers.legal_cases import GOLD, scripted_reply, wrap
from omegaconf import OmegaConf
from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager
from verl.trainer.ppo.reward import get_custom_reward_fn

import rewards.legal as legal
from data.domains.legal.charges import KNOWN_CHARGES
from data.domains.legal.tasks import TASKS
from data.rows import build_rows
from data.sources import SkipRecord, get_parser
from judge.client import JudgeUnavailableError
from rewards.legal import RESULT_KEYS, JudgeCallFailedError, compute_score, get_options
from rewards.rules import gold_from, score_rules

REPO = pathlib.Path(__file__).resolve().parents[2]

# A correct answer per task (rules give +2, term 0) and a wrong one (rules give -2, term -1).
GOOD = {
    "charge": "盗窃罪、诈骗罪",
    "article": "第67条、第264条",
    "term": "有期徒刑三年六个月",
    "verdict": GOLD["verdict"][0],
}
BAD = {
    "charge": "抢劫罪",
    "article": "第234条",
    "term": "无期徒刑",
    "verdict": "被告人张某犯抢劫罪，判处有期徒刑十年。",
}


@pytest.fixture(scope="module")
def judge():
    """A healthy loopback judge for the whole module."""
    with ScriptedJudgeServer(reply=scripted_reply, model="judge-model") as srv:
        yield srv


@pytest.fixture(scope="module")
def broken_judge():
    """A loopback judge whose every chat request fails with HTTP 503."""
    with ScriptedJudgeServer(reply="2", fail=1.0, model="judge-model") as srv:
        yield srv


def judge_kwargs(server: ScriptedJudgeServer, **extra) -> dict:
    """Reward kwargs pointing at a loopback judge: no retries, short timeout, fast."""
    return {
        "judge_base_url": server.base_url,
        "judge_model": "judge-model",
        "max_retries": 0,
        "backoff_s": 0.0,
        "timeout_s": 10.0,
        **extra,
    }


async def score(task: str, response: str, **kwargs) -> dict:
    """compute_score on the task's gold."""
    ground_truth, extra_info = GOLD[task]
    return await compute_score(f"legal/{task}", response, ground_truth, dict(extra_info), **kwargs)


def check_keys(out: dict) -> None:
    """The fixed key set, all floats, and score = format + task + shaping."""
    assert tuple(out) == RESULT_KEYS
    assert all(type(v) is float and math.isfinite(v) for v in out.values()), out
    assert out["score"] == pytest.approx(out["format_score"] + out["task_score"] + out["shaping_score"])


# ---------------------------------------------------------------------------------------------------- judge mode


@pytest.mark.parametrize("task", ["charge", "article", "verdict"])
@pytest.mark.parametrize(
    ("reply", "task_score", "acc"),
    [("0", -2.0, 0.0), ("1", 1.0, 0.0), ("2", 2.0, 1.0), ("评分：2", 2.0, 1.0), ("我无法判断", 0.0, 0.0)],
)
async def test_judge_mode_grades(judge, task, reply, task_score, acc):
    """judge mode: grade 0/1/2 → -2/+1/+2, unreadable → 0, whatever the rules would say."""
    out = await score(task, wrap(f"{GOOD[task]} JUDGE_SAYS:{reply}"), mode="judge", **judge_kwargs(judge))
    check_keys(out)
    assert (out["task_score"], out["acc"], out["score"]) == (task_score, acc, task_score)
    assert (out["judge_called"], out["judge_failed"], out["rules_used"]) == (1.0, 0.0, 0.0)
    assert out["judge_latency_ms"] > 0


async def test_judge_sees_gold_label_and_prediction(judge):
    """The judge prompt names the task label, the gold answer and the fenced prediction."""
    judge.reset()
    await score("charge", wrap("偷东西罪 JUDGE_SAYS:1"), mode="judge", **judge_kwargs(judge))
    (request,) = judge.requests
    assert request.json["model"] == "judge-model"
    user = request.user_text
    assert "罪名" in user and "盗窃罪、诈骗罪" in user and "偷东西罪 JUDGE_SAYS:1" in user


@pytest.mark.parametrize(
    ("reply", "task_score", "acc"),
    [
        ("误差：0个月", 0.0, 1.0),
        ("误差：6个月", -6 / 240, 0.0),
        ("误差：1年2个月", -14 / 240, 0.0),
        ("误差：两年", -24 / 240, 0.0),
        ("误差：无法判断", -2.0, 0.0),
    ],
)
async def test_judge_mode_term(judge, reply, task_score, acc):
    """judge mode, term: -(error months)/240; an unreadable judge answer → -2."""
    out = await score("term", wrap(f"有期徒刑三年 JUDGE_SAYS:{reply}"), mode="judge", **judge_kwargs(judge))
    check_keys(out)
    assert out["task_score"] == pytest.approx(task_score)
    assert (out["acc"], out["judge_called"]) == (acc, 1.0)


@pytest.mark.parametrize(
    ("extra_info", "answer", "acc"),
    [
        ({"term_kind": "life", "term_months": 0}, "无期徒刑", 1.0),
        ({"term_kind": "death", "term_months": 0}, "有期徒刑十年", 0.0),
        ({"term_kind": "none", "term_months": 0}, "免予刑事处罚", 1.0),
        ({"term_kind": "fixed", "term_months": 0}, "有期徒刑一年", 0.0),
    ],
)
async def test_judge_mode_term_gold_without_months(judge, extra_info, answer, acc):
    """judge mode, term: a gold with no month count scores 0 without asking the judge (acc from the kinds)."""
    judge.reset()
    out = await compute_score("legal/term", wrap(answer), "", extra_info, mode="judge", **judge_kwargs(judge))
    check_keys(out)
    assert (out["task_score"], out["acc"], out["judge_called"]) == (0.0, acc, 0.0)
    assert judge.requests == []


# ---------------------------------------------------------------------------------------------------- hybrid mode


@pytest.mark.parametrize(
    ("task", "answer", "judged", "task_score"),
    [
        ("charge", "盗窃罪 JUDGE_SAYS:0", False, 1.0),  # known labels: rules (overlap +1), judge not asked
        ("charge", "盗窃罪、诈骗罪", False, 2.0),
        ("charge", "偷东西罪 JUDGE_SAYS:1", True, 1.0),  # unknown label: judge
        ("charge", "不知道 JUDGE_SAYS:0", True, -2.0),  # nothing readable: judge
        ("article", "第234条 JUDGE_SAYS:2", False, -2.0),
        ("article", "第264条、第999条 JUDGE_SAYS:1", True, 1.0),
        ("term", "有期徒刑三年 JUDGE_SAYS:误差：0个月", False, -6 / 240),  # term: rules always
        ("term", "说不清 JUDGE_SAYS:2", False, -2.0),
        ("verdict", f"{GOOD['verdict']} JUDGE_SAYS:1", True, 1.0),  # verdict: judge always
        ("verdict", "JUDGE_SAYS:0", True, -2.0),
    ],
)
async def test_hybrid_routes(judge, task, answer, judged, task_score):
    """hybrid: rules for term, for charge/article with known labels; the judge otherwise and for verdict."""
    judge.reset()
    out = await score(task, wrap(answer), **judge_kwargs(judge))  # mode defaults to hybrid
    check_keys(out)
    assert out["task_score"] == pytest.approx(task_score)
    assert out["judge_called"] == float(judged)
    assert out["rules_used"] == float(not judged)
    assert len(judge.requests) == int(judged)


@pytest.mark.parametrize("mode", ["judge", "hybrid", "rules"])
@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize(
    "response", ["先想想</think>没有答案", "先想想</think><answer>盗窃罪", "</think><answer> </answer>"]
)
async def test_no_answer_scores_minus_two_without_judge(judge, mode, task, response):
    """No (complete, non-empty) answer block → task -2, format -1, and the judge is never asked."""
    judge.reset()
    kwargs = judge_kwargs(judge) if mode != "rules" else {}
    out = await score(task, response, mode=mode, **kwargs)
    check_keys(out)
    assert (out["task_score"], out["format_score"], out["score"], out["has_answer"]) == (-2.0, -1.0, -3.0, 0.0)
    assert out["judge_called"] == 0.0 and judge.requests == []


ALL_CHARGES = "、".join(sorted(KNOWN_CHARGES))


def _cut_mid_label(listing: str, at: int) -> str:
    """listing shifted by leading 、 so that cutting it at `at` characters cuts a label in its middle."""
    return next(text for text in ("、" * shift + listing for shift in range(40)) if "、" not in text[at - 2 : at + 2])


ALL_ARTICLES = "、".join(f"第{n}条" for n in range(1, 453))
MANGLED = "、".join(f"{c}东西罪" for c in "偷抢骗拿藏卖买换借送")  # names that are no labels
PADDING = "本案事实清楚，证据确实充分。" * 80  # 1,120 characters that name nothing


@pytest.mark.parametrize("mode", ["hybrid", "judge", "rules"])
@pytest.mark.parametrize(
    ("task", "answer"),
    [
        ("charge", ALL_CHARGES),
        ("charge", _cut_mid_label(ALL_CHARGES, 1000)),  # every label: cut at MAX_ANSWER_CHARS, half a label ended it
        ("charge", f"盗窃罪、诈骗罪、{MANGLED}、{ALL_CHARGES}"),
        ("article", ALL_ARTICLES),
        ("charge", f"盗窃罪、诈骗罪{PADDING}抢劫罪、故意伤害罪、敲诈勒索罪、抢夺罪、绑架罪"),  # the list after the cut
        ("article", f"第67条、第264条{PADDING}第234条、第263条、第266条、第274条、第275条"),
        ("verdict", f"{GOLD['verdict'][0]}{PADDING}"),
    ],
)
async def test_an_answer_longer_than_is_read_is_refused(judge, mode, task, answer):
    """Issue 24 item 1: an answer block longer than MAX_ANSWER_CHARS is not cut and read in part (a listing then
    ended in half a label and went to the judge, or hid behind padding): it scores -2 and nobody is asked."""
    judge.reset()
    kwargs = {} if mode == "rules" else judge_kwargs(judge)
    out = await score(task, wrap(answer), mode=mode, **kwargs)
    check_keys(out)
    assert (out["task_score"], out["acc"], out["has_answer"], out["rules_used"]) == (-2.0, 0.0, 1.0, 1.0)
    assert out["judge_called"] == 0.0 and judge.requests == []


@pytest.mark.parametrize(
    ("task", "answer"),
    [
        ("charge", ALL_CHARGES[:900]),  # a short listing of known labels
        ("charge", f"盗窃罪、诈骗罪、{MANGLED}"),  # the right labels and ten names that are no labels
        ("charge", f"盗窃罪、{ALL_CHARGES[:400]}"),  # ... cut in the middle of a label
        ("article", "第67条、第264条、第901条、第902条、第903条、第904条、第905条"),
        ("verdict", f"被告人张某犯盗窃罪、{MANGLED}，判处有期徒刑一年六个月，并处罚金人民币五千元。"),
    ],
)
async def test_hybrid_refuses_a_listing_without_asking_the_judge(judge, task, answer):
    """Issue 24 item 1: a listing (rewards/rules.py is_listing) scores -2 by the rules in hybrid mode, the judge is
    not asked (it says 2 to everything here), however its names are written."""
    judge.reset()
    out = await score(task, wrap(answer), **judge_kwargs(judge))
    check_keys(out)
    assert (out["task_score"], out["rules_used"], out["judge_called"]) == (-2.0, 1.0, 0.0)
    assert judge.requests == []


async def test_answer_limit_follows_what_the_judge_is_shown(judge):
    """With max_pred_chars below MAX_ANSWER_CHARS, an answer the judge would see cut is refused, not sent cut; one
    that fits is judged as a whole."""
    judge.reset()
    kwargs = judge_kwargs(judge, max_pred_chars=200)
    long_answer = "被告人构成偷东西罪。" + "理由如下：" * 60
    short = await score("charge", wrap("被告人构成偷东西罪。"), **kwargs)
    cut = await score("charge", wrap(long_answer), **kwargs)
    assert (short["judge_called"], short["task_score"]) == (1.0, 2.0)
    assert (cut["judge_called"], cut["task_score"], cut["rules_used"]) == (0.0, -2.0, 1.0)
    assert len(judge.requests) == 1
    assert legal.answer_limit(get_options(kwargs)) == 200
    assert legal.answer_limit(get_options({"mode": "rules"})) == legal.MAX_ANSWER_CHARS  # what the rules read


# ---------------------------------------------------------------------------------------------------- rules mode


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("good", [True, False])
async def test_rules_mode_matches_rules_module(task, good):
    """rules mode needs no judge and scores exactly as rewards/rules.py."""
    answer = GOOD[task] if good else BAD[task]
    out = await score(task, wrap(answer), mode="rules")
    check_keys(out)
    expected = score_rules(task, answer, gold_from(task, *GOLD[task]))
    assert (out["task_score"], out["acc"], out["rules_used"], out["judge_called"]) == (
        expected.score,
        float(expected.acc),
        1.0,
        0.0,
    )
    assert out["task_score"] == ({"term": 0.0}.get(task, 2.0) if good else {"term": -1.0}.get(task, -2.0))


def _sample_rows() -> list[dict]:
    """verl rows (all four tasks) of every usable case in data/samples, built by data/ as prepare does."""
    rows: list[dict] = []
    for source, name in (("cail2018", "cail2018_sample.jsonl"), ("judgments", "judgments_sample.jsonl")):
        parse = get_parser(source)
        path = REPO / "data" / "samples" / name
        for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            try:
                case = parse(json.loads(line), f"{name}:{line_no}")
            except (SkipRecord, json.JSONDecodeError):
                continue
            rows.extend(build_rows(case, TASKS, "base", "test", len(rows)))
    return rows


SAMPLE_ROWS = _sample_rows()


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("structured", [True, False], ids=["extra_info", "text_only"])
async def test_gold_in_full_marks_out(task, structured):
    """Every sample row: the gold answer, well formatted, scores format 0 + task +2 (term 0) in rules mode."""
    rows = [r for r in SAMPLE_ROWS if r["data_source"] == f"legal/{task}"]
    assert len(rows) >= 60
    full = 0.0 if task == "term" else 2.0
    failures = []
    for row in rows:
        gold = row["reward_model"]["ground_truth"]
        extra = row["extra_info"] if structured else {"index": row["extra_info"]["index"]}
        out = await compute_score(row["data_source"], wrap(gold), gold, extra, mode="rules")
        if (out["format_score"], out["task_score"], out["acc"]) != (0.0, full, 1.0):
            failures.append((row["extra_info"]["case_id"], gold[:60], out["task_score"]))
    assert failures == []


# ---------------------------------------------------------------------------------------------------- fixed keys


@pytest.mark.parametrize("mode", ["judge", "rules", "hybrid"])
@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("answer", ["good", "bad", "missing"])
@pytest.mark.parametrize("judge_ok", [True, False], ids=["judge_ok", "judge_failing"])
async def test_same_keys_on_every_path(judge, broken_judge, mode, task, answer, judge_ok):
    """Every mode × task × answer × judge health returns the same float keys; failures are flagged."""
    server = judge if judge_ok else broken_judge
    kwargs = {} if mode == "rules" else judge_kwargs(server, max_consecutive_failures=1000)
    response = {"good": wrap(GOOD[task]), "bad": wrap(BAD[task]), "missing": "想了很久，没有结论"}[answer]
    out = await score(task, response, mode=mode, **kwargs)
    check_keys(out)
    asked = out["judge_called"] == 1.0
    assert out["judge_failed"] == float(asked and not judge_ok)
    if out["judge_failed"]:  # default policy: the rules score of the task
        expected = score_rules(task, {"good": GOOD, "bad": BAD}[answer][task], gold_from(task, *GOLD[task]))
        assert (out["task_score"], out["rules_used"]) == (expected.score, 1.0)


# ---------------------------------------------------------------------------------------------------- failures


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize(
    ("policy", "expected"),
    [("rules", "rules"), ("neutral", 0.0)],
)
async def test_judge_failure_policies(broken_judge, task, policy, expected):
    """A failed call sets judge_failed=1 and scores the rules score (default) or 0 (neutral)."""
    answer = BAD[task]
    out = await score(task, wrap(answer), mode="judge", on_judge_error=policy, **judge_kwargs(broken_judge))
    check_keys(out)
    assert (out["judge_called"], out["judge_failed"]) == (1.0, 1.0)
    rules = score_rules(task, answer, gold_from(task, *GOLD[task]))
    if expected == "rules":
        assert (out["task_score"], out["acc"], out["rules_used"]) == (rules.score, float(rules.acc), 1.0)
    else:
        assert (out["task_score"], out["acc"], out["rules_used"]) == (0.0, 0.0, 0.0)


async def test_judge_failure_policy_raise(broken_judge):
    """on_judge_error=raise: the failed call raises an error naming the endpoint."""
    with pytest.raises(JudgeCallFailedError, match=re.escape(broken_judge.base_url)):
        await score("charge", wrap("盗窃罪"), mode="judge", on_judge_error="raise", **judge_kwargs(broken_judge))


async def test_judge_unavailable_propagates(broken_judge):
    """After max_consecutive_failures failures in a row JudgeUnavailableError stops the run, whatever the policy."""
    kwargs = judge_kwargs(broken_judge, max_consecutive_failures=2, on_judge_error="neutral")
    first = await score("charge", wrap("甲罪"), mode="judge", **kwargs)
    assert first["judge_failed"] == 1.0
    with pytest.raises(JudgeUnavailableError, match="127.0.0.1"):
        await score("charge", wrap("乙罪"), mode="judge", **kwargs)
    with pytest.raises(JudgeUnavailableError):
        await score("article", wrap("第1条"), mode="judge", **kwargs)


# ---------------------------------------------------------------------------------------------------- options


async def test_env_config(monkeypatch):
    """JUDGE_BASE_URL / JUDGE_MODEL / JUDGE_API_KEY configure the judge when kwargs leave it unset."""
    with ScriptedJudgeServer(reply="1", api_key="sekrit", model="env-model") as srv:
        monkeypatch.setenv("JUDGE_BASE_URL", srv.base_url)
        monkeypatch.setenv("JUDGE_MODEL", "env-model")
        monkeypatch.setenv("JUDGE_API_KEY", "sekrit")
        out = await score("verdict", wrap(GOOD["verdict"]), max_retries=0)
        requests = srv.requests
    assert (out["task_score"], out["judge_failed"]) == (1.0, 0.0)
    (request,) = requests
    assert request.headers["Authorization"] == "Bearer sekrit"
    assert request.json["model"] == "env-model"


@pytest.mark.parametrize("mode", ["judge", "hybrid"])
async def test_mode_needing_judge_without_one(mode):
    """judge / hybrid without any judge configured: a ValueError saying how to configure it."""
    with pytest.raises(ValueError, match="JUDGE_BASE_URL"):
        await score("charge", wrap("盗窃罪"), mode=mode)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "llm"}, r"mode='llm'.*judge, rules, hybrid"),
        ({"mode": "rules", "on_judge_error": "ignore"}, r"on_judge_error='ignore'.*rules, neutral, mask, raise"),
        ({"mode": "rules", "mdoe": "rules"}, r"unknown reward kwarg\(s\) mdoe"),
        ({"mode": "rules", "response_starts_in_think": "maybe"}, "response_starts_in_think"),
        ({"mode": "rules", "lang_reward_weight": "heavy"}, "lang_reward_weight"),
        ({"mode": "rules", "length_ref_chars": -5}, "length_ref_chars"),
        ({"mode": "rules", "length_ref_chars": {"penalty": 100}}, r"unknown task.*penalty"),
        ({"mode": "judge", "judge_base_url": "http://127.0.0.1:1"}, "/v1"),
    ],
)
async def test_bad_options(kwargs, message):
    """Invalid options: ValueError naming the key and the allowed values."""
    with pytest.raises(ValueError, match=message):
        await score("charge", wrap("盗窃罪"), **kwargs)


async def test_unknown_data_source():
    """An unknown data_source is a ValueError naming it."""
    with pytest.raises(ValueError, match="legal/penalty"):
        await compute_score("legal/penalty", wrap("x"), "x", {}, mode="rules")


async def test_options_parsed_once(judge, monkeypatch):
    """Options are parsed once per distinct kwargs, then looked up (also for unhashable values)."""
    calls = []
    real = legal._parse_options
    monkeypatch.setattr(legal, "_parse_options", lambda kw: calls.append(1) or real(kw))
    legal._OPTIONS.clear()
    kwargs = judge_kwargs(judge, length_ref_chars={"charge": 300}, judge_base_url=[judge.base_url])
    for _ in range(5):
        await score("charge", wrap("盗窃罪、诈骗罪"), **kwargs)
        await score("charge", wrap("盗窃罪、诈骗罪"), mode="rules")
    assert len(calls) == 2
    assert get_options(kwargs) is get_options(dict(kwargs))
    assert get_options(kwargs).length_ref_for("charge") == 300.0


async def test_response_starts_in_think_option():
    """response_starts_in_think=false: the response must open <think> itself."""
    response = "<think>想</think><answer>盗窃罪、诈骗罪</answer>"
    inside = await score("charge", response, mode="rules")
    opens = await score("charge", response, mode="rules", response_starts_in_think=False)
    assert (inside["format_score"], opens["format_score"]) == (-1.0, 0.0)
    assert inside["task_score"] == opens["task_score"] == 2.0


# ---------------------------------------------------------------------------------------------------- shaping


GOOD_LEN = len(wrap("盗窃罪、诈骗罪"))


@pytest.mark.parametrize(
    ("response", "kwargs", "extra", "lang", "length"),
    [
        # Off by default: values are logged, the score is unchanged.
        (wrap("盗窃罪、诈骗罪"), {}, {}, 1.0, 0.0),
        # Language reward: Chinese share of the thinking (2 of 12 letters), 0 when the format is wrong.
        ("Let me think 先想</think><answer>盗窃罪、诈骗罪</answer>", {"lang_reward_weight": 1.0}, {}, 2 / 12, 0.0),
        ("先想</think>多余<answer>盗窃罪、诈骗罪</answer>", {"lang_reward_weight": 1.0}, {}, 0.0, 0.0),
        # Length (correct answer): 0.5 - len / (2 * typical length), from extra_info or the per-task kwarg.
        (wrap("盗窃罪、诈骗罪"), {"length_penalty_weight": 2.0}, {"group_mean_length": 2 * GOOD_LEN}, 1.0, 0.25),
        (
            wrap("盗窃罪、诈骗罪"),
            {"length_penalty_weight": 2.0, "length_ref_chars": {"charge": 2 * GOOD_LEN}},
            {},
            1.0,
            0.25,
        ),
        (wrap("盗窃罪、诈骗罪"), {"length_penalty_weight": 2.0, "length_ref_chars": GOOD_LEN}, {}, 1.0, 0.0),
        (wrap("盗窃罪、诈骗罪"), {"length_penalty_weight": 2.0, "length_ref_chars": GOOD_LEN / 2}, {}, 1.0, -0.5),
        # Group min/max from extra_info: the exact Kimi formula; a wrong answer never gains.
        (
            wrap("盗窃罪"),
            {"length_penalty_weight": 1.0},
            {"group_min_length": len(wrap("盗窃罪")), "group_max_length": 500},
            1.0,
            0.0,
        ),
    ],
)
async def test_shaping(response, kwargs, extra, lang, length):
    """score = format + task + lang_w * lang_reward + len_w * length_penalty."""
    ground_truth, extra_info = GOLD["charge"]
    out = await compute_score("legal/charge", response, ground_truth, {**extra_info, **extra}, mode="rules", **kwargs)
    check_keys(out)
    assert out["lang_reward"] == pytest.approx(lang)
    assert out["length_penalty"] == pytest.approx(length)
    expected = kwargs.get("lang_reward_weight", 0.0) * lang + kwargs.get("length_penalty_weight", 0.0) * length
    assert out["shaping_score"] == pytest.approx(expected)


# ---------------------------------------------------------------------------------------------------- verl


@pytest.fixture(scope="module")
def qwen_like_tokenizer(tiny_tokenizer_path, tmp_path_factory):
    """The tiny tokenizer with <think>/<answer> tags as plain (non-special) tokens, as in Qwen2.5.

    tests/helpers/tokenizer.py registers the tags as special tokens, so verl's decode(skip_special_tokens=True)
    would strip them from every response before the reward sees it; Qwen2.5 has no such special tokens.
    """
    from verl.utils import hf_tokenizer

    path = tmp_path_factory.mktemp("qwen_like_tokenizer")
    for item in pathlib.Path(tiny_tokenizer_path).iterdir():
        (path / item.name).write_bytes(item.read_bytes())
    data = json.loads((path / "tokenizer.json").read_text(encoding="utf-8"))
    for token in data["added_tokens"]:
        if token["content"] in ("<think>", "</think>", "<answer>", "</answer>"):
            token["special"] = False
    (path / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    tokenizer = hf_tokenizer(str(path))
    text = wrap("盗窃罪")
    assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False), skip_special_tokens=True) == text
    return tokenizer


def _dataproto(tokenizer, task: str, answer: str):
    ground_truth, extra_info = GOLD[task]
    return make_reward_dataproto(
        tokenizer,
        prompts=["请预测"],
        responses=[wrap(answer)],
        data_sources=[f"legal/{task}"],
        ground_truths=[ground_truth],
        extra_infos=[extra_info],
        response_length=512,
    )


@pytest.mark.parametrize(
    ("task", "answer", "reward"),
    [
        ("charge", "偷东西罪 JUDGE_SAYS:1", 1.0),
        ("verdict", f"{GOOD['verdict']} JUDGE_SAYS:2", 2.0),
        ("term", "有期徒刑三年六个月", 0.0),
    ],
)
@pytest.mark.parametrize("via", ["judge_base_url", "reward_router_address"])
async def test_naive_reward_manager_run_single(judge, qwen_like_tokenizer, task, answer, reward, via):
    """verl's NaiveRewardManager decodes the response and awaits compute_score; the judge is reached both ways."""
    judge.reset()
    data = _dataproto(qwen_like_tokenizer, task, answer)
    if via == "judge_base_url":
        fn = functools.partial(compute_score, **judge_kwargs(judge))
        manager = NaiveRewardManager(OmegaConf.create({}), qwen_like_tokenizer, fn)
    else:  # verl serves the judge: it passes "ip:port"; the model id is discovered from GET /v1/models
        fn = functools.partial(compute_score, max_retries=0)
        manager = NaiveRewardManager(OmegaConf.create({}), qwen_like_tokenizer, fn, reward_router_address=judge.address)
    result = await manager.run_single(data)
    assert result["reward_score"] == reward
    assert tuple(result["reward_extra_info"]) == RESULT_KEYS
    assert result["reward_extra_info"]["judge_called"] == float(task != "term")
    assert len(judge.ok_requests) == int(task != "term")
    assert all(r.json["model"] == "judge-model" for r in judge.ok_requests)


@pytest.mark.parametrize(
    ("reward_kwargs", "task", "answer", "reward"),
    [
        ({"mode": "rules"}, "charge", "盗窃罪", 1.0),
        ({"mode": "rules", "response_starts_in_think": False}, "charge", "盗窃罪、诈骗罪", 1.0),  # format -1
        ({"mode": "judge"}, "article", "第67条 JUDGE_SAYS:0", -2.0),
    ],
)
async def test_loaded_like_verl(judge, qwen_like_tokenizer, reward_kwargs, task, answer, reward):
    """get_custom_reward_fn loads rewards/legal.py by path with reward_kwargs; run_single scores through it."""
    if reward_kwargs.get("mode") != "rules":
        reward_kwargs = {**judge_kwargs(judge), **reward_kwargs}
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
    fn = get_custom_reward_fn(config)
    manager = NaiveRewardManager(config, qwen_like_tokenizer, fn)
    result = await manager.run_single(_dataproto(qwen_like_tokenizer, task, answer))
    assert result["reward_score"] == reward
    assert tuple(result["reward_extra_info"]) == RESULT_KEYS
