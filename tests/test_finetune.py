"""Fine-tuning's choice of settings: the one-standard-error rule (no test label: see test_crossval)."""

import numpy as np

from mstgat_core.training.finetune import one_standard_error


def test_one_standard_error_rule_prefers_the_simplest_setting_close_to_the_best():
    scores = {
        (0.0, 0.1): [0.80, 0.90, 0.85],  # mean 0.85
        (0.5, 0.1): [0.85, 0.95, 0.90],  # mean 0.90: within one standard error of the best
        (1.0, 0.1): [0.80, 1.00, 0.97],  # mean 0.923, the best; SE = std / sqrt(3) = 0.051
    }
    assert one_standard_error(scores) == (0.5, 0.1)
    tight = {key: [np.mean(v)] * 3 for key, v in scores.items()}  # no spread: the best mean wins
    assert one_standard_error(tight) == (1.0, 0.1)
    tie = {(0.25, 1.0): [0.9, 0.9], (0.25, 0.01): [0.9, 0.9]}
    assert one_standard_error(tie) == (0.25, 0.01)  # then the strongest regularisation


def test_standard_error_is_the_one_the_rule_uses():
    from mstgat_core.training.finetune import standard_error

    values = [0.80, 1.00, 0.97]
    assert standard_error(values) == np.std(values) / np.sqrt(3)  # ddof 0
    scores = {(0.0, 0.1): [0.87, 0.87, 0.87], (1.0, 0.1): values}  # 0.87 < 0.923 - 0.051: below the bar
    assert np.mean(values) - standard_error(values) > 0.87
    assert one_standard_error(scores) == (1.0, 0.1)
