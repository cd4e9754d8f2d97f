"""User-facing errors.

Anything a user can cause (a bad file, mismatched grids, an unknown element)
raises :class:`DataError` with a one-line message. The CLI prints it as
``error: <message>`` and exits 2; the dashboard shows it in the page.
"""


class DataError(ValueError):
    """Bad input from the user; the message is one line and says what to fix."""


class Cancelled(Exception):
    """Long work (training, cross-validation, attribution maps) was cancelled by the user."""
