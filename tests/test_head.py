"""The classification head (model.head: classify) on the tiny model: it learns, it changes only the
adapter and the head, its batched answers equal an independent one-prompt-at-a-time argmax, it
resumes after SIGKILL to the same weights, and its settings are checked before any work."""

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from conftest import fpb_records, logged, params_with
from finlora import evaluation, head, models, training
from finlora.errors import FinloraError
from finlora.files import write_jsonl
from finlora.prompts import build_context, prompt_ids
from finlora.samples import generate
from finlora.tasks import TASKS
from test_training_runs import kill_then_resume, losses

SENTIMENT = ("negative", "neutral", "positive")


def classify_params(**changes) -> dict:
    return {"model": {"head": "classify"}, "tasks": {"s": ["fpb"]}, "lora": {"rank": 4},
            "train": {"lr": 1e-2, "batch_size": 4, "epochs": 3, **changes}}


@pytest.mark.parametrize("bits", [16, 4])
def test_a_head_training_learns_and_changes_only_the_adapter_and_the_head(tiny_base, tmp_path, monkeypatch, bits):
    wrapped = []
    real_add_lora = models.add_lora
    monkeypatch.setattr(models, "add_lora", lambda *a, **k: wrapped.append(real_add_lora(*a, **k)) or wrapped[-1])
    raw = classify_params()
    raw["quant"] = {"bits": bits}
    metrics = training.train(params_with(raw), fpb_records(8), tiny_base, tmp_path / "a", tmp_path / "m.json",
                             live_dir=tmp_path / "live")
    steps = logged(tmp_path / "live")
    assert metrics["steps"] == 6 and metrics["head"] == "classify"
    assert all(math.isfinite(loss) for loss in steps) and steps[-1] < steps[0]
    model = wrapped[0]
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in name or ".score.modules_to_save." in name for name in trainable)
    assert any(".score." in name for name in trainable)
    # every frozen weight is the base's, as a fresh load has it (the new head aside: its copy trains)
    fresh = dict(models.load_base(tiny_base, bits, labels=SENTIMENT).named_parameters())
    frozen = {name.replace("base_model.model.", "").replace(".base_layer", ""): p
              for name, p in model.named_parameters() if not p.requires_grad and ".score." not in name}
    assert frozen and all(torch.equal(p.cpu(), fresh[name].cpu()) for name, p in frozen.items())
    saved = load_file(tmp_path / "a" / "adapter_model.safetensors")
    score = [w for name, w in saved.items() if "score" in name]
    assert len(score) == 1 and score[0].shape == (3, 32)  # the head saved beside the adapter: 3 labels x hidden
    assert models.head_labels(tmp_path / "a") == SENTIMENT


@pytest.fixture(scope="module")
def head_adapter(tiny_base, tmp_path_factory):
    out = tmp_path_factory.mktemp("head")
    training.train(params_with(classify_params()), fpb_records(16), tiny_base, out / "adapter", out / "m.json",
                   live_dir=None)
    return out / "adapter"


def reference_logits(model, prompts: list[list[int]]) -> torch.Tensor:
    """Apart from finlora.head: transformers' own classifier forward on one unpadded prompt at a
    time (its pooling then reads the last token)."""
    with torch.no_grad():
        return torch.stack([model(input_ids=torch.tensor([ids])).logits[0].float() for ids in prompts])


def one_at_a_time(model, prompts: list[list[int]], allowed: torch.Tensor) -> list[str]:
    """Reference labels: the argmax of `reference_logits` over the allowed labels."""
    masked = reference_logits(model, prompts).masked_fill(~allowed, float("-inf"))
    return [SENTIMENT[i] for i in masked.argmax(-1).tolist()]


@pytest.mark.parametrize("chat_template", [False, True])
def test_batched_answers_equal_an_independent_argmax_over_the_heads_logits(tiny_base, head_adapter, chat_template):
    tokenizer = models.load_tokenizer(tiny_base, chat_template)
    model = models.load_model(tiny_base, head_adapter)
    rows = generate("fpb", 1, 12, 5)["splits"]["test"] + generate("fiqa", 1, 12, 5)["splits"]["test"]
    prompts = [prompt_ids(tokenizer, build_context(TASKS["fpb"].example(row) if "label" in row else
                                                   TASKS["fiqa"].example(row)), chat_template) for row in rows]
    assert len({len(p) for p in prompts}) > 4  # padded batches of unequal rows
    if chat_template:  # the pad id (SmolLM2's <|im_end|>, also its end token) inside every prompt
        assert all(tokenizer.pad_token_id in p[:-1] for p in prompts)
    allowed = head.allowed("fpb", SENTIMENT)
    batched = head.labels_of(model, prompts, allowed, SENTIMENT, batch_size=8, batch_tokens=10**6,
                             pad_id=tokenizer.pad_token_id)
    assert batched == one_at_a_time(model, prompts, allowed)
    # the labels may agree by chance (a head that learnt the majority label); the logits cannot
    with torch.no_grad():
        padded = head.head_logits(model, head.collate([head.Labelled(p, []) for p in prompts], tokenizer.pad_token_id))
    assert torch.allclose(padded, reference_logits(model, prompts), atol=1e-5)


