"""GenerativeAugment and its kernels; the shared check over every host x family x mode."""

from __future__ import annotations

import contextlib
import importlib
import inspect
import pickle
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from helpers import HOSTS, check_transform, family_modes, make_generator, single_thread  # noqa: F401
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import genaug.transforms as transforms_package
from genaug import GenaugError, GenerativeAugment, list_generators, save_generator
from genaug.models import holder as _holder
from genaug.models.base import Encoding, Generator
from genaug.transforms import core
from genaug.transforms import functional as F
from genaug.transforms.core import resolve_mode

# The families that make images (a hallucinator makes features: every transform refuses it).
TEST_MODELS = [n for n in list_generators("test_*") if not make_generator(n).feature_space]


class DecoderOnly(Generator):
    """A minimal generator without an encoder (like a GAN), unregistered (no family name)."""

    def __init__(self, num_classes: int = 0, channels: int = 1, image_size: int = 16):
        super().__init__(
            image_size=image_size, channels=channels, num_classes=num_classes, latent_dim=4
        )
        self.net = nn.Linear(4 + num_classes, channels * image_size * image_size)

    def decode(self, z, labels=None):
        if labels is not None:
            z = torch.cat([z, nn.functional.one_hot(labels, self.num_classes).float()], 1)
        return torch.sigmoid(self.net(z)).view(-1, self.channels, self.image_size, self.image_size)


# ---------------------------------------------------------------------- the shared check
CASES = [
    (host, name, mode, dtype)
    for host in HOSTS
    for name in TEST_MODELS
    for mode in family_modes(make_generator(name))
    for dtype in (torch.uint8, torch.float32)
    if HOSTS[host].uint8 or dtype != torch.uint8
]


@pytest.mark.parametrize(("host", "name", "mode", "dtype"), CASES)
def test_check_transform_every_host_family_mode(host, name, mode, dtype):
    driver = HOSTS[host]
    p = 1.0 if host == "albumentations" else 0.5  # Albumentations draws p per call, not per image
    transform = driver.build(make_generator(name), mode, p, 0)
    torch.manual_seed(0)  # Kornia draws from torch's global RNG, which building a generator moved
    channels = 3 if dtype == torch.uint8 else 1  # RGB input into a gray generator, and gray
    sample = driver.sample(6, channels, 12, dtype, 10)  # 12 px: resized to 16 and back
    out = check_transform(driver, transform, sample)
    changed = not np.array_equal(
        np.asarray(driver.image_of(out)), np.asarray(driver.image_of(sample))
    )
    assert changed, "the transform left every image as it was"


def test_every_mode_is_in_the_shared_check():
    """Completeness guard: a mode that no test generator runs through check_transform fails."""
    from genaug.transforms.checks import MODES

    checked = {mode for _, _, mode, _ in CASES}
    assert not set(MODES) - checked, f"modes without a shared check: {set(MODES) - checked}"


def test_every_exported_transform_has_a_host():
    """Completeness guard: an exported transform without a check_transform host fails here."""
    import genaug.transforms.torchvision as tv_module

    modules = [transforms_package, tv_module]
    for optional in ("albumentations", "kornia"):
        with contextlib.suppress(ImportError):
            modules.append(importlib.import_module(f"genaug.transforms.{optional}"))
    exported = {
        getattr(module, name)
        for module in modules
        for name in module.__all__
        if inspect.isclass(getattr(module, name))
        and hasattr(getattr(module, name), "forward") | hasattr(getattr(module, name), "apply")
        and not issubclass(getattr(module, name), Warning)
    }
    covered = {host.transform_class for host in HOSTS.values()}
    assert exported, "no transform found"
    missing = sorted(cls.__name__ for cls in exported - covered)
    assert not missing, f"exported transforms without a check_transform host: {missing}"


# ---------------------------------------------------------------------- modes
@pytest.mark.parametrize("name", TEST_MODELS)
def test_auto_picks_the_best_mode_the_family_supports(name):
    model = make_generator(name)
    expected = "perturb" if model.has_encoder else "resample"
    if model.varies_images:  # image-conditioned, or diffusion (SDEdit keeps the image's class)
        expected = "vary"
    assert GenerativeAugment(model).mode == expected


