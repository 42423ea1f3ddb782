"""Shared fixtures: a local tiny tokenizer, a DataProto builder, and the loopback judge server."""

from __future__ import annotations

import pytest
from helpers.dataproto import make_reward_dataproto
from helpers.judge_fixtures import judge_server  # noqa: F401  (re-exported fixture)
from helpers.tokenizer import build_tiny_tokenizer


@pytest.fixture(scope="session")
def tiny_tokenizer_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Directory of a tiny BPE tokenizer trained on our sample text (usable wherever verl wants a model path)."""
    path = tmp_path_factory.mktemp("tiny_tokenizer")
    build_tiny_tokenizer(path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_tokenizer_path: str):
    """The tiny tokenizer, loaded back the way verl loads one (verl.utils.hf_tokenizer)."""
    from verl.utils import hf_tokenizer

    return hf_tokenizer(tiny_tokenizer_path)


@pytest.fixture
def reward_dataproto(tiny_tokenizer):
    """Factory: make_reward_dataproto bound to the tiny tokenizer."""

    def build(**kwargs):
        return make_reward_dataproto(tiny_tokenizer, **kwargs)

    return build
