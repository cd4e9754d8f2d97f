"""Teaching text of the Learn tab (plain Markdown, no Panel)."""

import json
from pathlib import Path

from ..paths import EXPLAIN_REPORT, FAITHFULNESS_REPORT

LEARN_TEXT = r"""
## Reading the MSTGAT explanations

MSTGAT scores every grid cell with two branches: a **spectral Transformer** that looks at the
cell's element composition (one token per element plus a `[CLS]` summary token), and a
**multiscale graph attention network (GAT)** that mixes each cell with its neighbours at several
radii (*scales*). Click a cell on the map to see what the model used for it.

### How it learns from a few deposits
Both branches are first **pretrained on every cell without labels**: some of each cell's elements
are hidden and the model learns to predict them from the others and from the neighbours. A cell it
cannot reconstruct well is unusual: that is the **label-free score** (map layer
`model: label_free`). Then an **ensemble of 5 small heads** is fitted on the deposits, each on a
different resample of them; the final score mixes the heads with the label-free score in a share
chosen by cross-validation inside the known deposits (share 0 is the *label-free route*: the map is
the label-free score). The members' disagreement is the **uncertainty** layer: how much the map
depends on which deposits are known. On the label-free route the heads have no say, so each member
is instead the label-free score with the elements hidden in other groups (member 0 is the map's):
there the layer says how much a cell's score depends on which elements are hidden together. Either
way it is lowest at the very top of the map, so read it beside the rank, not alone (docs/results.md,
"Across surveys"). `model: calibrated` is the probability that a
cell holds a deposit, which stays small because deposit cells are rare; `model: novelty` above 1
marks cells unlike almost any cell the model was trained on.

### Element attention
* **[CLS] -> element bars**: how much the summary token attends to each element, per layer and
  head, or averaged. *Rollout* chains the layers together (Abnar & Zuidema, 2020).
* **Element x element heatmap**: rows are queries, columns keys; each row sums to 1. Blocks show
  elements the model reads together (e.g. Li-Be-Nb-Sn for rare-metal pegmatites).

### Neighbour weights
One heatmap per scale over the offsets (dy, dx) from the clicked cell (centre). Each shows how much
each neighbour contributes to the cell's spatial embedding; the weights into a cell sum to 1 at each
scale. Grey cells are not neighbours (outside the scale, outside the grid or without data). A flat
pattern means the model averages its surroundings; a peaked one means it follows one neighbour.

### Scale weights
How the model mixes the scales for this cell. They are learned during pretraining, without labels:
a high weight on a scale means that neighbourhood helps most to reconstruct the cell's elements. It
does **not** say how large the anomaly around a deposit is (on the benchmark below the default model
put r=1 first at every deposit cell). A model trained with `--scale-readout` reports each scale's
contribution to the score instead, which found the planted scale more often.

### Integrated gradients (attributions)
How much each element of the cell moved the model's logit from a baseline (the grid's median
composition) to its actual value. Positive values push towards "anomalous"; they sum (up to the
reported delta) to the change in logit. With the default CLR transform the values are log-ratios
to the cell's geometric mean, and the path from the baseline stays a composition, so closing the
data (rescaling each sample to 100 %) changes nothing.

**Red bars are indicator elements**: elements *above* the median composition that raise the score.
Grey-blue bars are elements *below* it: in a closed composition, enriching a few elements lowers
every other log-ratio, and the model may rightly use those depletions (or the absence of a decoy
signature), but they are not what you would sample for. Region summaries rank indicator elements
by this enriched part.

### Teaching mode: going further on a synthetic scenario
The **Exercise** card at the top of this tab checks your answers to steps 2 and 5 below (which cell
is ore, which elements the model used there, at which scale) and says why. To explore freely, choose
*Synthetic scenario* and press *Load data*. The map draws the **planted truth**: red circles
are the ore anomalies that host the deposits, with their elements and radius; orange dashed circles
are decoys, the same kind of enrichment in other elements, with no deposits. Untick *Show the planted
truth* to hide them (the exercise hides them until you tick it).
1. Train a model (Model card, a few epochs are enough).
2. Click a cell inside a red circle. Do the **red attribution bars** name the circle's elements?
3. Compare the attention bars with the attribution bars. Find an ore element that attention ranks
   low (below the dashed 1/n line) but the attribution ranks high: **attention missed it**.
4. Click inside an orange circle. The decoy elements are enriched there too. Does the score stay
   low? Which bars tell you why?
5. Read the scale weights and the neighbour heatmaps at an ore cell. Then compare the circle's
   radius with the scale the model weights most. The benchmark below says how often that agrees.

Read the **entropy** layers as the spread of a cell's neighbour weights: 1 is uniform and 0 is one
neighbour. The **IG delta** in the header is how far the attributions' sum misses the logit change;
if it is large compared with the bars, raise the IG steps before trusting them. Notebook
`notebooks/03_reading_attention.ipynb` goes further with the same scenarios.

### Point surveys and no deposits
Upload a point file (CSV or GeoPackage with element columns; lon/lat is projected to UTM). The map
shows the samples on their IDW grid. Then:
- *Score the samples* runs MSTGAT on the samples themselves (their 8, 24 and 48 nearest samples), with
  no deposits. Click a sample to see which elements it carries that its chemistry and its neighbours do
  not predict.
- Unticking *Learn from the deposits* trains on a grid without labels.

### Limits - read this before drawing conclusions
* **Attention is not an explanation by itself.** A high attention weight says where the model
  looked, not that the element *caused* the score: values are mixed after attention, and
  heads can cancel each other. Compare attention with the **attributions**; trust patterns that
  agree in both and across neighbouring cells and seeds.
* Attributions depend on the baseline and are local: they explain one cell's score, not geology.
* A model trained on few deposits learns their neighbourhood too. That is why the Evaluation tab
  uses **spatial cross-validation**: a cluster of nearby deposits is held out whole, and every
  training label within a buffer around the held-out area is dropped, so a good score is not just
  memorised proximity. Random splits would overstate skill.
* The `probability` layer is a relative prospectivity score that ranks cells (0.5 is a typical
  cell), not a chance of finding a deposit; read its `percentile`, or `calibrated` for a probability.
* In an ensemble, attention and neighbour weights are shared by the members (one pretrained
  backbone); the attributions differ between members, and their spread is drawn as whiskers.
"""


