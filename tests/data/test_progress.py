"""data.progress.tqdm: a bar on a terminal, clean newline-terminated lines in logs and pipes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from helpers.judge_server import ScriptedJudgeServer

from data.progress import INTERVAL_ENV, LOG_INTERVAL_S, interval_s, tqdm


class FakeTerminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_not_a_terminal_writes_clean_lines():
    """Off a terminal: no carriage returns, every write one full line, the final count in the last line."""
    buf = io.StringIO()
    for _ in tqdm(range(50), desc="scoring", unit="resp", file=buf):
        pass
    text = buf.getvalue()
    assert "\r" not in text and text.endswith("\n")
    lines = text.splitlines()
    assert all(line.startswith("scoring:") for line in lines)
    assert "50/50" in lines[-1]
    assert len(lines) <= 3  # start, (at most one interval line), end: not one redraw per item


def test_terminal_keeps_the_redrawn_bar():
    """On a terminal tqdm redraws in place as usual."""
    term = FakeTerminal()
    for _ in tqdm(range(3), desc="scan", file=term, mininterval=0):
        pass
    assert "\r" in term.getvalue()


# ------------------------------------------------------------------ issue 29: progress in pipes and logs


def test_interval_comes_from_the_environment(monkeypatch):
    """LEGAL_PROGRESS_INTERVAL_S sets the seconds between lines; unset or not a number >= 0: the promised 30 s."""
    monkeypatch.delenv(INTERVAL_ENV, raising=False)
    assert interval_s() == LOG_INTERVAL_S == 30.0
    for text, expected in (("0.5", 0.5), ("0", 0.0), ("-1", 30.0), ("soon", 30.0), ("nan", 30.0)):
        monkeypatch.setenv(INTERVAL_ENV, text)
        assert interval_s() == expected, text


def test_a_line_every_interval_and_the_final_count_even_with_leave_false(monkeypatch):
    """Off a terminal: a start line, one line per interval while it moves, and the end (leave=False too)."""
    monkeypatch.setenv(INTERVAL_ENV, "0.05")
    buf = io.StringIO()
    with tqdm(total=4, desc="write rows", file=buf, leave=False) as bar:
        for _ in range(4):
            time.sleep(0.08)
            bar.update(1)
    lines = buf.getvalue().splitlines()
    assert "\r" not in buf.getvalue() and len(lines) >= 4, lines
    assert "0/4" in lines[0] and "4/4" in lines[-1] and all(line.startswith("write rows:") for line in lines)


def test_default_interval_keeps_a_fast_run_to_start_and_end(monkeypatch):
    """At the default 30 s a quick bar writes its start and its end only (tqdm's 10 s monitor does not add lines)."""
    monkeypatch.delenv(INTERVAL_ENV, raising=False)
    buf = io.StringIO()
    for _ in tqdm(range(1000), desc="scan", file=buf, leave=False, mininterval=1.0):
        pass
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2 and "0/1000" in lines[0] and "1000/1000" in lines[1], lines


REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def legal_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped CAIL2018 sample prepared, with gold answers as predictions."""
    from data.prepare import main as prepare

    out = tmp_path_factory.mktemp("legal")
    assert prepare(["--source", "cail2018", "--input", "data/samples/cail2018_sample.jsonl", "--output", str(out)]) == 0
    rows = pq.read_table(out / "test.parquet").to_pylist()
    lines = [
        {"index": r["extra_info"]["index"], "data_source": r["data_source"],
         "response": f"想</think><answer>{r['reward_model']['ground_truth']}</answer>"}
        for r in rows
    ]  # fmt: skip
    (out / "preds.jsonl").write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), "utf-8")
    return out


def _through_a_pipe(argv: list[str], timeout: float = 300) -> str:
    """Run a command with stdout and stderr into one pipe (as `cmd 2>&1 | tee log`), a short progress interval."""
    env = {**os.environ, INTERVAL_ENV: "0", "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env.pop("TQDM_DISABLE", None)
    # bytes, not text=True: universal newlines would turn a redraw's \r into \n and hide it
    proc = subprocess.run(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    output = proc.stdout.decode("utf-8", errors="replace")
    assert proc.returncode == 0, output[-3000:]
    return output


def _progress(output: str, desc: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(f"{desc}:") and "%|" in line]


@pytest.mark.parametrize(
    ("command", "bars"),
    [
        pytest.param(["-m", "data.prepare", "--source", "cail2018", "--input", "data/samples/cail2018_sample.jsonl",
                      "--output", "{tmp}/prepared"], ["scan cail2018", "write rows"], id="data.prepare"),
        pytest.param(["-m", "recipes.evaluate", "--data", "{legal}/test.parquet", "--predictions",
                      "{legal}/preds.jsonl", "--mode", "rules", "--out", "{tmp}/report"], ["scoring"], id="evaluate"),
        pytest.param(["-m", "recipes.legal.audit_judge", "--data", "{legal}/test.parquet", "--judge-base-url",
                      "{judge}", "--judge-model", "judge-model", "--config", "", "--n", "20", "--out", "{tmp}/audit"],
                     ["judge audit"], id="audit_judge"),
        pytest.param(["benchmarks/data_prepare.py", "--records", "200", "--workdir", "{tmp}/w"],
                     ["scan cail2018", "write rows"], id="data_prepare-benchmark"),
    ],
)  # fmt: skip
def test_long_commands_write_plain_progress_lines_into_a_pipe(legal_dir, tmp_path, command, bars):
    """Each long command through a pipe: no \\r redraws, and each bar writes its start and its final count.

    (benchmarks/reward_throughput.py: tests/test_benchmark_smoke.py, which runs it through a pipe anyway.)"""
    with ScriptedJudgeServer(reply="2", model="judge-model") as judge:
        values = {"tmp": str(tmp_path), "legal": str(legal_dir), "judge": judge.base_url}
        output = _through_a_pipe([sys.executable, *(arg.format(**values) for arg in command)])
    assert "\r" not in output and "\x1b[" not in output
    for desc in bars:
        lines = _progress(output, desc)
        assert len(lines) >= 2, f"{desc}: {lines}\n{output[-2000:]}"
        assert " 0%|" in lines[0] and "100%|" in lines[-1], lines
