"""Rules-mode task scores (rewards/rules.py): every mapping of every task, gold construction and its errors."""

from __future__ import annotations

import numpy as np
import pytest

from data.domains.legal.charges import KNOWN_CHARGES
from data.domains.legal.terms import Term
from rewards.rules import (
    Gold,
    gold_from,
    is_listing,
    score_article,
    score_charge,
    score_rules,
    score_term,
    score_verdict,
)

CHARGE_GOLD = Gold(text="盗窃罪、诈骗罪", charges=("盗窃罪", "诈骗罪"))


@pytest.mark.parametrize(
    ("answer", "score", "acc", "decides"),
    [
        ("盗窃罪、诈骗罪", 2.0, True, True),  # sets equal
        ("诈骗罪、盗窃罪", 2.0, True, True),  # order does not matter
        ("被告人张某犯盗窃罪、诈骗罪", 2.0, True, True),  # free text
        ("盗窃、诈骗", 2.0, True, True),  # without 罪
        ("盗窃罪", 1.0, False, True),  # overlap (missing one)
        ("盗窃罪、诈骗罪、抢劫罪", 1.0, False, True),  # overlap (one extra)
        ("抢劫罪", -2.0, False, True),  # disjoint
        ("不知道", -2.0, False, False),  # nothing readable: -2, and hybrid asks the judge
        ("被告人犯偷东西罪", -2.0, False, False),  # an unknown label: hybrid asks the judge
    ],
)
def test_charge(answer, score, acc, decides):
    """charge: equal → +2, overlap → +1, disjoint/empty → -2; rules decide for known labels only."""
    result = score_charge(answer, CHARGE_GOLD)
    assert (result.score, result.acc, result.decides) == (score, acc, decides)


@pytest.mark.parametrize(
    ("gold_label", "answer"),
    [
        ("走私、贩卖、运输、制造毒品罪", "贩卖毒品罪"),  # courts name the acts committed; CAIL the umbrella label
        ("[组织、强迫、引诱、容留、介绍]卖淫罪", "容留卖淫罪"),
        ("贩卖毒品罪", "走私、贩卖、运输、制造毒品罪"),  # judgments gold, umbrella answer
    ],
)
def test_charge_partial_selective_form_is_the_label(gold_label, answer):
    """A partial selective charge and its full label are the same charge: +2, decided by the rules."""
    gold = gold_from("charge", "", {"charges": [gold_label]})
    result = score_charge(answer, gold)
    assert (result.score, result.acc, result.decides) == (2.0, True, True)


def test_verdict_partial_selective_form_is_the_label():
    """The verdict's charge part uses the same label identity as the charge task."""
    gold = Gold(text="", charges=("走私、贩卖、运输、制造毒品罪",), term=Term("fixed", 36, "有期徒刑"), fine=5000)
    result = score_verdict("被告人王某犯贩卖毒品罪，判处有期徒刑三年，并处罚金人民币五千元。", gold)
    assert (result.score, result.acc) == (2.0, True)


def test_charge_brackets_normalized():
    """CAIL labels with brackets match the bracket-free answer."""
    gold = gold_from("charge", "", {"charges": ["[组织、强迫、引诱、容留、介绍]卖淫罪"]})
    result = score_charge("组织、强迫、引诱、容留、介绍卖淫罪", gold)
    assert (result.score, result.acc) == (2.0, True)


ARTICLE_GOLD = Gold(text="第67条、第264条", articles=(67, 264))


@pytest.mark.parametrize(
    ("answer", "score", "acc", "decides"),
    [
        ("第67条、第264条", 2.0, True, True),
        ("第二百六十四条、第六十七条", 2.0, True, True),  # Chinese numerals
        ("《中华人民共和国刑法》第264条、第67条", 2.0, True, True),
        ("第264条", 1.0, False, True),
        ("第264条、第67条、第52条", 1.0, False, True),
        ("第234条", -2.0, False, True),
        ("第264条、第999条", -2.0, False, False),  # half of it wrong is not "partly right"; the judge decides in hybrid
        ("第264条、第67条、第999条", 1.0, False, False),  # most of it right: partly right
        ("无", -2.0, False, False),
    ],
)
def test_article(answer, score, acc, decides):
    """article: the same set mapping on article numbers; rules decide when all numbers are known articles."""
    result = score_article(answer, ARTICLE_GOLD)
    assert (result.score, result.acc, result.decides) == (score, acc, decides)


