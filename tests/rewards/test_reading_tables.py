"""How answers are read (issue 17): tables of our own answers, one per misread class, through the rules reward.

Every answer is a whole response as a policy would write it (thinking, an <answer> block, sometimes a note after
it); the rules reward reads ``extract_answer`` of it, exactly as ``rewards.legal.compute_score`` does, and the
evaluator (``recipes.legal.evaluate.parse_prediction``) must read the same thing.
"""

from __future__ import annotations

import time

import pytest

from data.domains.legal.articles import parse_articles
from data.domains.legal.charges import KNOWN_CHARGES, canonical_charge, parse_charges
from data.domains.legal.terms import Term, find_term
from recipes.legal import evaluate as E
from recipes.legal import metrics as M
from rewards.format import extract_answer
from rewards.rules import Gold, gold_from, score_rules


def resp(answer: str, note: str = "") -> str:
    """A response in the R1-zero format (the template opens <think>), with an optional note after the answer."""
    return f"本案需要结合事实分析。</think><answer>{answer}</answer>{note}"


def rules(task: str, response: str, gold: Gold):
    """The rules score of a response, read as compute_score reads it."""
    return score_rules(task, extract_answer(response) or "", gold)


def charge_gold(*labels: str) -> Gold:
    return gold_from("charge", "", {"charges": list(labels)})


# ------------------------------------------------------------------------------------ charges: partial names
PARTIAL = [
    ("非法猎捕、杀害珍贵、濒危野生动物罪", "非法猎捕珍贵、濒危野生动物罪"),
    ("非法猎捕、杀害珍贵、濒危野生动物罪", "被告人的行为构成非法杀害珍贵、濒危野生动物罪"),
    ("掩饰、隐瞒犯罪所得、犯罪所得收益罪", "掩饰、隐瞒犯罪所得罪"),
    ("掩饰、隐瞒犯罪所得、犯罪所得收益罪", "掩饰隐瞒犯罪所得罪"),
    ("掩饰、隐瞒犯罪所得、犯罪所得收益罪", "被告人李某犯隐瞒犯罪所得罪"),
    ("非法持有、私藏枪支、弹药罪", "非法持有枪支罪"),
    ("非法持有、私藏枪支、弹药罪", "罪名：私藏枪支罪"),
    ("非法持有、私藏枪支、弹药罪", "非法持有枪支、弹药罪"),
    ("虚开增值税专用发票、用于骗取出口退税、抵扣税款发票罪", "虚开增值税专用发票罪"),
    ("虚开增值税专用发票、用于骗取出口退税、抵扣税款发票罪", "被告公司及被告人王某均构成虚开增值税专用发票罪。"),
    ("骗取贷款、票据承兑、金融票证罪", "骗取贷款罪"),
    ("骗取贷款、票据承兑、金融票证罪", "骗取票据承兑罪"),
    ("非法制造、买卖、运输、邮寄、储存枪支、弹药、爆炸物罪", "非法制造爆炸物罪"),
    ("非法制造、买卖、运输、邮寄、储存枪支、弹药、爆炸物罪", "非法买卖、运输枪支罪"),
    ("非法买卖、运输、携带、持有毒品原植物种子、幼苗罪", "非法运输毒品原植物种子罪"),
    ("走私普通货物、物品罪", "走私普通货物罪"),
    ("走私普通货物、物品罪", "被告人犯走私普通物品罪"),
    ("走私、贩卖、运输、制造毒品罪", "贩卖、运输毒品罪"),
    ("引诱、容留、介绍卖淫罪", "容留卖淫罪"),
    ("引诱、容留、介绍卖淫罪", "介绍卖淫罪"),
    ("引诱、容留、介绍卖淫罪", "引诱、容留卖淫罪"),
    ("组织、强迫、引诱、容留、介绍卖淫罪", "容留卖淫罪"),  # the umbrella gold: a partial form of it matches too
    ("盗窃、抢夺枪支、弹药、爆炸物罪", "盗窃枪支罪"),
    ("非法采伐、毁坏国家重点保护植物罪", "非法采伐国家重点保护植物罪"),
]


