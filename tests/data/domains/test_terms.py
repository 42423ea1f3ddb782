"""Prison-term parsing and formatting (data.domains.legal.terms)."""

import pytest

from data.domains.legal.terms import Term, cail_code, find_term, format_term, parse_term, term_from_cail, term_to_cail

FIXED = "fixed"


@pytest.mark.parametrize(
    ("text", "kind", "months"),
    [
        # Fixed terms, Chinese numerals.
        ("有期徒刑三年六个月", FIXED, 42),
        ("有期徒刑一年零六个月", FIXED, 18),
        ("有期徒刑一年零十个月", FIXED, 22),
        ("有期徒刑两年", FIXED, 24),
        ("有期徒刑十二个月", FIXED, 12),
        ("有期徒刑十年", FIXED, 120),
        ("有期徒刑十五年", FIXED, 180),
        ("有期徒刑二十五年", FIXED, 300),
        ("有期徒刑一年又六个月", FIXED, 18),
        ("判处三年有期徒刑", FIXED, 36),
        ("徒刑八个月", FIXED, 8),
        ("判处被告人有期徒刑3年", FIXED, 36),
        ("<answer>有期徒刑一年，缓刑一年六个月</answer>", FIXED, 12),
        # Fixed terms, Arabic numerals.
        ("有期徒刑3年6个月", FIXED, 42),
        ("有期徒刑1年2个月", FIXED, 14),  # the original parser read 1
        ("有期徒刑1年零6个月", FIXED, 18),
        ("有期徒刑１年６个月", FIXED, 18),
        ("有期徒刑 1 年 6 个月", FIXED, 18),
        ("有期徒刑1年6月", FIXED, 18),
        # Bare answers (no penalty word).
        ("三年六个月", FIXED, 42),
        ("一年零六个月", FIXED, 18),
        ("两年", FIXED, 24),
        ("十二个月", FIXED, 12),
        ("3年6个月", FIXED, 42),
        ("六个月", FIXED, 6),
        ("1年2个月", FIXED, 14),
        ("刑期：36个月", FIXED, 36),
        ("<answer>一年半</answer>", FIXED, 18),
        # 拘役 / 管制.
        ("拘役五个月", FIXED, 5),
        ("拘役5个月", FIXED, 5),
        ("判处拘役一个月", FIXED, 1),
        ("管制一年", FIXED, 12),
        ("管制六个月", FIXED, 6),
        # Probation is never the term.
        ("判处有期徒刑三年，缓刑五年", FIXED, 36),
        ("判处有期徒刑二年，宣告缓刑三年", FIXED, 24),
        ("判处拘役四个月，缓刑六个月，并处罚金人民币二千元", FIXED, 4),
        ("有期徒刑一年，缓刑考验期为两年", FIXED, 12),
        ("缓刑二年", "none", 0),
        ("宣告缓刑三年", "none", 0),
        # Life, death, none.
        ("无期徒刑", "life", 0),
        ("无期", "life", 0),
        ("判处无期徒刑，剥夺政治权利终身", "life", 0),
        ("死刑", "death", 0),
        ("死刑缓期二年执行", "death", 0),
        ("判处死刑，缓期二年执行，剥夺政治权利终身", "death", 0),
        ("死缓", "death", 0),
        ("免予刑事处罚", "none", 0),
        ("被告人张某犯盗窃罪，免予刑事处罚。", "none", 0),
        ("被告人张某犯盗窃罪。", "none", 0),
        ("判处罚金人民币五千元", "none", 0),
        ("", "none", 0),
        # Other durations around the term are not the term.
        ("剥夺政治权利三年", "none", 0),
        ("判处有期徒刑十年，剥夺政治权利二年", FIXED, 120),
        ("三年前曾因盗窃被处罚", "none", 0),
        ("被告人于2019年3月5日被刑事拘留，判处有期徒刑十个月（刑期自2019年3月5日起至2020年1月4日止）", FIXED, 10),
        # 数罪并罚: the decided term wins, else the first.
        ("犯盗窃罪，判处有期徒刑三年；犯诈骗罪，判处有期徒刑二年，决定执行有期徒刑四年六个月", FIXED, 54),
        ("数罪并罚，决定执行有期徒刑五年", FIXED, 60),
        ("总和刑期有期徒刑八年，决定执行有期徒刑六年", FIXED, 72),
        ("总和刑期有期徒刑八年", FIXED, 96),
        ("犯故意杀人罪，判处死刑；犯抢劫罪，判处有期徒刑十年，决定执行死刑", "death", 0),
        ("判处有期徒刑三年；判处拘役五个月", FIXED, 36),
        # A statutory range quoted before the verdict is not a sentence.
        ("处十年以上有期徒刑、无期徒刑或者死刑", "none", 0),
        ("依法应处三年以上十年以下有期徒刑。判决如下：被告人犯抢劫罪，判处有期徒刑五年", FIXED, 60),
        ("可处无期徒刑或者死刑。判决如下：被告人判处有期徒刑十五年", FIXED, 180),
    ],
)
def test_parse_term(text: str, kind: str, months: int) -> None:
    """Each form reads as the worked-out kind and month count."""
    term = parse_term(text)
    assert (term.kind, term.months) == (kind, months)


