"""User-facing errors.

Anything a user can cause (a bad file, mismatched grids, an unknown element)
raises :class:`DataError` with a one-line message. The CLI prints it as
``error: <message>`` and exits 2; the dashboard shows it in the page.

Messages speak the library's words ("use a smaller buffer"), never a front
end's (``--buffer``, a widget's label): an error about a setting names it in
:attr:`DataError.settings`, and each front end maps those names to its own
controls (the CLI's table is :data:`mstgat_core.cli.common.SETTING_FLAGS`).
"""

from __future__ import annotations


class DataError(ValueError):
    """Bad input from the user; the message is one line and says what to fix.

    Parameters
    ----------
    message : str
        One line in the library's words (no command-line flag).
    setting : str or tuple of str, optional
        The setting(s) that fix the error, by their library names
        (``"buffer"``, ``"link_distance"``, ``"n_folds"``, ``"members"``, ...;
        the names of the fields of :class:`~mstgat_core.training.folds.FoldSettings`,
        :class:`~mstgat_core.model.ModelConfig` and the arguments of the
        library's functions), most relevant first.
    values : sequence, optional
        Suggested values of the first setting (e.g. ``(4, "loco")`` for
        ``n_folds``), for a front end to show in its own terms.

    Examples
    --------
    >>> err = DataError("the buffer leaves no training deposit: use a smaller buffer", setting="buffer")
    >>> err.setting, err.settings, str(err)
    ('buffer', ('buffer',), 'the buffer leaves no training deposit: use a smaller buffer')
    """

    def __init__(self, message: str = "", setting: str | tuple[str, ...] | None = None, values=()):
        super().__init__(message)
        self.settings: tuple[str, ...] = (setting,) if isinstance(setting, str) else tuple(setting or ())
        self.values: tuple = tuple(values)

    @property
    def setting(self) -> str | None:
        """The first (most relevant) setting the error names, or None."""
        return self.settings[0] if self.settings else None

    def __reduce__(self):  # keep the settings through pickling (dask workers, subprocesses)
        return (type(self), (str(self), self.settings, self.values))


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
