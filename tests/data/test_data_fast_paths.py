"""The fast paths of data.prepare (issue 16) give exactly what the plain code gives: NFKC, record checks, rows."""

from __future__ import annotations

import copy
import json
import pathlib
import re
import sys
import unicodedata

import msgspec
import pyarrow as pa
import pytest

from data.domains.legal.tasks import TASKS
from data.reader import decode_record
from data.rows import ROW_SCHEMA, RowBatch, build_rows
from data.sources import SkipRecord, get_parser
from data.sources.cail2018 import _parse, _stripped_utf8, parse_record, parse_rows_line, parse_scan_line
from data.split import _nfkc, normalize_fact

REPO = pathlib.Path(__file__).resolve().parents[2]
SAMPLES = REPO / "data" / "samples"
CAIL_LINES = (SAMPLES / "cail2018_sample.jsonl").read_bytes().splitlines()
BAD_LINES = (SAMPLES / "cail2018_bad.jsonl").read_bytes().splitlines()


def test_fast_nfkc_equals_unicodedata_on_every_code_point():
    """_nfkc == NFKC for every code point alone, after a base letter and before a combining mark."""
    for cp in range(sys.maxunicode + 1):
        if 0xD800 <= cp < 0xE000:
            continue
        c = chr(cp)
        for text in (c, f"甲{c}\u0301，", f"e{c}"):
            assert _nfkc(text) == unicodedata.normalize("NFKC", text), hex(cp)


@pytest.mark.parametrize(
    "text",
    [
        "被告人张某（男，１９８０年生）于２０１８年３月窃得现金１２００元。",
        "e\u0301 é ｅ\u0301 Å Å ﬁ ① ㎡ ℃ Ⅲ … \u3000 \u00a0 \u2028 \x1c \x85",
        "가각 \u1100\u1161 \u1100 \u1161",  # Hangul: syllables and jamo that compose
        "a \u0301 b\t\u0301\n\u0327\u0301c",  # whitespace between a base and its marks
    ],
)
def test_normalize_fact_equals_the_plain_definition(text):
    """normalize_fact == re.sub(r"\\s+", "", NFKC(text)), including marks split from their base by whitespace."""
    assert normalize_fact(text) == re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def _variants() -> list[object]:
    """Good sample records and one-field mutations of them, each either valid or invalid in some way."""
    good = [json.loads(line) for line in CAIL_LINES]
    base = good[1]
    changes = [
        ("fact", "  \u3000 "),
        ("fact", None),
        ("fact", 5),
        ("meta.punish_of_money", True),
        ("meta.punish_of_money", -1),
        ("meta.punish_of_money", 10**12),
        ("meta.punish_of_money", 10**12 + 1),
        ("meta.punish_of_money", 1.0),
        ("meta.criminals", ["张某", "张某"]),
        ("meta.criminals", [" 张某 ", ""]),
        ("meta.criminals", ["张某", "李某"]),
        ("meta.criminals", ["  "]),
        ("meta.criminals", []),
        ("meta.criminals", [7]),
        ("meta.accusation", ["[组织、强迫、引诱、容留、介绍]卖淫", "盗窃罪 "]),
        ("meta.accusation", ["  "]),
        ("meta.accusation", []),
        ("meta.accusation", "盗窃"),
        ("meta.relevant_articles", [264, 264, 67]),
        ("meta.relevant_articles", [999]),
        ("meta.relevant_articles", [True]),
        ("meta.relevant_articles", []),
        ("meta.term_of_imprisonment.imprisonment", 600),
        ("meta.term_of_imprisonment.imprisonment", 601),
        ("meta.term_of_imprisonment.imprisonment", 0),
        ("meta.term_of_imprisonment.imprisonment", 6.0),
        ("meta.term_of_imprisonment.death_penalty", True),
        ("meta.term_of_imprisonment.death_penalty", 1),
        ("meta.term_of_imprisonment.life_imprisonment", True),
        ("meta.term_of_imprisonment", None),
        ("meta", []),
    ]
    out: list[object] = [*good, [base], "text", None]
    for path, value in changes:
        record = copy.deepcopy(base)
        *parents, leaf = path.split(".")
        node = record
        for key in parents:
            node = node[key]
        node[leaf] = value
        out.append(record)
    both = copy.deepcopy(base)
    both["meta"]["term_of_imprisonment"].update(death_penalty=True, life_imprisonment=True)
    return [*out, both]


