"""Unit tables for the data pipeline parts: record validation, judgment extraction, split plan, task prompts."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

from data.domains.legal.tasks import TASKS, build_prompt, data_source, parse_tasks, task_of
from data.domains.legal.terms import Term
from data.reader import decode_record
from data.rows import format_articles, format_charges, term_text
from data.sources import SkipRecord, get_parser
from data.sources.base import Case
from data.sources.judgments import clean_verdict, extract_articles, extract_facts, find_verdict
from data.split import fact_key, first_occurrences, plan_split, task_quotas

SAMPLES = pathlib.Path(__file__).resolve().parents[2] / "data" / "samples"


def _reason(source: str, raw: bytes) -> str | None:
    """Skip reason of one raw line, or None when it parses."""
    try:
        get_parser(source)(decode_record(raw), "x:1")
    except SkipRecord as exc:
        return exc.reason
    return None


def _bad_line(name: str, line: int) -> bytes:
    """One raw line (1-based) of a shipped bad-sample file."""
    return (SAMPLES / name).read_bytes().splitlines()[line - 1]


@pytest.mark.parametrize(
    ("line", "reason", "field"),
    [
        (1, "malformed_json", ""),
        (2, "missing_field", "meta"),
        (3, "wrong_type", "meta.relevant_articles[0]"),
        (4, "empty_fact", "fact"),
        (5, "multiple_defendants", "meta.criminals"),
        (6, "wrong_type", "meta.accusation"),
        (7, "wrong_type", "meta.term_of_imprisonment.imprisonment"),
        (8, "not_an_object", ""),
        (9, "blank_line", ""),
        (10, "invalid_value", "meta.term_of_imprisonment.imprisonment"),
        (11, "invalid_value", "meta.relevant_articles"),
        (12, "empty_label", "meta.accusation"),
        (13, "wrong_type", "meta.punish_of_money"),
        (14, "empty_fact", "fact"),
        (15, "invalid_value", "death_penalty and life_imprisonment"),
        (16, "missing_field", "meta.term_of_imprisonment"),
        (17, "no_defendant", "meta.criminals"),
        (18, "bad_encoding", ""),
    ],
)
def test_cail_bad_lines_name_reason_and_field(line, reason, field):
    """Every line of cail2018_bad.jsonl is rejected with its reason; the detail names the field."""
    raw = _bad_line("cail2018_bad.jsonl", line)
    with pytest.raises(SkipRecord) as info:
        get_parser("cail2018")(decode_record(raw), f"cail2018_bad.jsonl:{line}")
    assert info.value.reason == reason
    assert field in info.value.detail


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (1, "no_verdict_section"),
        (2, "multiple_defendants"),
        (3, "no_charges"),
        (4, "no_articles"),
        (5, "unparseable_term"),
        (6, "malformed_json"),
        (7, "missing_field"),
        (8, "wrong_type"),
        (9, "empty_fact"),
    ],
)
def test_judgment_bad_lines_name_reason(line, reason):
    """Every line of judgments_bad.jsonl fails extraction with its own reason."""
    assert _reason("judgments", _bad_line("judgments_bad.jsonl", line)) == reason


@pytest.mark.parametrize("name", ["cail2018_sample.jsonl", "judgments_sample.jsonl"])
def test_every_shipped_sample_line_parses(name):
    """The good sample files have no bad line (the bad cases live in the *_bad files)."""
    source = "cail2018" if name.startswith("cail") else "judgments"
    lines = (SAMPLES / name).read_bytes().splitlines()
    assert len(lines) >= (64 if source == "cail2018" else 12)
    assert [_reason(source, raw) for raw in lines] == [None] * len(lines)


@pytest.mark.parametrize(
    ("meta_change", "expected"),
    [
        ({"accusation": ["[组织、强迫、引诱、容留、介绍]卖淫"]}, ("组织、强迫、引诱、容留、介绍卖淫罪",)),
        ({"accusation": ["拒不执行[判决、裁定]"]}, ("拒不执行判决、裁定罪",)),
        ({"accusation": ["诈骗", "盗窃", "盗窃"]}, ("盗窃罪", "诈骗罪")),
        ({"relevant_articles": [264, 67, 264]}, (67, 264)),
        ({"term_of_imprisonment": {"death_penalty": False, "life_imprisonment": True, "imprisonment": 0}}, "life"),
        ({"term_of_imprisonment": {"death_penalty": True, "life_imprisonment": False, "imprisonment": 0}}, "death"),
        ({"term_of_imprisonment": {"death_penalty": False, "life_imprisonment": False, "imprisonment": 0}}, "none"),
    ],
)
def test_cail_labels_are_normalized(meta_change, expected):
    """Charges lose brackets and gain 罪 (sorted, unique); articles sorted unique; term flags map to kinds."""
    meta = {
        "relevant_articles": [264],
        "accusation": ["盗窃"],
        "punish_of_money": 0,
        "criminals": ["甲某"],
        "term_of_imprisonment": {"death_penalty": False, "life_imprisonment": False, "imprisonment": 6},
    }
    meta.update(meta_change)
    case = get_parser("cail2018")({"fact": "公诉机关指控，被告人甲某……", "meta": meta}, "f:1")
    if "accusation" in meta_change:
        assert case.charges == expected
    elif "relevant_articles" in meta_change:
        assert case.articles == expected
    else:
        assert case.term.kind == expected
    assert case.verdict.startswith("被告人甲某犯")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("依照《中华人民共和国刑法》第二百六十四条、第六十七条第三款、第五十二条之规定", [52, 67, 264]),
        ("依照《中华人民共和国刑事诉讼法》第二百零一条之规定", []),
        ("依照《中华人民共和国刑法》第一百三十三条之一第一款和《中华人民共和国刑事诉讼法》第十五条之规定", [133]),
        ("根据《最高人民法院关于审理盗窃案件具体应用法律若干问题的解释》第一条", []),
        ("依照《刑法》第264条、第67条之规定", [67, 264]),
        ("《中华人民共和国刑法》第二百九十三条第一款第（一）项、第（三）项", [293]),
        ("依照有关法律规定", []),
    ],
)
def test_extract_articles_only_counts_criminal_law(text, expected):
    """Only 《中华人民共和国刑法》/《刑法》 citations count; 款/项 numbers and other laws do not."""
    assert extract_articles(text) == expected


JUDGMENT = "\n".join(
    [
        "青禾县人民法院",
        "刑 事 判 决 书",
        "（2019）青0321刑初1号",
        "公诉机关青禾县人民检察院。",
        "被告人甲某，男，1990年1月1日出生。",
        "青禾县人民检察院指控被告人甲某犯盗窃罪，于2019年1月2日向本院提起公诉。现已审理终结。",
        "{facts}",
        "本院认为，被告人甲某的行为已构成盗窃罪。依照《中华人民共和国刑法》第二百六十四条之规定，判决如下：",
        "被告人甲某犯盗窃罪，判处有期徒刑六个月，并处罚金人民币一千元。",
        "（刑期从判决执行之日起计算，即自2019年1月1日起至2019年6月30日止。）",
        "如不服本判决，可在接到判决书的第二日起十日内提出上诉。",
        "审判员　乙某",
    ]
)


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        ("经审理查明，2018年12月，被告人甲某窃得手机一部。", "2018年12月，被告人甲某窃得手机一部。"),
        ("经审理查明：\n一、2018年12月，被告人甲某窃得手机一部。", "一、2018年12月，被告人甲某窃得手机一部。"),
        ("公诉机关指控，2018年12月，被告人甲某窃得手机一部。", "公诉机关指控，2018年12月，被告人甲某窃得手机一部。"),
    ],
)
def test_facts_start_after_header_and_stop_before_reasoning(facts, expected):
    """Facts: after 经审理查明 (or after 审理终结 when absent), before 本院认为."""
    assert extract_facts(JUDGMENT.format(facts=facts)) == expected


def test_verdict_text_is_cut_at_the_appeal_notice_and_cleaned():
    """The verdict runs from 判决如下 to 如不服本判决; execution-date notes are dropped from the gold text."""
    found = find_verdict(JUDGMENT.format(facts="经审理查明，某事实。"))
    assert found is not None
    assert clean_verdict(found[1]) == "被告人甲某犯盗窃罪，判处有期徒刑六个月，并处罚金人民币一千元。"


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("被告人张某窃得手机。", "被告人张某窃得手机。", True),
        ("被告人张某 窃得手机。\n", "被告人张某窃得手机。", True),
        ("被告人张某窃得手机１部。", "被告人张某窃得手机1部。", True),
        ("被告人张某窃得手机。", "被告人李某窃得手机。", False),
    ],
)
def test_fact_key_ignores_whitespace_and_width(a, b, same):
    """Dedup hash: whitespace and full-width forms do not make two facts different."""
    assert (fact_key(a) == fact_key(b)) is same


def test_first_occurrences_keeps_the_first_of_each_key():
    """Later repeats of a key are marked as duplicates."""
    keys = np.array([5, 3, 5, 9, 3, 5], dtype=np.uint64)
    assert first_occurrences(keys).tolist() == [True, True, False, True, False, False]


@pytest.mark.parametrize(
    ("size", "n_tasks", "expected"),
    [(10, 4, [3, 3, 2, 2]), (8, 4, [2, 2, 2, 2]), (3, 4, [1, 1, 1, 0]), (0, 2, [0, 0]), (7, 1, [7])],
)
def test_task_quotas_are_even(size, n_tasks, expected):
    """Items per task differ by at most one; the remainder goes to the first tasks."""
    assert task_quotas(size, n_tasks) == expected


@pytest.mark.parametrize(
    ("n_cases", "train_size", "test_size", "train_cases", "test_cases"),
    [
        (100, None, None, 80, 20),
        (100, 40, 20, 10, 5),
        (10, 100, 8, 8, 2),
        (10, None, 0, 10, 0),
        (1, None, None, 1, 0),
    ],
)
def test_plan_split_is_case_level_and_disjoint(n_cases, train_size, test_size, train_cases, test_cases):
    """Each case lands in at most one split; case counts follow the sizes (ceil(size / tasks)) and availability."""
    plan = plan_split(n_cases, 4, seed=0, train_size=train_size, test_size=test_size)
    assert int((plan.split == 0).sum()) == train_cases
    assert int((plan.split == 1).sum()) == test_cases
    again = plan_split(n_cases, 4, seed=0, train_size=train_size, test_size=test_size)
    assert plan.split.tolist() == again.split.tolist() and plan.rank.tolist() == again.rank.tolist()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("charge,article,term,verdict", TASKS),
        ("verdict,charge", ("charge", "verdict")),
        (" term , term ", ("term",)),
    ],
)
def test_parse_tasks(text, expected):
    """Comma lists become canonical-order tuples."""
    assert parse_tasks(text) == expected


@pytest.mark.parametrize("text", ["", "charge,sentence", ","])
def test_parse_tasks_rejects_bad_lists(text):
    """Unknown or missing task names are errors that list the valid names."""
    with pytest.raises(ValueError, match="charge, article, term, verdict"):
        parse_tasks(text)


@pytest.mark.parametrize("task", TASKS)
def test_data_source_round_trip(task):
    """legal/<task> both ways."""
    assert task_of(data_source(task)) == task


@pytest.mark.parametrize(
    ("task", "must_contain"),
    [
        ("charge", "罪名"),
        ("article", "《中华人民共和国刑法》"),
        ("term", "缓刑不是刑期"),
        ("verdict", "罚金"),
    ],
)
@pytest.mark.parametrize("template", ["base", "chat"])
def test_prompts_ask_for_think_answer_and_say_what_to_answer(task, must_contain, template):
    """Each prompt names the answer content, the <think>/<answer> format and carries the facts last."""
    messages = build_prompt(task, "  被告人甲某窃得手机一部。 ", template)
    assert [m["role"] for m in messages] == (["user"] if template == "base" else ["system", "user"])
    user = messages[-1]["content"]
    assert must_contain in user and "<think>" in user and "<answer>" in user
    assert user.endswith("案件事实：\n被告人甲某窃得手机一部。")
    assert json.loads(json.dumps(messages)) == messages


@pytest.mark.parametrize(
    ("term", "fine", "expected"),
    [
        (Term("fixed", 18, "有期徒刑"), 5000, "有期徒刑一年六个月"),
        (Term("fixed", 5, "拘役"), 0, "拘役五个月"),
        (Term("fixed", 12, "管制"), 0, "管制一年"),
        (Term("fixed", 42), 0, "有期徒刑三年六个月"),
        (Term("life"), 0, "无期徒刑"),
        (Term("death"), 20000, "死刑"),
        (Term("none"), 0, "免予刑事处罚"),
        (Term("none"), 2000, "单处罚金"),
    ],
)
def test_term_gold_text(term, fine, expected):
    """Term gold: format_term, and 单处罚金 (not 免予刑事处罚) when only a fine was imposed."""
    case = Case("c", "事实", "甲某", ("盗窃罪",), (264,), term, fine, "被告人甲某犯盗窃罪。")
    assert term_text(case) == expected


@pytest.mark.parametrize(
    ("charges", "articles", "charge_text", "article_text"),
    [
        (("盗窃罪",), (264,), "盗窃罪", "第264条"),
        (("盗窃罪", "诈骗罪"), (67, 264, 266), "盗窃罪、诈骗罪", "第67条、第264条、第266条"),
    ],
)
def test_charge_and_article_gold_text(charges, articles, charge_text, article_text):
    """Charges joined by 、; articles as 第N条 in Arabic numerals, ascending, joined by 、."""
    assert format_charges(charges) == charge_text
    assert format_articles(articles) == article_text
