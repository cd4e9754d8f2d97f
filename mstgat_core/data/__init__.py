"""Survey data: grids and point samples read and written (``io``, ``points``, ``archives``), their sample support
(``support``), the transform and global statistics of the model's inputs (``preprocess``) and synthetic
scenarios with planted truth (``synthetic``)."""
