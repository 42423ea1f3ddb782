"""data.reader's line offsets and lines_at (pass 2 reads the chosen lines by offset), and what pass 2 does with them:
the same rows from a plain and a gzip file, a file that changes between the passes stops the run, and no pandas."""

from __future__ import annotations

import gzip
import json
import os
import pathlib
import random
import shutil
import subprocess
import sys

import pytest

import data.prepare as prepare_module
import data.reader as reader
from data.prepare import PrepareConfig, prepare
from data.reader import InputError, iter_lines, lines_at

REPO = pathlib.Path(__file__).resolve().parents[2]
CAIL = REPO / "data" / "samples" / "cail2018_sample.jsonl"

# lines of many lengths: empty, one byte, CRLF, multi-byte UTF-8, a last line without a newline
LINES = [b"", b"a", b"{}\r", "罪名：盗窃罪".encode(), b"x" * 61, b"y" * 62, b"z" * 63, b"w" * 130, b"q" * 5]


def _file(tmp_path: pathlib.Path, lines: list[bytes], last_newline: bool = True) -> str:
    """Write lines joined by newlines (and one at the end when last_newline)."""
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join(lines) + (b"\n" if last_newline else b""))
    return str(path)


def _offsets(path: str, max_bytes: int = 1 << 20) -> list[tuple[int, bytes]]:
    """(offset, raw) of every line iter_lines yields."""
    return [(start, raw) for _, _, start, raw in iter_lines([path], desc="t", max_bytes=max_bytes)]


@pytest.mark.parametrize("last_newline", [True, False])
def test_offsets_point_at_each_line(tmp_path, last_newline):
    """iter_lines' offset of each line is where its bytes start in the file."""
    path = _file(tmp_path, LINES, last_newline)
    data = pathlib.Path(path).read_bytes()
    seen = _offsets(path)
    assert len(seen) == len(LINES)
    for start, raw in seen:
        assert data[start : start + len(raw)] == raw


def test_offsets_count_the_bytes_of_a_skipped_long_line(tmp_path):
    """After a line over the limit (yielded as TOO_LARGE, its bytes dropped), the next offset is still exact."""
    path = _file(tmp_path, [b"short", b"L" * 500, b"after"])
    seen = _offsets(path, max_bytes=100)
    assert seen[1][1] is reader.TOO_LARGE
    assert seen[2] == (6 + 501, b"after\n")


@pytest.mark.parametrize("block", [16, 64, 1 << 20])
@pytest.mark.parametrize("last_newline", [True, False])
def test_lines_at_gives_the_bytes_iter_lines_gave(tmp_path, monkeypatch, block, last_newline):
    """Every subset of lines (all, sparse, the last one alone), with blocks small enough that lines cross them."""
    monkeypatch.setattr(reader, "_BLOCK", block)
    path = _file(tmp_path, LINES, last_newline)
    seen = _offsets(path, max_bytes=140)
    rng = random.Random(0)
    subsets = [seen, seen[::3], seen[-1:], seen[:1], *(sorted(rng.sample(seen, 4)) for _ in range(20))]
    for subset in subsets:
        got = [bytes(v) for v in lines_at(path, [s for s, _ in subset], max_bytes=140)]
        assert got == [raw for _, raw in subset]


def test_lines_at_reads_sparse_offsets_in_few_blocks(tmp_path):
    """Lines within one block cost one read; the progress callback counts the bytes read, at most the file."""
    lines = [b"%05d" % i for i in range(1000)]
    path = _file(tmp_path, lines)
    seen = _offsets(path)
    reads: list[int] = []
    got = [bytes(v) for v in lines_at(path, [s for s, _ in seen[::7]], progress=reads.append)]
    assert got == [raw for _, raw in seen[::7]]
    assert len(reads) == 1 and reads[0] == os.path.getsize(path)


