"""data.prepare on hostile input (issue 11 item 7): every bad record is counted with its reason or stops the run
with one line naming the file; nothing crashes, nothing is held in memory whole."""

from __future__ import annotations

import copy
import gzip
import json
import pathlib
import subprocess
import sys
import tracemalloc

import pytest

from data.prepare import PrepareConfig, prepare
from data.reader import decode_record, iter_lines

REPO = pathlib.Path(__file__).resolve().parents[2]
CAIL = REPO / "data" / "samples" / "cail2018_sample.jsonl"
GOOD = [json.loads(line) for line in CAIL.read_text(encoding="utf-8").splitlines()[:6]]


def _write(path: pathlib.Path, lines: list[str | bytes]) -> str:
    """Write raw lines (str encoded as UTF-8) to path, one per line."""
    path.write_bytes(b"".join((x if isinstance(x, bytes) else x.encode("utf-8")) + b"\n" for x in lines))
    return str(path)


def _record(**meta: object) -> dict:
    """A good sample record with some meta fields replaced."""
    record = copy.deepcopy(GOOD[0])
    record["meta"].update(meta)
    return record


def _prepare(tmp_path: pathlib.Path, path: str, **kwargs: object) -> dict:
    """prepare() one input into tmp_path/out; the stats."""
    return prepare(PrepareConfig(source="cail2018", inputs=(path,), output=str(tmp_path / "out"), **kwargs))


def _cli(*args: str) -> subprocess.CompletedProcess:
    """Run `python -m data.prepare` with args."""
    cmd = [sys.executable, "-m", "data.prepare", "--source", "cail2018", *args]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("raw_fine", "reason"),
    [
        ("100000000000000000000", "invalid_value"),  # an integer: passed pass 1, crashed pass 2 in cn2an
        ("1e20", "wrong_type"),  # a float
        ("9999999999999999", "invalid_value"),  # 16 digits: cn2an could print it, but no fine is that large
    ],
)
def test_huge_fine_is_a_counted_skip_with_stats(tmp_path, raw_fine, reason):
    """A fine too large to be real is skipped in pass 1 under a reason, the rest is written, stats.json exists."""
    bad = json.dumps(_record(punish_of_money=0), ensure_ascii=False).replace(
        '"punish_of_money": 0', f'"punish_of_money": {raw_fine}'
    )
    path = _write(tmp_path / "in.jsonl", [*(json.dumps(r, ensure_ascii=False) for r in GOOD), bad])
    stats = _prepare(tmp_path, path)
    assert stats["records"] == {"read": 7, "kept": 6, "skipped": 1}
    assert stats["skipped_by_reason"] == {reason: 1}
    assert stats["skip_examples"][reason][0]["line"] == 7
    assert "punish_of_money" in stats["skip_examples"][reason][0]["detail"]
    assert (tmp_path / "out" / "stats.json").is_file()


@pytest.mark.parametrize("field", ["fact", "accusation", "criminals"])
def test_lone_surrogate_is_a_counted_skip(tmp_path, field):
    """A lone surrogate written as a JSON escape (\\ud800) in a fact, charge or name is skipped as bad_encoding."""
    record = copy.deepcopy(GOOD[0])
    if field == "fact":
        record["fact"] = record["fact"] + "\ud800"
    else:
        record["meta"][field] = [record["meta"][field][0] + "\udfff"]
    bad = json.dumps(record)  # ensure_ascii: the surrogate is written as a \\u escape, valid JSON
    assert "\\ud800" in bad or "\\udfff" in bad
    path = _write(tmp_path / "in.jsonl", [bad, *(json.dumps(r, ensure_ascii=False) for r in GOOD)])
    stats = _prepare(tmp_path, path)
    assert stats["skipped_by_reason"] == {"bad_encoding": 1}
    assert stats["skip_examples"]["bad_encoding"][0]["line"] == 1
    assert "surrogate" in stats["skip_examples"]["bad_encoding"][0]["detail"]
    assert stats["records"]["kept"] == 6


