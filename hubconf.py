"""torch.hub entry points: every network of the srblock zoo by its registry name.

    model = torch.hub.load("<owner>/srblock", "resnet50", sr_stage=3, num_memories=10, hidden=16)
    model = torch.hub.load("/path/to/srblock", "cifar_resnet18", source="local", sr_stage=3, num_classes=100)

Each entry point takes the keywords of ``srblock.models.create_model`` (``sr_stage``, ``num_memories``, ``hidden``,
``regularizer``, ``attention``, ``num_classes``, ``width`` ...), including torchvision's ``weights=`` for the
ImageNet ResNets and the segmentation models (e.g. ``weights="IMAGENET1K_V2"``); ``torch.hub.list`` names them and
``torch.hub.help`` shows what each network is.
"""

import os as _os
import sys as _sys

dependencies = ["torch", "torchvision"]

# torch.hub puts the repository's root on sys.path; the package lives in src/ (an installed srblock, if already
# imported, is used as it is).
_SRC = _os.path.join(_os.path.dirname(_os.path.abspath(__file__)), "src")
if _SRC not in _sys.path:
    _sys.path.insert(0, _SRC)

from srblock.models import create_model as _create_model  # noqa: E402
from srblock.models import get_model_entry as _get_model_entry  # noqa: E402
from srblock.models import list_models as _list_models  # noqa: E402


def _entrypoint(name):
    def entry(**kwargs):
        return _create_model(name, **kwargs)

    entry.__name__ = entry.__qualname__ = name
    entry.__doc__ = (
        f"{_get_model_entry(name).description}\n\n"
        f"Keywords as srblock.models.create_model, e.g. torch.hub.load(repo, {name!r}, sr_stage=3, num_memories=10)."
    )
    return entry


for _name in _list_models():
    globals()[_name] = _entrypoint(_name)
