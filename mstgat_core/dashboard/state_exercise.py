"""The Learn exercise of a dashboard session: the student's answers and the feedback on each (Panel-free; see
:mod:`.state`). The checks are :mod:`mstgat_core.interpret.teaching`'s; this part reads what they need from
the session (the planted truth, the clicked cell, its explanation, the model's scales) and turns what is
missing into a feedback that says what to do first."""

from __future__ import annotations

import param

from ..errors import DataError, one_line
from ..graphs.graph import parse_scales
from ..interpret import teaching
from .state_data import DataState
from .state_explain import ExplanationState
from .state_model import ModelState

TRAIN_FIRST = (
    "Train a model first (the Model card in the sidebar; a few epochs are enough), then click a cell of the "
    "map: this step checks your answer against the model's explanation of that cell."
)
START_FIRST = "Press *Start the exercise* first: it loads a synthetic survey whose truth is known."


class ExerciseState(param.Parameterized):
    """The three steps of the Learn exercise on a synthetic scenario: which cell hosts ore (the cell clicked
    on the map), which elements the model used there, at which scale. Each ``check_*`` stores and returns
    its feedback: a dict with ``verdict`` (``right``/``partly``/``wrong``, or None when something must be
    done first) and ``why``. New data offer their elements and clear the answers; a new model offers its
    scales."""

    elements = param.ListSelector(
        default=[], objects=[], check_on_set=True, label="Elements the model used at your cell"
    )
    scale = param.Selector(
        default=None, objects=[], allow_None=True, check_on_set=True, label="Scale (neighbourhood radius, cells)"
    )
    cell_feedback = param.Dict(default=None, allow_None=True, precedence=-1)
    elements_feedback = param.Dict(default=None, allow_None=True, precedence=-1)
    scale_feedback = param.Dict(default=None, allow_None=True, precedence=-1)

    def __init__(self, data: DataState, model: ModelState, explanation: ExplanationState, **params):
        super().__init__(**params)
        self.data, self.model, self.explanation = data, model, explanation
        data.param.watch(lambda event: self.reset(), "ds")
        model.param.watch(lambda event: self.offer_scales(), ["fitted", "scales"])
        self.reset()

    def scales(self) -> list[int]:
        """The scales to choose from: the model's, else those the Model card would train (none if invalid)."""
        scales = getattr(getattr(self.model.fitted, "config", None), "scales", None)
        if scales is not None:
            return [int(s) for s in scales]
        try:
            return list(parse_scales(self.model.scales))
        except DataError:
            return []

    def offer_scales(self) -> None:
        """Offer :meth:`scales`, keeping the chosen one if it is still offered."""
        scales = self.scales()
        self.param.scale.objects = scales
        if self.scale not in scales:
            self.scale = None

    def reset(self) -> None:
        """Offer the data's elements and the model's scales, with no answer and no feedback."""
        self.param.elements.objects = self.data.grid_elements
        self.elements = []
        self.offer_scales()
        self.scale = None
        self.cell_feedback = self.elements_feedback = self.scale_feedback = None

    # ------------------------------------------------------------------ the checks

    def _truth(self) -> dict:
        if self.data.truth is None:
            raise DataError(START_FIRST)
        return self.data.truth

    def _explained(self) -> tuple:
        """(row, col, explanation) of the cell the model explained last."""
        cell = self.explanation.cell
        if cell is None:
            if self.model.fitted is None:
                raise DataError(TRAIN_FIRST)
            raise DataError("Click a cell of the map: the model explains it, and your answer is checked against that.")
        return int(cell.attrs["row"]), int(cell.attrs["col"]), cell

    def _checked(self, name: str, check) -> dict:
        try:
            feedback = check()
        except DataError as exc:  # what to do first, said in the card, never raised into the page
            feedback = {"verdict": None, "why": one_line(exc)}
        setattr(self, f"{name}_feedback", feedback)
        return feedback

    def check_cell(self) -> dict:
        """Step 1: is the clicked cell inside an ore anomaly?"""

        def check():
            truth = self._truth()
            if self.explanation.clicked is None:
                raise DataError("Click a cell of the map first (tab Map & explanation), where you think ore is.")
            row, col = self.explanation.clicked
            if not self.data.valid_cells()[row, col]:
                raise DataError(f"Row {row}, col {col} has no data: click a cell inside the survey.")
            return teaching.check_cell(truth, row, col)

        return self._checked("cell", check)

    def check_elements(self) -> dict:
        """Step 2: which elements did the model use at the explained cell?"""

        def check():
            truth = self._truth()
            row, col, explanation = self._explained()
            if not self.elements:
                raise DataError("Choose the elements you think the model used at this cell.")
            return teaching.check_elements(truth, row, col, self.elements, explanation)

        return self._checked("elements", check)

    def check_scale(self) -> dict:
        """Step 3: at which scale is the planted anomaly at the explained cell?"""

        def check():
            truth = self._truth()
            row, col, explanation = self._explained()
            if self.scale is None:
                raise DataError("Pick a scale.")
            return teaching.check_scale(
                truth, row, col, self.scale, self.scales(), explanation, teaching.benchmark_scale_agreement()
            )

        return self._checked("scale", check)
