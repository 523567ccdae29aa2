"""One error type for bad user input, and the CLI wrapper that turns it into a one-line message.

Every module raises :class:`InputError` (a ``ValueError``) with a message naming the file/argument and the
problem; CLIs wrap their ``main`` with :func:`cli_entry` so users see ``error: <message>`` and exit code 2,
never a traceback.
"""
from __future__ import annotations

import functools
import sys
from typing import Callable


class InputError(ValueError):
    """Bad input from the user (file, argument, config); the message is shown as is."""


def cli_entry(main: Callable[..., int | None]) -> Callable[..., int]:
    """Wrap a CLI ``main(argv)``: InputError/FileNotFoundError -> one line on stderr and exit code 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs) -> int:
        try:
            return int(main(*args, **kwargs) or 0)
        except (InputError, FileNotFoundError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130

    return wrapper
