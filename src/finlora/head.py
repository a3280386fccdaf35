"""The sequence-classification head (`model.head: classify`): the second way this pipeline trains
and answers a task with a fixed label set, as the LoRA vs QLoRA study (seed 004) does. The base is
loaded as a sequence classifier: a linear `score` layer reads the prompt's last token and gives one
logit per label; it trains with the adapter (peft's SEQ_CLS task type keeps it in
`modules_to_save`, so it is saved beside the adapter) and answers in one forward pass, no
generation.

A group's head covers the union of its tasks' labels, in task order (sentiment: negative,
neutral, positive); a task is answered by the argmax over its own labels, the others masked, so a
group that mixes label sets never answers one task with another's label. Training learns over the
union: each record's gold is one of its task's labels (NWGI's levels read as their three labels,
as scoring reads them).

The last token is found from each row's length, worked out on the host, never from the pad token
id: a pad token that is also the end token (SmolLM2's <|im_end|>, Llama-3's <|eot_id|>) appears
inside chat-template prompts, and a config whose pad id is missing or wrong makes transformers'
own pooling read a padding position. The config's pad id is still set, for anyone who loads an
exported model with transformers alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F

from finlora.batching import to_device
from finlora.errors import FinloraError
from finlora.prompts import prompt_ids
from finlora.runtime import all_reduce
from finlora.tasks import get_task

@dataclass
class Labelled:
    """A prompt for the head: its tokens and, in `labels`, the gold's index in the label space."""

    input_ids: list[int]
    labels: list[int]


def label_space(tasks: list[str]) -> tuple[str, ...]:
    """The labels a group's head gives logits for: every task's labels, once, in task order."""
    return tuple(dict.fromkeys(label for task in tasks for label in get_task(task).labels))


def unlabelled_tasks(tasks: list[str]) -> list[str]:
    """The tasks a head cannot answer: those without a closed label set (FiNER, XBRL, ...)."""
    return [task for task in tasks if not get_task(task).labels]


def allowed(task: str, space: tuple[str, ...]) -> torch.Tensor:
    """True at the labels of `task` in `space`."""
    own = set(get_task(task).labels)
    return torch.tensor([label in own for label in space])


def gold_index(record: dict, space: tuple[str, ...]) -> int:
    gold = record.get("label", record["target"])
    if gold not in space:
        raise FinloraError(f"a training record's answer {gold!r} is not one of the head's labels",
                           hint=f"labels: {', '.join(space)}")
    return space.index(gold)


def encode(tokenizer, records: list[dict], max_seq_len: int, chat_template: bool,
           space: tuple[str, ...]) -> tuple[list[Labelled], int]:
    """The prompts (no answer: the head gives it) and gold indices; longer ones dropped, counted."""
    encoded, dropped = [], 0
    for record in records:
        ids = prompt_ids(tokenizer, record["context"], chat_template)
        if len(ids) > max_seq_len:
            dropped += 1
            continue
        encoded.append(Labelled(ids, [gold_index(record, space)]))
    return encoded, dropped


def collate(examples: list[Labelled], pad_id: int) -> dict[str, torch.Tensor]:
    """A right-padded batch, each row's last real position and its gold index. No attention mask,
    as in generation's training batches: in a causal model no real token sees the padding after it."""
    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    for row, example in enumerate(examples):
        ids[row, :len(example.input_ids)] = torch.tensor(example.input_ids)
    batch = {"input_ids": ids, "last_positions": torch.tensor([len(e.input_ids) - 1 for e in examples])}
    if all(e.labels for e in examples):
        batch["label_targets"] = torch.tensor([e.labels[0] for e in examples])
    return batch


def head_logits(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """(rows, labels): the score layer on each row's last real token, computed nowhere else."""
    classifier = model.get_base_model() if hasattr(model, "get_base_model") else model
    backbone = getattr(classifier, classifier.base_model_prefix)
    hidden = backbone(input_ids=batch["input_ids"], use_cache=False).last_hidden_state
    rows = torch.arange(hidden.shape[0], device=hidden.device)
    return classifier.score(hidden[rows, batch["last_positions"]]).float()


def loss_sum(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return F.cross_entropy(head_logits(model, batch), batch["label_targets"], reduction="sum")


def validate(model, examples: list[Labelled], batch_size: int, pad_id: int, rank: int,
             world: int) -> tuple[float, float]:
    """Mean cross-entropy per held-out example, and the share the head's argmax gets right."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    totals = torch.zeros(2, dtype=torch.float64)
    mine = examples[rank::world]
    with torch.no_grad():
        for start in range(0, len(mine), batch_size):
            batch = to_device(collate(mine[start:start + batch_size], pad_id), device)
            logits = head_logits(model, batch)
            totals += torch.tensor([F.cross_entropy(logits, batch["label_targets"], reduction="sum").item(),
                                    int((logits.argmax(-1) == batch["label_targets"]).sum())], dtype=torch.float64)
    model.train(was_training)
    loss, right = all_reduce(totals).tolist()
    return loss / len(examples), right / len(examples)


@dataclass
class HeadBatch:
    """What evaluation takes from a batch, as from generation's: rows, answers, new tokens (none)."""

    rows: list[int]
    answers: list[str]
    new_tokens: int = 0


def answer_batches(model, prompts: list[list[int]], mask: torch.Tensor, space: tuple[str, ...], batch_size: int,
                   batch_tokens: int, pad_id: int, done: frozenset[int] = frozenset()) -> Iterator[HeadBatch]:
    """The label each prompt's masked argmax names, batch by batch (longest prompts first, at most
    `batch_size` rows and `batch_tokens` padded tokens a batch)."""
    device = next(model.parameters()).device
    order = sorted((i for i in range(len(prompts)) if i not in done), key=lambda i: -len(prompts[i]))
    with torch.no_grad():
        while order:
            width = len(prompts[order[0]])
            take = max(1, min(batch_size, batch_tokens // max(1, width)))
            rows, order = order[:take], order[take:]
            batch = to_device(collate([Labelled(prompts[i], []) for i in rows], pad_id), device)
            logits = head_logits(model, batch).masked_fill(~mask.to(device), float("-inf"))
            yield HeadBatch(rows, [space[i] for i in logits.argmax(-1).tolist()])


def labels_of(model, prompts: list[list[int]], mask: torch.Tensor, space: tuple[str, ...], batch_size: int,
              batch_tokens: int, pad_id: int) -> list[str]:
    """Every prompt's label, in prompt order."""
    answers: dict[int, str] = {}
    for batch in answer_batches(model, prompts, mask, space, batch_size, batch_tokens, pad_id):
        answers.update(zip(batch.rows, batch.answers))
    return [answers[i] for i in range(len(prompts))]
