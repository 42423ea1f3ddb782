"""How answers are read, round two (issue 28; issue 24 item 2): one table of our own answers per misread class.

Every answer is our own, written as a user's model would write it (never copied model output). Each case is checked
through the rules reward (``score_rules`` on ``extract_answer`` of a whole response, as ``compute_score`` reads it)
and through the evaluator (``parse_prediction``): both must read the same thing. ``CLASSES`` names each class with its
one check per case, so ``python tests/rewards/test_reading_tables_round2.py`` prints how many cases of each class read
right
(the before/after table of the report: run it on the old code too). The guard tests below pin what the new rules
must not start reading (negations, names inside labels, bare numbers where no unit is fixed).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest
from helpers.judge_fixtures import close_judge_connections, no_judge_env  # noqa: F401 - autouse fixtures
from helpers.judge_server import ScriptedJudgeServer

from data.domains.legal import tasks
from data.domains.legal.articles import parse_articles
from data.domains.legal.charges import CHARGE_RENAMES, KNOWN_CHARGES, canonical_charge, parse_charges
from data.domains.legal.terms import Term, find_term
from recipes.legal import evaluate as E
from recipes.legal import metrics as M
from rewards.format import extract_answer
from rewards.legal import compute_score
from rewards.rules import Gold, gold_from, score_rules

GUN = "非法制造、买卖、运输、邮寄、储存枪支、弹药、爆炸物罪"
SEEDS = "非法买卖、运输、携带、持有毒品原植物种子、幼苗罪"
DRUGS = "走私、贩卖、运输、制造毒品罪"
UMBRELLA = "组织、强迫、引诱、容留、介绍卖淫罪"
PROSTITUTION = "引诱、容留、介绍卖淫罪"
PERJURY = "辩护人、诉讼代理人毁灭证据、伪造证据、妨害作证罪"
GUN_THEFT = "盗窃、抢夺枪支、弹药、爆炸物罪"
GUN_THEFT_WIDE = "盗窃、抢夺枪支、弹药、爆炸物、危险物质罪"
CORPSE = "盗窃、侮辱尸体罪"
CORPSE_WIDE = "盗窃、侮辱、故意毁坏尸体、尸骨、骨灰罪"
FAKE_DRUGS = ("生产、销售假药罪", "生产、销售、提供假药罪")
BAD_DRUGS = ("生产、销售劣药罪", "生产、销售、提供劣药罪")
# An instruction that fixes the unit of the term answer (months); today's INSTRUCTIONS["term"] does not.
MONTHS_INSTRUCTION = (
    "请根据下面的案件事实，预测法院判处的有期徒刑刑期，以月为单位，答案只写一个整数，例如：<answer>18</answer>。"
)


def resp(answer: str) -> str:
    """A whole response in the R1-zero format (the template opens <think>), with a note after the answer."""
    return f"先梳理案情与证据。</think><answer>{answer}</answer>\n以上为最终答案。"


def rules(task: str, answer: str, gold: Gold):
    """The rules score of our answer, read as compute_score reads it."""
    return score_rules(task, extract_answer(resp(answer)) or "", gold)


def charge_gold(*labels: str) -> Gold:
    return gold_from("charge", "", {"charges": list(labels)})


def eval_charges(answer: str, gold: tuple[str, ...]) -> list[str]:
    """The labels the evaluator reads, aligned with the gold as evaluate aligns them."""
    return E.parse_prediction("charge", resp(answer), sorted(canonical_charge(g) for g in gold))["charges"]


# ----------------------------------------------------------------------------------- charges: what must read right
# Class 1: 罪名 / 罪行, a colon or a bracket introduce a name; a bare known name after them is that charge, and the
# 罪 of 罪名 neither ends nor starts a name.
INTRODUCED = [
    ("[罪名]盗窃", ("盗窃罪",)),
    ("罪名：诈骗", ("诈骗罪",)),
    ("[罪名]开设赌场罪", ("开设赌场罪",)),
    ("【罪名】故意伤害", ("故意伤害罪",)),
    ("<罪名>危险驾驶", ("危险驾驶罪",)),
    ("罪名为：寻衅滋事", ("寻衅滋事罪",)),
    ("罪名是交通肇事", ("交通肇事罪",)),
    ("罪行：抢劫", ("抢劫罪",)),
    ("罪名：盗窃、诈骗", ("盗窃罪", "诈骗罪")),
    ("【罪名】非法拘禁罪", ("非法拘禁罪",)),
    ("罪名：\n掩饰、隐瞒犯罪所得、犯罪所得收益", ("掩饰、隐瞒犯罪所得、犯罪所得收益罪",)),
    ("罪名: 容留他人吸毒", ("容留他人吸毒罪",)),
    ("本案罪名：敲诈勒索", ("敲诈勒索罪",)),
    ("[罪名]贩卖毒品", (DRUGS,)),
    ("罪名：职务侵占\n理由：利用职务便利侵占本单位财物", ("职务侵占罪",)),
    ("【罪名】聚众斗殴【法条】第292条", ("聚众斗殴罪",)),
    ("罪名：诈骗；另查明其行为构成盗窃罪", ("盗窃罪", "诈骗罪")),
    ("[罪名] 妨害公务", ("妨害公务罪",)),
    ("〔罪名〕赌博", ("赌博罪",)),
    ("罪名(1)：盗窃；罪名(2)：诈骗罪", ("盗窃罪", "诈骗罪")),
    ("【罪名】醉驾", ("危险驾驶罪",)),
    ("＜罪名＞组织卖淫", ("组织卖淫罪",)),
]

# Class 2: an article number, a bracket or a verb (符合, 涉及, 触犯) in front of a name is no part of it.
GLUED = [
    ("第二百六十四条【盗窃罪】", ("盗窃罪",)),
    ("刑法第264条盗窃罪", ("盗窃罪",)),
    ("第二百三十四条故意伤害罪", ("故意伤害罪",)),
    ("依据第133条之一危险驾驶罪", ("危险驾驶罪",)),
    ("第三百四十七条第一款走私、贩卖、运输、制造毒品罪", (DRUGS,)),
    ("刑法第303条第2款开设赌场罪", ("开设赌场罪",)),
    ("被告人的行为符合职务侵占罪", ("职务侵占罪",)),
    ("其行为符合诈骗罪的构成要件", ("诈骗罪",)),
    ("被告人触犯故意伤害罪", ("故意伤害罪",)),
    ("触犯了寻衅滋事罪", ("寻衅滋事罪",)),
    ("行为涉及非法经营罪", ("非法经营罪",)),
    ("第一百三十三条【交通肇事罪】", ("交通肇事罪",)),
    ("【第二百六十六条】诈骗罪", ("诈骗罪",)),
    ("刑法第二百九十三条寻衅滋事罪、第二百三十四条故意伤害罪", ("寻衅滋事罪", "故意伤害罪")),
    ("符合《刑法》第264条盗窃罪", ("盗窃罪",)),
    ("触犯刑法第二百六十三条抢劫罪", ("抢劫罪",)),
    ("本案符合第三百五十四条容留他人吸毒罪", ("容留他人吸毒罪",)),
    ("被告人触犯非法吸收公众存款罪", ("非法吸收公众存款罪",)),
]

# Class 3a: a partial form keeps the label's object, so the label it names is the one that has it; a leading 非法 is
# a qualifier that may be left out; an enumeration with a few acts the label lacks is still that label.
FRAGMENT_RIGHT = [
    ("被告人构成持有毒品罪", ("非法持有毒品罪",)),
    ("持有毒品罪", ("非法持有毒品罪",)),
    ("非法买卖、运输、携带、邮寄、储存、藏匿枪支、弹药罪", (GUN,)),
    ("非法运输、贩卖、储存枪支罪", (GUN,)),
    ("非法制造、买卖、运输、出售、储存枪支、弹药罪", (GUN,)),
    ("非法买卖、运输、邮寄、储存、私藏枪支、弹药罪", (GUN,)),
    ("持有枪支罪", ("非法持有、私藏枪支、弹药罪",)),
    ("携带枪支罪", ("非法携带枪支、弹药、管制刀具、危险物品危及公共安全罪",)),
    ("侵入住宅罪", ("非法侵入住宅罪",)),
    ("吸收公众存款罪", ("非法吸收公众存款罪",)),
    ("种植毒品原植物罪", ("非法种植毒品原植物罪",)),
    (
        "收购、运输、出售、加工珍贵、濒危野生动物罪",
        ("非法收购、运输、出售珍贵、濒危野生动物、珍贵、濒危野生动物制品罪",),
    ),
    ("被告人犯捕捞水产品罪", ("非法捕捞水产品罪",)),
    ("占用农用地罪", ("非法占用农用地罪",)),
]

# Class 3b: a fragment that does not keep a label's object is no form of it: the name is unknown (a wrong label the
# judge decides in hybrid mode), never a guess. 窝藏、毁灭证据罪 is one name, as written.
FRAGMENT_WRONG = [
    ("构成持有毒品罪", SEEDS, ["非法持有毒品罪"]),
    ("窝藏、毁灭证据罪", PERJURY, ["窝藏、毁灭证据罪"]),
    ("非法买卖、运输、携带罪", SEEDS, ["非法买卖、运输、携带罪"]),
    ("携带毒品罪", SEEDS, ["携带毒品罪"]),
    ("运输、携带罪", SEEDS, ["运输、携带罪"]),
    ("走私、贩卖罪", DRUGS, ["贩卖罪", "走私罪"]),  # the label 走私罪, then an unknown name: not the drug label
    ("组织、强迫罪", UMBRELLA, ["组织、强迫罪"]),
    ("引诱、容留罪", PROSTITUTION, ["引诱、容留罪"]),
    ("非法制造、买卖罪", "非法制造、买卖、运输、储存危险物质罪", ["非法制造、买卖罪"]),
    ("生产、销售罪", "生产、销售、提供假药罪", ["生产、销售罪"]),
    ("买卖毒品罪", "非法生产、买卖、运输制毒物品、走私制毒物品罪", ["买卖毒品罪"]),
    ("窝藏、转移罪", "窝藏、转移、收购、销售赃物罪", ["窝藏、转移罪"]),
    ("非法猎捕、收购罪", "非法猎捕、收购、运输、出售陆生野生动物罪", ["非法猎捕、收购罪"]),
    ("被告人犯制作、复制、出版罪", "制作、复制、出版、贩卖、传播淫秽物品牟利罪", ["制作、复制、出版罪"]),
]

# Class 4: one name, two golds. A written name stands for one label: its own label when that is a gold label, else
# the most specific gold label it is a form of. So it is one of the two (partly right, +1), the same in the evaluator.
TWO_GOLDS = [
    ("容留卖淫罪", (PROSTITUTION, UMBRELLA), [PROSTITUTION]),
    ("介绍卖淫罪", (PROSTITUTION, UMBRELLA), [PROSTITUTION]),
    ("盗窃尸体罪", (CORPSE, CORPSE_WIDE), [CORPSE]),
    ("侮辱尸体罪", (CORPSE, CORPSE_WIDE), [CORPSE]),
]

# Class 5 (issue 24 item 2): a name that is a label in its own right is that label, never a longer gold label whose
# enumerated acts contain its words. (Renamed labels — 生产、销售假药罪 / 生产、销售、提供假药罪 — are left out: an old
# and a new name of one charge are one label, class 5b.)
OWN_LABEL = [
    ("组织卖淫罪", UMBRELLA),
    ("强迫卖淫罪", UMBRELLA),
    (PROSTITUTION, UMBRELLA),
    (CORPSE, CORPSE_WIDE),
    ("传播淫秽物品罪", "制造、贩卖、传播淫秽物品罪"),
    ("妨害作证罪", PERJURY),
    ("滥用职权罪", "国有公司、企业、事业单位人员滥用职权罪"),
    ("滥用职权罪", "执行判决、裁定滥用职权罪"),
    ("盗伐林木罪", "非法收购、运输盗伐、滥伐的林木罪"),
    ("虚开发票罪", "虚开增值税专用发票、用于骗取出口退税、抵扣税款发票罪"),
    ("走私制毒物品罪", "非法生产、买卖、运输制毒物品、走私制毒物品罪"),
    ("非法持有毒品罪", SEEDS),
    ("骗取出口退税罪", "虚开增值税专用发票、用于骗取出口退税、抵扣税款发票罪"),
    ("非法出售发票罪", "非法出售用于骗取出口退税、抵扣税款发票罪"),
    ("被告人犯组织卖淫罪", UMBRELLA),
]

# Class 5b: the old and the current name of a renamed label (CHARGE_RENAMES, both in charges.txt) are one label: an
# honest answer in either name is right against a gold in the other, in the reward and in the evaluator. (Before, the
# gun-theft and drug cases here stood in class 4 as two golds, one of them read.)
RENAMED = [
    (FAKE_DRUGS[1], (FAKE_DRUGS[0],)),
    (FAKE_DRUGS[0], (FAKE_DRUGS[1],)),
    ("被告人犯生产、销售、提供假药罪", (FAKE_DRUGS[0],)),
    ("罪名：生产、销售、提供假药", (FAKE_DRUGS[0],)),
    ("第一百四十一条【生产、销售假药罪】", (FAKE_DRUGS[1],)),
    (BAD_DRUGS[1], (BAD_DRUGS[0],)),
    ("构成生产、销售劣药罪", (BAD_DRUGS[1],)),
    ("【罪名】生产、销售、提供劣药罪", (BAD_DRUGS[0],)),
    ("食品、药品监管渎职罪", ("食品监管渎职罪",)),
    ("被告人构成食品监管渎职罪", ("食品、药品监管渎职罪",)),
    ("强令、组织他人违章冒险作业罪", ("强令违章冒险作业罪",)),
    ("被告人李某犯强令违章冒险作业罪", ("强令、组织他人违章冒险作业罪",)),
    (GUN_THEFT_WIDE, (GUN_THEFT,)),
    ("涉嫌盗窃、抢夺枪支、弹药、爆炸物罪", (GUN_THEFT_WIDE,)),
    ("生产、销售、提供假药罪、诈骗罪", (FAKE_DRUGS[0], "诈骗罪")),
    ("食品、药品监管渎职罪；滥用职权罪", ("食品监管渎职罪", "滥用职权罪")),
    ("销售假药罪", (FAKE_DRUGS[1],)),  # a partial form of the old name
    ("提供劣药罪", (BAD_DRUGS[0],)),  # a partial form of the current name
    ("盗窃枪支罪", (GUN_THEFT, GUN_THEFT_WIDE)),  # both names in a gold are one label
    ("抢夺弹药罪", (GUN_THEFT, GUN_THEFT_WIDE)),
    ("被告人犯抢夺爆炸物罪", (GUN_THEFT, GUN_THEFT_WIDE)),
    ("销售假药罪", FAKE_DRUGS),
    ("生产劣药罪", BAD_DRUGS),
]

# --------------------------------------------------------------------------------------------------- articles
# Class 6: a citation negated around it (right before, right after, or 该罪 / 该条 later in its sentence) is none.
NEGATED_ARTICLES = [
    ("刑法第374条……被告人未走私武器、弹药，不构成该罪", []),
    ("第264条。刑法第三百七十四条规定的情形被告人并不具备，不构成该罪", [264]),
    ("第264条；不适用第65条关于累犯的规定", [264]),
    ("第264条，第六十五条不适用于本案", [264]),
    ("依照第二百六十四条，而非第二百六十三条", [264]),
    ("第266条，并非第224条", [266]),
    ("第234条。被告人不构成第二百三十二条规定之罪", [234]),
    ("第二百六十四条；第六十七条的规定对本案不适用", [264]),
    ("第347条。刑法第348条所列情形，其持有数量未达较大，不构成该罪", [347]),
    ("第264条，不符合刑法第六十七条第一款的规定", [264]),
    ("第275条；并不适用第二百七十六条", [275]),
    ("第238条，排除第239条", [238]),
    ("《刑法》第133条之一；第一百三十三条所定交通肇事的情形，未造成重大事故，不符合该条", [133]),
    ("第二百三十四条，不应适用第二百三十二条", [234]),
]

# ------------------------------------------------------------------------------------------------------ terms
# Class 7: a range quoted from the statute, with its fine, names no sentence: unreadable, not 0 months.
STATUTE_WITH_FINE = [
    "3年以下有期徒刑、拘役或者管制，并处罚金",
    "处三年以下有期徒刑、拘役或者管制，并处罚金",
    "五年以下有期徒刑或者拘役，并处罚金",
    "处十年以上有期徒刑，并处罚金",
    "三年以上七年以下有期徒刑，并处罚金",
    "依照第264条，处三年以下有期徒刑、拘役或者管制，并处罚金。",
    "该罪法定刑：三年以下有期徒刑，并处罚金",
    "并处罚金",
    "处五年以上十年以下有期徒刑，并处罚金；",
    "一年以上七年以下有期徒刑，并处罚金",
]

# Class 8: where the instruction fixes the unit (months), a bare number as the whole answer is that many months.
BARE_MONTHS = [
    ("12", 12),
    ("36", 36),
    ("6", 6),
    ("十八", 18),
    ("刑期：24", 24),
    ("[刑期]9", 9),
    ("答案：15", 15),
    (" 30 ", 30),
    ("7。", 7),
    ("刑期: 四十八", 48),
    ("【刑期】20", 20),
]


@contextlib.contextmanager
def term_instruction(text: str) -> Iterator[None]:
    """The term task's instruction replaced for the block (what every term prompt would then ask)."""
    saved = tasks.INSTRUCTIONS["term"]
    tasks.INSTRUCTIONS["term"] = text
    try:
        yield
    finally:
        tasks.INSTRUCTIONS["term"] = saved


