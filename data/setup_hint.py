"""One line instead of a traceback when a ``python -m`` entry point runs outside the project's environment.

The entry points (``data.prepare``, ``recipes.legal.evaluate``, ``recipes.commands``,
``recipes.preflight``) import this module before anything else. It installs a ``sys.excepthook`` that turns an
uncaught ``ModuleNotFoundError`` for a third-party package into one line naming the command, the missing package and
how to set things up; every other exception keeps its normal traceback. Standard library only.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import TracebackType

__all__ = ["OWN_PACKAGES", "SETUP_COMMAND", "install", "missing_dependency_message"]

REPO_ROOT = Path(__file__).resolve().parents[1]
VENV = REPO_ROOT / ".venv"
SETUP_COMMAND = "bash scripts/test.sh"
# A missing module of our own is a wrong working directory or a bug, not a missing install: keep its traceback.
OWN_PACKAGES = frozenset({"recipes", "rewards", "judge", "data"})


def _entry_command() -> str:
    """How this process was started, as the user typed it: ``python -m data.prepare`` (or the script path)."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name:
        return f"python -m {spec.name.removesuffix('.__main__')}"
    return f"python {Path(sys.argv[0]).name}" if sys.argv and sys.argv[0] else "python"


def _in_project_venv() -> bool:
    """Whether this interpreter is the project's .venv (by its prefix or its executable)."""
    try:
        venv = VENV.resolve()
        return Path(sys.prefix).resolve() == venv or Path(sys.executable).absolute().parent.parent == VENV.absolute()
    except OSError:
        return False


def missing_dependency_message(package: str) -> str:
    """The one line shown for a missing third-party package."""
    command = _entry_command()
    if _in_project_venv() or not VENV.joinpath("bin", "python").exists():
        how = f"set up with `{SETUP_COMMAND}` (creates or completes .venv, CPU stack), then `source .venv/bin/activate`"
    else:
        how = f"activate the project's environment first: `source .venv/bin/activate` (or run `.venv/bin/{command} …`)"
    return f"{command}: missing Python package {package!r} — {how}"


def _hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    """sys.excepthook: the one-line message for a missing third-party package, else the previous hook."""
    name = getattr(exc, "name", None) if issubclass(exc_type, ModuleNotFoundError) else None
    if name and name.split(".")[0] not in OWN_PACKAGES:
        sys.stderr.write(missing_dependency_message(name.split(".")[0]) + "\n")
        return
    _previous_hook(exc_type, exc, tb)


_previous_hook = sys.excepthook


def install() -> None:
    """Install the hook once (importing this module already does)."""
    global _previous_hook
    if sys.excepthook is not _hook:
        _previous_hook = sys.excepthook
        sys.excepthook = _hook


install()
