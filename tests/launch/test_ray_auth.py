"""The multi-node Ray head as README "Multi-node" starts it, on a real local cluster (issue 24 item 12).

A head started the README's way (RAY_AUTH_MODE=token, `--dashboard-host=127.0.0.1`) with its own token file
(RAY_AUTH_TOKEN_PATH: never the shared ~/.ray/auth_token), a private temp dir and free ports. Checked: the dashboard
(Ray's job API) listens on loopback only; a request without the token, or with a wrong one, is refused (reading the
job list and submitting a job alike); our `ray job submit` (recipes.launch.commands.ray_job_submit_command, with the
RAY_AUTH_MODE the launch sets and the runtime env `recipes.launch.commands runtime-env` writes) gets through; a reward
worker on the cluster reads JUDGE_API_KEY from the node's `ray start` environment, while the submitting shell's
secrets are in neither the job's runtime env nor anything the job API returns. The cluster is stopped in a finally.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from recipes.launch.commands import DEFAULT_RAY_AUTH_MODE, NODE_SECRETS, REPO_ROOT, ray_job_submit_command

RAY = str(Path(sys.executable).parent / "ray")
NODE_JUDGE_KEY = "node-judge-key-" + secrets.token_hex(8)  # set on the node's `ray start`
SHELL_SECRETS = {name: f"shell-{name.lower()}-{secrets.token_hex(8)}" for name in NODE_SECRETS}  # the submitter's
JUDGE_URL = "http://judge-a.example:8000/v1"  # a forwarded, non-secret variable
START_TIMEOUT_S = 240.0


def _readme_block() -> list[str]:
    """The command lines of README "Multi-node" (its first bash block), comments cut."""
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Multi-node\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.split("  #", 1)[0].strip() for line in block.splitlines() if line.strip() and line[0] != "#"]


def readme_head() -> tuple[dict[str, str], list[str]]:
    """(RAY_AUTH_MODE as the README exports it, the flags of its `ray start --head`)."""
    lines = _readme_block()
    (export,) = [line for line in lines if line.startswith("export RAY_AUTH_MODE=")]
    (head,) = [line for line in lines if line.startswith("ray start --head")]
    return {"RAY_AUTH_MODE": re.match(r"export RAY_AUTH_MODE=(\S+)", export)[1]}, shlex.split(head)[2:]


PROBE = """
import hashlib, os, ray
ray.init()

@ray.remote
def seen():
    key = os.environ.get("JUDGE_API_KEY", "")
    return (hashlib.sha256(key.encode()).hexdigest()[:16] if key else "absent",
            "present" if os.environ.get("WANDB_API_KEY") else "absent",
            os.environ.get("JUDGE_BASE_URL", "absent"))

key, wandb, url = ray.get(seen.remote())
print(f"probe: worker JUDGE_API_KEY sha {key}; WANDB_API_KEY {wandb}; JUDGE_BASE_URL {url}", flush=True)
"""


@dataclass
class Cluster:
    """A running token-auth head: where its job API is and the token that opens it."""

    tmp: Path
    dashboard: str
    dashboard_port: int
    token_file: Path

    @property
    def token(self) -> str:
        return self.token_file.read_text().strip()


def _free_ports(n: int) -> list[int]:
    """n distinct ports nothing listens on now (all held open together while chosen)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


def _base_env() -> dict[str, str]:
    """This venv first on PATH, the repo on PYTHONPATH, no Ray address, mode or token of the caller's."""
    drop = ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", *NODE_SECRETS)
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["RAY_DISABLE_USAGE_STATS"] = "1"
    return env


