"""Verdict parsing and building (data.domains.legal.verdict)."""

import pytest

from data.domains.legal.charges import normalize_charges
from data.domains.legal.terms import Term
from data.domains.legal.verdict import VerdictParts, build_verdict, parse_fine, parse_verdict


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("罚金人民币五千元", 5000),
        ("罚金2万元", 20000),
        ("罚金人民币一万五千元", 15000),
        ("并处罚金人民币1,000元", 1000),
        ("并处罚金人民币1000元", 1000),
        ("并处罚金人民币二千元", 2000),
        ("并处罚金人民币两千元", 2000),
        ("罚金1.5万元", 15000),
        ("罚金人民币 3000 元", 3000),
        ("罚金人民币３０００元", 3000),
        ("罚金￥800元", 800),
        ("判处罚金人民币壹万元", 10000),
        (
            "犯盗窃罪，判处有期徒刑一年，并处罚金人民币二千元；犯诈骗罪，判处有期徒刑一年，并处罚金人民币三千元，"
            "决定执行有期徒刑一年六个月，并处罚金人民币五千元",
            5000,
        ),
        ("依法应并处或者单处罚金。判决如下：被告人判处拘役三个月，并处罚金人民币四千元", 4000),
        ("判处有期徒刑一年", None),
        ("并处或者单处罚金", None),
        ("", None),
    ],
)
def test_parse_fine(text: str, expected: int | None) -> None:
    """Fine amounts in yuan; no fine → None."""
    assert parse_fine(text) == expected


@pytest.mark.parametrize(
    ("defendant", "charges", "term", "fine", "expected"),
    [
        (
            "张某",
            ["盗窃"],
            Term("fixed", 18),
            5000,
            "被告人张某犯盗窃罪，判处有期徒刑一年六个月，并处罚金人民币五千元。",
        ),
        ("张某", ["盗窃罪"], Term("fixed", 18), 0, "被告人张某犯盗窃罪，判处有期徒刑一年六个月。"),
        (
            "被告人李某",
            ["危险驾驶"],
            Term("fixed", 3),
            2000,
            "被告人李某犯危险驾驶罪，判处拘役三个月，并处罚金人民币二千元。",
        ),
        (
            "王某",
            ["盗窃", "诈骗", "盗窃罪"],
            Term("fixed", 54),
            15000,
            "被告人王某犯盗窃罪、诈骗罪，判处有期徒刑四年六个月，并处罚金人民币一万五千元。",
        ),
        (
            "赵某",
            ["[组织、强迫、引诱、容留、介绍]卖淫"],
            Term("fixed", 60),
            10000,
            "被告人赵某犯组织、强迫、引诱、容留、介绍卖淫罪，判处有期徒刑五年，并处罚金人民币一万元。",
        ),
        ("孙某", ["故意杀人"], Term("death"), 0, "被告人孙某犯故意杀人罪，判处死刑。"),
        ("孙某", ["抢劫"], Term("life"), 0, "被告人孙某犯抢劫罪，判处无期徒刑。"),
        ("周某", ["盗窃"], Term("none"), 0, "被告人周某犯盗窃罪，免予刑事处罚。"),
        ("周某", ["危险驾驶"], Term("none"), 3000, "被告人周某犯危险驾驶罪，判处罚金人民币三千元。"),
        ("吴某", ["寻衅滋事"], Term("fixed", 12, "管制"), None, "被告人吴某犯寻衅滋事罪，判处管制一年。"),
        ("", ["盗窃"], Term("fixed", 6), 0, "被告人犯盗窃罪，判处有期徒刑六个月。"),
    ],
)
def test_build_verdict_and_parse_back(
    defendant: str, charges: list[str], term: Term, fine: int | None, expected: str
) -> None:
    """The canonical sentence, and parse_verdict reads back what was built."""
    text = build_verdict(defendant, charges, term, fine)  # type: ignore[arg-type]
    assert text == expected
    parts = parse_verdict(text)
    assert parts.charges == normalize_charges(charges)
    assert (parts.term.kind, parts.term.months) == (term.kind, term.months)
    assert parts.fine == (fine or None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "被告人张某犯盗窃罪，判处有期徒刑一年六个月，缓刑二年，并处罚金人民币五千元。",
            VerdictParts(["盗窃罪"], Term("fixed", 18, "有期徒刑"), 5000),
        ),
        (
            "经审理查明……本院认为，被告人构成诈骗罪，依法应处三年以上十年以下有期徒刑，并处罚金。判决如下：\n"
            "一、被告人钱某犯诈骗罪，判处有期徒刑三年，并处罚金人民币三万元。\n二、责令被告人退赔被害人损失。",
            VerdictParts(["诈骗罪"], Term("fixed", 36, "有期徒刑"), 30000),
        ),
        ("被告人无罪", VerdictParts([], Term("none"), None)),
    ],
)
def test_parse_verdict(text: str, expected: VerdictParts) -> None:
    """Charges, term and fine of a verdict text."""
    assert parse_verdict(text) == expected


@pytest.mark.parametrize(
    ("charges", "fine", "message"),
    [([], 0, "at least one charge"), (["罪"], 0, "at least one charge"), (["盗窃"], -5, "fine must be")],
)
def test_build_verdict_rejects_bad_input(charges: list[str], fine: int, message: str) -> None:
    """Empty charges or a negative fine raise ValueError."""
    with pytest.raises(ValueError, match=message):
        build_verdict("张某", charges, Term("fixed", 6), fine)


@pytest.mark.parametrize("text", ["罚金" + "1" * 20000, "罚金" + "9" * 400 + "万元", "并处罚金" + "九" * 300 + "元"])
def test_absurd_fine_is_unreadable(text):
    """A fine too large to be real reads as no fine instead of raising OverflowError."""
    assert parse_fine(text) is None
