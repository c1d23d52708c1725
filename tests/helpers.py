"""Shared checkers for the tests: ``check_transform`` and the host drivers it runs through,
tiny generators, and small Omniglot-layout zips (``make_omniglot_zip``, ``OmniglotZips``).

A *host* is one way a generative transform is called: the core module, GenerativeMix, the
torchvision v2 adapter (tensor and PIL samples), the Albumentations adapter and the Kornia
adapter. Each host knows how to build its transform, make a sample, call it (optionally
replaying parameters) and split a batched sample into single ones; every transform keeps its
last call's parameters in ``last_params``. ``check_transform`` runs the same checks through
every host, as torchvision's ``check_transform`` does for its transforms.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import pickle
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import PIL.Image
import PIL.ImageDraw
import pytest
import torch
from torch import Tensor

from genaug import GenerativeAugment, GenerativeCollate, GenerativeMix
from genaug.transforms.torchvision import TorchvisionGenerativeAugment


# ---------------------------------------------------------------------- comparing samples
def describe(image: Any) -> tuple:
    """What must survive a transform: type, dtype, device, size, channels (or PIL mode)."""
    if isinstance(image, PIL.Image.Image):
        return (type(image), image.mode, image.size)
    if isinstance(image, np.ndarray):
        return (type(image), image.dtype, image.shape)
    if isinstance(image, Tensor):
        return (type(image), image.dtype, image.device, tuple(image.shape))
    raise AssertionError(f"not an image: {type(image).__name__}")


def as_array(image: Any) -> np.ndarray:
    if isinstance(image, PIL.Image.Image):
        return np.asarray(image)
    if isinstance(image, Tensor):
        return image.detach().cpu().numpy()
    return np.asarray(image)


def assert_same(a: Any, b: Any, tolerance: float = 0.0) -> None:
    """Recursive equality of samples; ``tolerance`` allows float noise (and +-1 for uint8)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys()
        for key in a:
            assert_same(a[key], b[key], tolerance)
    elif isinstance(a, (tuple, list)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y, tolerance)
    elif isinstance(a, (PIL.Image.Image, np.ndarray, Tensor)):
        assert describe(a) == describe(b)
        x, y = as_array(a), as_array(b)
        if tolerance == 0:
            assert np.array_equal(x, y)
        else:
            slack = 1 if x.dtype == np.uint8 else tolerance
            assert np.abs(x.astype(np.float64) - y.astype(np.float64)).max() <= slack
    else:
        assert a == b


def slice_params(params: Any, index: int, n: int) -> Any:
    """The parameters of image ``index`` out of those drawn for a batch of ``n``."""
    if isinstance(params, dict):
        return {key: slice_params(value, index, n) for key, value in params.items()}
    if isinstance(params, Tensor) and params.ndim and params.shape[0] == n:
        return params[index : index + 1]
    if isinstance(params, list) and len(params) == n:
        return [params[index]]
    return params


# ---------------------------------------------------------------------- hosts
@dataclass
class Host:
    """One calling convention of a generative transform (see the module docstring)."""

    name: str
    transform_class: type
    build: Callable[..., Any]  # (generator, mode, p, seed) -> transform
    sample: Callable[[int, int, int, torch.dtype, int], Any]  # (n, c, size, dtype, k) -> sample
    call: Callable[[Any, Any, Any], Any]  # (transform, sample, params or None) -> output sample
    image_of: Callable[[Any], Any]
    split: Callable[[Any], list[Any]] | None  # a batched sample -> single samples
    uint8: bool = True  # takes uint8 images (Kornia takes float only)


def _images(n: int, c: int, size: int, dtype: torch.dtype) -> Tensor:
    rng = torch.Generator().manual_seed(n * 100 + c * 10 + size)
    images = torch.rand(n, c, size, size + 2, generator=rng)  # not square on purpose
    return (images * 255).round().to(torch.uint8) if dtype == torch.uint8 else images.to(dtype)


def _labels(n: int, num_classes: int) -> Tensor:
    return torch.arange(n) % max(num_classes, 1)


