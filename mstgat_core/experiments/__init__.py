"""The published experiments, each a ``mstgat benchmark`` suite: the comparison of methods (``benchmark``), the
explanations against planted truth (``explain_benchmark``), the indicator ranking's stability on real surveys
(``indicator_stability``) and the label-free readouts of point surveys (``label_free_readouts``)."""