@pytest.mark.parametrize(("gold_label", "answer"), PARTIAL)
def test_partial_name_is_its_label(gold_label, answer):
    """A partial form of the gold label (some enumerated acts or objects left out) is fully right, decided by rules."""
    assert gold_label in KNOWN_CHARGES
    response = resp(answer, "\n（以上为最终答案）")
    result = rules("charge", response, charge_gold(gold_label))
    assert (result.score, result.acc, result.decides) == (2.0, True, True)
    assert E.parse_prediction("charge", response, [gold_label])["charges"] == [gold_label]  # the evaluator agrees


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("容留卖淫罪", "引诱、容留、介绍卖淫罪"),  # most specific of the two labels containing it
        ("介绍卖淫罪", "引诱、容留、介绍卖淫罪"),
        ("引诱、容留卖淫罪", "引诱、容留、介绍卖淫罪"),
        ("组织卖淫罪", "组织卖淫罪"),  # a label of its own stays
        # the most specific is 盗窃、抢夺枪支、弹药、爆炸物罪 (not the longer …、危险物质罪), which is that label's old
        # name: one label with it, under its current name (CHARGE_RENAMES)
        ("盗窃枪支罪", "盗窃、抢夺枪支、弹药、爆炸物、危险物质罪"),
        ("侮辱尸体罪", "盗窃、侮辱尸体罪"),
        ("非法持有枪支罪", "非法持有、私藏枪支、弹药罪"),
        ("贩卖毒品罪", "走私、贩卖、运输、制造毒品罪"),
    ],
)
def test_partial_name_takes_the_most_specific_label(name, label):
    """When several labels contain a partial form, the one with the fewest enumerated parts wins."""
    assert canonical_charge(name) == label


# ----------------------------------------------------------------- charges: no shorter label from inside a name
EMBEDDED = [
    ("走私普通货物罪", "走私罪"),
    ("非法制造爆炸物罪", "爆炸罪"),
    ("非法运输毒品原植物种子罪", "走私、贩卖、运输、制造毒品罪"),
    ("盗窃枪支罪", "盗窃罪"),
    ("抢劫枪支罪", "抢劫罪"),
    ("聚众哄抢罪", "抢夺罪"),
    ("非法持有毒品罪", "非法持有、私藏枪支、弹药罪"),
    ("信用卡诈骗罪", "诈骗罪"),
    ("过失致人死亡罪", "故意杀人罪"),
    ("非法收购、运输盗伐、滥伐的林木罪", "盗伐林木罪"),
]


@pytest.mark.parametrize(("answer", "other"), EMBEDDED)
def test_no_shorter_label_read_from_inside_a_name(answer, other):
    """The whole name is read: against a label found inside it the answer is wrong (-2), never partly right."""
    response = resp(f"被告人构成{answer}", "注：不涉及其他罪名。")
    result = rules("charge", response, charge_gold(other))
    assert (result.score, result.acc) == (-2.0, False)
    assert canonical_charge(other) not in {canonical_charge(c) for c in parse_charges(extract_answer(response))}


@pytest.mark.parametrize(
    ("answer", "gold_label"),
    [
        ("走私普通货物罪", "走私普通货物、物品罪"),
        ("非法制造爆炸物罪", "非法制造、买卖、运输、邮寄、储存枪支、弹药、爆炸物罪"),
        ("聚众赌博罪", "赌博罪"),
        ("非法运输毒品原植物种子罪", "非法买卖、运输、携带、持有毒品原植物种子、幼苗罪"),
    ],
)
def test_whole_name_scores_against_its_own_label(answer, gold_label):
    """The same answers are fully right against their own label."""
    result = rules("charge", resp(answer), charge_gold(gold_label))
    assert (result.score, result.acc, result.decides) == (2.0, True, True)


# ----------------------------------------------------------------------------- charges: junk and unknown names
@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("要判断构成什么罪名，需先看事实。被告人构成盗窃罪", ["盗窃罪"]),
        ("被告人犯盗窃罪、诈骗罪，应当数罪并罚", ["盗窃罪", "诈骗罪"]),
        ("应当数罪并罚", []),
        ("其行为构成犯罪，罪名为故意伤害罪", ["故意伤害罪"]),
        ("被告人系累犯，犯抢劫罪", ["抢劫罪"]),
        ("被告人认罪认罚，犯危险驾驶罪", ["危险驾驶罪"]),
        ("盗窃罪名成立", ["盗窃罪"]),
        ("犯罪嫌疑人张某犯诈骗罪", ["诈骗罪"]),
        ("被告人不构成盗窃罪，构成侵占罪", ["侵占罪"]),
        ("以上事实足以认定其有罪。罪名：寻衅滋事罪", ["寻衅滋事罪"]),
        ("被告人的行为应认定为职务侵占罪而非盗窃罪", ["职务侵占罪"]),
        ("构成诈骗罪，并非合同诈骗罪", ["诈骗罪"]),
    ],
)
def test_junk_after_trigger_words_is_no_charge(answer, expected):
    """什么罪名, 数罪并罚, 犯罪, 有罪, negated names: no charge is read from them."""
    assert parse_charges(extract_answer(resp(answer))) == expected


