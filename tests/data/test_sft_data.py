"""data/sft.py: the parquet loads in verl's own SFT dataset class with the local tokenizer; the loss covers only the
response; malformed rows fail naming the row and field and leave no file behind."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from data.sft import SFT_SCHEMA, SftRow, write_sft_parquet
from recipes.launch.commands import compose_config

SYSTEM = "你是内容安全审核员，按标准给文本的九个维度打分。"
RESPONSES = [
    '<reasoning>文本介绍一家面馆的营业时间，没有违规内容。</reasoning> <answer>{"敏感词": 100}</answer>',
    '<reasoning>含有夸大疗效的广告语。</reasoning>\n<answer>\n{"虚假信息": 40, "商业违规": 55}\n</answer>',
    "<reasoning>x</reasoning> <answer>{}</answer>",
]


def _rows(with_system: bool) -> list[SftRow]:
    rows = []
    for i, response in enumerate(RESPONSES):
        prompt = [{"role": "user", "content": f"请评估这段文本：第{i}号样本，周末营业。"}]
        if with_system:
            prompt.insert(0, {"role": "system", "content": SYSTEM})
        rows.append(SftRow(prompt=prompt, response=response, data_source="safety", index=10 + i))
    return rows


@pytest.mark.parametrize("with_system", [True, False], ids=["system+user", "user-only"])
@pytest.mark.parametrize("pad_mode", ["no_padding", "right"])
def test_loads_in_verls_sft_dataset_and_masks_only_the_response(
    tmp_path: Path, tiny_tokenizer, with_system: bool, pad_mode: str
) -> None:
    """MultiTurnSFTDataset (what verl.trainer.sft_trainer builds) with configs/safety_sft.yaml's data section: one
    item per row, and the loss-masked tokens decode to exactly the response and the end-of-turn marker."""
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    path = tmp_path / "sft.parquet"
    rows = _rows(with_system)
    assert write_sft_parquet(rows, path) == len(rows)
    data = compose_config("safety_sft", [f"data.pad_mode={pad_mode}", "data.max_length=512"]).data
    dataset = MultiTurnSFTDataset(str(path), tiny_tokenizer, data)
    assert len(dataset) == len(rows)
    for row, item in zip(rows, (dataset[i] for i in range(len(dataset))), strict=True):
        ids, mask = item["input_ids"], item["loss_mask"]
        assert ids.shape == mask.shape
        trained = tiny_tokenizer.decode(ids[mask.bool()].tolist())
        assert trained == row.response + "<|im_end|>\n"
        untrained = tiny_tokenizer.decode(ids[~mask.bool()].tolist())
        assert row.prompt[-1]["content"] in untrained and row.response not in untrained
        assert untrained.endswith("<|im_start|>assistant\n") or pad_mode == "right"


def test_schema_columns_and_order(tmp_path: Path) -> None:
    """The explicit schema (same types in every file); rows keep their order, index and messages."""
    path = tmp_path / "out" / "sft.parquet"
    rows = _rows(with_system=True)
    write_sft_parquet(iter(rows), path)
    table = pq.read_table(path)
    assert table.schema.equals(SFT_SCHEMA)
    got = table.to_pylist()
    assert [r["extra_info"]["index"] for r in got] == [10, 11, 12]
    assert got[1]["messages"] == [*rows[1].prompt, {"role": "assistant", "content": RESPONSES[1]}]
    assert not list(path.parent.glob("*.partial"))


def test_empty_input_writes_an_empty_file(tmp_path: Path) -> None:
    """Zero rows is a valid (empty) file with the schema, and 0 is returned."""
    path = tmp_path / "sft.parquet"
    assert write_sft_parquet([], path) == 0
    assert pq.read_table(path).num_rows == 0 and pq.read_schema(path).equals(SFT_SCHEMA)


GOOD_PROMPT = [{"role": "user", "content": "文本"}]


@pytest.mark.parametrize(
    ("prompt", "response", "needle"),
    [
        ([], "r", "non-empty list"),
        ("文本", "r", "non-empty list"),
        ([{"role": "assistant", "content": "a"}], "r", "prompt[0]"),
        ([{"role": "user", "content": "  "}], "r", "prompt[0]"),
        ([{"role": "user", "content": 3}], "r", "prompt[0]"),
        ([{"role": "user"}], "r", "prompt[0]"),
        (["not a message"], "r", "prompt[0]"),
        ([{"role": "user", "content": "a"}, {"role": "system", "content": "s"}], "r", "last prompt message"),
        (GOOD_PROMPT, "", "response"),
        (GOOD_PROMPT, " \n", "response"),
        (GOOD_PROMPT, None, "response"),
    ],
)
def test_bad_row_fails_naming_row_and_field_and_leaves_no_file(
    tmp_path: Path, prompt: object, response: object, needle: str
) -> None:
    """The bad row is the third one: the error names it (position and index) and no file (nor .partial) remains."""
    path = tmp_path / "sft.parquet"
    rows = [*_rows(with_system=False)[:2], SftRow(prompt=prompt, response=response, data_source="s", index=7)]  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"SFT row 2 \(index 7\)") as info:
        write_sft_parquet(rows, path)
    assert needle in str(info.value)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------- data.prepare --sft-fraction (safety)
REPO = Path(__file__).resolve().parents[2]
SAFETY_SAMPLE = REPO / "data" / "samples" / "safety_sample.jsonl"
SAFETY_BAD = REPO / "data" / "samples" / "safety_bad.jsonl"
PREPARED = ("train.parquet", "test.parquet", "sft.parquet", "stats.json")


def _prepare(out: Path, *extra: str, inputs: tuple[Path, ...] = (SAFETY_SAMPLE,)) -> int:
    from data.prepare import main

    return main(["--source", "safety", "--input", *map(str, inputs), "--output", str(out), *extra])


def _fenced_text(messages: list[dict]) -> str:
    from data.domains.safety.prompt import TEXT_FENCE_END, TEXT_FENCE_START

    user = next(m["content"] for m in messages if m["role"] == "user")
    return user.split(TEXT_FENCE_START + "\n", 1)[1].split("\n" + TEXT_FENCE_END, 1)[0]


@pytest.fixture(scope="module")
def prepared_sft(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped safety sample (and its bad lines) prepared with --sft-fraction 0.15."""
    out = tmp_path_factory.mktemp("sft_prepared")
    assert _prepare(out, "--sft-fraction", "0.15", inputs=(SAFETY_SAMPLE, SAFETY_BAD)) == 0
    return out


