"""scripts/train_grpo.sh and scripts/serve_judge.sh as subprocesses on CPU.

Covered: --dry-run (plain, judges from JUDGE_BASE_URL), the healthy-judge no-op, and the judge start/timeout/stop
path with stand-ins: a fake `vllm` (VLLM=...) that never answers /health, a fake `nvidia-smi` listing 8 GPUs, a
fake trainer (PYTHON=...), and PYTHON_BIN wrapping the venv's Python so the "training stack installed?" probe passes.
Not run here: real vLLM / GPUs / Ray, the .[train] install step, `ray job submit`.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.judge_fixtures import judge_server  # noqa: F401 - fixture

from recipes.launch.commands import CONFIG_DIR, JUDGE_URL_KEY, LAUNCH_TRAINERS, REPO_ROOT, launchable_configs
from recipes.recipe import KNOWN_RECIPES, load_recipe

URL_KEY = JUDGE_URL_KEY

SCRUB = (
    "JUDGE_BASE_URL", "JUDGE_PORT", "JUDGE_HOST", "JUDGE_GPUS", "JUDGE_MODEL", "JUDGE_STARTUP_TIMEOUT_S", "NNODES",
    "RAY_ADDRESS", "RUN_TAG", "RUN_NAME", "CUDA_VISIBLE_DEVICES", "VLLM", "PYTHON", "PYTHON_BIN",
)  # fmt: skip


def _env(**env: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if k not in SCRUB}, **env}


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", *args], cwd=REPO_ROOT, env=_env(**env), capture_output=True, text=True, timeout=240, check=False
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ensure_data(data_dir: Path) -> None:
    """The shipped sample prepared into data_dir (when an earlier test has not done it)."""
    if not (data_dir / "train.parquet").is_file():
        subprocess.run(
            [str(REPO_ROOT / ".venv/bin/python"), "-m", "data.prepare", "--source", "cail2018", "--input",
             "data/samples/cail2018_sample.jsonl", "--output", str(data_dir)],
            cwd=REPO_ROOT, check=True, capture_output=True,
        )  # fmt: skip


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty directory the configured data points at: the script must prepare the sample into it."""
    return tmp_path_factory.mktemp("data")


def test_dry_run_prepares_data_passes_preflight_and_prints_the_trainer_command(data_dir: Path) -> None:
    """Fresh checkout on a CPU box: exit 0, sample prepared (and said so), the full trainer command printed."""
    overrides = [f"data.train_files={data_dir}/train.parquet", f"data.val_files={data_dir}/test.parquet"]
    result = _run(["scripts/train_grpo.sh", "--dry-run", *overrides], RUN_NAME="legal-qwen2.5-7b-0312")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "preparing the shipped sample" in result.stdout
    assert (data_dir / "train.parquet").is_file() and (data_dir / "test.parquet").is_file()
    trainer = [
        "CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6",  # exactly what the real run exports: GPUs 0-6 train, 7 is the judge's
        "python3", "-m", "recipes.main_ppo", f"--config-path={CONFIG_DIR}", "--config-name=legal_grpo",
        *overrides, "trainer.experiment_name=legal-qwen2.5-7b-0312",
    ]  # fmt: skip
    printed = [shlex.split(line) for line in result.stdout.splitlines() if "recipes.main_ppo" in line]
    assert trainer in printed
    assert any(line.strip().startswith("CUDA_VISIBLE_DEVICES=7 vllm serve") for line in result.stdout.splitlines())
    assert "assume a node with 8 GPUs numbered 0..7" in result.stdout
    assert "preflight: 0 failure(s)" in result.stdout and "dry run OK" in result.stdout


def _printed_trainer(stdout: str) -> list[str]:
    (line,) = [line for line in stdout.splitlines() if line.startswith("  ") and "recipes.main_ppo" in line]
    return shlex.split(line)


