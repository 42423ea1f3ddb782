"""Charge names (data.domains.legal.charges)."""

from pathlib import Path

import pytest

from data.domains.legal.charges import (
    CHARGES_FILE,
    KNOWN_CHARGES,
    align_charges,
    canonical_charge,
    is_known_charge,
    load_charges,
    normalize_charge,
    normalize_charges,
    parse_charges,
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("盗窃", "盗窃罪"),
        ("盗窃罪", "盗窃罪"),
        ("盗窃罪罪", "盗窃罪"),
        (" 盗 窃 ", "盗窃罪"),
        ("“盗窃罪”。", "盗窃罪"),
        ("[组织、强迫、引诱、容留、介绍]卖淫", "组织、强迫、引诱、容留、介绍卖淫罪"),  # brackets stripped as CAIL does
        ("拒不执行[判决、裁定]", "拒不执行判决、裁定罪"),
        ("［拒不执行判决、裁定］罪", "拒不执行判决、裁定罪"),  # full-width brackets
        ("偷越国（边）境", "偷越国(边)境罪"),  # full-width parentheses → half-width
        ("走私、贩卖、运输、制造毒品", "走私、贩卖、运输、制造毒品罪"),  # 、 kept
        ("罪", ""),
        ("", ""),
    ],
)
def test_normalize_charge(name: str, expected: str) -> None:
    """Normalization strips brackets, whitespace and edge punctuation and ends in exactly one 罪."""
    assert normalize_charge(name) == expected


def test_normalize_charges_dedups_and_sorts() -> None:
    """Normalized, unique, sorted; empty names dropped."""
    assert normalize_charges(["诈骗", "盗窃罪", "盗窃", " ", "诈骗罪"]) == ["盗窃罪", "诈骗罪"]


@pytest.mark.parametrize(
    "name",
    [
        "盗窃",
        "诈骗",
        "故意伤害",
        "危险驾驶",
        "交通肇事",
        "抢劫",
        "寻衅滋事",
        "走私、贩卖、运输、制造毒品",
        "容留他人吸毒",
        "非法持有毒品",
        "开设赌场",
        "聚众斗殴",
        "故意杀人",
        "强奸",
        "信用卡诈骗",
        "合同诈骗",
        "职务侵占",
        "贪污",
        "受贿",
        "行贿",
        "非法吸收公众存款",
        "[组织、强迫、引诱、容留、介绍]卖淫",
        "拒不执行[判决、裁定]",
        "妨害公务",
        "非法拘禁",
        "敲诈勒索",
        "掩饰、隐瞒犯罪所得、犯罪所得收益",
        "故意毁坏财物",
        "失火",
        "放火",
        "滥伐林木",
        "盗伐林木",
        "非法采矿",
        "赌博",
        "伪造、变造、买卖国家机关公文、证件、印章",
        "重婚",
        "虐待",
        "遗弃",
        "帮助信息网络犯罪活动",
        "经济犯",
    ],
)
def test_known_charges_cover_common_labels(name: str) -> None:
    """CAIL-style labels (with or without 罪 or brackets) are known."""
    assert is_known_charge(name)


def test_known_charges_shape() -> None:
    """About the CAIL label set or more; every label normalized."""
    assert len(KNOWN_CHARGES) >= 200
    assert all(c == normalize_charge(c) and c.endswith("罪") and "[" not in c for c in KNOWN_CHARGES)
    assert not is_known_charge("非法买卖外汇")


