"""The Learn tab's exercise card: a button loads the synthetic survey, then three numbered steps each with
their widgets, a Check button and a feedback alert (green right, yellow partly, red wrong, blue: do this
first). The checks are :class:`~.state_exercise.ExerciseState`'s."""

from __future__ import annotations

import panel as pn

from .jobs import Jobs
from .state import Session

ALERTS = {"right": "success", "partly": "warning", "wrong": "danger", None: "info"}
TITLES = {"right": "Right", "partly": "Partly right", "wrong": "Not quite"}


def feedback_text(feedback: dict | None) -> str:
    """The alert's Markdown for a check's feedback ("" before a check)."""
    if not feedback:
        return ""
    verdict = feedback.get("verdict")
    if verdict is None:
        return feedback["why"]
    return f"**{TITLES[verdict]}.** {feedback['why']}"


def feedback_alert(session: Session, name: str, css_class: str) -> pn.pane.Alert:
    """The feedback of one step (``name``: cell, elements, scale) as an alert, hidden before its check."""
    alert = pn.pane.Alert("", alert_type="info", visible=False, css_classes=[css_class], sizing_mode="stretch_width")

    def show(event=None):
        feedback = getattr(session.exercise, f"{name}_feedback")
        alert.object = feedback_text(feedback)
        alert.alert_type = ALERTS[feedback.get("verdict")] if feedback else "info"
        alert.visible = bool(feedback)

    session.exercise.param.watch(show, f"{name}_feedback")
    show()
    return alert


def clicked_text(clicked, cell) -> str:
    """Which cell step 1 checks (the last click) and steps 2 and 3 (the last cell the model explained)."""
    text = f"Your cell: **row {clicked[0]}, col {clicked[1]}**." if clicked else "No cell clicked yet."
    if cell is not None and (not clicked or (cell.attrs["row"], cell.attrs["col"]) != tuple(clicked)):
        text += (
            f" Steps 2 and 3 read the cell the model explained last: row {cell.attrs['row']}, col {cell.attrs['col']}."
        )
    return text


def exercise_card(session: Session, jobs: Jobs) -> pn.Card:
    """The exercise: Start, then 1. click a cell you think hosts ore, 2. which elements the model used
    there, 3. at which scale; each checked against the planted truth, the model's explanation of the cell
    and the explanation benchmark."""
    exercise = session.exercise
    start_btn = pn.widgets.Button(
        name="Start the exercise", button_type="primary", css_classes=["mstgat-exercise-start"]
    )

    async def start(event=None):
        if not session.confirm_new_data(button="Start the exercise"):
            return
        await jobs.run("making the exercise's survey", session.start_exercise)

    start_btn.on_click(start)

    def check_button(name: str, action):
        button = pn.widgets.Button(name="Check", button_type="default", css_classes=[f"mstgat-exercise-check-{name}"])
        button.on_click(lambda event: action())
        return button

    def step(name: str, question: str, choices, action) -> tuple:
        """A step answered by choosing: the question, the buttons of ``exercise.<name>``, Check, its feedback."""
        buttons = choices.from_param(
            exercise.param[name],
            name="",
            button_type="primary",
            button_style="outline",
            css_classes=[f"mstgat-exercise-{name}"],
        )
        feedback = feedback_alert(session, name, f"mstgat-exercise-feedback-{name}")
        return pn.pane.Markdown(question), buttons, check_button(name, action), feedback

    card = pn.Card(
        pn.pane.Markdown(
            "A synthetic survey with **planted truth**: ore anomalies (enriched in some elements, hosting the "
            "deposits) and decoys (as strongly enriched in other elements, with no deposits). *Start the "
            "exercise* loads it (the Data card's size and seed) with the truth hidden on the map; each *Check* "
            "compares your answer with the truth and with what the model says, and tells you why. Tick *Show "
            "the planted truth* on the map to see the circles afterwards."
        ),
        start_btn,
        pn.pane.Markdown(
            "**1. Click a cell you think hosts ore** on the map (tab *Map & explanation*). The element layers "
            "help: ore shows where several elements are high together."
        ),
        pn.pane.Markdown(
            pn.bind(clicked_text, session.explanation.param.clicked, session.explanation.param.cell),
            css_classes=["mstgat-exercise-cell"],
        ),
        check_button("cell", exercise.check_cell),
        feedback_alert(session, "cell", "mstgat-exercise-feedback-cell"),
        *step(
            "elements",
            "**2. Which elements did the model use at your cell?** Train a model (Model card) and click the "
            "cell: the model's indicator elements are the red attribution bars pointing right.",
            pn.widgets.CheckButtonGroup,
            exercise.check_elements,
        ),
        *step(
            "scale",
            "**3. At which scale is the anomaly at your cell?** Pick the neighbourhood radius (in cells) "
            "closest to its size; then compare with the scale weights the model gave the cell.",
            pn.widgets.RadioButtonGroup,
            exercise.check_scale,
        ),
        title="Exercise: find the ore, then read the model",
        sizing_mode="stretch_width",
        css_classes=["mstgat-exercise"],
    )
    card.start = start  # what the Start button does, for tests and notebooks
    return card
