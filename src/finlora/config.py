"""params.yaml: the typed schema and its validation, in one place.

Every stage calls `load_params()` first, so a typo or an impossible value stops the run with a
one-line message naming the key and the valid values, before any data or model is touched.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from finlora.errors import FinloraError
from finlora.tasks import TASKS

PARAMS_FILE = "params.yaml"
BUILTIN_MODELS = ("smollm2-135m",)
SOURCES = ("sample", "hub", "local", "finlora")
QUANT_BITS = (4, 8, 16)
ON_BAD_RECORD = ("error", "skip")
PROTOCOLS = ("strict", "finlora-2025-01", "finlora-2025-08")  # finlora.protocols (not imported: training never
# depends on scoring code)
TFNS_LABELS = ("corrected", "published")  # finlora.sources.released
DEVICE_MAPS = ("none", "auto")
PREFIX_CACHES = ("tree", "shared", "none")  # finlora.generation
TARGET_SETS = {"all-linear": ["all-linear"], "attention": ["q_proj", "k_proj", "v_proj", "o_proj"],
               "qkv": ["q_proj", "k_proj", "v_proj"]}  # lora.target_modules by name
LORA_VARIANTS = ("lora", "dora", "rslora")
HEADS = ("generate", "classify")  # finlora.head (not imported: it loads torch)
ZERO_STAGES = (0, 1, 2)
SAMPLING_POLICIES = ("proportional", "balanced", "temperature")  # finlora.mixing
GROUP_TRAIN_KEYS = ("lr", "epochs", "batch_size", "grad_accum", "max_seq_len", "prefix_packing")  # train.by_group


def invalid(key: str, value: Any, valid: str) -> FinloraError:
    return FinloraError(f"{key} = {value!r} is not valid; valid: {valid}")


def check_at_least(key: str, value: int, minimum: int, valid: str | None = None) -> None:
    if value < minimum:
        raise invalid(key, value, valid or f"an integer >= {minimum}")


def check_choice(key: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise invalid(key, value, " | ".join(map(str, choices)))


# Each section states its keys (no defaults: params.yaml is the one place they are set) and checks
# its own values; `Params.check` checks what spans sections.

@dataclass(frozen=True)
class ModelParams:
    base: str
    chat_template: bool
    task_marker: bool
    trust_remote_code: bool
    head: str  # generate | classify (finlora.head)

    def check(self) -> None:
        """A builtin name, an existing local folder, or something shaped like a Hub id (org/name)."""
        check_choice("model.head", self.head, HEADS)
        if self.base in BUILTIN_MODELS or Path(self.base).is_dir():
            return
        if self.base.startswith((".", "/", "~")) or self.base.count("/") != 1:
            raise FinloraError(
                f"model.base = {self.base!r}: no such folder",
                hint=f"use a builtin ({', '.join(BUILTIN_MODELS)}), a Hub id like org/name, "
                "or an existing local model folder",
            )


@dataclass(frozen=True)
class SplitSizes:
    train: int
    test: int


@dataclass(frozen=True)
class DataParams:
    source: str
    local_dir: str
    train_size: int
    test_size: int
    sizes: dict[str, SplitSizes]  # may be left out: no per-task sizes
    seed: int
    on_bad_record: str
    carved_test_fraction: float
    tfns_labels: str

    def split_sizes(self, task: str) -> SplitSizes:
        return self.sizes.get(task, SplitSizes(self.train_size, self.test_size))

    def check(self) -> None:
        check_choice("data.source", self.source, SOURCES)
        check_at_least("data.train_size", self.train_size, 1)
        check_at_least("data.test_size", self.test_size, 1)
        check_choice("data.on_bad_record", self.on_bad_record, ON_BAD_RECORD)
        check_choice("data.tfns_labels", self.tfns_labels, TFNS_LABELS)
        if not 0 < self.carved_test_fraction < 1:
            raise invalid("data.carved_test_fraction", self.carved_test_fraction, "a number in (0, 1)")
        for task, sizes in self.sizes.items():
            if task not in TASKS:
                raise invalid(f"data.sizes.{task}", task, f"a known task: {', '.join(TASKS)}")
            if sizes.train < 1 or sizes.test < 1:
                raise invalid(f"data.sizes.{task}", dataclasses.asdict(sizes), "train and test >= 1")


@dataclass(frozen=True)
class FinerParams:
    entities_per_sentence: int
    questions_per_prompt: int

    def check(self) -> None:
        check_at_least("finer.entities_per_sentence", self.entities_per_sentence, 1)
        check_at_least("finer.questions_per_prompt", self.questions_per_prompt, 1)


@dataclass(frozen=True)
class XbrlParams:
    text_value_chars: int
    max_prompt_chars: int

    def check(self) -> None:
        check_at_least("xbrl.text_value_chars", self.text_value_chars, 1)
        check_at_least("xbrl.max_prompt_chars", self.max_prompt_chars, 1)


@dataclass(frozen=True)
class LoraParams:
    rank: int
    alpha: int
    dropout: float
    target_modules: list[str]
    variant: str

    def check(self) -> None:
        check_at_least("lora.rank", self.rank, 1)
        check_at_least("lora.alpha", self.alpha, 1)
        if not 0 <= self.dropout < 1:
            raise invalid("lora.dropout", self.dropout, "a number in [0, 1)")
        if not self.target_modules:
            raise invalid("lora.target_modules", self.target_modules,
                          f"a non-empty list such as [q_proj, v_proj], or one of {', '.join(TARGET_SETS)}")
        check_choice("lora.variant", self.variant, LORA_VARIANTS)


@dataclass(frozen=True)
class QuantParams:
    bits: int

    def check(self) -> None:
        check_choice("quant.bits", self.bits, QUANT_BITS)


def _group_value(name: str, key: str, value: Any) -> float | int | bool:
    """A train.by_group value as the shared setting's type: lr a number, prefix_packing a
    boolean, the rest whole numbers."""
    if key == "lr":
        if isinstance(value, bool):
            raise invalid(name, value, "a number > 0")
        return value
    if key == "prefix_packing":
        if not isinstance(value, bool):
            raise invalid(name, value, "true or false")
        return value
    if isinstance(value, bool) or not float(value).is_integer():
        raise invalid(name, value, "an integer")
    return int(value)


@dataclass(frozen=True)
class TrainParams:
    lr: float
    epochs: int
    batch_size: int
    grad_accum: int
    max_seq_len: int
    zero_stage: int
    num_gpus: int
    hostfile: str
    gradient_checkpointing: bool
    liger_kernel: bool
    prefix_packing: bool  # a micro-batch's examples that share a long prefix run it once (finlora.packing)
    checkpoint_every: int
    seeds: list[int]  # one adapter per seed and group; the report gives the mean and spread over them
    sampling: str
    sampling_temperature: float
    validation_fraction: float  # of each task's training examples, held out and scored while training
    validate_every: int  # optimizer steps between validations (the last step is always validated)
    keep_best: bool  # save the adapter of the best validated step instead of the last step's
    by_group: dict[str, dict[str, float | bool]]  # may be left out: every group trains with the settings above

    def check(self) -> None:
        self.check_values("train.")  # the shared settings first: a group inherits them
        for group, changes in self.by_group.items():
            unknown = sorted(set(changes) - set(GROUP_TRAIN_KEYS))
            if unknown:
                raise invalid(f"train.by_group.{group}.{unknown[0]}", changes[unknown[0]],
                              f"a key among {', '.join(GROUP_TRAIN_KEYS)}")
            self.for_group(group).check_values(f"train.by_group.{group}.")

    @property
    def seed(self) -> int:
        """The seed of one training: `Params.for_seed` picks it from train.seeds."""
        if len(self.seeds) != 1:
            raise FinloraError(f"train.seeds holds {len(self.seeds)} seeds; one training uses one",
                               hint="pick it with Params.for_seed (the train stage's --seed)")
        return self.seeds[0]

    def for_group(self, group: str) -> "TrainParams":
        """These settings with the group's own (train.by_group) in place of the shared ones."""
        changes = {key: _group_value(f"train.by_group.{group}.{key}", key, value)
                   for key, value in self.by_group.get(group, {}).items()}
        return dataclasses.replace(self, by_group={}, **changes)

    def check_values(self, prefix: str) -> None:
        if not 0 < self.lr < math.inf:  # also refuses nan
            raise invalid(f"{prefix}lr", self.lr, "a number > 0")
        for key in ("epochs", "batch_size", "grad_accum", "num_gpus"):
            check_at_least(f"{prefix}{key}", getattr(self, key), 1)
        check_at_least(f"{prefix}checkpoint_every", self.checkpoint_every, 0, "0 (no checkpoints) or a number of steps")
        check_at_least(f"{prefix}max_seq_len", self.max_seq_len, 16)
        check_choice("train.zero_stage", self.zero_stage, ZERO_STAGES)
        if self.hostfile != "none" and not Path(self.hostfile).is_file():
            raise invalid("train.hostfile", self.hostfile, "none (this machine only) or an existing DeepSpeed "
                          "hostfile, one 'host slots=N' line per machine")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise invalid("train.seeds", self.seeds, "a list of distinct integers, such as [42] or [1, 2, 3]")
        check_choice("train.sampling", self.sampling, SAMPLING_POLICIES)
        if not 1 <= self.sampling_temperature < math.inf:
            raise invalid("train.sampling_temperature", self.sampling_temperature,
                          "a number >= 1 (1: proportional; larger: closer to balanced)")
        if not 0 <= self.validation_fraction < 0.5:
            raise invalid("train.validation_fraction", self.validation_fraction,
                          "a fraction from 0 (no validation split) to below 0.5; FinLoRA keeps 0.05")
        check_at_least("train.validate_every", self.validate_every, 1)
        if self.prefix_packing and self.gradient_checkpointing:
            raise invalid(f"{prefix}prefix_packing", self.prefix_packing,
                          "false while train.gradient_checkpointing is true (a checkpointed layer's recomputation "
                          "drops the shared prefix's cache)")
        if self.prefix_packing and self.zero_stage >= 2:
            raise invalid(f"{prefix}prefix_packing", self.prefix_packing,
                          "false while train.zero_stage is 2 (a packed micro-batch takes a backward pass per prefix "
                          "group, and ZeRO 2 reduces each pass's gradients as it goes: use zero_stage 0 or 1)")
        if self.keep_best and self.validation_fraction == 0:
            raise invalid("train.keep_best", self.keep_best,
                          "false while train.validation_fraction is 0 (no validation split to choose a step by)")


