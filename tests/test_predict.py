import json
import re
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from conftest import REPO, greedy_answers, params_with
from finlora import models
from finlora.errors import FinloraError
from finlora.predict import export_merged, predict, record_context
from finlora.prepare import prepare
from finlora.prompts import build_context, prompt_ids
from finlora import samples
from finlora.tasks import TASKS


def params():
    return params_with({"tasks": {"sentiment": ["fpb"], "ner": ["ner"]}, "eval": {"max_new_tokens": 3}})


@pytest.fixture
def adapter(fpb_adapter):
    return fpb_adapter


def test_prompt_for_new_text_matches_the_training_prompt():
    row = samples.generate("tfns", 1, 1, seed=4)["splits"]["train"][0]
    trained = prepare(TASKS["tfns"], [row], Path("t"), params()).records[0]["context"]
    assert trained == "Task: tfns\n" + build_context(TASKS["tfns"].example(row))  # model.task_marker: true
    assert record_context("tfns", {"text": row["text"]}, task_marker=True) == trained
    assert record_context("tfns", {"text": row["text"]}, task_marker=False) == build_context(TASKS["tfns"].example(row))
    assert record_context("fpb", {"context": "Input: x\nAnswer: "}, task_marker=True) == "Task: fpb\nInput: x\nAnswer: "
    ner_row = samples.generate("ner", 1, 1, seed=4)["splits"]["train"][0]
    entity = ner_row["instruction"].split("'")[1]
    assert record_context("ner", {"text": ner_row["input"], "entity": entity}, task_marker=True) == \
        prepare(TASKS["ner"], [ner_row], Path("n"), params()).records[0]["context"]
    with pytest.raises(FinloraError, match="needs the entity"):
        record_context("ner", {"text": "x"}, task_marker=True)


def test_predict_answers_as_the_adapter_does_and_labels_the_answer(tiny_base, adapter):
    records = [{"text": "Sales rose 9%."}, {"context": "Input: x\nAnswer: "}, {"text": "Costs fell."}]
    p = params()
    results = predict(p, "fpb", records, tiny_base, adapter)
    tokenizer = models.load_tokenizer(tiny_base, p.model.chat_template)
    prompts = [prompt_ids(tokenizer, record_context("fpb", r, p.model.task_marker), p.model.chat_template) for r in records]
    expected = greedy_answers(models.load_model(tiny_base, adapter), tokenizer, prompts, p.eval.max_new_tokens)
    assert [r["answer"] for r in results] == expected
    assert [r["label"] for r in results] == [
        next((w for w in re.findall(r"[a-z]+", a.lower()) if w in ("negative", "neutral", "positive")), None)
        for a in expected]
    assert [{k: v for k, v in r.items() if k not in ("answer", "label")} for r in results] == records


def test_export_merges_into_a_standalone_model(tmp_path, tiny_base, adapter):
    from transformers import AutoModelForCausalLM

    export_merged(tiny_base, adapter, tmp_path / "merged")
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged").eval()
    unmerged = models.load_model(tiny_base, adapter)
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    base = models.load_base(tiny_base).eval()
    with torch.inference_mode():
        assert torch.allclose(merged(ids).logits, unmerged(ids).logits, atol=1e-4)
        # and the adapter is in it: the base model's logits are not the merged model's
        assert (merged(ids).logits - base(ids).logits).abs().max() > 100 * 1e-4
    assert not (tmp_path / "merged" / "adapter_config.json").exists()


def test_predict_command_in_a_project(tmp_path, tiny_base, adapter, cli):
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    shutil.copytree(tiny_base, tmp_path / "models" / "base")
    shutil.copytree(adapter, tmp_path / "models" / "adapters" / "sentiment" / "seed-42")  # the first seed's
    texts = ["Net sales rose 12% in the quarter.", "Costs fell.", "Flat."]
    expected = predict(params_with({}), "fpb", [{"text": text} for text in texts], tiny_base, adapter)
    single = cli(tmp_path, "predict", "--task", "fpb", texts[0])
    assert single.returncode == 0, single.stderr
    said = expected[0]["label"] or f"(no fpb label in the answer {expected[0]['answer']!r})"
    assert single.stdout.strip().splitlines()[-1] == said
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"text": text}) + "\n" for text in texts[1:]))
    batch = cli(tmp_path, "predict", "--task", "fpb", "--input", "in.jsonl", "--output", "out.jsonl")
    assert batch.returncode == 0, batch.stderr
    assert [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()] == expected[1:]
    missing = cli(tmp_path, "predict", "--task", "ner", "Oslo is cold.")
    assert missing.returncode == 2 and "needs the entity" in missing.stderr
    # records that name their task: each with its group's adapter, on one base model
    (tmp_path / "mixed.jsonl").write_text("".join(json.dumps({"task": "fpb", "text": text}) + "\n" for text in texts))
    mixed = cli(tmp_path, "predict", "--input", "mixed.jsonl", "--output", "mixed-out.jsonl")
    assert mixed.returncode == 0, mixed.stderr
    assert [json.loads(line)["answer"] for line in (tmp_path / "mixed-out.jsonl").read_text().splitlines()] == \
        [row["answer"] for row in expected]
    (tmp_path / "bad.jsonl").write_text(json.dumps({"task": "nope", "text": "x"}) + "\n")
    bad = cli(tmp_path, "predict", "--input", "bad.jsonl")
    assert bad.returncode == 2 and "request 1: task 'nope' has no adapter here" in bad.stderr


def test_a_mixed_batch_answers_each_request_as_its_adapter_alone(tiny_base, steered_adapters):
    from finlora.predict import predict_mixed

    p = params_with({"tasks": {"sentiment": ["fpb"], "tweets": ["tfns"]}, "eval": {"max_new_tokens": 3, "batch_size": 8}})
    texts = ["Sales rose 9%.", "Costs fell sharply in the second half of the year.", "Flat.", "Margins held."]
    requests = [{"task": task, "text": text} for text in texts for task in ("fpb", "tfns")]  # alternating adapters
    mixed = predict_mixed(p, requests, tiny_base, steered_adapters)
    for group, task in (("sentiment", "fpb"), ("tweets", "tfns")):
        asked = [r for r in requests if r["task"] == task]
        alone = [r["answer"] for r in predict(p, task, asked, tiny_base, steered_adapters[group])]
        assert [r["answer"] for r in mixed if r["task"] == task] == alone
        base = [r["answer"] for r in predict(p, task, asked, tiny_base, None)]
        assert alone != base  # the adapter answers otherwise than the base model, so the check above can fail


@pytest.mark.parametrize("request_, message", [({"task": "headline", "text": "x"}, "request 2: task 'headline' has no adapter here"),
                                               ({"task": "fpb", "text": "  "}, "request 2: no text to label")])
def test_a_bad_mixed_request_is_named_before_any_model_loads(tmp_path, request_, message):
    from finlora.predict import predict_mixed

    p = params_with({"tasks": {"sentiment": ["fpb"]}})
    with pytest.raises(FinloraError, match=message):
        predict_mixed(p, [{"task": "fpb", "text": "ok"}, request_], tmp_path / "no-base", {"sentiment": tmp_path / "none"})