def test_dry_run_with_judges_elsewhere_starts_no_judge_and_trains_on_all_gpus(data_dir: Path) -> None:
    """JUDGE_BASE_URL on other machines: no `vllm serve`, each URL health-checked (a dead one warns in a dry run,
    a real run stops), the trainer gets all 8 GPUs (n_gpus_per_node=8, judge.gpus='', no CUDA_VISIBLE_DEVICES)."""
    overrides = [
        f"data.train_files={data_dir}/train.parquet", f"data.val_files={data_dir}/test.parquet",
        # 112 / 8 GPUs = 14 per GPU: every micro batch must divide it (the preflight says so)
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=7",
        "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=7",
        "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=7",
    ]  # fmt: skip
    urls = "http://192.0.2.1:8000/v1,http://192.0.2.2:8000/v1"  # TEST-NET: never answers
    result = _run(["scripts/train_grpo.sh", "--dry-run", *overrides], RUN_NAME="r", JUDGE_BASE_URL=urls)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "vllm serve" not in result.stdout
    for host in ("192.0.2.1", "192.0.2.2"):
        assert f"judge http://{host}:8000/health (from JUDGE_BASE_URL) does not answer" in result.stderr
    assert "a real run stops here until every JUDGE_BASE_URL judge answers" in result.stdout
    assert _printed_trainer(result.stdout) == [
        "python3", "-m", "recipes.main_ppo", f"--config-path={CONFIG_DIR}", "--config-name=legal_grpo",
        *overrides, "trainer.experiment_name=r", f"{URL_KEY}='{urls}'", "judge.gpus=''", "trainer.n_gpus_per_node=8",
    ]  # fmt: skip
    assert "8 training = 8 GPU(s) on this node" in result.stdout  # the preflight counts no judge GPU
    assert "preflight: 0 failure(s)" in result.stdout and "dry run OK" in result.stdout


def test_dry_run_with_a_loopback_judge_url_keeps_its_gpu_and_checks_it(data_dir: Path, judge_server) -> None:  # noqa: F811
    """A JUDGE_BASE_URL on this machine (here: a live scripted judge) is health-checked and reused, not started; its
    GPU stays reserved (the config's judge.gpus), so the trainer keeps GPUs 0-6."""
    server = judge_server()
    overrides = [f"data.train_files={data_dir}/train.parquet", f"data.val_files={data_dir}/test.parquet"]
    result = _run(["scripts/train_grpo.sh", "--dry-run", *overrides], RUN_NAME="r", JUDGE_BASE_URL=server.base_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"judge {server.url}/health answers" in result.stdout
    assert "vllm serve" not in result.stdout
    assert _printed_trainer(result.stdout) == [
        "CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6", "python3", "-m", "recipes.main_ppo", f"--config-path={CONFIG_DIR}",
        "--config-name=legal_grpo", *overrides, "trainer.experiment_name=r", f"{URL_KEY}='{server.base_url}'",
    ]  # fmt: skip


def test_dry_run_rules_config_leaves_cuda_visible_devices_alone(data_dir: Path) -> None:
    """No judge GPU to keep free (rules variant): the real run exports nothing, so the dry run prints no prefix."""
    overrides = [f"data.train_files={data_dir}/train.parquet", f"data.val_files={data_dir}/test.parquet"]
    result = _run(["scripts/train_grpo.sh", "--dry-run", "--config", "legal_grpo_rules", *overrides], RUN_NAME="r")
    assert result.returncode == 0, result.stdout + result.stderr
    assert _printed_trainer(result.stdout)[0] == "python3"
    assert "vllm serve" not in result.stdout


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        pytest.param(["data.train_batch_size=5"], "FAIL batch: data.train_batch_size x rollout.n = 5 x 16", id="batch"),
        pytest.param(["+reward_model.enable=true"], "FAIL legacy reward keys: reward_model.enable=True", id="legacy"),
        pytest.param(["data.val_files=/nonexistent/test.parquet"],
                     "FAIL data: /nonexistent/test.parquet does not exist", id="missing-data"),
    ],
)  # fmt: skip
def test_dry_run_broken_config_fails_with_one_line(data_dir: Path, overrides: list[str], needle: str) -> None:
    """A broken launch exits non-zero and names the problem (and the fix) on one line."""
    test_dry_run_data = [f"data.train_files={data_dir}/train.parquet", f"data.val_files={data_dir}/test.parquet"]
    _ensure_data(data_dir)
    result = _run(["scripts/train_grpo.sh", "--dry-run", *test_dry_run_data, *overrides])
    assert result.returncode != 0
    lines = [line for line in result.stdout.splitlines() if line.startswith(needle)]
    assert lines and " — " in lines[0], result.stdout + result.stderr
    assert "preflight failed" in result.stderr


