"""Hold the generator of a transform or dataset so that it moves, pickles and works in workers.

A :class:`GeneratorHolder` is an ``nn.Module`` around one :class:`~genaug.models.base.Generator`:

- it keeps the generator in eval mode (batch norm uses its running statistics, so each image's
  result does not depend on the rest of the batch), with channels_last weights (the layout
  oneDNN and cuDNN convolutions run fastest in; the values do not change);
- pickled (a DataLoader with ``spawn``), it carries the checkpoint path when it was built from one,
  else the weights as CPU tensors, and rebuilds a CPU model once per process on unpickling: CUDA
  tensors never travel to a worker;
- inside a forked DataLoader worker, a generator living on an accelerator is never touched (CUDA
  cannot be used after ``fork``): a CPU copy is built once per worker from the path or from the
  CPU snapshot taken when the generator left the CPU.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import torch
from torch import nn
from torch.utils.data import get_worker_info

from genaug.errors import GenaugError
from genaug.models.base import Generator, family_class
from genaug.models.checkpoint import load_generator, state_tensors


def generator_snapshot(model: Generator) -> dict[str, Any]:
    """Everything needed to rebuild ``model`` on the CPU: its config and its weights (CPU)."""
    return {
        "family": model.family,
        "model_args": dict(model.config),
        "class_names": list(model.class_names),
        "data": dict(model.data_description),
        "tensors": state_tensors(model),
    }


def rebuild_generator(snapshot: dict[str, Any]) -> Generator:
    """A CPU generator in eval mode from :func:`generator_snapshot`."""
    model = family_class(snapshot["family"])(**snapshot["model_args"])
    model.load_state_dict(snapshot["tensors"])
    model.class_names = list(snapshot["class_names"])
    model.data_description = dict(snapshot["data"])
    return model.eval()


def ready_for_inference(model: Generator) -> Generator:
    """Eval mode (batch norm on running statistics) and channels_last weights, in place."""
    return model.eval().to(memory_format=torch.channels_last)


def _on_cpu(model: Generator) -> bool:
    # Reading a tensor's device is metadata only: safe even for a CUDA model in a forked child.
    return model.device.type == "cpu"


class GeneratorHolder(nn.Module):
    """A generator, given as a :class:`Generator` or as a checkpoint path, ready for any process.

    Args:
        generator: a Generator, or the path of a checkpoint (or run folder) to load on the CPU.
        owner: how error messages name the object that holds it.
    """

    def __init__(self, generator: Generator | str | os.PathLike, owner: str = "The transform"):
        super().__init__()
        if isinstance(generator, Generator):
            model, path = generator, None
        elif isinstance(generator, (str, os.PathLike)):
            path = os.fspath(generator)
            model = load_generator(path, device="cpu")
        else:
            raise GenaugError(
                f"{owner} needs a genaug Generator or a checkpoint path, got "
                f"{type(generator).__name__}; pass load_generator(...) or the folder that "
                "`genaug train` wrote."
            )
        self.path = path
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
        if self.path is not None:
            source: dict[str, Any] = {"path": self.path}
        else:
            snapshot = self._cpu_snapshot
            source = {
                "snapshot": snapshot if snapshot is not None else generator_snapshot(self.model)
            }
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