FIXED_42 = Term("fixed", 42, "有期徒刑")


@pytest.mark.parametrize(
    ("gold", "answer", "score", "acc"),
    [
        # gold fixed, prediction fixed: -|Δ months| / 240
        (FIXED_42, "有期徒刑三年六个月", 0.0, True),
        (FIXED_42, "有期徒刑三年", -6 / 240, False),
        (FIXED_42, "有期徒刑四年", -6 / 240, False),
        (FIXED_42, "有期徒刑二十三年六个月", -240 / 240, False),
        (FIXED_42, "三年六个月", 0.0, True),  # no penalty word: months still compare
        (FIXED_42, "有期徒刑三年六个月，缓刑五年", 0.0, True),  # probation is not prison time
        (Term("fixed", 6, "拘役"), "有期徒刑六个月", 0.0, True),  # months only, not the penalty name
        # gold fixed, prediction 免予刑事处罚: like 0 months
        (FIXED_42, "免予刑事处罚", -42 / 240, False),
        # gold fixed, prediction life / death: -1
        (FIXED_42, "无期徒刑", -1.0, False),
        (FIXED_42, "死刑", -1.0, False),
        # gold life / death: kind equal → 0, else -1
        (Term("life"), "无期徒刑", 0.0, True),
        (Term("life"), "死刑", -1.0, False),
        (Term("life"), "有期徒刑十五年", -1.0, False),
        (Term("death"), "死刑缓期二年执行", 0.0, True),
        (Term("death"), "死刑", 0.0, True),
        (Term("death"), "无期徒刑", -1.0, False),
        # gold none (免予刑事处罚, 0 months)
        (Term("none"), "免予刑事处罚", 0.0, True),
        (Term("none"), "单处罚金", 0.0, True),  # a fine-only sentence has no principal penalty
        (Term("none"), "判处罚金人民币五千元", 0.0, True),
        (FIXED_42, "单处罚金", -42 / 240, False),
        (Term("none"), "拘役三个月", -3 / 240, False),
        (Term("none"), "无期徒刑", -1.0, False),
        # prediction unreadable (no term named at all): -2 whatever the gold
        (FIXED_42, "我不确定", -2.0, False),
        (Term("life"), "我不确定", -2.0, False),
        (Term("death"), "", -2.0, False),
        (Term("none"), "我不确定", -2.0, False),
    ],
)
def test_term(gold, answer, score, acc):
    """term: every gold kind × prediction kind, and the unreadable prediction."""
    result = score_term(answer, Gold(text="", term=gold))
    assert result.score == pytest.approx(score)
    assert result.acc is acc
    assert result.decides is True


VERDICT_GOLD = Gold(
    text="被告人张某犯盗窃罪，判处有期徒刑一年六个月，并处罚金人民币五千元。",
    charges=("盗窃罪",),
    term=Term("fixed", 18, "有期徒刑"),
    fine=5000,
)