def test_without_gpus_a_plain_run_rehearses_on_cpu_instead(tmp_path: Path) -> None:
    """No --dry-run on a CPU box: one line says there is no GPU and the CPU rehearsal runs instead (here it stops at
    once: --no-install and an interpreter without the CPU stack); no preflight, no judge, nothing installed.
    The whole embedded run is tests/rehearsal/test_loop.py's default-config case."""
    bare = tmp_path / "bin"
    bare.mkdir()
    (bare / "python3").symlink_to(Path(sys.base_prefix) / "bin" / "python3")  # a Python without verl
    result = _run(["scripts/train_grpo.sh", "--no-install"], PATH=f"{bare}:/nonexistent-gpu-tools:/usr/bin:/bin",
                  VENV=str(tmp_path / "no-venv"))  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    (line,) = [line for line in result.stdout.splitlines() if "no GPU on this machine" in line]
    assert line.startswith("[train_grpo] ") and "running the CPU rehearsal of legal_grpo instead" in line
    assert result.stderr.strip() == (
        "[train_grpo] the rehearsal needs the CPU stack in 'python3' and --no-install was given"
    )
    assert "preflight" not in result.stdout and "vllm serve" not in result.stdout


def test_serve_judge_dry_run_prints_vllm_serve() -> None:
    """Nothing answers on the port: the dry run prints the exact command it would start."""
    port = _free_port()
    result = _run(["scripts/serve_judge.sh", "--dry-run", "--port", str(port), "--gpus", "6"])
    assert result.returncode == 0, result.stdout + result.stderr
    expected = (
        f"CUDA_VISIBLE_DEVICES=6 vllm serve Qwen/Qwen2.5-7B-Instruct --served-model-name Qwen/Qwen2.5-7B-Instruct "
        f"--host 127.0.0.1 --port {port} --tensor-parallel-size 1 --data-parallel-size 1 --max-model-len 8192 "
        f"--gpu-memory-utilization 0.9"
    )
    assert expected in [line.strip() for line in result.stdout.splitlines()]
    assert f"http://127.0.0.1:{port}/health" in result.stdout


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.7"])
def test_serve_judge_refuses_an_open_judge(host: str) -> None:
    """A host other than loopback and no API key: refused with one line naming the fixes, nothing printed to run
    (issue 24 item 13)."""
    port = _free_port()
    result = _run(["scripts/serve_judge.sh", "--dry-run", "--host", host, "--port", str(port), "--gpus", "6"])
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"[serve_judge] refusing to serve on {host}:{port} without an API key: anyone who reaches the port could use "
        "the judge. Set JUDGE_API_KEY (the reward sends it), bind to 127.0.0.1 (--host / JUDGE_HOST), or pass "
        "--allow-no-key (JUDGE_ALLOW_NO_KEY=1) on a network you trust"
    ]
    assert "vllm serve" not in result.stdout