def _split_pairs(sample: tuple[Tensor, Tensor | None]) -> list[tuple[Tensor, Tensor | None]]:
    """An ``(images, labels)`` batch as single-image batches (labels may be None)."""
    images, labels = sample
    return [
        (images[i : i + 1], None if labels is None else labels[i : i + 1])
        for i in range(len(images))
    ]


_BANK: list[Any] = []


def neighbour_bank() -> Any:
    """A small labelled bank of real digits (16 px) for mode ``neighbour``, loaded once."""
    if not _BANK:
        from genaug.data import ImageDataset, load_dataset

        digits = load_dataset("digits", image_size=16)
        _BANK.append(ImageDataset(digits.images[:300], digits.targets[:300], digits.class_names))
    return _BANK[0]


def bank_for(mode: str, spec: bool = False) -> dict[str, Any]:
    """The ``neighbours`` argument a transform needs in ``mode`` (none but for ``neighbour``)."""
    if mode != "neighbour":
        return {}
    return {"neighbours": "digits" if spec else neighbour_bank()}


def _core_host() -> Host:
    return Host(
        name="core",
        transform_class=GenerativeAugment,
        build=lambda g, mode, p, seed: GenerativeAugment(
            g, mode=mode, p=p, seed=seed, **bank_for(mode)
        ),
        sample=lambda n, c, size, dtype, k: (_images(n, c, size, dtype), _labels(n, k)),
        call=lambda t, s, params: (t(s[0], s[1], params=params), s[1]),
        image_of=lambda s: s[0],
        split=_split_pairs,
    )


def _mix_host() -> Host:
    return Host(
        name="mix",
        transform_class=GenerativeMix,
        build=lambda g, mode, p, seed: GenerativeMix(
            g, mode=mode, p=p, seed=seed, **bank_for(mode)
        ),
        sample=lambda n, c, size, dtype, k: (_images(n, c, size, dtype), _labels(n, k)),
        call=lambda t, s, params: t(s[0], s[1], params=params),
        image_of=lambda s: s[0],
        split=_split_pairs,
    )


def _collate_host() -> Host:
    """GenerativeCollate: a list of ``(image (C, H, W), label)`` samples in, ``[images, labels]``
    out (what ``default_collate`` makes of them)."""

    def sample(n, c, size, dtype, k):
        images, labels = _images(n, c, size, dtype), _labels(n, k)
        return [(images[i], int(labels[i])) for i in range(n)]

    def image_of(s):  # the collated images, of the output or of the samples
        return s[0] if isinstance(s[0], Tensor) else torch.stack([image for image, _ in s])

    def split(s):
        if isinstance(s[0], Tensor):
            return [[s[0][i : i + 1], s[1][i : i + 1]] for i in range(len(s[0]))]
        return [[pair] for pair in s]

    return Host(
        name="collate",
        transform_class=GenerativeCollate,
        build=lambda g, mode, p, seed: GenerativeCollate(
            g, mode=mode, p=p, seed=seed, **bank_for(mode)
        ),
        sample=sample,
        call=lambda t, s, params: t(s, params=params),
        image_of=image_of,
        split=split,
    )


def _torchvision_host() -> Host:
    def sample(n, c, size, dtype, k):
        return (_images(n, c, size, dtype), _labels(n, k))

    return Host(
        name="torchvision",
        transform_class=TorchvisionGenerativeAugment,
        build=lambda g, mode, p, seed: TorchvisionGenerativeAugment(
            g, mode=mode, p=p, seed=seed, **bank_for(mode)
        ),
        sample=sample,
        call=lambda t, s, params: t(s, params=params),
        image_of=lambda s: s[0],
        split=lambda s: [(s[0][i], int(s[1][i])) for i in range(len(s[0]))],
    )


def _torchvision_pil_host() -> Host:
    def sample(n, c, size, dtype, k):
        array = _images(1, c, size, torch.uint8)[0].permute(1, 2, 0).numpy()
        image = PIL.Image.fromarray(
            array[..., 0] if c == 1 else array, mode="L" if c == 1 else "RGB"
        )
        return {"image": image, "label": 1 % max(k, 1)}

    host = _torchvision_host()
    host.name, host.sample, host.split = "torchvision-pil", sample, None
    host.image_of = lambda s: s["image"]
    return host


