"""Panel-free state of one dashboard session.

A :class:`Session` is made of parts with one job each, every one a ``param.Parameterized`` whose params
the views bind to:

========================  ==============================================================================
``session.activity``      the running job, its progress, the status line, the last error (:mod:`.activity`)
``session.data``          the grid, deposits, point samples, planted truth (:mod:`.state_data`)
``session.model``         training settings, the fitted model and its predicted layers (:mod:`.state_model`)
``session.explanation``   the clicked cell or sample, attention/attribution maps, a region (:mod:`.state_explain`)
``session.selection``     the map's layer, outline, overlays and brushed cells (:mod:`.state_selection`)
``session.evaluation``    cross-validation and the fold drawn on the map (:mod:`.state_evaluation`)
``session.exercise``      the Learn exercise's answers and the feedback on them (:mod:`.state_exercise`)
========================  ==============================================================================

A part reads the parts it depends on and changes only its own params. What changes several parts at
once - new data, a new model, new maps - is written here, once. Blocking methods (loading, training,
maps) call :mod:`mstgat_core` and run in a worker thread (:class:`~.jobs.Jobs`); they never touch widgets.

One :class:`Session` is created per browser session, so nothing here is shared between users; what
every session of a server shares (job slots, folders on disk, torch threads) is in :mod:`.server`.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import param
import xarray as xr

from ..errors import DataError, one_line
from ..paths import DEMO_DEPOSITS, DEMO_GRID
from ..training.demo import load_demo_cached
from .activity import Activity
from .server import SessionFolder
from .state_data import DEMO_ELEMENT, DEMO_LABEL, SOURCES, DataState
from .state_evaluation import EvaluationState
from .state_exercise import ExerciseState
from .state_explain import ExplanationState
from .state_model import DEMO_MODEL_LABEL, ModelState
from .state_selection import SelectionState


class Session(param.Parameterized):
    """Everything one user works on: its parts (see the module's table) and the transitions that change
    several of them. Heavy methods are blocking (run them in a thread)."""

    activity = param.ClassSelector(class_=Activity, constant=True, doc="The running job, status and errors")
    data = param.ClassSelector(class_=DataState, constant=True, doc="The grid, deposits and samples")
    model = param.ClassSelector(class_=ModelState, constant=True, doc="The fitted model and its layers")
    explanation = param.ClassSelector(class_=ExplanationState, constant=True, doc="What the model says where")
    selection = param.ClassSelector(class_=SelectionState, constant=True, doc="What the map shows and picks")
    evaluation = param.ClassSelector(class_=EvaluationState, constant=True, doc="Cross-validation")
    exercise = param.ClassSelector(class_=ExerciseState, constant=True, doc="The Learn exercise's answers")

    def __init__(self, **params):
        folder = SessionFolder()
        activity = Activity()
        data = DataState(activity)
        model = ModelState(activity, data, folder)
        explanation = ExplanationState(activity, data, model)
        parts = dict(
            activity=activity,
            data=data,
            model=model,
            explanation=explanation,
            selection=SelectionState(activity, data, model, explanation),
            evaluation=EvaluationState(activity, data, model),
            exercise=ExerciseState(data, model, explanation),
        )
        super().__init__(**parts, **params)
        self.folder = folder  # uploads and exports, removed by cleanup()

    def cleanup(self) -> None:
        """Delete the session's folder (called when the browser session ends)."""
        self.folder.cleanup()

    @contextlib.contextmanager
    def _together(self):
        """Change several parts as one: the views watching them run once every part is updated."""
        parts = (self.data, self.model, self.explanation, self.selection, self.evaluation)
        with contextlib.ExitStack() as stack:
            for part in parts:
                stack.enter_context(param.parameterized.batch_call_watchers(part))
            yield

    def refresh_layers(self, prefer: str | None = None) -> None:
        """Offer the map layers the parts have now (``prefer``: the layer to show) and redraw the map."""
        self.selection.refresh(prefer)

    # ------------------------------------------------------------------ new data

    def set_data(self, ds: xr.Dataset, deposits, label: str, samples=None) -> None:
        """Install a new grid (and deposits, and the point samples it was gridded from).

        Everything derived from the old data is dropped: the model's layers and point scores, every
        explanation, the brushed cells and the cross-validation. The model itself is applied to the new
        grid, and dropped (saying why) if its elements are missing.
        """
        with self._together():
            self.data.install(ds, deposits, label, samples)
            self.model.clear_outputs()
            self.explanation.clear()
            self.explanation.sample = None
            self.explanation.clicked = None
            self.selection.clear_brush()
            self.selection.forget_selections()
            self.evaluation.clear()
        if self.model.fitted is not None:
            try:
                self.apply_model(self.model.fitted, self.model.label)
            except DataError as exc:  # nothing went wrong: the model was made for other elements
                label = self.model.label
                self.model.drop()
                self.activity.notice = f"{label} was set aside: it does not fit these data ({one_line(exc)})"
        prefer = (
            "probability"
            if self.model.probability is not None
            else (f"element: {DEMO_ELEMENT}" if DEMO_ELEMENT in ds.data_vars else None)
        )
        self.refresh_layers(prefer)

    def what_new_data_discard(self) -> str:
        """What loading other data would throw away that loading them again would not bring back: a model
        trained or loaded in this session (the bundled one comes back with the demo) and a cross-validation;
        "" when nothing."""
        lost = []
        if self.model.fitted is not None and self.model.label != DEMO_MODEL_LABEL:
            lost.append(f"the model ({self.model.label})")
        if self.evaluation.report is not None:
            lost.append("the cross-validation")
        return " and ".join(lost)

    def confirm_new_data(self, button: str = "Load data") -> bool:
        """True when other data may be loaded now: nothing would be lost, or the user was told what would be
        and asked again (the second call for the same loss). The first call says what would be lost, and to
        press ``button`` again."""
        lost = self.what_new_data_discard()
        if not lost or self._asked_to_discard == lost:
            self._asked_to_discard = ""
            return True
        self._asked_to_discard = lost
        self.activity.notice = f"Loading other data discards {lost}: press {button} again to go on."
        return False

    _asked_to_discard = ""

    def load_demo(self) -> None:
        """The South China demo, with the bundled model unless the session already has one (blocking)."""
        ds, deposits = load_demo_cached(str(DEMO_GRID), str(DEMO_DEPOSITS))
        self.set_data(ds, deposits, DEMO_LABEL)
        if self.model.fitted is None:
            self.use_demo_model()
        self.activity.status = f"loaded {self.data.label}" + (
            "" if self.model.fitted else " - no model yet: train one in the Model tab"
        )

    def load_synthetic(self) -> None:
        """A synthetic scenario of the chosen size and seed, with its planted truth; drops the model."""
        data = self.data
        sc = data.synthetic()
        self.model.drop()
        self.set_data(
            sc.grid, sc.deposits, f"synthetic scenario {data.synth_rows}x{data.synth_cols}, seed {data.synth_seed}"
        )
        data.truth = sc.truth
        self.selection.version += 1
        ore = [a for a in sc.truth["anomalies"] if a["hosts_deposits"]]
        self.activity.status = f"loaded {data.label}: ore anomalies in " + "; ".join(
            f"{'-'.join(a['elements'])} (radius {a['scale']} cells)" for a in ore
        )

    def start_exercise(self) -> None:
        """The Learn exercise's survey: the synthetic scenario of the Data card's size and seed, its planted
        truth hidden on the map and not named in the status line (the exercise asks for it); blocking."""
        self.data.source = SOURCES[1]
        self.load_synthetic()
        self.selection.show_truth = False
        self.exercise.reset()
        self.activity.status = f"exercise: {self.data.label}, planted truth hidden - find the ore (Learn tab, step 1)"

    def load_grid_upload(self, files: dict) -> None:
        """An uploaded grid or point file (kept in the session's folder) as the data; the deposits are
        kept if they fall on it (blocking)."""
        paths = self.folder.save_upload(files)
        if not paths:
            raise DataError("no file received")
        ds, samples = self.data.read_grid(paths[0])
        self.set_data(ds, self.data.deposits_on(ds), f"uploaded {paths[0].name}", samples=samples)
        self.data.source = SOURCES[2]
        self.activity.status = self.data.upload_status(paths[0].name)

    def load_deposits_upload(self, files: dict) -> None:
        """Uploaded deposits on the current grid (blocking)."""
        if self.data.ds is None:
            raise DataError("load a grid before the deposits")
        paths = self.folder.save_upload(files)
        if not paths:
            raise DataError("no file received")
        summary = self.data.load_deposits(paths[0])
        self.selection.version += 1
        self.activity.status = f"deposits: {summary}"

    # ------------------------------------------------------------------ a new model

    def apply_model(self, fitted, label: str) -> str | None:
        """Prepare the grid for ``fitted``, predict and install it (blocking); returns its applicability
        warning, if any."""
        prepared, layers = self.model.predict(fitted)
        return self.install_model(fitted, prepared, layers, label)

    def install_model(self, fitted, prepared, layers, label: str) -> str | None:
        """Make ``fitted`` (with its prepared grid and predicted layers) the session's model; the old
        model's explanations are dropped. Returns its applicability warning, if any."""
        with self._together():
            self.model.install(fitted, prepared, layers, label)
            self.explanation.clear()
        self.explanation.set_options(fitted)
        return fitted.applicability_warning(layers)

    def use_demo_model(self) -> bool:
        """The bundled checkpoint on the demo grid, predicted once per process and shared by every
        session (each gets its own copy of the network); False when there is no bundled checkpoint."""
        try:
            demo = self.model.demo_model()
        except DataError as exc:
            self.activity.error = f"bundled checkpoint: {one_line(exc)}"
            return False
        if demo is None:
            return False
        # the checkpoint was trained on this grid: no applicability warning to show
        self.install_model(*demo, DEMO_MODEL_LABEL)
        self.refresh_layers("probability")
        return True

    def load_checkpoint_file(self, path, label: str | None = None) -> None:
        """A saved model applied to the current data (blocking)."""
        from ..training.checkpoint import load_checkpoint

        fitted = load_checkpoint(path)
        if self.data.ds is None:
            raise DataError("load data before a checkpoint")
        warning = self.apply_model(fitted, label or f"checkpoint {Path(path).name}")
        self.refresh_layers("probability")
        config = fitted.config
        self.activity.status = f"loaded {self.model.label} ({config.variant}, scales {list(config.scales)})"
        if warning:
            self.activity.status += f"; {warning}"

    def load_checkpoint_upload(self, files: dict) -> None:
        """An uploaded checkpoint (kept in the session's folder) applied to the current data (blocking)."""
        paths = self.folder.save_upload(files)
        if not paths:
            raise DataError("no file received")
        self.load_checkpoint_file(paths[0], label=f"uploaded {paths[0].name}")

    def train(self, on_epoch=None):
        """Fit a model with the chosen settings and make it the session's model (blocking); see
        :meth:`.ModelState.fit` for ``on_epoch``. Returns the fitted model."""
        fitted, label, status = self.model.fit(on_epoch)
        warning = self.apply_model(fitted, label)
        self.refresh_layers("probability")
        self.activity.status = status + (f"; {warning}" if warning else "")
        return fitted

    def score_samples(self, on_epoch=None):
        """Score the uploaded point samples with a label-free MSTGAT of their own (blocking); the clicked
        sample's explanation is dropped. Returns the scores' table."""
        status = self.model.score_samples(on_epoch)
        self.explanation.sample = None
        self.selection.version += 1
        self.activity.status = status
        return self.model.point_scores

    # ------------------------------------------------------------------ new maps

    def compute_maps(self, progress=None):
        """Attention maps of every cell, offered as map layers (blocking)."""
        maps = self.explanation.compute_maps(progress)
        self.refresh_layers()
        return maps

    def compute_attributions(self, progress=None):
        """Attribution maps of every element, the first one shown (blocking, slow)."""
        attributions = self.explanation.compute_attributions(progress)
        self.refresh_layers(f"attribution: {attributions['element'].values[0]}")
        return attributions

    def explain(self, x: float, y: float):
        """Explain the cell nearest to (x, y) and show it (blocking); see :meth:`.ExplanationState.explain`."""
        return self.explanation.explain(x, y)
