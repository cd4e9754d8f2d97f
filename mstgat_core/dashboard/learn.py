"""Teaching text of the Learn tab (plain Markdown, no Panel)."""

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
chosen by cross-validation inside the known deposits. The members' disagreement is the
**uncertainty** layer; `model: calibrated` is the probability that a cell holds a deposit, which
stays small because deposit cells are rare; `model: novelty` above 1 marks cells unlike almost any
cell the model was trained on.

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
How the model mixes the scales for this cell. A high weight on a large scale means the broader
neighbourhood (a halo, a district-scale trend) mattered more than the immediate surroundings.

### Integrated gradients (attributions)
How much each element of the cell moved the model's logit from a baseline (the grid's median
composition) to its actual value. Positive values push towards "anomalous"; they sum (up to the
reported delta) to the change in logit.

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