def test_a_task_is_answered_from_its_own_labels_only(tiny_base, head_adapter):
    """A group's head over the union of its tasks' labels masks the labels a task does not have."""
    tokenizer = models.load_tokenizer(tiny_base)
    model = models.load_model(tiny_base, head_adapter)
    prompts = [prompt_ids(tokenizer, record["context"], False) for record in fpb_records(12, seed=3)]
    free = head.labels_of(model, prompts, torch.ones(3, dtype=torch.bool), SENTIMENT, 4, 10**6, tokenizer.pad_token_id)
    common = max(set(free), key=free.count)
    only = torch.tensor([label != common for label in SENTIMENT])
    masked = head.labels_of(model, prompts, only, SENTIMENT, 4, 10**6, tokenizer.pad_token_id)
    assert common not in masked and masked == one_at_a_time(model, prompts, only)


def test_evaluation_scores_the_heads_labels_without_generating(tiny_base, head_adapter, tmp_path):
    prepared = tmp_path / "prepared" / "fpb"
    test = [{"context": r["context"], "target": r["target"]} for r in fpb_records(10, seed=8)]
    write_jsonl(prepared / "test.jsonl", test)
    params = params_with({"model": {"head": "classify"}, "tasks": {"s": ["fpb"]}})
    results = evaluation.evaluate(params, ["fpb"], tiny_base, head_adapter, tmp_path / "prepared",
                                  tmp_path / "pred", tmp_path / "metrics", tmp_path / "confusion", "head-test")
    rows = [json.loads(line) for line in (tmp_path / "pred" / "fpb.jsonl").read_text().splitlines()]
    tokenizer = models.load_tokenizer(tiny_base)
    model = models.load_model(tiny_base, head_adapter)
    expected = one_at_a_time(model, [prompt_ids(tokenizer, r["context"], False) for r in test], head.allowed("fpb", SENTIMENT))
    assert [row["answer"] for row in rows] == expected
    right = sum(answer == record["target"] for answer, record in zip(expected, test))
    assert results["fpb"]["accuracy"] == pytest.approx(right / len(test), abs=1e-4)
    assert results["fpb"]["generated_tokens_per_s"] == 0.0  # nothing generated


@pytest.mark.slow
def test_a_head_training_killed_mid_way_resumes_to_the_same_head_and_adapter(tiny_base, tmp_path):
    params = classify_params(checkpoint_every=2, epochs=2)  # 16 steps; the kill comes before step 11
    reference, killed, _ = kill_then_resume(tmp_path, params, tiny_base)
    assert losses(killed) == pytest.approx(losses(reference), rel=1e-4)
    a, b = (load_file(run / "adapter" / "adapter_model.safetensors") for run in (reference, killed))
    assert any("score" in k for k in a) and all((a[k] - b[k]).abs().max() < 1e-5 for k in a)


@pytest.mark.parametrize("changes, message", [
    ({"tasks": {"s": ["fpb"], "finer": ["finer"]}}, "finer (tasks.finer) has no fixed label set"),
    ({"tasks": {"s": ["fpb"]}, "eval": {"protocol": "finlora-2025-08"}, "model": {"head": "classify", "task_marker": False}},
     "eval.protocol = 'finlora-2025-08' is not valid"),
    ({"tasks": {"s": ["fpb"]}, "train": {"prefix_packing": True}}, "train.prefix_packing = True is not valid"),
    ({"model": {"head": "classify_me"}}, "model.head = 'classify_me' is not valid; valid: generate | classify"),
])
def test_head_settings_that_cannot_work_are_refused_by_name(changes, message):
    changes = {"model": {"head": "classify"}, **changes}
    with pytest.raises(FinloraError) as error:
        params_with(changes)
    assert message in str(error.value)


def test_the_label_space_is_the_union_of_the_groups_labels_in_task_order():
    assert head.label_space(["fpb", "nwgi", "headline"]) == SENTIMENT + ("yes", "no")
    assert head.allowed("headline", SENTIMENT + ("yes", "no")).tolist() == [False, False, False, True, True]
    assert head.gold_index({"target": "moderately positive", "label": "positive"}, SENTIMENT) == 2
    with pytest.raises(FinloraError, match="'maybe' is not one of the head's labels"):
        head.gold_index({"target": "maybe"}, SENTIMENT)