@pytest.mark.parametrize(
    "answer",
    [
        "(1)盗窃罪 (2)诈骗罪",
        "①盗窃罪②诈骗罪",
        "1. 盗窃罪\n2. 诈骗罪",
        "- 盗窃罪\n- 诈骗罪",
        "**盗窃罪**、**诈骗罪**",
        "一、盗窃罪；二、诈骗罪",
        "最终答案：盗窃罪，诈骗罪",
        "盗窃罪（数额较大）、诈骗罪（刑法第266条）",
    ],
)
def test_list_formats_read_the_names_only(answer):
    """Numbered and bulleted lists, bold and notes in brackets: the names, no marker read as part of one."""
    response = resp(answer)
    assert parse_charges(extract_answer(response)) == ["盗窃罪", "诈骗罪"]
    assert rules("charge", response, charge_gold("盗窃罪", "诈骗罪")).score == 2.0


UNKNOWN = [
    ("盗窃罪、非法买卖外汇罪", ("盗窃罪",)),
    ("盗窃罪、偷东西罪", ("盗窃罪",)),
    ("诈骗罪；流氓罪", ("诈骗罪",)),
    ("故意伤害罪、打人罪", ("故意伤害罪",)),
    ("盗窃罪\n入室罪", ("盗窃罪",)),
    ("危险驾驶罪、非法飙车罪", ("危险驾驶罪",)),
]


@pytest.mark.parametrize(("answer", "gold"), UNKNOWN)
def test_unknown_name_in_answer_counts_as_wrong(answer, gold):
    """An unknown …罪 name inside <answer> is a claimed label: not dropped, so half the answer is wrong."""
    response = resp(answer)
    names = parse_charges(extract_answer(response))
    assert len(names) == 2
    result = rules("charge", response, charge_gold(*gold))
    assert (result.score, result.decides) == (-2.0, False)  # rules: wrong; hybrid: the judge decides
    view = E.parse_prediction("charge", response)
    assert len(view["charges"]) == 2  # the evaluator counts it as a false positive too


# ----------------------------------------------------------------------------------------- charges: synonyms
SYNONYMS = [
    ("纵火罪", "放火罪"),
    ("被告人构成纵火罪", "放火罪"),
    ("醉酒驾驶", "危险驾驶罪"),
    ("醉酒驾驶罪", "危险驾驶罪"),
    ("醉驾", "危险驾驶罪"),
    ("偷税罪", "逃税罪"),
    ("偷税漏税罪", "逃税罪"),
    ("聚众赌博罪", "赌博罪"),
    ("贩毒罪", "走私、贩卖、运输、制造毒品罪"),
    ("销赃罪", "掩饰、隐瞒犯罪所得、犯罪所得收益罪"),
    ("杀人罪", "故意杀人罪"),
    ("交通肇事逃逸罪", "交通肇事罪"),
]


@pytest.mark.parametrize(("answer", "gold_label"), SYNONYMS)
def test_synonyms_map_to_the_label(answer, gold_label):
    """Common non-label names from the documented CHARGE_SYNONYMS table are their label."""
    result = rules("charge", resp(answer), charge_gold(gold_label))
    assert (result.score, result.acc, result.decides) == (2.0, True, True)


# ------------------------------------------------------------------------------ hacks: listing, wrong extras
def test_listing_every_charge_is_not_partly_right():
    """An answer that lists all labels scores like a wrong answer (-2), in the charge and verdict tasks."""
    everything = "、".join(sorted(KNOWN_CHARGES))
    assert rules("charge", resp(everything), charge_gold("盗窃罪")).score == -2.0
    gold = Gold(text="", charges=("盗窃罪",), term=Term("fixed", 12, "有期徒刑"), fine=0)
    assert rules("verdict", resp(f"被告人犯{everything}，判处有期徒刑一年。"), gold).score == -2.0


def test_listing_every_article_is_not_partly_right():
    """All 452 articles listed: -2."""
    everything = "、".join(f"第{n}条" for n in range(1, 453))
    assert rules("article", resp(everything), Gold(text="", articles=(264,))).score == -2.0


