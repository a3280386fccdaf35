"""Before a training loads anything: can this machine run these settings on this base model?"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from finlora import estimate, models
from finlora.config import Params
from finlora.errors import FinloraError


def check_environment(params: Params, base_dir: Path) -> None:
    """Fail before any model loads when the settings cannot work on this machine or base model:
    Liger without CUDA, or a training the GPU's memory cannot hold by the estimate."""
    if params.train.liger_kernel:
        _check_liger_kernel(base_dir)
    if torch.cuda.is_available():
        config = Path(models.weights_location(base_dir)) / "config.json"
        device = torch.cuda.get_device_name()
        estimate.refuse_if_too_big(estimate.Shape.from_config(estimate.read_config(config)),
                                   estimate.setting_for(params), torch.cuda.mem_get_info()[1], device)


def _check_liger_kernel(base_dir: Path) -> None:
    if not torch.cuda.is_available():
        raise FinloraError(
            "train.liger_kernel needs a CUDA GPU (Liger's kernels are written in Triton); none is available here",
            hint="set train.liger_kernel: false on this machine",
        )
    try:
        from liger_kernel.transformers.monkey_patch import MODEL_TYPE_TO_APPLY_LIGER_FN
    except ImportError as error:
        raise FinloraError(f"train.liger_kernel: cannot import Liger's kernels ({error})",
                           hint="pip install liger-kernel==0.8.5 (it needs triton, which CUDA builds of torch "
                           "bring), or set train.liger_kernel: false") from None
    config = Path(models.weights_location(base_dir)) / "config.json"
    model_type = json.loads(config.read_text()).get("model_type")
    if model_type not in MODEL_TYPE_TO_APPLY_LIGER_FN:
        raise FinloraError(f"train.liger_kernel: Liger has no kernels for model type {model_type!r} ({config})",
                           hint="set train.liger_kernel: false for this model; Liger covers "
                           + ", ".join(sorted(MODEL_TYPE_TO_APPLY_LIGER_FN)))