def benchmark_section(path: Path = EXPLAIN_REPORT) -> str:
    """What the planted-truth benchmark of explanations measured (empty if it has not been run)."""
    try:
        report = json.loads(Path(path).read_text())
        summary = report["summary"]
    except (OSError, ValueError, KeyError):
        return ""
    names = {
        "attention": "[CLS] attention (inside - outside)",
        "rollout": "attention rollout",
        "integrated_gradients": "integrated gradients, all",
        "ig_enrichment": "integrated gradients, enriched part (**the indicator ranking**)",
        "occlusion": "occlusion",
        "ig_enrichment_shuffled": "reference: the indicator ranking of a model with shuffled weights",
        "composition": "reference: the data alone (mean value at the deposits, no model)",
        "scale_weights": "scale weights",
        "scale_occlusion": "scale occlusion",
        "scale_evidence": "neighbour attribution by ring",
        "scale_contributions": "scale contributions to the score",
    }
    lines = [
        "### How far to trust each explanation: a benchmark with planted truth",
        f"On {summary.get('n_control', summary['n_scenarios'])} synthetic surveys (closed compositions; "
        "3 ore elements hosting the "
        "deposits, 2 decoy elements with the same anomaly and no deposits, and the ore elements again at "
        "another scale), the default model was trained as the dashboard trains it and each explanation was "
        "read at the deposit cells. Chance (shuffled element labels) is shown beside each figure.",
        "",
        "| explanation | all ore elements in its top 3 | a decoy element above an ore element |",
        "| --- | --- | --- |",
    ]
    for method, stats in summary["elements"].items():
        lines.append(
            f"| {names.get(method, method)} | {stats['top_k']['value']:.0%} (chance "
            f"{stats['top_k']['null_mean']:.1%}) | {stats['decoy_above']['value']:.0%} (chance "
            f"{stats['decoy_above']['null_mean']:.0%}) |"
        )
    if summary.get("scales"):
        lines += ["", "| scale explanation | planted scale ranked first |", "| --- | --- |"]
        for method, stats in summary["scales"].items():
            lines.append(f"| {names.get(method, method)} | {stats['first']:.0%} (chance {stats['chance']:.0%}) |")
    lines += [
        "",
        "Read it as: attention is learned without labels and picks out the ore elements no better than "
        "chance; the full attributions rank them high but mix in depleted and decoy elements; the enriched "
        "part (red bars, the region summary's indicator elements) names them most of the time, and far more "
        "often than the same ranking from a model with shuffled weights. Yet the data alone (the deposits' mean "
        "composition) name them at least as often: an explanation tells you what *this model* relies on, "
        "not something the compositions could not tell you. The scale "
        "weights, also learned without labels, do not measure an anomaly's scale: read them as where the "
        "model looks to reconstruct a cell, not as the size of the anomaly. Details and intervals: "
        "docs/results.md.",
    ]
    return "\n".join(lines)