def test_a_mode_the_generator_cannot_do_is_refused_naming_what_it_can():
    with pytest.raises(GenaugError, match="no encoder.*'perturb'.*can do resample"):
        resolve_mode("perturb", has_encoder=False, conditional=True, family="gan")
    with pytest.raises(GenaugError, match="cannot do mode 'interpolate'.*resample"):
        GenerativeAugment(DecoderOnly(num_classes=3), mode="interpolate")
    with pytest.raises(GenaugError, match="Unknown generative mode 'blend'.*perturb"):
        GenerativeAugment(make_generator(), mode="blend")
    assert GenerativeAugment(DecoderOnly(num_classes=3)).mode == "resample"


def test_unconditional_resample_is_for_unlabelled_images_only():
    aug = GenerativeAugment(DecoderOnly(num_classes=0), p=1.0, seed=0)
    assert aug.mode == "resample"
    out = aug(torch.rand(3, 1, 16, 16))
    assert out.shape == (3, 1, 16, 16)
    with pytest.raises(GenaugError, match="unconditional.*cannot resample a labelled image"):
        aug(torch.rand(3, 1, 16, 16), torch.tensor([0, 1, 2]))


@pytest.mark.parametrize("name", TEST_MODELS)
def test_p_is_drawn_per_image(name):
    model = make_generator(name)
    images, labels = torch.rand(64, 1, 16, 16), torch.arange(64) % 10
    assert torch.equal(GenerativeAugment(model, p=0.0)(images, labels), images)
    changed = (GenerativeAugment(model, p=1.0, seed=0)(images, labels) != images).flatten(1).any(1)
    assert changed.all()
    aug = GenerativeAugment(model, p=0.5, seed=0)
    out = aug(images, labels)
    applied = aug.last_params["apply"]
    assert 10 < int(applied.sum()) < 54
    assert torch.equal(out[~applied], images[~applied])  # skipped images are untouched


@pytest.mark.parametrize("name", TEST_MODELS)
def test_each_image_gets_its_own_noise(name):
    model = make_generator(name)
    aug = GenerativeAugment(model, mode=family_modes(model)[0], p=1.0, seed=0)
    image = torch.rand(1, 1, 16, 16)
    out = aug(image.repeat(4, 1, 1, 1), torch.full((4,), 3))
    assert not torch.equal(out[0], out[1]) and not torch.equal(out[2], out[3])


def test_seed_repeats_and_other_seeds_differ():
    model = make_generator()
    images, labels = torch.rand(8, 1, 16, 16), torch.arange(8)
    a = GenerativeAugment(model, p=1.0, seed=7)(images, labels)
    b = GenerativeAugment(model, p=1.0, seed=7)(images, labels)
    c = GenerativeAugment(model, p=1.0, seed=8)(images, labels)
    assert torch.equal(a, b) and not torch.equal(a, c)
    torch.manual_seed(3)
    d = GenerativeAugment(model, p=1.0)(images, labels)  # seed=None: from torch's global RNG
    torch.manual_seed(3)
    e = GenerativeAugment(model, p=1.0)(images, labels)
    assert torch.equal(d, e)


def test_perturb_strength_zero_reconstructs_and_one_is_a_posterior_draw():
    model = make_generator()
    images, labels = torch.rand(4, 1, 16, 16), torch.arange(4)
    aug = GenerativeAugment(model, mode="perturb", p=1.0, strength=0.0, seed=0)
    with torch.no_grad():
        encoding = model.encode(images, labels)
        reconstruction = model.decode(encoding.mean, labels)
        assert torch.allclose(aug(images, labels), reconstruction, atol=1e-6)
        aug = GenerativeAugment(model, mode="perturb", p=1.0, strength=1.0, seed=0)
        out = aug(images, labels)
        noise = aug.last_params["noise"]
        expected = model.decode(encoding.mean + encoding.scale * noise, labels)
        assert torch.allclose(out, expected, atol=1e-6)


