"""Graphs of a survey: multiscale grid graphs and stencils (``graph``), GATv2 on a whole grid without edge lists
(``grid_attention``), graphs over point samples (``point_graph``), neighbourhood summaries for the baselines
(``neighbourhood``) and tiles with halos (``tiling``)."""