@pytest.mark.parametrize(
    ("gold", "answer", "score", "acc"),
    [
        (VERDICT_GOLD, "被告人张某犯盗窃罪，判处有期徒刑一年六个月，并处罚金人民币五千元。", 2.0, True),
        (VERDICT_GOLD, "被告人张某犯盗窃罪，判处有期徒刑一年零六个月，并处罚金5000元。", 2.0, True),
        (VERDICT_GOLD, "被告人张某犯盗窃罪，判处有期徒刑二年，并处罚金人民币五千元。", 1.0, False),  # term wrong
        (VERDICT_GOLD, "被告人张某犯盗窃罪，判处有期徒刑一年六个月。", 1.0, False),  # fine missing
        (VERDICT_GOLD, "被告人张某犯诈骗罪，判处有期徒刑一年六个月，并处罚金人民币五千元。", -2.0, False),  # charge
        (VERDICT_GOLD, "被告人张某犯诈骗罪，判处有期徒刑三年，并处罚金人民币一万元。", -2.0, False),  # none match
        (VERDICT_GOLD, "判处有期徒刑一年六个月，并处罚金人民币五千元。", -2.0, False),  # no charge: unreadable
        (VERDICT_GOLD, "不知道", -2.0, False),
        # A gold without fine is matched by a verdict without fine.
        (
            Gold(text="", charges=("故意伤害罪",), term=Term("fixed", 6, "拘役"), fine=0),
            "被告人李某犯故意伤害罪，判处拘役六个月。",
            2.0,
            True,
        ),
        (
            Gold(text="", charges=("故意伤害罪",), term=Term("none"), fine=0),
            "被告人李某犯故意伤害罪，免予刑事处罚。",
            2.0,
            True,
        ),
    ],
)
def test_verdict(gold, answer, score, acc):
    """verdict: charges, term and fine all match → +2, some → +1, none → -2; the judge decides in hybrid."""
    result = score_verdict(answer, gold)
    assert (result.score, result.acc, result.decides) == (score, acc, False)


@pytest.mark.parametrize(
    ("right", "wrong", "unknown", "gold", "listing"),
    [
        (1, 1, 0, 1, True),  # one right next to one wrong: half right at best
        (2, 1, 0, 2, False),  # most of it right
        (1, 0, 1, 1, False),  # the unknown name may be another name of the gold label
        (1, 0, 2, 1, True),  # ... but only one of them: the other is wrong
        (0, 1, 1, 2, False),  # claims no more than the gold has: the judge may compare meaning
        (1, 0, 3, 2, False),  # at best the missing label, a second name of the named one, and one wrong name
        (1, 0, 4, 2, True),  # four unknown names for two gold labels: two are wrong at best, half of the claims
        (1, 450, 0, 1, True),  # every label
        (0, 0, 400, 1, True),  # every label, each written so that it is no label
        (0, 0, 0, 1, False),  # nothing claimed: nothing to refuse
    ],
)
def test_is_listing(right, wrong, unknown, gold, listing):
    """A listing claims more than the gold has, and even its best reading leaves at most half of it right."""
    assert is_listing(right, wrong, unknown, gold) is listing


ALL_CHARGES = "、".join(sorted(KNOWN_CHARGES))
UNKNOWN_NAMES = "、".join(f"{c}东西罪" for c in "偷抢骗拿藏卖买换借送")  # ten names that are no labels


@pytest.mark.parametrize(
    ("task", "answer"),
    [
        ("charge", "盗窃罪、抢劫罪、故意伤害罪、诈骗罪、敲诈勒索罪、抢夺罪"),  # known labels
        ("charge", f"盗窃罪、{UNKNOWN_NAMES}"),  # one right label and ten names that are no labels
        ("charge", f"盗窃罪、抢劫罪、{UNKNOWN_NAMES}"),
        ("charge", ALL_CHARGES[:997]),  # every label, cut in the middle of one
        ("article", "第264条、第999条、第998条、第997条、第996条、第995条"),  # unknown article numbers
        ("article", "、".join(f"第{n}条" for n in range(1, 120))),
        ("verdict", "被告人犯盗窃罪、抢劫罪、故意伤害罪，判处有期徒刑一年六个月，并处罚金人民币五千元。"),
        ("verdict", f"被告人犯盗窃罪、{UNKNOWN_NAMES}，判处有期徒刑一年六个月，并处罚金人民币五千元。"),
    ],
)
def test_listing_is_decided_by_the_rules(task, answer):
    """Issue 24 item 1: a listing scores -2 and the rules decide it, whatever its unknown names (hybrid never asks
    the judge about it); before, unknown names or a label cut in half handed it to the judge."""
    gold = {
        "charge": Gold(text="盗窃罪", charges=("盗窃罪",)),
        "article": ARTICLE_GOLD,
        "verdict": VERDICT_GOLD,
    }[task]
    result = score_rules(task, answer, gold)
    assert (result.score, result.acc, result.decides) == (-2.0, False, True)