def test_a_file_that_changes_between_the_passes_stops_the_run(tmp_path, monkeypatch):
    """Pass 1 read the file, then it grew: pass 2 refuses it with one line naming it (it used to read on)."""
    path = tmp_path / "in.jsonl"
    shutil.copy(CAIL, path)
    scan = prepare_module._scan

    def scan_then_append(*args, **kwargs):
        """Pass 1, then another writer appends a record."""
        result = scan(*args, **kwargs)
        with path.open("ab") as fh:
            fh.write(CAIL.read_bytes().splitlines(keepends=True)[0])
        return result

    monkeypatch.setattr(prepare_module, "_scan", scan_then_append)
    with pytest.raises(InputError, match=r"in\.jsonl changed while data\.prepare read it"):
        prepare(PrepareConfig(source="cail2018", inputs=(str(path),), output=str(tmp_path / "out")))
    assert not (tmp_path / "out" / "train.parquet").exists()


@pytest.mark.parametrize("extra", [{}, {"train_size": 9, "test_size": 5}])
def test_plain_and_gzip_inputs_write_the_same_rows(tmp_path, extra):
    """Pass 2 reads a plain file by offset and a gzip file through: the same rows (case ids name the file)."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    gz = tmp_path / "in.jsonl.gz"
    gz.write_bytes(gzip.compress(CAIL.read_bytes(), mtime=0))
    outs = {}
    for name, path in (("plain", CAIL), ("gz", gz)):
        out = tmp_path / name
        prepare(PrepareConfig(source="cail2018", inputs=(str(path),), output=str(out), **extra))
        rows = [pq.read_table(out / f"{split}.parquet").to_pylist() for split in ("train", "test")]
        for row in rows[0] + rows[1]:
            row["extra_info"]["case_id"] = row["extra_info"]["case_id"].replace(pathlib.Path(path).name, "F")
        outs[name] = rows
    assert outs["plain"] == outs["gz"]
    assert sum(map(len, outs["plain"])) == (9 + 5 if extra else 280)


def test_two_inputs_one_compressed_keep_input_order(tmp_path):
    """Chosen lines of a plain file after a gzip one (and back) are matched to their own file and line."""
    lines = CAIL.read_bytes().splitlines(keepends=True)
    first, second = tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl"
    first.write_bytes(gzip.compress(b"".join(lines[:30]), mtime=0))
    second.write_bytes(b"".join(lines[30:]))
    whole = tmp_path / "whole.jsonl"
    whole.write_bytes(b"".join(lines))
    stats = prepare(PrepareConfig(source="cail2018", inputs=(str(first), str(second)), output=str(tmp_path / "two")))
    one = prepare(PrepareConfig(source="cail2018", inputs=(str(whole),), output=str(tmp_path / "one")))
    assert stats["records"] == one["records"]
    import pyarrow.parquet as pq  # noqa: PLC0415

    for split in ("train", "test"):
        two_rows = pq.read_table(tmp_path / "two" / f"{split}.parquet").to_pylist()
        one_rows = pq.read_table(tmp_path / "one" / f"{split}.parquet").to_pylist()
        assert [r["prompt"] for r in two_rows] == [r["prompt"] for r in one_rows]
        origins = {r["extra_info"]["case_id"].split(":")[0] for r in two_rows}
        assert origins == {"a.jsonl.gz", "b.jsonl"}
        for row in two_rows:  # the case id names the file and line the fact was read from
            name, line = row["extra_info"]["case_id"].split(":")
            source = lines[:30] if name == "a.jsonl.gz" else lines[30:]
            assert json.loads(source[int(line) - 1])["fact"].strip() in row["prompt"][0]["content"]


def test_prepare_does_not_import_pandas(tmp_path):
    """pyarrow imports pandas on its first pa.array of a Python list or numpy array (about 0.35 s of start-up);
    data.prepare builds its columns without it."""
    code = (
        "import sys; from data.prepare import main; "
        f"main(['--source', 'cail2018', '--input', {str(CAIL)!r}, '--output', {str(tmp_path / 'out')!r}]); "
        "print('pandas imported:', 'pandas' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "pandas imported: False" in proc.stdout