# ------------------------------------------------------------------------------------------------- the checks
def charge_reads_right(case: tuple[str, tuple[str, ...]]) -> bool:
    """The answer is exactly the gold labels, decided by the rules (+2, no judge) and read so by the evaluator."""
    answer, gold = case
    result = rules("charge", answer, charge_gold(*gold))
    return (result.score, result.acc, result.decides) == (2.0, True, True) and eval_charges(answer, gold) == sorted(
        gold
    )


def fragment_reads_right(case: tuple[str, str, list[str]]) -> bool:
    """Not read as the unrelated label: the expected labels (one name each) in the evaluator, -2 in the reward."""
    answer, other, expected = case
    return eval_charges(answer, (other,)) == expected and rules("charge", answer, charge_gold(other)).score == -2.0


def two_golds_read_right(case: tuple[str, tuple[str, ...], list[str]]) -> bool:
    """One name is one label: the most specific gold it fits, +1 (partly right) in the reward and so in evaluation."""
    answer, gold, expected = case
    result = rules("charge", answer, charge_gold(*gold))
    return result.score == 1.0 and eval_charges(answer, gold) == expected


def own_label_reads_right(case: tuple[str, str]) -> bool:
    """A label in its own right is that label: wrong (-2) against a longer gold, right (+2) against itself."""
    answer, longer = case
    name = parse_charges(extract_answer(resp(answer)) or "")
    if len(name) != 1:
        return False
    return (
        rules("charge", answer, charge_gold(longer)).score == -2.0
        and eval_charges(answer, (longer,)) == name
        and rules("charge", answer, charge_gold(name[0])).score == 2.0
    )


