"""A user's own pretrained diffusers pipeline as a genaug generator, loaded from a local folder.

``load_pipeline("/path/to/pipeline")`` (or ``load_generator("diffusers:/path/to/pipeline")``,
also every transform's ``generator=``) reads a folder that a pipeline's ``save_pretrained`` wrote,
with ``local_files_only=True`` and safetensors weights only: nothing is downloaded or unpickled.

- A pixel pipeline (``DDPMPipeline``, ``DDIMPipeline``) works as genaug's ``diffusion`` family:
  ``sample`` by DDIM, ``vary`` by SDEdit.
- A latent text-to-image pipeline (Stable Diffusion) is driven as img2img (DA-Fusion's edit):
  the image is encoded by the VAE (its posterior mean), noised to the level ``strength`` sets,
  denoised under a prompt with classifier-free guidance, and decoded. The prompt of an image of
  class ``k`` is ``prompt.format(name=class_names[k])`` (e.g. "a photo of a {name}"); an image
  without a label gets ``unlabeled_prompt``. ``sample`` (mode ``resample``) draws from noise
  under the same prompts.

The denoising runs genaug's own DDIM loop (:mod:`genaug.models.ddim`) on the pipeline's UNet and
noise schedule, not the pipeline's ``__call__``: the forward noise is then the transforms'
replayable ``noise`` (the latent is that noise, image- or latent-shaped), a batch runs as one
call, and no safety checker or PIL round trip sits in the way. On CUDA the transforms run it
under bf16 autocast with channels_last weights; ``dtype="float16"`` or ``"bfloat16"`` also stores
the weights in half precision (for the GPU; keep float32 on a CPU).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from genaug.errors import GenaugError
from genaug.models import ddim
from genaug.models.base import AutocastFactory, Generator
from genaug.models.diffusers_import import quiet_loading, require
from genaug.models.pipeline_folder import SPEC_PREFIX, check_pipeline_folder

__all__ = ["DTYPES", "DiffusersPipeline", "load_pipeline", "pipeline_spec_config"]

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def _fingerprint(model: torch.nn.Module) -> Tensor:
    """Per-tensor float64 sums of a module's weights (cheap; equal weights, equal sums)."""
    with torch.no_grad():
        return torch.stack([v.detach().double().sum().cpu() for v in model.state_dict().values()])


