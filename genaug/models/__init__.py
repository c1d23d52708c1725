"""Generator families, their registry and checkpoints."""

from genaug.models import cgan as _cgan  # noqa: F401  (registers the family)
from genaug.models import dagan as _dagan  # noqa: F401  (registers the family)
from genaug.models import diffusion as _diffusion  # noqa: F401  (registers; diffusers lazily)
from genaug.models import gan as _gan  # noqa: F401  (registers the family)
from genaug.models import hallucinator as _hallucinator  # noqa: F401  (registers the family)
from genaug.models import pairvae as _pairvae  # noqa: F401  (registers the family)
from genaug.models import pipeline as _pipeline  # noqa: F401  (registers; diffusers lazily)
from genaug.models import vae as _vae  # noqa: F401  (registers the family)
from genaug.models.base import Encoding, Generator, list_families, validate_image_size
from genaug.models.cgan import CGAN
from genaug.models.checkpoint import load_generator, read_generator_config, save_generator
from genaug.models.dagan import DAGAN
from genaug.models.diffusion import Diffusion
from genaug.models.features import FeatureExtractor, load_extractor
from genaug.models.gan import GAN
from genaug.models.hallucinator import Hallucinator
from genaug.models.holder import GeneratorHolder
from genaug.models.pairvae import PairVAE
from genaug.models.pipeline import DiffusersPipeline, load_pipeline
from genaug.models.registry import create_generator, list_generators, register
from genaug.models.vae import VAE

__all__ = [
    "CGAN",
    "DAGAN",
    "DiffusersPipeline",
    "Diffusion",
    "GAN",
    "FeatureExtractor",
    "Hallucinator",
    "PairVAE",
    "VAE",
    "Encoding",
    "Generator",
    "GeneratorHolder",
    "create_generator",
    "list_families",
    "list_generators",
    "load_extractor",
    "load_generator",
    "load_pipeline",
    "read_generator_config",
    "register",
    "save_generator",
    "validate_image_size",
]
