"""A progress bar for long runs: tqdm when installed, a plain counter otherwise."""

from __future__ import annotations

import sys
from typing import Any


class Progress:
    """Counts units of work on stderr; ``disable=True`` prints nothing.

    Uses ``tqdm`` (the ``progress`` extra) when it is installed.
    """

    def __init__(self, total: int, description: str, *, disable: bool = False) -> None:
        self.total, self.done, self.disable, self.description = total, 0, disable, description
        self._bar: Any = None
        if not disable:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                return
            self._bar = tqdm(total=total, desc=description, unit="task", file=sys.stderr)

    def set_description(self, text: str) -> None:
        """Say what is being worked on."""
        self.description = text
        if self._bar is not None:
            self._bar.set_description(text)

    def __call__(self) -> None:
        """One unit done."""
        self.done += 1
        if self._bar is not None:
            self._bar.update(1)
        elif not self.disable:
            print(f"\r{self.description}: {self.done}/{self.total}", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        """Finish the bar."""
        if self._bar is not None:
            self._bar.close()
        elif not self.disable:
            print(file=sys.stderr)
