"""The paper's networks by name, surgery that puts SR blocks into any model, and backbone-weight loading.

>>> from srblock.models import create_model, list_models
>>> model = create_model("cifar_resnet18", num_classes=10, sr_stage=3, num_memories=10, regularizer="dropout2d")
"""

from . import airbench, cifar_resnet, cifar_vgg, resnet, segmentation  # noqa: F401  (importing registers the models)
from .attention import ATTENTIONS
from .registry import ModelEntry, create_model, get_model_entry, list_models, register_model
from .regularizers import REGULARIZERS, DropBlock, set_dropblock_progress
from .surgery import count_sr_params, find_sr_blocks, insert_sr, remove_sr
from .weights import LoadReport, load_backbone_weights

__all__ = [
    "ATTENTIONS",
    "REGULARIZERS",
    "DropBlock",
    "LoadReport",
    "ModelEntry",
    "count_sr_params",
    "create_model",
    "find_sr_blocks",
    "get_model_entry",
    "insert_sr",
    "list_models",
    "load_backbone_weights",
    "register_model",
    "remove_sr",
    "set_dropblock_progress",
]