@pytest.mark.parametrize(
    ("answer", "gold", "score"),
    [
        ("盗窃罪、抢劫罪", ("盗窃罪",), -2.0),  # one right, one wrong: not "most" right
        ("盗窃罪、抢劫罪、诈骗罪", ("盗窃罪",), -2.0),
        ("盗窃罪、诈骗罪、抢劫罪", ("盗窃罪", "诈骗罪"), 1.0),  # two of three right
        ("盗窃罪", ("盗窃罪", "诈骗罪"), 1.0),  # all it claims is right, one missing
    ],
)
def test_partial_credit_needs_precision(answer, gold, score):
    """+1 needs an overlap and more than half of the claimed labels right."""
    assert rules("charge", resp(answer), charge_gold(*gold)).score == score


@pytest.mark.parametrize(
    ("answer", "gold"),
    [
        ("被告人张某犯诈骗罪。", Gold(text="", charges=("盗窃罪",), term=Term("none"), fine=0)),
        ("被告人张某犯诈骗罪，免予刑事处罚。", Gold(text="", charges=("盗窃罪",), term=Term("none"), fine=0)),
        ("被告人张某犯抢劫罪，判处有期徒刑一年。", Gold(text="", charges=("盗窃罪",), term=Term("fixed", 12), fine=0)),
        ("被告人张某犯抢劫罪，判处有期徒刑一年，并处罚金二千元", Gold("", ("盗窃罪",), (), Term("fixed", 12), 2000)),
        ("被告人张某犯盗窃罪、抢劫罪，判处有期徒刑一年。", Gold(text="", charges=("盗窃罪",), term=Term("fixed", 12))),
    ],
)
def test_verdict_never_pays_for_a_wrong_charge(answer, gold):
    """A verdict whose charges are wrong scores -2 even when term and fine (or a gold fine of 0) match."""
    assert rules("verdict", resp(answer), gold).score == -2.0


def test_verdict_without_term_does_not_match_an_exemption():
    """Naming no term is not 免予刑事处罚: the term part is unmatched (partly right, not fully)."""
    gold = Gold(text="", charges=("盗窃罪",), term=Term("none"), fine=0)
    assert rules("verdict", resp("被告人张某犯盗窃罪。"), gold).score == 1.0
    assert rules("verdict", resp("被告人张某犯盗窃罪，免予刑事处罚。"), gold).score == 2.0


# ------------------------------------------------------------------------------ articles: quoted statute text
QUOTED_ARTICLES = [
    (
        "第355条",
        "依据刑法第三百五十五条：“……向走私、贩卖毒品的犯罪分子提供的，依照本法第三百四十七条的规定定罪处罚。”",
        [355],
    ),
    (
        "第238条",
        "刑法第238条规定：“……使用暴力致人伤残、死亡的，依照本法第二百三十四条、第二百三十二条的规定定罪处罚。”",
        [238],
    ),
    ("第264条", "第264条（“盗窃公私财物……”），另参见本法第六十七条", [264]),
    ("第67条", "第六十七条第一款。依照本法第六十八条", [67]),
    ("第269条", "适用刑法第269条，该条规定“犯盗窃、诈骗、抢夺罪……依照本法第二百六十三条的规定定罪处罚”", [269]),
    ("第264条", "“第264条”", [264]),  # an answer written in quotes is still read
    (
        "第292条",
        "《刑法》第二百九十二条「聚众斗殴的……致人重伤、死亡的，依照本法第二百三十四条、第二百三十二条的规定定罪处罚」",
        [292],
    ),
]


@pytest.mark.parametrize(("gold", "answer", "expected"), QUOTED_ARTICLES)
def test_quoted_statute_cross_references_are_not_citations(gold, answer, expected):
    """Only what the answer cites counts, not the articles the quoted statute text refers to."""
    response = resp(answer)
    assert parse_articles(extract_answer(response)) == expected
    assert E.parse_prediction("article", response)["articles"] == expected
    gold_view = gold_from("article", gold, {})
    assert rules("article", response, gold_view).score == 2.0


# --------------------------------------------------------------------------------------- terms: final sentence
FINAL_SENTENCE = [
    ("根据刑法规定，该罪最高刑期为10年。[刑期]48个月", Term("fixed", 48)),
    ("处死刑、无期徒刑或者十年以上有期徒刑。[刑期]10年", Term("fixed", 120)),
    ("依照第二百六十四条，处三年以下有期徒刑、拘役或者管制。本案判处有期徒刑八个月", Term("fixed", 8, "有期徒刑")),
    ("法定刑为三年以上十年以下有期徒刑，结合自首情节，判处有期徒刑3年6个月", Term("fixed", 42, "有期徒刑")),
    ("“处十年以上有期徒刑、无期徒刑或者死刑”。本案：有期徒刑十二年", Term("fixed", 144, "有期徒刑")),
    ("刑法规定“致人死亡的，处十年以上有期徒刑、无期徒刑或者死刑”，判处无期徒刑", Term("life")),
    ("量刑幅度在一年至三年之间，判处有期徒刑一年零六个月", Term("fixed", 18, "有期徒刑")),
    ("拘役四个月（该罪法定刑为拘役，并处罚金）", Term("fixed", 4, "拘役")),
]


