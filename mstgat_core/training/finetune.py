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
regularisation ``C`` and the ``share``. With a handful of deposits the
inner figures are noisy, so the grids are small and the choice follows the
one-standard-error rule: the smallest share (then the smallest ``C``) whose
mean inner ROC-AUC is within one standard error (over inner folds) of the
best; the label-free score alone is the safest guess. When the
training deposits form a single cluster no inner fold exists and the
defaults ``DEFAULT_SHARE``/``DEFAULT_C`` are used (recorded as such).

Ensemble members differ by a bootstrap of the training deposit clusters and
their draw of negatives (member seed ``seed + k``; a single member uses every
deposit): their spread says how much the map depends on which deposits are
known. The inner CV's out-of-fold fused scores also fit a Platt calibration
(``sigmoid(a * logit + b)``, unweighted, so it carries the real share of
deposit cells) when there are at least two inner folds.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from ..errors import DataError
from ..model import MSTGAT
from .folds import FoldSettings, deposit_clusters, spatial_folds
from .train import negative_pool

DEFAULT_SHARE = 0.5
DEFAULT_C = 0.1


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
    """

    shares: tuple = (0.0, 0.25, 0.5, 0.75, 1.0)
    strengths: tuple = (0.01, 0.1, 1.0)
    inner_folds: int = 5
    max_negatives: int = 4000
    min_negative_distance: float = 3.0
    seed: int = 0

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
        ``"inner-cv"`` (the one-standard-error rule over the inner folds) or
        ``"default"`` (a single training cluster: no inner fold).
    inner_folds : int
        Inner folds that scored every candidate.
    inner_auc : dict
        ``"share,C"`` -> mean inner ROC-AUC.
    inner_scores : dict
        ``"share,C"`` -> ``{"aucs": per-inner-fold ROC-AUCs, "mean", "se"}``
        (standard error: deviation (ddof 0) / sqrt(folds), as the rule uses).
    inner_best : str or None
        The candidate with the best mean inner ROC-AUC.
    inner_threshold : float or None
        Best mean minus its standard error: the chosen candidate is the
        simplest whose mean reaches it.
    calibrated : bool
        Whether a Platt calibration was fitted (``calibration`` = [a, b] of
        ``sigmoid(a * logit + b)``, else None).
    seconds : float
    inner_settings : dict
        ``link_distance``, ``buffer`` and ``min_neg_distance`` (cells) of the
        inner folds and the negative pool: the outer cross-validation's when
        fine-tuning runs inside one (:meth:`FoldSettings.inner
        <mstgat_core.training.folds.FoldSettings.inner>`).
    """

    share: float = DEFAULT_SHARE
    C: float = DEFAULT_C
    chosen_by: str = "default"  # or "inner-cv"
    inner_folds: int = 0
    inner_auc: dict = field(default_factory=dict)  # "share,C" -> mean inner ROC-AUC
    inner_scores: dict = field(default_factory=dict)  # "share,C" -> {"aucs": [...], "mean": m, "se": se}
    inner_best: str | None = None
    inner_threshold: float | None = None
    calibrated: bool = False
    calibration: list | None = None  # [a, b]
    seconds: float = 0.0
    inner_settings: dict = field(default_factory=dict)  # link_distance, buffer, min_neg_distance

    def to_dict(self) -> dict:
        """Plain-JSON fields: what checkpoints and cross-validation fold rows (``row["inner"]``) store."""
        return asdict(self)