def _albumentations_host() -> Host:
    from genaug.transforms.albumentations import AlbumentationsGenerativeAugment

    def sample(n, c, size, dtype, k):
        images = _images(n, c, size, dtype).permute(0, 2, 3, 1).numpy()  # (N, H, W, C)
        if dtype != torch.uint8:
            images = images.astype(np.float32)
        return {"images": np.ascontiguousarray(images), "label": _labels(n, k).tolist()}

    def call(t, s, params):
        if params is None:
            return t(**s)
        if not params:  # the last call did not apply the transform
            return copy.deepcopy(s)
        return t.apply_with_params(params, **s)

    def split(s):
        return [{"image": s["images"][i], "label": s["label"][i]} for i in range(len(s["label"]))]

    return Host(
        name="albumentations",
        transform_class=AlbumentationsGenerativeAugment,
        build=lambda g, mode, p, seed: AlbumentationsGenerativeAugment(
            g, mode=mode, p=p, **bank_for(mode, spec=True)
        ),
        sample=sample,
        call=call,
        image_of=lambda s: s["images"] if "images" in s else s["image"],
        split=split,
    )


def kornia_host() -> Host:
    """The Kornia adapter: batched float tensors, labels with the call, params by keyword."""
    from genaug.transforms.kornia import KorniaGenerativeAugment

    return Host(
        name="kornia",
        transform_class=KorniaGenerativeAugment,
        build=lambda g, mode, p, seed: KorniaGenerativeAugment(g, mode=mode, p=p, **bank_for(mode)),
        sample=lambda n, c, size, dtype, k: (_images(n, c, size, dtype), _labels(n, k)),
        call=lambda t, s, params: (t(s[0], s[1], params=params), s[1]),
        image_of=lambda s: s[0],
        split=_split_pairs,
        uint8=False,
    )


def _all_hosts() -> list[Host]:
    hosts = [
        _core_host(),
        _mix_host(),
        _collate_host(),
        _torchvision_host(),
        _torchvision_pil_host(),
    ]
    for optional in (_albumentations_host, kornia_host):
        with contextlib.suppress(ImportError):  # the optional extra may not be installed
            hosts.append(optional())
    return hosts


HOSTS: dict[str, Host] = {host.name: host for host in _all_hosts()}


# ---------------------------------------------------------------------- the checker
def check_transform(host: Host, transform: Any, sample: Any) -> Any:
    """Run the shared checks of a transform through ``host``; returns the first output.

    - the input is not written to;
    - the output image keeps type, dtype, device and size (and channels / PIL mode);
    - a call with the parameters of the last call replays it exactly;
    - the transform pickles, and the unpickled copy replays the call exactly;
    - a batch gives the same result as its images one by one with the same parameters
      (up to float rounding, amplified by a diffusion model's denoising steps; not for
      ``interpolate``, whose partners live in the batch).
    """
    original = copy.deepcopy(sample)
    out = host.call(transform, sample, None)
    assert_same(sample, original)  # no in-place write
    assert describe(host.image_of(out)) == describe(host.image_of(sample))
    params = transform.last_params  # every transform keeps them under this name

    assert_same(host.call(transform, sample, params), out)  # replay is exact

    clone = pickle.loads(pickle.dumps(transform))
    assert_same(host.call(clone, sample, params), out)

    mode = getattr(transform, "mode", None)
    model = getattr(transform, "generator", None)
    # A diffusion model's denoising steps amplify the rounding difference between a batch and
    # one image (other kernels at another batch size): measured up to 3e-3 on [0, 1] images.
    iterative = getattr(model, "varies_images", False) and not model.image_conditioned
    tolerance = 1e-2 if iterative else 1e-5
    if host.split is not None and mode != "interpolate":
        singles = host.split(sample)
        expected = host.split(out)
        for i, (single, want) in enumerate(zip(singles, expected)):
            got = host.call(transform, single, slice_params(params, i, len(singles)))
            assert_same(got, want, tolerance=tolerance)
    assert_same(sample, original)
    return out