class DiffusersPipeline(ddim.SDEditing, Generator):
    """A pipeline folder's networks as a generator (see the module docstring).

    Args:
        path: the pipeline folder.
        image_size: the size images are edited at (default: the pipeline's own).
        channels, num_classes, latent_dim: read from the pipeline and the class names (a saved
            config repeats them; another value is refused).
        class_names: one name per class (latent pipelines): labels pick the prompt. None:
            unconditional.
        prompt: the prompt template of a labelled image, with ``{name}``.
        unlabeled_prompt: the prompt of an image without a label ("" is unconditional).
        guidance_scale: classifier-free guidance (1: none) of latent pipelines.
        sample_steps: DDIM steps of a full sample (an edit of strength s takes
            ``ceil(s * sample_steps)``).
        dtype: ``float32``, ``float16`` or ``bfloat16``: how the weights are stored.
    """

    family = "diffusers"
    varies_images = True
    pretrained = True
    max_image_size = 1024

    def __init__(
        self,
        *,
        path: str,
        image_size: int | None = None,
        channels: int | None = None,
        num_classes: int | None = None,
        latent_dim: int | None = None,
        class_names: list[str] | None = None,
        prompt: str = "a photo of a {name}",
        unlabeled_prompt: str = "",
        guidance_scale: float = 7.5,
        sample_steps: int = 25,
        dtype: str = "float32",
    ) -> None:
        folder = check_pipeline_folder(path)
        if dtype not in DTYPES:
            raise GenaugError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}.")
        if isinstance(sample_steps, bool) or not isinstance(sample_steps, int) or sample_steps < 1:
            raise GenaugError(f"sample_steps must be a positive integer, not {sample_steps!r}.")
        names = [str(n) for n in class_names] if class_names else []
        if len(names) == 1 or (names and folder.kind == "pixel"):
            raise GenaugError(
                "class_names pick a latent pipeline's prompt and need at least two names; for "
                "one class (or a pixel pipeline) leave them out and write the prompt in full."
            )
        parts = _load_parts(folder, DTYPES[dtype])
        size = image_size or parts["native_size"]
        steps_down = parts["scale"]
        if not isinstance(size, int) or size % steps_down:
            raise GenaugError(
                f"image_size {size!r} must be a multiple of the pipeline's VAE factor {steps_down}."
            )
        shape = (parts["latent_channels"], size // steps_down, size // steps_down)
        found = {
            "channels": parts["channels"],
            "num_classes": len(names),
            "latent_dim": math.prod(shape),
        }
        given = {"channels": channels, "num_classes": num_classes, "latent_dim": latent_dim}
        for key, value in given.items():
            if value is not None and value != found[key]:
                raise GenaugError(
                    f"The pipeline at {folder.path} gives {key} {found[key]}, not {value!r}; "
                    f"leave {key} out."
                )
        super().__init__(
            image_size=size,
            **found,
            path=str(folder.path),
            class_names=names or None,
            prompt=str(prompt),
            unlabeled_prompt=str(unlabeled_prompt),
            guidance_scale=float(guidance_scale),
            sample_steps=sample_steps,
            dtype=dtype,
        )
        if names and "{name}" not in self.config["prompt"]:
            raise GenaugError(
                f"prompt {prompt!r} has no {{name}}, so class_names would change nothing; write "
                "the class name's place as {name}, e.g. 'a photo of a {name}'."
            )
        self.kind, self.latent_shape = folder.kind, shape
        self.unet = parts["unet"]
        self.vae, self.text_encoder = parts.get("vae"), parts.get("text_encoder")
        self.tokenizer = parts.get("tokenizer")
        self.alphas_cumprod = parts["alphas_cumprod"]
        self.prediction_type = parts["prediction_type"]
        self.vae_scaling = parts.get("scaling_factor", 1.0)
        if names:
            self.class_names = names
        self._loaded = _fingerprint(self)

    # ------------------------------------------------------------------------ pickling support
    def weights_from_config(self) -> bool:
        """True while the weights are still the folder's: ``type(self)(**self.config)`` then
        rebuilds this very generator (how it travels to DataLoader workers)."""
        now = _fingerprint(self)
        return bool(torch.allclose(now, self._loaded, rtol=1e-9, atol=1e-6))

    # ------------------------------------------------------------------------------ the model
    def _prompts(self, labels: Tensor | None, b: int) -> list[str]:
        if labels is None or not self.conditional:
            return [self.config["unlabeled_prompt"]] * b
        template = self.config["prompt"]
        return [template.format(name=self.class_names[int(k)]) for k in labels.tolist()]

    def _embed(self, prompts: list[str]) -> Tensor:
        """Prompts -> the text encoder's hidden states (B, tokens, D), one pass per distinct."""
        distinct = sorted(set(prompts))
        tokens = self.tokenizer(
            distinct,
            padding="max_length",
            max_length=self.tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids.to(self.device)
        states = self.text_encoder(tokens)[0]
        return states[torch.tensor([distinct.index(p) for p in prompts], device=self.device)]

    def _denoiser(self, labels: Tensor | None, b: int) -> ddim.Predict:
        unet = self.unet
        dtype = next(unet.parameters()).dtype
        if self.kind == "pixel":
            return lambda x, t: unet(x.to(dtype), t).sample
        states = self._embed(self._prompts(labels, b))
        scale = self.config["guidance_scale"]
        if scale <= 1:
            return lambda x, t: unet(x.to(dtype), t, encoder_hidden_states=states).sample
        empty = self._embed([""]).expand_as(states)
        both = torch.cat([empty, states])

        def guided(x: Tensor, t: Tensor) -> Tensor:
            out = unet(torch.cat([x, x]).to(dtype), torch.cat([t, t]), encoder_hidden_states=both)
            unconditional, conditional = out.sample.float().chunk(2)
            return unconditional + scale * (conditional - unconditional)

        return guided

    def _to_space(self, images: Tensor) -> Tensor:
        """Images in [0, 1] -> the space the UNet denoises (pixels in [-1, 1], or latents)."""
        x = images * 2 - 1
        if self.kind == "pixel":
            return x
        posterior = self.vae.encode(x.to(next(self.vae.parameters()).dtype)).latent_dist
        return posterior.mean.float() * self.vae_scaling

    def _from_space(self, x: Tensor) -> Tensor:
        if self.kind == "latent":
            x = self.vae.decode((x / self.vae_scaling).to(next(self.vae.parameters()).dtype))
            x = x.sample.float()
        return ((x + 1) / 2).clamp(0.0, 1.0)

    def _run(self, images: Tensor | None, noise: Tensor, strength: float, labels: Any) -> Tensor:
        b = noise.shape[0]
        noise = noise.to(self.device, torch.float32).view(b, *self.latent_shape)
        start = None if images is None else self._to_space(images)
        out = ddim.edit(
            self._denoiser(labels, b),
            self.alphas_cumprod,
            start,
            noise,
            float(strength),
            self.config["sample_steps"],
            self.prediction_type,
            clip=1.0 if self.kind == "pixel" else None,
        )
        return self._from_space(out)

    def create_optimizers(self, lr: float) -> dict[str, torch.optim.Optimizer]:
        raise GenaugError(
            "A pretrained diffusers pipeline is used as it is, not trained by genaug; train "
            "genaug's own diffusion family instead (genaug train --model diffusion)."
        )

    def training_step(
        self,
        images: Tensor,
        labels: Tensor | None,
        optimizers: dict[str, torch.optim.Optimizer],
        autocast: AutocastFactory,
    ) -> dict[str, Any]:
        return self.create_optimizers(0.0)  # raises: see create_optimizers


def _load_parts(folder: Any, dtype: torch.dtype) -> dict[str, Any]:
    """The networks and schedule of a checked pipeline folder, loaded locally."""
    diffusers = require(what="Loading a diffusers pipeline")
    options = {"local_files_only": True, "use_safetensors": True, "torch_dtype": dtype}
    schedule = json.loads((folder.path / "scheduler" / "scheduler_config.json").read_text())
    try:
        with quiet_loading():
            scheduler = diffusers.DDPMScheduler.from_config(
                {k: v for k, v in schedule.items() if not k.startswith("_")}
            )
            if folder.kind == "pixel":
                unet = diffusers.UNet2DModel.from_pretrained(
                    folder.path, subfolder="unet", **options
                )
                pipe = None
            else:
                require("transformers", "A Stable Diffusion pipeline")
                pipe = diffusers.StableDiffusionImg2ImgPipeline.from_pretrained(
                    folder.path, safety_checker=None, requires_safety_checker=False, **options
                )
                unet = pipe.unet
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GenaugError(
            f"The {folder.class_name} at {folder.path} could not be loaded ({first}); save it "
            "again with save_pretrained."
        ) from None
    size = unet.config.sample_size
    size = size[0] if isinstance(size, (list, tuple)) else size
    parts: dict[str, Any] = {
        "unet": unet.eval().requires_grad_(False),
        "alphas_cumprod": scheduler.alphas_cumprod.to(torch.float64),
        "prediction_type": scheduler.config.prediction_type,
        "latent_channels": unet.config.in_channels,
        "channels": unet.config.in_channels,
        "scale": 1,
        "native_size": int(size),
    }
    if pipe is not None:
        scale = 2 ** (len(pipe.vae.config.block_out_channels) - 1)
        parts.update(
            vae=pipe.vae.eval().requires_grad_(False),
            text_encoder=pipe.text_encoder.eval().requires_grad_(False),
            tokenizer=pipe.tokenizer,
            scaling_factor=float(pipe.vae.config.scaling_factor),
            channels=int(pipe.vae.config.in_channels),
            scale=scale,
            native_size=int(size) * scale,
        )
    if parts["channels"] not in (1, 3):
        raise GenaugError(
            f"The pipeline at {folder.path} makes {parts['channels']}-channel images; genaug "
            "takes 1 (gray) or 3 (RGB)."
        )
    return parts


def load_pipeline(
    path: str | Path, device: str | torch.device = "cpu", **settings: Any
) -> DiffusersPipeline:
    """Load a local diffusers pipeline folder as a generator (eval mode), never downloading.

    ``settings``: ``class_names``, ``prompt``, ``unlabeled_prompt``, ``guidance_scale``,
    ``sample_steps``, ``image_size``, ``dtype`` (see :class:`DiffusersPipeline`). Example:
    ``load_pipeline("models/sd15", class_names=["cat", "dog"], guidance_scale=5.0)``.
    """
    model = DiffusersPipeline(path=str(path), **settings)
    model.name_or_path = SPEC_PREFIX + str(path)
    return model.to(device).eval()


def pipeline_spec_config(spec: str) -> dict[str, Any]:
    """What ``read_generator_config`` says of ``"diffusers:PATH"``: the folder checked, nothing
    loaded (the family, and no classes: a spec gives the default settings)."""
    folder = check_pipeline_folder(spec[len(SPEC_PREFIX) :])
    return {
        "family": DiffusersPipeline.family,
        "model_args": {"path": str(folder.path), "num_classes": 0},
        "class_names": [],
        "pipeline_class": folder.class_name,
    }
