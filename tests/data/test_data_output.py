"""data.prepare writes its output directory whole or not at all (data/output.py; issue 24 item 10).

A re-run replaces the directory (no stale sft.parquet, no files of two runs), a killed or failing run leaves the old
output byte for byte, a full disk is one line naming the file (simulated with RLIMIT_FSIZE in the child: the kernel
then fails the real write() with EFBIG at the size limit, inside pyarrow and Python alike), and a directory holding
files data.prepare does not write is refused unless --overwrite.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import data.output as output_module
from data.output import OutputError
from data.prepare import NoUsableDataError, PrepareConfig, prepare

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "data" / "samples"
CAIL = str(SAMPLES / "cail2018_sample.jsonl")
CAIL_BAD = str(SAMPLES / "cail2018_bad.jsonl")
SAFETY = str(SAMPLES / "safety_sample.jsonl")

# Runs data.prepare as `python -m data.prepare` would (its TERM handler included), after patching pyarrow's
# ParquetWriter.write_table to send the given signal to this process on its first call: the kill lands in pass 2,
# with label_sets.json written and the parquet files open.
KILL_AT_FIRST_WRITE = """
import os, runpy, signal, sys
import pyarrow.parquet as pq
sig = int(sys.argv[1])
def write_table(self, *args, **kwargs):
    os.kill(os.getpid(), sig)
pq.ParquetWriter.write_table = write_table
sys.argv = ["data.prepare", *sys.argv[2:]]
runpy.run_module("data.prepare", run_name="__main__", alter_sys=True)
"""


def _tree(out: Path) -> dict[str, str]:
    """Every file under out (relative name -> sha256 of its bytes)."""
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }


def _leftovers(out: Path) -> list[str]:
    """Staging (or set-aside) directories of a run beside out."""
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


def _cli(*args: str, **popen: object) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "data.prepare", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
        **popen,
    )  # fmt: skip


def test_a_rerun_without_sft_fraction_leaves_no_stale_sft_parquet(tmp_path: Path) -> None:
    """An SFT run, then a GRPO-only run into the same directory: exactly the second run's files remain."""
    out = tmp_path / "safety"
    with_sft = prepare(PrepareConfig(source="safety", inputs=(SAFETY,), output=str(out), sft_fraction=0.2))
    assert with_sft["items_total"]["sft"] > 0 and (out / "sft.parquet").is_file()
    prepare(PrepareConfig(source="safety", inputs=(SAFETY,), output=str(out)))
    assert sorted(p.name for p in out.iterdir()) == ["stats.json", "test.parquet", "train.parquet"]
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    assert stats["config"]["sft_fraction"] == 0.0 and "sft" not in stats["cases"]
    assert _leftovers(out) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=lambda s: s.name)
def test_a_killed_rerun_leaves_the_old_output_whole(tmp_path: Path, sig: signal.Signals) -> None:
    """Killed in pass 2 (label_sets.json written, parquet files open): the old output is unchanged, file for file;
    TERM and Ctrl-C also remove the staging directory and end with one line (only SIGKILL can leave the staging
    directory, hidden beside the output)."""
    out = tmp_path / "legal"
    prepare(PrepareConfig(source="cail2018", inputs=(CAIL,), output=str(out)))
    before = _tree(out)
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", KILL_AT_FIRST_WRITE, str(int(sig)), "--source", "cail2018", "--input", CAIL, CAIL_BAD,
         "--output", str(out), "--seed", "5", "--test-size", "8"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert _tree(out) == before
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
        return
    assert proc.returncode == {signal.SIGTERM: 143, signal.SIGINT: 130}[sig], proc.stderr
    assert _leftovers(out) == [] and "Traceback" not in proc.stderr
    stopped = {signal.SIGTERM: "terminated", signal.SIGINT: "interrupted"}[sig]
    assert [line for line in proc.stderr.splitlines() if line.startswith("ERROR")] == [
        f"ERROR __main__: {stopped}: nothing written, {out} is left as it was"
    ]


