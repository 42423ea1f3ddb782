"""data.prepare writes the same bytes as the code before the issue-16 speed work (commit 6ea85ad), for the same seed.

The expected digests were recorded by running that commit's data.prepare on the same inputs: the shipped samples
and a 3,000-record file from benchmarks/cail_synth.py (seed 7), with several option sets. Parquet bytes also hold
the writer's version, so the byte digests are compared when pyarrow is the version they were recorded with
(RECORDED_PYARROW); the content digests (every row, as JSON) and the stats are compared with any version.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import sys

import pyarrow
import pyarrow.parquet as pq
import pytest

from data.prepare import PrepareConfig, prepare

REPO = pathlib.Path(__file__).resolve().parents[2]
SAMPLES = REPO / "data" / "samples"
sys.path.insert(0, str(REPO / "benchmarks"))
from cail_synth import write_cail  # noqa: E402

RECORDED_PYARROW = "26.0.1"
OPTIONS = {
    "default": {},
    "sized": {"train_size": 1001, "test_size": 203, "seed": 3},
    "chat_subset": {"template": "chat", "tasks": ("verdict", "charge"), "seed": 1},
}


def _inputs(name: str, tmp: pathlib.Path) -> tuple[str, tuple[str, ...]]:
    """(source, input paths) of one named input."""
    if name == "sample":
        return "cail2018", (str(SAMPLES / "cail2018_sample.jsonl"), str(SAMPLES / "cail2018_bad.jsonl"))
    if name == "judgments":
        return "judgments", (str(SAMPLES / "judgments_sample.jsonl"), str(SAMPLES / "judgments_bad.jsonl"))
    return "cail2018", (str(write_cail(tmp / "synth.jsonl", 3000, 7)),)


def digests(out: pathlib.Path) -> dict[str, str]:
    """Digests of one output directory: parquet bytes, parquet rows, stats.json (paths cut to file names)."""
    result = {}
    for split in ("train", "test"):
        path = out / f"{split}.parquet"
        result[f"{split}.parquet"] = hashlib.sha256(path.read_bytes()).hexdigest()
        rows = json.dumps(pq.read_table(path).to_pylist(), ensure_ascii=False, sort_keys=True)
        result[f"{split}.rows"] = hashlib.sha256(rows.encode("utf-8")).hexdigest()
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    for examples in stats["skip_examples"].values():
        for example in examples:
            example["file"] = pathlib.Path(example["file"]).name
    result["stats.json"] = hashlib.sha256(json.dumps(stats, sort_keys=True).encode("utf-8")).hexdigest()
    labels = out / "label_sets.json"
    if labels.exists():
        result["label_sets.json"] = hashlib.sha256(labels.read_bytes()).hexdigest()
    return result


def run(name: str, option: str, tmp: pathlib.Path) -> dict[str, str]:
    """Prepare one (input, options) pair into tmp/out and return its digests."""
    source, inputs = _inputs(name, tmp)
    out = tmp / f"out_{name}_{option}"
    prepare(PrepareConfig(source=source, inputs=inputs, output=str(out), **OPTIONS[option]))
    return digests(out)


# (input, options) -> file -> digest: "<split>.parquet" bytes, "<split>.rows" content, stats.json, label_sets.json
# Recorded at 6ea85ad (`python tests/data/test_data_identity.py`); stats.json re-recorded at 263f25e, whose only change
# to it is the new `config.sft_fraction: 0.0` key (data.prepare --sft-fraction; the rest of the digests unchanged).
EXPECTED: dict[str, dict[str, str]] = {
    "sample/default": {
        "train.parquet": "3eb41567d2071777772a6510409a6a6a5d78a34d7d26c366d115a51afd189672",
        "train.rows": "27ef19203f4eb6d39022dc2366b30050fa60d62a6743d309381b90b99a297a80",
        "test.parquet": "f3d28424410fd18a6dce1188989d2f34f7f82bc45bd0ac18bfb5e120409e77a7",
        "test.rows": "421da430f3b3ba7293a9a968a3a6be764bb3011dddea8f7840fcd060eb75a60a",
        "stats.json": "0e05bfc7ceb2f889fcfba4ab0dc8b58d02611a8b6224404123de7049059a055e",
        "label_sets.json": "38071f00ac1d807b1b6a3b2aea5be37228705327d6a1f350936da151f44a3056",
    },
    "sample/sized": {
        "train.parquet": "0e264f2195da03633ea396b8f2d7a9001d9312d8492e4f275090e41a0df3e977",
        "train.rows": "ca04140d6f92a8474c1cec47802733eeb9f96b0c5057b65b9c5d86dbdba1f578",
        "test.parquet": "78825aa5af9794dba61787c4a21572db78f58999f8a7fa8d1e462f35e38a1905",
        "test.rows": "00430da917a0d27c7dac80c6fc55565897f3a8b12ae5935f3f81a77f5651c88c",
        "stats.json": "b7c8795f9505e094785a91d139fe2439d60aa6b3da5486112aec210949e1d133",
        "label_sets.json": "38071f00ac1d807b1b6a3b2aea5be37228705327d6a1f350936da151f44a3056",
    },
    "sample/chat_subset": {
        "train.parquet": "876a4ebaffb8e6564ba85c6bf98795af4aaf8057fdd4ba12f23e0b2d70486546",
        "train.rows": "936fe75aa031327b6c90b653bf849a5cfca4d8e865ddd72022c484c9f4abe975",
        "test.parquet": "22057286bd08a56f783702819686a965e1094c56f5d0e6d83c50da870748b148",
        "test.rows": "9ca889d7ac411a60e56e19fe3b5ac61d1bbfadfd1ee7a8505a0f3f2c7e144407",
        "stats.json": "f74b443eeca6f138910bf2ea746de66b1478d20f56ce1cabb079582704185022",
        "label_sets.json": "38071f00ac1d807b1b6a3b2aea5be37228705327d6a1f350936da151f44a3056",
    },
    "synth/default": {
        "train.parquet": "0adc46f1f1895fa121eb56859e0a7ff2c00a84e999fdd9b72bb427344114233e",
        "train.rows": "98abafe1b21fbc60b08cfebc2693e6f82a5d35dd0cceb65c36e26c08bbc9df5b",
        "test.parquet": "6f7b384205190d80cce3efb2d5db6ef568a0cf081182bfcce60aaa92e3957b21",
        "test.rows": "2e1d785e577b1a6f48a340183930982adaccd8d120504868fd361fee9ae04d04",
        "stats.json": "b24f9cca51ebb3bfe66b4a08de164d33d2b74c404d61ffb3d4916bc8c2f2f34d",
        "label_sets.json": "8af5da227e13ef54ab3c9fd72d844b6b090d86751a3800957a381d10bee14a5f",
    },
    "synth/sized": {
        "train.parquet": "f0b8a862d7db8838de7c499142b77d8a367f6f5520a61e8bcc937f1f1d9aec09",
        "train.rows": "958fab7c5f4d06461027d697e3758a67dfe11283be70da626e103087b7bcf47c",
        "test.parquet": "19f4dd126ec868a8707fe1605a2f8f8961887c25b2f897bf01c34f18ff632087",
        "test.rows": "1becb8239ed80be72d2387ec5001eb61c3f5f317f135a3009c9c5fd186cbd8c2",
        "stats.json": "0262043dfa017525e2c82b90edb5da9e749283b787730ba8559f9b3649c1a67e",
        "label_sets.json": "8af5da227e13ef54ab3c9fd72d844b6b090d86751a3800957a381d10bee14a5f",
    },
    "synth/chat_subset": {
        "train.parquet": "d830aa7f60edd1fe9f02f47c0df2ff1e9a14ac2d7e6493792027385ff5d7a07d",
        "train.rows": "b44226f32e68a51efc76258993a8034b3236c1077066f7ecf9e626bfaf72c454",
        "test.parquet": "2915e8ff19afdd0071832bb51ce768e80bc1aa9630f7f035025f32452ce2a3ab",
        "test.rows": "a3fc6540e4583e30f0dab3b6687dfb6e4d994a9fefd2bd720746224f388b1411",
        "stats.json": "cca4ecd3aa8f7ac3bb15f8c22401e2f20e23f5e937d8e53a910ecf83f0ea92a7",
        "label_sets.json": "8af5da227e13ef54ab3c9fd72d844b6b090d86751a3800957a381d10bee14a5f",
    },
    "judgments/default": {
        "train.parquet": "5a2260fbbc18d0da53cde644a5725bff62e7654307bb2361eec494d3068b7a5c",
        "train.rows": "e40325c446e17f815f354b173475a9d4b1e6db07e098fb6d13ce0a0d1992f74e",
        "test.parquet": "c7ce095e57f0a8b9506c6a8336351c045c9a23d9f718ac8c43234404f9220615",
        "test.rows": "1877ad220414bf1cd6272fe53d035a1b66c1b355f01a36f3a2c1d8e38ce76df4",
        "stats.json": "39d5a5320c9b61fa7b34cd75a800d36e236354b39ea96ab74a5158ada1852655",
    },
    "judgments/sized": {
        "train.parquet": "6fac7e54893a8e2ae51706ca7b80cac0acd4c30a2b1caebd7a1310fed545b986",
        "train.rows": "4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945",
        "test.parquet": "46a2dbb6722542c508b46f7e914ce4d87ae3c42dac16c424228f9bb437de2478",
        "test.rows": "2a5996102c1036f1824788ff1aa10f2213b7c41654595e76c48f83e6063bbf0c",
        "stats.json": "9678cf76490471b3b29cd9f4bfa10c267b892831e6f7667c22bdd0a69f031262",
    },
    "judgments/chat_subset": {
        "train.parquet": "2437578f4fda096202ad6dafb8bfe73706dcfc62a1f3fc0e2a6ad3f7fb2b097a",
        "train.rows": "39a06d249bea569b27f0d9cb85fc42cdecaef96b580e0e07c06284241d59083b",
        "test.parquet": "e433bf31e10e653b7b1a8d9052580f3fc4a25c1132e0a4bbe7e3dc526abf62d5",
        "test.rows": "89312f63ff5e0d0fe2e162026443c92948c81ebf43d191e4925e355c2ee963ac",
        "stats.json": "2f646c61123d8ccb9e9f802b7e5605c74034ef96e9e7fe358d6cde34b59cb5be",
    },
}


@pytest.mark.parametrize("option", list(OPTIONS))
@pytest.mark.parametrize("name", ["sample", "synth", "judgments"])
def test_output_is_byte_identical_to_the_code_before(name, option, tmp_path):
    """Same seed, same inputs: the same parquet bytes (same pyarrow), rows, stats and label lists as before."""
    got = run(name, option, tmp_path)
    want = EXPECTED[f"{name}/{option}"]
    same_writer = pyarrow.__version__ == RECORDED_PYARROW
    for key, digest in want.items():
        if key.endswith(".parquet") and not same_writer:
            continue  # the writer's version is in the bytes; the rows digest below holds the content
        assert got[key] == digest, f"{name}/{option}: {key} differs from the output of the code before"
    assert set(got) == set(want)


if __name__ == "__main__":  # record the digests: python tests/data/test_data_identity.py (on the reference commit)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        table = {f"{n}/{o}": run(n, o, pathlib.Path(tmp)) for n in ("sample", "synth", "judgments") for o in OPTIONS}
    print(json.dumps({"pyarrow": pyarrow.__version__, "expected": table}, indent=4))