def _get(url: str, token: str | None = None, method: str = "GET", body: bytes | None = None) -> tuple[int, str]:
    """(status, body) of one HTTP request, with `Authorization: Bearer token` when a token is given."""
    request = urllib.request.Request(url, method=method, data=body)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - a loopback URL we built
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def _stop(proc: subprocess.Popen, tmp: Path) -> None:
    """Stop the head's process group, then any process of this cluster left (its argv names our temp dir)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if str(tmp) in (entry / "cmdline").read_bytes().decode("utf-8", "replace"):
                os.kill(int(entry.name), signal.SIGKILL)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A head started the README's way with its own token file and free ports; stopped in the finally."""
    tmp = Path(tempfile.mkdtemp(prefix="lra", dir="/tmp"))  # short: Ray's socket paths must stay under 107 chars
    token_file = tmp / "auth_token"
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32))
    gcs, dash, client, node, objects, metrics, agent, agent_grpc, env_agent, *workers = _free_ports(9 + 12)
    readme_env, readme_flags = readme_head()
    env = {**_base_env(), **readme_env, "RAY_AUTH_TOKEN_PATH": str(token_file)}
    env["JUDGE_API_KEY"] = NODE_JUDGE_KEY  # README: the node's secrets in the environment of its `ray start`
    log = (tmp / "head.log").open("w")
    proc = subprocess.Popen(
        [RAY, "start", *readme_flags, "--block", "--node-ip-address=127.0.0.1",
         "--include-dashboard=true", f"--temp-dir={tmp / 'ray'}", "--disable-usage-stats", "--num-cpus=2",
         "--num-gpus=0", f"--port={gcs}", f"--dashboard-port={dash}", f"--ray-client-server-port={client}",
         f"--node-manager-port={node}", f"--object-manager-port={objects}", f"--metrics-export-port={metrics}",
         f"--dashboard-agent-listen-port={agent}", f"--dashboard-agent-grpc-port={agent_grpc}",
         f"--runtime-env-agent-port={env_agent}", f"--worker-port-list={','.join(map(str, workers))}"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        found = Cluster(tmp, f"http://127.0.0.1:{dash}", dash, token_file)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:  # the job API answers (with the token) once the head's modules are up
            with contextlib.suppress(OSError):
                if _get(f"{found.dashboard}/api/jobs/", found.token)[0] == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Ray head did not come up: {(tmp / 'head.log').read_text()[-3000:]}")
            time.sleep(1.0)
        yield found
    finally:
        _stop(proc, tmp)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


def test_the_readme_commands_are_the_secure_ones() -> None:
    """README "Multi-node": token auth on every node, the dashboard on loopback, submission through loopback, no open
    judge (the fixture below starts its head with exactly these flags and this RAY_AUTH_MODE)."""
    env, flags = readme_head()
    assert env == {"RAY_AUTH_MODE": "token"} and flags == ["--head", "--dashboard-host=127.0.0.1"]
    lines = _readme_block()
    assert not [line for line in lines if line.startswith("ray start") and "0.0.0.0" in line]
    assert any("RAY_ADDRESS=http://127.0.0.1:8265 bash scripts/train_grpo.sh" in line for line in lines)
    assert all("JUDGE_API_KEY=" in line for line in lines if "JUDGE_HOST=0.0.0.0" in line)
    assert "ray get-auth-token --generate" in "\n".join(lines)


def _listening(port: int) -> set[str]:
    """Local IPv4/IPv6 addresses (hex, as /proc/net/tcp* writes them) with a listening socket on port."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if int(hex_port, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                found.add(address)
    return found


def test_the_dashboard_listens_on_loopback_only_and_wants_a_token(cluster: Cluster) -> None:
    """--dashboard-host=127.0.0.1: the job API is not on any other interface; its auth mode is token."""
    assert _listening(cluster.dashboard_port) == {"0100007F"}  # 127.0.0.1, nothing else
    status, body = _get(f"{cluster.dashboard}/api/authentication_mode")
    assert status == 200 and json.loads(body)["authentication_mode"] == "token"


@pytest.mark.parametrize(("method", "path"), [("GET", "/api/jobs/"), ("POST", "/api/jobs/")])
def test_a_request_without_the_token_is_refused(cluster: Cluster, method: str, path: str) -> None:
    """No token: 401; a wrong token: 403; the token: accepted (the job list; a submission is never sent with it)."""
    body = json.dumps({"entrypoint": "echo should-never-run"}).encode() if method == "POST" else None
    assert _get(cluster.dashboard + path, None, method, body)[0] == 401
    assert _get(cluster.dashboard + path, "not-" + cluster.token, method, body)[0] == 403
    if method == "GET":
        assert _get(cluster.dashboard + path, cluster.token)[0] == 200
    _, jobs = _get(f"{cluster.dashboard}/api/jobs/", cluster.token)
    assert "should-never-run" not in jobs


def test_ray_job_submit_without_the_token_is_refused(cluster: Cluster, tmp_path: Path) -> None:
    """`ray job submit` from a shell without RAY_AUTH_MODE=token (so without the token): refused, nothing runs."""
    cmd = ray_job_submit_command(cluster.dashboard, str(tmp_path / "none.yaml"), ["echo", "should-never-run"])
    cmd = [c for c in cmd if not c.startswith("--runtime-env=")]
    proc = subprocess.run(cmd, cwd=tmp_path, env=_base_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "401" in proc.stdout + proc.stderr or "Authentication required" in proc.stdout + proc.stderr


def test_our_submission_gets_through_and_secrets_stay_on_the_nodes(cluster: Cluster, tmp_path: Path) -> None:
    """The launch's runtime env + `ray job submit` with the token: the job runs; its worker has JUDGE_API_KEY from
    the node, not the submitter's; the job API's answer holds the forwarded JUDGE_BASE_URL but no secret."""
    shell = {**_base_env(), **SHELL_SECRETS, "JUDGE_BASE_URL": JUDGE_URL, "RUN_NAME": "auth-probe"}
    runtime_env = tmp_path / "runtime_env.yaml"
    wrote = subprocess.run(
        [sys.executable, "-m", "recipes.commands", "runtime-env", "--config", "legal_grpo_multinode", "--output",
         str(runtime_env)],
        cwd=REPO_ROOT, env={**shell, "LEGAL_SHARED_DIR": str(tmp_path)}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert wrote.returncode == 0, wrote.stderr
    assert "not forwarded: JUDGE_API_KEY, WANDB_API_KEY, HF_TOKEN" in wrote.stdout
    text = runtime_env.read_text()
    assert JUDGE_URL in text and not any(value in text for value in SHELL_SECRETS.values())
    assert not set(NODE_SECRETS) & set(yaml.safe_load(text)["env_vars"])

    work = tmp_path / "work"
    work.mkdir()
    (work / "probe.py").write_text(PROBE)
    submit_env = {**shell, "RAY_AUTH_MODE": DEFAULT_RAY_AUTH_MODE, "RAY_AUTH_TOKEN_PATH": str(cluster.token_file)}
    cmd = ray_job_submit_command(cluster.dashboard, str(runtime_env), ["python", "probe.py"], "auth-probe")
    proc = subprocess.run(cmd, cwd=work, env=submit_env, capture_output=True, text=True, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    node_sha = hashlib.sha256(NODE_JUDGE_KEY.encode()).hexdigest()[:16]
    assert f"probe: worker JUDGE_API_KEY sha {node_sha}; WANDB_API_KEY absent; JUDGE_BASE_URL {JUDGE_URL}" in output

    status, jobs = _get(f"{cluster.dashboard}/api/jobs/", cluster.token)
    assert status == 200 and "auth-probe" in jobs and JUDGE_URL in jobs  # the runtime env is what the API shows
    assert not any(value in jobs for value in (*SHELL_SECRETS.values(), NODE_JUDGE_KEY))
