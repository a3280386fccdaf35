import json
import re
import shutil

import pytest
import torch

from conftest import fpb_records, greedy_answers, params_with, write_filings
from finlora import evaluation, models
from finlora.errors import FinloraError
from finlora.files import write_jsonl
from finlora.prompts import prompt_ids
from finlora import samples
from finlora.tasks import SENTIMENT_LABELS as LABELS, TASKS


def params(**sections):
    raw = {"tasks": {"sentiment": ["fpb"]}, "eval": {"batch_size": 2, "max_new_tokens": 3}}
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return params_with(raw)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    folder = tmp_path_factory.mktemp("prepared")
    write_jsonl(folder / "fpb" / "test.jsonl", fpb_records(24, seed=5, split="test"))
    # a training split whose most common label is "negative": the bar evaluation reports beside the scores
    write_jsonl(folder / "fpb" / "train.jsonl", [{"context": "-", "target": label}
                                                  for label in ("negative", "positive", "negative")])
    return folder


@pytest.fixture
def adapter(fpb_adapter):
    return fpb_adapter


def run(tmp_path, p, tiny_base, prepared, adapter=None, name="run"):
    out = tmp_path / name
    results = evaluation.evaluate(p, ["fpb"], tiny_base, adapter, prepared, out / "pred", out / "metrics",
                                  out / "confusion", progress_key=name)
    return results["fpb"], out


def test_evaluate_writes_predictions_metrics_and_confusion_rows(tmp_path, monkeypatch, tiny_base, prepared, adapter):
    monkeypatch.chdir(tmp_path)
    metrics, out = run(tmp_path, params(), tiny_base, prepared, adapter)
    assert metrics["n"] == 24 and set(metrics["per_class"]) == {"negative", "neutral", "positive"}
    assert {"accuracy", "strict_accuracy", "f1_weighted", "f1_macro", "invalid_rate", "seconds_per_example",
            "generated_tokens_per_s", "peak_memory_gb"} <= set(metrics)
    assert json.loads((out / "metrics" / "fpb.json").read_text()) == metrics
    rows = predictions(out)
    golds = [json.loads(line)["target"] for line in (prepared / "fpb" / "test.jsonl").read_text().splitlines()]
    assert [row["target"] for row in rows] == golds
    # the scores, recomputed here from the answers: first label word, and the gold word anywhere
    first_label = [next((w for w in re.findall(r"[a-z]+", row["answer"].lower()) if w in LABELS), None) for row in rows]
    assert [row["parsed"] for row in rows] == first_label
    assert metrics["strict_accuracy"] == round(sum(p == g for p, g in zip(first_label, golds)) / 24, 4)
    assert metrics["accuracy"] == round(sum(g in re.findall(r"[a-z]+", row["answer"].lower())
                                            for row, g in zip(rows, golds)) / 24, 4)
    assert metrics["invalid_rate"] == round(first_label.count(None) / 24, 4)
    confusion = json.loads((out / "confusion" / "fpb.json").read_text())
    assert confusion == [{"actual": g, "predicted": p or "invalid"} for g, p in zip(golds, first_label)]
    assert not list((tmp_path / ".cache" / "finlora" / "eval").iterdir())  # progress removed when done
    # the bar is the base model's evaluation's: the training split's mode, per example and overall
    assert "most_common_answer" not in metrics and "most_common_correct" not in rows[0]
    base, base_out = run(tmp_path, params(), tiny_base, prepared, name="base")
    assert base["most_common_answer"]["answer"] == "negative"
    assert base["most_common_answer"]["strict_accuracy"] == round(golds.count("negative") / 24, 4) > 0
    assert [row["most_common_correct"] for row in predictions(base_out)] == [g == "negative" for g in golds]


