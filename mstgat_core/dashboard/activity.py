"""What one dashboard session is doing and says, shown by the status bar (Panel-free)."""

from __future__ import annotations

import threading

import param

from ..errors import Cancelled, DataError, one_line

# the library names the setting an error is about (DataError.settings); the page names its own control
SETTING_CONTROLS = {
    "n_folds": "Folds",
    "seeds": "Seeds",
    "members": "Ensemble members",
    "scales": "Scales (cells)",
    "variant": "Variant",
    "transform": "Transform",
    "epochs": "Epochs",
    "elements": "Elements used by the model",
    "deposits": "the deposits file",
}


class Activity(param.Parameterized):
    """What one session is doing and says: the running job and its progress, the status line, the last
    error (one line, never a traceback), a notice (what changed without going wrong: a model dropped by new
    data, a confirmation asked for), the training history, and the event that cancels a job."""

    status = param.String(default="", precedence=-1)
    error = param.String(default="", precedence=-1)
    notice = param.String(default="", precedence=-1)  # what the user should know that is no error
    busy = param.String(default="", precedence=-1)  # name of the running job, "" if idle
    progress = param.Integer(default=0, precedence=-1)
    progress_max = param.Integer(default=1, precedence=-1)
    progress_text = param.String(default="", precedence=-1)
    history = param.List(default=[], precedence=-1)  # the last training's epochs: epoch, loss, val_auc

    def __init__(self, **params):
        super().__init__(**params)
        self.cancel_event = threading.Event()

    def fail(self, exc: BaseException) -> str:
        """Record a user-facing one-line error (never a traceback)."""
        if isinstance(exc, Cancelled):
            self.error = ""
            self.status = "cancelled"
            return "cancelled"
        msg = one_line(exc)
        if not isinstance(exc, DataError):
            msg = f"{type(exc).__name__}: {msg}"
        controls = [SETTING_CONTROLS[s] for s in getattr(exc, "settings", ()) if s in SETTING_CONTROLS]
        if controls:
            msg += f" (in the page: {', '.join(dict.fromkeys(controls))})"
        self.error = msg
        return msg
