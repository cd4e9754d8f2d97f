"""User-facing errors.

Anything a user can cause (a bad file, mismatched grids, an unknown element)
raises :class:`DataError` with a one-line message. The CLI prints it as
``error: <message>`` and exits 2; the dashboard shows it in the page.
"""


class DataError(ValueError):
    """Bad input from the user; the message is one line and says what to fix."""


class Cancelled(Exception):
    """Long work (training, cross-validation, attribution maps) was cancelled by the user."""


def one_line(exc: BaseException | str) -> str:
    """An exception's message as one line: its first non-empty line, white space folded.

    Falls back to the exception's type name when the message is empty.
    """
    for line in str(exc).strip().splitlines():
        if line.strip():
            return " ".join(line.split())
    return type(exc).__name__ if isinstance(exc, BaseException) else ""
