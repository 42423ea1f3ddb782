"""A large fictional CAIL2018-format file for benchmarks, generated at run time from the shipped samples."""

from __future__ import annotations

import argparse
import gzip
import json
import random
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE = REPO_ROOT / "data" / "samples" / "cail2018_sample.jsonl"
# Fact lengths of real CAIL2018 (characters): p50 383, p90 987, p99 3,770; a log-normal close to that.
_MEDIAN, _SIGMA, _MAX_CHARS = 383, 0.75, 22_000
_SURNAMES = "张王李赵刘陈杨黄周吴徐孙马朱胡郭何林罗高"
_PLACES = ("青禾县", "云川市", "临江区", "北岭镇", "南湖区", "石桥乡", "东港市", "西峰县")


def _samples() -> tuple[list[dict], list[str]]:
    """The sample records (their meta is reused) and every sentence of their facts (the text is recombined)."""
    records = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]
    sentences = [s + "。" for r in records for s in r["fact"].split("。") if s.strip()]
    return records, sentences


def _fact(rng: random.Random, sentences: list[str], serial: int) -> str:
    """A unique fictional fact of a log-normal length, full-width punctuation as in real facts."""
    target = min(_MAX_CHARS, max(40, int(rng.lognormvariate(0, _SIGMA) * _MEDIAN)))
    who = rng.choice(_SURNAMES) + "某" * rng.randint(1, 2)
    when = f"{2010 + serial % 10}年{1 + serial % 12}月{1 + serial % 28}日"
    head = f"公诉机关指控，{when}，被告人{who}在{rng.choice(_PLACES)}"
    parts, size = [head, f"（案号：{serial}）。"], len(head) + 12
    while size < target:
        sentence = rng.choice(sentences)
        parts.append(sentence)
        size += len(sentence)
    return "".join(parts)[:target] if size > target + 200 else "".join(parts)


def write_cail(path: str | Path, records: int, seed: int = 0) -> Path:
    """Write `records` lines of fictional CAIL2018 JSON (unique facts, sample metas) to path (.gz compresses)."""
    rng = random.Random(seed)
    samples, sentences = _samples()
    out = Path(path)
    opener = gzip.open if out.suffix == ".gz" else open
    with opener(out, "wt", encoding="utf-8") as fh:
        for serial in range(records):
            meta = rng.choice(samples)["meta"]
            fh.write(json.dumps({"fact": _fact(rng, sentences, serial), "meta": meta}, ensure_ascii=False) + "\n")
    return out


def main() -> None:
    """CLI: python benchmarks/cail_synth.py OUT.jsonl --records N."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("output")
    p.add_argument("--records", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    write_cail(args.output, args.records, args.seed)


if __name__ == "__main__":
    main()
