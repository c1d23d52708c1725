"""Few-shot learning on a pretrained model's frozen features: prototype and linear-probe heads,
augmented views of the shots, and feature-space generation (hallucinators).

Example::

    from genaug.fewshot import fit_few_shot
    classifier = fit_few_shot(timm_model, shots, labels, head="probe")
    predictions = classifier.predict(images)
"""

from __future__ import annotations

from genaug.fewshot.classifier import (
    FewShotClassifier,
    as_extractor,
    fit_few_shot,
    train_hallucinator,
)
from genaug.fewshot.heads import HEADS, LinearHead, fit_head, fit_probe, fit_prototypes
from genaug.fewshot.support import Support, nearest_own_class, per_image, support_features
from genaug.models.features import FeatureExtractor

__all__ = [
    "HEADS",
    "FeatureExtractor",
    "FewShotClassifier",
    "LinearHead",
    "Support",
    "as_extractor",
    "fit_few_shot",
    "fit_head",
    "fit_probe",
    "fit_prototypes",
    "nearest_own_class",
    "per_image",
    "support_features",
    "train_hallucinator",
]
