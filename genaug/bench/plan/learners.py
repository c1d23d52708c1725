"""How a ``base:`` condition learns the episode's classes from the base-pretrained classifier.

A condition may name its learner as its first part (after ``base:``); without one it is the full
fine-tune the bench always ran:

- ``finetune``: every weight is trained on the shots (a new head); ``finetune@backbone=0.1``
  gives the backbone 0.1 x the head's learning rate.
- ``proto``: nearest class mean of the L2-normalised frozen features (cosine), no training.
- ``probe``: a linear head (logistic regression) on the L2-normalised frozen features.

``proto`` and ``probe`` see the shots and ``views`` augmented copies of each made by the
condition's other parts (classic transforms; a generator's variations count as generated, with
the generator part's ``weight``), optionally centred on the base classes' mean feature
(``center=1``, SimpleShot). Examples: ``base:proto``, ``base:probe@views=20+affine``,
``base:finetune@backbone=0.1+affine``, ``base:finetune@smoothing=0.1+affine`` (label smoothing), ``base:probe+affine+hallucinator@count=5``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from genaug.errors import GenaugError

__all__ = ["HEAD_LEARNERS", "LEARNER_FIELDS", "LEARNERS", "LearnerSettings", "parse_learner"]

LEARNERS = ("finetune", "proto", "probe")
HEAD_LEARNERS = ("proto", "probe")
# The options each learner takes, and their types.
_OPTIONS: dict[str, dict[str, type]] = {
    "finetune": {"backbone": float, "smoothing": float},
    "proto": {"views": int, "center": bool},
    "probe": {"views": int, "center": bool, "regularisation": float},
}


@dataclass(frozen=True)
class LearnerSettings:
    """A condition's learner and its options (see the module docstring).

    Attributes:
        name: ``finetune``, ``proto`` or ``probe``.
        backbone: the fine-tune's backbone learning rate as a share of the head's (0, 1].
        smoothing: the fine-tune's label smoothing of every image, in [0, 1) (None: the
            bench's ``label_smoothing``); the control for a generator part's ``soft``.
        views: augmented views per shot for a head (used when the condition augments).
        center: subtract the base classes' mean feature before normalising (heads).
        regularisation: the probe's L2 penalty (fixed on the exploration episodes).
        options: the options as written (kept for the canonical name).
    """

    name: str = "finetune"
    backbone: float = 1.0
    smoothing: float | None = None
    views: int = 10
    center: bool = False
    regularisation: float = 1e-2
    options: tuple[tuple[str, str], ...] = ()

    @property
    def is_head(self) -> bool:
        """Whether the learner fits a head on frozen features (no training of the network)."""
        return self.name in HEAD_LEARNERS

    @property
    def written(self) -> str:
        """The learner part of a canonical condition name ("" for the plain fine-tune)."""
        if self.name == "finetune" and not self.options:
            return ""
        options = ",".join(f"{k}={v}" for k, v in self.options)
        return self.name + (f"@{options}" if options else "")

    def record(self) -> dict[str, Any]:
        """The settings as a run records them."""
        fields = dataclasses.asdict(self)
        fields.pop("options")
        return fields


LEARNER_FIELDS = tuple(sorted({k for options in _OPTIONS.values() for k in options}))


def _value(key: str, kind: type, text: str, condition: str) -> Any:
    if kind is bool:
        if text.lower() not in ("0", "1", "true", "false"):
            raise GenaugError(f"condition {condition!r}: {key}={text!r} must be 1 or 0.")
        return text.lower() in ("1", "true")
    if kind is int:
        if not text.isdigit():
            raise GenaugError(
                f"condition {condition!r}: {key}={text!r} must be a whole number >= 0."
            )
        return int(text)
    try:
        value = float(text)
    except ValueError:
        raise GenaugError(
            f"condition {condition!r}: {key}={text!r} is not a number; use e.g. {key}=0.1."
        ) from None
    if key == "smoothing" and not 0.0 <= value < 1.0:
        raise GenaugError(f"condition {condition!r}: smoothing must lie in [0, 1), got {value}.")
    if key == "backbone" and not 0.0 < value <= 1.0:
        raise GenaugError(f"condition {condition!r}: backbone must lie in (0, 1], got {value}.")
    if key == "regularisation" and not value > 0:
        raise GenaugError(f"condition {condition!r}: regularisation must be positive.")
    return value


def parse_learner(name: str, options: str, condition: str) -> LearnerSettings:
    """A learner part (``probe``, ``options`` ``"views=20,center=1"``) as settings."""
    allowed = _OPTIONS[name]
    values: dict[str, Any] = {}
    written: list[tuple[str, str]] = []
    for item in filter(None, (o.strip() for o in options.split(","))):
        key, eq, text = item.partition("=")
        key, text = key.strip(), text.strip()
        if not eq or key not in allowed:
            raise GenaugError(
                f"condition {condition!r}: the {name} learner takes "
                f"{', '.join(f'{k}=' for k in allowed)}; cannot read {item!r}."
            )
        values[key] = _value(key, allowed[key], text, condition)
        written.append((key, text))
    return LearnerSettings(name=name, options=tuple(sorted(written)), **values)