@dataclass(frozen=True)
class EvalParams:
    batch_size: int
    batch_tokens: int
    prefix_cache: str
    max_new_tokens: int
    max_new_tokens_by_task: dict[str, int]  # may be left out: every task gets max_new_tokens
    limit: int
    bits: int
    merge_adapter: bool
    device_map: str
    protocol: str
    bertscore_model: str  # free text's BERTScore scorer (finlora.bertscore); "" for none

    def check(self) -> None:
        check_at_least("eval.batch_size", self.batch_size, 1)
        check_at_least("eval.batch_tokens", self.batch_tokens, 1)
        check_choice("eval.prefix_cache", self.prefix_cache, PREFIX_CACHES)
        check_at_least("eval.max_new_tokens", self.max_new_tokens, 1)
        for task, tokens in self.max_new_tokens_by_task.items():
            if task not in TASKS:
                raise invalid(f"eval.max_new_tokens_by_task.{task}", task, f"a known task: {', '.join(TASKS)}")
            check_at_least(f"eval.max_new_tokens_by_task.{task}", tokens, 1)
        check_at_least("eval.limit", self.limit, 0, "0 (all test examples) or a positive integer")
        check_choice("eval.bits", self.bits, QUANT_BITS)
        if self.merge_adapter and self.bits != 16:
            raise FinloraError(
                f"eval.merge_adapter with eval.bits {self.bits} is not supported: merging into "
                "quantized weights rounds the adapter away",
                hint="evaluate the adapter unmerged (merge_adapter: false, as the paper does) or use eval.bits 16")
        check_choice("eval.device_map", self.device_map, DEVICE_MAPS)
        check_choice("eval.protocol", self.protocol, PROTOCOLS)


