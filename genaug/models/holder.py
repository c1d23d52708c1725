"""Hold the generator of a transform or dataset so that it moves, pickles and works in workers.

A :class:`GeneratorHolder` is an ``nn.Module`` around one :class:`~genaug.models.base.Generator`:

- it keeps the generator in eval mode (batch norm uses its running statistics, so each image's
  result does not depend on the rest of the batch), with channels_last weights (the layout
  oneDNN and cuDNN convolutions run fastest in; the values do not change), and out of an
  enclosing model's ``.apply(fn)`` (an ``init_fn`` must not re-initialise a trained generator);
- pickled (a DataLoader with ``spawn``), it carries a checkpoint path when there is one (the
  path it was built from, or the one :func:`~genaug.models.checkpoint.load_generator` recorded
  in ``name_or_path``, while the weights still are that checkpoint's), else the weights as
  plain safetensors bytes (never tensors, which torch would send through shared-memory file
  descriptors), and rebuilds a CPU model once per process on unpickling: CUDA tensors never
  travel to a worker;
- inside a forked DataLoader worker, a generator living on an accelerator is never touched (CUDA
  cannot be used after ``fork``): a CPU copy is built once per worker from the path or from the
  CPU snapshot taken when the generator left the CPU.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors
from torch import nn
from torch.utils.data import get_worker_info

from genaug.errors import GenaugError
from genaug.models.base import Generator, family_class
from genaug.models.checkpoint import load_generator, state_tensors


def generator_snapshot(model: Generator, packed: bool = False) -> dict[str, Any]:
    """Everything needed to rebuild ``model`` on the CPU: its config and its weights (CPU
    tensors; with ``packed``, safetensors bytes: plain data that pickles without shared
    memory). A generator whose constructor loads these very weights (``weights_from_config``,
    a user's pipeline folder) is its config alone: ``tensors`` is None."""
    tensors: Any = None
    if not model.weights_from_config():
        tensors = state_tensors(model)
        tensors = save_tensors(tensors) if packed else tensors
    return {
        "family": model.family,
        "model_args": dict(model.config),
        "class_names": list(model.class_names),
        "data": dict(model.data_description),
        "tensors": tensors,
    }


def rebuild_generator(snapshot: dict[str, Any]) -> Generator:
    """A CPU generator in eval mode from :func:`generator_snapshot` (packed or not)."""
    model = family_class(snapshot["family"])(**snapshot["model_args"])
    tensors = snapshot["tensors"]
    if tensors is not None:
        model.load_state_dict(load_tensors(tensors) if isinstance(tensors, bytes) else tensors)
    model.class_names = list(snapshot["class_names"])
    model.data_description = dict(snapshot["data"])
    return model.eval()


def ready_for_inference(model: Generator) -> Generator:
    """Eval mode (batch norm on running statistics) and channels_last weights, in place."""
    return model.eval().to(memory_format=torch.channels_last)


def generator_argument(generator: Any, owner: str) -> Generator | str:
    """What a ``generator=`` argument names: a :class:`Generator`, or a checkpoint path (as a
    string). A genaug transform or dataset given instead lends its own generator.
    """
    if isinstance(generator, Generator):
        return generator
    if isinstance(generator, (str, os.PathLike)):
        return os.fspath(generator)
    lent = getattr(generator, "generator", None)  # a transform or dataset holding one
    if isinstance(lent, (Generator, str)):
        return lent
    kind = type(generator)  # named in full: a torch.Generator is no genaug Generator
    name = (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )
    raise GenaugError(
        f"{owner} needs a genaug Generator or a checkpoint path, got {name}; pass "
        "load_generator(...) or the folder that `genaug train` wrote."
    )


def checkpoint_of(model: Generator) -> str | None:
    """The checkpoint ``model`` was loaded from (``name_or_path``, which ``load_generator``
    records), while the model still is exactly that checkpoint (architecture, class names,
    weights); None for a generator that lives only in memory, was changed since, or whose
    checkpoint is gone. Reads the checkpoint to compare.
    """
    path = getattr(model, "name_or_path", None)
    if not path or model.weights_from_config():  # no weights to read: its config rebuilds it
        return None
    try:
        saved = load_generator(path, device="cpu")
    except GenaugError:
        return None
    if (saved.family, saved.config, saved.class_names) != (
        model.family,
        model.config,
        list(model.class_names),
    ):
        return None
    mine, theirs = model.state_dict(), saved.state_dict()
    if mine.keys() != theirs.keys():
        return None
    for key, value in mine.items():
        other = theirs[key]
        if value.dtype != other.dtype or not torch.equal(value.detach().cpu(), other):
            return None
    return str(path)


def _on_cpu(model: Generator) -> bool:
    # Reading a tensor's device is metadata only: safe even for a CUDA model in a forked child.
    return model.device.type == "cpu"


class GeneratorHolder(nn.Module):
    """A generator, given as a :class:`Generator` or as a checkpoint path, ready for any process.

    Args:
        generator: a Generator, the path of a checkpoint (or run folder) to load on the CPU, or
            a genaug transform or dataset whose generator to share (see
            :func:`generator_argument`).
        owner: how error messages name the object that holds it.
    """

    def __init__(self, generator: Any, owner: str = "The transform"):
        super().__init__()
        source = generator_argument(generator, owner)
        if isinstance(source, str):
            path: str | None = source
            model = load_generator(path, device="cpu")
        else:
            model, path = source, None
        self.path = path  # the checkpoint path it was given (None: given a Generator)
        # CPU weights kept while the model lives on an accelerator, for forked workers.
        self._cpu_snapshot: dict[str, Any] | None = None
        self._worker_model: Generator | None = None
        if path is None and not _on_cpu(model):
            self._cpu_snapshot = generator_snapshot(model)
        self.model = ready_for_inference(model)

    # ------------------------------------------------------------------ the model to compute with
    def current(self) -> Generator:
        """The generator to use in this process: a CPU copy inside a worker if the model is not."""
        model = self.model
        if get_worker_info() is None or _on_cpu(model):
            if model.training:
                model.eval()
            return model
        if self._worker_model is None:
            torch.set_num_threads(1)  # one thread per worker, as DataLoader workers run
            self._worker_model = ready_for_inference(self._load_cpu_copy())
        return self._worker_model

    def _load_cpu_copy(self) -> Generator:
        if self.path is not None:
            return load_generator(self.path, device="cpu")
        if self._cpu_snapshot is None:  # cannot happen through .to(); guard against odd moves
            raise GenaugError(
                "The generator lives on an accelerator and no CPU copy of it was kept, so a "
                "DataLoader worker cannot use it; build the transform from a checkpoint path."
            )
        return rebuild_generator(self._cpu_snapshot)

    # ------------------------------------------------------------------ nn.Module behaviour
    def apply(self, fn: Any) -> GeneratorHolder:
        """``fn(self)`` only: an enclosing model's ``.apply(init_fn)`` leaves the trained
        generator as it is (its weights are data, not parameters to initialise)."""
        fn(self)
        return self

    def train(self, mode: bool = True) -> GeneratorHolder:
        """The generator always runs in eval mode, whatever the enclosing module asks."""
        self.training = mode
        self.model.eval()
        return self

    def _apply(self, fn: Any, recurse: bool = True) -> GeneratorHolder:
        snapshot = None
        if self.path is None and self._cpu_snapshot is None and _on_cpu(self.model):
            snapshot = generator_snapshot(self.model)  # shares storage; .to() makes new tensors
        super()._apply(fn, recurse)
        if _on_cpu(self.model):
            self._cpu_snapshot = None
        elif snapshot is not None:
            self._cpu_snapshot = snapshot
        return self

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict[str, Any]:
        path = self.path if self.path is not None else checkpoint_of(self.model)
        if path is not None:
            source: dict[str, Any] = {"path": path}
        elif self._cpu_snapshot is not None:  # the model left the CPU: its CPU weights
            tensors = self._cpu_snapshot["tensors"]
            tensors = None if tensors is None else save_tensors(tensors)
            source = {"snapshot": {**self._cpu_snapshot, "tensors": tensors}}
        else:
            source = {"snapshot": generator_snapshot(self.model, packed=True)}
        return {"source": source, "training": self.training}

    def __setstate__(self, state: dict[str, Any]) -> None:
        nn.Module.__init__(self)
        source = state["source"]
        self.path = source.get("path")
        if self.path is not None:
            model = load_generator(self.path, device="cpu")
        else:
            model = rebuild_generator(source["snapshot"])
        self.model = ready_for_inference(model)
        self._cpu_snapshot = None
        self._worker_model = None
        self.training = state["training"]

    def __deepcopy__(self, memo: dict[int, Any]) -> GeneratorHolder:
        # A deep copy stays where it is (the pickled form always lands on the CPU).
        new = self.__class__.__new__(self.__class__)
        memo[id(self)] = new
        for key, value in self.__dict__.items():
            new.__dict__[key] = copy.deepcopy(value, memo)
        return new

    def extra_repr(self) -> str:
        return f"path={self.path!r}" if self.path is not None else ""
