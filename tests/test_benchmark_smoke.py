"""Smoke test of benchmarks/reward_throughput.py: a tiny run as a subprocess, checking its JSON (no timings)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCH = REPO_ROOT / "benchmarks" / "reward_throughput.py"
CONTRACT_KEYS = (
    "responses",
    "judge_calls",
    "unique_pairs_needing_judge",
    "wall_s",
    "ideal_s",
    "ratio_to_ideal",
    "cpu_bound_s",
    "ratio_to_limit",
    "naive_s",
    "speedup_vs_naive",
    "failures",
    "fallbacks",
)
TINY = [
    "--prompts",
    "4",
    "--n",
    "4",
    "--latency-ms",
    "5",
    "--server-concurrency",
    "4",
    "--workers",
    "2",
    "--naive-subset",
    "8",
    "--seed",
    "0",
    "--no-progress",
]


def run_bench(tmp_path: Path, extra: list[str], progress: bool = False) -> tuple[dict, str, str]:
    """Run the benchmark with TINY + extra args (progress bars on when asked); the JSON report, stdout, stderr."""
    out = tmp_path / "report.json"
    args = [a for a in TINY if a != "--no-progress"] if progress else TINY
    proc = subprocess.run(
        [sys.executable, str(BENCH), *args, *extra, "--json", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        timeout=240,
    )  # bytes: text=True would turn a progress redraw's \r into \n
    stdout, stderr = proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0, f"benchmark failed ({proc.returncode}):\n{stdout}\n{stderr[-4000:]}"
    return json.loads(out.read_text(encoding="utf-8")), stdout, stderr


@pytest.mark.parametrize(
    ("case", "extra", "expect_fallbacks"),
    [
        # No injected errors, so no response may lack a judge result. Chunked dispatch keeps each GRPO group in
        # one worker process, so the per-process dedup/cache must keep judge calls <= unique pairs.
        ("chunked_no_errors", ["--dispatch", "chunked"], False),
        # Default (stream) dispatch; half the judge requests answer 503 and the client may not retry: those
        # responses fall back to rules. The server draws failures from random.Random(seed): same requests each run.
        ("stream_injected_5xx", ["--fail-rate", "0.5", "--max-retries", "0"], True),
    ],
)
def test_benchmark_reports_consistent_contract(tmp_path: Path, case: str, extra: list[str], expect_fallbacks: bool):
    """Every contract key is there and the numbers agree with each other and with the run's arguments."""
    report, stdout, stderr = run_bench(tmp_path, extra, progress=case == "chunked_no_errors")
    if case == "chunked_no_errors":  # progress into a pipe: plain lines (data/progress.py), start and end of each
        assert "\r" not in stderr
        for desc in ("starting reward workers", "scoring (hybrid)", "naive baseline"):
            bars = [line for line in stderr.splitlines() if line.startswith(f"{desc}:")]
            assert len(bars) >= 2 and " 0%|" in bars[0] and "100%|" in bars[-1], (desc, stderr[-2000:])
    missing = [k for k in CONTRACT_KEYS if k not in report]
    assert not missing, f"{case}: missing contract keys {missing}"
    for key in CONTRACT_KEYS:
        assert isinstance(report[key], (int, float)) and not isinstance(report[key], bool), (case, key, report[key])

    assert report["responses"] == 4 * 4
    assert report["scored"] == report["responses"], "every response must get a score"
    unique = report["unique_pairs_needing_judge"]
    assert 1 <= unique <= report["judge_called_responses"] <= report["responses"]
    # Identical questions sent by different worker processes are counted as duplicate_calls.
    assert 1 <= report["judge_calls"] - report["duplicate_calls"] <= unique
    assert report["judge_requests"] >= report["judge_calls"]
    if report["config"]["dispatch"] == "chunked":
        assert report["judge_calls"] <= unique
    assert report["ideal_s"] == pytest.approx(math.ceil(unique / 4) * 0.005)
    assert report["ratio_to_ideal"] == pytest.approx(report["wall_s"] / report["ideal_s"])
    assert report["naive_s"] == pytest.approx(report["naive_measured_s"] * 16 / 8)
    assert report["speedup_vs_naive"] == pytest.approx(report["naive_s"] / report["wall_s"])
    assert report["server"]["max_active_seen"] <= 4, "the loopback judge must respect --server-concurrency"
    assert "ratio to ideal" in stdout
    # The CPU limit: worker + loopback-judge CPU over the cores this run had; the ratio is against the larger limit.
    assert report["cpu_bound_s"] == pytest.approx(
        (report["worker_cpu_s"] + report["judge_server_cpu_s"]) / report["cores"]
    )
    assert report["cpu_bound_s"] > 0 and 1 <= report["cores"] <= (os.cpu_count() or 1)
    limit = max(report["ideal_s"], report["cpu_bound_s"])
    assert report["ratio_to_limit"] == pytest.approx(report["wall_s"] / limit)
    assert report["binding_limit"] == ("judge" if report["ideal_s"] >= report["cpu_bound_s"] else "cpu")
    assert report["ratio_to_limit"] <= report["ratio_to_ideal"] + 1e-9
    shared = report["shared_box"]  # the same limit with the CPU that other processes left (Linux /proc/stat)
    assert 0 < shared["cores_left"] <= report["cores"] and shared["other_cpu_s"] >= 0
    assert shared["cpu_bound_s"] == pytest.approx(
        (report["worker_cpu_s"] + report["judge_server_cpu_s"]) / shared["cores_left"]
    )
    assert shared["cpu_bound_s"] >= report["cpu_bound_s"] - 1e-9
    assert shared["ratio_to_limit"] == pytest.approx(report["wall_s"] / max(report["ideal_s"], shared["cpu_bound_s"]))
    assert "ratio to limit" in stdout

    if expect_fallbacks:
        assert report["fallbacks"] >= 1
        assert report["fallbacks"] == report["failures"], "on_judge_error=rules: every failure is a fallback"
        assert report["server"]["status_counts"].get("503", 0) >= 1
        assert report["targets"]["zero_failures"] is False
    else:
        assert report["failures"] == 0 and report["fallbacks"] == 0
        assert report["targets"]["zero_failures"] is True
        assert report["server"]["status_counts"] == {"200": report["judge_requests"]}