@pytest.mark.parametrize(
    ("text", "penalty"),
    [
        ("有期徒刑三年", "有期徒刑"),
        ("拘役五个月", "拘役"),
        ("管制一年", "管制"),
        ("两年", ""),
        ("六个月的拘役", "拘役"),
        ("徒刑二年", "有期徒刑"),
        ("无期徒刑", ""),
    ],
)
def test_parse_term_penalty(text: str, penalty: str) -> None:
    """The penalty word is kept when stated, empty when not."""
    assert parse_term(text).penalty == penalty


@pytest.mark.parametrize(
    ("term", "text"),
    [
        (Term(FIXED, 42), "有期徒刑三年六个月"),
        (Term(FIXED, 42, "有期徒刑"), "有期徒刑三年六个月"),
        (Term(FIXED, 12), "有期徒刑一年"),
        (Term(FIXED, 24), "有期徒刑二年"),
        (Term(FIXED, 6), "有期徒刑六个月"),
        (Term(FIXED, 5), "拘役五个月"),  # under 6 months with no penalty given → 拘役
        (Term(FIXED, 1), "拘役一个月"),
        (Term(FIXED, 5, "有期徒刑"), "有期徒刑五个月"),
        (Term(FIXED, 12, "管制"), "管制一年"),
        (Term(FIXED, 8, "拘役"), "拘役八个月"),
        (Term(FIXED, 300), "有期徒刑二十五年"),
        (Term(FIXED, 0), "拘役零个月"),
        (Term("life"), "无期徒刑"),
        (Term("death"), "死刑"),
        (Term("none"), "免予刑事处罚"),
    ],
)
def test_format_term(term: Term, text: str) -> None:
    """Canonical Chinese text of each term."""
    assert format_term(term) == text


@pytest.mark.parametrize(
    "term",
    [Term(FIXED, m) for m in (0, 1, 5, 6, 11, 12, 13, 18, 22, 36, 42, 119, 120, 121, 180, 240, 300)]
    + [Term(FIXED, 4, "拘役"), Term(FIXED, 12, "管制"), Term(FIXED, 5, "有期徒刑"), Term(FIXED, 9, "拘役")]
    + [Term("life"), Term("death"), Term("none")],
)
def test_format_parse_round_trip(term: Term) -> None:
    """format_term(parse_term(format_term(t))) == format_term(t), and the months survive."""
    text = format_term(term)
    parsed = parse_term(text)
    assert format_term(parsed) == text
    assert (parsed.kind, parsed.months) == (term.kind, term.months)


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ({"death_penalty": False, "life_imprisonment": False, "imprisonment": 10}, Term(FIXED, 10)),
        ({"death_penalty": False, "life_imprisonment": False, "imprisonment": 0}, Term("none")),
        ({"death_penalty": False, "life_imprisonment": True, "imprisonment": 0}, Term("life")),
        ({"death_penalty": True, "life_imprisonment": False, "imprisonment": 0}, Term("death")),
        ({"death_penalty": True, "life_imprisonment": True, "imprisonment": 0}, Term("death")),  # death wins
        ({"death_penalty": False, "life_imprisonment": True, "imprisonment": 120}, Term("life")),
        ({"imprisonment": 36}, Term(FIXED, 36)),  # missing flags read as False
        ({"death_penalty": 0, "life_imprisonment": 0, "imprisonment": 12.0}, Term(FIXED, 12)),
    ],
)
def test_term_from_cail(meta: dict, expected: Term) -> None:
    """CAIL2018 term_of_imprisonment dicts map to Term."""
    assert term_from_cail(meta) == expected


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ({"death_penalty": False, "life_imprisonment": False}, "imprisonment is missing"),
        ({"death_penalty": False, "life_imprisonment": False, "imprisonment": -1}, "imprisonment must be"),
        ({"death_penalty": False, "life_imprisonment": False, "imprisonment": "12"}, "imprisonment must be"),
        ({"death_penalty": "yes", "life_imprisonment": False, "imprisonment": 0}, "death_penalty must be a bool"),
        ([1, 2], "must be a dict"),
    ],
)
def test_term_from_cail_rejects_bad_input(meta: object, message: str) -> None:
    """Malformed meta raises ValueError naming the field."""
    with pytest.raises(ValueError, match=message):
        term_from_cail(meta)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("term", "code"), [(Term("death"), -2), (Term("life"), -1), (Term(FIXED, 18), 18), (Term("none"), 0)]
)
def test_cail_code_and_back(term: Term, code: int) -> None:
    """CAIL scorer coding, and term_to_cail inverts term_from_cail."""
    assert cail_code(term) == code
    assert term_from_cail(term_to_cail(term)) == term


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "prison"},
        {"kind": "fixed", "months": -1},
        {"kind": "life", "months": 12},
        {"kind": "fixed", "months": 12, "penalty": "死刑"},
        {"kind": "death", "penalty": "有期徒刑"},
    ],
)
def test_term_validation(kwargs: dict) -> None:
    """Impossible Term values are rejected."""
    with pytest.raises(ValueError, match="Term"):
        Term(**kwargs)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("有期徒刑三年", Term("fixed", 36, "有期徒刑")),
        ("免予刑事处罚", Term("none")),
        ("单处罚金人民币二千元", Term("none")),
        ("判处罚金人民币五千元", Term("none")),
        ("被告人犯盗窃罪", None),
        ("", None),
        ("我不知道", None),
    ],
)
def test_find_term_tells_no_term_from_no_prison(text, expected):
    """find_term: None only when no term is named; exemption and fine-only sentences are Term('none')."""
    assert find_term(text) == expected
    assert parse_term(text) == (expected or Term("none"))
