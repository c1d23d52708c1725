"""Running a bench grid: the grid loop and its report (:mod:`~.grid`), one run and its record
(:mod:`~.measure`), the run folder (:mod:`~.folder`), the runs ledger (:mod:`~.ledger`), the
generators trained once per cell (:mod:`~.cache`), parallel CPU workers (:mod:`~.workers`),
torchrun ranks (:mod:`~.torchrun`), the preview (:mod:`~.preview`) and joining bench folders
(:mod:`~.merge`)."""