def test_sft_share_is_counted_and_disjoint_from_the_grpo_split(prepared_sft: Path) -> None:
    """round(0.15 x unique texts) texts go to sft.parquet, none of them in train or test (compared by normalized
    text, as data.prepare splits); every record read is kept or skipped, every kept text is in exactly one file."""
    from data.split import normalize_fact

    stats = json.loads((prepared_sft / "stats.json").read_text(encoding="utf-8"))
    cases = stats["cases"]
    assert cases["sft"] == round(0.15 * cases["unique"]) == stats["items_total"]["sft"] > 0
    assert cases["unique"] == cases["train"] + cases["test"] + cases["sft"] + cases["unused"]
    assert stats["records"]["read"] == stats["records"]["kept"] + stats["records"]["skipped"]
    assert stats["config"]["sft_fraction"] == 0.15
    assert sum(stats["distributions"]["sft"]["labels"].values()) >= cases["sft"]
    texts = {
        split: [
            normalize_fact(_fenced_text(r["prompt"]))
            for r in pq.read_table(prepared_sft / f"{split}.parquet").to_pylist()
        ]
        for split in ("train", "test")
    }
    sft_rows = pq.read_table(prepared_sft / "sft.parquet").to_pylist()
    texts["sft"] = [normalize_fact(_fenced_text(r["messages"])) for r in sft_rows]
    assert [len(texts[s]) for s in ("train", "test", "sft")] == [cases["train"], cases["test"], cases["sft"]]
    assert not set(texts["sft"]) & (set(texts["train"]) | set(texts["test"]))
    assert not set(texts["train"]) & set(texts["test"])
    assert len(set(texts["sft"])) == len(texts["sft"])
    assert [r["extra_info"]["index"] for r in sft_rows] == list(range(len(sft_rows)))


def test_sft_rows_are_the_grpo_prompt_plus_the_gold_response(prepared_sft: Path) -> None:
    """Each row: build_prompt(text) exactly as a GRPO row of that text would have it, then one assistant message =
    gold_response(gold scores, gold reasoning) of that text's input record."""
    from data.domains.safety.prompt import build_prompt, gold_response
    from data.split import normalize_fact

    records = {}
    for line in SAFETY_SAMPLE.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        records.setdefault(normalize_fact(rec["text"]), rec)  # the first of a duplicate is the one kept
    for row in pq.read_table(prepared_sft / "sft.parquet").to_pylist():
        *prompt, answer = row["messages"]
        rec = records[normalize_fact(_fenced_text(prompt))]
        assert prompt == build_prompt(rec["text"])
        assert answer == {"role": "assistant", "content": gold_response(rec["scores"], rec["reasoning"])}
        assert row["data_source"] == "safety"


