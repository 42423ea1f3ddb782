"""data/sft.py: the parquet loads in verl's own SFT dataset class with the local tokenizer; the loss covers only the
response; malformed rows fail naming the row and field and leave no file behind."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from data.sft import SFT_SCHEMA, SftRow, write_sft_parquet
from recipes.commands import compose_config

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