FAITHFULNESS_DATASETS = {
    "south_china": "South China (the bundled model, its deposit cells and top 1 % scored cells)",
    "scenarios": "the synthetic benchmark scenarios (deposit cells and top 1 % scored cells)",
}
NOT_COMPUTED = (
    "Not computed yet (run `python -m mstgat_core.experiments.faithfulness --out docs/results/faithfulness.json`)."
)
FAITHFULNESS_METHODS = {"integrated_gradients": "integrated gradients", "occlusion": "occlusion"}


def faithfulness_report(path: Path = FAITHFULNESS_REPORT) -> dict | None:
    """The deletion-curve report (``python -m mstgat_core.experiments.faithfulness``), or None when it is
    missing or unreadable."""
    try:
        report = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return report if isinstance(report, dict) else None


def faithfulness_section(path: Path = FAITHFULNESS_REPORT) -> str:
    """Whether [CLS] attention is faithful, read from the deletion-curve report (says so when it is missing)."""
    title = "### Is attention faithful? Deleting the elements it points at"
    try:
        report = json.loads(Path(path).read_text())
        datasets = report["datasets"]
        k = int(report.get("deleted", 3))
        alpha = float(report["alpha"])
    except (OSError, ValueError, KeyError, TypeError):
        return f"{title}\n{NOT_COMPUTED}"
    lines = [
        title,
        "A faithful explanation ranks first the elements the score depends on: setting them to the median "
        "composition (the attribution baseline) should lower the cell's score (logit) more than setting random "
        "elements there. Area over the curve = the mean drop over every number of deleted elements.",
        "",
    ]
    intro = len(lines)
    for key, name in FAITHFULNESS_DATASETS.items():
        result = datasets.get(key)
        if not result or "random" not in result.get("methods", {}):
            continue
        methods = result["methods"]
        rand = methods["random"]
        kk = min(k, len(rand["deletion_drop"]) - 1)
        line = f"* **{name}**, {result['n_cells']} cells: "
        att = methods.get("attention")
        if att is None:
            line += "this model has no attention to test. "
        else:
            line += (
                f"deleting the {kk} elements with the highest attention lowers the score by "
                f"{att['deletion_drop'][kk]:.2f} on average, against {rand['deletion_drop'][kk]:.2f} for {kk} "
                f"random elements (area over the curve {att['deletion_aopc']:.2f} against "
                f"{rand['deletion_aopc']:.2f}, p = {att['p_vs_random']:.2g}). "
            )
            if att["faithful"]:
                line += "Attention is **faithful** here: it points at elements the score depends on. "
            else:
                line += f"Attention is **not faithful** here (not above random at p < {alpha:g}): "
                line += (
                    f"its top {kk} lower the score more than random ones, but over the whole ranking it does "
                    "no better than random. "
                    if att["deletion_drop"][kk] > rand["deletion_drop"][kk]
                    else "it does not point at the elements the score depends on. "
                )
        others = [
            f"{label} {methods[m]['deletion_drop'][kk]:.2f}" + ("" if methods[m]["faithful"] else " (not faithful)")
            for m, label in FAITHFULNESS_METHODS.items()
            if m in methods
        ]
        if others:
            line += f"Deleting the top {kk} by " + ", by ".join(others) + "."
        lines.append(line)
    if len(lines) == intro:
        return f"{title}\n{NOT_COMPUTED}"
    lines += [
        "",
        "Attention says where the Transformer looked; the attributions (the bars of integrated gradients) "
        "say what moves this model's score. Below: the cells' mean logit as each method's top elements are "
        "deleted (random dashed; a faithful method falls faster). Tables: docs/results.md, "
        '"Faithfulness: deletion and insertion curves".',
    ]
    return "\n".join(lines)


def learn_text() -> str:
    """The Learn tab: the teaching text, then the benchmark's and the deletion curves' figures."""
    section = benchmark_section()
    return LEARN_TEXT + ("\n" + section if section else "") + "\n\n" + faithfulness_section()
