"""Hostile-text property test: every function that reads model output takes bounded time and never raises.

Inputs: seeded random mixes of the characters our regexes care about (tags, brackets, CJK numerals, units,
digits, punctuation, control characters, lone surrogates, other scripts) and pathological shapes (long runs of one
character, nested or repeated tags, alternating patterns). Readers reached through compute_score see at most
rewards.legal.MAX_RESPONSE_CHARS characters (compute_score does not read a longer response), and the answer readers
(rules, charges, articles, terms, verdict, numerals) at most MAX_ANSWER_CHARS (compute_score reads no longer answer):
each is fed the longest text it can receive. The entry points that cap their own input (compute_score, the judge
prompt builders and reply parsers) get 1 MB. evaluate's readers are fed answers of MAX_ANSWER_CHARS too, although
evaluate does not cut them itself: the numeral readers are quadratic on long digit runs (noted for their owners).
The bound per call is generous (a loaded 2-core box); a regex that goes quadratic on 64k characters blows it by
orders of magnitude.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from data.domains.legal.articles import parse_article, parse_articles
from data.domains.legal.charges import canonical_charge, normalize_charge, parse_charges
from data.domains.legal.terms import find_term, parse_term
from data.domains.legal.verdict import parse_fine, parse_verdict
from judge.cn_numerals import find_durations, parse_duration_months, to_halfwidth
from judge.parse import is_declined, parse_error_months, parse_grade
from judge.prompts import build_grade_messages, build_term_error_messages, fence_prediction, neutralize
from recipes.legal.evaluate import parse_prediction, predicted_term_code
from rewards.format import check_format, extract_answer, extract_thinking
from rewards.legal import MAX_ANSWER_CHARS, MAX_RESPONSE_CHARS, RESULT_KEYS, compute_score
from rewards.rules import gold_from, score_rules
from rewards.shaping import chinese_share

BOUND_S = 3.0
ENTRY_CHARS = 1_000_000

PIECES = (
    list("<>/＜＞《》〈〉[]()（）【】{}\"'：:，,。.、;；!！?？ \n\t")
    + ["<think>", "</think>", "<answer>", "</answer>", "<<<预测结束>>>", "<<<预测开始>>>", "预测结束"]
    + list("零〇一二两三四五六七八九十百千万亿半年月个日天条款项罪元")
    + list("0123456789") + ["1.5", "-3", "1e20", "９", "②"]
    + ["有期徒刑", "无期徒刑", "死刑", "缓刑", "拘役", "管制", "罚金", "人民币", "第", "之一", "盗窃", "诈骗", "犯"]
    + ["结果", "评分", "误差", "相差", "error", "score", "grade"]
    + ["\x00", "\x1b", "\u200b", "\u202e", "\ufeff", "\ud800", "\udfff", "e\u0301", "😀", "ش", "ж", "한"]
)  # fmt: skip
RUN_CHARS = list("<＜>[(第一十零年月个罪、10 \n") + ["\ud800"]
RUN_UNITS = ["<answer>", "</answer>", "<think>", "1年", "十年", "第1条", "盗窃罪、", "误差：", "<<<", "一年零", "元"]


def random_texts(seed: int, count: int, max_pieces: int) -> Iterator[str]:
    """Seeded random mixes of PIECES."""
    rng = random.Random(seed)
    for _ in range(count):
        yield "".join(rng.choice(PIECES) for _ in range(rng.randint(0, max_pieces)))


def pathological(length: int) -> list[tuple[str, str]]:
    """(name, text) cases of about `length` characters."""
    cases = [(f"run {c!r}", c * length) for c in RUN_CHARS]
    cases += [(f"repeat {u!r}", u * (length // len(u))) for u in RUN_UNITS]
    cases.append(("nested answer", "<answer>" * (length // 20) + "x" + "</answer>" * (length // 20)))
    cases.append(("think then runs", "</think><answer>" + "<" * (length // 2) + "预测结束" + "</answer>"))
    cases.append(("digits and units", "".join(f"{i % 10}年" for i in range(length // 2))))
    rng = random.Random(7)
    cases.append(("random mix", "".join(rng.choice(PIECES) for _ in range(length // 3))[:length]))
    return cases


GOLDS = {
    "charge": gold_from("charge", "盗窃罪", {"charges": ["盗窃罪"]}),
    "article": gold_from("article", "第264条", {"articles": [264]}),
    "term": gold_from("term", "有期徒刑三年", {"term_kind": "fixed", "term_months": 36}),
    "verdict": gold_from(
        "verdict", "犯盗窃罪，判处有期徒刑一年，并处罚金人民币五千元", {"charges": ["盗窃罪"], "term_kind": "fixed",
        "term_months": 12, "fine": 5000}
    ),
}  # fmt: skip

# Readers of the whole response: fed MAX_RESPONSE_CHARS.
RESPONSE_READERS: dict[str, Callable[[str], Any]] = {
    "rewards.format.check_format": check_format,
    "rewards.format.check_format(opens)": lambda t: check_format(t, starts_in_think=False),
    "rewards.format.extract_answer": extract_answer,
    "rewards.format.extract_thinking": extract_thinking,
    "rewards.shaping.chinese_share": chinese_share,
}
# Readers of the answer block: fed MAX_ANSWER_CHARS.
ANSWER_READERS: dict[str, Callable[[str], Any]] = {
    **{f"rewards.rules.score_rules[{task}]": (lambda t, task=task: score_rules(task, t, GOLDS[task]))
       for task in GOLDS},
    "data.domains.legal.charges.parse_charges": parse_charges,
    "data.domains.legal.charges.normalize_charge": normalize_charge,
    "data.domains.legal.charges.canonical_charge": canonical_charge,
    "data.domains.legal.articles.parse_articles": parse_articles,
    "data.domains.legal.articles.parse_article": parse_article,
    "data.domains.legal.terms.find_term": find_term,
    "data.domains.legal.terms.parse_term": parse_term,
    "data.domains.legal.verdict.parse_fine": parse_fine,
    "data.domains.legal.verdict.parse_verdict": parse_verdict,
    "judge.cn_numerals.find_durations": find_durations,
    "judge.cn_numerals.parse_duration_months": parse_duration_months,
    "judge.cn_numerals.to_halfwidth": to_halfwidth,
    **{f"recipes.legal.evaluate.parse_prediction[{task}]": (lambda t, task=task: parse_prediction(task, t))
       for task in GOLDS},
    "recipes.legal.evaluate.predicted_term_code": predicted_term_code,
}  # fmt: skip
# Entry points that cap their input themselves: fed 1 MB.
ENTRIES: dict[str, Callable[[str], Any]] = {
    "judge.prompts.fence_prediction": fence_prediction,
    "judge.prompts.build_grade_messages": lambda t: build_grade_messages("罪名", "盗窃罪", t),
    "judge.prompts.build_term_error_messages": lambda t: build_term_error_messages("三年", t),
    "judge.parse.parse_grade": parse_grade,
    "judge.parse.parse_error_months": parse_error_months,
    "judge.parse.is_declined": lambda t: is_declined("term_error", t),
}
LINEAR: dict[str, Callable[[str], Any]] = {"judge.prompts.neutralize": neutralize}
READERS = {**RESPONSE_READERS, **ANSWER_READERS}
LENGTH = {**dict.fromkeys(RESPONSE_READERS, MAX_RESPONSE_CHARS), **dict.fromkeys(ANSWER_READERS, MAX_ANSWER_CHARS)}
LENGTH.update(dict.fromkeys(LINEAR, MAX_RESPONSE_CHARS))


def _timed(fn: Callable[[str], Any], text: str) -> float:
    t0 = time.perf_counter()
    fn(text)
    return time.perf_counter() - t0


@pytest.mark.parametrize("name", list(READERS) + list(ENTRIES) + list(LINEAR))
def test_random_text_never_raises(name):
    """500 random mixes (up to ~2k characters each): a result, never an exception, each well within the bound."""
    fn = {**READERS, **ENTRIES, **LINEAR}[name]
    worst = max(_timed(fn, text) for text in random_texts(hash(name) % 1000, 500, 600))
    assert worst < BOUND_S


@pytest.mark.parametrize("name", list(READERS) + list(LINEAR))
def test_pathological_text_is_read_in_bounded_time(name):
    """Long runs, repeated tags and units at the longest length compute_score lets through to this reader."""
    fn = {**READERS, **LINEAR}[name]
    slow = {case: t for case, text in pathological(LENGTH[name]) if (t := _timed(fn, text)) >= BOUND_S}
    assert not slow, f"{name} is slow on: {slow}"


@pytest.mark.parametrize("name", list(ENTRIES))
def test_megabyte_text_at_capped_entry_points(name):
    """The entry points that cap first take bounded time on 1 MB of anything."""
    fn = ENTRIES[name]
    slow = {case: t for case, text in pathological(ENTRY_CHARS) if (t := _timed(fn, text)) >= BOUND_S}
    assert not slow, f"{name} is slow on: {slow}"


@pytest.mark.parametrize("task", list(GOLDS))
def test_compute_score_on_hostile_responses(task):
    """compute_score (rules mode) returns its fixed float keys for every hostile response, 1 MB ones included."""
    ground_truth = {"charge": "盗窃罪", "article": "第264条", "term": "有期徒刑三年", "verdict": "犯盗窃罪"}[task]
    extra = {"charges": ["盗窃罪"], "articles": [264], "term_kind": "fixed", "term_months": 36, "fine": 0}
    cases = [("random", t) for t in random_texts(3, 100, 600)] + pathological(ENTRY_CHARS)
    cases += [(f"{name} in answer", f"想一想</think><answer>{text}</answer>") for name, text in pathological(30_000)]

    async def run() -> None:
        for name, text in cases:
            t0 = time.perf_counter()
            out = await compute_score(f"legal/{task}", text, ground_truth, dict(extra), mode="rules")
            assert time.perf_counter() - t0 < BOUND_S, name
            assert tuple(out) == RESULT_KEYS and all(isinstance(v, float) for v in out.values()), name

    asyncio.run(run())