# ---------------------------------------------------------------------- generators for tests


def make_generator(
    name: str = "test_vae", num_classes: int = 10, channels: int = 1, size: int = 16
):
    """A fresh tiny generator in eval mode, deterministic weights for the same arguments."""
    from genaug import create_generator

    torch.manual_seed(1234)
    return create_generator(
        name, image_size=size, num_classes=num_classes, channels=channels
    ).eval()


def family_modes(model: Any) -> list[str]:
    """The modes a generator can do (resample only when conditional, for labelled tests)."""
    if model.image_conditioned:
        return ["vary"]
    modes = ["vary"] if model.varies_images else []  # diffusion: SDEdit besides the rest
    modes += ["perturb"] if model.has_encoder else []
    if model.conditional:
        modes.append("resample")
    if model.has_encoder:
        modes += ["interpolate", "neighbour"]
    return modes


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """Tiny generators run fastest on one thread; two OpenMP threads on a busy 2-core machine
    spin at every barrier and make each call ~100x slower. Restored after the module."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def train_tiny(out: Any, model: str, data: str, unlabeled: bool = False) -> Any:
    """Train ``model`` 2 steps of batch 8 at 16 px on ``data`` into ``out``, on the CPU, seeded;
    returns the checkpoint folder (a Path)."""
    from pathlib import Path

    from genaug.train import TrainConfig, train

    config = TrainConfig(
        model=model,
        data=data,
        out=str(out),
        image_size=16,
        steps=2,
        batch_size=8,
        checkpoint_every=2,
        log_every=1,
        device="cpu",
        progress=False,
        unlabeled=unlabeled,
    )
    torch.manual_seed(0)
    return Path(train(config).checkpoint)


# ---------------------------------------------------------------------- Omniglot-layout zips
def _stroke_points(rng: np.random.Generator, size: int) -> list[np.ndarray]:
    """A character's prototype: 2-4 strokes, each a polyline of 3-5 points (pixels, 0..size)."""
    strokes = []
    for _ in range(int(rng.integers(2, 5))):
        start = rng.uniform(0.25, 0.75, size=2)
        steps = rng.normal(0.0, 0.16, size=(int(rng.integers(2, 5)), 2))
        points = np.clip(start + np.cumsum(np.vstack([[0.0, 0.0], steps]), axis=0), 0.15, 0.85)
        strokes.append(points * size)
    return strokes


def _drawing_png(strokes: list[np.ndarray], rng: np.random.Generator, size: int) -> bytes:
    """One person's drawing of a character: its strokes with every point jittered, the whole
    shifted a little and a pen width of 3-5 px (at 105 px), as a 1-bit PNG, black on white."""
    scale = size / 105
    shift = rng.uniform(-3.0, 3.0, size=2) * scale
    width = max(1, round(int(rng.integers(3, 6)) * scale))
    image = PIL.Image.new("L", (size, size), 255)
    draw = PIL.ImageDraw.Draw(image)
    for points in strokes:
        moved = points + shift + rng.normal(0.0, 1.5 * scale, size=points.shape)
        draw.line([tuple(p) for p in moved.tolist()], fill=0, width=width, joint="curve")
    out = io.BytesIO()
    image.convert("1", dither=PIL.Image.Dither.NONE).save(out, format="PNG")  # 0 or 255 only
    return out.getvalue()