def _head(features, positives, negatives, C) -> LogisticRegression:
    X = np.concatenate([features[positives], features[negatives]])
    y = np.r_[np.ones(len(positives)), np.zeros(len(negatives))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lbfgs may stop at max_iter on tiny samples; the head is used as it is
        return LogisticRegression(C=C, class_weight="balanced", max_iter=500).fit(X, y)


def _draw(pool, n, rng):
    return pool if len(pool) <= n else np.sort(rng.choice(pool, size=n, replace=False))


def _standard(values):
    return (values - values.mean()) / max(float(values.std()), 1e-9)


def _inner_cv(features, rows, cols, positives, pool, config, settings):
    """Per-inner-fold ROC-AUCs of every (share, C), the chosen one, its inner folds and out-of-fold fused
    scores and labels; None without inner folds. The inner folds take ``settings``' link distance, buffer and
    minimum negative distance."""
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
    score = features[:, -1]
    aucs = {(s, C): [] for s in config.shares for C in config.strengths}
    held = {C: [] for C in config.strengths}  # (test nodes, labels, head logits) per fold
    for fold in folds:
        train_neg = _draw(fold.train_neg_pool[in_pool[fold.train_neg_pool]], config.max_negatives, rng)
        test_neg = fold.test_neg[in_pool[fold.test_neg]]
        if len(train_neg) == 0 or len(test_neg) == 0 or len(fold.train_pos) == 0:
            continue
        nodes = np.concatenate([fold.test_pos, test_neg])
        labels = np.r_[np.ones(len(fold.test_pos)), np.zeros(len(test_neg))]
        for C in config.strengths:
            logits = _head(features, fold.train_pos, train_neg, C).decision_function(features)
            head = _standard(logits)
            held[C].append((nodes, labels, head[nodes]))
            for s in config.shares:
                aucs[(s, C)].append(roc_auc_score(labels, s * head[nodes] + (1 - s) * score[nodes]))
    if not any(aucs.values()):
        return None
    best = one_standard_error(aucs)
    s, C = best
    fused = np.concatenate([s * h + (1 - s) * score[n] for n, _, h in held[C]])
    labels = np.concatenate([lab for _, lab, _ in held[C]])
    return aucs, best, len(held[C]), fused, labels


def standard_error(values) -> float:
    """Standard error of a mean over inner folds, as the one-standard-error rule uses: std (ddof 0) / sqrt(n)."""
    values = np.asarray(values, dtype=np.float64)
    return float(values.std() / np.sqrt(len(values)))


def _key(share, C) -> str:
    return f"{share:g},{C:g}"


def one_standard_error(scores: dict) -> tuple:
    """The simplest (share, C) whose mean inner score is within one standard error of the best mean.

    ``scores`` maps (share, C) to its per-inner-fold ROC-AUCs. Simplest =
    smallest share of the supervised head, then smallest C (strongest L2):
    the one-standard-error rule of cross-validated model selection (Breiman et
    al. 1984), because inner folds of 1-5 deposits make the best mean a noisy
    pick.
    """
    means = {key: float(np.mean(v)) for key, v in scores.items()}
    top = max(means, key=means.get)
    threshold = means[top] - standard_error(scores[top])
    return min((key for key in means if means[key] >= threshold), key=lambda key: (key[0], key[1]))


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
        ``model.grid_features(x, stencil)`` if already computed (the backbone
        is frozen, so cross-validation computes them once per backbone).

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
    c = model.config
    settings = settings or FoldSettings.for_config(c, min_neg_distance=config.min_negative_distance)
    pool = negative_pool(rows, cols, positives, settings.min_neg_distance, negative_candidates)
    if len(pool) == 0:
        raise DataError("no cell is far enough from the deposits to serve as a negative", setting="min_neg_distance")
    embedding, score = features if features is not None else model.grid_features(x, stencil)
    head = model.head
    features = head.standardise(embedding, score).double().numpy()

    result = FineTuneResult(inner_settings=settings.inner())
    inner = _inner_cv(features, rows, cols, positives, pool, config, settings)
    calibration = (float("nan"), float("nan"))
    if inner is not None:
        aucs, (result.share, result.C), result.inner_folds, oof, labels = inner
        result.chosen_by = "inner-cv"
        result.inner_scores = {
            _key(s, C): {"aucs": [float(a) for a in v], "mean": float(np.mean(v)), "se": standard_error(v)}
            for (s, C), v in aucs.items()
        }
        result.inner_auc = {key: v["mean"] for key, v in result.inner_scores.items()}
        top = max(aucs, key=lambda key: np.mean(aucs[key]))
        result.inner_best = _key(*top)
        result.inner_threshold = float(np.mean(aucs[top])) - standard_error(aucs[top])
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
        fitted = _head(features, chosen, _draw(pool, config.max_negatives, rng), result.C)
        logits = fitted.decision_function(features)
        weights.append(fitted.coef_[0])
        biases.append(fitted.intercept_[0])
        centers.append(logits.mean())
        scales.append(max(float(logits.std()), 1e-9))
    head.weight.copy_(torch.tensor(np.array(weights)))
    head.bias.copy_(torch.tensor(biases))
    head.logit_center.copy_(torch.tensor(centers))
    head.logit_scale.copy_(torch.tensor(scales))
    head.share.fill_(result.share)
    head.calibration.copy_(torch.tensor(calibration))
    result.seconds = time.perf_counter() - start
    return result
