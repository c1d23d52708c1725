"""What a training run starts from: its images (checked against the run's settings) and its
generator, built for them and recording what it learns from."""

from __future__ import annotations

from genaug.data import ImageDataset, load_dataset
from genaug.data.pairs import check_pairable
from genaug.errors import GenaugError
from genaug.models.base import Generator
from genaug.models.registry import create_generator
from genaug.train.config import TrainConfig

__all__ = ["build_model", "training_data"]


def build_model(config: TrainConfig, dataset: ImageDataset) -> Generator:
    """The generator ``config`` names, built for ``dataset`` (conditional on its labels unless
    ``unlabeled``), recording the data and the classes it learns from."""
    conditional = dataset.has_labels and not config.unlabeled
    model = create_generator(
        config.model,
        image_size=config.image_size,
        channels=dataset.channels,
        num_classes=dataset.num_classes if conditional else 0,
        **config.model_args,
    )
    if conditional:  # a pair family is not conditioned on them, but records what it learnt from
        model.class_names = list(dataset.class_names)
    model.data_description = dict(dataset.description)
    # The classes the images came from, also when their labels are hidden: a user of the
    # checkpoint can then refuse to evaluate it on classes it has seen (transfer benchmarks).
    seen = sorted(set(dataset.targets.tolist()) - {-1}) or range(len(dataset.class_names))
    model.data_description.setdefault("class_names", [dataset.class_names[c] for c in seen])
    if model.trains_on_pairs:  # labels pair the images: refuse data that cannot be paired
        check_pairable(dataset.targets, conditional, f"A {model.family} generator")
    return model


def training_data(config: TrainConfig, dataset: ImageDataset | None) -> ImageDataset:
    """The images a run trains on: ``dataset`` checked against the settings, else
    ``config.data`` loaded at the run's size."""
    if dataset is None:
        dataset = load_dataset(config.data, image_size=config.image_size, channels=config.channels)
    elif dataset.image_size != config.image_size or (
        config.channels is not None and dataset.channels != config.channels
    ):
        raise GenaugError(
            f"The dataset holds {dataset.channels}x{dataset.image_size}px images but the run asks "
            f"for {config.channels or dataset.channels}x{config.image_size}px; load it at that size."
        )
    if len(dataset) == 0:
        raise GenaugError("The training dataset is empty; give it at least one image.")
    return dataset