def test_resample_draws_the_image_class_and_strength_is_temperature():
    model = make_generator()
    aug = GenerativeAugment(model, mode="resample", p=1.0, strength=0.0, seed=0)
    out = aug(torch.rand(3, 1, 16, 16), torch.tensor([4, 4, 5]))
    assert torch.allclose(out[0], out[1], atol=1e-6)  # temperature 0: the class prototype
    assert not torch.allclose(out[0], out[2], atol=1e-3)
    aug = GenerativeAugment(model, mode="resample", p=1.0, strength=0.5, seed=0)
    out = aug(torch.rand(2, 1, 16, 16), torch.tensor([4, 7]))
    with torch.no_grad():
        expected = model.decode(0.5 * aug.last_params["noise"], torch.tensor([4, 7]))
    assert torch.allclose(out, expected, atol=1e-6)


def test_interpolate_walks_toward_a_same_class_partner():
    model = make_generator()
    images, labels = torch.rand(6, 1, 16, 16), torch.tensor([1, 1, 1, 2, 2, 3])
    aug = GenerativeAugment(model, mode="interpolate", p=1.0, seed=0)
    out = aug(images, labels)
    params = aug.last_params
    partner, mix = params["partner"], params["mix"]
    assert torch.equal(labels[partner], labels)
    assert (partner[:5] != torch.arange(5)).all() and partner[5] == 5  # class 3 has no partner
    with torch.no_grad():
        encoding = model.encode(images, labels)
        t = (0.5 * mix).unsqueeze(1)
        z = encoding.mean + t * (encoding.mean[partner] - encoding.mean)
        z[5] = encoding.mean[5] + encoding.scale[5] * params["noise"][5]  # perturbed instead
        assert torch.allclose(out, model.decode(z, labels), atol=1e-5)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=40), st.integers(0, 10_000))
def test_partners_are_other_images_of_the_same_class(classes, seed):
    classes = torch.tensor(classes)
    rng = torch.Generator().manual_seed(seed)
    partner = F.pick_partners(classes, len(classes), rng, torch.device("cpu"))
    counts = torch.bincount(classes)
    for i, j in enumerate(partner.tolist()):
        assert classes[j] == classes[i]
        assert (j != i) == (counts[classes[i]] > 1)
    assert torch.equal(torch.sort(partner).values, torch.arange(len(classes)))  # a permutation


# ---------------------------------------------------------------------- sizes, dtypes, devices
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 4),
    channels=st.sampled_from([1, 3]),
    height=st.integers(1, 40),
    width=st.integers(1, 40),
    dtype=st.sampled_from([torch.uint8, torch.float32, torch.float64, torch.bfloat16]),
    gen_channels=st.sampled_from([1, 3]),
)
def test_output_keeps_shape_dtype_and_channels(n, channels, height, width, dtype, gen_channels):
    model = _models(gen_channels)
    images = torch.rand(n, channels, height, width, generator=torch.Generator().manual_seed(n))
    images = (images * 255).to(torch.uint8) if dtype == torch.uint8 else images.to(dtype)
    original = images.clone()
    aug = GenerativeAugment(model, p=0.7, seed=n)
    out = aug(images, torch.arange(n) % 10)
    assert out.shape == images.shape and out.dtype == images.dtype
    assert out.device == images.device
    assert torch.equal(images, original)
    skipped = ~aug.last_params["apply"]
    assert torch.equal(out[skipped], images[skipped])
    assert float(out.float().min()) >= 0 and float(out.float().max()) <= (
        255 if dtype == torch.uint8 else 1
    )


_MODEL_CACHE: dict[int, Generator] = {}


def _models(channels: int) -> Generator:
    if channels not in _MODEL_CACHE:
        _MODEL_CACHE[channels] = make_generator(channels=channels)
    return _MODEL_CACHE[channels]


def test_moves_with_to_and_keeps_the_generator_in_eval_mode():
    aug = GenerativeAugment(make_generator(), p=1.0, seed=0).to("cpu", torch.float32)
    holder = nn.Sequential(aug)
    holder.train()
    assert not aug.generator.training
    assert aug.generator.device.type == "cpu"


