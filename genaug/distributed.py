"""Running under ``torchrun``: process group, rank facts, gradient averaging, sharding, timeouts.

Every genaug path works without torchrun: with no ``WORLD_SIZE`` (or ``WORLD_SIZE=1``) in the
environment there is no process group, :func:`world_size` is 1, :func:`is_main` is True and every
helper here is a no-op.

Under ``torchrun --nproc_per_node N`` each process calls :func:`init` (the library does so in
``train``, the synthetic-set export and the bench). It picks the backend from the device: NCCL
for CUDA (each process takes GPU ``LOCAL_RANK``), gloo for the CPU. The process group gets a
timeout (``GENAUG_DIST_TIMEOUT`` seconds, default 600): a rank that stops answering makes the
others fail with :class:`RankFailure` (one sentence, non-zero exit) rather than hang, and a rank
that dies makes torchrun stop the rest.

Data parallel training without wrapping modules. The families' ``training_step`` calls their
submodules (generator network, discriminator, encoder) directly and runs one or two optimizer
steps itself (a GAN: discriminator, then generator), so wrapping the Generator in
``DistributedDataParallel`` would hook nothing. Instead :func:`average_gradients_before_step`
registers an optimizer *step pre-hook*: right before every ``optimizer.step()`` the gradients of
that optimizer's parameters are averaged across ranks with one flattened ``all_reduce`` (what
DDP's reducer does, without bucketing overlap). The families stay unaware of distribution, every
optimizer of a multi-optimizer step is covered, and all ranks keep identical weights.
BatchNorm statistics are per rank during a step (as with DDP without SyncBatchNorm); their running
buffers are averaged across ranks before every checkpoint (:func:`average_buffers`). Opt in to
statistics over the global batch with ``sync_batchnorm`` (:func:`check_sync_batchnorm`,
:func:`convert_sync_batchnorm`): PyTorch's SyncBatchNorm, on CUDA only.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor, nn

from genaug.device import resolve_device
from genaug.errors import GenaugError, first_line

TIMEOUT_ENV = "GENAUG_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 600.0

T = TypeVar("T")

log = logging.getLogger(__name__)

_alone = 0  # depth of local_only() blocks: inside, this process works on its own


class RankFailure(GenaugError):
    """Another process of a torchrun job failed or stopped answering within the timeout."""


# ---------------------------------------------------------------------------- facts
def launched() -> bool:
    """True when the environment describes a multi-process job (torchrun's ``WORLD_SIZE`` > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    """True when a process group with more than one process is up (outside local_only())."""
    return (
        not _alone and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
    )


@contextlib.contextmanager
def local_only() -> Iterator[None]:
    """Within this block the process works alone (world size 1, rank 0) inside a torchrun job.

    The bench uses it: each rank trains its own generators and classifiers independently.
    """
    global _alone
    _alone += 1
    try:
        yield
    finally:
        _alone -= 1


def world_size() -> int:
    """Number of processes in the job (1 without torchrun)."""
    return dist.get_world_size() if active() else 1


def rank() -> int:
    """This process's rank in [0, world_size) (0 without torchrun)."""
    return dist.get_rank() if active() else 0


def is_main() -> bool:
    """True on the process that writes files and prints (rank 0)."""
    return rank() == 0


def timeout_seconds() -> float:
    """The process-group timeout: ``GENAUG_DIST_TIMEOUT`` seconds, default 600."""
    text = os.environ.get(TIMEOUT_ENV, str(DEFAULT_TIMEOUT_S))
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise GenaugError(f"{TIMEOUT_ENV}={text!r} should be a positive number of seconds.")
    return value


# ---------------------------------------------------------------------------- setup
def device_for_rank(spec: str | torch.device = "auto") -> torch.device:
    """:func:`~genaug.device.resolve_device`, but a bare ``cuda`` becomes ``cuda:LOCAL_RANK``."""
    device = resolve_device(spec)
    if device.type == "cuda" and device.index is None and launched():
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def init(device: str | torch.device = "auto") -> torch.device:
    """Join the torchrun job (once) and return this process's device.

    Without torchrun this only resolves ``device``. Backend: NCCL when the device is CUDA, gloo
    otherwise. Example: ``device = genaug.distributed.init("auto")``.
    """
    device = device_for_rank(device)
    if not launched() or (dist.is_available() and dist.is_initialized()):
        return device
    if not dist.is_available():
        raise GenaugError("This PyTorch build has no torch.distributed; run without torchrun.")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    timeout = datetime.timedelta(seconds=timeout_seconds())
    try:
        dist.init_process_group(
            backend, timeout=timeout, device_id=device if device.type == "cuda" else None
        )
    except (RuntimeError, ValueError) as exc:
        raise RankFailure(
            f"Could not join the torchrun job ({first_line(exc)}); check the rendezvous flags "
            "(--nnodes, --node-rank, --rdzv-endpoint) and that every node can reach the endpoint."
        ) from None
    return device


def shutdown() -> None:
    """Leave the process group (if any); the CLI calls it on exit."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


# ---------------------------------------------------------------------------- collectives
def _guard(what: str, call: Callable[[], T]) -> T:
    """Run a collective; turn a dead or silent peer into one clear sentence."""
    try:
        return call()
    except RuntimeError as exc:  # DistBackendError, gloo/NCCL timeouts, closed connections
        raise RankFailure(
            f"Rank {rank()} of {world_size()}: {what} failed because another rank failed or did "
            f"not answer within {timeout_seconds():g} s ({first_line(exc)}); the last "
            "checkpoint is kept, fix the cause and rerun with --resume."
        ) from None


def barrier(what: str = "waiting for the other ranks") -> None:
    """Wait for every rank (no-op without torchrun)."""
    if active():
        _guard(what, dist.barrier)


def all_reduce_mean(tensor: Tensor, what: str = "averaging across ranks") -> Tensor:
    """Average ``tensor`` in place across ranks and return it (unchanged without torchrun)."""
    if active():
        _guard(what, lambda: dist.all_reduce(tensor, op=dist.ReduceOp.SUM))
        tensor.div_(world_size())
    return tensor


def broadcast_from_main(value: T, what: str = "sharing rank 0's result") -> T:
    """Rank 0's ``value`` on every rank (a picklable object; sent between our own processes)."""
    if not active():
        return value
    box = [value if is_main() else None]
    _guard(what, lambda: dist.broadcast_object_list(box, src=0))
    return box[0]  # type: ignore[return-value]


def run_on_main(call: Callable[[], T], what: str) -> T:
    """Run ``call`` on rank 0 only and give its result (or its GenaugError) to every rank.

    Used for steps that touch the file system once (creating or clearing a run folder): the
    other ranks raise the same one-sentence error instead of waiting forever.
    """
    result: Any = None
    error = None
    if is_main():
        try:
            result = call()
        except GenaugError as exc:
            if not active():
                raise
            error = str(exc)
    result, error = broadcast_from_main((result, error), what)
    if error is not None:
        raise GenaugError(error)
    return result


def _flat_all_reduce_mean(tensors: Sequence[Tensor], what: str) -> None:
    """Average same-dtype tensors across ranks with one collective on a flat buffer."""
    by_kind: dict[tuple[torch.dtype, torch.device], list[Tensor]] = {}
    for t in tensors:
        by_kind.setdefault((t.dtype, t.device), []).append(t)
    for group in by_kind.values():
        flat = torch.cat([t.reshape(-1) for t in group])  # (sum of numels,)
        all_reduce_mean(flat, what)
        offset = 0
        for t in group:
            t.copy_(flat[offset : offset + t.numel()].view_as(t))
            offset += t.numel()


def average_gradients_before_step(optimizers: Iterable[torch.optim.Optimizer]) -> list[Any]:
    """Make every ``optimizer.step()`` first average its parameters' gradients across ranks.

    Returns the hook handles (``handle.remove()`` undoes it); does nothing without torchrun.
    Parameters without a gradient (frozen in this step) are left alone: every rank runs the same
    code, so the same parameters have gradients everywhere.
    """
    if not active():
        return []

    def hook(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        grads = [
            p.grad
            for group in optimizer.param_groups
            for p in group["params"]
            if p.grad is not None
        ]
        if grads:
            with torch.no_grad():
                _flat_all_reduce_mean(grads, "averaging gradients")

    return [optimizer.register_step_pre_hook(hook) for optimizer in optimizers]


@torch.no_grad()
def average_buffers(*modules: nn.Module) -> None:
    """Average floating-point buffers (BatchNorm running statistics) across ranks, in place."""
    if not active():
        return
    buffers = [b for m in modules for b in m.buffers() if b.is_floating_point()]
    if buffers:
        _flat_all_reduce_mean(buffers, "averaging BatchNorm statistics")


@torch.no_grad()
def broadcast_module(module: nn.Module) -> None:
    """Copy rank 0's parameters and buffers into every rank's ``module`` (as DDP does at start)."""
    if not active():
        return
    for tensor in [*module.parameters(), *module.buffers()]:
        _guard("sharing rank 0's weights", lambda t=tensor: dist.broadcast(t.data, src=0))


@torch.no_grad()
def check_in_sync(module: nn.Module, what: str) -> None:
    """Raise if ranks hold different weights (a cheap checksum per rank, compared on all)."""
    if not active():
        return
    total = torch.zeros(1, dtype=torch.float64, device=next(module.parameters()).device)
    for p in module.parameters():
        total += p.detach().double().sum()
    sums = [torch.zeros_like(total) for _ in range(world_size())]
    _guard("comparing weights across ranks", lambda: dist.all_gather(sums, total))
    if any(not torch.equal(s, sums[0]) for s in sums):
        raise RankFailure(
            f"The ranks' weights drifted apart by {what}; this is a bug in genaug's "
            "distributed training, please report it."
        )


# ---------------------------------------------------------------------------- SyncBatchNorm
def check_sync_batchnorm(requested: bool, device: torch.device, world: int | None = None) -> bool:
    """Whether to convert BatchNorm to SyncBatchNorm: asked for, several processes, CUDA.

    One process has nothing to synchronise: a no-op (one INFO log line). Several processes on
    the CPU are refused with a clear error, since PyTorch's SyncBatchNorm only runs on GPUs and a
    flag that silently did nothing would mislead. ``world`` defaults to :func:`world_size`.
    Example: ``if check_sync_batchnorm(True, device): convert_sync_batchnorm(model)``.
    """
    if not requested:
        return False
    world = world_size() if world is None else world
    if world == 1:
        log.info("sync_batchnorm has no effect in a single process; BatchNorm is left as it is.")
        return False
    if device.type != "cuda":
        raise GenaugError(
            f"--sync-batchnorm needs CUDA (PyTorch's SyncBatchNorm runs only on GPUs) but this "
            f"job runs {world} processes on {device.type}; drop it on CPU, where each process "
            "normalises its own slice of the batch."
        )
    return True


def convert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm layer inside ``module`` by ``nn.SyncBatchNorm``, in place.

    The replacements share the layers' parameters and buffers, so ``state_dict()`` keys (and
    checkpoints) stay those of the plain model; in eval mode SyncBatchNorm uses its running
    statistics and talks to no other process. Returns ``module``.
    """
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if converted is not module:  # module itself was a BatchNorm layer: nothing to hold it
        raise GenaugError("convert_sync_batchnorm converts the layers inside a model, not a layer.")
    return module


# ---------------------------------------------------------------------------- sharding
def shard_batch(index: Tensor) -> Tensor:
    """This rank's contiguous slice of a global batch of indices (all of it without torchrun)."""
    world = world_size()
    if world == 1:
        return index
    if index.numel() % world:
        raise GenaugError(
            f"The batch size {index.numel()} does not split evenly over {world} processes; "
            f"pick a multiple of {world} (--batch-size), the global batch is shared among ranks."
        )
    return index.tensor_split(world)[rank()]


def shard_range(n: int) -> range:
    """The sample indices ``rank::world_size`` of ``range(n)``: no duplicates, no gaps."""
    return range(rank(), n, world_size())


def step_seed(seed: int, step: int) -> int:
    """Seed of this rank's training noise at ``step`` (independent per rank, no state to save)."""
    return (seed * 1_000_003 + step) * 1_009 + rank()
