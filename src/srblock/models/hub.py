"""Weights to share: a folder or Hugging Face Hub repository holding ``config.json`` and ``model.safetensors``.

``config.json`` is a recipe's ``model`` section (what :func:`srblock.models.model_from_config` builds) and
``model.safetensors`` the network's own state dict: weights only, with the keys of the plain network, so the same
file also loads with :func:`srblock.models.load_backbone_weights`, timm's ``pretrained_cfg_overlay=dict(file=...)``
or ``safetensors.torch.load_file``. Saving and loading go through huggingface_hub's ``ModelHubMixin`` (the
``hub`` extra), which also gives ``push_to_hub`` and a model card.

>>> import torch
>>> from srblock.models.hub import SRModel, from_pretrained
>>> SRModel("cifar_resnet18", sr_stage=3, num_memories=4, width=0.25).save_pretrained("my-sr-net")
>>> model = from_pretrained("my-sr-net")  # or a Hub repository id, e.g. "user/my-sr-net"
>>> model.layer3.sr.memory.shape
torch.Size([4, 64, 8, 8])
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._extras import requires_extra
from .registry import INIT_ONLY_KEYS, model_from_config

with requires_extra("hub", "srblock.models.hub (Hugging Face folders)"):
    from huggingface_hub import ModelHubMixin, hf_hub_download
    from safetensors.torch import load_file, save_file

__all__ = ["CONFIG_NAME", "WEIGHTS_NAME", "SRModel", "from_pretrained", "save_pretrained"]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

_MODEL_CARD = """---
{{ card_data }}
---

A network with a Squeeze-and-Remember (SR) block ([paper]({{ paper_url }})), saved with srblock.
`config.json` is the recipe's model section, `model.safetensors` the network's weights.

