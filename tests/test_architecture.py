"""The architecture in pyproject.toml's import-linter contracts holds (layers, no cycles, no
private imports across packages), and every registered family and mode is covered."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    lint = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    if not Path(lint).exists():
        pytest.fail("lint-imports is missing; install the dev extra: pip install -e '.[dev]'.")
    done = subprocess.run(
        [lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


# ------------------------------------------------------------------ completeness guards
# (The mode guard sits beside the shared transform check it guards:
# tests/test_transforms_core.py::test_every_mode_is_in_the_shared_check, which fails when a mode
# in genaug.transforms.checks.MODES is run by no (host, test_ generator) case of
# check_transform.)
def families_without_test_builder(families: list[str], test_builders: list[str]) -> list[str]:
    """The families no ``test_`` builder of the registry builds (each built tiny, once); a
    user's pretrained pipeline (loaded from a folder, tests/test_pipeline.py) needs none."""
    from genaug.models import create_generator
    from genaug.models.base import family_class, list_families

    covered = {create_generator(name, image_size=16).family for name in test_builders}
    loaded = {name for name in list_families() if family_class(name).pretrained}
    return sorted(set(families) - covered - loaded)


def test_every_family_has_a_test_builder():
    """Completeness guard: a family in list_families() without a tiny ``test_`` builder fails
    here (the contract tests of every family run on the ``test_`` builders)."""
    from genaug.models import list_families, list_generators

    families, builders = list_families(), list_generators("test_")
    assert families and builders
    missing = families_without_test_builder(families, builders)
    assert not missing, (
        f"families without a test_ builder: {', '.join(missing)}; register a tiny test_<family> "
        "builder in the family's module."
    )


def test_the_family_guard_names_a_family_without_a_test_builder():
    from genaug.models import list_families, list_generators

    builders = list_generators("test_")
    assert families_without_test_builder([*list_families(), "made_up"], builders) == ["made_up"]
    dropped = [b for b in builders if b != "test_vae"]
    assert families_without_test_builder(list_families(), dropped) == ["vae"]
