"""The paper's networks by name, surgery that puts SR blocks into any model, and backbone-weight loading.

>>> from srblock.models import create_model, list_models
>>> model = create_model("cifar_resnet18", num_classes=10, sr_stage=3, num_memories=10, regularizer="dropout2d")
"""

from ..layers import count_sr_params, find_sr_blocks  # re-exported: models is where users look for them
from . import airbench, cifar_resnet, cifar_vgg, resnet, segmentation, tsc  # noqa: F401  (importing registers the models)
from .attention import ATTENTIONS
from .export import export_onnx
from .registry import ModelEntry, create_model, get_model_entry, list_models, model_from_config, register_model
from .regularizers import REGULARIZERS, DropBlock, set_dropblock_progress
from .surgery import insert_sr, remove_sr
from .weights import LoadReport, load_backbone_weights, load_torchvision_weights

__all__ = [
    "ATTENTIONS",
    "REGULARIZERS",
    "DropBlock",
    "LoadReport",
    "ModelEntry",
    "count_sr_params",
    "create_model",
    "export_onnx",
    "find_sr_blocks",
    "get_model_entry",
    "insert_sr",
    "list_models",
    "load_backbone_weights",
    "load_torchvision_weights",
    "model_from_config",
    "register_model",
    "remove_sr",
    "set_dropblock_progress",
]