@pytest.mark.parametrize("scan", [False, True])
def test_fast_record_path_accepts_and_refuses_exactly_like_the_full_checks(scan):
    """parse_record (fast path first) and _parse (every check) agree on every variant: same Case or same skip."""
    for i, obj in enumerate([*_variants(), *(_safe_decode(raw) for raw in BAD_LINES)]):
        outcomes = []
        for parse in (parse_record, _parse):
            try:
                outcomes.append(parse(copy.deepcopy(obj), f"x:{i}", scan))
            except SkipRecord as exc:
                outcomes.append((exc.reason, exc.detail))
        assert outcomes[0] == outcomes[1], (i, obj)


def _safe_decode(raw: bytes) -> object:
    """decode_record, or the SkipRecord's reason as a stand-in object."""
    try:
        return decode_record(raw)
    except SkipRecord as exc:
        return exc.reason


@pytest.mark.parametrize("template", ["base", "chat"])
@pytest.mark.parametrize("tasks", [TASKS, ("term",), ("charge", "verdict")])
def test_row_batch_equals_build_rows(template, tasks):
    """RowBatch.table() holds exactly pa.Table.from_pylist(build_rows(...)) for every sample case."""
    parse = get_parser("cail2018")
    cases = [parse(decode_record(raw), f"s:{i}") for i, raw in enumerate(CAIL_LINES, 1)]
    batch, rows = RowBatch(template), []
    for i, case in enumerate(cases):
        used = tasks[: 1 + i % len(tasks)]  # cases with fewer tasks, as quotas give at the end of a split
        batch.add(case, used, "train", len(rows))
        rows.extend(build_rows(case, used, template, "train", len(rows)))
    expected = pa.Table.from_pylist(rows, schema=ROW_SCHEMA)
    got = batch.table()
    assert got.schema == ROW_SCHEMA
    assert got.equals(expected)
    assert batch.rows == len(rows)
    batch.clear()
    assert batch.rows == 0


def test_common_full_width_forms_are_one_character_nfkc_mappings():
    """Each character _nfkc replaces first maps to its NFKC form, a lone character NFKD also gives, of class 0."""
    from data.split import _COMMON, _starter_form

    for c, form in _COMMON:
        assert form == unicodedata.normalize("NFKC", c) == unicodedata.normalize("NFKD", c)
        assert len(form) == 1 and unicodedata.combining(form) == 0
    with pytest.raises(ValueError):
        _starter_form("\u0301")  # a combining mark
    with pytest.raises(ValueError):
        _starter_form("\ufb01")  # ﬁ: two characters


@pytest.mark.parametrize("mark", ["\u0301", "\u0327\u0301", "\u3099", "\u1161", ""])
def test_fast_nfkc_around_replaced_punctuation(mark):
    """Marks and jamo next to the replaced punctuation: _nfkc is still exactly NFKC."""
    for c in "，（）：；":
        for text in (f"{c}{mark}", f"{mark}{c}", f"e{mark}{c}{mark}甲", f"\u1100{c}\u1161{mark}", f"ｅ{c}{mark}１"):
            assert _nfkc(text) == unicodedata.normalize("NFKC", text), (c, mark, text)


@pytest.mark.parametrize("template", ["base", "chat"])
def test_row_batch_without_fixed_prompt_parts_equals_build_rows(template, monkeypatch):
    """When a prompt cannot be split around the facts, RowBatch takes build_prompt's texts: still build_rows."""
    import data.rows as rows_module

    monkeypatch.setattr(rows_module, "_layout", lambda tasks, template: None)
    parse = get_parser("cail2018")
    cases = [parse(decode_record(raw), f"s:{i}") for i, raw in enumerate(CAIL_LINES, 1)]
    batch, rows = RowBatch(template), []
    for i, case in enumerate(cases):
        batch.add(case, TASKS, "train", 4 * i)
        rows += build_rows(case, TASKS, template, "train", 4 * i)
    assert batch.table().to_pylist() == pa.Table.from_pylist(rows, schema=ROW_SCHEMA).to_pylist()


