"""Pipelines with and without a generator (bench/report/pipelines.py) and their Markdown section
(bench/report/pipeline_tables.py), on hand-made summary rows."""

from __future__ import annotations

from genaug.bench.report.pipeline_tables import pipelines_section, verdict_lines
from genaug.bench.report.pipelines import compare_pipelines
from genaug.bench.report.statistics import summarize
from genaug.bench.report.summary import _paired

EPISODES = range(8)


def row(arm: str, kind: str, start: str, accuracies: list[float]) -> dict:
    acc = dict(zip(EPISODES, accuracies))
    return {
        "arm": arm,
        "kind": kind,
        "start": start,
        "accuracy": summarize(accuracies).to_dict(),
        "_acc": acc,
    }


def rows(base_gain: float, generator_gain: float) -> list[dict]:
    noise = [0.00, 0.01, -0.01, 0.02, -0.02, 0.01, 0.0, -0.01]
    level = [0.5 + n for n in noise]
    return [
        row("none", "none", "scratch", [x - 0.1 for x in level]),
        row("randaugment", "classic", "scratch", level),
        row("affine", "classic", "scratch", [x - 0.05 for x in level]),
        row(
            "randaugment+vae [checkpoint]",
            "classic+generative",
            "scratch",
            [x + 0.01 for x in level],
        ),
        row(
            "randaugment+dagan [checkpoint]",
            "classic+generative",
            "scratch",
            [x + generator_gain + 0.002 * i for i, x in enumerate(level)],
        ),
        row(
            "base:randaugment",
            "classic",
            "base",
            [x + base_gain + 0.001 * i for i, x in enumerate(level)],
        ),
        row("more-real", "more-real", "scratch", [x + 0.3 for x in level]),
    ]


def test_the_base_classifier_wins_when_it_is_clearly_ahead():
    out = compare_pipelines(rows(base_gain=0.2, generator_gain=0.05), _paired)
    picks = out["pipelines"]
    assert picks["classic_scratch"]["arm"] == "randaugment"
    assert picks["classic_scratch"]["vs_best_classic"] is None
    assert picks["generator_scratch"]["arm"] == "randaugment+dagan [checkpoint]"
    assert picks["classic_base"]["arm"] == "base:randaugment"
    assert picks["generator_base"] is None
    assert picks["more_real"]["arm"] == "more-real"  # never counted as a pipeline
    assert out["with_generator"] == "randaugment+dagan [checkpoint]"
    assert out["without_generator"] == "base:randaugment"
    assert out["winner"] == "without generator"
    assert [o["arm"] for o in out["generator_scratch_vs_others"]] == [
        "randaugment+vae [checkpoint]"
    ]
    text = "\n".join(pipelines_section({"shots": {"1": {"pipelines": out}}}))
    assert "## With and without the generator" in text and "| without generator |" in text
    assert "randaugment+dagan [checkpoint] vs randaugment+vae [checkpoint]" in text


def test_the_generator_wins_when_it_is_ahead_of_every_pipeline_without_one():
    out = compare_pipelines(rows(base_gain=0.05, generator_gain=0.2), _paired)
    assert out["without_generator"] == "base:randaugment" and out["winner"] == "with generator"
    close = rows(base_gain=0.05, generator_gain=0.05)
    swing = [0.02, -0.02, 0.01, -0.01, 0.02, -0.02, 0.01, -0.01]  # no consistent sign
    base = close[5]["_acc"]
    close[4] = row(
        "randaugment+dagan",
        "classic+generative",
        "scratch",
        [base[e] + d for e, d in zip(EPISODES, swing)],
    )
    close = compare_pipelines(close, _paired)
    assert close["winner"] == "no significant difference"


def test_nothing_to_compare_without_generator_or_base_rows():
    plain = [
        r for r in rows(0.1, 0.1) if r["kind"] in ("none", "classic") and "base" not in r["arm"]
    ]
    assert compare_pipelines(plain, _paired) is None
    assert pipelines_section({"shots": {"1": {"conditions": []}}}) == []


def test_the_verdict_opens_the_report_with_the_with_against_without_difference():
    behind = compare_pipelines(rows(base_gain=0.2, generator_gain=0.05), _paired)
    ahead = compare_pipelines(rows(base_gain=0.05, generator_gain=0.2), _paired)
    text = "\n".join(
        verdict_lines({"shots": {"1": {"pipelines": behind}, "5": {"pipelines": ahead}}})
    )
    assert (
        "**1 shot:** the best pipeline with a generator (randaugment+dagan [checkpoint]) "
        "is behind the best without one (base:randaugment): -" in text
    )
    assert (
        "**5 shots:** the best pipeline with a generator (randaugment+dagan [checkpoint]) "
        "is ahead of the best without one (base:randaugment): +" in text
    )
    assert verdict_lines({"shots": {"1": {"conditions": []}}}) == []
