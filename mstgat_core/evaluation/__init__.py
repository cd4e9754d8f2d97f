"""Honest evaluation: spatial folds that keep deposit clusters whole (``folds``), cross-validation of the model,
its ablations and the baselines (``crossval``, ``evaluate``, ``baselines``), statistics over deposit clusters
(``stats``), and the protocol for label-free scores of point samples (``point_protocol``, ``point_duplicates``)."""
