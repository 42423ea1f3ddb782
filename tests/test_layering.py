"""The layers point down (issue 26): judge/ imports nothing above it, and no import closes a cycle.

The import graph is read with ``ast`` from every .py file of our packages, imports inside functions included (a lazy
import still ties two layers together), so the check imports none of the code it judges; networkx finds the cycles.
(No import-graph library such as grimp is in the test stack, hence the short ``ast`` walk.)
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import networkx  # torch's own dependency: in every environment the tests run in
import pytest

REPO = Path(__file__).resolve().parents[1]
# Bottom to top: a package imports only packages listed before it.
LAYERS = ("judge", "data", "rewards", "recipes")
# recipes/<name>.py kept only so the commands README shows keep their names; each delegates to its job's folder.
ENTRY_MODULES = {
    "recipes.commands": "recipes.launch.commands",
    "recipes.preflight": "recipes.launch.preflight",
    "recipes.sft_launch": "recipes.launch.sft_launch",
    "recipes.rehearse": "recipes.rehearsal.rehearse",
    "recipes.main_ppo": "recipes.trainer.main_ppo",
    "recipes.evaluate": "recipes.evaluation.evaluate",
    "recipes.validation_match": "recipes.evaluation.validation_match",
    "recipes.export": "recipes.evaluation.export",
    "recipes.dashboard": "recipes.monitor.dashboard",
    "recipes.run_report": "recipes.monitor.run_report",
}
# What may sit directly in recipes/ besides those entries: the package and the recipe registry.
RECIPES_ROOT = {"recipes", "recipes.recipe"}

Edge = tuple[str, str, int]  # (importer, imported module, line)


def our_modules(root: Path = REPO) -> dict[str, Path]:
    """Dotted name → file, for every module of our packages (a package is its __init__)."""
    modules = {}
    for layer in LAYERS:
        for path in sorted((root / layer).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _imported(node: ast.AST, name: str, is_package: bool) -> Iterator[str]:
    """The dotted names one import statement asks for (relative imports resolved against the importer)."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        base = name.split(".") if is_package else name.split(".")[:-1]
        base = base[: len(base) - node.level + 1] if node.level else []
        module = ".".join([*base, node.module] if node.module else base)
        yield from (f"{module}.{alias.name}" for alias in node.names)
        yield module


def _resolve(dotted: str, modules: dict[str, Path]) -> str | None:
    """The longest of our modules that dotted names (a module, or a name inside one), or None."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def import_edges(root: Path = REPO) -> list[Edge]:
    """Every import of one of our modules by another, with the importer's line."""
    modules = our_modules(root)
    edges = set()
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            for dotted in _imported(node, name, path.name == "__init__.py"):
                target = _resolve(dotted, modules)
                # `from recipes.x import y` also names the package recipes.x; only the most precise target counts.
                if (
                    target is not None
                    and target != name
                    and not any(
                        other != target and other.startswith(target + ".") and _resolve(other, modules) == other
                        for other in _imported(node, name, path.name == "__init__.py")
                    )
                ):
                    edges.add((name, target, node.lineno))
    return sorted(edges)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node, each sorted."""
    digraph = networkx.DiGraph([(a, b) for a, targets in graph.items() for b in targets])
    return sorted(sorted(c) for c in networkx.strongly_connected_components(digraph) if len(c) > 1)


def package_of(module: str, modules: dict[str, Path]) -> str:
    """The package a module belongs to (a package belongs to itself)."""
    return module if modules[module].name == "__init__.py" else module.rpartition(".")[0]


def _where(edges: list[Edge], modules: dict[str, Path]) -> str:
    return "; ".join(f"{modules[a].relative_to(REPO)}:{line} imports {b}" for a, b, line in edges)


@pytest.fixture(scope="module")
def graph() -> tuple[dict[str, Path], list[Edge]]:
    """Our modules and the imports between them."""
    return our_modules(), import_edges()


def test_the_graph_sees_our_imports(graph) -> None:
    """The walk reads real imports (plain, from-, relative, lazy): a known edge of each layer is there."""
    modules, edges = graph
    pairs = {(a, b) for a, b, _ in edges}
    assert {"judge", "judge.cn_numerals", "data", "data.domains", "rewards", "recipes.recipe"} <= set(modules)
    assert ("judge.client", "judge.parse") in pairs
    assert ("rewards.legal", "rewards.rules") in pairs
    assert ("recipes.legal.evaluate", "recipes.evaluation.evaluate") in pairs


def test_judge_imports_nothing_of_recipes_rewards_or_data(graph) -> None:
    """judge/ is the client, prompts, parsers and Chinese numerals: nothing of recipes/, rewards/, data/ (whose
    data/domains/ holds the recipes' knowledge)."""
    modules, edges = graph
    up = [e for e in edges if e[0].split(".")[0] == "judge" and e[1].split(".")[0] in {"recipes", "rewards", "data"}]
    assert not up, _where(up, modules)
    assert all(b.split(".")[0] == "judge" for a, b, _ in edges if a.split(".")[0] == "judge")


def test_every_import_points_down(graph) -> None:
    """An import between two of our top-level packages goes from the higher layer to a lower one."""
    modules, edges = graph
    up = [e for e in edges if LAYERS.index(e[0].split(".")[0]) < LAYERS.index(e[1].split(".")[0])]
    assert not up, _where(up, modules)


def test_no_module_import_cycle(graph) -> None:
    """No module reaches itself through imports (lazy imports included)."""
    modules, edges = graph
    found = cycles({a: {b for x, b, _ in edges if x == a} for a in modules})
    assert not found, found


def test_no_package_import_cycle(graph) -> None:
    """No package reaches itself through its modules' imports; a subpackage and the package around it are one unit
    (the subpackage may use its parent's modules), so edges between the two are left out."""
    modules, edges = graph
    packages: dict[str, set[str]] = {package_of(m, modules): set() for m in modules}
    for a, b, _ in edges:
        pa, pb = package_of(a, modules), package_of(b, modules)
        if not (pa == pb or pa.startswith(pb + ".") or pb.startswith(pa + ".")):
            packages[pa].add(pb)
    found = cycles(packages)
    assert not found, found


def test_recipes_shows_its_jobs_as_folders(graph) -> None:
    """Directly in recipes/: the registry and the command entries README shows; the machinery sits in job folders."""
    modules, _ = graph
    root = {name for name, path in modules.items() if path.parent == REPO / "recipes"}
    assert root == RECIPES_ROOT | set(ENTRY_MODULES)


@pytest.mark.parametrize("entry", sorted(ENTRY_MODULES))
def test_entry_modules_only_delegate(graph, entry: str) -> None:
    """Each command entry imports only its job's module, and nothing of ours imports the entry."""
    modules, edges = graph
    assert {b for a, b, _ in edges if a == entry} == {ENTRY_MODULES[entry]}
    importers = [e for e in edges if e[1] == entry]
    assert not importers, _where(importers, modules)
