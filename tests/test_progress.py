"""recipes.progress.tqdm: a bar on a terminal, clean newline-terminated lines in logs and pipes."""

from __future__ import annotations

import io

from recipes.progress import tqdm


class FakeTerminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_not_a_terminal_writes_clean_lines():
    """Off a terminal: no carriage returns, every write one full line, the final count in the last line."""
    buf = io.StringIO()
    for _ in tqdm(range(50), desc="scoring", unit="resp", file=buf):
        pass
    text = buf.getvalue()
    assert "\r" not in text and text.endswith("\n")
    lines = text.splitlines()
    assert all(line.startswith("scoring:") for line in lines)
    assert "50/50" in lines[-1]
    assert len(lines) <= 3  # start, (at most one interval line), end: not one redraw per item


def test_terminal_keeps_the_redrawn_bar():
    """On a terminal tqdm redraws in place as usual."""
    term = FakeTerminal()
    for _ in tqdm(range(3), desc="scan", file=term, mininterval=0):
        pass
    assert "\r" in term.getvalue()
