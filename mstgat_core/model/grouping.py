"""Which elements the label-free score hides together, and the spread of the score over such groupings.

The label-free score hides ``mask_groups`` element groups in turn and reads
the reconstruction error (:meth:`~mstgat_core.model.MSTGAT.masked_predictions`).
Grouping ``0`` is the fixed one, element ``e`` in group ``e % groups``: the
map's score, unchanged. Grouping ``k > 0`` is a seeded random partition of
the elements into groups of the same sizes (seed ``k``; redrawn if it is the
fixed partition under another labelling, when another partition exists).

**The ``uncertainty`` layer on the label-free route.** The fused readout's
members differ only through their heads (a bootstrap of the training deposit
clusters), so when the heads have no share (share 0, the label-free route)
every member's logit is the same standardised score and their spread is
identically 0. On that route member ``k`` is instead the standardised score
with one group of grouping ``k`` hidden together (group ``(k - 1)`` modulo the
group count, :meth:`~mstgat_core.model.MSTGAT.draw_mask`) and every other
element's reconstruction error taken from grouping 0
(:meth:`~mstgat_core.model.MSTGAT.grouping_scores`,
:meth:`~mstgat_core.model.FusedHead.grouping_members`; member 0 is the map's),
so the spread is how much a cell's score depends on which elements are hidden
together: large where an element is reconstructed well only when a correlated
partner stays visible. The map and the ``label_free`` layer keep grouping 0
(they are not the members' mean), so the extra members change only
``uncertainty`` and ``top_agreement``; they cost ``members - 1`` more passes of
prediction (one each). Until 2026-12-07 each member scored a whole grouping
(``mask_groups`` passes each: 16 passes for 5 members instead of 8, and 3,790
against 14,643 cells/s on a 1000 x 1000 grid; docs/performance.md).

**The fused route keeps the bootstrap spread alone.** There the members
already differ everywhere, and that spread is the one measured on test folds
(docs/results.md, "Across surveys"). The groupings would move each member's
logit by ``(1 - share)`` times the score's change too, but adding them mixes
two questions (which deposits are known, which elements are hidden together)
in one number whose test-fold evidence has not been measured, multiplies the
prediction time of every fused model and changes the bundled demo's layers;
left until it is measured.
"""

from __future__ import annotations

import numpy as np

REDRAWS = 100  # tries for a random partition other than the fixed one


def element_groups(n_elements: int, groups: int, draw: int = 0) -> np.ndarray:
    """int64 (n_elements,) the group of every element under grouping ``draw`` (module docstring)."""
    groups = min(int(groups), int(n_elements))
    fixed = np.arange(n_elements) % groups
    if draw == 0:
        return fixed
    rng = np.random.default_rng(int(draw))
    for _ in range(REDRAWS):
        group = np.empty(n_elements, dtype=np.int64)
        group[rng.permutation(n_elements)] = fixed
        if _partition(group) != _partition(fixed):
            return group
    return fixed  # every element alone, or one group: the fixed partition is the only one


def _partition(group: np.ndarray) -> frozenset:
    return frozenset(frozenset(np.flatnonzero(group == g).tolist()) for g in np.unique(group))