@pytest.mark.parametrize(("answer", "expected"), FINAL_SENTENCE)
def test_final_sentence_wins_over_quoted_ranges(answer, expected):
    """Statute ranges and quoted penalties around the answer do not replace the stated sentence."""
    response = resp(answer, "\n注：以上仅为预测。")
    assert find_term(extract_answer(response)) == expected
    result = rules("term", response, Gold(text="", term=expected))
    assert (result.score, result.acc) == (0.0, True)
    assert E.parse_prediction("term", response)["term_code"] == M.term_code(expected.kind, expected.months)


STATUTE_FINE = [
    "处3年以下有期徒刑、拘役或者罚金",
    "依照刑法第二百六十四条，处三年以下有期徒刑、拘役或者管制，并处或者单处罚金",
    "该罪“处五年以下有期徒刑或者拘役，并处或者单处罚金”",
    "可以单处罚金或者判处拘役",
    "处二年以下有期徒刑、拘役或者管制，并处或者单处罚金。",
]


@pytest.mark.parametrize("answer", STATUTE_FINE)
def test_statute_fine_is_not_fine_only(answer):
    """A fine in statute text is not 单处罚金: the answer names no term (unreadable, -2), not 0 months."""
    response = resp(answer)
    assert find_term(extract_answer(response)) is None
    assert rules("term", response, Gold(text="", term=Term("fixed", 12))).score == -2.0
    assert E.parse_prediction("term", response)["term_code"] is None


RANGES = [
    "三年以下有期徒刑",
    "三年以上有期徒刑",
    "有期徒刑三年以上十年以下",
    "三年到五年",
    "有期徒刑3-5年",
    "3~5年",
    "有期徒刑三至五年",
    "一到两年有期徒刑",
    "拘役或者管制",
    "有期徒刑一年或一年六个月",
    "6个月以内的拘役",
]


@pytest.mark.parametrize("answer", RANGES)
def test_ranges_and_hedges_are_unreadable(answer):
    """A range or an alternative is no prediction: unreadable (-2) in the reward and None in the evaluation."""
    response = resp(answer)
    assert find_term(extract_answer(response)) is None
    assert rules("term", response, Gold(text="", term=Term("fixed", 36))).score == -2.0
    assert E.parse_prediction("term", response)["unparseable"] is True


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("三年左右", Term("fixed", 36)),  # a point estimate is a prediction
        ("约有期徒刑两年", Term("fixed", 24, "有期徒刑")),
        ("刑期：36个月", Term("fixed", 36)),
        ("刑期：12", None),  # a number without a unit: months or years? unreadable
        ("[刑期]12", None),
        ("刑期 18", None),
        ("被告人不构成盗窃罪", None),  # an acquittal names no sentence: unreadable, not 0 months
        ("被告人无罪", None),
        ("宣告无罪", None),
        ("不构成犯罪，不负刑事责任", None),
        ("免予刑事处罚", Term("none")),  # a conviction without punishment is a sentence of 0 months
        ("单处罚金", Term("none")),
    ],
)
def test_point_estimates_bare_numbers_and_acquittals(answer, expected):
    """The decided cases: 左右 reads, a unit-less number and an acquittal are unreadable."""
    response = resp(answer)
    assert find_term(extract_answer(response)) == expected
    expected_score = -2.0 if expected is None else -abs(12 - (expected.months if expected.kind == "fixed" else 0)) / 240
    assert rules("term", response, Gold(text="", term=Term("fixed", 12))).score == pytest.approx(expected_score)


# ------------------------------------------------------------------------------------------- bounded time
@pytest.mark.parametrize("char", ["罪", "、", "1", "一", "的", "犯", "或", "“", "第", "年"])
def test_readers_take_bounded_time(char):
    """1 MB of one character through every reader: well under a second each (generous bound: 2 s for all)."""
    text = char * 1_000_000
    start = time.perf_counter()
    parse_charges(text)
    parse_articles(text)
    find_term(text)
    for task in ("charge", "article", "term", "verdict"):
        score_rules(task, text, Gold(text="", charges=("盗窃罪",), articles=(264,), term=Term("fixed", 12)))
    assert time.perf_counter() - start < 2.0