@pytest.mark.parametrize(
    ("flags", "env", "warned"),
    [([], {"JUDGE_API_KEY": "k"}, False), (["--allow-no-key"], {}, True), ([], {"JUDGE_ALLOW_NO_KEY": "1"}, True)],
    ids=["with-key", "allow-no-key", "allow-no-key-env"],
)
def test_serve_judge_on_every_interface_says_where_it_is_reached(flags: list[str], env: dict, warned: bool) -> None:
    """With a key (or the explicit flag, with a warning) a wildcard bind starts, announced at the address other
    machines use, this machine's name, not only 127.0.0.1."""
    port = _free_port()
    result = _run(["scripts/serve_judge.sh", "--dry-run", "--host", "0.0.0.0", "--port", str(port), *flags], **env)
    assert result.returncode == 0, result.stderr
    address = (
        f"http://{socket.gethostname()}:{port}/v1 (listening on every interface, 0.0.0.0:{port}; "
        f"http://127.0.0.1:{port}/v1 on this machine)"
    )
    assert f"would start the judge at {address} on GPU(s)" in result.stdout
    assert ("WARNING: serving on 0.0.0.0" in result.stderr) is warned


def test_serve_judge_does_nothing_when_a_healthy_judge_answers(judge_server) -> None:  # noqa: F811
    """A judge already answering /health: exit 0, say so, start nothing (vllm is not even installed here)."""
    server = judge_server()
    result = _run(["scripts/serve_judge.sh", "--port", str(server.port)], VLLM="/nonexistent/vllm")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"a healthy judge already answers at {server.base_url}" in result.stdout
    assert any(r.path == "/health" for r in server.all_requests)
    assert not list((REPO_ROOT / "logs").glob(f"judge-{server.port}.log*"))


# ------------------------------------------------------------------ judge start / timeout / interruption (stand-ins)

FAKE_VLLM = """#!/usr/bin/env bash
# Stand-in for `vllm serve`: loads forever, never answers /health; a worker child like vLLM's engine process.
sleep 300 &
echo "$$ $!" > "$FAKE_VLLM_PIDS"
wait
"""


