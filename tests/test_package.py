"""The package face (genaug/__init__.py): what the README uses is exported, the host adapters
and the training loop load on first use, ``from genaug import *`` works without the optional
extras, and ``list_generators`` takes fnmatch patterns like timm's ``list_models``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import genaug

ROOT = Path(__file__).resolve().parents[1]
# The README shows the torchvision and mixup-slot adapters; docs/augment.md holds the others.
USER_DOCS = (ROOT / "README.md", ROOT / "docs" / "augment.md")
# A README import whose name is spelt otherwise at the top: `genaug.train` is the subpackage.
SPELT_OTHERWISE = {"train": "train_generator"}


def readme_imports() -> set[str]:
    """Every name the user docs' Python blocks import from genaug or its subpackages."""
    text = "\n".join(doc.read_text() for doc in USER_DOCS)
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    names: set[str] = set()
    for block in blocks:
        for found in re.findall(r"^from genaug[\w.]* import ([\w, ]+)$", block, flags=re.M):
            names.update(name.strip() for name in found.split(","))
    return names


def test_what_the_readme_imports_is_exported_at_the_top():
    names = readme_imports()
    assert {"TorchvisionGenerativeAugment", "KorniaGenerativeAugment", "TrainConfig"} <= names
    for name in names:
        exported = SPELT_OTHERWISE.get(name, name)
        assert exported in genaug.__all__, name
        assert getattr(genaug, exported) is not None


def test_every_exported_name_resolves_to_its_home():
    for name in genaug.__all__:
        assert getattr(genaug, name) is not None, name
    from genaug.train import TrainConfig, train
    from genaug.transforms.kornia import KorniaGenerativeAugment
    from genaug.transforms.torchvision import JointTransformDataset

    assert genaug.TrainConfig is TrainConfig and genaug.train_generator is train
    assert genaug.KorniaGenerativeAugment is KorniaGenerativeAugment
    assert genaug.JointTransformDataset is JointTransformDataset
    assert "train_generator" in dir(genaug)


IMPORT_WITHOUT_EXTRAS = """
import sys

class Missing:  # the optional extras, as if not installed
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("albumentations", "kornia"):
            raise ModuleNotFoundError(f"No module named {name!r}")

sys.meta_path.insert(0, Missing())
import genaug

heavy = ("torchvision.transforms.v2", "matplotlib", "genaug.train", "albumentations", "kornia")
assert not [m for m in heavy if m in sys.modules], [m for m in heavy if m in sys.modules]
namespace = {}
exec("from genaug import *", namespace)
assert "GenerativeMix" in namespace and "TorchvisionGenerativeAugment" in namespace
assert "TrainConfig" in namespace and "train_generator" in namespace
assert "AlbumentationsGenerativeAugment" not in namespace
assert "KorniaGenerativeAugment" not in namespace
for name, extra in (("AlbumentationsGenerativeAugment", "albumentations"), ("KorniaGenerativeAugment", "kornia")):
    try:
        getattr(genaug, name)
    except ImportError as exc:
        assert f"pip install genaug[{extra}]" in str(exc), exc
    else:
        raise SystemExit(f"{name} imported without {extra}")
print("ok")
"""


@pytest.mark.slow
def test_import_star_works_without_the_optional_extras():
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_WITHOUT_EXTRAS], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_import_star_gives_the_installed_adapters():
    pytest.importorskip("albumentations")
    pytest.importorskip("kornia")
    namespace: dict = {}
    exec("from genaug import *", namespace)
    assert {"AlbumentationsGenerativeAugment", "KorniaGenerativeAugment"} <= set(namespace)


# ---------------------------------------------------------------------- list_generators
def test_list_generators_takes_fnmatch_patterns_like_timm():
    names = genaug.list_generators()
    vae_like = genaug.list_generators("*vae*")
    assert {"vae", "pairvae", "test_vae"} <= set(vae_like)  # the VAE families and their test_
    assert vae_like == [name for name in names if "vae" in name]
    assert genaug.list_generators("test_*") == [n for n in names if n.startswith("test_")]
    assert genaug.list_generators("[cd]gan") == ["cgan"]
    assert genaug.list_generators("?an") == ["gan"]
    assert genaug.list_generators("vae") == vae_like  # a plain word: names containing it
    assert genaug.list_generators("*nothing*") == []
