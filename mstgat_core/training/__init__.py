"""Fitting and applying MSTGAT: masked-element pretraining (``pretrain``), fine-tuning of the fused heads
(``finetune``), the from-scratch supervised readout (``train``), the fit procedure and :class:`FittedModel`
(``pipeline``), checkpoints (``checkpoint``), tiled prediction on dask (``distributed``), MSTGAT on point samples
(``point_model``) and what ``mstgat score`` writes (``scoring``)."""