@pytest.mark.parametrize(
    ("limit", "file"), [(1000, "label_sets.json"), (3000, "train.parquet")], ids=["label_sets", "parquet"]
)
def test_a_full_disk_is_one_line_naming_the_file(tmp_path: Path, limit: int, file: str) -> None:
    """RLIMIT_FSIZE makes the kernel refuse the real write() past `limit` bytes (EFBIG, as ENOSPC would at a full
    disk): exit 1, one ERROR line naming the output file, no traceback, the earlier output untouched."""
    out = tmp_path / "legal"
    prepare(PrepareConfig(source="cail2018", inputs=(CAIL,), output=str(out), seed=1))
    before = _tree(out)

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = _cli("--source", "cail2018", "--input", CAIL, "--output", str(out), preexec_fn=small_files)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1, proc.stderr
    assert f"cannot write {out / file}: " in errors[0] and "File too large" in errors[0]
    assert f"({out} is left as it was)" in errors[0]
    assert _tree(out) == before and _leftovers(out) == []


def test_a_directory_with_other_files_is_refused_unless_overwrite(tmp_path: Path) -> None:
    """Files data.prepare does not write are never deleted silently: one line naming them, exit 1; --overwrite
    replaces the directory whole."""
    out = tmp_path / "mixed"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n", encoding="utf-8")
    (out / "train.parquet").write_bytes(b"old")
    proc = _cli("--source", "cail2018", "--input", CAIL, "--output", str(out))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"--output {out} holds files this tool did not write (notes.txt)" in proc.stderr
    assert "--overwrite" in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "train.parquet"]
    assert (out / "train.parquet").read_bytes() == b"old"
    proc = _cli("--source", "cail2018", "--input", CAIL, "--output", str(out), "--overwrite")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["label_sets.json", "stats.json", "test.parquet", "train.parquet"]


def test_an_input_inside_the_output_is_refused_even_with_overwrite(tmp_path: Path) -> None:
    """Replacing the directory would delete the input itself."""
    (tmp_path / "in.jsonl").write_bytes(Path(CAIL).read_bytes())
    with pytest.raises(OutputError, match=r"in\.jsonl is inside --output"):
        prepare(
            PrepareConfig(source="cail2018", inputs=(str(tmp_path / "in.jsonl"),), output=str(tmp_path), overwrite=True)
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


def test_no_usable_record_keeps_an_earlier_output(tmp_path: Path) -> None:
    """A run that finds nothing usable is a failed run: it does not replace a good earlier output."""
    out = tmp_path / "legal"
    prepare(PrepareConfig(source="cail2018", inputs=(CAIL,), output=str(out)))
    before = _tree(out)
    with pytest.raises(NoUsableDataError, match="keeps its earlier output"):
        prepare(PrepareConfig(source="cail2018", inputs=(CAIL_BAD,), output=str(out)))
    assert _tree(out) == before and _leftovers(out) == []


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2-exchange", "rename-aside"])
def test_the_swap_keeps_mode_and_symlink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exchange: bool) -> None:
    """The new directory takes the old one's permissions; an output named through a symlink stays a symlink (its
    target is replaced); the same holds where the system cannot exchange two paths in one rename."""
    if not exchange:
        monkeypatch.setattr(output_module, "_exchange", lambda a, b: False)
    target = tmp_path / "real"
    prepare(PrepareConfig(source="cail2018", inputs=(CAIL,), output=str(target), seed=1))
    target.chmod(0o750)
    link = tmp_path / "link"
    link.symlink_to(target)
    prepare(PrepareConfig(source="cail2018", inputs=(CAIL,), output=str(link), seed=2))
    assert link.is_symlink() and link.resolve() == target
    assert target.stat().st_mode & 0o777 == 0o750
    assert json.loads((target / "stats.json").read_text(encoding="utf-8"))["config"]["seed"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]