@pytest.fixture
def fakes(tmp_path: Path) -> dict[str, str]:
    """Executables standing in for vllm / nvidia-smi / the trainer, and the env pointing the scripts at them."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scripts = {
        "vllm": FAKE_VLLM,
        "nvidia-smi": "#!/usr/bin/env bash\nfor i in 0 1 2 3 4 5 6 7; do echo \"GPU $i: Fake (UUID: GPU-$i)\"; done\n",
        "trainer": "#!/usr/bin/env bash\necho \"fake trainer $*\" > \"$FAKE_TRAINER_RAN\"\n",
        # The venv's Python, except the one probe for the GPU stack (vllm/ray are not installed on a CPU box).
        "python": (f"#!/usr/bin/env bash\n[ \"$*\" = \"-c import verl, vllm, ray, hydra\" ] && exit 0\n"
                   f"exec {sys.executable} \"$@\"\n"),
    }  # fmt: skip
    for name, text in scripts.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "VLLM": str(bin_dir / "vllm"),
        "PYTHON_BIN": str(bin_dir / "python"),
        "PYTHON": str(bin_dir / "trainer"),
        "FAKE_VLLM_PIDS": str(tmp_path / "vllm.pids"),
        "FAKE_TRAINER_RAN": str(tmp_path / "trainer.ran"),
        "WANDB_MODE": "offline",
    }


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for its parent counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _fake_vllm_pids(fakes: dict[str, str], timeout_s: float = 120.0) -> list[int]:
    path = Path(fakes["FAKE_VLLM_PIDS"])
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.is_file() and len(path.read_text().split()) == 2:
            return [int(p) for p in path.read_text().split()]
        time.sleep(0.2)
    raise AssertionError("the fake vllm never started")


def _wait_gone(pids: list[int], timeout_s: float = 40.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not any(_alive(p) for p in pids):
            return True
        time.sleep(0.2)
    return False


def _judge_overrides(tmp_path: Path) -> list[str]:
    return [f"judge.port={_free_port()}", f"judge.log_file={tmp_path}/judge.log"]


def test_serve_judge_timeout_stops_the_server_it_started(fakes: dict[str, str], tmp_path: Path) -> None:
    """No /health within JUDGE_STARTUP_TIMEOUT_S: exit non-zero, the server (and its worker) stopped, pid file gone."""
    result = _run(["scripts/serve_judge.sh", *_judge_overrides(tmp_path)], **fakes, JUDGE_STARTUP_TIMEOUT_S="2")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "no /health answer after 2s — stopping it" in result.stderr
    pids = _fake_vllm_pids(fakes, timeout_s=1)
    assert _wait_gone(pids, timeout_s=5), pids
    assert not (tmp_path / "judge.log.pid").exists()


def test_serve_judge_says_it_is_still_waiting_in_plain_lines(fakes: dict[str, str], tmp_path: Path) -> None:
    """While the judge loads, one plain line per progress interval (LEGAL_PROGRESS_INTERVAL_S; 30 s by default)."""
    result = _run(
        ["scripts/serve_judge.sh", *_judge_overrides(tmp_path)], **fakes, JUDGE_STARTUP_TIMEOUT_S="4",
        LEGAL_PROGRESS_INTERVAL_S="1",
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    waiting = [line for line in result.stdout.splitlines() if line.startswith("[serve_judge] waiting for ")]
    assert len(waiting) >= 2, result.stdout
    assert all(line.endswith(f"s of 4 s (log: {tmp_path}/judge.log)") for line in waiting), waiting
    assert _wait_gone(_fake_vllm_pids(fakes, timeout_s=1), timeout_s=5)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "term"])
def test_serve_judge_interrupted_while_waiting_stops_the_server(
    fakes: dict[str, str], tmp_path: Path, sig: signal.Signals
) -> None:
    """Ctrl-C (SIGINT to the foreground group; the server is in its own session) or TERM during the wait."""
    proc = subprocess.Popen(
        ["bash", "scripts/serve_judge.sh", *_judge_overrides(tmp_path)], cwd=REPO_ROOT,
        env=_env(**fakes, JUDGE_STARTUP_TIMEOUT_S="300"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    pids = _fake_vllm_pids(fakes)
    assert (tmp_path / "judge.log.pid").read_text().strip() == str(pids[0])  # written before the wait
    os.killpg(proc.pid, sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, out + err
    assert _wait_gone(pids), pids
    assert not (tmp_path / "judge.log.pid").exists()


def test_serve_judge_starts_no_open_judge(fakes: dict[str, str], tmp_path: Path) -> None:
    """A real start on 0.0.0.0 without a key stops before the server is started."""
    result = _run(["scripts/serve_judge.sh", "--host", "0.0.0.0", *_judge_overrides(tmp_path)], **fakes)
    assert result.returncode == 1 and "refusing to serve on 0.0.0.0" in result.stderr
    assert not Path(fakes["FAKE_VLLM_PIDS"]).exists() and not (tmp_path / "judge.log.pid").exists()


def _train(fakes: dict[str, str], tmp_path: Path, data_dir: Path, timeout_s: str) -> subprocess.Popen:
    args = [
        "scripts/train_grpo.sh", "--no-install", f"data.train_files={data_dir}/train.parquet",
        f"data.val_files={data_dir}/test.parquet", *_judge_overrides(tmp_path),
    ]  # fmt: skip
    return subprocess.Popen(
        ["bash", *args], cwd=REPO_ROOT, env=_env(**fakes, JUDGE_STARTUP_TIMEOUT_S=timeout_s, RUN_NAME="t"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("event", "timeout_s", "status"),
    [
        pytest.param("timeout", "3", 1, id="judge-startup-timeout"),
        pytest.param("ctrl-c", "300", 130, id="ctrl-c-during-judge-wait"),
        pytest.param("term", "300", 143, id="term-to-train-script-only"),
    ],
)
def test_train_grpo_stops_the_judge_it_started_when_it_never_trains(
    fakes: dict[str, str], tmp_path: Path, data_dir: Path, event: str, timeout_s: str, status: int
) -> None:
    """A real (non-dry) single-node launch with 8 fake GPUs: the judge it started is gone after a startup timeout,
    Ctrl-C while waiting for /health, or TERM sent to train_grpo.sh alone; the trainer never ran."""
    _ensure_data(data_dir)
    proc = _train(fakes, tmp_path, data_dir, timeout_s)
    pids = _fake_vllm_pids(fakes)
    if event == "ctrl-c":
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal does: the whole foreground group
    elif event == "term":
        os.kill(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == status, out + err
    assert "preflight: 0 failure(s)" in out
    assert _wait_gone(pids), (pids, out, err)
    assert not (tmp_path / "judge.log.pid").exists()
    assert not Path(fakes["FAKE_TRAINER_RAN"]).exists()


@pytest.mark.parametrize("script", ["scripts/train_grpo.sh", "scripts/serve_judge.sh"])
def test_help_is_the_header_comment_only(script: str) -> None:
    """--help prints the usage comment and nothing of the code after it (no stray `set -euo pipefail`)."""
    result = _run([script, "--help"])
    lines = result.stdout.splitlines()
    assert result.returncode == 0 and lines and lines[0].startswith("# ")
    assert all(line.startswith("#") for line in lines), lines[-3:]
    assert "set -euo pipefail" not in result.stdout


@pytest.mark.parametrize("recipe", KNOWN_RECIPES)
def test_sample_data_message_names_a_readme_section_that_exists(recipe: str) -> None:
    """The data message points at the recipe's README section (Recipe.data_readme), or the neutral one, which exist."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    script = (REPO_ROOT / "scripts/train_grpo.sh").read_text(encoding="utf-8")
    fallback = script.split('see README" \\\n', 1)[1].split("${PLAN_DATA_README:-", 1)[1].split("}", 1)[0]
    section = load_recipe(recipe).data_readme
    assert section, f"recipes/{recipe}/recipe.py names no README section on its real data"
    assert f"\n## {section}\n" in readme and f"\n## {fallback}\n" in readme