def renamed_reads_right(case: tuple[str, tuple[str, ...]]) -> bool:
    """The answer is the gold labels under either name: +2 decided by the rules, the same labels in the evaluator."""
    answer, gold = case
    result = rules("charge", answer, charge_gold(*gold))
    labels = sorted({canonical_charge(g) for g in gold})
    return (result.score, result.acc, result.decides) == (2.0, True, True) and eval_charges(answer, gold) == labels


def article_reads_right(case: tuple[str, list[int]]) -> bool:
    """The articles the answer cites, without the negated ones, in the reward and in the evaluator."""
    answer, expected = case
    view = E.parse_prediction("article", resp(answer))["articles"]
    gold = Gold(text="", articles=tuple(expected) or (374,))
    score = rules("article", answer, gold).score
    return (
        parse_articles(extract_answer(resp(answer)) or "") == expected
        and view == expected
        and (score == (2.0 if expected else -2.0))
    )


def statute_reads_right(answer: str) -> bool:
    """No stated sentence: unreadable (-2) in the reward and None in the evaluator, not 0 months."""
    response = resp(answer)
    return (
        find_term(extract_answer(response) or "") is None
        and rules("term", answer, Gold(text="", term=Term("fixed", 12))).score == -2.0
        and E.parse_prediction("term", response)["term_code"] is None
    )