def make_omniglot_zip(
    path: Path,
    alphabets: dict[str, int],
    drawings: int = 20,
    top: str = "images_background_small1",
    size: int = 105,
    seed: int = 0,
) -> Path:
    """Write ``path``: a zip in Omniglot's layout, with learnable made-up characters.

    Entries are ``<top>/<Alphabet>/characterNN/<id>_<drawer>.png`` (NN and drawer from 01, a
    4-digit id per character, e.g. ``0709_01.png``; ``top=""`` leaves the top folder out), plus
    the folder entries, as in the real ``images_background_small*.zip``. Every drawing is a
    ``size`` x ``size`` 1-bit PNG, black strokes on white. A character (a class) is 2-4 random
    strokes drawn from ``(seed, alphabet, character)``; each of its ``drawings`` is that shape
    jittered, shifted and drawn with another pen width, so classes are told apart well above
    chance. The bytes depend only on the arguments: the same alphabet in two zips is byte for
    byte the same, as Greek and Latin are in the two real minimal sets.

    Args:
        path: the zip to write (its folder must exist).
        alphabets: characters per alphabet, e.g. ``{"Greek": 5, "Latin": 4}``.
        drawings: drawings (drawers) per character.
        top: the zip's top folder.
        size: the drawings' height and width in pixels (the real ones are 105).
        seed: changes every shape and drawing.

    Returns:
        ``path``.

    Example: ``make_omniglot_zip(tmp_path / "few.zip", {"Greek": 3}, drawings=4)``
    """
    when = (2015, 10, 20, 14, 47, 56)  # fixed, so that the zip's bytes are reproducible too

    def folder(name: str) -> None:
        archive.writestr(zipfile.ZipInfo(name + "/", when), b"")

    with zipfile.ZipFile(path, "w") as archive:
        if top:
            folder(top)
        for alphabet in sorted(alphabets):
            key = zlib.crc32(alphabet.encode())  # stable across runs, unlike hash()
            where = f"{top}/{alphabet}" if top else alphabet
            folder(where)
            for character in range(1, alphabets[alphabet] + 1):
                strokes = _stroke_points(np.random.default_rng([seed, key, character]), size)
                number = (key % 90 + 1) * 100 + character  # like the real ids: 0108, 0394, ...
                folder(f"{where}/character{character:02d}")
                for drawer in range(1, drawings + 1):
                    rng = np.random.default_rng([seed, key, character, drawer])
                    info = zipfile.ZipInfo(
                        f"{where}/character{character:02d}/{number:04d}_{drawer:02d}.png", when
                    )
                    info.compress_type = zipfile.ZIP_DEFLATED
                    archive.writestr(info, _drawing_png(strokes, rng, size))
    return path


class OmniglotZips(NamedTuple):
    """Two Omniglot "minimal" background sets, made up (``omniglot_zips``) or the real ones."""

    small1: Path
    small2: Path
    root: Path
    """The folder holding both zips (and no other zip)."""
    alphabets1: dict[str, int]
    """Characters per alphabet in ``small1``."""
    alphabets2: dict[str, int]
    """Characters per alphabet in ``small2``."""
    drawings: int = 20
    """Drawings per character."""

    def characters(self, alphabet: str) -> int:
        """How many characters ``alphabet`` has (in whichever zip holds it)."""
        return {**self.alphabets1, **self.alphabets2}[alphabet]

    def spec(self, alphabet: str) -> str:
        """The ``omniglot:`` dataset spec of ``alphabet``, from small1 if it holds it."""
        return f"omniglot:{self.small1 if alphabet in self.alphabets1 else self.small2}@{alphabet}"


# The real sets: where they are (GENAUG_OMNIGLOT_ROOT, else ../shared/data/omniglot beside the
# repository, absent in a plain clone) and their counts, from that folder's README.
REAL_OMNIGLOT_ROOT = Path(
    os.environ.get(
        "GENAUG_OMNIGLOT_ROOT",
        Path(__file__).resolve().parents[2] / "shared" / "data" / "omniglot",
    )
)
REAL_OMNIGLOT = OmniglotZips(
    small1=REAL_OMNIGLOT_ROOT / "images_background_small1.zip",
    small2=REAL_OMNIGLOT_ROOT / "images_background_small2.zip",
    root=REAL_OMNIGLOT_ROOT,
    alphabets1={"Balinese": 24, "Early_Aramaic": 22, "Greek": 24, "Korean": 40, "Latin": 26},
    alphabets2={
        "Greek": 24,
        "Japanese_(katakana)": 47,
        "Latin": 26,
        "Sanskrit": 42,
        "Tagalog": 17,
    },
)


