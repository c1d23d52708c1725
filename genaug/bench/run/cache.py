"""Generators a bench trains once per (name, source, seed[, shots]) and reuses, resumably.

With ``BenchConfig.pool_per_seed`` False, the ``pool`` source has one generator per name for
all seeds (``NAME-pool-shared``, trained with seed :data:`SHARED_POOL_SEED`).
"""

from __future__ import annotations

import json
import shutil
import time
import zlib
from collections import OrderedDict
from pathlib import Path
from typing import Any

from genaug import distributed
from genaug.bench.plan.config import BenchConfig
from genaug.data import ImageDataset, train_test_split
from genaug.device import resolve_device
from genaug.errors import GenaugError
from genaug.io import atomic_write_json
from genaug.models import load_generator
from genaug.models.base import Generator
from genaug.train.stats import checkpoint_training_facts

__all__ = ["SHARED_POOL_SEED", "GeneratorCache", "stable_seed"]

#: The training seed of a pool generator shared by every seed (``pool_per_seed`` False): the
#: same as the per-seed generator of seed 0, so the shared one is that generator retrained.
SHARED_POOL_SEED = 0

# What makes a cached generator the one a run asks for (a field left blank, None, takes the
# family's default and matches whatever the cached run resolved it to).
_CACHE_KEYS = ("model", "data", "image_size", "channels", "steps", "batch_size", "lr", "seed")
_CACHE_KEYS += ("unlabeled", "augment", "model_args")


def stable_seed(*parts: Any) -> int:
    """A seed that depends only on ``parts`` (not on Python's hash randomisation)."""
    return zlib.crc32("|".join(map(str, parts)).encode()) & 0x7FFFFFFF