```python
from srblock.models.hub import from_pretrained

model = from_pretrained("<this repository or folder>")  # pip install 'srblock[hub]'
```
"""


def _shareable(config: Mapping[str, Any]) -> dict[str, Any]:
    """The model section as it goes into config.json: JSON only, without the keys that only chose initial weights."""
    section = {k: v for k, v in config.items() if k not in INIT_ONLY_KEYS}
    try:
        json.dumps(section)
    except TypeError as err:
        raise ValueError(
            f"the model config must be JSON (numbers, strings, lists, dicts) to be shared, got {section!r}: {err}"
        ) from None
    return section


def _check_export(folder: Path) -> None:
    """``FileExistsError`` unless ``folder`` is an export (what :meth:`SRModel.save_pretrained` writes, nothing
    else): ``overwrite`` replaces that and never a folder of anything else."""
    ours = {CONFIG_NAME, WEIGHTS_NAME, "README.md"}
    foreign = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else [folder.name]
    foreign = [name for name in foreign if name not in ours]
    if not foreign and not (folder / WEIGHTS_NAME).is_file():
        foreign = [f"no {WEIGHTS_NAME}"]
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise FileExistsError(
            f"{folder} is not an srblock export (it holds {shown}), so --overwrite (overwrite=True) does not replace "
            "it: it replaces only a folder of config.json, model.safetensors and README.md. Choose another folder"
        )


class SRModel(
    nn.Module,
    ModelHubMixin,
    library_name="srblock",
    paper_url="https://arxiv.org/abs/2410.00823",
    tags=["squeeze-and-remember", "image-classification"],
    model_card_template=_MODEL_CARD,
):
    """A zoo network (``self.model``) with huggingface_hub's ``save_pretrained``, ``from_pretrained`` and
    ``push_to_hub``.

    Built from a recipe's model section: ``SRModel("resnet50", sr_stage=3, num_memories=10, hidden=16)``; wrap a
    network you already have with :meth:`from_model`. ``forward`` is the network's. Keys that only choose initial
    weights (``weights``, ``weights_backbone``, ``backbone_weights``) are used for building but not saved: the saved
    weights supersede them.
    """

    def __init__(self, name: str, **options: Any) -> None:
        super().__init__()
        self.config = _shareable({"name": name, **options})
        self.model = model_from_config({"name": name, **options})

    @classmethod
    def from_model(cls, model: nn.Module, config: Mapping[str, Any]) -> SRModel:
        """Wrap ``model`` (e.g. just trained) with the model section ``config`` that builds its architecture."""
        if "name" not in config:
            raise ValueError(f"config must be a model section with a 'name' (a registered model), got {dict(config)}")
        wrapper = cls.__new__(cls)
        nn.Module.__init__(wrapper)
        wrapper.config = _shareable(config)
        wrapper.model = model
        return wrapper

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.model(*args, **kwargs)

    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        *,
        overwrite: bool = False,
        push_to_hub: bool = False,
        repo_id: str | None = None,
        **kwargs: Any,
    ) -> str | None:
        """Write ``config.json``, ``model.safetensors`` and a model card (``README.md``) into ``save_directory``.

        The folder is written whole next to its destination and then renamed into place, so it is never seen half
        written; an existing non-empty folder is an error unless ``overwrite``, which replaces only an earlier export
        (a folder holding nothing but ``config.json``, ``model.safetensors`` and ``README.md``): anything else, a run
        folder above all, is never deleted. ``push_to_hub=True`` then uploads it to ``repo_id`` (default: the
        folder's name); other keywords go to huggingface_hub's ``save_pretrained``.
        """
        target = Path(save_directory)
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            if not overwrite:
                raise FileExistsError(
                    f"{target} exists and is not empty; choose another folder or pass overwrite=True (--overwrite)"
                )
            _check_export(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        umask = os.umask(0o022)
        os.umask(umask)
        os.chmod(staging, 0o777 & ~umask)  # the mode a plain mkdir gives, not mkdtemp's 0o700
        try:
            super().save_pretrained(staging, config=kwargs.pop("config", None) or self.config, **kwargs)
            for written in staging.iterdir():  # safetensors writes 0o600: give the mode every other writer's files get
                os.chmod(written, 0o666 & ~umask)
            if target.exists() and (not target.is_dir() or any(target.iterdir())):  # overwrite: swap, then delete
                old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
                os.replace(target, old / target.name)
                os.replace(staging, target)
                shutil.rmtree(old)
            else:
                os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        if push_to_hub:
            return self.push_to_hub(repo_id or target.name, config=self.config)
        return None

    def _save_pretrained(self, save_directory: Path) -> None:
        # the network's own keys (no "model." prefix), contiguous, on the CPU: what safetensors stores
        state = {k: v.detach().to("cpu").contiguous() for k, v in self.model.state_dict().items()}
        save_file(state, save_directory / WEIGHTS_NAME, metadata={"format": "pt"})

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id: str,
        revision: str | None,
        cache_dir: str | Path | None,
        force_download: bool,
        local_files_only: bool,
        token: str | bool | None,
        map_location: str | torch.device = "cpu",
        **section: Any,  # config.json's keys (not named `config`: the mixin would then pass the whole dict too)
    ) -> SRModel:
        if "name" not in section:
            raise FileNotFoundError(f"no {CONFIG_NAME} with a model 'name' in {model_id}; was it saved by srblock?")
        if Path(model_id).is_dir():
            weights = Path(model_id) / WEIGHTS_NAME
            if not weights.is_file():
                raise FileNotFoundError(f"no {WEIGHTS_NAME} in {model_id}")
        else:
            weights = hf_hub_download(
                repo_id=model_id,
                filename=WEIGHTS_NAME,
                revision=revision,
                cache_dir=cache_dir,
                force_download=force_download,
                token=token,
                local_files_only=local_files_only,
            )
        wrapper = cls(**section)
        wrapper.model.load_state_dict(load_file(weights, device=str(map_location)))  # strict: file and config agree
        return wrapper.to(map_location).eval()


def from_pretrained(repo_or_dir: str | os.PathLike, **kwargs: Any) -> nn.Module:
    """The zoo network saved in a folder or Hub repository, in eval mode (``SRModel.from_pretrained(...).model``).

    ``kwargs`` go to huggingface_hub's ``from_pretrained`` (``revision``, ``cache_dir``, ``token``,
    ``local_files_only``, ...) plus ``map_location``.
    """
    return SRModel.from_pretrained(str(repo_or_dir), **kwargs).model


def save_pretrained(
    model: nn.Module, directory: str | os.PathLike, config: Mapping[str, Any], *, overwrite: bool = False
) -> Path:
    """Save ``model`` with the model section ``config`` that builds it into ``directory`` (see ``SRModel``)."""
    SRModel.from_model(model, config).save_pretrained(directory, overwrite=overwrite)
    return Path(directory)
