"""judge.server_command / judge.server_args: the one setting that picks the judge server's command line."""

from __future__ import annotations

import datetime as dt

import pytest

from recipes.launch.commands import ConfigError, JudgeSpec, build_plan

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


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("", False), ("10.0.0.5", False), ("judge-a", False)],
)  # fmt: skip
def test_which_hosts_are_loopback(host: str, loopback: bool) -> None:
    """Only a loopback bind keeps the judge on this machine; a wildcard, an address or a name is reachable."""
    assert JudgeSpec.from_config({"judge": {"host": host}}).binds_loopback is loopback


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "http://127.0.0.1:8000/v1"),
        ("10.0.0.5", "http://10.0.0.5:8000/v1"),
        ("0.0.0.0", "http://node7:8000/v1 (listening on every interface, 0.0.0.0:8000; http://127.0.0.1:8000/v1 on "
                    "this machine)"),
        ("::", "http://node7:8000/v1 (listening on every interface, :::8000; http://127.0.0.1:8000/v1 on this "
               "machine)"),
    ],
)  # fmt: skip
def test_the_address_a_wildcard_judge_is_reached_at(host: str, expected: str) -> None:
    """A wildcard bind is announced with the URL other machines use (issue 24 item 13), not only 127.0.0.1's."""
    assert JudgeSpec.from_config({"judge": {"host": host}}).address(hostname="node7") == expected
