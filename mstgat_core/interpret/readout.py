"""The residual readout's weights, named: which elements' excess the fitted heads need."""

from __future__ import annotations

from ..errors import DataError

OTHER_FEATURES = ("label-free score", "Mahalanobis distance")  # the residual head's last two columns


def residual_weights(fitted) -> dict[str, float]:
    """Feature name -> the members' mean weight of a model fine-tuned with the ``residual`` readout.

    One entry per element (its standardised signed residual: observed minus
    reconstructed), then the label-free score and the log Mahalanobis
    distance. The weights are >= 0 and on standardised columns, so they
    compare directly: a one-deviation excess of an element adds its weight to
    the supervised head's logit (which enters the map with ``share``,
    ``fitted.model.head.share``; 0 = the label-free route, the weights unused).
    """
    if fitted.config.readout != "fused" or fitted.config.head != "residual":
        raise DataError("residual weights need a model fine-tuned with the residual readout", setting="readout")
    weights = fitted.model.head.weight.detach().double().mean(dim=0).tolist()
    return dict(zip([*fitted.elements, *OTHER_FEATURES], weights, strict=True))