@dataclass(frozen=True)
class FewShotParams:
    shots: list[int]  # k of each few-shot evaluation of the base model (stage evaluate_few_shot); [] for none
    seed: int  # which train records are shown (finlora.fewshot)

    def check(self) -> None:
        if len(set(self.shots)) != len(self.shots) or any(k < 1 for k in self.shots):
            raise invalid("few_shot.shots", self.shots, "a list of distinct integers >= 1, such as [1, 3, 5], "
                          "or [] for no few-shot evaluation")


@dataclass(frozen=True)
class ForgettingParams:
    tasks: list[str]  # lm-eval tasks the base model and each adapter are scored on (finlora.forgetting); [] for none
    limit: int  # examples a task at most; 0 for all

    def check(self) -> None:
        if len(set(self.tasks)) != len(self.tasks) or not all(self.tasks):
            raise invalid("forgetting.tasks", self.tasks, "distinct lm-eval task names, such as [finance_basics] "
                          "or [mmlu, hellaswag], or [] for none")
        check_at_least("forgetting.limit", self.limit, 0, "0 (every example) or a positive integer")


@dataclass(frozen=True)
class Params:
    model: ModelParams
    data: DataParams
    tasks: dict[str, list[str]]
    finer: FinerParams
    xbrl: XbrlParams
    lora: LoraParams
    quant: QuantParams
    train: TrainParams
    eval: EvalParams
    few_shot: FewShotParams
    forgetting: ForgettingParams

    def group_tasks(self, group: str) -> list[str]:
        if group not in self.tasks:
            raise FinloraError(
                f"unknown task group '{group}'",
                hint=f"groups in {PARAMS_FILE} tasks: {', '.join(self.tasks)}",
            )
        return self.tasks[group]

    def for_group(self, group: str) -> "Params":
        """The settings `group` trains with: its train.by_group changes in place of the shared ones,
        and its tasks alone in `tasks` (a classification head's labels are the group's)."""
        tasks = self.group_tasks(group)
        return dataclasses.replace(self, tasks={group: tasks}, train=self.train.for_group(group))

    def for_seed(self, seed: int) -> "Params":
        """The settings of the training with `seed`, one of train.seeds."""
        if seed not in self.train.seeds:
            raise invalid("--seed", seed, f"one of train.seeds: {', '.join(map(str, self.train.seeds))}")
        return dataclasses.replace(self, train=dataclasses.replace(self.train, seeds=[seed]))

    @property
    def all_tasks(self) -> list[str]:
        return [task for tasks in self.tasks.values() for task in tasks]

    def check(self) -> None:
        for section in (self.model, self.data, self.finer, self.xbrl, self.lora, self.quant, self.train, self.eval,
                        self.few_shot, self.forgetting):
            section.check()
        self._check_tasks()
        if self.model.head == "classify":
            self._check_head()
        if self.eval.protocol != "strict" and self.model.chat_template:
            raise FinloraError(f"eval.protocol {self.eval.protocol} with model.chat_template true: FinLoRA's code prompts the "
                               "model with the raw prompt, no chat template",
                               hint="set model.chat_template: false (training and evaluation then use the raw "
                               "prompt) or eval.protocol: strict")

    def _check_head(self) -> None:
        """A classification head answers tasks with a closed label set, scored our way, unpacked."""
        unlabelled = [f"{task} (tasks.{group})" for group, tasks in self.tasks.items() for task in tasks
                      if not TASKS[task].labels]
        if unlabelled:
            labelled = ", ".join(name for name, task in TASKS.items() if task.labels)
            raise FinloraError(f"model.head classify: {', '.join(unlabelled)} has no fixed label set to classify into",
                               hint=f"keep tasks with labels ({labelled}), e.g. $(finlora profile classify-cpu), "
                               "or set model.head: generate")
        if self.eval.protocol != "strict":
            raise invalid("eval.protocol", self.eval.protocol, "strict with model.head classify: FinLoRA's "
                          "protocols read generated text, and the head generates none")
        if self.train.prefix_packing or any(g.get("prefix_packing") for g in self.train.by_group.values()):
            raise invalid("train.prefix_packing", True, "false with model.head classify: the head reads "
                          "each prompt's last token, which a packed prefix shares")

    def _check_tasks(self) -> None:
        if not self.tasks:
            raise invalid("tasks", self.tasks, "at least one group, e.g. {sentiment: [fpb]}")
        seen: set[str] = set()
        for group, tasks in self.tasks.items():
            if not tasks:
                raise invalid(f"tasks.{group}", tasks, "a non-empty list of tasks")
            for task in tasks:
                if task not in TASKS:
                    raise invalid(f"tasks.{group}", task, f"tasks from {', '.join(TASKS)}")
                if task in seen:
                    raise invalid(f"tasks.{group}", task, "each task in one group only")
                seen.add(task)
                if self.data.source == "finlora" and not TASKS[task].in_finlora:
                    raise FinloraError(f"task {task} with data.source finlora: FinLoRA publishes no {task} files",
                                       hint=f"use data.source hub, local (files under {self.data.local_dir}/{task}/) "
                                       "or sample for it")
                if self.data.source == "hub" and TASKS[task].hub is None:
                    raise FinloraError(
                        f"task {task} with data.source hub: it has no loadable Hub data set here",
                        hint=f"use data.source finlora (FinLoRA's files), local (files under "
                        f"{self.data.local_dir}/{task}/) or sample")


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
    if isinstance(raw, dict) and isinstance(raw.get("lora"), dict):
        raw = {**raw, "lora": _lora_shorthands(raw["lora"], source)}
    params = _build(Params, raw, key="", source=source)
    try:
        params.check()
    except FinloraError as error:
        raise FinloraError(f"{source}: {error.args[0]}", hint=error.hint) from None
    return params