def test_score_rules_dispatch_and_unknown_task():
    """score_rules picks the task's scorer; an unknown task is a ValueError naming it."""
    assert score_rules("charge", "盗窃罪", CHARGE_GOLD) == score_charge("盗窃罪", CHARGE_GOLD)
    with pytest.raises(ValueError, match="'penalty'"):
        score_rules("penalty", "x", CHARGE_GOLD)


@pytest.mark.parametrize(
    ("task", "ground_truth", "extra_info", "expected"),
    [
        # Structured gold from extra_info (data/prepare.py), numpy arrays as parquet gives them.
        (
            "charge",
            "ignored",
            {"charges": np.array(["盗窃罪", "[拒不执行判决、裁定]罪"])},
            Gold("ignored", charges=("拒不执行判决、裁定罪", "盗窃罪")),
        ),
        ("article", "", {"articles": np.array([264, 67, 264], dtype=np.int64)}, Gold("", articles=(67, 264))),
        ("term", "", {"term_kind": "fixed", "term_months": np.int64(42)}, Gold("", term=Term("fixed", 42))),
        ("term", "", {"term_kind": "life", "term_months": 0}, Gold("", term=Term("life"))),
        (
            "verdict",
            "x",
            {"charges": ["盗窃罪"], "term_kind": "fixed", "term_months": 18, "fine": 5000},
            Gold("x", charges=("盗窃罪",), term=Term("fixed", 18), fine=5000),
        ),
        # No structured gold: parsed from the ground-truth text.
        ("charge", "盗窃罪、诈骗罪", None, Gold("盗窃罪、诈骗罪", charges=("盗窃罪", "诈骗罪"))),
        ("article", "第67条、第264条", {"index": 3}, Gold("第67条、第264条", articles=(67, 264))),
        ("term", "有期徒刑三年六个月", {}, Gold("有期徒刑三年六个月", term=Term("fixed", 42, "有期徒刑"))),
        ("term", "免予刑事处罚", {}, Gold("免予刑事处罚", term=Term("none"))),
        (
            "verdict",
            "被告人张某犯盗窃罪，判处有期徒刑一年六个月，并处罚金人民币五千元。",
            None,
            Gold(
                "被告人张某犯盗窃罪，判处有期徒刑一年六个月，并处罚金人民币五千元。",
                charges=("盗窃罪",),
                term=Term("fixed", 18, "有期徒刑"),
                fine=5000,
            ),
        ),
    ],
)
def test_gold_from(task, ground_truth, extra_info, expected):
    """extra_info's structured fields win; the ground-truth text is parsed when they are absent."""
    assert gold_from(task, ground_truth, extra_info) == expected


@pytest.mark.parametrize(
    ("task", "ground_truth", "extra_info", "message"),
    [
        ("charge", "不知道", {"index": 7}, "index=7.*no charge"),
        ("charge", "", {"charges": []}, "no charge"),
        ("charge", "", {"charges": "盗窃罪"}, r"extra_info\['charges'\] must be a list"),
        ("article", "无", None, "no article"),
        ("article", "", {"articles": ["第264条"]}, r"extra_info\['articles'\] must be an integer"),
        ("term", "", {"term_kind": "forever", "term_months": 0}, "Term.kind"),
        ("term", "", {"term_kind": "fixed", "term_months": 1.5}, r"term_months.*integer"),
        ("verdict", "", {"charges": ["盗窃罪"], "term_kind": "none", "fine": True}, r"fine.*integer"),
    ],
)
def test_gold_errors_name_the_sample(task, ground_truth, extra_info, message):
    """Malformed or empty gold is an error naming the sample (such rows are filtered in data/, never scored)."""
    with pytest.raises(ValueError, match=message):
        gold_from(task, ground_truth, extra_info)
