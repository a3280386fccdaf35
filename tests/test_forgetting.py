"""Forgetting through lm-evaluation-harness (finlora.forgetting): the shipped multiple-choice task
scored for the base model and an adapter, against the log-likelihood choice computed here."""

import json

import pytest
import torch

from conftest import REPO
from finlora import models
from finlora.errors import FinloraError
from finlora.forgetting import score
from finlora.report import forgetting_table

LIMIT = 16  # every record; the first 8 give the base and the adapter the same accuracy


def log_likelihood_choice(model, tokenizer, limit: int) -> float:
    """Accuracy of choosing, per question, the answer with the highest summed log-probability
    after "Question: ...\\nAnswer:" and a space, as lm-eval's multiple_choice defines it; the
    answer's tokens are those the whole text has past the prompt's."""
    lines = (REPO / "lm_eval_tasks" / "finance_basics.jsonl").read_text().splitlines()[:limit]
    right = 0
    for doc in map(json.loads, lines):
        prompt = f"Question: {doc['question']}\nAnswer:"
        context = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        scores = []
        for choice in doc["choices"]:
            whole = tokenizer(f"{prompt} {choice}", add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                logits = model(torch.tensor([whole])).logits[0].float()
            log_probs = torch.log_softmax(logits[:-1], dim=-1)
            scores.append(sum(log_probs[i - 1, whole[i]].item() for i in range(len(context), len(whole))))
        right += max(range(len(scores)), key=scores.__getitem__) == doc["answer"]
    return right / len(lines)


def test_the_shipped_task_scores_the_log_likelihood_choice(tiny_base, steered_adapters, monkeypatch):
    monkeypatch.chdir(REPO)  # the task's records are named relative to the repository root, where stages run
    accuracies = {}
    for name, adapter in (("base", None), ("adapter", steered_adapters["sentiment"])):
        found = score(tiny_base, adapter, "finance_basics", LIMIT, batch_size=4)
        expected = log_likelihood_choice(models.load_model(tiny_base, adapter), models.load_tokenizer(tiny_base), LIMIT)
        assert found["n"] == LIMIT and found["acc"] == pytest.approx(expected)
        assert found["acc_stderr"] == pytest.approx((expected * (1 - expected) / (LIMIT - 1)) ** 0.5, abs=1e-6)
        accuracies[name] = expected
    assert accuracies["base"] != accuracies["adapter"]  # the adapter is scored, not the base twice
    assert score(tiny_base, None, "finance_basics", 4, batch_size=4)["n"] == 4  # forgetting.limit: the first 4


def test_an_unknown_task_is_named():
    with pytest.raises(FinloraError, match="lm-eval knows no task 'no_such_benchmark'"):
        score(REPO / "nowhere", None, "no_such_benchmark", 0, 1)


def test_a_hub_task_offline_fails_in_one_line_before_the_model_loads(tmp_path):
    with pytest.raises(FinloraError, match="lm-eval task hellaswag could not read its data set .*needs the network"):
        score(tmp_path / "no-base", None, "hellaswag", 4, 1)  # no model folder: the data set is read first


def test_the_report_gives_each_benchmarks_change_and_its_standard_error():
    found = {"finance_basics": {"base": {"acc": 0.5, "acc_stderr": 0.03, "n": 16},
                                "sentiment": {"acc": 0.4, "acc_stderr": 0.04, "n": 16}}}
    lines = forgetting_table(found)
    assert lines[-1] == "| finance_basics | acc | 16 | sentiment | 50.00 | 40.00 | -10.00 | 5.00 |"  # sqrt(3^2 + 4^2)
    assert forgetting_table({}) == []