def bare_months_read_right(case: tuple[str, int]) -> bool:
    """With an instruction that fixes months, a bare number is that many months, in the reward and the evaluator."""
    answer, months = case
    with term_instruction(MONTHS_INSTRUCTION):
        result = rules("term", answer, Gold(text="", term=Term("fixed", months)))
        code = E.parse_prediction("term", resp(answer))["term_code"]
    return (result.score, result.acc) == (0.0, True) and code == M.term_code("fixed", months)


CLASSES: dict[str, tuple[Callable, list]] = {
    "charge 1: 罪名 / colon / bracket introduce a name": (charge_reads_right, INTRODUCED),
    "charge 2: no article, bracket or verb glued to a name": (charge_reads_right, GLUED),
    "charge 3a: a fragment reads as the label with its object": (charge_reads_right, FRAGMENT_RIGHT),
    "charge 3b: a fragment without the object is no label": (fragment_reads_right, FRAGMENT_WRONG),
    "charge 4: one name, two golds": (two_golds_read_right, TWO_GOLDS),
    "charge 5 (issue 24.2): a label is itself": (own_label_reads_right, OWN_LABEL),
    "charge 5b: a renamed label's two names are one": (renamed_reads_right, RENAMED),
    "article: a negated citation is none": (article_reads_right, NEGATED_ARTICLES),
    "term: statute range with a fine is unreadable": (statute_reads_right, STATUTE_WITH_FINE),
    "term: bare number, months fixed by the prompt": (bare_months_read_right, BARE_MONTHS),
}


