"""Device selection and the mixed-precision policy, in one place."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch

from genaug.errors import GenaugError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when present, else CPU; ``"cuda"`` without a GPU is a clear error."""
    if isinstance(spec, torch.device):
        return spec
    spec = str(spec)
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise GenaugError(
                f"Device {spec!r} was asked for but no CUDA GPU is visible; use --device cpu or auto."
            )
        return torch.device(spec)
    if spec == "cpu":
        return torch.device("cpu")
    raise GenaugError(f"Unknown device {spec!r}; use one of {', '.join(DEVICE_CHOICES)}.")


def autocast_for(
    device: torch.device, enabled: bool = True
) -> Callable[[], contextlib.AbstractContextManager]:
    """A factory of autocast contexts: bf16 on CUDA when ``enabled``, a no-op elsewhere."""
    if enabled and device.type == "cuda":
        return lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext


def memory_format_for(device: torch.device) -> torch.memory_format:
    """channels_last on CUDA (faster convolutions with bf16), contiguous elsewhere."""
    return torch.channels_last if device.type == "cuda" else torch.contiguous_format


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


def tune_cpu_allocator() -> bool:
    """Let glibc's malloc keep the memory a CPU training loop frees, for the next step.

    Every step of a CPU training loop allocates and frees the same large activation and
    gradient buffers; glibc by default gives them back to the OS and faults the pages in again
    on the next step (about a third of the system calls and page faults of a bench classifier
    run). Kept instead (allocations up to 32 MB from the heap, 1 GB of free heap top kept, 64 MB
    of padding per heap growth), a ``resnet10t`` run at 32 px on one thread takes about a
    quarter less time, for a few percent more peak memory. Numbers are unchanged: only where
    memory comes from. Process-wide, so genaug calls it only in processes it owns (its command
    line and the bench's workers). Returns False where there is no glibc (macOS, Windows, musl).
    """
    import ctypes
    import ctypes.util
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        settings = ((_M_MMAP_THRESHOLD, 32 << 20), (_M_TRIM_THRESHOLD, 1 << 30))
        settings += ((_M_TOP_PAD, 64 << 20),)
        return all(libc.mallopt(option, value) == 1 for option, value in settings)
    except (OSError, AttributeError):
        return False


@contextlib.contextmanager
def single_image_cpu_kernels(device: torch.device, images: int, float32: bool):
    """On the CPU, run a float32 call on one image with PyTorch's native convolutions.

    oneDNN (mkldnn) convolutions pay a fixed cost per call that outweighs their speed on a batch
    of one 32 px image: measured on a 2-core CPU, one thread, a default ``vae``'s class head,
    encoder and decoder take about 1.6 ms per image native against 2.2-2.5 ms with oneDNN; from
    4 images on, oneDNN is faster (``benchmarks/augment_places.py``). The setting is global, so
    it is restored on exit; anything else (a batch, bfloat16, an accelerator) is left alone.
    """
    if device.type != "cpu" or images != 1 or not float32 or not torch.backends.mkldnn.enabled:
        yield
        return
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = True
