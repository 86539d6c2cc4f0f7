"""Errors a user can cause: one clear line and a hint, never a traceback."""

from __future__ import annotations


class ForensicsError(Exception):
    """A problem with the user's input or options; the CLI prints it as one line plus a hint."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class InputReadError(Exception):
    """A file could not be read to the end (corrupt compression, I/O error).

    Raised by the reader after the lines it could read were delivered, so the caller can keep
    them and record the error for that file alone.
    """