def _plain_stats(cases: list, splits: list[str], tasks: list[tuple[str, ...]]) -> dict:
    """The counters of PrepareStats.add_case as it counted before: one case at a time, straight into the Counters."""
    from collections import Counter, defaultdict

    from data.domains.legal.charges import is_known_charge
    from data.stats import term_bucket

    counts = {k: defaultdict(Counter) for k in ("items", "charges", "articles", "terms")}
    cases_n, unknown, fine = Counter(), Counter(), Counter()
    for case, split, used in zip(cases, splits, tasks, strict=True):
        cases_n[split] += 1
        counts["items"][split].update(used)
        for charge in case.charges:
            counts["charges"][split][charge] += 1
            if not is_known_charge(charge):
                unknown[charge] += 1
        counts["articles"][split].update(case.articles)
        counts["terms"][split][term_bucket(case)] += 1
        fine[split] += case.fine > 0
    return {
        "cases": list(cases_n.items()),
        **{k: {s: list(c.items()) for s, c in v.items()} for k, v in counts.items()},
        "unknown": list(unknown.items()),
        "fine": list(fine.items()),
        "charges_top": {s: c.most_common(3) for s, c in counts["charges"].items()},
    }


def test_stats_folded_counts_equal_case_by_case_counts():
    """add_case counts cases per distinct labels and folds them later: same counts, same first-seen key order (which
    decides most_common's ties in stats.json), as counting case by case."""
    from data.domains.legal.terms import Term
    from data.sources.base import Case
    from data.stats import PrepareStats

    parse = get_parser("cail2018")
    sample = [parse(decode_record(raw), f"s:{i}") for i, raw in enumerate(CAIL_LINES, 1)]
    odd = Case("x:1", "事实", "甲某", ("不存在的罪名罪", "盗窃罪"), (264, 67), Term("none"), 500, "v")
    cases = [*sample, odd, *reversed(sample), odd, *sample[::3]]
    splits = ["test" if i % 5 == 0 else "train" for i in range(len(cases))]
    tasks = [TASKS if i % 4 else TASKS[: 1 + i % 3] for i in range(len(cases))]
    stats = PrepareStats()
    for case, split, used in zip(cases, splits, tasks, strict=True):
        stats.add_case(case, split, list(used))
    got = stats.to_dict({}, TASKS, {})
    assert stats.to_dict({}, TASKS, {}) == got  # folding twice counts nothing twice
    want = _plain_stats(cases, splits, tasks)
    assert list(stats.cases.items()) == want["cases"]
    for name in ("items", "charges", "articles", "terms"):
        assert {s: list(c.items()) for s, c in getattr(stats, name).items()} == want[name], name
    assert list(stats.unknown_charges.items()) == want["unknown"] and want["unknown"]
    assert list(stats.with_fine.items()) == want["fine"]
    for split, top in want["charges_top"].items():
        assert list(got["distributions"][split]["charges_top"].items())[:3] == top


def _raw_variants() -> list[bytes]:
    """JSON lines of every variant, plus facts that only raw JSON can hold: escapes, edge whitespace, other types."""
    lines = [json.dumps(obj, ensure_ascii=False).encode("utf-8") for obj in _variants()]
    base = json.loads(CAIL_LINES[1])
    fact = base["fact"]
    for raw_fact in (
        json.dumps(fact, ensure_ascii=True),  # every character a \u escape
        json.dumps(fact + '\n引用："盗窃"', ensure_ascii=False),  # an escaped quote and newline inside
        json.dumps(" " + fact, ensure_ascii=False),
        json.dumps(fact + "\t", ensure_ascii=False),
        json.dumps("\u3000" + fact, ensure_ascii=False),  # ideographic space (3 bytes) at the start
        json.dumps(fact + "\u2028", ensure_ascii=False),  # line separator at the end
        json.dumps(fact + "\x85", ensure_ascii=False),  # NEL, 2 bytes, at the end
        json.dumps("\u00e9" + fact + "\u4e00", ensure_ascii=False),  # multi-byte letters at both ends: kept
        json.dumps("x", ensure_ascii=False),
        '""',
        "123",
        "null",
        '["a"]',
    ):
        record = json.dumps({**base, "fact": "@@"}, ensure_ascii=False).replace('"@@"', raw_fact)
        lines.append(record.encode("utf-8"))
    lines.append(b'{"fact": "' + fact.encode() + b'", "meta": ' + json.dumps(base["meta"]).encode() + b', "x": NaN}')
    lines.append(b"\xef\xbb\xbf" + CAIL_LINES[1])  # a BOM
    dup = json.dumps(base, ensure_ascii=False)[:-1] + ', "fact": "另一段事实"}'  # a repeated key: the last one wins
    return [*lines, dup.encode("utf-8"), *CAIL_LINES, *BAD_LINES]


