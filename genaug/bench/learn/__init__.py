"""How one run of a bench learns: the timm classifier and its training loop
(:mod:`~.classifier`), the batch pipeline of a recipe (:mod:`~.pipeline`), the loss when some of
a batch is generated (:mod:`~.loss`), the classifier pretrained on the base classes
(:mod:`~.base_classifier`) and the heads on its frozen features (:mod:`~.heads`)."""