def test_prepared_sft_loads_in_verls_sft_dataset(prepared_sft: Path, tiny_tokenizer) -> None:
    """verl's MultiTurnSFTDataset with configs/safety_sft.yaml's data section and the local tokenizer: one item per
    row, trained tokens = exactly the gold response (+ end of turn)."""
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    path = prepared_sft / "sft.parquet"
    data = compose_config("safety_sft", [f"data.train_files={path}"]).data
    dataset = MultiTurnSFTDataset(str(data.train_files), tiny_tokenizer, data)
    rows = pq.read_table(path).to_pylist()
    assert len(dataset) == len(rows)
    for row, k in zip(rows, range(len(dataset)), strict=True):
        item = dataset[k]
        trained = tiny_tokenizer.decode(item["input_ids"][item["loss_mask"].bool()].tolist())
        assert trained == row["messages"][-1]["content"] + "<|im_end|>\n"


def test_same_seed_same_bytes_and_the_test_split_does_not_move(tmp_path: Path) -> None:
    """Two runs with one seed write byte-identical files; the test split is the same bytes with or without
    --sft-fraction (sft is taken after test), and without it no sft.parquet is written and stats has no sft."""
    a, b, plain, other = (tmp_path / n for n in ("a", "b", "plain", "seed1"))
    for out in (a, b):
        assert _prepare(out, "--sft-fraction", "0.15", "--seed", "3") == 0
    assert _prepare(plain, "--seed", "3") == 0
    assert _prepare(other, "--sft-fraction", "0.15", "--seed", "4") == 0
    for name in PREPARED:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / "test.parquet").read_bytes() == (plain / "test.parquet").read_bytes()
    assert (a / "sft.parquet").read_bytes() != (other / "sft.parquet").read_bytes()
    assert not (plain / "sft.parquet").exists()
    stats = json.loads((plain / "stats.json").read_text(encoding="utf-8"))
    assert "sft" not in stats["cases"] and "sft" not in stats["items_total"]
    with_sft = json.loads((a / "stats.json").read_text(encoding="utf-8"))["cases"]
    assert with_sft["train"] + with_sft["sft"] == stats["cases"]["train"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--source", "cail2018", "--sft-fraction", "0.15"], "source cail2018 has no SFT response"),
        (["--source", "safety", "--sft-fraction", "1.0"], "--sft-fraction must be in [0, 1)"),
        (["--source", "safety", "--sft-fraction", "-0.1"], "--sft-fraction must be in [0, 1)"),
    ],
)
def test_bad_sft_fraction_is_refused_naming_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], needle: str
) -> None:
    """A usage error (exit 2) that names the option; nothing is written."""
    from data.prepare import main

    with pytest.raises(SystemExit) as info:
        main([*args, "--input", str(SAFETY_SAMPLE), "--output", str(tmp_path / "out")])
    assert info.value.code == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("n_cases", "test_fraction", "sft_fraction", "sizes"), [
    (100, 0.2, 0.15, (65, 20, 15)),
    (10, 0.2, 0.15, (6, 2, 2)),  # round(1.5) = 2
    (3, 0.5, 0.9, (0, 2, 1)),  # sft takes only what test left
    (50, 0.0, 0.5, (25, 0, 25)),
])  # fmt: skip
def test_plan_split_sft_share(n_cases: int, test_fraction: float, sft_fraction: float, sizes: tuple[int, ...]) -> None:
    """sft gets round(fraction x cases) after test; every case in at most one split; used() covers all three."""
    from data.split import PLAN_SPLITS, plan_split

    plan = plan_split(n_cases, 1, seed=0, test_fraction=test_fraction, sft_fraction=sft_fraction)
    got = tuple(int((plan.split == PLAN_SPLITS.index(s)).sum()) for s in ("train", "test", "sft"))
    assert got == sizes
    assert int(plan.used().sum()) == sum(sizes)
    assert {plan.tasks_for(c, ["score"])[0] for c in range(n_cases) if plan.split[c] == 2} <= {"sft"}
    base = plan_split(n_cases, 1, seed=0, test_fraction=test_fraction)
    assert ((base.split == 1) == (plan.split == 1)).all()  # the same test cases


def test_safety_sft_config_reads_the_prepared_file() -> None:
    """configs/safety_sft.yaml reads sft.parquet from the directory the safety GRPO config reads train.parquet from,
    i.e. what `data.prepare --source safety --output data/prepared/safety --sft-fraction 0.15` writes."""
    sft = Path(compose_config("safety_sft").data.train_files)
    grpo = Path(compose_config("safety_grpo").data.train_files)
    assert sft == grpo.parent / "sft.parquet" == Path("data/prepared/safety/sft.parquet")
