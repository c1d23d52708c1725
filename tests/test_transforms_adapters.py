"""Every adapter, one contract: the same settings after the generator, the same replay attribute,
``nn.Module.apply`` in a model tree, each kind of ``generator=`` in fork and spawn workers, and
a save/load round trip where the host has one. Parametrised over the adapters."""

from __future__ import annotations

import dataclasses
import inspect
import io
import pickle

import numpy as np
import pytest
import torch
from helpers import (  # noqa: F401
    HOSTS,
    AdapterSamples,
    adapter_classes,
    as_array,
    augment_one,
    make_generator,
    single_thread,
)
from torch import nn
from torch.utils.data import DataLoader

from genaug import GenaugError, GenerativeAugment, GenerativeMix, load_generator, save_generator
from genaug.transforms import SETTING_NAMES, AugmentSettings, NeighbourWalk

ADAPTERS = adapter_classes()
MODULES = [name for name, cls in ADAPTERS.items() if issubclass(cls, nn.Module)]
KINDS = ["path", "loaded", "memory"]  # what generator= is: a checkpoint path, load_generator's
# model (it remembers its path), a generator that lives only in memory


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_generator(make_generator(num_classes=10), tmp_path_factory.mktemp("ckpt") / "vae")


def generator_of(kind: str, checkpoint):
    if kind == "path":
        return str(checkpoint)
    if kind == "loaded":
        return load_generator(checkpoint)
    return make_generator(num_classes=10)


def build(name: str, generator, **settings):
    """An adapter with p=1 (every image changes); seeded where the adapter owns a stream."""
    settings.setdefault("p", 1.0)
    if name in ("core", "mix", "collate", "torchvision"):
        settings.setdefault("seed", 0)
    return ADAPTERS[name](generator, **settings)


# ---------------------------------------------------------------------- one spelling
@pytest.mark.parametrize("name", ADAPTERS)
def test_every_adapter_takes_the_same_settings_after_the_generator(name):
    parameters = list(inspect.signature(ADAPTERS[name]).parameters.values())
    assert parameters[0].name == "generator"
    assert parameters[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    shared = parameters[1 : 1 + len(SETTING_NAMES)]
    assert tuple(p.name for p in shared) == SETTING_NAMES
    defaults = {field.name: field.default for field in dataclasses.fields(AugmentSettings)}
    assert {p.name: p.default for p in shared} == defaults
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters[1:])


@pytest.mark.parametrize("name", ADAPTERS)
def test_settings_are_checked_in_one_place_and_read_back_resolved(name):
    with pytest.raises(GenaugError, match=r"p must lie in \[0, 1\], got 1.5"):
        build(name, make_generator(), p=1.5)
    with pytest.raises(GenaugError, match="precision must be one of auto, float32, bfloat16"):
        build(name, make_generator(), precision="half")
    with pytest.raises(GenaugError, match=r"no encoder, so it cannot do mode 'perturb'"):
        build(name, make_generator("test_gan"), mode="perturb")
    aug = build(name, make_generator(), p=0.25, strength=0.5, precision="float32")
    assert aug.settings == AugmentSettings("perturb", 0.25, 0.5, precision="float32")
    assert (aug.mode, aug.p, aug.strength, aug.precision) == ("perturb", 0.25, 0.5, "float32")
    aug.p = 0.75  # every adapter's p is settable, and checked
    assert aug.settings.p == 0.75
    with pytest.raises(GenaugError, match=r"p must lie in \[0, 1\]"):
        aug.p = 2.0


def test_a_generator_of_features_is_refused_by_every_adapter(tmp_path):
    hallucinator = make_generator("test_hallucinator")
    path = save_generator(hallucinator, tmp_path / "hallucinator")
    for name in ADAPTERS:
        for generator in (hallucinator, path):
            with pytest.raises(GenaugError, match="hallucinator generator makes features, not"):
                build(name, generator)


# ---------------------------------------------------------------------- replay
@pytest.mark.parametrize("host", HOSTS)
def test_last_params_replay_the_last_call_of_every_adapter(host):
    driver = HOSTS[host]
    transform = driver.build(make_generator(), "perturb", 1.0, 0)
    sample = driver.sample(4, 1, 16, torch.float32, 10)
    first = as_array(driver.image_of(driver.call(transform, sample, None)))
    params = transform.last_params
    assert params  # the one name every adapter keeps them under
    again = as_array(driver.image_of(driver.call(transform, sample, params)))
    assert np.array_equal(again, first)
    other = as_array(driver.image_of(driver.call(transform, sample, None)))
    assert not np.array_equal(other, first)  # a fresh draw differs


# ---------------------------------------------------------------------- nn.Module.apply
def init_fn(module: nn.Module) -> None:
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.zeros_(module.weight)


@pytest.mark.parametrize("name", MODULES)
def test_module_apply_walks_a_tree_holding_each_adapter_and_spares_the_generator(name):
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 14 * 14, 10))
    aug = build(name, make_generator())
    before = {k: v.clone() for k, v in aug.generator.state_dict().items()}
    tree = nn.Sequential(aug, model)
    assert tree.apply(init_fn) is tree
    assert not model[0].weight.any()  # the model was initialised
    after = aug.generator.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the generator was not


def test_the_issue_example_generative_mix_in_a_sequential():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())
    nn.Sequential(GenerativeMix(make_generator(), p=0.5), model).apply(init_fn)
    assert not model[0].weight.any()