def test_pass_two_line_path_builds_exactly_the_full_paths_case():
    """parse_rows_line gives parse_record(decode_record(raw))'s Case and the UTF-8 of its fact, or None (full path);
    it takes the common lines (every sample) and leaves the doubtful ones to the full path."""
    taken = 0
    for i, raw in enumerate(_raw_variants()):
        fast = parse_rows_line(raw, f"x:{i}")
        if fast is None:
            continue
        case, fact = fast
        full = parse_record(decode_record(raw), f"x:{i}")  # never a SkipRecord where the line path built a Case
        assert case == full._replace(fact=""), (i, raw[:80])
        assert fact == full.fact.encode("utf-8"), (i, raw[:80])
        taken += 1
    assert taken >= len(CAIL_LINES) + 2  # all sample lines, the base record, the multi-byte edges


def test_pass_two_line_path_refuses_what_needs_decoding():
    """Escapes, whitespace at an end, an empty or non-string fact, a BOM, NaN, a float or bool in an int field."""
    base = json.loads(CAIL_LINES[1])
    for raw_fact in (json.dumps(base["fact"], ensure_ascii=True), '" ' + base["fact"] + '"', '"\u3000x"', '""', "5"):
        line = json.dumps({**base, "fact": "@@"}, ensure_ascii=False).replace('"@@"', raw_fact).encode("utf-8")
        assert parse_rows_line(line, "x:1") is None, raw_fact[:20]
    assert parse_rows_line(b"\xef\xbb\xbf" + CAIL_LINES[1], "x:1") is None
    for path, value in (("punish_of_money", 1.0), ("punish_of_money", True), ("criminals", ["张某", "张某"])):
        record = copy.deepcopy(base)
        record["meta"][path] = value
        assert parse_rows_line(json.dumps(record, ensure_ascii=False).encode("utf-8"), "x:1") is None, path


def test_pass_one_line_path_builds_exactly_the_full_paths_case_or_leaves_it():
    """parse_scan_line gives parse_record(decode_record(raw), scan=True)'s Case, or None where the full path must
    decide (and every line the full path refuses is among those, so its skip reason stays the full path's)."""
    surrogate = CAIL_LINES[1].replace(b'"fact": "', b'"fact": "\\ud800', 1)
    taken = 0
    for i, raw in enumerate([*_raw_variants(), surrogate]):
        fast = parse_scan_line(raw, f"x:{i}")
        try:
            full = parse_record(decode_record(raw), f"x:{i}", scan=True)
        except SkipRecord:
            assert fast is None, (i, raw[:80])
            continue
        if fast is not None:
            assert fast == full, (i, raw[:80])
            taken += 1
    assert taken >= len(CAIL_LINES) + 5  # the samples, the base record, escapes and edge whitespace in the fact


def test_raw_fact_strip_check_on_every_code_point_at_either_end():
    """_stripped_utf8 gives the UTF-8 of text.strip() for a text with any character at its start or end, or None; it
    never refuses a text that needs no strip (checked over all of Unicode: the lead-byte shortcut is exact)."""

    class _Raw(msgspec.Struct):
        f: msgspec.Raw

    decode = msgspec.json.Decoder(_Raw).decode
    for cp in range(0x20, sys.maxunicode + 1):
        if 0xD800 <= cp < 0xE000 or cp in (0x22, 0x5C):  # surrogates; a quote or backslash needs an escape
            continue
        c = chr(cp)
        for text in (c + "甲乙", "甲乙" + c):
            got = _stripped_utf8(decode(b'{"f": "' + text.encode("utf-8") + b'"}').f)
            expected = text.strip().encode("utf-8")
            assert got == (expected if expected == text.encode("utf-8") else None), hex(cp)
