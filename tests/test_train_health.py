"""The divergence checks (genaug.train.health) on their own: what counts as an alarm and what not."""

from __future__ import annotations

import math

import torch

from genaug.models.registry import create_generator
from genaug.train.health import (
    LOSS_GROWTH_LIMIT,
    SPREAD_FLOOR,
    SPREAD_VARIED,
    HealthWatch,
    checkpoint_problem,
    sample_spread,
)


def test_losses_are_compared_with_the_first_step_and_kept_in_the_checkpoint():
    watch = HealthWatch()
    watch.start({"loss": 180.0, "kl": 0.9, "d_real": -0.3, "bad": math.nan})
    assert watch.reference == {"loss": 180.0, "kl": 0.9, "d_real": -0.3}  # a NaN is no reference
    # Scales below 1 count as 1: a KL growing from 0.9 to 50 or a score to -300 is healthy.
    assert watch.problem({"loss": 150.0, "kl": 50.0, "d_real": -300.0}) is None
    assert watch.problem({"loss": 180.0 * LOSS_GROWTH_LIMIT * 0.99}) is None
    alarm = watch.problem({"kl": 2.3e26})
    assert alarm and "kl reached 2.3e+26" in alarm and "value at the first step (0.9)" in alarm
    again = HealthWatch(watch.state())  # what a resumed run compares with
    assert again.reference == watch.reference and again.problem({"kl": 2.3e26}) == alarm


def test_a_fresh_generator_drawing_near_identical_images_is_not_a_collapse():
    """At 64 px a freshly initialised generator's samples hardly differ (spread about 4e-4):
    only a fall from varied samples to one image is a collapse."""
    torch.manual_seed(0)
    model = create_generator("test_vae", image_size=64, channels=3, num_classes=3).eval()
    assert sample_spread(model) < SPREAD_FLOOR
    watch = HealthWatch()
    assert checkpoint_problem(model, model, watch) is None
    watch.spread_peak = SPREAD_VARIED  # an earlier checkpoint drew varied samples
    assert "collapsed to one image" in checkpoint_problem(model, model, watch)


def test_non_finite_weights_are_a_problem_before_any_sample():
    model = create_generator("test_gan", image_size=16, num_classes=10)
    with torch.no_grad():
        next(model.parameters())[0] = math.inf
    problem = checkpoint_problem(model, model, HealthWatch())
    assert problem and "of the weights are not finite" in problem