@pytest.mark.parametrize(
    ("check", "case"), [pytest.param(check, case, id=f"{name}|{case}") for name, (check, cases) in CLASSES.items()
                        for case in cases]
)  # fmt: skip
def test_class_reads_right(check, case):
    """Each case of each misread class reads right, in the reward and in the evaluator alike."""
    assert check(case)


# ------------------------------------------------------------------------------------------ guards: no over-reach
@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("盗窃罪名成立", ["盗窃罪"]),  # 罪名 after a name: the 罪 ends it
        ("罪名：不构成盗窃", []),  # negated after the label word
        ("罪名：无", []),
        ("本案罪名尚难认定", []),
        ("罪名：偷东西", []),  # a bare unknown word is no name
        ("被告人系累犯罪行严重", []),
        ("被告人不符合盗窃罪的构成要件，构成侵占罪", ["侵占罪"]),  # negated 符合
        ("生产、销售不符合安全标准的食品罪", ["生产、销售不符合安全标准的食品罪"]),  # 不符合 inside a label
        ("被告人未触犯盗窃罪", []),
        ("拒不执行[判决、裁定]罪", ["拒不执行判决、裁定罪"]),  # CAIL brackets inside a label
        ("[组织、强迫、引诱、容留、介绍]卖淫罪", [UMBRELLA]),
        ("不构成【盗窃罪】，构成【诈骗罪】", ["诈骗罪"]),  # a bracket does not hide a negation
        ("注：被告人另涉嫌诈骗", ["诈骗罪"]),  # no 罪 anywhere: a stated known name, as before
        ("盗窃、抢夺罪", ["抢夺罪", "盗窃罪"]),  # two labels, not a form of 盗窃、抢夺枪支、弹药、爆炸物罪
        ("盗窃、诈骗、抢夺枪支罪", ["抢夺枪支罪", "盗窃罪", "诈骗罪"]),  # names on their own are never acts left out
        ("犯组织、强迫、引诱、容留、介绍卖淫罪、盗窃罪", ["盗窃罪", UMBRELLA]),
    ],
)
def test_charge_guards(answer, expected):
    """What the new rules must not start reading (each holds before and after)."""
    assert parse_charges(extract_answer(resp(answer)) or "") == expected