def test_the_old_apply_call_transforms_with_a_deprecation_warning(tmp_path):
    aug = GenerativeAugment(make_generator(), p=1.0, seed=0)
    images, labels = torch.rand(3, 1, 16, 16), torch.arange(3)
    params = aug.make_params(images, labels)
    with pytest.warns(DeprecationWarning, match=r"now transform_batch\(batch, labels, params\)"):
        old = aug.apply(images, labels, params)
    assert torch.equal(old, aug.transform_batch(images, labels, params))
    assert torch.equal(old, aug(images, labels, params=params))
    with pytest.warns(DeprecationWarning, match=r"pass the path as the generator"):
        GenerativeMix.from_checkpoint(save_generator(make_generator(), tmp_path / "vae"))


# ---------------------------------------------------------------------- generator= and pickling
class NoTensors(pickle.Pickler):
    """A pickler that refuses tensors and storages: what torch's DataLoader would send as
    shared-memory file descriptors (``bad value(s) in fds_to_keep`` under spawn)."""

    def reducer_override(self, obj):
        if isinstance(obj, (torch.Tensor, torch.UntypedStorage, torch.TypedStorage)):
            raise AssertionError(f"a {type(obj).__name__} would travel as shared memory")
        return NotImplemented


def plain_pickle(obj) -> bytes:
    buffer = io.BytesIO()
    NoTensors(buffer).dump(obj)
    return buffer.getvalue()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", ADAPTERS)
def test_each_kind_of_generator_pickles_as_plain_data_and_replays(name, kind, checkpoint):
    aug = build(name, generator_of(kind, checkpoint))
    image = AdapterSamples({}).image(0)
    out = augment_one(aug, image, 3)  # also builds what the adapter builds on first use
    blob = plain_pickle(aug)
    if kind != "memory":  # by path: the weights stay behind
        assert len(blob) < 20_000 < len(pickle.dumps(make_generator().state_dict()))
    clone = pickle.loads(blob)
    if isinstance(aug.generator, str):  # Albumentations keeps its init argument: the path
        assert clone.generator == aug.generator
    else:
        assert clone.generator is not aug.generator
        reference = dict(aug.generator.state_dict())
        assert all(torch.equal(v, reference[k]) for k, v in clone.generator.state_dict().items())
    assert augment_one(clone, image, 3).shape == out.shape == image.shape


def test_a_loaded_generator_changed_since_travels_as_its_weights(checkpoint):
    model = load_generator(checkpoint)
    aug = GenerativeAugment(model, p=1.0, seed=0)
    assert len(plain_pickle(aug)) < 20_000  # still the checkpoint: by path
    with torch.no_grad():
        next(model.parameters()).mul_(2.0)
    clone = pickle.loads(plain_pickle(aug))  # no longer the checkpoint: by its weights
    assert torch.equal(next(clone.generator.parameters()), next(model.parameters()))


def test_a_tensor_bank_and_normalisation_pickle_as_plain_data():
    bank = torch.rand(12, 1, 16, 16)
    model = make_generator(num_classes=0)  # a bank of unlabelled images
    aug = GenerativeAugment(model, mode="neighbour", neighbours=bank, p=1.0, seed=0)
    mix = GenerativeMix(make_generator(), p=1.0, seed=0, mean=(0.5,), std=(0.25,))
    images, labels = torch.rand(3, 1, 16, 16), torch.arange(3)
    out = aug(images)
    clone = pickle.loads(plain_pickle(aug))
    assert torch.equal(clone(images, params=aug.last_params), out)
    assert "12, 1, 16, 16" in repr(clone.settings.neighbours)  # the images stayed behind
    assert isinstance(clone.settings.neighbours, NeighbourWalk)
    normalised, _ = mix((images - 0.5) / 0.25, labels)
    again, _ = pickle.loads(plain_pickle(mix))(
        (images - 0.5) / 0.25, labels, params=mix.last_params
    )
    assert torch.equal(again, normalised)


def test_a_genaug_transform_lends_its_generator(checkpoint):
    mix = GenerativeMix(checkpoint, p=1.0, seed=0)
    for cls in ADAPTERS.values():
        assert cls(mix, p=1.0).generator is mix.generator or cls.__name__.startswith("Album")
    with pytest.raises(GenaugError, match=r"needs a genaug Generator.*got torch\._C\.Generator"):
        GenerativeAugment(torch.Generator())


# ---------------------------------------------------------------------- workers
def _samples(checkpoint) -> AdapterSamples:
    return AdapterSamples(
        {
            f"{name}-{kind}": build(name, generator_of(kind, checkpoint))
            for name in ADAPTERS
            for kind in KINDS
        }
    )


def _load(data: AdapterSamples, context: str) -> list[dict[str, torch.Tensor]]:
    loader = DataLoader(
        data,
        batch_size=None,
        num_workers=2,
        multiprocessing_context=context,
        generator=torch.Generator().manual_seed(0),
    )
    return list(loader)


def test_every_adapter_and_kind_of_generator_runs_in_forked_workers(checkpoint):
    data = _samples(checkpoint)
    out = _load(data, "fork")
    assert len(out) == len(data)
    for index, item in enumerate(out):
        image = data.image(index).float() / 255
        for name, result in item.items():
            assert result.shape == image.shape, name
            assert not torch.equal(result, image), name  # p=1: every image changed


@pytest.mark.slow
def test_spawned_workers_give_what_forked_ones_give(checkpoint):
    """Under spawn every transform is pickled: by path, or as plain bytes (never through
    shared-memory file descriptors), and the workers' draws repeat those of forked workers."""
    data = _samples(checkpoint)
    forked, spawned = _load(data, "fork"), _load(data, "spawn")
    for a, b in zip(forked, spawned):
        assert a.keys() == b.keys()
        for name in a:
            assert torch.equal(a[name], b[name]), name