# ---------------------------------------------------------------------- a base classifier
def make_classifier_folder(out: Any, base: Any, steps: int = 30, batch_size: int = 16) -> Any:
    """Train a timm ``test_resnet`` on the images of ``base`` (an ImageDataset) for ``steps``
    steps of ``batch_size``, as ``genaug bench`` trains its base classifier (no augmentation),
    into ``out/pretrained/base-classifier`` (classifier.safetensors + classifier.json); returns
    that folder (a Path). A bench of the same settings takes it with ``pretrained_from=out``."""
    from pathlib import Path

    from genaug.bench import BenchConfig
    from genaug.bench.learn.base_classifier import base_folder, ensure_base_classifier

    config = BenchConfig(
        data=str(base.description.get("spec", "made-up")),
        image_size=base.image_size,
        model="test_resnet",
        batch_size=batch_size,
        pretrain_data=str(base.description.get("spec", "made-up")),
        pretrain_steps=steps,
        pretrain_augment="none",
        device="cpu",
        out=str(out),
    )
    ensure_base_classifier(config, base, Path(out))
    return base_folder(out)


# ---------------------------------------------------------------------- every adapter, one way
def adapter_classes() -> dict[str, type]:
    """Every generative transform a user builds, by short name (optional extras if installed)."""
    from genaug.transforms.torchvision import TorchvisionGenerativeAugment

    classes = {
        "core": GenerativeAugment,
        "mix": GenerativeMix,
        "collate": GenerativeCollate,
        "torchvision": TorchvisionGenerativeAugment,
    }
    with contextlib.suppress(ImportError):
        from genaug.transforms.albumentations import AlbumentationsGenerativeAugment

        classes["albumentations"] = AlbumentationsGenerativeAugment
    with contextlib.suppress(ImportError):
        from genaug.transforms.kornia import KorniaGenerativeAugment

        classes["kornia"] = KorniaGenerativeAugment
    return classes


def augment_one(transform: Any, image: Tensor, label: int) -> Tensor:
    """``transform`` on one uint8 image (C, H, W) of class ``label``, called the way its host
    calls it; the result as float (C, H, W) in [0, 1]."""
    name = type(transform).__name__
    labels = torch.tensor([label])
    if name == "GenerativeAugment":
        out = transform(image[None], labels)[0]
    elif name == "GenerativeMix":
        out = transform(image[None], labels)[0][0]
    elif name == "GenerativeCollate":
        out = transform([(image, label)])[0][0]
    elif name == "TorchvisionGenerativeAugment":
        out = transform((image, label))[0]
    elif name == "AlbumentationsGenerativeAugment":
        hwc = transform(image=image.permute(1, 2, 0).numpy(), label=label)["image"]
        out = torch.from_numpy(hwc).permute(2, 0, 1)
    else:  # Kornia: float batches
        return transform(image[None].float() / 255, labels)[0]
    return out.float() / 255


class AdapterSamples(torch.utils.data.Dataset):
    """Item ``i``: every transform of ``transforms`` (name -> transform) applied to image ``i``
    (of class ``i % 10``), as a dict of float images: one DataLoader exercises them all."""

    def __init__(self, transforms: dict[str, Any], n: int = 4) -> None:
        self.transforms, self.n = transforms, n

    def __len__(self) -> int:
        return self.n

    def image(self, index: int) -> Tensor:
        return _images(self.n, 1, 16, torch.uint8)[index]

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        image = self.image(index)
        return {
            name: augment_one(transform, image, index % 10)
            for name, transform in self.transforms.items()
        }


def tiny_extractor_spec(size: int = 16) -> str:
    """A registered in-memory extractor (8 features of 1-channel ``size`` px images), for a
    feature-space family (the hallucinator) to train on; the same weights every call."""
    from genaug.models import FeatureExtractor

    torch.manual_seed(12345)
    module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(size * size, 8))
    return FeatureExtractor(module, image_size=size, channels=1).spec()
