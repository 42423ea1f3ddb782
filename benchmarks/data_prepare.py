"""Throughput of `python -m data.prepare` on a large fictional CAIL2018 file, against the JSON-decoding floor.

Generates the file at run time (benchmarks/cail_synth.py), then in the same run: the floor (read every line and
json.loads it, and the same with msgspec, the decoder data.prepare uses), and data.prepare run twice with the same
seed in a child process pinned to one core (records/s, CPU seconds, peak RSS, and whether both runs wrote the same
bytes), and the fixed start-up cost (a child that only imports). Prints a table; --json writes the report.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec
from cail_synth import write_cail  # benchmarks/ is on sys.path when this file runs as a script

REPO_ROOT = Path(__file__).resolve().parents[1]
TARGET_RECORDS_PER_S = 20_000


def _floor(path: Path, decode: Any) -> dict[str, float]:
    """Read every line of path and decode it: wall and CPU seconds, records/s."""
    wall0, cpu0, n = time.perf_counter(), time.process_time(), 0
    with open(path, "rb") as fh:
        for raw in fh:
            decode(raw)
            n += 1
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return {
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "records_per_s": round(n / wall),
        "records_per_cpu_s": round(n / cpu),
    }


def _one_core() -> None:
    """Pin the child to one CPU (the first this process may use): the target is per core."""
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def _prepare(path: Path, out: Path, seed: int, extra: list[str]) -> dict[str, Any]:
    """Run data.prepare in a child pinned to one core; wall, CPU and peak RSS of that child."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cmd = [sys.executable, "-m", "data.prepare", "--source", "cail2018", "--input", str(path), "--output", str(out)]
    wall0 = time.perf_counter()
    # The child's progress (data/progress.py: plain lines in a pipe) goes to our stderr; its summary is dropped.
    proc = subprocess.run(
        [*cmd, "--seed", str(seed), *extra],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        preexec_fn=_one_core,
    )
    wall = time.perf_counter() - wall0
    if proc.returncode != 0:
        raise RuntimeError(f"data.prepare failed ({proc.returncode}): its error is above")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    digest = hashlib.sha256()
    for name in ("train.parquet", "test.parquet"):
        digest.update((out / name).read_bytes())
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    return {
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "peak_rss_mb": round(after.ru_maxrss / 1024, 1),  # max over children so far; runs are alike
        "records_read": stats["records"]["read"],
        "items": stats["items_total"],
        "parquet_sha256": digest.hexdigest(),
    }


def _startup(path: Path, workdir: Path) -> float:
    """CPU seconds of data.prepare on the first 10 lines of path, on one core: the fixed cost of every run.

    That cost (interpreter, numpy, pyarrow, cn2an, the first batch and the parquet writers) is paid once per run: on
    a 100k-record file it is a sizeable share of the total, on the real 1.7M-line file a small one.
    """
    head = workdir / "head.jsonl"
    with open(path, "rb") as src, open(head, "wb") as dst:
        for _, line in zip(range(10), src, strict=False):
            dst.write(line)
    return _prepare(head, workdir / "out_head", 0, [])["cpu_s"]


def _stage(what: str) -> None:
    """One plain line on stderr as a stage starts (the result table goes to stdout at the end)."""
    print(f"[data_prepare] {what}", file=sys.stderr, flush=True)


def run(records: int, seed: int, workdir: Path, extra: list[str]) -> dict[str, Any]:
    """The whole benchmark: file, floors, two prepare runs; the report."""
    _stage(f"writing {records} fictional records")
    path = write_cail(workdir / "cail_synth.jsonl", records, seed)
    _stage("the floor: json.loads and msgspec over every line")
    floor_json = _floor(path, json.loads)
    floor_msgspec = _floor(path, msgspec.json.Decoder().decode)
    runs = []
    for i in range(2):
        _stage(f"data.prepare run {i + 1} of 2 (one core)")
        runs.append(_prepare(path, workdir / f"out{i}", seed, extra))
    _stage("start-up cost: data.prepare on 10 lines, 3 times")
    startup = min(_startup(path, workdir) for _ in range(3))
    best = min(runs, key=lambda r: r["wall_s"])
    per_s = records / best["wall_s"]
    least_cpu = min(r["cpu_s"] for r in runs)
    return {
        "config": {
            "records": records,
            "seed": seed,
            "file_mb": round(path.stat().st_size / 2**20, 1),
            "extra_args": extra,
            "loadavg_1m": round(os.getloadavg()[0], 2),
            "cpus_allowed": len(os.sched_getaffinity(0)),
        },
        "floor_json_loads": floor_json,
        "floor_msgspec": floor_msgspec,
        "prepare_runs": runs,
        "records_per_s": round(per_s),
        "records_per_cpu_s": round(records / best["cpu_s"]),
        "records_per_cpu_s_best": round(records / least_cpu),
        "startup_cpu_s": round(startup, 3),
        "records_per_cpu_s_after_startup": round(records / max(least_cpu - startup, 1e-9)),
        "ratio_to_json_floor": round(floor_json["records_per_s"] / per_s, 2),
        "ratio_to_json_floor_cpu": round(floor_json["records_per_cpu_s"] * best["cpu_s"] / records, 2),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "byte_identical": runs[0]["parquet_sha256"] == runs[1]["parquet_sha256"],
        "targets": {"records_per_s": TARGET_RECORDS_PER_S, "met": per_s >= TARGET_RECORDS_PER_S},
    }


def main() -> None:
    """CLI."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=200_000, help="lines in the generated CAIL file")
    p.add_argument("--seed", type=int, default=0, help="seed of the file and of data.prepare")
    p.add_argument("--workdir", type=Path, default=None, help="keep the file and outputs here (default: a temp dir)")
    p.add_argument("--json", type=Path, default=None, help="write the report here")
    p.add_argument("extra", nargs="*", help="more data.prepare arguments, after --")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="data_bench_") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        report = run(args.records, args.seed, workdir, args.extra)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    fj, fm = report["floor_json_loads"], report["floor_msgspec"]
    print(f"records {args.records} ({report['config']['file_mb']} MB), load {report['config']['loadavg_1m']}")
    print(f"floor json.loads: {fj['records_per_s']}/s wall, {fj['records_per_cpu_s']}/CPU-s")
    print(f"floor msgspec:    {fm['records_per_s']}/s wall, {fm['records_per_cpu_s']}/CPU-s")
    for i, r in enumerate(report["prepare_runs"]):
        print(f"prepare run {i}: {r['wall_s']} s wall, {r['cpu_s']} CPU-s, peak RSS {r['peak_rss_mb']} MB")
    print(
        f"startup (python + imports, once per run): {report['startup_cpu_s']} CPU-s; per record after it: "
        f"{report['records_per_cpu_s_after_startup']}/CPU-s (best run {report['records_per_cpu_s_best']}/CPU-s)"
    )
    print(
        f"data.prepare: {report['records_per_s']} records/s ({report['records_per_cpu_s']}/CPU-s), "
        f"{report['ratio_to_json_floor']}x the json.loads floor ({report['ratio_to_json_floor_cpu']}x in CPU), "
        f"byte-identical: {report['byte_identical']}, "
        f"target {TARGET_RECORDS_PER_S}/s {'met' if report['targets']['met'] else 'missed'}"
    )


if __name__ == "__main__":
    main()
