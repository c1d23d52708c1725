"""Planning a bench grid: its settings (:mod:`~.config`, :mod:`~.generators`,
:mod:`~.classifier_config`), how they are read (:mod:`~.files`; the flags each setting declares,
:mod:`~.flags`), the conditions (:mod:`~.recipes`, :mod:`~.augment`, :mod:`~.learners`), the
grid's arms and parts (:mod:`~.arms`, :mod:`~.parts`) and the images of each cell
(:mod:`~.splits`). Nothing here trains anything."""