def _lora_shorthands(lora: dict, source: str) -> dict:
    """A named target set (`all-linear`, `attention`, `qkv`) for its modules, and an alpha relative
    to the rank (`2r`: twice the rank, as the LoRA vs QLoRA study sweeps it) for its value."""
    lora = dict(lora)
    if isinstance(lora.get("target_modules"), str) and lora["target_modules"] in TARGET_SETS:
        lora["target_modules"] = TARGET_SETS[lora["target_modules"]]
    alpha = lora.get("alpha")
    if isinstance(alpha, str) and alpha.endswith("r") and isinstance(lora.get("rank"), int):
        try:
            value = float(alpha[:-1] or 1) * lora["rank"]
        except ValueError:
            value = None
        if value is None or not value.is_integer() or value < 1:
            raise FinloraError(f"{source}: lora.alpha = {alpha!r} is not valid; valid: an integer >= 1, or a "
                               f"multiple of the rank such as 2r that comes to a whole number (rank {lora['rank']})")
        lora["alpha"] = int(value)
    return lora


def with_changes(changes: dict, path: str | Path = PARAMS_FILE) -> Params:
    """The params of `path` with some keys changed: each section's given keys replace its own,
    `tasks` is replaced whole. How tests and benchmarks say only what differs from params.yaml."""
    raw = yaml.safe_load(Path(path).read_text())
    for section, values in changes.items():
        replace_whole = section == "tasks" or not isinstance(raw.get(section), dict)
        raw[section] = values if replace_whole else {**raw[section], **values}
    return parse_params(raw, source=f"{path} with {changes}")


