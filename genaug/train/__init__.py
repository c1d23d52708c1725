"""The one training loop for every generator family."""

from genaug.train.config import TrainConfig
from genaug.train.loop import TrainingDiverged, TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "TrainingDiverged", "train"]