def test_renames_are_labels_and_nothing_else_merges():
    """Both names of every rename are labels of charges.txt; every other label is still its own (no chain, no merge)."""
    assert all(old in KNOWN_CHARGES and new in KNOWN_CHARGES for old, new in CHARGE_RENAMES.items())
    assert not set(CHARGE_RENAMES) & set(CHARGE_RENAMES.values())
    assert all(canonical_charge(label) == label for label in KNOWN_CHARGES - set(CHARGE_RENAMES))
    assert len({canonical_charge(label) for label in KNOWN_CHARGES}) == len(KNOWN_CHARGES) - len(CHARGE_RENAMES)


@pytest.mark.parametrize(
    ("answer", "gold", "score"),
    [
        ("被告人张某犯生产、销售、提供假药罪，判处有期徒刑一年，并处罚金人民币五千元。", FAKE_DRUGS[0], 2.0),
        ("被告人张某犯生产、销售假药罪，判处有期徒刑一年，并处罚金人民币五千元。", FAKE_DRUGS[1], 2.0),
        ("被告人张某犯强令、组织他人违章冒险作业罪，判处有期徒刑一年，并处罚金人民币五千元。", FAKE_DRUGS[0], -2.0),
    ],
)
def test_renamed_verdict(answer, gold, score):
    """The verdict's charge part reads a renamed label the same way (the rest of the verdict matches the gold)."""
    info = {"charges": [gold], "term_kind": "fixed", "term_months": 12, "fine": 5000}
    assert rules("verdict", answer, gold_from("verdict", "", info)).score == score


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("依据刑法第264条，被告人构成盗窃罪，不构成抢劫罪", [264]),  # a negation of another crime
        ("被告人不服，依照第264条", [264]),
        ("被告人不构成累犯。依照第264条、第67条", [67, 264]),
        ("第264条；第67条", [67, 264]),
        ("第264条。对于另一起指控，不构成该罪", [264]),  # 该罪 in another sentence
    ],
)
def test_article_guards(answer, expected):
    """Negations elsewhere leave a citation alone."""
    assert parse_articles(extract_answer(resp(answer)) or "") == expected


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("单处罚金", Term("none")),
        ("判处罚金人民币三千元", Term("none")),
        ("罚金五千元", Term("none")),
        ("该罪法定刑为三年以下有期徒刑；本案单处罚金", Term("none")),  # said outright beside a range
        ("有期徒刑一年，并处罚金", Term("fixed", 12, "有期徒刑")),
        ("拘役三个月，并处罚金二千元", Term("fixed", 3, "拘役")),
    ],
)
def test_fine_guards(answer, expected):
    """A fine that is the sentence still reads as no prison; a term with 并处罚金 reads as the term."""
    assert find_term(extract_answer(resp(answer)) or "") == expected


