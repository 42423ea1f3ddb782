"""Which processes a test started: descendants of this process, sampled while something runs."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path


def _parent_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def descendants(root: int) -> set[int]:
    """Live processes whose parent chain reaches root."""
    parents = {int(p.name): _parent_of(int(p.name)) for p in Path("/proc").iterdir() if p.name.isdigit()}
    found: set[int] = set()
    for pid in parents:
        seen, cur = set(), pid
        while cur and cur not in seen and cur != root:
            seen.add(cur)
            cur = parents.get(cur)
        if cur == root and pid != root:
            found.add(pid)
    return found


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class ProcessWatcher:
    """Samples this process's descendants every `interval_s` while active; `left_behind()` lists those still alive."""

    def __init__(self, interval_s: float = 1.0) -> None:
        self.interval_s = interval_s
        self.seen: set[int] = set()
        self.before: set[int] = set()  # descendants alive before (an earlier test's): not this run's
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.seen |= descendants(os.getpid())
            self._stop.wait(self.interval_s)

    def __enter__(self) -> ProcessWatcher:
        self.before = descendants(os.getpid())
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def left_behind(self, grace_s: float = 30.0) -> list[str]:
        """Processes this run started that are still alive after grace_s (Ray reaps its workers a few seconds after
        the driver ends), each as "PID command"."""
        deadline = time.monotonic() + grace_s
        while True:
            left = sorted(pid for pid in self.seen - self.before if alive(pid))
            if not left or time.monotonic() > deadline:
                return [f"{pid} {_command(pid)}" for pid in left]
            time.sleep(0.5)


def _command(pid: int) -> str:
    """The process's command line (short), or "?" once it is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:160]
    except OSError:
        return "?"
