"""Generated images, deterministic by index: datasets to use beside real data (their export as
an ImageFolder tree is in :mod:`genaug.transforms.export`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from genaug.data import ImageDataset, load_dataset
from genaug.data.convert import convert_channels, resize_images
from genaug.errors import GenaugError
from genaug.models.base import Generator
from genaug.models.sampling import latents_for_indices, sample_indices
from genaug.transforms.checks import check_makes_images, varying_families
from genaug.transforms.export import (  # noqa: F401 (their home before the split)
    INCOMPLETE,
    export_image_folder,
    export_synthetic_set,
    image_to_pil,
)


def _check_count(value: object, name: str, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise GenaugError(f"{owner} {name} must be a positive integer, got {value!r}.")
    return value


class SyntheticDataset(Dataset):
    """Generated images, deterministic by index, to use beside (or instead of) real data.

    Sample ``i`` has class ``i % num_classes`` (so every class gets ``n_per_class`` images) and is
    the same image for the same ``seed`` however it is fetched: alone, batched, in any order or
    DataLoader worker. Items are ``(image, label)`` like :class:`~genaug.data.ImageDataset`:
    float32 ``(C, H, W)`` in [0, 1] and an int; an unconditional generator gives label -1
    (unknown), as ImageDataset marks hidden labels.

    Args:
        generator: a Generator, or a checkpoint path (pickled copies carry the path).
        n_per_class: images per class (an unconditional generator: images in all).
        seed: which images; the same seed gives the same dataset.
        image_size: give the images this size (an int or (H, W)) to match the real data;
            None keeps the generator's.
        channels: 1 or 3 to match the real data (gray <-> RGB); None keeps the generator's.
        exemplars: for a generator that varies given images (an image-conditioned one, e.g. a
            DAGAN, which cannot sample from noise and needs them; or a diffusion model, which
            then varies them instead of sampling): the real images to vary, an
            :class:`~genaug.data.ImageDataset` or a dataset spec (e.g. the few labelled shots of
            new classes). Every class of the exemplars then gets ``n_per_class`` variations, its
            exemplars taken in turn (``n_per_class = V * shots`` gives V variations of each
            shot), each labelled with its exemplar's label (unlabelled exemplars:
            ``n_per_class`` variations in all, label -1). Classes the generator never saw are
            fine: the exemplars' labels are never given to the generator. Other generators take
            no exemplars.
        strength: how far each variation of an exemplar goes, in [0, 1] (mode ``vary``'s
            strength: the noise scale of an image-conditioned generator, the SDEdit noise level
            of a diffusion model, where 0.2-0.5 keep the content).

    Example: ``data = ConcatDataset([real, SyntheticDataset("runs/digits-vae", 50, seed=0)])``;
    ``SyntheticDataset("runs/omniglot-dagan", 20, exemplars=shots)`` varies the shots.
    A DataLoader fetches a whole batch in one generator call (``__getitems__``); each fetch
    runs the generator again: :meth:`to_image_dataset` makes them all once (the offline route
    for costly generators, e.g. a diffusion model's DDIM edits).
    """

    def __init__(
        self,
        generator: Generator | str | os.PathLike,
        n_per_class: int,
        seed: int = 0,
        image_size: int | tuple[int, int] | None = None,
        channels: int | None = None,
        exemplars: ImageDataset | str | None = None,
        strength: float = 1.0,
    ) -> None:
        from genaug.models.holder import GeneratorHolder
        from genaug.transforms.checks import check_fraction

        self.holder = GeneratorHolder(generator, owner="SyntheticDataset")
        self.n_per_class = _check_count(n_per_class, "n_per_class", "SyntheticDataset")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise GenaugError(
                f"SyntheticDataset seed must be a non-negative integer, got {seed!r}."
            )
        self.seed = seed
        if channels not in (None, 1, 3):
            raise GenaugError(f"SyntheticDataset channels must be None, 1 or 3, got {channels!r}.")
        self.channels = channels
        self.image_size = image_size
        self.strength = check_fraction(strength, "SyntheticDataset strength")
        model = self.generator
        check_makes_images(model)
        if image_size is not None:  # checked once here, with the shared conversion's message
            resize_images(torch.zeros(1, model.channels, 1, 1), image_size)
        self.exemplars = _check_exemplars(exemplars, model)
        # Per exemplar class present, the indices of its exemplars (one group when unlabelled).
        self._groups: list[Tensor] = []
        if self.exemplars is not None:
            targets = self.exemplars.targets
            self._groups = [torch.nonzero(targets == c).squeeze(1) for c in targets.unique()]

    @property
    def generator(self) -> Generator:
        return self.holder.model

    @property
    def num_classes(self) -> int:
        """Number of classes (0 for an unconditional generator; the exemplars' with exemplars)."""
        if self.exemplars is not None:
            return self.exemplars.num_classes
        return self.generator.num_classes

    @property
    def class_names(self) -> list[str]:
        if self.exemplars is not None:
            return list(self.exemplars.class_names)
        return list(self.generator.class_names)

    def __len__(self) -> int:
        if self.exemplars is not None:
            return self.n_per_class * len(self._groups)
        return self.n_per_class * max(self.num_classes, 1)

    def __repr__(self) -> str:
        return (
            f"SyntheticDataset({self.generator.family}, n_per_class={self.n_per_class}, "
            f"seed={self.seed}, count={len(self)})"
        )

    def _index(self, index: int) -> int:
        n = len(self)
        if isinstance(index, Tensor):
            index = int(index)
        if not -n <= index < n:
            raise IndexError(f"SyntheticDataset index {index} is out of range for {n} images.")
        return index % n

    def images(self, indices: Sequence[int]) -> tuple[Tensor, Tensor]:
        """The images (B, C, H, W) float32 in [0, 1] and labels (B,) of ``indices``, batched."""
        index = torch.tensor([self._index(i) for i in indices], dtype=torch.long)
        model = self.holder.current()
        if self.exemplars is not None:
            images, labels = self._vary(model, index)
        else:
            images, labels = sample_indices(model, index, self.seed)  # (B, C, S, S) on the CPU
        if self.channels is not None:
            images = convert_channels(images, self.channels)
        if self.image_size is not None:
            images = resize_images(images, self.image_size)
        if labels is None:
            labels = torch.full((len(index),), -1, dtype=torch.long)
        return images, labels

    @torch.no_grad()
    def _vary(self, model: Generator, index: Tensor) -> tuple[Tensor, Tensor]:
        """Sample ``i``: a variation of the ``i // groups``-th exemplar (in turn) of group
        ``i % groups``, with noise seeded by (seed, i) like a sampled image's latent."""
        groups = len(self._groups)
        pairs = zip((index % groups).tolist(), (index // groups).tolist())  # (group, turn)
        rows = torch.stack([self._groups[g][j % len(self._groups[g])] for g, j in pairs])  # (B,)
        assert self.exemplars is not None
        exemplars = self.exemplars.images[rows].float() / 255.0  # (B, C, H, W)
        exemplars = resize_images(convert_channels(exemplars, model.channels), model.image_size)
        noise = latents_for_indices(index, self.seed, model.latent_dim).to(model.device)
        images = model.vary(exemplars.to(model.device), self.strength, noise=noise)
        return images.float().cpu(), self.exemplars.targets[rows].long()

    def to_image_dataset(self, batch_size: int = 256) -> ImageDataset:
        """Every image of this dataset made once, as an in-memory
        :class:`~genaug.data.ImageDataset` (uint8): the offline route, where a classifier then
        draws generated images without running the generator again. Same images (rounded to
        uint8) and labels as fetching each index.

        Example: ``cache = SyntheticDataset(diffusion, 8 * 5, exemplars=shots,
        strength=0.3).to_image_dataset()`` (8 variations of each of 5 shots per class).
        """
        from genaug.data.convert import to_uint8_images

        batch_size = _check_count(batch_size, "batch_size", "to_image_dataset")
        parts = [
            self.images(range(i, min(i + batch_size, len(self))))
            for i in range(0, len(self), batch_size)
        ]
        images = torch.cat([to_uint8_images(p[0]) for p in parts])
        targets = torch.cat([p[1] for p in parts])
        description = {"spec": "synthetic", "family": self.generator.family, "seed": self.seed}
        return ImageDataset(images, targets, self.class_names, description)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        images, labels = self.images([index])
        return images[0], int(labels[0])

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[Tensor, int]]:
        if len(indices) == 0:
            return []
        images, labels = self.images(indices)
        return [(image, int(label)) for image, label in zip(images, labels.tolist())]


def _check_exemplars(exemplars: Any, model: Generator) -> ImageDataset | None:
    """The exemplars as an ImageDataset; refused unless the generator varies images, needed by
    one that only varies (image-conditioned)."""
    if not model.image_conditioned and (exemplars is None or not model.varies_images):
        if exemplars is None:
            return None
        raise GenaugError(
            f"SyntheticDataset takes exemplars only for a generator that varies images "
            f"({', '.join(varying_families())}); a {model.family} generator samples "
            "from noise, so drop exemplars=."
        )
    if exemplars is None:
        raise GenaugError(
            f"A {model.family} generator makes variations of given images, so SyntheticDataset "
            "needs the real images to vary: pass exemplars= (an ImageDataset or a dataset spec, "
            "e.g. the labelled shots)."
        )
    if isinstance(exemplars, str):
        exemplars = load_dataset(exemplars, image_size=model.image_size, channels=model.channels)
    if not isinstance(exemplars, ImageDataset) or len(exemplars) == 0:
        raise GenaugError(
            "SyntheticDataset exemplars must be a non-empty ImageDataset or a dataset spec such "
            f"as 'imagefolder:PATH', got {exemplars!r}."
        )
    return exemplars


class MixedDataset(Dataset):
    """Real data plus synthetic data, the synthetic share being ``ratio`` of the whole.

    The first ``len(real)`` indices are the real samples; the rest are the first
    ``round(len(real) * ratio / (1 - ratio))`` samples of ``synthetic`` (class-balanced for a
    :class:`SyntheticDataset`). Shuffle with the DataLoader.

    Args:
        real: the real dataset, ``(image, label)`` items.
        synthetic: a dataset with items shaped like ``real``'s (a :class:`SyntheticDataset` with
            matching ``image_size`` and ``channels``).
        ratio: the synthetic fraction in [0, 1): 0.5 means as many synthetic as real samples.

    Example: ``MixedDataset(real, SyntheticDataset(ckpt, n_per_class=100), ratio=0.5)``.
    """

    def __init__(self, real: Dataset, synthetic: Dataset, ratio: float) -> None:
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 <= ratio < 1:
            raise GenaugError(
                f"MixedDataset ratio is the synthetic fraction of the whole, in [0, 1), got "
                f"{ratio!r}; for example 0.5 gives as many synthetic as real samples."
            )
        self.real, self.synthetic, self.ratio = real, synthetic, float(ratio)
        self.num_real = len(real)  # type: ignore[arg-type]
        self.num_synthetic = round(self.num_real * self.ratio / (1 - self.ratio))
        available = len(synthetic)  # type: ignore[arg-type]
        if self.num_synthetic > available:
            raise GenaugError(
                f"MixedDataset needs {self.num_synthetic} synthetic samples for ratio "
                f"{self.ratio} beside {self.num_real} real ones, but the synthetic dataset holds "
                f"{available}; make it larger (more n_per_class) or lower the ratio."
            )

    def __len__(self) -> int:
        return self.num_real + self.num_synthetic

    def _locate(self, index: int) -> tuple[bool, int]:
        n = len(self)
        index = int(index)
        if not -n <= index < n:
            raise IndexError(f"MixedDataset index {index} is out of range for {n} samples.")
        index %= n
        return (False, index) if index < self.num_real else (True, index - self.num_real)

    def __getitem__(self, index: int) -> Any:
        synthetic, position = self._locate(index)
        return self.synthetic[position] if synthetic else self.real[position]

    def __getitems__(self, indices: Sequence[int]) -> list[Any]:
        located = [self._locate(i) for i in indices]
        out: list[Any] = [None] * len(located)
        wanted = [(k, pos) for k, (syn, pos) in enumerate(located) if syn]
        if wanted and hasattr(self.synthetic, "__getitems__"):  # one batched generator call
            items = self.synthetic.__getitems__([pos for _, pos in wanted])
            for (k, _), item in zip(wanted, items):
                out[k] = item
        else:
            for k, pos in wanted:
                out[k] = self.synthetic[pos]
        for k, (syn, pos) in enumerate(located):
            if not syn:
                out[k] = self.real[pos]
        return out