def test_truncated_gz_stops_with_one_line_naming_the_file(tmp_path):
    """A .gz cut short: exit 1 and one error line naming the file and the last line read; no traceback."""
    full = tmp_path / "full.jsonl.gz"
    with gzip.open(full, "wt", encoding="utf-8") as fh:
        for _ in range(40):
            for r in GOOD:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    data = full.read_bytes()
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(data[: len(data) // 2])
    proc = _cli("--input", str(cut), "--output", str(tmp_path / "out"))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and str(cut) in errors[0] and "truncated or corrupt" in errors[0]
    assert "cannot read past line" in errors[0]


def test_not_gzip_at_all_stops_with_one_line(tmp_path):
    """A file named .gz that is not gzip: the same clear error."""
    bad = _write(tmp_path / "plain.jsonl.gz", [json.dumps(GOOD[0], ensure_ascii=False)])
    proc = _cli("--input", bad, "--output", str(tmp_path / "out"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and bad in proc.stderr


def test_oversized_line_is_counted_and_never_held_whole(tmp_path):
    """A 20 MB single line: skipped as record_too_large; the reader's peak memory stays far below the line."""
    huge = '{"fact": "' + "x" * (20 << 20) + '", "meta": {}}'
    path = _write(
        tmp_path / "in.jsonl", [json.dumps(GOOD[0], ensure_ascii=False), huge, json.dumps(GOOD[1], ensure_ascii=False)]
    )
    from data.reader import TOO_LARGE  # noqa: PLC0415 (new in this fix: the test must load on the old code too)

    tracemalloc.start()
    seen = [(line_no, raw is TOO_LARGE) for _, line_no, _, raw in iter_lines([path], desc="t")]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert seen == [(1, False), (2, True), (3, False)]
    assert peak < 4 << 20, f"reader peak {peak / 2**20:.1f} MiB for a 20 MiB line"
    stats = _prepare(tmp_path, path)
    assert stats["records"] == {"read": 3, "kept": 2, "skipped": 1}
    assert stats["skipped_by_reason"] == {"record_too_large": 1}
    assert stats["skip_examples"]["record_too_large"][0]["line"] == 2


def test_record_size_limit_is_a_knob(tmp_path):
    """--max-record-bytes: a line of exactly the limit is read, one byte more is skipped."""
    lines = sorted((json.dumps(r, ensure_ascii=False).encode("utf-8") for r in GOOD[:3]), key=len)
    path = _write(tmp_path / "in.jsonl", lines)
    limit = len(lines[-1]) + 1  # the newline counts
    assert _prepare(tmp_path, path, max_record_bytes=limit)["records"]["kept"] == 3
    stats = _prepare(tmp_path, path, max_record_bytes=limit - 1)
    assert stats["skipped_by_reason"] == {"record_too_large": 1}
    assert stats["skip_examples"]["record_too_large"][0]["line"] == 3
    proc = _cli("--input", path, "--output", str(tmp_path / "cli"), "--max-record-bytes", "0")
    assert proc.returncode == 2 and "--max-record-bytes" in proc.stderr


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": 1, "a": 2}',
        b'{"a": NaN, "b": -Infinity}',
        b'\xef\xbb\xbf{"a": "bom"}',
        b'{"a": 100000000000000000000, "b": -9223372036854775809}',
        b'{"a": 1e400, "b": 1.5e-400, "c": 0.1}',
        b'{"a": "\\ud83d\\ude00 \\u00e9 \\u0000"}',
        b'  [1, 2.5, "x", null, true]  \r\n',
        b'"just a string"\n',
        b'{"a": 1' + b"0" * 5000 + b"}",
        b"[" * 3000 + b"]" * 3000,
    ],
)
def test_decode_record_reads_what_json_loads_reads(raw):
    """The fast decoder (msgspec) with its standard-library fallback gives exactly json.loads's result."""
    try:
        expected = json.loads(raw.decode("utf-8-sig"))
    except (ValueError, RecursionError):
        with pytest.raises(Exception, match="malformed_json"):
            decode_record(raw)
        return
    got = decode_record(raw)
    assert json.dumps(got, sort_keys=True) == json.dumps(expected, sort_keys=True)
    assert type(got) is type(expected)


def test_a_pass_two_failure_names_file_and_line(tmp_path, monkeypatch):
    """Whatever pass 1 missed, a failure while writing a record names its file and line (no bare traceback)."""
    from data.prepare import RecordError
    from data.rows import RowBatch

    path = _write(tmp_path / "in.jsonl", [json.dumps(r, ensure_ascii=False) for r in GOOD])

    def boom(self, *args):
        raise OverflowError("int too big to convert")

    monkeypatch.setattr(RowBatch, "add", boom)
    with pytest.raises(RecordError, match=r"in\.jsonl:\d+: cannot build rows \(OverflowError"):
        _prepare(tmp_path, path)
    assert not (tmp_path / "out" / "train.parquet").exists()