class GeneratorCache:
    """Generators trained once per (name, source, seed[, shots]) under ``generators/``."""

    def __init__(self, root: Path, config: BenchConfig, dataset: ImageDataset) -> None:
        self.root = root
        self.config = config
        self.dataset = dataset
        self.device = resolve_device(config.device)
        self._loaded: OrderedDict[str, tuple[Generator, dict[str, Any]]] = OrderedDict()
        self._pool_data: ImageDataset | None = None
        if self.shared_pool and "pool" in config.generator_data and distributed.world_size() > 1:
            # Ranks split the grid by seed and train their seeds' generators; a shared one
            # would be trained by every rank into the same folder at once.
            raise GenaugError(
                "pool_per_seed false shares one pool generator among all seeds, which the ranks "
                "of a torchrun job would all train at once; run it in one process, or set "
                "pool_per_seed true."
            )

    @property
    def shared_pool(self) -> bool:
        """Whether the ``pool`` source has one generator for every seed."""
        return not self.config.pool_per_seed

    def folder(self, name: str, source: str, seed: int, shots: int) -> Path:
        if source == "pool" and self.shared_pool:
            return self.root / f"{name}-pool-shared"  # never a per-seed name: no collision
        tail = f"-shots{shots}" if source == "labeled" else ""
        return self.root / f"{name}-{source}-seed{seed}{tail}"

    def neighbours(self, source: str, labeled: ImageDataset) -> ImageDataset:
        """The bank of mode ``neighbour``: the images the source's generator was trained on
        (for a given checkpoint, the pool: every training image, labels hidden)."""
        return self._training_data("labeled" if source == "labeled" else "pool", labeled)

    def _training_data(self, source: str, labeled: ImageDataset) -> ImageDataset:
        if source == "labeled":
            return labeled
        if self._pool_data is None:  # every training image (labelled shots + pool), no labels
            train_part, _ = train_test_split(
                self.dataset, self.config.test_fraction, self.config.test_seed
            )
            self._pool_data = train_part.without_labels()
        return self._pool_data

    def get(
        self, name: str, source: str, seed: int, shots: int, labeled: ImageDataset, train: bool
    ) -> tuple[Generator, dict[str, Any]] | None:
        """The generator for a run (training it if needed and ``train``), and facts about it."""
        if source.startswith("checkpoint:"):
            key = source
        else:
            key = str(self.folder(name, source, seed, shots))
        if key in self._loaded:
            self._loaded.move_to_end(key)
            return self._loaded[key]
        if source.startswith("checkpoint:"):
            path = source.partition(":")[2]
            model = load_generator(path, device=self.device)
            info = {"checkpoint": str(path), **checkpoint_training_facts(path)}
        else:
            loaded = self._load_or_train(name, source, seed, shots, labeled, train)
            if loaded is None:
                return None
            model, info = loaded
        self._loaded[key] = (model, info)
        while len(self._loaded) > 4:
            self._loaded.popitem(last=False)
        return model, info

    def _load_or_train(
        self, name: str, source: str, seed: int, shots: int, labeled: ImageDataset, train: bool
    ) -> tuple[Generator, dict[str, Any]] | None:
        from genaug.train import TrainConfig
        from genaug.train import train as train_generator
        from genaug.train.loop import RUN_CONFIG, latest_step

        settings = self.config.generator_settings(name)
        folder = self.folder(name, source, seed, shots)
        if source == "pool" and self.shared_pool:
            seed = SHARED_POOL_SEED  # one generator for every seed: its own training seed
        facts_path = folder / "bench_generator.json"
        data = self._training_data(source, labeled)
        config = TrainConfig(
            model=settings.model,
            data=self.config.data,
            out=str(folder),
            image_size=self.config.image_size,
            channels=data.channels,
            steps=settings.steps,
            batch_size=settings.batch_size,
            lr=settings.lr,
            seed=seed,
            device=self.config.device,
            amp=self.config.amp,
            unlabeled=source == "pool" or not settings.conditional,
            augment=settings.train_augment,
            checkpoint_every=max(250, (settings.steps or 1000) // 2),
            log_every=50,
            model_args=dict(settings.model_args),
            progress=False,
        )
        if (folder / RUN_CONFIG).is_file():  # never reuse a generator trained otherwise
            saved = TrainConfig.from_dict(json.loads((folder / RUN_CONFIG).read_text())).to_dict()
            wanted = {k: v for k, v in config.to_dict().items() if k in _CACHE_KEYS}
            changed = [k for k, v in wanted.items() if v is not None and saved[k] != v]
            if changed:
                raise GenaugError(
                    f"the cached generator {folder} was trained with other settings "
                    f"({', '.join(changed)}); give the changed generator another name in "
                    "generators, or start the bench afresh with --overwrite, which deletes every run "
                    "and generator of the bench."
                )
        if facts_path.is_file():
            facts = json.loads(facts_path.read_text())
            model = load_generator(folder, device=self.device)
            return model, facts
        if not train:
            return None
        done_steps = latest_step(folder) if (folder / RUN_CONFIG).is_file() else None
        if done_steps is not None:
            saved = json.loads((folder / RUN_CONFIG).read_text())
            if done_steps >= saved.get("steps", done_steps + 1):  # finished, facts not written
                facts = {
                    "folder": str(folder.relative_to(self.root.parent)),
                    "model": settings.model,
                }
                facts.update(source=source, seed=seed, images=len(data), steps=done_steps)
                facts.update(train_seconds=None, resumed=True)
                atomic_write_json(facts_path, facts)
                return load_generator(folder, device=self.device), facts
            config.resume = True  # an interrupted training run goes on where it stopped
        elif folder.exists():
            shutil.rmtree(folder)  # a folder without a checkpoint holds nothing worth keeping
        started = time.perf_counter()
        result = train_generator(config, dataset=data, lock_folder=False)  # the bench's lock
        facts = {
            "folder": str(folder.relative_to(self.root.parent)),
            "model": settings.model,
            "source": source,
            "seed": seed,
            "images": len(data),
            "steps": result.steps,
            "train_seconds": round(time.perf_counter() - started, 3),
            "resumed": config.resume,
        }
        atomic_write_json(facts_path, facts)
        return result.model.eval(), facts
