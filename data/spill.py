"""Pass-1 records kept in a temporary file, read back in order by pass 2 (instead of decoding the input again)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from struct import Struct

import numpy as np

__all__ = ["Spill"]

_LENGTH = Struct("<I")


class Spill:
    """Length-prefixed byte records in an unnamed temporary file (gone when closed or when the process ends).

    Pass 1 appends one record per usable input record, in the order of its scan arrays; pass 2 reads back the
    records at chosen positions (ascending), skipping the others without reading them.
    """

    def __init__(self, directory: str | Path) -> None:
        """An empty spill file in directory (data.prepare's output directory: room for about the input's facts)."""
        self._fh = tempfile.TemporaryFile(dir=directory, prefix=".prepare-spill-")  # noqa: SIM115
        self._write = self._fh.write
        self.records = 0

    def append(self, data: bytes) -> None:
        """Add one record."""
        self._write(_LENGTH.pack(len(data)) + data)
        self.records += 1

    def read(self, positions: np.ndarray) -> Iterator[bytes]:
        """The records at the given ascending positions (0 = the first appended), in that order."""
        fh = self._fh
        fh.flush()
        fh.seek(0)
        read, skip, unpack, size = fh.read, fh.seek, _LENGTH.unpack, _LENGTH.size
        at = 0
        for pos in positions.tolist():
            if not at <= pos < self.records:
                raise ValueError(f"spill position {pos} out of order or range (next {at}, records {self.records})")
            while at < pos:
                skip(unpack(read(size))[0], 1)
                at += 1
            yield read(unpack(read(size))[0])
            at += 1

    def close(self) -> None:
        """Delete the file."""
        self._fh.close()
