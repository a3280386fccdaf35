"""eval.protocol: finlora scores as FinLoRA's evaluation code does; the report names the protocol
and puts the paper's Table 3 beside runs that match a paper setting."""

import pytest
from sklearn.metrics import f1_score

from conftest import params_with
from finlora.errors import FinloraError
from finlora.answers import finlora_scores
from finlora.metrics import finlora_direction
from finlora.report import render
from finlora.tasks import TASKS


@pytest.mark.parametrize("text, direction", [
    ("positive", "positive"), ("Positive.", "positive"), ("mildly negative", "negative"), ("neutral", "neutral"),
    ("I cannot tell", "neutral"),  # no label: neutral, which flatters a weak model on neutral-heavy data
    ("not negative but positive", "positive"), ("NEGATIVE", "neutral"),  # as FinLoRA's code reads them
])
def test_sentiment_answers_are_read_by_direction(text, direction):
    assert finlora_direction(text) == direction


def test_sentiment_scores_compare_directions_and_nwgi_levels():
    records = [{"target": "moderately positive"}, {"target": "mildly negative"}, {"target": "neutral"},
               {"target": "strong positive"}]
    answers = ["positive", "moderately negative", "no idea", "negative"]
    scores = finlora_scores(TASKS["nwgi"], records, answers)
    golds, predicted = ["positive", "negative", "neutral", "positive"], ["positive", "negative", "neutral", "negative"]
    assert scores == {"accuracy": 0.75, "f1_weighted": round(f1_score(golds, predicted, average="weighted"), 4)}


def test_other_tasks_count_a_contained_gold_answer():
    records = [{"target": "person"}, {"target": "location"}, {"target": "organization"}]
    scores = finlora_scores(TASKS["ner"], records, ["Person", "it is a location, or a person", "city"])
    responses = ["person", "location", "city"]
    assert scores == {"accuracy": round(2 / 3, 4),
                      "f1_weighted": round(f1_score(["person", "location", "organization"], responses,
                                                    average="weighted", zero_division=0), 4)}
    values = finlora_scores(TASKS["xbrl_value"], [{"target": "2540000000"}, {"target": "12"}], ["2540000000", "1,2"])
    assert values == {"accuracy": 0.5}  # no F1 for numbers


def test_finer_answers_are_split_and_aligned_with_the_gold_tags():
    records = [{"target": "Revenues,LongTermDebt,SharePrice"}, {"target": "Goodwill"}]
    answers = ["revenues, LongTermDebt", "Goodwill,Extra"]  # one tag short: padded; one long: cut
    scores = finlora_scores(TASKS["finer"], records, answers)
    assert scores["accuracy"] == 0.75


def test_finlora_protocol_uses_its_answer_lengths_and_the_raw_prompt():
    params = params_with({"eval": {"protocol": "finlora"}, "model": {"chat_template": False}})
    assert [params.eval.new_tokens(t) for t in ("fpb", "ner", "finer", "xbrl_tags", "xbrl_value")] == [5, 10, 100, 10, 20]
    with pytest.raises(FinloraError, match="eval.protocol finlora with model.chat_template true"):
        params_with({"eval": {"protocol": "finlora"}, "model": {"chat_template": True}})


def summary(accuracy: float) -> dict:
    scores = {"accuracy": accuracy, "strict_accuracy": accuracy, "f1_weighted": 0.5, "invalid_rate": 0.0,
              "seconds_per_example": 0.1}
    train = {"batch_size_per_device": 16, "world_size": 4, "peak_memory_gb": 20.0, "peak_memory_kind": "cuda",
             "device_hours": 1.0, "wall_s": 900, "tokens_per_s": 1000, "adapter_bytes": 4_500_000, "val_examples": 0}
    return {"fpb": {"base": scores, "lora": {**scores, "accuracy": accuracy + 0.1}, "gain": {"accuracy": 0.1}},
            "train": {"sentiment": train}}


def test_the_report_puts_the_paper_beside_a_matching_run_and_names_the_protocol():
    changes = {"tasks": {"sentiment": ["fpb"]}, "model": {"base": "meta-llama/Llama-3.1-8B-Instruct"},
               "quant": {"bits": 4}, "lora": {"rank": 4}}
    sources = {"fpb": {"source": "hub", "dataset": "financial_phrasebank", "revision": "main", "train": 1, "test": 1}}
    text = render(params_with(changes), summary(0.80), sources)
    assert "Evaluation protocol `strict`" in text
    assert "| base, paper | 68.73 / 0.677 |" in text and "| base, ours - paper (points) | +11.27 |" in text
    assert "| LoRA r4, 4-bit, paper | 86.30 / 0.860 |" in text and "| LoRA r4, 4-bit, ours - paper (points) | +3.70 |" in text
    assert "Average accuracy gain over the base model: +10.00 points over 1 tasks (paper, same tasks: +17.57)." in text
    other = render(params_with({**changes, "lora": {"rank": 8}}), summary(0.80), sources)
    assert ", paper |" not in other and "paper, same tasks" not in other
