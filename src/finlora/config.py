"""params.yaml: the typed schema and its validation, in one place.

Every stage calls `load_params()` first, so a typo or an impossible value stops the run with a
one-line message naming the key and the valid values, before any data or model is touched.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from finlora.errors import FinloraError
from finlora.tasks import TASKS

PARAMS_FILE = "params.yaml"
BUILTIN_MODELS = ("smollm2-135m",)
SOURCES = ("sample", "hub", "local")
QUANT_BITS = (4, 8, 16)
ON_BAD_RECORD = ("error", "skip")
DEVICE_MAPS = ("none", "auto")
LORA_VARIANTS = ("lora", "dora", "rslora")
ZERO_STAGES = (0, 1, 2)


@dataclass(frozen=True)
class ModelParams:
    base: str = "smollm2-135m"
    chat_template: bool = True
    trust_remote_code: bool = False


@dataclass(frozen=True)
class SplitSizes:
    train: int
    test: int


@dataclass(frozen=True)
class DataParams:
    source: str = "sample"
    local_dir: str = "data/local"
    train_size: int = 64
    test_size: int = 32
    sizes: dict[str, SplitSizes] = field(default_factory=dict)
    seed: int = 42
    on_bad_record: str = "error"

    def split_sizes(self, task: str) -> SplitSizes:
        return self.sizes.get(task, SplitSizes(self.train_size, self.test_size))


@dataclass(frozen=True)
class FinerParams:
    entities_per_sentence: int = 3
    questions_per_prompt: int = 4


@dataclass(frozen=True)
class XbrlParams:
    text_value_chars: int = 100
    max_prompt_chars: int = 24000


@dataclass(frozen=True)
class LoraParams:
    rank: int = 4
    alpha: int = 32
    dropout: float = 0.1
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj"])
    variant: str = "lora"


@dataclass(frozen=True)
class QuantParams:
    bits: int = 16


@dataclass(frozen=True)
class TrainParams:
    lr: float = 1e-4
    epochs: int = 1
    batch_size: int = 8
    grad_accum: int = 1
    max_seq_len: int = 256
    zero_stage: int = 0
    num_gpus: int = 1
    hostfile: str = "/job/hostfile"
    gradient_checkpointing: bool = False
    liger_kernel: bool = False
    checkpoint_every: int = 0
    seed: int = 42


@dataclass(frozen=True)
class EvalParams:
    batch_size: int = 16
    max_new_tokens: int = 8
    max_new_tokens_by_task: dict[str, int] = field(default_factory=dict)
    limit: int = 0
    bits: int = 16
    merge_adapter: bool = False
    device_map: str = "none"

    def new_tokens(self, task: str) -> int:
        return self.max_new_tokens_by_task.get(task, self.max_new_tokens)


@dataclass(frozen=True)
class Params:
    model: ModelParams = field(default_factory=ModelParams)
    data: DataParams = field(default_factory=DataParams)
    tasks: dict[str, list[str]] = field(default_factory=dict)
    finer: FinerParams = field(default_factory=FinerParams)
    xbrl: XbrlParams = field(default_factory=XbrlParams)
    lora: LoraParams = field(default_factory=LoraParams)
    quant: QuantParams = field(default_factory=QuantParams)
    train: TrainParams = field(default_factory=TrainParams)
    eval: EvalParams = field(default_factory=EvalParams)

    def group_tasks(self, group: str) -> list[str]:
        if group not in self.tasks:
            raise FinloraError(
                f"unknown task group '{group}'",
                hint=f"groups in {PARAMS_FILE} tasks: {', '.join(self.tasks)}",
            )
        return self.tasks[group]

    @property
    def all_tasks(self) -> list[str]:
        return [task for tasks in self.tasks.values() for task in tasks]


def load_params(path: str | Path = PARAMS_FILE) -> Params:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise FinloraError(f"{path}: file not found", hint="run from the repository root") from None
    except yaml.YAMLError as error:
        raise FinloraError(f"{path}: not valid YAML ({error})".replace("\n", " ")) from None
    return parse_params(raw or {}, source=str(path))


def parse_params(raw: Any, source: str = PARAMS_FILE) -> Params:
    if isinstance(raw, dict) and isinstance(raw.get("lora"), dict) and raw["lora"].get("target_modules") == "all-linear":
        raw = {**raw, "lora": {**raw["lora"], "target_modules": ["all-linear"]}}
    params = _build(Params, raw, key="", source=source)
    _check_values(params, source)
    return params


def _build(cls: type, raw: Any, key: str, source: str) -> Any:
    """Build dataclass `cls` from a mapping, rejecting unknown keys and wrong types."""
    if not isinstance(raw, dict):
        raise FinloraError(f"{source}: {key or 'top level'} must be a mapping (got {raw!r})")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        where = f"{key}." if key else ""
        raise FinloraError(
            f"{source}: unknown key '{where}{unknown[0]}'",
            hint=f"valid keys{' in ' + key if key else ''}: {', '.join(fields)}",
        )
    hints = typing.get_type_hints(cls)
    values = {name: _coerce(hints[name], raw[name], _join(key, name), source) for name in raw}
    return cls(**values)


def _coerce(kind: Any, value: Any, key: str, source: str) -> Any:
    if dataclasses.is_dataclass(kind):
        return _build(kind, value, key, source)
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is list:
        if not isinstance(value, list):
            raise FinloraError(f"{source}: {key} must be a list (got {value!r})")
        return [_coerce(args[0], item, f"{key}[{i}]", source) for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise FinloraError(f"{source}: {key} must be a mapping (got {value!r})")
        return {k: _coerce(args[1], v, _join(key, str(k)), source) for k, v in value.items()}
    if origin in (typing.Union, types.UnionType):
        raise TypeError(f"unsupported schema type for {key}")
    return _scalar(kind, value, key, source)


def _scalar(kind: type, value: Any, key: str, source: str) -> Any:
    # YAML gives int for "1" and float for "1e-4" only with a dot; accept ints where floats go.
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is float and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    raise FinloraError(f"{source}: {key} must be {_type_name(kind)} (got {value!r})")


def _type_name(kind: type) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}[kind]


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _check_values(p: Params, source: str) -> None:
    def bad(key: str, value: Any, valid: str) -> FinloraError:
        return FinloraError(f"{source}: {key} = {value!r} is not valid; valid: {valid}")

    _check_model_base(p.model.base, source)
    if p.data.source not in SOURCES:
        raise bad("data.source", p.data.source, " | ".join(SOURCES))
    for key, value in [("data.train_size", p.data.train_size), ("data.test_size", p.data.test_size)]:
        if value < 1:
            raise bad(key, value, "an integer >= 1")
    if p.data.on_bad_record not in ON_BAD_RECORD:
        raise bad("data.on_bad_record", p.data.on_bad_record, " | ".join(ON_BAD_RECORD))
    for task, sizes in p.data.sizes.items():
        if task not in TASKS:
            raise bad(f"data.sizes.{task}", task, f"a known task: {', '.join(TASKS)}")
        if sizes.train < 1 or sizes.test < 1:
            raise bad(f"data.sizes.{task}", dataclasses.asdict(sizes), "train and test >= 1")
    if not p.tasks:
        raise bad("tasks", p.tasks, "at least one group, e.g. {sentiment: [fpb]}")
    seen: set[str] = set()
    for group, tasks in p.tasks.items():
        if not tasks:
            raise bad(f"tasks.{group}", tasks, "a non-empty list of tasks")
        for task in tasks:
            if task not in TASKS:
                raise bad(f"tasks.{group}", task, f"tasks from {', '.join(TASKS)}")
            if task in seen:
                raise bad(f"tasks.{group}", task, "each task in one group only")
            seen.add(task)
            if p.data.source == "hub" and TASKS[task].hub is None:
                raise FinloraError(
                    f"{source}: task {task} with data.source hub: the XBRL extraction questions and filings "
                    "have no loadable Hub data set",
                    hint=f"use data.source local (questions and filings under {p.data.local_dir}/{task}/) "
                    "or sample")
    for key, value in [("finer.entities_per_sentence", p.finer.entities_per_sentence),
                       ("finer.questions_per_prompt", p.finer.questions_per_prompt),
                       ("xbrl.text_value_chars", p.xbrl.text_value_chars),
                       ("xbrl.max_prompt_chars", p.xbrl.max_prompt_chars)]:
        if value < 1:
            raise bad(key, value, "an integer >= 1")
    if p.lora.rank < 1:
        raise bad("lora.rank", p.lora.rank, "an integer >= 1")
    if p.lora.alpha < 1:
        raise bad("lora.alpha", p.lora.alpha, "an integer >= 1")
    if not 0 <= p.lora.dropout < 1:
        raise bad("lora.dropout", p.lora.dropout, "a number in [0, 1)")
    if not p.lora.target_modules:
        raise bad("lora.target_modules", p.lora.target_modules, "a non-empty list such as [q_proj, v_proj], or all-linear")
    if p.lora.variant not in LORA_VARIANTS:
        raise bad("lora.variant", p.lora.variant, " | ".join(LORA_VARIANTS))
    if p.quant.bits not in QUANT_BITS:
        raise bad("quant.bits", p.quant.bits, " | ".join(map(str, QUANT_BITS)))
    if p.train.lr <= 0:
        raise bad("train.lr", p.train.lr, "a number > 0")
    for key in ("epochs", "batch_size", "grad_accum", "num_gpus"):
        if getattr(p.train, key) < 1:
            raise bad(f"train.{key}", getattr(p.train, key), "an integer >= 1")
    if p.train.checkpoint_every < 0:
        raise bad("train.checkpoint_every", p.train.checkpoint_every, "0 (no checkpoints) or a number of steps")
    if p.train.max_seq_len < 16:
        raise bad("train.max_seq_len", p.train.max_seq_len, "an integer >= 16")
    if p.train.zero_stage not in ZERO_STAGES:
        raise bad("train.zero_stage", p.train.zero_stage, " | ".join(map(str, ZERO_STAGES)))
    if p.eval.batch_size < 1:
        raise bad("eval.batch_size", p.eval.batch_size, "an integer >= 1")
    if p.eval.max_new_tokens < 1:
        raise bad("eval.max_new_tokens", p.eval.max_new_tokens, "an integer >= 1")
    for task, tokens in p.eval.max_new_tokens_by_task.items():
        if task not in TASKS:
            raise bad(f"eval.max_new_tokens_by_task.{task}", task, f"a known task: {', '.join(TASKS)}")
        if tokens < 1:
            raise bad(f"eval.max_new_tokens_by_task.{task}", tokens, "an integer >= 1")
    if p.eval.limit < 0:
        raise bad("eval.limit", p.eval.limit, "0 (all test examples) or a positive integer")
    if p.eval.bits not in QUANT_BITS:
        raise bad("eval.bits", p.eval.bits, " | ".join(map(str, QUANT_BITS)))
    if p.eval.merge_adapter and p.eval.bits != 16:
        raise FinloraError(
            f"{source}: eval.merge_adapter with eval.bits {p.eval.bits} is not supported: merging into "
            "quantized weights rounds the adapter away",
            hint="evaluate the adapter unmerged (merge_adapter: false, as the paper does) or use eval.bits 16")
    if p.eval.device_map not in DEVICE_MAPS:
        raise bad("eval.device_map", p.eval.device_map, " | ".join(DEVICE_MAPS))


def _check_model_base(base: str, source: str) -> None:
    """A builtin name, an existing local folder, or something shaped like a Hub id (org/name)."""
    if base in BUILTIN_MODELS or Path(base).is_dir():
        return
    looks_local = base.startswith((".", "/", "~")) or base.count("/") != 1
    if looks_local:
        raise FinloraError(
            f"{source}: model.base = {base!r}: no such folder",
            hint=f"use a builtin ({', '.join(BUILTIN_MODELS)}), a Hub id like org/name, "
            "or an existing local model folder",
        )
