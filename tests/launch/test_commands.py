"""The exact commands the launch scripts run, built in one place (recipes.launch.commands)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers.judge_fixtures import judge_server  # noqa: F401 - fixture

import recipes.launch.commands as commands
from recipes.launch.commands import (
    CONFIG_DIR,
    FORWARD_ENV,
    LAUNCH_TRAINERS,
    NODE_SECRETS,
    REPO_ROOT,
    RUNTIME_ENV_TEMPLATE,
    build_plan,
    build_runtime_env,
    health_url,
    is_healthy,
    launchable_configs,
    main,
    plan_to_bash,
)

DAY = dt.date(2025, 3, 12)
PY = ["python3", "-m", "recipes.main_ppo"]
CFG = f"--config-path={CONFIG_DIR}"
URL_KEY = "reward.custom_reward_function.reward_kwargs.judge_base_url"
VLLM_DEFAULT = [
    "vllm", "serve", "Qwen/Qwen2.5-7B-Instruct", "--served-model-name", "Qwen/Qwen2.5-7B-Instruct",
    "--host", "127.0.0.1", "--port", "8000", "--tensor-parallel-size", "1", "--data-parallel-size", "1",
    "--max-model-len", "8192", "--gpu-memory-utilization", "0.9",
]  # fmt: skip


@pytest.mark.parametrize(
    ("config", "overrides", "env", "expected"),
    [
        pytest.param(
            "legal_grpo", [], {},
            [*PY, CFG, "--config-name=legal_grpo", "trainer.experiment_name=legal-qwen2.5-7b-0312"],
            id="default",
        ),
        pytest.param(
            "configs/legal_grpo_rules.yaml", ["data.train_batch_size=14"], {"RUN_TAG": "-lr1e-6"},
            [*PY, CFG, "--config-name=legal_grpo_rules", "data.train_batch_size=14",
             "trainer.experiment_name=legal-rules-qwen2.5-7b-0312-lr1e-6"],
            id="rules-tag-override",
        ),
        pytest.param(
            "legal_grpo", ["trainer.experiment_name=mine"], {"RUN_NAME": "ignored"},
            [*PY, CFG, "--config-name=legal_grpo", "trainer.experiment_name=mine"],
            id="user-run-name-wins",
        ),
        pytest.param(
            "legal_grpo", [], {"RUN_NAME": "legal-qwen2.5-7b-0301"},
            [*PY, CFG, "--config-name=legal_grpo", "trainer.experiment_name=legal-qwen2.5-7b-0301"],
            id="resume-by-run-name",
        ),
        pytest.param(
            "legal_grpo", [], {"JUDGE_BASE_URL": "http://10.0.0.5:8000/v1"},
            [*PY, CFG, "--config-name=legal_grpo", "trainer.experiment_name=legal-qwen2.5-7b-0312",
             f"{URL_KEY}='http://10.0.0.5:8000/v1'", "judge.gpus=''", "trainer.n_gpus_per_node=8"],
            id="one-judge-from-env",
        ),
        pytest.param(
            "legal_grpo", [], {"JUDGE_BASE_URL": "http://a:8000/v1, http://b:8001/v1"},
            [*PY, CFG, "--config-name=legal_grpo", "trainer.experiment_name=legal-qwen2.5-7b-0312",
             f"{URL_KEY}='http://a:8000/v1,http://b:8001/v1'", "judge.gpus=''", "trainer.n_gpus_per_node=8"],
            id="two-judges-from-env",
        ),
        pytest.param(
            "legal_grpo_rules", [], {"JUDGE_BASE_URL": "http://a:8000/v1"},
            [*PY, CFG, "--config-name=legal_grpo_rules", "trainer.experiment_name=legal-rules-qwen2.5-7b-0312"],
            id="rules-ignores-judge-env",
        ),
        pytest.param(
            "legal_grpo", [], {"JUDGE_PORT": "8100"},
            [*PY, CFG, "--config-name=legal_grpo", "judge.port='8100'",
             "trainer.experiment_name=legal-qwen2.5-7b-0312"],
            id="judge-port-from-env",
        ),
    ],
)  # fmt: skip
def test_trainer_command(config: str, overrides: list[str], env: dict, expected: list[str]) -> None:
    """Single node: the trainer command, with run name and judge endpoints from the environment."""
    plan = build_plan(config, overrides, env, today=DAY)
    assert plan.trainer_cmd == expected
    assert not plan.multi_node


def test_judge_url_override_reaches_the_reward_kwargs() -> None:
    """The quoted comma list composes into reward_kwargs as one string the judge client splits."""
    from recipes.launch.commands import compose_config

    plan = build_plan("legal_grpo", [], {"JUDGE_BASE_URL": "http://a:8000/v1,http://b:8001/v1"}, today=DAY)
    cfg = compose_config("legal_grpo", plan.overrides)
    assert cfg.reward.custom_reward_function.reward_kwargs.judge_base_url == "http://a:8000/v1,http://b:8001/v1"
    assert plan.judge_urls == ["http://a:8000/v1", "http://b:8001/v1"]


@pytest.mark.parametrize(
    ("overrides", "env", "expected", "gpus"),
    [
        pytest.param([], {}, VLLM_DEFAULT, ("7",), id="default"),
        pytest.param(
            ["judge.port=9001", "judge.tensor_parallel_size=2", "judge.gpus='6,7'", "judge.host=0.0.0.0"], {},
            [*VLLM_DEFAULT[:5], "--host", "0.0.0.0", "--port", "9001", "--tensor-parallel-size", "2",
             *VLLM_DEFAULT[11:]],
            ("6", "7"), id="two-gpus-wildcard-bind",
        ),
        pytest.param(
            [], {"JUDGE_MODEL": "/models/qwen-judge", "JUDGE_GPUS": "3", "VLLM": "/opt/vllm/bin/vllm"},
            ["/opt/vllm/bin/vllm", "serve", "/models/qwen-judge", "--served-model-name", "/models/qwen-judge",
             *VLLM_DEFAULT[5:]],
            ("3",), id="env-model-gpus-binary",
        ),
    ],
)  # fmt: skip
def test_vllm_serve_command(overrides: list[str], env: dict, expected: list[str], gpus: tuple) -> None:
    """The judge server command from the judge section (no API key on the command line)."""
    plan = build_plan("legal_grpo", overrides, env, today=DAY)
    assert plan.vllm_cmd == expected
    assert plan.judge.gpus == gpus
    assert not any("api-key" in arg for arg in plan.vllm_cmd)


@pytest.mark.parametrize(
    ("config", "env", "address", "multi"),
    [
        pytest.param("legal_grpo", {"NNODES": "2"}, "http://127.0.0.1:8265", True, id="nnodes"),
        pytest.param("legal_grpo", {"RAY_ADDRESS": "http://head:8265"}, "http://head:8265", True, id="ray-address"),
        pytest.param("legal_grpo_multinode", {"LEGAL_SHARED_DIR": "/shared"}, "http://127.0.0.1:8265", True,
                     id="multinode-config"),
        pytest.param("legal_grpo", {}, "http://127.0.0.1:8265", False, id="single-node"),
    ],
)  # fmt: skip
def test_ray_job_submit_command(config: str, env: dict, address: str, multi: bool) -> None:
    """Multi-node: `ray job submit` with our runtime env and the repo as working dir; no absolute config path."""
    plan = build_plan(config, [], {**env, "RUN_NAME": "r1", "JUDGE_BASE_URL": "http://j1:8000/v1,http://j2:8000/v1"})
    name = Path(config).stem
    # One node with judges elsewhere: the judge GPU trains too (see test_env_judges_plan).
    gpus = [] if multi else ["judge.gpus=''", "trainer.n_gpus_per_node=8"]
    assert plan.multi_node is multi
    assert plan.submit_cmd == [
        "ray", "job", "submit", f"--address={address}", "--runtime-env=outputs/runtime_env.r1.yaml",
        "--working-dir", ".", "--",
        "python3", "-m", "recipes.main_ppo", f"--config-name={name}", "trainer.experiment_name=r1",
        f"{URL_KEY}='http://j1:8000/v1,http://j2:8000/v1'", *gpus,
    ]  # fmt: skip
    assert plan.judge_gpus_here == 0


def test_runtime_env_forwards_only_set_allowlisted_vars() -> None:
    """The generated runtime env = template + forwarded variables that are set; nothing else from the shell, and no
    secret (Ray's job API returns every job's runtime env; issue 24 item 12)."""
    secrets = {name: f"secret-{name}" for name in NODE_SECRETS}
    env = {"JUDGE_BASE_URL": "http://j:8000/v1", "WANDB_PROJECT": "p", "WANDB_MODE": "", "SECRET_OTHER": "x", **secrets}
    data = build_runtime_env(RUNTIME_ENV_TEMPLATE, env)
    template = yaml.safe_load(RUNTIME_ENV_TEMPLATE.read_text(encoding="utf-8"))
    assert data["excludes"] == template["excludes"]
    assert {".venv/", "checkpoints/", "data/prepared/"} <= set(data["excludes"])
    assert data["env_vars"] == {**template["env_vars"], "JUDGE_BASE_URL": "http://j:8000/v1", "WANDB_PROJECT": "p"}
    assert "SECRET_OTHER" not in FORWARD_ENV and "working_dir" not in data
    assert set(NODE_SECRETS) == {"JUDGE_API_KEY", "WANDB_API_KEY", "HF_TOKEN"}
    # the caller's own list cannot smuggle a secret in either
    forced = build_runtime_env(RUNTIME_ENV_TEMPLATE, env, forward=(*FORWARD_ENV, *NODE_SECRETS))
    assert not set(NODE_SECRETS) & set(forced["env_vars"])


@pytest.mark.parametrize("before", [None, 0o644, 0o666], ids=["new", "existing-0644", "existing-0666"])
def test_runtime_env_cli_writes_private_file(tmp_path: Path, capsys: pytest.CaptureFixture, before: int | None) -> None:
    """`commands runtime-env` leaves a mode-600 file, also over an existing world-readable one, by an atomic rename
    (a new inode; no temp file left); it names the secrets it left out (issue 24 item 14)."""
    out = tmp_path / "rt.yaml"
    old_inode = None
    if before is not None:
        out.write_text("env_vars: {JUDGE_API_KEY: leaked}\n")
        out.chmod(before)
        old_inode = out.stat().st_ino
    env = {"WANDB_PROJECT": "p", "JUDGE_API_KEY": "k"}
    assert main(["runtime-env", "--output", str(out)], environ=env) == 0
    assert out.stat().st_mode & 0o777 == 0o600
    assert out.stat().st_ino != old_inode
    data = yaml.safe_load(out.read_text())
    assert data["env_vars"]["WANDB_PROJECT"] == "p" and "JUDGE_API_KEY" not in data["env_vars"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rt.yaml"]
    printed = capsys.readouterr().out
    assert f"wrote {out} (forwarded: WANDB_PROJECT)" in printed
    assert "not forwarded: JUDGE_API_KEY (secrets stay out of the job's runtime env" in printed


def test_submission_authenticates_unless_told_otherwise() -> None:
    """`ray job submit` runs with RAY_AUTH_MODE=token (Ray's token auth); a mode the user set wins."""
    assert build_plan("legal_grpo_multinode", [], {"RUN_NAME": "r"}, today=DAY).ray_auth_mode == "token"
    plan = build_plan("legal_grpo_multinode", [], {"RUN_NAME": "r", "RAY_AUTH_MODE": "disabled"}, today=DAY)
    assert plan.ray_auth_mode == "disabled"
    assert "PLAN_RAY_AUTH_MODE=disabled" in plan_to_bash(plan, {}, 0).splitlines()


@pytest.mark.parametrize(
    ("what", "expected"),
    [
        ("trainer", f"CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6 python3 -m recipes.main_ppo {CFG} "
                    "--config-name=legal_grpo trainer.experiment_name=x"),
        ("vllm", "CUDA_VISIBLE_DEVICES=7 " + " ".join(VLLM_DEFAULT)),
        ("ray-submit", "python3 -m recipes.commands runtime-env --config legal_grpo --output "
                       "outputs/runtime_env.x.yaml && RAY_AUTH_MODE=token ray job submit "
                       "--address=http://127.0.0.1:8265 --runtime-env=outputs/runtime_env.x.yaml "
                       "--working-dir . -- python3 -m recipes.main_ppo --config-name=legal_grpo "
                       "trainer.experiment_name=x"),
    ],
)  # fmt: skip
def test_cli_prints_the_command(
    what: str, expected: str, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`python -m recipes.commands <what>` prints the shell-quoted command (the trainer's GPUs as the script
    sets them: here no GPU is visible, so the config's node of 8 GPUs minus the judge's GPU 7)."""
    monkeypatch.setattr(commands, "visible_gpu_count", lambda: 0)
    assert main([what, "--config", "legal_grpo"], environ={"RUN_NAME": "x"}) == 0
    assert capsys.readouterr().out.strip() == expected


@pytest.mark.parametrize(
    ("config", "env", "gpus", "prefix"),
    [
        ("legal_grpo", {"CUDA_VISIBLE_DEVICES": "2,3,4,5,6,7,8,9"}, 10, "CUDA_VISIBLE_DEVICES=2,3,4,5,6,8,9 "),
        ("legal_grpo", {}, 8, "CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6 "),
        ("legal_grpo_rules", {}, 8, ""),
        ("legal_grpo", {"JUDGE_BASE_URL": "http://192.0.2.1:8000/v1"}, 8, ""),
    ],
)  # fmt: skip
def test_cli_trainer_has_the_scripts_gpus(
    config: str, env: dict, gpus: int, prefix: str, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`commands trainer` prints the CUDA_VISIBLE_DEVICES the launch script adds (the same function computes both)."""
    monkeypatch.setattr(commands, "visible_gpu_count", lambda: gpus)
    assert main(["trainer", "--config", config], environ={"RUN_NAME": "x", **env}) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith(prefix + "python3 -m recipes.main_ppo "), out
    plan = commands.build_plan(config, [], {"RUN_NAME": "x", **env})
    devices = prefix.removeprefix("CUDA_VISIBLE_DEVICES=").strip() or "''"
    assert f"PLAN_TRAIN_DEVICES={devices}\n" in commands.plan_to_bash(plan, {"RUN_NAME": "x", **env}, gpus)


FAKE_RAY = """#!/usr/bin/env bash
# Stand-in for `ray`: records the auth mode it ran with and the runtime env file it was given (mode, content).
for a in "$@"; do case "$a" in --runtime-env=*) rt="${a#*=}" ;; esac; done
{ echo "RAY_AUTH_MODE=${RAY_AUTH_MODE:-unset}"; stat -c %a "$rt"; cat "$rt"; } > "$FAKE_RAY_RAN"
"""


def test_the_printed_ray_submit_line_runs_as_printed(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The `ray-submit` line writes the runtime env it names before `ray job submit` reads it, and submits with
    Ray's token auth (issue 29 item 14; issue 24 item 12)."""
    assert main(["ray-submit", "--config", "legal_grpo_multinode"], environ={"RUN_NAME": "x"}) == 0
    line = capsys.readouterr().out.strip()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ray").write_text(FAKE_RAY)
    (bin_dir / "ray").chmod(0o755)
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("RAY_AUTH_MODE", "RUN_NAME", *NODE_SECRETS)},
        "PATH": f"{bin_dir}:{Path(sys.executable).parent}:{os.environ['PATH']}",
        "PYTHONPATH": str(REPO_ROOT),
        "FAKE_RAY_RAN": str(tmp_path / "ray.ran"),
        "JUDGE_API_KEY": "key-of-the-shell",
        "JUDGE_BASE_URL": "http://judge-a:8000/v1",
    }
    proc = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    ran = (tmp_path / "ray.ran").read_text().splitlines()
    assert ran[:2] == ["RAY_AUTH_MODE=token", "600"]
    written = yaml.safe_load("\n".join(ran[2:]))
    assert (
        written["env_vars"]["JUDGE_BASE_URL"] == "http://judge-a:8000/v1" and "JUDGE_API_KEY" not in written["env_vars"]
    )


def test_cli_unknown_config_is_one_line_error(capsys: pytest.CaptureFixture) -> None:
    """A config name that does not exist names the known ones."""
    assert main(["trainer", "--config", "nope"], environ={}) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "nope" in err and "legal_grpo_smoke" in err
    # every recipe's GRPO configs, not only legal_grpo*, and no SFT config (scripts/train_sft.sh launches those)
    assert {"safety_grpo", "safety_grpo_ngram"} <= set(launchable_configs())
    assert "safety_sft" in launchable_configs(trainers=LAUNCH_TRAINERS) and "safety_sft" not in launchable_configs()
    assert err.endswith("use one of: " + ", ".join(launchable_configs()))


def test_cli_sft_config_names_the_sft_script(capsys: pytest.CaptureFixture) -> None:
    """The SFT config is not a GRPO launch: one line naming scripts/train_sft.sh."""
    assert main(["trainer", "--config", "safety_sft"], environ={}) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "launch it with `bash scripts/train_sft.sh --config safety_sft`" in err


@pytest.mark.parametrize(
    ("config", "sample", "section"),
    [
        ("legal_grpo", "data/samples/cail2018_sample.jsonl", "Real CAIL2018 data"),
        ("safety_grpo", "data/samples/safety_sample.jsonl", "Content-safety recipe"),
    ],
)
def test_plan_names_the_recipes_sample_and_readme_section(config: str, sample: str, section: str) -> None:
    """The launch script's data message reads both from the plan: the config's sample and its recipe's README."""
    plan = build_plan(config, ["data.train_files=/nonexistent/train.parquet"], {"RUN_NAME": "r"}, today=DAY)
    script = plan_to_bash(plan) + 'echo "$PLAN_SAMPLE_INPUT"; echo "$PLAN_DATA_README"'
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == [sample, section]


def test_plan_round_trips_through_bash() -> None:
    """The scripts `eval` the plan: arrays come back arg for arg."""
    plan = build_plan("legal_grpo", ["data.train_files=/tmp/a b/train.parquet"], {"RUN_NAME": "r"}, today=DAY)
    script = plan_to_bash(plan) + 'printf "%s\\n" "${PLAN_TRAINER_CMD[@]}"; echo "$PLAN_JUDGE_HEALTH_URL"'
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == [*plan.trainer_cmd, "http://127.0.0.1:8000/health"]


@pytest.mark.parametrize(
    ("base", "expected"),
    [("http://h:8000/v1", "http://h:8000/health"), ("http://h:8000/v1/", "http://h:8000/health"),
     ("http://h:8000", "http://h:8000/health")],
)  # fmt: skip
def test_health_url(base: str, expected: str) -> None:
    """vLLM's /health sits at the server root."""
    assert health_url(base) == expected


def test_health_probe_against_loopback_judge(judge_server) -> None:  # noqa: F811
    """A live server answers /health; a closed port does not (within the timeout)."""
    server = judge_server()
    assert is_healthy(f"{server.url}/health", timeout_s=2.0)
    server.stop()
    assert not is_healthy(f"{server.url}/health", timeout_s=0.5)


@pytest.mark.parametrize(
    ("config", "overrides", "env", "extra", "train_gpus", "judge_gpus"),
    [
        pytest.param(
            "legal_grpo", [], {"JUDGE_BASE_URL": "http://a:8000/v1,http://b:8001/v1"},
            [f"{URL_KEY}='http://a:8000/v1,http://b:8001/v1'", "judge.gpus=''", "trainer.n_gpus_per_node=8"],
            8, (), id="judges-elsewhere-all-8-gpus-train",
        ),
        pytest.param(
            "legal_grpo", ["judge.gpus='6,7'", "judge.tensor_parallel_size=2"], {"JUDGE_BASE_URL": "http://a:8000/v1"},
            [f"{URL_KEY}='http://a:8000/v1'", "judge.gpus=''", "trainer.n_gpus_per_node=9"],
            9, (), id="two-judge-gpus-freed",
        ),
        pytest.param(
            "legal_grpo", ["trainer.n_gpus_per_node=7"], {"JUDGE_BASE_URL": "http://a:8000/v1"},
            [f"{URL_KEY}='http://a:8000/v1'", "judge.gpus=''"],
            7, (), id="user-gpu-count-wins",
        ),
        pytest.param(
            "legal_grpo", [], {"JUDGE_BASE_URL": "http://127.0.0.1:8001/v1"},
            [f"{URL_KEY}='http://127.0.0.1:8001/v1'"],
            7, ("7",), id="loopback-judge-keeps-its-gpu",
        ),
        pytest.param(
            "legal_grpo", [], {"JUDGE_BASE_URL": "http://localhost:8001/v1,http://a:8000/v1"},
            [f"{URL_KEY}='http://localhost:8001/v1,http://a:8000/v1'"],
            7, ("7",), id="any-loopback-keeps-its-gpu",
        ),
        pytest.param("legal_grpo", [], {}, [], 7, ("7",), id="no-env-judges-local-judge"),
        pytest.param("legal_grpo_rules", [], {"JUDGE_BASE_URL": "http://a:8000/v1"}, [], 8, ("7",),
                     id="rules-no-judge"),
    ],
)  # fmt: skip
def test_env_judges_plan(
    config: str, overrides: list[str], env: dict, extra: list[str], train_gpus: int, judge_gpus: tuple
) -> None:
    """JUDGE_BASE_URL (one node): no local judge; when all judges run elsewhere the judge GPU(s) train too."""
    plan = build_plan(config, overrides, {**env, "RUN_NAME": "r"}, today=DAY)
    name = config
    assert plan.trainer_cmd == [*PY, CFG, f"--config-name={name}", *overrides, "trainer.experiment_name=r", *extra]
    assert plan.env_judges is (bool(env) and config == "legal_grpo")
    assert plan.train_gpus_per_node == train_gpus
    assert plan.judge.gpus == judge_gpus
    assert plan.judge_gpus_here == (len(judge_gpus) if plan.judge.mode == "external" else 0)


def test_env_judges_plan_bash_and_preflight_view() -> None:
    """The scripts get every judge's /health URL; the composed trainer config says 8 GPUs and no judge GPU."""
    from recipes.launch.commands import compose_config, judge_gpu_count

    env = {"JUDGE_BASE_URL": "http://a:8000/v1,http://b:8001/v1/", "RUN_NAME": "r"}
    plan = build_plan("legal_grpo", [], env, today=DAY)
    script = plan_to_bash(plan) + 'echo "$PLAN_JUDGE_FROM_ENV"; printf "%s\\n" "${PLAN_JUDGE_HEALTH_URLS[@]}"'
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == ["1", "http://a:8000/health", "http://b:8001/health"]
    cfg = compose_config("legal_grpo", plan.overrides)
    assert cfg.trainer.n_gpus_per_node == 8 and cfg.judge.gpus == ""
    assert judge_gpu_count(cfg, plan.judge) == 0


def test_multi_node_env_judges_do_not_change_gpu_counts() -> None:
    """Multi-node keeps its own GPU layout (judges are never on the training nodes there)."""
    plan = build_plan("legal_grpo", [], {"JUDGE_BASE_URL": "http://a:8000/v1", "NNODES": "2", "RUN_NAME": "r"})
    assert "judge.gpus=''" not in plan.overrides and plan.train_gpus_per_node == 7


def test_judge_startup_timeout_from_env() -> None:
    """JUDGE_STARTUP_TIMEOUT_S sets judge.startup_timeout_s (serve_judge.sh's wait for /health)."""
    plan = build_plan("legal_grpo", [], {"JUDGE_STARTUP_TIMEOUT_S": "5", "RUN_NAME": "r"}, today=DAY)
    assert plan.judge.startup_timeout_s == 5
    assert build_plan("legal_grpo", [], {"RUN_NAME": "r"}, today=DAY).judge.startup_timeout_s == 900
