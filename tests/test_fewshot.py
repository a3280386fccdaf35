"""Few-shot prompts of the base model (finlora.fewshot, evaluate(shots=k), the report's rows)."""

import pytest

from conftest import fpb_records, greedy_answers, params_with
from finlora import fewshot, models
from finlora.errors import FinloraError
from finlora.evaluation import evaluate
from finlora.files import read_jsonl, write_jsonl
from finlora.prompts import prompt_ids
from finlora.report import few_shot_rows, significance
from finlora.tasks import TASKS


def splits():
    """30 train and 10 test FPB records; two train records repeat test prompts (their prompts must
    never be shown)."""
    train, test = fpb_records(30, seed=4), fpb_records(10, seed=5, split="test")
    return train + [dict(test[0]), dict(test[1])], test


def test_k_shots_are_k_train_records_balanced_nested_and_never_a_test_prompt():
    train, test = splits()
    test_prompts = {record["context"] for record in test}
    chosen = {k: fewshot.choose(TASKS["fpb"], train, test, k, seed=42) for k in (1, 3, 5)}
    for k, shots in chosen.items():
        parts = shots.prompt(test[2]["context"]).split(fewshot.SEPARATOR)
        assert len(parts) == k + 1 and parts[-1] == test[2]["context"]  # k examples, then the test prompt
        shown = [train[line - 1] for line in shots.lines]
        assert parts[:-1] == [record["context"] + record["target"] for record in shown]
        assert not {record["context"] for record in shown} & test_prompts
    assert sorted(record["target"] for record in chosen[3].examples) == ["negative", "neutral", "positive"]
    assert set(chosen[1].lines) < set(chosen[3].lines) < set(chosen[5].lines)
    assert chosen[5].lines == fewshot.choose(TASKS["fpb"], train, test, 5, seed=42).lines
    assert chosen[5].lines != fewshot.choose(TASKS["fpb"], train, test, 5, seed=7).lines


def test_a_task_with_too_few_train_records_to_show_is_named():
    train, test = splits()
    with pytest.raises(FinloraError, match=r"few_shot.shots 31: task fpb has 30 train records to show"):
        fewshot.choose(TASKS["fpb"], train, test, 31, seed=42)  # 32 records, two of them test prompts


def test_shots_must_be_distinct_positive_counts():
    with pytest.raises(FinloraError, match=r"few_shot.shots = \[3, 3\] is not valid"):
        params_with({"few_shot": {"shots": [3, 3]}})
    with pytest.raises(FinloraError, match=r"few_shot.shots = \[0\] is not valid"):
        params_with({"few_shot": {"shots": [0]}})


def prepared(tmp_path, train, test):
    write_jsonl(tmp_path / "prepared" / "fpb" / "train.jsonl", train)
    write_jsonl(tmp_path / "prepared" / "fpb" / "test.jsonl", test)


def run(tmp_path, tiny_base, shots: int, name: str) -> dict:
    params = params_with({"tasks": {"s": ["fpb"]}, "eval": {"max_new_tokens": 4}})
    return evaluate(params, ["fpb"], tiny_base, None, tmp_path / "prepared", tmp_path / name / "p", tmp_path / name / "m",
                    tmp_path / name / "c", progress_key=name, shots=shots)["fpb"]


def test_the_model_answers_the_whole_few_shot_prompt(tiny_base, tmp_path, monkeypatch):
    from finlora import evaluation

    monkeypatch.chdir(tmp_path)
    train, test = splits()
    prepared(tmp_path, train, test[:4])
    seen = []

    def recording(model, tokenizer, prompts, *args, **kwargs):  # the real generation, its prompts noted
        seen.extend(prompts)
        return real(model, tokenizer, prompts, *args, **kwargs)

    real = evaluation.answer_batches
    monkeypatch.setattr(evaluation, "answer_batches", recording)
    metrics = run(tmp_path, tiny_base, 2, "two")
    rows = read_jsonl(tmp_path / "two" / "p" / "fpb.jsonl")
    assert [row["context"] for row in rows] == [record["context"] for record in test[:4]]  # paired with other runs
    shots = fewshot.choose(TASKS["fpb"], train, test[:4], 2, seed=42)
    assert metrics["few_shot"] == {"k": 2, "seed": 42, "train_lines": shots.lines}
    tokenizer, model = models.load_tokenizer(tiny_base, False), models.load_model(tiny_base, None)
    prompts = [prompt_ids(tokenizer, shots.prompt(record["context"]), False) for record in test[:4]]
    assert seen == prompts  # the model is given the two shots, then the test prompt
    assert [row["answer"] for row in rows] == greedy_answers(model, tokenizer, prompts, 4)  # plain generate on them


def test_prompts_too_long_with_the_shots_are_counted_and_said(tiny_base, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    # shots of about 300 tokens each: two fill 600 of the tiny model's 1024 positions
    train = [{**record, "context": record["context"].replace("Input: ", "Input: " + "word " * 290)}
             for record in fpb_records(6, seed=4)]
    test = fpb_records(3, seed=5, split="test")
    test[1] = {**test[1], "context": test[1]["context"].replace("Input: ", "Input: " + "word " * 500)}
    prepared(tmp_path, train, test)
    metrics = run(tmp_path, tiny_base, 2, "two")
    assert metrics["skipped_too_long"] == 1 and metrics["n"] == 2
    assert "fpb: 1 of 3 test prompts with 2 examples before them exceed the model's context of 1024 tokens" \
        in capsys.readouterr().err
    assert run(tmp_path, tiny_base, 0, "zero")["skipped_too_long"] == 0  # without the shots each one fits
    three = run(tmp_path, tiny_base, 3, "three")  # 3 x 300 tokens: no test prompt fits
    assert (three["n"], three["skipped_too_long"]) == (0, 3) and read_jsonl(tmp_path / "three" / "p" / "fpb.jsonl") == []


def test_the_report_gives_a_row_a_k_and_pairs_the_adapter_with_it(tmp_path):
    params = params_with({"tasks": {"s": ["fpb"]}, "train": {"seeds": [1]}, "few_shot": {"shots": [3]}})
    rows = [{"context": f"p{i}", "correct": i < 6} for i in range(10)]  # the adapter: 6 of 10 right
    write_jsonl(tmp_path / "lora" / "s" / "seed-1" / "fpb.jsonl", rows)
    # 3-shot: p9 too long, so 9 answered; right on p0-p2 and p6-p8
    write_jsonl(tmp_path / "few_shot" / "s" / "k-3" / "fpb.jsonl",
                [{"context": f"p{i}", "correct": i in (0, 1, 2, 6, 7, 8)} for i in range(9)])
    (test,) = significance(params, tmp_path, "shots-3")
    assert (test.n, test.accuracy_a, test.accuracy_b) == (9, 6 / 9, 6 / 9)  # B: p0-p5 of the 9 both answered
    assert (test.only_a, test.only_b) == (3, 3)
    three = {"accuracy": 0.4, "strict_accuracy": 0.4, "f1_weighted": 0.3, "invalid_rate": 0.1, "n": 9,
             "skipped_too_long": 1}
    lines = few_shot_rows(params, {"fpb": {"few_shot": {3: three}}}, ["fpb"])
    assert lines == ["| base, 3-shot | 40.00 / 0.300 |", "| base, 3-shot: test prompts left out as too long | 1 |"]
    lines = few_shot_rows(params, {"fpb": {"few_shot": {3: {"n": 0, "skipped_too_long": 10}}}}, ["fpb"])
    assert lines[0] == "| base, 3-shot | too long |"