def test_safety_dry_run_prepares_its_sample_and_scores_gold_at_the_maximum(tmp_path: Path) -> None:
    """`--config safety_grpo --dry-run` on a fresh checkout: the safety sample prepared (its own line count and README
    section), the same preflight with the recipe's gold response scoring 5, the judge and trainer commands."""
    data = tmp_path / "safety"
    overrides = [f"data.train_files={data}/train.parquet", f"data.val_files={data}/test.parquet"]
    result = _run(["scripts/train_grpo.sh", "--config", "safety_grpo", "--dry-run", *overrides], RUN_NAME="s")
    assert result.returncode == 0, result.stdout + result.stderr
    sample = "data/samples/safety_sample.jsonl"
    lines = sum(1 for line in (REPO_ROOT / sample).read_text(encoding="utf-8").splitlines() if line)
    assert (
        f"preparing the shipped sample {sample} ({lines} fictional records) so a first run works. For real data see "
        'README "Content-safety recipe".'
    ) in result.stdout
    ours = "\n".join(line for line in result.stdout.splitlines() if line.startswith("[train_grpo]"))
    assert "CAIL" not in ours and "cases" not in ours
    assert (data / "train.parquet").is_file() and (data / "test.parquet").is_file()
    table = {line.split()[0]: line for line in result.stdout.splitlines() if line[:1].isalpha() and "  " in line}
    assert "safety (recipes/safety/recipe.py" in table["recipe"]
    assert "safety: gold answer scores 5" in table["reward"]
    assert _printed_trainer(result.stdout) == [
        "CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6", "python3", "-m", "recipes.main_ppo", f"--config-path={CONFIG_DIR}",
        "--config-name=safety_grpo", *overrides, "trainer.experiment_name=s",
    ]  # fmt: skip
    assert "preflight: 0 failure(s)" in result.stdout and "dry run OK" in result.stdout


