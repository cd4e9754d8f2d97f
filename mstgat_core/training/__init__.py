"""Fitting and applying MSTGAT: masked-element pretraining (``pretrain``), fine-tuning of the fused heads
(``finetune``), the from-scratch supervised readout (``train``), the one fit procedure that ``fit`` and the
cross-validation share (``procedure``), ``fit`` and :class:`FittedModel` (``pipeline``), checkpoints
(``checkpoint``), tiled prediction on dask (``distributed``), MSTGAT on point samples (``point_model``), what
``mstgat score`` writes (``scoring``) and the bundled demo model's cached prediction (``demo``)."""
