"""Whole-or-nothing output directories: written into a fresh sibling directory that replaces the old one at the end.

    check_output(out, OWNED, overwrite=False, inputs=paths)   # before any work: refuse files the tool did not write
    with StagedDir(out) as stage:
        with stage.writing("train.parquet") as path:          # an OSError (a full disk) -> OutputError naming the file
            ...                                               # write path (inside the staging directory)
        stage.commit()                                        # the new directory takes the output's place at once
    # leaving the block without commit() (an error, Ctrl-C, TERM turned into SystemExit) removes the staging directory

The staging directory is `.NAME.partial-XXXXXXXX` beside the output, on the same filesystem, so nothing is copied:
commit() swaps the two directories in one rename (Linux renameat2 RENAME_EXCHANGE), then deletes the old one. Where
the system cannot exchange two paths, the old directory is renamed aside first (for a moment no output exists; the old
one is never lost). Only a SIGKILL can leave a staging directory behind; the output is then the old one, whole.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import secrets
import shutil
from collections.abc import Collection, Iterator
from pathlib import Path
from types import TracebackType

__all__ = ["OutputError", "StagedDir", "check_output"]

logger = logging.getLogger(__name__)

STAGING_INFIX = ".partial-"
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2  # linux/fs.h


class OutputError(RuntimeError):
    """The output directory cannot be used or written; the message names it (or the file) and what to do."""


def _owned(name: str, owned: Collection[str]) -> bool:
    """A file the tool writes itself (or an older version's .partial of one)."""
    return name in owned or (name.endswith(".partial") and name[: -len(".partial")] in owned)


def check_output(out: Path, owned: Collection[str], overwrite: bool, inputs: Collection[str] = ()) -> None:
    """Refuse an output that is a file, that holds an input, or that holds files the tool does not write.

    A directory holding only files of an earlier run (names in ``owned``) is replaced whole by the next run; anything
    else in it is replaced only with ``overwrite`` (the flag named in the message is ``--overwrite``).
    """
    if out.exists() and not out.is_dir():
        raise OutputError(f"--output {out} is a file, not a directory")
    real = Path(os.path.realpath(out))
    for path in inputs:
        if Path(os.path.realpath(path)).is_relative_to(real):
            raise OutputError(f"--input {path} is inside --output {out}, which the run replaces whole: choose another")
    if overwrite or not out.is_dir():
        return
    foreign = sorted(p.name for p in out.iterdir() if not (_owned(p.name, owned) and p.is_file()))
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise OutputError(
            f"--output {out} holds files this tool did not write ({shown}); the run replaces the directory whole: "
            "pass --overwrite to replace it anyway, or choose an empty or new directory"
        )


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (renameat2 RENAME_EXCHANGE); False where this system or filesystem cannot."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:  # not Linux, or a C library without it
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


class StagedDir:
    """A fresh directory beside ``out`` that replaces it on commit() and is removed otherwise (module docstring)."""

    def __init__(self, out: str | os.PathLike[str]) -> None:
        """Remember where the output goes (``out`` as the user named it, for messages)."""
        self.shown = Path(out)
        self.out = Path(os.path.realpath(out))  # a symlinked output stays a symlink: its target is replaced
        self.path = self.out  # set by __enter__
        self.committed = False

    def __enter__(self) -> StagedDir:
        """Create the staging directory (with the mode the output has, or a new directory would get)."""
        parent = self.out.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            for stale in sorted(parent.glob(f".{self.out.name}{STAGING_INFIX}*")):
                logger.warning(
                    "%s is left from a run that is still going or was killed; delete it once it is not", stale
                )
            while True:
                path = parent / f".{self.out.name}{STAGING_INFIX}{secrets.token_hex(4)}"
                try:
                    path.mkdir()
                    break
                except FileExistsError:
                    continue
            if self.out.is_dir():
                path.chmod(self.out.stat().st_mode & 0o7777)
        except OSError as exc:
            raise OutputError(f"cannot create a directory beside {self.shown}: {_reason(exc)}") from exc
        self.path = path
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        """Remove the staging directory unless it was committed."""
        if not self.committed:
            shutil.rmtree(self.path, ignore_errors=True)

    def is_fresh(self) -> bool:
        """True when there is no output yet, or an empty directory: committing loses nothing."""
        return not self.out.exists() or (self.out.is_dir() and not any(self.out.iterdir()))

    @contextlib.contextmanager
    def writing(self, name: str) -> Iterator[Path]:
        """The staging path of file ``name``; an OSError while writing it becomes one OutputError line naming it."""
        try:
            yield self.path / name
        except OSError as exc:
            raise OutputError(
                f"cannot write {self.shown / name}: {_reason(exc)} ({self.shown} is left as it was)"
            ) from exc

    def commit(self) -> None:
        """Put the staging directory in the output's place; the old output is deleted after."""
        try:
            if not self.out.exists():
                os.rename(self.path, self.out)
            elif _exchange(self.path, self.out):
                shutil.rmtree(self.path, ignore_errors=True)  # it holds the old output now
            else:
                aside = self.path.with_name(self.path.name.replace(STAGING_INFIX, ".old-", 1))
                os.rename(self.out, aside)
                try:
                    os.rename(self.path, self.out)
                except OSError:
                    os.rename(aside, self.out)
                    raise
                shutil.rmtree(aside, ignore_errors=True)
        except OSError as exc:
            raise OutputError(f"cannot put the new output in place at {self.shown}: {_reason(exc)}") from exc
        self.committed = True


def _reason(exc: OSError) -> str:
    """An OSError as one line: the system's words (pyarrow's carry a 'Detail: ...' with them)."""
    return " ".join(str(exc.strerror or exc).split())
