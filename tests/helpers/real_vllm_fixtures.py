"""Session fixtures of the real-vLLM tier; re-exported by tests/conftest.py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.real_vllm import RealVLLM, free_port
from helpers.tiny_model import DEFAULT_CACHE, build_tiny_model


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    """The tiny random-weight Qwen2 (built once into .cache/tiny-qwen2, or $LEGAL_TINY_MODEL_DIR, then reused)."""
    return build_tiny_model(os.environ.get("LEGAL_TINY_MODEL_DIR") or DEFAULT_CACHE)


@pytest.fixture(scope="session")
def vllm_session(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealVLLM]:
    """The session's one real vLLM server (started on first use, stopped at the end of the run)."""
    server = RealVLLM(tiny_model_dir, tmp_path_factory.mktemp("vllm"), port=free_port())
    yield server
    server.stop()


@pytest.fixture
def real_vllm(vllm_session: RealVLLM) -> RealVLLM:
    """The real vLLM server, running (started again when an earlier test stopped or killed it)."""
    return vllm_session.ensure_running()