def test_a_worker_uses_a_cpu_copy_when_the_generator_lives_elsewhere(monkeypatch):
    """The fork + CUDA case, without CUDA: an off-CPU model is never touched inside a worker."""
    model = make_generator()
    reference = GenerativeAugment(model, p=1.0, seed=0)
    images, labels = torch.rand(3, 1, 16, 16), torch.arange(3)
    expected = reference(images, labels)
    aug = GenerativeAugment(make_generator(), p=1.0, seed=0).to("meta")
    assert aug.generator.device.type == "meta"
    info = SimpleNamespace(id=0, seed=0, num_workers=2)
    monkeypatch.setattr(_holder, "get_worker_info", lambda: info)
    monkeypatch.setattr(core, "get_worker_info", lambda: info)
    copy = aug.holder.current()
    assert copy is not aug.generator and copy.device.type == "cpu"
    assert aug.holder.current() is copy  # built once per worker
    out = aug(images, labels, params=reference.last_params)
    assert torch.allclose(out, expected)
    pickled = pickle.loads(pickle.dumps(aug))  # spawn: CPU weights travel, never meta/CUDA ones
    assert pickled.generator.device.type == "cpu"


def test_workers_draw_different_streams_that_repeat(monkeypatch):
    aug = GenerativeAugment(make_generator(), p=1.0, seed=5)
    images = torch.rand(2, 1, 16, 16)

    def draw(worker_seed):
        info = SimpleNamespace(id=worker_seed % 2, seed=worker_seed, num_workers=2)
        monkeypatch.setattr(core, "get_worker_info", lambda: info)
        aug._worker_rng = None
        return aug.make_params(images, torch.tensor([0, 1]))["noise"]

    assert torch.equal(draw(100), draw(100))
    assert not torch.equal(draw(100), draw(101))


def test_built_from_a_path_it_pickles_the_path_not_the_weights(tmp_path):
    model = make_generator(num_classes=10)
    path = save_generator(model, tmp_path / "ckpt")
    aug = GenerativeAugment(path, p=1.0, seed=0)
    assert aug.holder.path == str(path)
    blob = pickle.dumps(aug)
    assert len(blob) < 20_000 < len(pickle.dumps(GenerativeAugment(model)))
    images, labels = torch.rand(3, 1, 16, 16), torch.arange(3)
    out = aug(images, labels)
    assert torch.equal(pickle.loads(blob)(images, labels, params=aug.last_params), out)


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("images", "labels", "match"),
    [
        (torch.rand(2, 4, 16, 16), [0, 1], r"4 channels.*expected 1 \(gray\) or 3 \(RGB\)"),
        (torch.rand(2, 16, 16, 3), [0, 1], r"16 channels.*permute HWC to CHW"),
        (torch.full((2, 1, 8, 8), float("nan")), [0, 1], "NaN or infinite pixel values"),
        (torch.full((2, 1, 8, 8), float("inf")), [0, 1], "NaN or infinite pixel values"),
        (torch.rand(2, 1, 8, 8) * 255, [0, 1], r"expects float images in \[0, 1\].*divide"),
        (torch.rand(2, 1, 8, 8) - 0.5, [0, 1], "before Normalize"),
        (torch.rand(2, 1, 8, 8), [0, 10], r"labels from 0 to 10.*classes 0 to 9"),
        (torch.rand(2, 1, 8, 8), [-1, 3], r"labels from -1 to 3"),
        (torch.rand(2, 1, 8, 8), [1, 2, 3], "3 labels for 2 images"),
        (torch.rand(2, 1, 8, 8), [0.5, 1.5], "integer class indices"),
        (torch.rand(0, 1, 8, 8), [], r"empty batch \(0 images\)"),
        (torch.rand(1, 8, 8), [0], r"shaped \(B, C, H, W\).*unsqueeze"),
        (np.zeros((1, 1, 8, 8), np.float32), [0], "expects a torch.Tensor.*got ndarray"),
        ([[0.5]], [0], "expects a torch.Tensor.*got list"),
        (torch.ones(1, 1, 8, 8, dtype=torch.int64), [0], "dtype torch.int64; expected uint8"),
    ],
)
def test_bad_input_is_a_clear_error(images, labels, match):
    aug = GenerativeAugment(make_generator(num_classes=10), p=1.0, seed=0)
    labels = None if labels is None else torch.tensor(labels)
    with pytest.raises(GenaugError, match=match):
        aug(images, labels)