def _build(cls: type, raw: Any, key: str, source: str) -> Any:
    """Build dataclass `cls` from a mapping, rejecting unknown keys and wrong types."""
    if not isinstance(raw, dict):
        raise FinloraError(f"{source}: {key or 'top level'} must be a mapping (got {raw!r})")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        where = f"{key}." if key else ""
        raise FinloraError(
            f"{source}: unknown key {where + str(unknown[0])!r}",  # quoted as Python would: a key may hold a newline
            hint=f"valid keys{' in ' + key if key else ''}: {', '.join(fields)}",
        )
    hints = typing.get_type_hints(cls)
    optional = {name for name in fields if typing.get_origin(hints[name]) is dict}
    missing = [name for name in fields if name not in raw and name not in optional]
    if missing:
        raise FinloraError(f"{source}: missing key '{_join(key, missing[0])}'",
                           hint=f"the repository's {PARAMS_FILE} lists every key with its default value")
    values = {name: _coerce(hints[name], raw[name], _join(key, name), source) if name in raw else {}
              for name in fields}
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
    if origin in (typing.Union, types.UnionType):  # scalars only, the first type that takes the value
        for option in args:
            try:
                return _scalar(option, value, key, source)
            except FinloraError:
                pass
        raise FinloraError(f"{source}: {key} must be {' or '.join(map(_type_name, args))} (got {value!r})")
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
