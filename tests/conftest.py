"""Shared fixtures: a local tiny tokenizer, a DataProto builder, the loopback judge server and the real vLLM tier."""

from __future__ import annotations

import pytest
from helpers.dataproto import make_reward_dataproto
from helpers.judge_fixtures import judge_server  # noqa: F401  (re-exported fixture)
from helpers.loop_fixtures import loop_runs  # noqa: F401  (re-exported fixture)
from helpers.real_vllm_fixtures import real_vllm, tiny_model_dir, vllm_session  # noqa: F401  (re-exported)
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


# ------------------------------------------------------------------------------------------ the real-vLLM tier
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out the `vllm` tests when scripts/test.sh turned the tier off, the CPU lacks AVX-512 or no vLLM venv exists
    (one line says so)."""
    from helpers.real_vllm import tier_off_reason

    reason = tier_off_reason()
    if reason is None:
        return
    left_out = [item for item in items if item.get_closest_marker("vllm")]
    if not left_out:
        return
    config.hook.pytest_deselected(items=left_out)
    items[:] = [item for item in items if not item.get_closest_marker("vllm")]
    config.stash[_TIER_NOTE] = f"real-vLLM tier: {len(left_out)} test(s) not run — {reason}"


_TIER_NOTE = pytest.StashKey[str]()


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """The one line saying why the real-vLLM tier did not run."""
    note = config.stash.get(_TIER_NOTE, None)
    if note:
        terminalreporter.write_line(note)