def test_unknown_config_lists_every_launchable_config() -> None:
    """A mistyped --config names the GRPO configs of both recipes, and only those (issue 29: no SFT config)."""
    result = _run(["scripts/train_grpo.sh", "--dry-run", "--config", "safety_grp"])
    assert result.returncode == 1
    (line,) = [line for line in result.stderr.splitlines() if "not found in" in line]
    known = line.split("use one of: ", 1)[1].split(", ")
    assert {"legal_grpo", "legal_grpo_drgrpo", "safety_grpo", "safety_grpo_ngram"} <= set(known)
    assert "safety_sft" not in known
    assert known == launchable_configs()
    assert set(known) < set(launchable_configs(trainers=LAUNCH_TRAINERS))


@pytest.mark.parametrize(
    ("script", "config", "other"),
    [
        ("scripts/train_grpo.sh", "safety_sft", "scripts/train_sft.sh"),
        ("scripts/train_sft.sh", "safety_grpo", "scripts/train_grpo.sh"),
    ],
)
def test_a_config_of_the_other_stage_names_its_script(script: str, config: str, other: str) -> None:
    """An SFT config given to train_grpo.sh (and the reverse) stops before any check, naming the script to use."""
    result = _run([script, "--dry-run", "--config", config])
    assert result.returncode == 1
    assert "FAIL" not in result.stdout + result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert f"launch it with `bash {other} --config {config}`" in line


def test_wall_rehearsal_takes_no_overrides() -> None:
    """--wall rehearses the config's exact placement: overrides are refused with one line (before anything starts);
    --rehearse (the CPU loop) takes them like every other mode."""
    result = _run(["scripts/train_grpo.sh", "--wall", "trainer.total_epochs=1"])
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "[train_grpo] --wall rehearses the config as it is: it takes no hydra overrides (--rehearse takes them)"
    )


def test_preflight_hides_known_verl_noise_unless_verbose(data_dir: Path) -> None:
    """Our table comes first; verl's CPU start-up warnings show only with -v."""
    _ensure_data(data_dir)
    cmd = [sys.executable, "-m", "recipes.preflight", "--config", "legal_grpo_smoke", "--dry-run",
           f"data.train_files={data_dir}/train.parquet", f"data.val_files={data_dir}/test.parquet"]  # fmt: skip
    noise = ("engine is not available", "No supported accelerator", "Disabled critic", "[validate_config]")
    quiet = subprocess.run(cmd, cwd=REPO_ROOT, env=_env(), capture_output=True, text=True, timeout=240, check=False)
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    assert quiet.stdout.splitlines()[0].startswith("check ")
    assert not [n for n in noise if n in quiet.stdout + quiet.stderr]
    loud = subprocess.run([*cmd, "-v"], cwd=REPO_ROOT, env=_env(), capture_output=True, text=True, timeout=240)
    assert "engine is not available" in loud.stdout + loud.stderr


# ------------------------------------------------------------------ multi-node submission (a stand-in for `ray`)

FAKE_RAY = """#!/usr/bin/env bash
# Stand-in for `ray job submit`: records the auth mode it ran with, its arguments and the runtime env file it got.
for a in "$@"; do case "$a" in --runtime-env=*) rt="${a#*=}" ;; esac; done
{ echo "RAY_AUTH_MODE=${RAY_AUTH_MODE:-unset}"; echo "ARGS $*"; stat -c %a "$rt"; cat "$rt"; } > "$FAKE_RAY_RAN"
"""


