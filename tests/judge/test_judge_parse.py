"""Parsers for the judge's answers: grades 0/1/2 and prison-term errors in months."""

from __future__ import annotations

import pytest

from judge.parse import parse_error_months, parse_grade

GRADE_CASES = [
    # plain and marked
    ("2", 2),
    ("0", 0),
    ("1\n", 1),
    ("结果：2", 2),
    ("结果: 1", 1),
    ("完全正确，返回2", 2),
    ("部分正确，得1分", 1),
    ("评分: 0", 0),
    ('{"grade": 2}', 2),
    ('{"score": "1"}', 1),
    ("**2**", 2),
    ("得分为２", 2),
    ("评分：１", 1),
    ("Grade: 0", 0),
    ("最终评分为 2 分。", 2),
    ("得两分", 2),
    ("打分：零", 0),
    ("score: 1.0", 1),
    ("2.", 2),
    ("2分", 2),
    # the original recipe read any '0' as wrong: these all contain a 0 somewhere
    ("根据刑法第264条，盗窃金额2000元，罪名一致。\n结果：2", 2),
    ("预测罪名与标准答案完全一致（盗窃罪），2023年的判决。评分：2", 2),
    ("被告人被判处10个月有期徒刑，预测正确。得分：2", 2),
    ("评分标准：2表示完全正确，1表示部分正确，0表示错误。评分：1", 1),
    ("预测只答对了第20条之外的一个法条，部分正确，1", 1),
    # several grades or none -> None
    ("1或2", None),
    ("结果：1或2", None),
    ("评分：1 或 2", None),
    ("答案正确，2分（满分2，0为错误）", None),
    ("按0-2分评分", None),
    ("2023年", None),
    ("10分", None),
    ("第20条", None),
    ("结果：2年", None),
    ("结果：一审判决", None),
    ("完全正确", None),
    ("", None),
    ("   ", None),
    ("2.5", None),
    ("评分：1。另外评分：2", None),
]


@pytest.mark.parametrize(("text", "expected"), GRADE_CASES)
def test_parse_grade(text, expected):
    """A single grade is read from free text; several grades, quantities or none give None."""
    assert parse_grade(text) == expected


def test_parse_grade_none_input():
    """None reads as no grade."""
    assert parse_grade(None) is None


ERROR_CASES = [
    ("误差：6个月", 6),
    ("误差：1年2个月", 14),  # the original recipe read the first number only: 1
    ("误差为两年", 24),  # Chinese numerals were not read at all
    ("误差：十八个月", 18),
    ("误差：一年零六个月", 18),
    ("误差：六个月", 6),
    ("没有误差", 0),
    ("无误差", 0),
    ("误差为0", 0),
    ("误差：0个月", 0),
    ("误差为零", 0),
    ("两者完全一致，没有误差。", 0),
    ("error: 6 months", 6),
    ("Error: 1 year 2 months", 14),
    ("off by half a year", 6),
    ("相差半年", 6),
    ('{"error_months": 3}', 3),
    ('{"误差": 12}', 12),
    ("误差：６个月", 6),
    ("预测三年六个月，标准三年，相差六个月", 6),
    ("预测刑期为有期徒刑3年，标准为有期徒刑2年，误差：12个月", 12),
    ("误差：6个月（即半年）", 6),
    ("误差约为1.5年", 18),
    ("6个月", 6),
    ("6", 6),
    ("十八", 18),
    ("预测比标准多判了两年", 24),
    # unreadable or ambiguous -> None
    ("误差：无法判断", None),
    ("预测3年，实际3年", None),
    ("误差：6个月。误差：3个月", None),
    ("无法比较", None),
    ("", None),
    ("hello", None),
]


@pytest.mark.parametrize(("text", "expected"), ERROR_CASES)
def test_parse_error_months(text, expected):
    """The error in months is read from Chinese or English text, numerals or digits, years and months combined."""
    assert parse_error_months(text) == expected


def test_parse_error_months_none_input():
    """None reads as unreadable."""
    assert parse_error_months(None) is None
