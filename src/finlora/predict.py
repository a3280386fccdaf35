"""Using trained adapters: label new text with one task's adapter, or requests of many tasks with
every group's adapter on one base model, and export a merged standalone model."""

from __future__ import annotations

from pathlib import Path

from finlora import head, models
from finlora.config import Params
from finlora.errors import FinloraError
from finlora.files import atomic_dir
from finlora.generation import first_line, generate_answers, left_pad
from finlora.metrics import parse_label
from finlora.prompts import Example, build_context, prompt_ids, task_marked
from finlora.protocols import answer_length
from finlora.tasks import get_task, instruction_for


def group_of(params: Params, task: str) -> str:
    for group, tasks in params.tasks.items():
        if task in tasks:
            return group
    raise FinloraError(f"task {task} is in no group of params.yaml `tasks`, so it has no adapter",
                       hint=f"groups: {', '.join(params.tasks)}")


def record_context(task: str, record: dict, task_marker: bool) -> str:
    """The prompt, as training saw it, from {"context"} or from {"text", "entity"?, "question"?}."""
    if "context" in record:
        return task_marked(record["context"], task, task_marker)
    if "text" not in record:
        raise FinloraError("a record needs 'text' (or a ready 'context')")
    instruction = instruction_for(task, record.get("entity"), record.get("question"))
    return task_marked(build_context(Example(instruction, record["text"], "")), task, task_marker)


def predict(params: Params, task: str, records: list[dict], base_dir: Path, adapter_dir: Path | None) -> list[dict]:
    """Each record with the model's `answer` (generated, or the classification head's label) and
    the parsed `label` (None when it names none)."""
    contexts = [record_context(task, record, params.model.task_marker) for record in records]
    models.base_info(base_dir)  # a clear error before transformers takes a missing folder for a Hub id
    tokenizer = models.load_tokenizer(base_dir, params.model.chat_template)
    model = models.load_model(base_dir, adapter_dir, params.eval.bits)
    prompts = [prompt_ids(tokenizer, context, params.model.chat_template) for context in contexts]
    if head_labels := models.head_labels(adapter_dir):
        answers = head.labels_of(model, prompts, head.allowed(task, head_labels), head_labels, params.eval.batch_size,
                                 params.eval.batch_tokens, tokenizer.pad_token_id)
    else:
        answers = generate_answers(model, tokenizer, prompts, params.eval.batch_size, answer_length(params.eval, task),
                                   progress=len(prompts) > params.eval.batch_size, batch_tokens=params.eval.batch_tokens,
                                   prefix_cache=params.eval.prefix_cache).answers
    labels = get_task(task).labels
    return [{**record, "answer": answer, "label": parse_label(answer, labels)}
            for record, answer in zip(records, answers)]


def with_adapters(base_dir: Path, adapters: dict[str, Path], bits: int):
    """The base model, loaded once, with each adapter under its name (peft's multi-adapter API)."""
    from peft import PeftModel

    for folder in adapters.values():
        if not (folder / "adapter_config.json").is_file():
            raise FinloraError(f"{folder}: no adapter_config.json", hint="run the train stage first")
        if models.head_labels(folder):
            raise FinloraError(f"{folder}: an adapter with a classification head answers alone",
                               hint="predict its tasks one at a time (finlora predict --task TASK)")
        models.check_adapter_base(folder, base_dir)
    (first, folder), *rest = adapters.items()
    model = PeftModel.from_pretrained(models.load_base(base_dir, bits), folder, adapter_name=first)
    for name, folder in rest:
        model.load_adapter(folder, adapter_name=name)
    return model.eval()


def predict_mixed(params: Params, records: list[dict], base_dir: Path, adapters: dict[str, Path]) -> list[dict]:
    """Records of several tasks (each names its `task`), each answered by its group's adapter in
    `adapters` (by group): the base model loaded once with the adapters the records need, and each
    batch mixing requests of different adapters (peft's `adapter_names`, one per row)."""
    import torch

    served = [task for group in adapters for task in params.tasks[group]]
    for number, record in enumerate(records, start=1):
        if record.get("task") not in served:
            raise FinloraError(f"request {number}: task {record.get('task')!r} has no adapter here",
                               hint=f"tasks: {', '.join(served)}")
        if not str(record.get("text", record.get("context", ""))).strip():
            raise FinloraError(f"request {number}: no text to label", hint="give 'text' (or a ready 'context')")
    tasks = [record["task"] for record in records]
    contexts = [record_context(task, record, params.model.task_marker) for task, record in zip(tasks, records)]
    models.base_info(base_dir)
    tokenizer = models.load_tokenizer(base_dir, params.model.chat_template)
    needed = dict.fromkeys(group_of(params, task) for task in tasks)
    model = with_adapters(base_dir, {group: adapters[group] for group in needed}, params.eval.bits)
    prompts = [prompt_ids(tokenizer, context, params.model.chat_template) for context in contexts]
    lengths = [answer_length(params.eval, task) for task in tasks]
    answers = [""] * len(records)
    order = sorted(range(len(records)), key=lambda i: len(prompts[i]))  # similar lengths pad little
    for start in range(0, len(order), params.eval.batch_size):
        rows = order[start:start + params.eval.batch_size]
        batch = left_pad([prompts[i] for i in rows], tokenizer.pad_token_id, model.device)
        width = batch["input_ids"].shape[1]
        with torch.inference_mode():
            output = model.generate(**batch, max_new_tokens=max(lengths[i] for i in rows),
                                    do_sample=False, pad_token_id=tokenizer.pad_token_id,
                                    adapter_names=[group_of(params, tasks[i]) for i in rows])
        for row, i in enumerate(rows):  # greedy: a shorter answer is the longer one's start
            answers[i] = first_line(tokenizer.decode(output[row, width:width + lengths[i]], skip_special_tokens=True))
    return [{**record, "answer": answer, "label": parse_label(answer, get_task(task).labels)}
            for record, task, answer in zip(records, tasks, answers)]


def export_merged(base_dir: Path, adapter_dir: Path, out: Path) -> None:
    """Merge the adapter into the 16-bit base and save a folder `from_pretrained` loads alone."""
    models.base_info(base_dir)
    model = models.load_model(base_dir, adapter_dir, bits=16, merge=True)
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        models.load_tokenizer(base_dir).save_pretrained(tmp)
