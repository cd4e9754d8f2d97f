"""Fine-tuning a pretrained MSTGAT on a few deposits: linear heads, a fused score, chosen by inner CV.

After pretraining (:mod:`~mstgat_core.pretrain`) the backbone is frozen and
every cell has an embedding and a label-free score. Fine-tuning fits the
``members`` linear heads of :class:`~mstgat_core.model.FusedHead` on the
standardised [embedding, label-free score] of the training deposits against
negatives far from them (L2 logistic regression, classes balanced), and sets
the share of the supervised head in the fused score.

Two settings are not fixed in advance but chosen **by inner cross-validation
on the training deposits only** (whole deposit clusters per inner fold, with
the outer protocol's link distance, buffer and minimum negative distance:
those of the cross-validation that holds this fit, else the defaults of the
model's receptive field, a buffer of the receptive radius + 1): the head's
regularisation ``C`` and the ``share``: share 0 is the label-free route,
1 the supervised head alone, between them the fused route
(:attr:`FineTuneResult.route`). With a handful of deposits the inner
figures are noisy, so the grids are small and the choice follows a **paired**
one-standard-error rule: the smallest share (then the smallest ``C``) whose
per-fold loss against the best candidate is, on average, within one paired
standard error (over the inner folds) of zero; the label-free score alone is
the safest guess. The figure judged is the standardised partial ROC-AUC up to
:data:`INNER_MAX_FPR` false positives (McClish, scikit-learn's
``roc_auc_score(max_fpr=...)``): it reads the top of the ranking, where the
inner ROC-AUC of 0.97-1.0 leaves no room to see a gain; the inner ROC-AUC is
stored beside it. (The rule used to compare means with the best candidate's
unpaired standard error: 0.020 against 0.004 for the paired gain on the
bundled fit, so a head had to gain 0.02 to count.) When the training
deposits form a single cluster (or the inner folds cannot be drawn) no
inner fold exists and the defaults ``DEFAULT_SHARE``/``DEFAULT_C`` are used
(recorded as ``chosen_by="default"``): share 0, the label-free route, as the
rule itself chooses when it has nothing to judge a gain by. (It was 0.5
until issue 27: the heads then took half the score on one training cluster,
with members that could not differ, since a bootstrap of one cluster is that
cluster.)

The heads are one of the registered readouts
(:data:`~mstgat_core.training.readouts.READOUTS`, ``FineTuneConfig.readout``):
``embedding`` (logistic members over the standardised embedding and score,
the default) or ``residual`` (non-negative members over each element's
reconstruction residual, the score and the Mahalanobis distance). The
procedure above is the same for each; only the design matrix and the member
fit differ. The readout is a setting, not chosen by the inner CV: with one
more dimension the rule would order candidates label-free < residual <
embedding (fewest free weights first), but that changes the default route
and is left until the cross-validation variant ``mstgat_residual`` has been
compared with the default on the benchmark.

Ensemble members differ by a bootstrap of the training deposit clusters and
their draw of negatives (member seed ``seed + k``; a single member uses every
deposit): their spread says how much the map depends on which deposits are
known. (On the label-free route the heads have no say, and the members are
the score under other element groupings instead: :mod:`~mstgat_core.model.grouping`.)
The inner CV's out-of-fold fused scores also fit a Platt calibration
(``sigmoid(a * logit + b)``, unweighted, so it carries the real share of
deposit cells) when there are at least two inner folds.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from ..errors import DataError
from ..model import MSTGAT
from .folds import FoldSettings, deposit_clusters, spatial_folds
from .readouts import READOUTS
from .train import negative_pool

DEFAULT_SHARE = 0.0  # no inner evidence: the label-free route
DEFAULT_C = 0.1
INNER_MAX_FPR = 0.05  # the inner figure: partial ROC-AUC up to 5 % false positives (the top 5 % of a map)
ROUTES = ("label-free", "fused", "supervised")


@dataclass
class FineTuneConfig:
    """Settings of fine-tuning (stored in checkpoints).

    Attributes
    ----------
    shares : tuple of float
        Candidate shares of the supervised head in the fused score.
    strengths : tuple of float
        Candidate inverse L2 strengths ``C`` of the logistic heads.
    inner_folds : int
        Inner folds at most (leave one cluster out below that many clusters).
    max_negatives : int
        Negatives per head fit (a seeded draw from the pool).
    min_negative_distance : float
        Negatives are at least this many cells from every training deposit
        (when :func:`finetune` gets no fold ``settings``; theirs wins otherwise).
    seed : int
        Seeds the inner folds, the negative draws and the members' bootstraps.
    readout : str
        The heads' readout, a key of :data:`~mstgat_core.training.readouts.READOUTS`
        (the model's ``ModelConfig.head``).
    """

    shares: tuple = (0.0, 0.25, 0.5, 0.75, 1.0)
    strengths: tuple = (0.01, 0.1, 1.0)
    inner_folds: int = 5
    max_negatives: int = 4000
    min_negative_distance: float = 3.0
    seed: int = 0
    readout: str = "embedding"

    def __post_init__(self):
        if self.readout not in READOUTS:
            raise DataError(f"unknown readout {self.readout!r}; use one of {', '.join(READOUTS)}", setting="readout")

    def to_dict(self) -> dict:
        """Plain-JSON fields (tuples as lists)."""
        d = asdict(self)
        d["shares"], d["strengths"] = list(self.shares), list(self.strengths)
        return d


@dataclass
class FineTuneResult:
    """What fine-tuning chose and why (stored in checkpoints and in cross-validation fold rows).

    Attributes
    ----------
    share, C : float
        The chosen share of the supervised head and L2 strength of the heads.
    chosen_by : str
        ``"inner-cv"`` (the paired one-standard-error rule over the inner
        folds) or ``"default"`` (a single training cluster: no inner fold).
    route : str
        ``"label-free"`` (share 0), ``"fused"`` or ``"supervised"`` (share 1).
    inner_folds : int
        Inner folds that scored every candidate.
    inner_auc : dict
        ``"share,C"`` -> mean inner ROC-AUC.
    inner_scores : dict
        ``"share,C"`` -> ``{"aucs": per-inner-fold ROC-AUCs, "figures":
        per-inner-fold partial ROC-AUCs (the judged figure), "mean": their
        mean, "gap": mean per-fold loss against ``inner_best``, "gap_se": its
        paired standard error (ddof 1), "within": whether gap <= gap_se}``.
    inner_best : str or None
        The candidate with the best mean inner figure.
    calibrated : bool
        Whether a Platt calibration was fitted (``calibration`` = [a, b] of
        ``sigmoid(a * logit + b)``, else None).
    seconds : float
    inner_settings : dict
        ``link_distance``, ``buffer`` and ``min_neg_distance`` (cells) of the
        inner folds and the negative pool: the outer cross-validation's when
        fine-tuning runs inside one (:meth:`FoldSettings.inner
        <mstgat_core.training.folds.FoldSettings.inner>`).
    readout : str
        The heads' readout (``FineTuneConfig.readout``).
    """

    share: float = DEFAULT_SHARE
    C: float = DEFAULT_C
    chosen_by: str = "default"  # or "inner-cv"
    route: str = "label-free"
    inner_folds: int = 0
    inner_auc: dict = field(default_factory=dict)  # "share,C" -> mean inner ROC-AUC
    inner_scores: dict = field(default_factory=dict)  # "share,C" -> per-fold figures, mean, paired gap
    inner_best: str | None = None
    calibrated: bool = False
    calibration: list | None = None  # [a, b]
    seconds: float = 0.0
    inner_settings: dict = field(default_factory=dict)  # link_distance, buffer, min_neg_distance
    readout: str = "embedding"

    def to_dict(self) -> dict:
        """Plain-JSON fields: what checkpoints and cross-validation fold rows (``row["inner"]``) store."""
        return asdict(self)


def _draw(pool, n, rng):
    return pool if len(pool) <= n else np.sort(rng.choice(pool, size=n, replace=False))


def _standard(values):
    return (values - values.mean()) / max(float(values.std()), 1e-9)


def route_of(share: float) -> str:
    """``"label-free"`` for share 0, ``"supervised"`` for 1, else ``"fused"``."""
    return "label-free" if share <= 0 else "supervised" if share >= 1 else "fused"


def inner_figure(labels, scores) -> float:
    """The judged inner figure: standardised partial ROC-AUC up to :data:`INNER_MAX_FPR` false positives."""
    return float(roc_auc_score(labels, scores, max_fpr=INNER_MAX_FPR))


def _inner_cv(features, score, rows, cols, positives, pool, config, settings):
    """Per-inner-fold (ROC-AUCs, figures) of every (share, C), the chosen one, its inner folds and out-of-fold
    fused scores and labels; None without inner folds. ``features``: the readout's design matrix, ``score``: the
    standardised label-free score. The inner folds take ``settings``' link distance, buffer and minimum negative
    distance."""
    clusters = deposit_clusters(rows, cols, positives, settings.link_distance)
    n_clusters = int(clusters.max()) + 1 if len(clusters) else 0
    if n_clusters < 2:
        return None
    method = "loco" if n_clusters <= config.inner_folds else "clusters"
    inner = FoldSettings(
        method=method,
        n_folds=min(config.inner_folds, n_clusters),
        **settings.inner(),
    )
    try:
        folds = spatial_folds(rows, cols, positives, inner, seed=config.seed)
    except DataError:
        return None
    in_pool = np.zeros(len(rows), dtype=bool)
    in_pool[pool] = True
    rng = np.random.default_rng(config.seed)
    fit_head = READOUTS[config.readout].fit
    aucs = {(s, C): [] for s in config.shares for C in config.strengths}
    figures = {key: [] for key in aucs}
    held = {C: [] for C in config.strengths}  # (test nodes, labels, head logits) per fold
    for fold in folds:
        train_neg = _draw(fold.train_neg_pool[in_pool[fold.train_neg_pool]], config.max_negatives, rng)
        test_neg = fold.test_neg[in_pool[fold.test_neg]]
        if len(train_neg) == 0 or len(test_neg) == 0 or len(fold.train_pos) == 0:
            continue
        nodes = np.concatenate([fold.test_pos, test_neg])
        labels = np.r_[np.ones(len(fold.test_pos)), np.zeros(len(test_neg))]
        for C in config.strengths:
            logits = fit_head(features, fold.train_pos, train_neg, C).decision_function(features)
            head = _standard(logits)
            held[C].append((nodes, labels, head[nodes]))
            for s in config.shares:
                fused = s * head[nodes] + (1 - s) * score[nodes]
                aucs[(s, C)].append(roc_auc_score(labels, fused))
                figures[(s, C)].append(inner_figure(labels, fused))
    if not any(aucs.values()):
        return None
    best = paired_one_standard_error(figures)
    s, C = best
    fused = np.concatenate([s * h + (1 - s) * score[n] for n, _, h in held[C]])
    labels = np.concatenate([lab for _, lab, _ in held[C]])
    return (aucs, figures), best, len(held[C]), fused, labels


def paired_gaps(scores: dict) -> dict:
    """(share, C) -> ``(gap, se)``: the mean per-fold loss of its figures against the candidate with the best
    mean, and the paired standard error of that loss (std, ddof 1, / sqrt(folds); infinite below two folds)."""
    means = {key: float(np.mean(v)) for key, v in scores.items()}
    best = np.asarray(scores[max(means, key=means.get)], dtype=np.float64)
    out = {}
    for key, values in scores.items():
        gap = best - np.asarray(values, dtype=np.float64)
        se = float(gap.std(ddof=1) / np.sqrt(len(gap))) if len(gap) > 1 else float("inf")
        out[key] = (float(gap.mean()), se)
    return out


def _key(share, C) -> str:
    return f"{share:g},{C:g}"


def paired_one_standard_error(scores: dict) -> tuple:
    """The simplest (share, C) whose mean per-fold loss against the best candidate is at most its paired
    standard error.

    ``scores`` maps (share, C) to its per-inner-fold figures (the same inner folds for every candidate).
    Simplest = smallest share of the supervised head, then smallest C (strongest L2): the
    one-standard-error rule of cross-validated model selection (Breiman et al. 1984), because inner folds
    of 1-5 deposits make the best mean a noisy pick; paired, because the candidates are scored on the same
    folds and fold-to-fold differences in difficulty are not uncertainty about the gain.
    """
    gaps = paired_gaps(scores)
    return min((key for key, (gap, se) in gaps.items() if gap <= se), key=lambda key: (key[0], key[1]))


def _bootstrap(positives, clusters, rng):
    """Training deposits of one member: whole clusters drawn with replacement (at least two distinct if any)."""
    ids = np.unique(clusters)
    chosen = rng.choice(ids, size=len(ids), replace=True)
    if len(ids) > 1 and len(np.unique(chosen)) == 1:
        chosen[0] = rng.choice(ids[ids != chosen[1]])
    return np.concatenate([positives[clusters == c] for c in chosen])


@torch.no_grad()
def finetune(
    model: MSTGAT,
    x: torch.Tensor,
    stencil,
    rows: np.ndarray,
    cols: np.ndarray,
    positives,
    negative_candidates=None,
    config: FineTuneConfig | None = None,
    settings: FoldSettings | None = None,
    features: tuple | None = None,
) -> FineTuneResult:
    """Fit the fused head of a pretrained ``model`` in place on the training deposits.

    Parameters
    ----------
    model : MSTGAT
        Pretrained (fused readout, :func:`~mstgat_core.pretrain.pretrain`).
    x : torch.Tensor
        (cells, E) normalised features of the grid's valid cells.
    stencil : GridStencil or None
        The grid's stencil (None for the spectral variant).
    rows, cols : ndarray of int
        Grid row and column of every cell.
    positives : array of int
        Training deposit cells (node ids).
    negative_candidates : array of int, optional
        Where negatives may come from (e.g. a CV fold's training pool);
        default every cell at least ``config.min_negative_distance`` from a
        training deposit.
    config : FineTuneConfig, optional
    settings : FoldSettings, optional
        Link distance, buffer and minimum negative distance of the inner
        folds and of the negative pool: pass the outer cross-validation's
        (default: :meth:`FoldSettings.for_config
        <mstgat_core.training.folds.FoldSettings.for_config>` of the model,
        with ``config.min_negative_distance``). Recorded in the result's
        ``inner_settings``.
    features : tuple of torch.Tensor, optional
        ``model.grid_features(x, stencil, residual=True)`` if already computed
        (the backbone is frozen, so cross-validation computes them once per
        backbone; the ``embedding`` readout also takes the pair without residuals).

    Returns
    -------
    FineTuneResult
    """
    config = config or FineTuneConfig()
    start = time.perf_counter()
    if not model.fused:
        raise DataError("fine-tuning needs a pretrained model with the fused readout")
    positives = np.unique(np.asarray(positives, dtype=np.int64))
    if len(positives) == 0:
        raise DataError("fine-tuning needs at least one deposit cell", setting="deposits")
    if model.config.head != config.readout:
        raise DataError(
            f"the model's head reads {model.config.head!r} but fine-tuning was set for the {config.readout!r} readout",
            setting="readout",
        )
    c = model.config
    settings = settings or FoldSettings.for_config(c, min_neg_distance=config.min_negative_distance)
    pool = negative_pool(rows, cols, positives, settings.min_neg_distance, negative_candidates)
    if len(pool) == 0:
        raise DataError("no cell is far enough from the deposits to serve as a negative", setting="min_neg_distance")
    grid = features if features is not None else model.grid_features(x, stencil, residual=True)
    head = model.head
    head.fit_design(*grid)  # the readout's standardisation over the grid's cells (no label)
    features = head.design(*grid).double().numpy()
    score = head.standardise(grid[0], grid[1])[:, -1].double().numpy()

    result = FineTuneResult(inner_settings=settings.inner(), readout=config.readout)
    inner = _inner_cv(features, score, rows, cols, positives, pool, config, settings)
    calibration = (float("nan"), float("nan"))
    if inner is not None:
        (aucs, figures), (result.share, result.C), result.inner_folds, oof, labels = inner
        result.chosen_by = "inner-cv"
        gaps = paired_gaps(figures)
        result.inner_scores = {
            _key(s, C): {
                "aucs": [float(a) for a in aucs[(s, C)]],
                "figures": [float(f) for f in v],
                "mean": float(np.mean(v)),
                "gap": gaps[(s, C)][0],
                "gap_se": gaps[(s, C)][1] if np.isfinite(gaps[(s, C)][1]) else None,  # None: one inner fold
                "within": gaps[(s, C)][0] <= gaps[(s, C)][1],
            }
            for (s, C), v in figures.items()
        }
        result.inner_auc = {_key(*key): float(np.mean(v)) for key, v in aucs.items()}
        result.inner_best = _key(*max(figures, key=lambda key: np.mean(figures[key])))
        if labels.min() < labels.max():
            platt = LogisticRegression(C=1e4, max_iter=1000).fit(oof.reshape(-1, 1), labels)
            calibration = (float(platt.coef_[0, 0]), float(platt.intercept_[0]))
            result.calibrated = True
            result.calibration = list(calibration)

    clusters = deposit_clusters(rows, cols, positives, settings.link_distance)
    weights, biases, centers, scales = [], [], [], []
    for k in range(c.members):
        rng = np.random.default_rng(config.seed + k)
        chosen = positives if c.members == 1 else _bootstrap(positives, clusters, rng)
        fitted = READOUTS[config.readout].fit(features, chosen, _draw(pool, config.max_negatives, rng), result.C)
        logits = fitted.decision_function(features)
        weights.append(fitted.coef_[0])
        biases.append(fitted.intercept_[0])
        centers.append(logits.mean())
        scales.append(max(float(logits.std()), 1e-9))
    head.weight.copy_(torch.tensor(np.array(weights)))
    head.bias.copy_(torch.tensor(biases))
    head.logit_center.copy_(torch.tensor(centers))
    head.logit_scale.copy_(torch.tensor(scales))
    result.route = route_of(result.share)
    head.share.fill_(result.share)
    head.calibration.copy_(torch.tensor(calibration))
    result.seconds = time.perf_counter() - start
    return result
