"""Chinese numerals and durations (judge.cn_numerals)."""

import pytest

from judge.cn_numerals import cn_to_int, cn_to_number, find_durations, parse_duration_months, to_halfwidth


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("三", 3),
        ("十", 10),
        ("十二", 12),
        ("二十", 20),
        ("二十五", 25),
        ("一十二", 12),
        ("两", 2),
        ("两百", 200),
        ("一百零八", 108),
        ("零", 0),
        ("零十", 10),  # as in 一年零十个月
        ("零六", 6),
        ("一万五千", 15000),
        ("一万五", 15000),
        ("壹万伍仟", 15000),
        ("贰拾", 20),
        ("廿", 20),
        ("二〇一九", 2019),
        ("12", 12),
        ("１２", 12),  # full-width digits
        (" 7 ", 7),
        ("1,000", 1000),
        ("2万", 20000),
        ("1.5万", 15000),
        ("一点五", None),  # not a whole number
        ("1.5", None),
        ("", None),
        ("abc", None),
        ("年", None),
    ],
)
def test_cn_to_int(text: str, expected: int | None) -> None:
    """Each numeral form reads as the worked-out integer (None when not a whole number)."""
    assert cn_to_int(text) == expected


@pytest.mark.parametrize(("text", "expected"), [("一点五", 1.5), ("1.5", 1.5), ("三", 3.0), ("x", None)])
def test_cn_to_number(text: str, expected: float | None) -> None:
    """Decimals survive in cn_to_number."""
    assert cn_to_number(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1年2个月", 14),  # the original parser read 1
        ("两年", 24),
        ("六个月", 6),
        ("一年零六个月", 18),
        ("一年零十个月", 22),
        ("十八个月", 18),
        ("十二个月", 12),
        ("二十个月", 20),
        ("3年", 36),
        ("3年6个月", 42),
        ("3年6月", 42),
        ("1年零6个月", 18),
        ("一年又六个月", 18),
        ("１年６个月", 18),
        ("1 年 6 个月", 18),
        ("半年", 6),
        ("一年半", 18),
        ("1.5年", 18),
        ("三个半月", 4),  # halves round up
        ("二十年", 240),
        ("十五年", 180),
        ("误差：两个月", 2),
        ("error: 6 months", 6),
        ("1 year 2 months", 14),
        ("2 years", 24),
        ("预测偏差约为0个月", 0),
        ("没有数字", None),
        ("", None),
        ("2019年6月1日", None),  # a date, not a duration
        ("6月5日", None),
        ("三年级", None),
        ("2019年案发，判处六个月", 6),  # first real duration after a year
    ],
)
def test_parse_duration_months(text: str, expected: int | None) -> None:
    """First duration in the text, in months."""
    assert parse_duration_months(text) == expected


def test_find_durations_positions_and_dates() -> None:
    """All durations with their spans; calendar dates are skipped."""
    text = "于2020年3月5日判处有期徒刑一年零六个月，缓刑二年"
    found = find_durations(text)
    assert [(text[s:e], m) for s, e, m in found] == [("一年零六个月", 18), ("二年", 24)]


def test_to_halfwidth_keeps_chinese_punctuation() -> None:
    """Full-width ASCII becomes half-width; 、 and 。 stay."""
    assert to_halfwidth("１２ＡＢ（边）、。：") == "12AB(边)、。:"


@pytest.mark.parametrize(
    "text",
    ["9" * 400 + "个月", "9" * 400 + " years", "一" * 5000 + "年", "9" * 70 + "年6个月", "九" * 80 + "个月"],
)
def test_absurd_numbers_are_no_duration(text: str) -> None:
    """Numbers too large for any sentence read as nothing, never raise (float overflow) and stay fast."""
    assert find_durations(text) == ()
    assert parse_duration_months(text) is None


@pytest.mark.parametrize("text", ["1" * 400, "一" * 5000, "9" * 65])
def test_cn_to_number_bounds(text: str) -> None:
    """Over-long or huge numerals are None (cn_to_int would otherwise raise OverflowError on inf)."""
    assert cn_to_number(text) is None
    assert cn_to_int(text) is None