def test_bad_settings_and_params_are_clear_errors():
    model = make_generator()
    for kwargs, match in [
        ({"p": 1.5}, r"p must lie in \[0, 1\]"),
        ({"strength": -0.1}, r"strength must lie in \[0, 1\]"),
        ({"strength": "high"}, "strength must be a number"),
        ({"seed": 1.5}, "seed must be an integer"),
    ]:
        with pytest.raises(GenaugError, match=match):
            GenerativeAugment(model, **kwargs)
    with pytest.raises(GenaugError, match="needs a genaug Generator or a checkpoint path"):
        GenerativeAugment(nn.Linear(2, 2))
    aug = GenerativeAugment(model, seed=0)
    params = aug.make_params(torch.rand(3, 1, 16, 16), torch.arange(3))
    with pytest.raises(GenaugError, match="drawn for 3 images but the batch holds 2"):
        aug(torch.rand(2, 1, 16, 16), torch.arange(2), params=params)
    with pytest.raises(GenaugError, match="params must be the dict that make_params returned"):
        aug(torch.rand(2, 1, 16, 16), torch.arange(2), params={"noise": 1})


def test_soft_labels_condition_on_their_strongest_class():
    model = make_generator()
    images = torch.rand(2, 1, 16, 16)
    soft = torch.tensor([[0.0] * 9 + [1.0], [0.7, 0.3] + [0.0] * 8])
    aug = GenerativeAugment(model, p=1.0, seed=0)
    out = aug(images, soft)
    assert torch.equal(aug(images, torch.tensor([9, 0]), params=aug.last_params), out)
    with pytest.raises(GenaugError, match=r"soft labels over 3 classes.*\(B, 10\)"):
        aug(images, torch.rand(2, 3))


def test_encoding_contract_is_what_the_kernels_use():
    """Every family's encode returns mean and scale shaped like the latent (C-GAN: ones)."""
    for name in TEST_MODELS:
        model = make_generator(name)
        if model.has_encoder:
            encoding = model.encode(torch.rand(2, 1, 16, 16), torch.arange(2))
            assert isinstance(encoding, Encoding)
            assert encoding.mean.shape == encoding.scale.shape == (2, model.latent_dim)


# ---------------------------------------------------------------------- speed settings
def test_bfloat16_precision_is_close_to_float32_and_keeps_the_dtype():
    model = make_generator()
    images, labels = torch.rand(8, 1, 20, 20), torch.arange(8)
    exact = GenerativeAugment(model, p=1.0, seed=0, precision="float32")
    fast = GenerativeAugment(model, p=1.0, seed=0, precision="bfloat16")
    reference = exact(images, labels)
    out = fast(images, labels, params=exact.last_params)
    assert out.dtype == torch.float32 and out.shape == images.shape
    assert (out - reference).abs().max() < 0.05
    assert "precision='bfloat16'" in repr(fast)
    with pytest.raises(GenaugError, match="precision must be one of auto, float32, bfloat16"):
        GenerativeAugment(model, precision="half")
    with pytest.raises(GenaugError, match="compile must be True or False"):
        GenerativeAugment(model, compile="yes")


@pytest.mark.slow
def test_compiled_transform_matches_eager_and_pickles():
    model = make_generator()
    images, labels = torch.rand(8, 1, 16, 16), torch.arange(8)
    eager = GenerativeAugment(model, mode="resample", p=1.0, seed=0)
    compiled = GenerativeAugment(model, mode="resample", p=1.0, seed=0, compile=True)
    out = compiled(images, labels)
    assert torch.allclose(out, eager(images, labels, params=compiled.last_params), atol=1e-5)
    clone = pickle.loads(pickle.dumps(compiled))  # compiled code is dropped, rebuilt on use
    assert clone.settings.compile and clone._compiled is None
