"""The one-screen table of an evaluation: each generator number beside the real test data's."""

from __future__ import annotations

from typing import Any

__all__ = ["format_metrics"]


def format_metrics(metrics: dict[str, Any]) -> str:
    """A one-screen table of :func:`~genaug.eval.evaluate_generator`'s result: generator vs
    real test data."""

    def cell(value: Any, digits: int = 3) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}"

    m = metrics
    ref = m["reference_classifier"]
    rows = [
        ("conditional accuracy", cell(m["conditional_accuracy"]), cell(m["cas_real"])),
        (
            "Frechet distance (ref. features)",
            cell(m["frechet_distance"], 2),
            cell(m["frechet_distance_real"], 2),
        ),
        (f"precision (k={m['k']})", cell(m["precision"]), cell(m["precision_real"])),
        (f"recall (k={m['k']})", cell(m["recall"]), cell(m["recall_real"])),
        ("CAS (train on samples, test real)", cell(m["cas"]), cell(m["cas_real"])),
        ("CAS / real-data accuracy", cell(m["cas_ratio"]), "1.000"),
        (
            f"memorisation share ({m['memorisation_space']})",
            cell(m["memorisation_share"]),
            cell(m["memorisation_share_real"]),
        ),
        (
            "median nearest-train distance / typ.",
            cell(m["nearest_distance_ratio"]),
            cell(m["nearest_distance_ratio_real"]),
        ),
    ]
    data = m["data"]
    head = (
        f"{m['family']} generator ({'conditional' if m['conditional'] else 'unconditional'}, "
        f"{m['channels']}x{m['image_size']}px), {m['n_samples']} samples, seed {m['seed']}; "
        f"real data {data['spec']}: {data['train_count']} train / {data['test_count']} test"
    )
    width = max(len(r[0]) for r in rows)
    lines = [head, "", f"{'metric':<{width}}  {'generator':>9}  {'real test':>9}"]
    lines += [f"{name:<{width}}  {gen:>9}  {real:>9}" for name, gen, real in rows]
    lines += [
        "",
        f"reference classifier: {ref['steps']} steps, test accuracy {ref['test_accuracy']:.3f}"
        f"{' (reused from cache)' if ref['reused_from_cache'] else ''}; copy threshold "
        f"{m['memorisation_threshold']:.3f} (pixel L2) = {m['relative_threshold']} x typical "
        f"{m['memorisation_typical_distance']:.3f}; took {m['seconds']:.1f} s",
    ]
    return "\n".join(lines)
