"""Checking a user's diffusers pipeline folder before anything loads from it, in one sentence.

A folder written by a diffusers pipeline's ``save_pretrained`` holds ``model_index.json`` (the
pipeline class and its components) and one subfolder per component. genaug reads two kinds:

- pixel pipelines (``DDPMPipeline``, ``DDIMPipeline``): ``unet`` (a ``UNet2DModel``) and
  ``scheduler``;
- latent text-to-image pipelines of the Stable Diffusion kind (``StableDiffusionPipeline``,
  ``StableDiffusionImg2ImgPipeline``): ``unet``, ``vae``, ``text_encoder``, ``tokenizer`` and
  ``scheduler``, driven as img2img.

Weights must be safetensors (genaug never unpickles a ``.bin``); nothing is downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

from genaug.errors import GenaugError

__all__ = ["LATENT", "PIXEL", "SPEC_PREFIX", "PipelineFolder", "check_pipeline_folder"]

SPEC_PREFIX = "diffusers:"  # load_generator("diffusers:/path/to/pipeline")
PIXEL = ("DDPMPipeline", "DDIMPipeline")
LATENT = ("StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline")
_NEEDS = {
    "pixel": ("unet", "scheduler"),
    "latent": ("unet", "vae", "text_encoder", "tokenizer", "scheduler"),
}
_WEIGHTS = {"unet", "vae", "text_encoder"}  # components with weights (the others are configs)


class PipelineFolder(NamedTuple):
    """A checked pipeline folder: where it is, its pipeline class and kind (pixel or latent)."""

    path: Path
    class_name: str
    kind: str


def _config_file(folder: Path) -> str | None:
    for name in ("config.json", "scheduler_config.json", "tokenizer_config.json", "vocab.json"):
        if (folder / name).is_file():
            return name
    return None


def check_pipeline_folder(path: str | Path) -> PipelineFolder:
    """Check that ``path`` holds a complete pipeline of a kind genaug drives, or raise one
    sentence naming what is missing (the folder, ``model_index.json``, a component, its
    config or its safetensors weights) or the unknown pipeline type."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise GenaugError(
            f"No diffusers pipeline at {folder}: the folder does not exist; give the folder a "
            "pipeline's save_pretrained wrote (genaug never downloads one)."
        )
    index = folder / "model_index.json"
    if not index.is_file():
        raise GenaugError(
            f"{folder} is not a diffusers pipeline folder: model_index.json is missing; give the "
            "folder a pipeline's save_pretrained wrote."
        )
    try:
        description = json.loads(index.read_text())
        class_name = str(description["_class_name"])
    except (OSError, ValueError, KeyError, TypeError):
        raise GenaugError(
            f"{index} is unreadable or names no pipeline class (_class_name); restore it or "
            "save the pipeline again."
        ) from None
    kind = "pixel" if class_name in PIXEL else "latent" if class_name in LATENT else None
    if kind is None:
        raise GenaugError(
            f"{folder} holds a {class_name}, a pipeline type genaug does not drive; use a pixel "
            f"pipeline ({', '.join(PIXEL)}) or a latent text-to-image one ({', '.join(LATENT)})."
        )
    for component in _NEEDS[kind]:
        part = folder / component
        if not part.is_dir() or _config_file(part) is None:
            raise GenaugError(
                f"The {class_name} folder {folder} is incomplete: its {component}/ folder (with "
                "its config) is missing; save the whole pipeline with save_pretrained."
            )
        if component in _WEIGHTS and not any(part.glob("*.safetensors")):
            raise GenaugError(
                f"The {class_name} folder {folder} is incomplete: {component}/ holds no "
                ".safetensors weights (genaug never unpickles .bin files); save the pipeline "
                "with save_pretrained(..., safe_serialization=True)."
            )
    return PipelineFolder(folder, class_name, kind)