def test_multi_node_submission_carries_the_token_and_no_secret(tmp_path: Path) -> None:
    """A real (non-dry) multi-node launch on a CPU box, up to `ray job submit` (a stand-in): it runs with
    RAY_AUTH_MODE=token, and the runtime env it is given is mode 600 with the shell's secrets left out (issue 24
    item 12: Ray's job API returns every job's runtime env)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ray").write_text(FAKE_RAY)
    (bin_dir / "ray").chmod(0o755)
    run = f"authtest-{os.getpid()}"
    secrets = {"JUDGE_API_KEY": "judge-key-of-the-shell", "WANDB_API_KEY": "wandb-key-of-the-shell"}
    runtime_env = REPO_ROOT / "outputs" / f"runtime_env.{run}.yaml"
    try:
        result = _run(
            ["scripts/train_grpo.sh", "--config", "legal_grpo_multinode", "--no-install"],
            # the stand-in before the venv's own `ray` (VENV elsewhere: the script does not put .venv/bin first)
            PATH=f"{bin_dir}:{Path(sys.executable).parent}:{os.environ['PATH']}", VENV=str(tmp_path / "no-venv"),
            PYTHON_BIN=sys.executable, FAKE_RAY_RAN=str(tmp_path / "ray.ran"),
            LEGAL_SHARED_DIR=str(tmp_path / "shared"), JUDGE_BASE_URL="http://judge-a:8000/v1", RUN_NAME=run,
            WANDB_MODE="offline", **secrets,
        )  # fmt: skip
    finally:
        runtime_env.unlink(missing_ok=True)
    assert result.returncode == 0, result.stdout + result.stderr
    ran = (tmp_path / "ray.ran").read_text().splitlines()
    assert ran[0] == "RAY_AUTH_MODE=token"
    assert ran[1].startswith(f"ARGS job submit --address=http://127.0.0.1:8265 --runtime-env=outputs/runtime_env.{run}")
    assert ran[2] == "600"
    assert not any(value in line for value in secrets.values() for line in ran + result.stdout.splitlines())
    assert "not forwarded: JUDGE_API_KEY, WANDB_API_KEY" in result.stdout
    assert "RAY_AUTH_MODE=token ray job submit --address=http://127.0.0.1:8265" in result.stdout


def test_rehearse_of_an_sft_config_names_its_script(tmp_path: Path) -> None:
    """--rehearse of the SFT stage's config stops with one line naming `train_sft.sh --rehearse`'s script."""
    result = _run(["scripts/train_grpo.sh", "--rehearse", "--config", "safety_sft"],
                  LEGAL_REHEARSE_DIR=str(tmp_path))  # fmt: skip
    assert result.returncode != 0
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "launch it with `bash scripts/train_sft.sh --config safety_sft`" in line


def test_without_gpus_or_a_judge_the_plain_run_rehearses_the_rules_twin(tmp_path: Path) -> None:
    """No GPU, no JUDGE_BASE_URL, no vLLM CPU build: the embedded rehearsal of the default config (which needs a
    judge) says so in one line and rehearses its rules-only twin, so a first run on a bare CPU box still trains
    (stopped here right after that choice by an invalid --steps)."""
    result = _run(["scripts/train_grpo.sh", "--steps", "0"], PATH=f"/nonexistent-gpu-tools:{os.environ['PATH']}",
                  JUDGE_BASE_URL="", LEGAL_VLLM_PYTHON=str(tmp_path / "no-vllm" / "python"),
                  LEGAL_REHEARSE_DIR=str(tmp_path / "rehearse"))  # fmt: skip
    lines = result.stdout.splitlines()
    (line,) = [line for line in lines if line.startswith("[train_grpo] no judge for legal_grpo here")]
    assert "JUDGE_BASE_URL unset" in line and "rehearsing legal_grpo_rules instead" in line
    assert any(line.startswith("[train_grpo] rehearsal of legal_grpo_rules: 0 real GRPO step(s)") for line in lines)
    assert result.returncode == 2 and "--steps must be at least 1" in result.stderr


def test_a_chosen_config_is_never_swapped_for_its_rules_twin(tmp_path: Path) -> None:
    """--config legal_grpo asked for the judge: without one it is not silently replaced (the rehearsal names what is
    missing instead)."""
    result = _run(["scripts/train_grpo.sh", "--config", "legal_grpo", "--steps", "0"],
                  PATH=f"/nonexistent-gpu-tools:{os.environ['PATH']}", JUDGE_BASE_URL="",
                  LEGAL_VLLM_PYTHON=str(tmp_path / "no-vllm" / "python"),
                  LEGAL_REHEARSE_DIR=str(tmp_path / "rehearse"))  # fmt: skip
    assert "no judge for" not in result.stdout
    assert any(line.startswith("[train_grpo] rehearsal of legal_grpo: 0") for line in result.stdout.splitlines())