def test_interrupted_evaluation_resumes_with_the_same_answers(tmp_path, monkeypatch, tiny_base, prepared, adapter):
    monkeypatch.chdir(tmp_path)
    reference, ref_out = run(tmp_path, params(), tiny_base, prepared, adapter, name="reference")

    real = evaluation.answer_batches

    def interrupted(*args, **kwargs):  # stopped while the fourth batch generates
        for number, batch in enumerate(real(*args, **kwargs)):
            if number == 3:
                raise KeyboardInterrupt
            yield batch

    monkeypatch.setattr(evaluation, "answer_batches", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, params(), tiny_base, prepared, adapter, name="resumed")
    monkeypatch.setattr(evaluation, "answer_batches", real)
    resumed, out = run(tmp_path, params(), tiny_base, prepared, adapter, name="resumed")
    assert resumed["resumed"] == 6  # three batches of 2, written as each was done, came from the progress file
    assert (out / "pred" / "fpb.jsonl").read_text() == (ref_out / "pred" / "fpb.jsonl").read_text()


def test_progress_from_other_settings_is_not_reused(tmp_path, monkeypatch, tiny_base, prepared):
    monkeypatch.chdir(tmp_path)
    progress = tmp_path / ".cache" / "finlora" / "eval" / "stale-fpb.jsonl"
    progress.parent.mkdir(parents=True)
    progress.write_text(json.dumps({"fingerprint": "other"}) + "\n" + json.dumps({"x": "positive"}) + "\n")
    metrics, _ = run(tmp_path, params(), tiny_base, prepared, name="stale")
    assert metrics["resumed"] == 0


def test_adapter_from_another_base_model_is_refused(tmp_path, tiny_base, prepared, adapter):
    foreign = tmp_path / "foreign"
    shutil.copytree(adapter, foreign)
    (foreign / "finlora_adapter.json").write_text(json.dumps({"base": "meta-llama/Llama-3.1-8B@abc"}))
    with pytest.raises(FinloraError, match="was trained on base model meta-llama/Llama-3.1-8B@abc, but"):
        run(tmp_path, params(), tiny_base, prepared, foreign)


def test_prompt_longer_than_the_context_is_an_error_or_skipped(tmp_path, monkeypatch, tiny_base, prepared):
    monkeypatch.chdir(tmp_path)
    long = tmp_path / "long"
    shutil.copytree(prepared, long)
    with (long / "fpb" / "test.jsonl").open("a") as handle:
        handle.write(json.dumps({"context": "Input: " + "very " * 1200 + "\nAnswer: ", "target": "neutral"}) + "\n")
    with pytest.raises(FinloraError, match="test record 25: the prompt has .* tokens, more than the model's context"):
        run(tmp_path, params(), tiny_base, long)
    metrics, _ = run(tmp_path, params(data={"on_bad_record": "skip"}), tiny_base, long, name="skip")
    assert metrics["skipped_too_long"] == 1 and metrics["n"] == 24