@pytest.mark.parametrize("answer", ["12", "刑期：24", "十八", "[刑期]9"])
def test_bare_number_needs_the_unit(answer):
    """Today's instruction does not fix the unit: a bare number stays unreadable, in the reward and the evaluator."""
    assert not tasks.fixes_months("term")
    assert rules("term", answer, Gold(text="", term=Term("fixed", 12))).score == -2.0
    assert E.parse_prediction("term", resp(answer))["term_code"] is None


@pytest.mark.parametrize(("answer", "expected"), [("12.5", None), ("3-5", None), ("第12", None), ("12年", 144)])
def test_bare_months_only_for_a_whole_number(answer, expected):
    """Months fixed: still no reading of decimals, ranges or other numbers; a stated unit wins."""
    with term_instruction(MONTHS_INSTRUCTION):
        assert E.parse_prediction("term", resp(answer))["term_code"] == expected
    assert not any(tasks.fixes_months(task) for task in tasks.TASKS)  # restored, and no task fixes it today


# ------------------------------------------------------------------------------------- the reward, hybrid mode
@pytest.fixture(scope="module")
def judge():
    """A loopback judge that grades every answer 0: a call is visible in its requests and in the score."""
    with ScriptedJudgeServer(reply="0", model="judge-model") as srv:
        yield srv


@pytest.mark.parametrize(("answer", "gold"), INTRODUCED[:6] + GLUED[:6] + FRAGMENT_RIGHT[:4] + RENAMED[:4])
async def test_hybrid_rules_decide(judge, answer, gold):
    """In hybrid mode these answers are decided by the rules (+2), with no judge call."""
    judge.reset()
    kwargs = {"judge_base_url": judge.base_url, "judge_model": "judge-model", "max_retries": 0, "judge_audit_rate": 0}
    out = await compute_score("legal/charge", resp(answer), "、".join(gold), {"charges": list(gold)}, **kwargs)
    assert (out["task_score"], out["judge_called"], out["rules_used"]) == (2.0, 0.0, 1.0)
    assert judge.requests == []


def main() -> None:
    """Print, per class, how many of its cases read right with the code on the path."""
    for name, (check, cases) in CLASSES.items():
        right = 0
        for case in cases:
            try:
                right += bool(check(case))
            except Exception:  # noqa: BLE001 - old code may lack a function: that case does not read right
                pass
        print(f"{name}\t{right}/{len(cases)}")


if __name__ == "__main__":
    main()
