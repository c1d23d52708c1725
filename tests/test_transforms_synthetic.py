"""Synthetic datasets: deterministic by index, beside real data, and the ImageFolder export."""

from __future__ import annotations

import pickle

import pytest
import torch
from helpers import make_generator, single_thread  # noqa: F401
from torch.utils.data import ConcatDataset, DataLoader
from torchvision.datasets import ImageFolder

from genaug import GenaugError, MixedDataset, SyntheticDataset, list_generators, save_generator
from genaug.transforms.export import export_image_folder

# The families that make images (a hallucinator makes features: refused below).
TEST_MODELS = [n for n in list_generators("test_*") if not make_generator(n).feature_space]


def test_a_generator_of_features_is_refused_in_one_sentence(tmp_path):
    hallucinator = make_generator("test_hallucinator")
    with pytest.raises(GenaugError, match="makes features, not images.*genaug.fewshot"):
        SyntheticDataset(hallucinator, n_per_class=3)
    with pytest.raises(GenaugError, match="makes features, not images"):
        export_image_folder(hallucinator, tmp_path / "out", 4)


@pytest.mark.parametrize("name", TEST_MODELS)
def test_deterministic_by_index_and_class_balanced(name, digits16):
    model = make_generator(name)
    # An image-conditioned generator varies real images: exemplars of the 10 digits.
    extra = {"exemplars": digits16.subset(range(20))} if model.image_conditioned else {}
    data = SyntheticDataset(model, n_per_class=3, seed=4, **extra)
    assert len(data) == 30
    labels = [data[i][1] for i in range(len(data))]
    assert torch.bincount(torch.tensor(labels)).tolist() == [3] * 10
    image, label = data[13]
    assert image.shape == (1, 16, 16) and image.dtype == torch.float32 and label == 3
    again = SyntheticDataset(make_generator(name), n_per_class=3, seed=4, **extra)
    assert torch.equal(again[13][0], image)
    batched = data.__getitems__([29, 13, 0])
    assert torch.allclose(batched[1][0], image, atol=1e-6) and batched[1][1] == 3  # float noise
    assert torch.equal(data[-1][0], data[29][0])
    assert not torch.equal(SyntheticDataset(model, 3, seed=5, **extra)[13][0], image)


def test_unconditional_generators_give_unknown_labels():
    data = SyntheticDataset(make_generator(num_classes=0), n_per_class=5)
    assert len(data) == 5 and data.num_classes == 0 and data[0][1] == -1


def test_concat_with_real_data_in_a_dataloader(digits16, tmp_path):
    real = digits16.subset(range(40))
    path = save_generator(make_generator(channels=3, size=32), tmp_path / "rgb32")
    synthetic = SyntheticDataset(path, n_per_class=2, seed=0, image_size=16, channels=1)
    data = ConcatDataset([real, synthetic])
    batches = list(DataLoader(data, batch_size=16, shuffle=True))
    images = torch.cat([b[0] for b in batches])
    assert images.shape == (60, 1, 16, 16) and len(torch.cat([b[1] for b in batches])) == 60


def test_forked_workers_give_the_same_images_as_the_main_process(tmp_path):
    data = SyntheticDataset(make_generator(), n_per_class=2, seed=1)
    main = torch.cat([b[0] for b in DataLoader(data, batch_size=4)])
    workers = torch.cat(
        [
            b[0]
            for b in DataLoader(data, batch_size=4, num_workers=2, multiprocessing_context="fork")
        ]
    )
    assert torch.allclose(main, workers, atol=1e-6)
    clone = pickle.loads(pickle.dumps(data))
    assert torch.equal(clone[3][0], data[3][0])


def test_mixed_dataset_takes_the_synthetic_share(digits16):
    real = digits16.subset(range(30))
    synthetic = SyntheticDataset(make_generator(), n_per_class=2, seed=0)
    mixed = MixedDataset(real, synthetic, ratio=0.25)
    assert mixed.num_synthetic == 10 and len(mixed) == 40
    assert torch.equal(mixed[3][0], real[3][0]) and torch.equal(mixed[30][0], synthetic[0][0])
    items = mixed.__getitems__([31, 2, 39])
    assert torch.allclose(items[0][0], mixed[31][0], atol=1e-6) and items[1][1] == real[2][1]
    assert len(MixedDataset(real, synthetic, ratio=0)) == 30
    with pytest.raises(GenaugError, match="needs 30 synthetic samples.*holds 20"):
        MixedDataset(real, synthetic, ratio=0.5)
    with pytest.raises(GenaugError, match=r"ratio is the synthetic fraction.*in \[0, 1\)"):
        MixedDataset(real, synthetic, ratio=1.0)
    with pytest.raises(IndexError, match="out of range for 40"):
        mixed[40]


def test_bad_synthetic_settings_are_clear_errors():
    model = make_generator()
    with pytest.raises(GenaugError, match="n_per_class must be a positive integer"):
        SyntheticDataset(model, n_per_class=0)
    with pytest.raises(GenaugError, match="channels must be None, 1 or 3"):
        SyntheticDataset(model, 2, channels=4)
    with pytest.raises(GenaugError, match="image size must be"):
        SyntheticDataset(model, 2, image_size="big")
    with pytest.raises(IndexError, match="out of range for 20"):
        SyntheticDataset(model, 2)[20]


def test_export_is_an_imagefolder_tree(tmp_path):
    model = make_generator()
    model.class_names = [f"digit{i}" for i in range(10)]
    out = export_image_folder(model, tmp_path / "synthetic", n=20, seed=0)
    folder = ImageFolder(str(out))
    assert folder.classes == sorted(model.class_names) and len(folder) == 20
