"""genaug.fewshot: prototype and probe heads on frozen features, the support set (views,
hallucinations, weights), the user-facing fit_few_shot, and its one-sentence refusals.

Data: the made-up Omniglot zips (``omniglot_zips``), new classes Tagalog, base classes Greek; the
extractor is a timm ``test_resnet`` trained for a few steps on the base classes (a classifier
folder as the bench writes it: ``make_classifier_folder``)."""

from __future__ import annotations

import pytest
import timm
import torch
from helpers import make_classifier_folder
from torchvision.transforms import v2

from genaug.data import load_dataset
from genaug.errors import GenaugError
from genaug.fewshot import (
    FeatureExtractor,
    fit_few_shot,
    fit_probe,
    fit_prototypes,
    support_features,
    train_hallucinator,
)
from genaug.models import load_generator


@pytest.fixture(scope="module")
def new(omniglot_zips):
    return load_dataset(omniglot_zips.spec("Tagalog"), image_size=16)


@pytest.fixture(scope="module")
def base_folder(tmp_path_factory, omniglot_zips):
    base = load_dataset(omniglot_zips.spec("Greek"), image_size=16)
    return make_classifier_folder(tmp_path_factory.mktemp("base") / "classifier", base)


@pytest.fixture(scope="module")
def extractor(base_folder):
    return FeatureExtractor.from_folder(base_folder)


def shots_and_queries(dataset, shots: int = 1):
    """The first ``shots`` drawings of every class as shots, the last 5 as queries."""
    xs, ys, xq, yq = [], [], [], []
    for c in range(dataset.num_classes):
        where = torch.nonzero(dataset.targets == c).squeeze(1)
        xs.append(dataset.images[where[:shots]])
        ys += [c] * shots
        xq.append(dataset.images[where[-5:]])
        yq += [c] * 5
    return torch.cat(xs), torch.tensor(ys), torch.cat(xq), torch.tensor(yq)


def test_prototypes_are_unit_class_means_and_weights_count():
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [3.0, 0.1], [0.0, 2.0]])
    labels = torch.tensor([0, 1, 0, 1])
    head = fit_prototypes(features, labels, 2)
    assert torch.allclose(head.weight.norm(dim=1), torch.ones(2))
    assert head(torch.tensor([[1.0, 0.2], [0.1, 1.0]])).argmax(1).tolist() == [0, 1]
    # A weight of 0 removes a feature from its class mean.
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    weighted = fit_prototypes(features, torch.tensor([0, 0, 1]), 2, torch.tensor([1.0, 0.0, 1.0]))
    assert torch.allclose(weighted.weight[0], torch.tensor([1.0, 0.0]))


def test_probe_separates_and_is_deterministic():
    torch.manual_seed(0)
    centers = torch.randn(4, 16)
    labels = torch.arange(4).repeat_interleave(5)
    features = centers[labels] + 0.3 * torch.randn(20, 16)
    a = fit_probe(features, labels, 4, regularisation=1e-3)
    b = fit_probe(features, labels, 4, regularisation=1e-3)
    assert torch.equal(a.weight, b.weight)
    assert (a(features).argmax(1) == labels).float().mean() == 1.0
    strong = fit_probe(features, labels, 4, regularisation=10.0)
    assert strong.weight.norm() < a.weight.norm()  # the penalty shrinks the weights


def test_heads_beat_chance_on_new_classes(extractor, new):
    xs, ys, xq, yq = shots_and_queries(new, shots=2)
    for head in ("proto", "probe"):
        classifier = fit_few_shot(extractor, xs, ys, head=head)
        accuracy = (classifier.predict(xq) == yq).float().mean()
        assert accuracy > 2.0 / new.num_classes, (head, accuracy)


def test_views_and_weights_in_the_support_set(extractor, new):
    xs, ys, _, _ = shots_and_queries(new)
    affine = v2.RandomAffine(degrees=15)
    support = support_features(
        extractor, xs, ys, views=3, augment=lambda x, y: (torch.stack([affine(i) for i in x]), y)
    )
    assert len(support) == 4 * len(xs)
    assert torch.equal(support.labels[: len(xs)], ys) and not support.generated.any()
    assert torch.equal(support.weights, torch.ones(len(support)))
    again = support_features(
        extractor, xs, ys, views=3, augment=lambda x, y: (torch.stack([affine(i) for i in x]), y)
    )
    assert torch.equal(support.features, again.features)  # seeded views


def test_user_module_and_per_image_transform(new):
    xs, ys, xq, yq = shots_and_queries(new, shots=2)
    torch.manual_seed(0)
    model = timm.create_model("test_resnet", in_chans=1, num_classes=0, pretrained=False)
    classifier = fit_few_shot(model, xs, ys, head="proto", views=2, augment=v2.RandomAffine(10))
    assert classifier.predict(xq).shape == yq.shape
    assert classifier.extractor.feature_dim == model.num_features


def test_refusals_name_the_fix(extractor, new):
    xs, ys, _, _ = shots_and_queries(new)
    with pytest.raises(GenaugError, match="labels must lie in 0..5"):
        fit_few_shot(extractor, xs, ys + 10, num_classes=6)
    with pytest.raises(GenaugError, match="class 5 has no image"):
        fit_few_shot(extractor, xs[:5], ys[:5], num_classes=6)
    with pytest.raises(GenaugError, match="resize them to 16 px with 1 channel"):
        fit_few_shot(extractor, torch.zeros(6, 3, 32, 32), ys)
    with pytest.raises(GenaugError, match="views=2 needs an augmentation"):
        fit_few_shot(extractor, xs, ys, views=2)


@pytest.mark.slow
def test_hallucinator_trains_on_base_and_feeds_the_heads(
    tmp_path, extractor, base_folder, new, omniglot_zips
):
    base = load_dataset(omniglot_zips.spec("Greek"), image_size=16)
    result = train_hallucinator(
        base_folder,
        base,
        tmp_path / "hallucinator",
        model="test_hallucinator",
        steps=4,
        batch_size=8,
        checkpoint_every=4,
        device="cpu",
        progress=False,
    )
    model = load_generator(result.checkpoint)
    assert model.feature_dim == extractor.feature_dim
    assert model.extractor_fingerprint == extractor.fingerprint
    xs, ys, xq, yq = shots_and_queries(new)
    support = support_features(extractor, xs, ys, hallucinator=model, count=3, weight=0.5)
    assert len(support) == 4 * len(xs) and int(support.generated.sum()) == 3 * len(xs)
    assert torch.equal(support.labels[len(xs) :], ys.repeat_interleave(3))
    assert torch.allclose(support.weights[len(xs) :], torch.full((3 * len(xs),), 0.5))
    classifier = fit_few_shot(extractor, xs, ys, hallucinator=model, count=3, weight=0.5)
    assert classifier.predict(xq).shape == yq.shape
    # Another extractor (other weights, same size): refused in one sentence.
    torch.manual_seed(1)
    other = FeatureExtractor(
        timm.create_model("test_resnet", in_chans=1, num_classes=0), image_size=16, channels=1
    )
    with pytest.raises(GenaugError, match="other weights"):
        fit_few_shot(other, xs, ys, hallucinator=model)
    wider = FeatureExtractor(torch.nn.Sequential(torch.nn.Flatten()), image_size=16, channels=1)
    with pytest.raises(GenaugError, match="makes 256"):
        fit_few_shot(wider, xs, ys, hallucinator=model)
