"""Using a trained adapter: label new text, and export a merged standalone model."""

from __future__ import annotations

from pathlib import Path

from finlora import head, models
from finlora.config import Params
from finlora.errors import FinloraError
from finlora.files import atomic_dir
from finlora.generation import generate_answers
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


def export_merged(base_dir: Path, adapter_dir: Path, out: Path) -> None:
    """Merge the adapter into the 16-bit base and save a folder `from_pretrained` loads alone."""
    models.base_info(base_dir)
    model = models.load_model(base_dir, adapter_dir, bits=16, merge=True)
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        models.load_tokenizer(base_dir).save_pretrained(tmp)
