"""judge.server_command / judge.server_args: the one setting that picks the judge server's command line."""

from __future__ import annotations

import datetime as dt

import pytest

from recipes.commands import ConfigError, build_plan

DAY = dt.date(2025, 3, 12)
TAIL = [
    "--served-model-name", "/m", "--host", "127.0.0.1", "--port", "8000", "--tensor-parallel-size", "1",
    "--data-parallel-size", "1", "--max-model-len", "8192", "--gpu-memory-utilization", "0.9",
]  # fmt: skip
API_SERVER = "judge.server_command=[/venv/bin/python,-m,vllm.entrypoints.openai.api_server,--model,'{model}']"


@pytest.mark.parametrize(
    ("overrides", "env", "expected"),
    [
        pytest.param([], {}, ["vllm", "serve", "/m", *TAIL], id="default-vllm-serve"),
        pytest.param(
            [API_SERVER, "judge.server_args=[--dtype,float32]"], {},
            ["/venv/bin/python", "-m", "vllm.entrypoints.openai.api_server", "--model", "/m", *TAIL, "--dtype",
             "float32"],
            id="api-server-module-with-model-flag",
        ),
        pytest.param(
            ["judge.server_command='vllm serve'"], {"VLLM": "/opt/v/bin/vllm"},
            ["/opt/v/bin/vllm", "serve", "/m", *TAIL], id="string-command-env-executable",
        ),
    ],
)  # fmt: skip
def test_server_command_from_the_config(overrides: list[str], env: dict, expected: list[str]) -> None:
    """The command is the config's, then the model (positional unless "{model}" places it), then the flags."""
    plan = build_plan("legal_grpo", ["judge.model=/m", *overrides], env, today=DAY)
    assert plan.vllm_cmd == expected


def test_empty_server_command_is_a_config_error() -> None:
    """An empty command names the key instead of running the model path as a program."""
    with pytest.raises(ConfigError, match="judge.server_command is empty"):
        build_plan("legal_grpo", ["judge.server_command=[]"], {}, today=DAY)
