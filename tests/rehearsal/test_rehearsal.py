"""Wall tier: a config verl cannot run on the CPU goes through a real local Ray up to the GPU wall instead.

Today that is the config whose judge verl serves on its own vLLM pool (verl's vLLM rollout has no CPU build); every
other launchable config runs the real training loop on the CPU in tests/rehearsal/test_loop.py, which replaces its wall
rehearsal. The config's exact trainer command `python3 -m recipes.main_ppo --config-path=… --config-name=…` (verl's
own ray.init starts a private local Ray) runs with only model path, data files, logger and Ray resources overridden,
and must stop at the workers' model init (NCCL/CUDA), not earlier in our code. Configs are discovered in configs/
(recipes.launch.commands.launchable_configs), so a new one the loop cannot run is rehearsed here.

Slow (minutes: Ray start-up, verl's TransferQueue and one Ray process per configured GPU on a CPU box); one Ray
cluster at a time. `pytest --durations=0 tests/rehearsal/test_rehearsal.py` shows the cost per config.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from helpers.tiny_model import build_tiny_model

from recipes.launch.commands import compose_config, is_multi_node, launchable_configs, recipe_sample
from recipes.rehearsal.cluster import STAGES
from recipes.rehearsal.rehearse import analyse, prepare_sample, rehearse_single_node
from recipes.rehearsal.rehearse_loop import CannotRehearse, judge_plan


def _multi_node(name: str) -> bool:
    return is_multi_node(compose_config(name), {})


def _cpu_loop_cannot_run(name: str) -> bool:
    """verl cannot run the config on the CPU (tests/rehearsal/test_loop.py names the reason): the wall keeps covering
    it."""
    try:
        judge_plan(compose_config(name), {"JUDGE_BASE_URL": "http://127.0.0.1:1/v1"})
    except CannotRehearse:
        return True
    return False


# Every other config's full CPU loop (tests/rehearsal/test_loop.py) replaces its wall rehearsal in the suite.
WALL_ONLY = [name for name in launchable_configs() if _cpu_loop_cannot_run(name)]
SINGLE = [name for name in WALL_ONLY if not _multi_node(name)]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A random-weight Qwen2 with the local tokenizer (nothing downloaded)."""
    return str(build_tiny_model())  # the shared cached tiny model (tests/helpers/tiny_model.py)


@pytest.fixture(scope="module")
def sample_data(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], str]:
    """The config's own shipped sample (recipe.sample_*), prepared by data.prepare once per sample."""
    prepared: dict[tuple[str, str], str] = {}

    def for_config(name: str) -> str:
        cfg = compose_config(name)
        sample = recipe_sample(cfg)
        assert sample is not None, f"configs/{name}.yaml names no shipped sample (recipe.sample_source/_input)"
        if sample not in prepared:
            prepared[sample] = str(prepare_sample(cfg, tmp_path_factory.mktemp(f"prepared-{sample[0]}")))
        return prepared[sample]

    return for_config


def _assert_at_wall(result, name: str) -> None:
    tail = "\n".join(result.log.splitlines()[-60:])
    assert result.at_wall, f"{name} stopped before the GPU wall: {result.reason}\n{tail}"
    assert result.stages == [stage for stage, _ in STAGES]
    # Our trainer subclass and TaskRunner were unpickled on the Ray worker (by reference) and ran there.
    assert "recipes.trainer.main_ppo.RecipeTaskRunner object" in result.log
    assert "Can't get attribute" not in result.log


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("name", SINGLE)
def test_single_node_config_reaches_the_gpu_wall(name: str, tiny_model: str, sample_data) -> None:
    """The exact trainer command of a single-node config runs through Ray up to the workers' model init."""
    result = rehearse_single_node(name, tiny_model, sample_data(name), timeout_s=900)
    assert result.command[:3] == ["python3", "-m", "recipes.main_ppo"]
    assert result.command[3].startswith("--config-path=/") and result.command[4] == f"--config-name={name}"
    _assert_at_wall(result, name)


def test_the_wall_covers_exactly_the_configs_the_loop_cannot_run() -> None:
    """At least one config (verl's own judge pool) is rehearsed to the wall; all the others run the full loop."""
    assert SINGLE == WALL_ONLY and WALL_ONLY, WALL_ONLY


def test_a_break_before_the_wall_is_reported_with_its_stage() -> None:
    """The verdict: a run that dies in our code (here: the old __main__ pickling error) is not at the wall."""
    log = (
        "[validate_config] All configuration checks passed successfully!\n"
        "INFO worker.py:2038 -- Started a local Ray instance.\n"
        "ray.exceptions.ActorDiedError: The actor died because of an error raised in its creation task\n"
        "AttributeError: Can't get attribute 'recipe_trainer_cls' on <module '__main__'>\n"
    )
    result = analyse("x", ["python3"], log, 1.0)
    assert result.stages == ["verl validate_config", "ray up"] and not result.at_wall
    assert result.reason.startswith("AttributeError: Can't get attribute 'recipe_trainer_cls'")
    assert result.lines()[-1].startswith("[rehearse] x: FAILED before the GPU wall")


@pytest.mark.parametrize(
    ("first_log", "runs"),
    [
        ("torch.distributed.DistNetworkError: ... EADDRINUSE: address already in use", 2),
        ("OSError: [Errno 98] Address already in use", 2),
        ("ValueError: something else broke", 1),
    ],
)
def test_a_phase_runs_again_once_when_its_port_was_taken(monkeypatch, tmp_path, first_log: str, runs: int) -> None:
    """Another process taking verl's rendezvous port between its choice and its bind (seen once under load) costs one
    more run of the phase; any other failure is reported as it is; a second port race is reported too."""
    import recipes.rehearsal.rehearse_loop as loop

    calls: list[int] = []

    def fake_once(phase, *args, **kwargs) -> None:  # the trainer run itself is what the loop tier runs for real
        calls.append(1)
        phase.log, phase.returncode = (first_log, 1) if len(calls) == 1 else ("done", 0)

    monkeypatch.setattr(loop, "_run_once", fake_once)
    phase = loop.Phase(name="train", first_step=1, last_step=2)
    lines: list[str] = []
    loop.run_phase(phase, "legal_grpo", [], {}, tmp_path, False, 60.0, lines.append)
    assert len(calls) == runs
    assert phase.returncode == (0 if runs == 2 else 1)
    assert (len(lines) == 1 and "running again" in lines[0]) if runs == 2 else not lines
