"""The report of a bench folder, from its finished runs: the statistics (:mod:`~.statistics`,
:mod:`~.summary`, :mod:`~.pipelines`), the Markdown (:mod:`~.markdown` from :mod:`~.protocol`,
:mod:`~.tables`, :mod:`~.pipeline_tables` and :mod:`~.cells`), the plots (:mod:`~.figures`),
the files (:mod:`~.write`) and their publication (:mod:`~.publish`)."""

from __future__ import annotations

from genaug.bench.report.write import write_report

__all__ = ["write_report"]
