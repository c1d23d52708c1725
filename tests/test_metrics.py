"""Generator quality metrics: Frechet distance, k-NN precision/recall, memorisation, agreement."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.neighbors import NearestNeighbors

from genaug import GenaugError
from genaug.data import train_test_split
from genaug.eval.metrics import (
    agreement,
    frechet_distance,
    frechet_distance_from_statistics,
    gaussian_statistics,
    kth_neighbour_distances,
    memorisation,
    nearest_neighbours,
    precision_recall,
)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# ----------------------------------------------------------------------------- Frechet distance
def test_frechet_distance_of_a_set_with_itself_is_zero(rng):
    x = rng.normal(size=(400, 16))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(torch.from_numpy(x).float(), torch.from_numpy(x).float()) < 1e-4


def test_frechet_distance_grows_with_a_mean_shift(rng):
    x = rng.normal(size=(2000, 8))
    y = rng.normal(size=(2000, 8))
    distances = [frechet_distance(x, y + shift) for shift in (0.0, 0.5, 1.0, 2.0)]
    assert distances == sorted(distances)
    assert distances[0] < 0.1  # two samples of the same Gaussian
    # A shift of s along every one of 8 axes moves the mean by 8 * s^2.
    assert distances[-1] == pytest.approx(8 * 2.0**2, rel=0.05)


def test_frechet_distance_matches_the_closed_form_for_diagonal_gaussians(rng):
    mean_a, std_a = np.array([0.0, 1.0, -2.0, 0.5]), np.array([1.0, 2.0, 0.5, 1.0])
    mean_b, std_b = np.array([1.0, 1.0, 0.0, 0.5]), np.array([2.0, 1.0, 0.5, 3.0])
    a = rng.normal(mean_a, std_a, size=(50_000, 4))
    b = rng.normal(mean_b, std_b, size=(50_000, 4))
    # For diagonal covariances: |mu_a - mu_b|^2 + sum (sigma_a - sigma_b)^2.
    exact = np.sum((mean_a - mean_b) ** 2) + np.sum((std_a - std_b) ** 2)
    assert frechet_distance(a, b) == pytest.approx(exact, rel=0.03)
    # The statistics form with the exact parameters gives the closed form to rounding.
    from_stats = frechet_distance_from_statistics(
        mean_a, np.diag(std_a**2), mean_b, np.diag(std_b**2)
    )
    assert from_stats == pytest.approx(exact, rel=1e-9)


def test_frechet_distance_with_fewer_samples_than_dimensions_is_finite(rng):
    # Singular covariances: sqrtm warns and may leave an imaginary residue; both are handled
    # (warnings are errors in this test suite).
    a, b = rng.normal(size=(20, 64)), rng.normal(size=(30, 64)) + 0.3
    value = frechet_distance(a, b)
    assert np.isfinite(value) and value > 0
    constant = np.ones((10, 4))
    assert frechet_distance(constant, constant) == pytest.approx(0.0, abs=1e-4)


def test_frechet_distance_refuses_mismatched_features(rng):
    with pytest.raises(GenaugError, match="8-d and 4-d"):
        frechet_distance(rng.normal(size=(10, 8)), rng.normal(size=(10, 4)))
    with pytest.raises(GenaugError, match="at least 2"):
        gaussian_statistics(rng.normal(size=(1, 4)))


# ------------------------------------------------------------------------- nearest neighbours
def test_nearest_neighbours_match_brute_force_in_chunks(rng):
    queries, refs = rng.normal(size=(37, 5)), rng.normal(size=(53, 5))
    distances, index = nearest_neighbours(queries, refs, chunk_size=4)
    brute = np.linalg.norm(queries[:, None] - refs[None], axis=2)
    assert torch.equal(index, torch.from_numpy(brute.argmin(1)))
    np.testing.assert_allclose(distances.numpy(), brute.min(1), rtol=1e-10)


def test_nearest_neighbours_can_exclude_each_querys_own_row(rng):
    x = rng.normal(size=(40, 3))
    chosen = torch.tensor([5, 0, 39])
    distances, index = nearest_neighbours(x[chosen.numpy()], x, exclude=chosen, chunk_size=2)
    assert not (index == chosen).any() and (distances > 0).all()
    brute = np.linalg.norm(x[chosen.numpy()][:, None] - x[None], axis=2)
    brute[np.arange(3), chosen.numpy()] = np.inf
    np.testing.assert_allclose(distances.numpy(), brute.min(1), rtol=1e-10)


def test_kth_neighbour_distances_match_sklearn(rng):
    x = rng.normal(size=(120, 6))
    radii = kth_neighbour_distances(x, k=3, chunk_size=7)
    expected, _ = NearestNeighbors(n_neighbors=4).fit(x).kneighbors(x)  # column 0 is itself
    np.testing.assert_allclose(radii.numpy(), expected[:, 3], rtol=1e-10)


# ------------------------------------------------------------------------ precision / recall
def test_precision_recall_are_one_for_identical_sets(rng):
    x = torch.from_numpy(rng.normal(size=(300, 16)))
    assert precision_recall(x, x, k=3) == (1.0, 1.0)


def test_precision_recall_drop_for_disjoint_clusters(rng):
    real = rng.normal(size=(300, 8))
    fake = rng.normal(size=(300, 8)) + 20.0
    precision, recall = precision_recall(real, fake, k=3)
    assert precision == 0.0 and recall == 0.0


def test_mode_dropping_lowers_recall_not_precision(rng):
    centres = np.repeat(np.array([[0.0, 0.0], [30.0, 30.0]]), 300, axis=0)
    real = centres + rng.normal(size=(600, 2))
    fake = rng.normal(size=(300, 2))  # all in the first mode only
    precision, recall = precision_recall(real, fake, k=3)
    assert precision > 0.95
    assert 0.4 < recall < 0.55


def test_precision_recall_need_more_items_than_k(rng):
    with pytest.raises(GenaugError, match="more than k=3"):
        precision_recall(rng.normal(size=(3, 2)), rng.normal(size=(10, 2)), k=3)


# ------------------------------------------------------------------------------ memorisation
def test_memorisation_counts_copies_of_training_images(digits16):
    train, test = train_test_split(digits16)
    images = train.float_images()  # (N, 1, 16, 16), compared in pixel space
    copies = images[torch.randperm(len(images))[:100]]
    found = memorisation(copies, images)
    assert found.share == 1.0
    assert torch.all(found.distances < 1e-6)
    assert found.threshold == pytest.approx(0.5 * found.typical_distance)
    # Held-out real digits are rarely that close; uniform noise never is.
    assert memorisation(test.float_images(), images).share < 0.05
    assert memorisation(torch.rand(100, 1, 16, 16), images).share == 0.0


def test_memorisation_with_an_explicit_threshold(rng):
    train = rng.normal(size=(50, 4))
    samples = train[:10] + 0.05
    assert memorisation(samples, train, threshold=0.2).share == 1.0
    assert memorisation(samples, train, threshold=0.05).share == 0.0


# --------------------------------------------------------------------------------- agreement
def test_agreement():
    assert agreement(torch.tensor([1, 2, 3, 4]), torch.tensor([1, 2, 0, 0])) == 0.5
    with pytest.raises(GenaugError, match="3 predictions for 2 labels"):
        agreement(torch.tensor([1, 2, 3]), torch.tensor([1, 2]))