def test_load_charges_reports_file_and_line(tmp_path: Path) -> None:
    """A user-extended list loads; a bad line names file and line."""
    good = tmp_path / "good.txt"
    good.write_text("# mine\n\n非法买卖外汇\n盗窃罪\n", encoding="utf-8")
    assert load_charges(good) == frozenset({"非法买卖外汇罪", "盗窃罪"})
    bad = tmp_path / "bad.txt"
    bad.write_text("盗窃\n罪\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.txt:2"):
        load_charges(bad)
    assert load_charges(CHARGES_FILE) == KNOWN_CHARGES


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("盗窃罪、诈骗罪", ["盗窃罪", "诈骗罪"]),
        ("盗窃罪", ["盗窃罪"]),
        ("盗窃", ["盗窃罪"]),  # bare known label
        ("盗窃、诈骗", ["盗窃罪", "诈骗罪"]),
        ("盗窃、诈骗罪", ["盗窃罪", "诈骗罪"]),  # list sharing one 罪
        ("被告人张某犯盗窃罪，判处有期徒刑一年", ["盗窃罪"]),
        ("罪名：故意伤害罪；寻衅滋事罪", ["寻衅滋事罪", "故意伤害罪"]),
        ("<answer>危险驾驶罪。</answer>", ["危险驾驶罪"]),
        ("信用卡诈骗罪", ["信用卡诈骗罪"]),  # longest label, not 诈骗罪
        ("合同诈骗罪和诈骗罪", ["合同诈骗罪", "诈骗罪"]),
        ("组织、强迫、引诱、容留、介绍卖淫罪", ["组织、强迫、引诱、容留、介绍卖淫罪"]),  # 、 inside a label
        ("[组织、强迫、引诱、容留、介绍]卖淫罪", ["组织、强迫、引诱、容留、介绍卖淫罪"]),
        ("犯组织、强迫、引诱、容留、介绍卖淫罪、盗窃罪", ["盗窃罪", "组织、强迫、引诱、容留、介绍卖淫罪"]),
        ("走私、贩卖、运输、制造毒品罪", ["走私、贩卖、运输、制造毒品罪"]),
        ("犯掩饰、隐瞒犯罪所得、犯罪所得收益罪", ["掩饰、隐瞒犯罪所得、犯罪所得收益罪"]),
        ("被告人犯拒不执行判决、裁定罪", ["拒不执行判决、裁定罪"]),
        ("犯抢劫、盗窃罪", ["抢劫罪", "盗窃罪"]),
        ("其行为已构成盗窃罪。", ["盗窃罪"]),
        ("被告人以营利为目的开设赌场供人赌博，犯开设赌场罪", ["开设赌场罪"]),  # no bare 赌博 once a 罪 is named
        ("犯偷越国（边）境罪", ["偷越国(边)境罪"]),
        ("盗 窃 罪", ["盗窃罪"]),
        # Unknown charges after 犯 / 构成 / 罪名 are still returned, normalized.
        ("被告人犯非法买卖外汇罪", ["非法买卖外汇罪"]),
        ("被告人犯盗窃罪和非法买卖外汇罪", ["盗窃罪", "非法买卖外汇罪"]),
        ("罪名：非法买卖外汇罪，逃汇罪", ["逃汇罪", "非法买卖外汇罪"]),
        ("犯多次盗窃罪", ["盗窃罪"]),  # a known label inside wins
        # Partial selective charges (选择性罪名) as courts write them are read as written.
        ("贩卖毒品罪", ["贩卖毒品罪"]),
        ("容留卖淫罪", ["容留卖淫罪"]),
        ("被告人犯贩卖、运输毒品罪", ["贩卖、运输毒品罪"]),
        ("盗窃罪、贩卖毒品罪", ["盗窃罪", "贩卖毒品罪"]),
        ("运输毒品", ["运输毒品罪"]),
        ("侵犯著作权罪", ["侵犯著作权罪"]),  # 侵犯 is not 犯
        ("被告人犯侵犯公民个人信息罪", ["侵犯公民个人信息罪"]),
        ("被告人系累犯罪行严重", []),
        # Not charges.
        ("犯罪嫌疑人张某于某日作案", []),
        ("系主犯，在共同犯罪中起主要作用", []),
        ("依法应数罪并罚，犯数罪", []),
        ("犯上述罪", []),
        ("其行为构成犯罪", []),
        ("", []),
        ("我不知道", []),
    ],
)
def test_parse_charges(text: str, expected: list[str]) -> None:
    """Charges named in free text, normalized and sorted."""
    assert parse_charges(text) == expected


def test_parse_charges_returns_fresh_list() -> None:
    """Callers may mutate the result without touching the cache."""
    first = parse_charges("盗窃罪")
    first.append("x")
    assert parse_charges("盗窃罪") == ["盗窃罪"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("贩卖毒品", "走私、贩卖、运输、制造毒品罪"),
        ("贩卖、运输毒品罪", "走私、贩卖、运输、制造毒品罪"),
        ("容留卖淫罪", "引诱、容留、介绍卖淫罪"),  # the most specific label (issue 16)
        ("引诱、容留、介绍卖淫罪", "引诱、容留、介绍卖淫罪"),  # a label of its own stays
        ("侮辱尸体", "盗窃、侮辱尸体罪"),
        ("盗窃", "盗窃罪"),
        ("非法买卖外汇", "非法买卖外汇罪"),
    ],
)
def test_canonical_charge(name: str, expected: str) -> None:
    """Partial selective forms map to the full label; other names are only normalized."""
    assert canonical_charge(name) == expected
    assert is_known_charge(name) is (expected != "非法买卖外汇罪")


UMBRELLA = "组织、强迫、引诱、容留、介绍卖淫罪"


@pytest.mark.parametrize(
    ("names", "gold", "expected"),
    [
        (["容留卖淫罪"], [UMBRELLA], [UMBRELLA]),  # fits the gold
        (["容留卖淫罪"], [], ["引诱、容留、介绍卖淫罪"]),  # no gold: the most specific label
        (["容留卖淫罪"], ["盗窃罪"], ["引诱、容留、介绍卖淫罪"]),
        (["盗窃罪", "非法买卖外汇罪"], ["盗窃罪"], ["盗窃罪", "非法买卖外汇罪"]),  # unknown names kept
        (["盗窃罪"], ["盗窃、侮辱尸体罪"], ["盗窃罪"]),  # a two-character label is no partial form of another
        (["纵火"], ["放火罪"], ["放火罪"]),
        (["", "罪"], ["盗窃罪"], []),
    ],
)
def test_align_charges(names, gold, expected):
    """Written names → labels, a partial form of a gold label counting as that label."""
    assert align_charges(names, gold) == expected
