"""Rehearsal tier: every launchable config's exact trainer command through a real local Ray, up to the GPU wall.

Single-node configs run `python3 -m recipes.main_ppo --config-path=… --config-name=…` (verl's own ray.init
starts a private local Ray); multi-node configs run `ray job submit --runtime-env=… --working-dir . -- …` against a
local cluster of two raylets on this machine (ports 21000-21999). The only overrides are model path, data files,
logger and Ray resources. Each must stop at the workers' model init (NCCL/CUDA), not earlier in our code: a config
whose entry point cannot be unpickled on a Ray worker, or that breaks before the wall, fails here. Configs are
discovered in configs/ (recipes.commands.launchable_configs), so a new one is rehearsed too.

Slow (minutes: Ray start-up, verl's TransferQueue and one Ray process per configured GPU on a CPU box); one Ray
cluster at a time. `pytest --durations=0 tests/test_rehearsal.py` shows the cost per config.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from helpers.tiny_model import build_tiny_model

from recipes.commands import compose_config, is_multi_node, launchable_configs, recipe_sample
from recipes.rehearse import STAGES, analyse, prepare_sample, rehearse_cluster, rehearse_single_node


def _multi_node(name: str) -> bool:
    return is_multi_node(compose_config(name), {})


SINGLE = [name for name in launchable_configs() if not _multi_node(name)]
MULTI = [name for name in launchable_configs() if _multi_node(name)]


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
    assert "recipes.main_ppo.RecipeTaskRunner object" in result.log
    assert "Can't get attribute" not in result.log


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("name", SINGLE)
def test_single_node_config_reaches_the_gpu_wall(name: str, tiny_model: str, sample_data) -> None:
    """The exact trainer command of a single-node config runs through Ray up to the workers' model init."""
    result = rehearse_single_node(name, tiny_model, sample_data(name), timeout_s=900)
    assert result.command[:3] == ["python3", "-m", "recipes.main_ppo"]
    assert result.command[3].startswith("--config-path=/") and result.command[4] == f"--config-name={name}"
    _assert_at_wall(result, name)


@pytest.mark.timeout(1500)
@pytest.mark.parametrize("name", MULTI)
def test_multi_node_submit_reaches_the_gpu_wall(name: str, tiny_model: str, sample_data) -> None:
    """`ray job submit --working-dir .` to a two-raylet local cluster; our packages import from Ray's copy."""
    result = rehearse_cluster(name, tiny_model, sample_data(name), timeout_s=900)
    assert result.command[:3] == ["ray", "job", "submit"] and "--working-dir" in result.command
    assert result.command[result.command.index("--") + 1 :][:3] == ["python3", "-m", "recipes.main_ppo"]
    _assert_at_wall(result, name)
    # The TaskRunner's frames come from the uploaded working dir, not from this checkout.
    frames = re.findall(r'File "([^"]*recipes/main_ppo\.py)"', result.log)
    assert frames and all("working_dir_files" in frame for frame in frames), frames


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