def predictions(out) -> list[dict]:
    return [json.loads(line) for line in (out / "pred" / "fpb.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("settings", [{"bits": 8}, {"merge_adapter": True}, {"device_map": "auto"}])
def test_eight_bit_merged_and_auto_placed_evaluation_answer_as_their_model_does(tmp_path, monkeypatch, tiny_base,
                                                                                 prepared, adapter, settings):
    """Each setting's answers are those of plain one-prompt-at-a-time generation on the model that
    setting loads; merging and accelerate's placement change no answer of the plain 16-bit run.

    device_map auto hands placement to accelerate, which fills the GPUs in order and splits the
    layers only where one cannot hold them: on this CPU machine every layer lands on the CPU
    (checked below); a split needs GPUs, which CI has none of."""
    monkeypatch.chdir(tmp_path)
    p = params(eval=settings)
    _, out = run(tmp_path, p, tiny_base, prepared, adapter)
    answers = [row["answer"] for row in predictions(out)]
    tokenizer = models.load_tokenizer(tiny_base, p.model.chat_template)
    model = models.load_model(tiny_base, adapter, p.eval.bits, split_layers=p.eval.device_map == "auto",
                              merge=p.eval.merge_adapter)
    if "device_map" in settings and not torch.cuda.is_available():
        assert {parameter.device.type for parameter in model.parameters()} == {"cpu"}
    prompts = [prompt_ids(tokenizer, row["context"], p.model.chat_template) for row in predictions(out)]
    assert answers == greedy_answers(model, tokenizer, prompts, p.eval.max_new_tokens)
    if "bits" not in settings:
        _, plain = run(tmp_path, params(), tiny_base, prepared, adapter, name="plain")
        assert answers == [row["answer"] for row in predictions(plain)]


def test_merging_into_quantized_weights_is_refused_up_front():
    with pytest.raises(FinloraError, match="eval.merge_adapter with eval.bits 8 is not supported"):
        params(eval={"merge_adapter": True, "bits": 8})


def test_finer_and_xbrl_are_evaluated_with_their_own_scorers(tmp_path, monkeypatch, tiny_base, tokenizer_dir):
    """Through the real stages' code: download (sample), preprocess, evaluate the base model."""
    from transformers import AutoTokenizer

    from finlora.files import write_json
    from finlora.prepare import fits_in, prepare

    monkeypatch.chdir(tmp_path)
    p = params_with({"tasks": {"finer": ["finer"], "xbrl": ["xbrl_tags", "xbrl_value"]},
                      "eval": {"batch_size": 4, "max_new_tokens": 6}})
    fits = fits_in(AutoTokenizer.from_pretrained(tokenizer_dir), 1024, True)
    prepared = tmp_path / "prepared"
    for task in ("finer", "xbrl_tags", "xbrl_value"):
        raw = samples.generate(task, 1, 6, seed=2)
        result = prepare(TASKS[task], raw["splits"]["test"], tmp_path / "test.jsonl", p, raw.get("tag_names"),
                         write_filings(raw, tmp_path / "filings"), fits)
        write_jsonl(prepared / task / "test.jsonl", result.records)
        write_json(prepared / task / "stats.json", {"test": result.stats()})
        if raw.get("tag_names"):
            write_json(prepared / task / "tags.json", raw["tag_names"])
    out = tmp_path / "out"
    for group, tasks in p.tasks.items():
        results = evaluation.evaluate(p, tasks, tiny_base, None, prepared, out / "pred" / group,
                                      out / "metrics" / group, out / "confusion" / group, progress_key=group)
        for metrics in results.values():
            assert {"accuracy", "strict_accuracy", "invalid_rate", "dropped_over_budget"} <= set(metrics)
    finer = json.loads((out / "metrics" / "finer" / "finer.json").read_text())
    finer_rows = [json.loads(line) for line in (out / "pred" / "finer" / "finer.jsonl").read_text().splitlines()]
    gold_tags = [json.loads(line)["tags"] for line in (prepared / "finer" / "test.jsonl").read_text().splitlines()]
    assert finer["prompts"] == len(finer_rows) and finer["n"] == sum(map(len, gold_tags)) > finer["prompts"]
    assert "f1_weighted" in finer  # scored per entity
    confusion = json.loads((out / "confusion" / "finer" / "finer.json").read_text())
    assert [row["actual"] for row in confusion] == [tag for tags in gold_tags for tag in tags]
    tag_confusion = json.loads((out / "confusion" / "xbrl" / "xbrl_tags.json").read_text())
    assert [row["actual"] for row in tag_confusion] == \
        [json.loads(line)["target"] for line in (prepared / "xbrl_tags" / "test.jsonl").read_text().splitlines()]
    assert not (out / "confusion" / "xbrl" / "xbrl_value.json").exists()  # numbers have no confusion matrix
    value = json.loads((out / "metrics" / "xbrl" / "xbrl_value.json").read_text())
    value_rows = [json.loads(line) for line in (out / "pred" / "xbrl" / "xbrl_value.jsonl").read_text().splitlines()]
    assert value["n"] == 6 and "f1_weighted" not in value
    assert value["accuracy"] == round(sum(row["target"] in row["answer"].replace(",", "") for row in value_rows) / 6, 4)
