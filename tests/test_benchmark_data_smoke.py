"""Smoke test of benchmarks/data_prepare.py: a tiny run as a subprocess, checking its JSON (never its timings)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCH = REPO_ROOT / "benchmarks" / "data_prepare.py"


def test_data_benchmark_reports_floor_rate_memory_and_identical_reruns(tmp_path: Path):
    """300 generated records: both floors and both prepare runs reported, every record read, reruns identical."""
    out = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--records", "300", "--workdir", str(tmp_path / "w"), "--json", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text(encoding="utf-8"))
    for floor in ("floor_json_loads", "floor_msgspec"):
        assert report[floor]["records_per_s"] > 0 and report[floor]["records_per_cpu_s"] > 0
    assert len(report["prepare_runs"]) == 2
    for run in report["prepare_runs"]:
        assert run["records_read"] == 300
        assert sum(run["items"].values()) == 4 * 300  # every generated fact is unique and valid: 4 tasks each
        assert run["peak_rss_mb"] > 0 and run["cpu_s"] > 0
    assert report["byte_identical"] is True
    best = min(report["prepare_runs"], key=lambda r: r["wall_s"])
    assert report["records_per_s"] == round(300 / best["wall_s"])
    assert report["targets"]["records_per_s"] == 20_000
    assert 0 < report["startup_cpu_s"] and report["records_per_cpu_s_after_startup"] >= report["records_per_cpu_s_best"]
    assert "records/s" in proc.stdout and "json.loads floor" in proc.stdout
