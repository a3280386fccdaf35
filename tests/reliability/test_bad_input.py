"""Bad input through the real stage scripts: one clear line, exit status 2, no output left behind."""

import json
import subprocess
import sys

import pytest
import yaml

from conftest import REPO, run_env


def write_params(workdir, **overrides):
    """The repository's params.yaml with some sections changed, in `workdir`."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for section, values in overrides.items():
        if section == "tasks":
            params["tasks"] = values
        else:
            params[section].update(values)
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))


def run_stage(workdir, script, *args, preexec_fn=None, **params_overrides):
    write_params(workdir, **params_overrides)
    return subprocess.run([sys.executable, str(REPO / "stages" / script), *map(str, args)],
                          cwd=workdir, capture_output=True, text=True, env=run_env(), preexec_fn=preexec_fn)


def assert_clean_failure(result, *fragments):
    """Exit 2 with one error line and at most one hint line, each fragment said once."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    message = [line for line in result.stderr.splitlines() if line.startswith(("finlora: error:", "  hint:"))]
    assert len(message) in (1, 2) and message[0].startswith("finlora: error:"), result.stderr
    assert sum(line.startswith("  hint:") for line in result.stderr.splitlines()) <= 1, result.stderr
    for fragment in fragments:
        assert result.stderr.count(fragment) == 1, result.stderr


def write_raw(folder, task, train_lines, test_lines=('{"sentence": "x", "label": "neutral"}',)):
    (folder / task).mkdir(parents=True)
    (folder / task / "train.jsonl").write_text("\n".join(train_lines) + "\n")
    (folder / task / "test.jsonl").write_text("\n".join(test_lines) + "\n")


def test_malformed_jsonl_line_stops_preprocess_naming_file_and_line(tmp_path):
    write_raw(tmp_path / "raw", "fpb", ['{"sentence": "a", "label": "positive"}', '{"sentence": "b", '])
    result = run_stage(tmp_path, "preprocess.py", "solo", tmp_path / "raw", tmp_path / "out",
                       tasks={"solo": ["fpb"]})
    assert_clean_failure(result, "fpb/train.jsonl:2: malformed JSON line")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_label_outside_the_label_set_names_file_line_and_valid_labels(tmp_path):
    write_raw(tmp_path / "raw", "fpb", ['{"sentence": "a", "label": "positive"}', '{"sentence": "b", "label": "bullish"}'])
    result = run_stage(tmp_path, "preprocess.py", "solo", tmp_path / "raw", tmp_path / "out",
                       tasks={"solo": ["fpb"]})
    assert_clean_failure(result, "train.jsonl:2: task fpb: label 'bullish' is not in the label set",
                         "valid labels: negative, neutral, positive")
    assert not (tmp_path / "out").exists()


def test_finer_row_with_more_tokens_than_tags_stops_preprocess(tmp_path, tokenizer_dir):
    good = {"id": "1", "tokens": ["Revenues", "were", "$", "12"], "ner_tags": ["O", "O", "O", "B-Revenues"]}
    bad = {"id": "2", "tokens": ["Debt", "of", "$", "9"], "ner_tags": ["O", "O", "B-LongTermDebt"]}
    write_raw(tmp_path / "raw", "finer", [json.dumps(good), json.dumps(bad)], [json.dumps(good)])
    (tmp_path / "raw" / "finer" / "tags.json").write_text('["Revenues", "LongTermDebt"]')
    args = ("preprocess.py", "solo", tmp_path / "raw", tmp_path / "out", "--base", tokenizer_dir)
    result = run_stage(tmp_path, *args, tasks={"solo": ["finer"]})
    assert_clean_failure(result, "finer/train.jsonl:2: 4 tokens but 3 ner_tags")
    assert not (tmp_path / "out").exists()
    result = run_stage(tmp_path, *args, tasks={"solo": ["finer"]}, data={"on_bad_record": "skip"})
    assert result.returncode == 0, result.stderr
    stats = json.loads((tmp_path / "out" / "finer" / "stats.json").read_text())
    assert stats["train"] == {"records": 1, "skipped_bad_records": 1, "dropped_over_budget": 0}


def test_hub_source_while_offline_fails_clearly(tmp_path):
    result = run_stage(tmp_path, "download.py", "solo", tmp_path / "raw", tasks={"solo": ["tfns"]},
                       data={"source": "hub"})
    assert_clean_failure(result, "cannot reach 'zeroshot/twitter-financial-news-sentiment' revision main",
                         "offline sample data (sample)")
    assert not (tmp_path / "raw").exists()


def test_local_source_with_missing_file(tmp_path):
    result = run_stage(tmp_path, "download.py", "solo", tmp_path / "raw", tasks={"solo": ["fpb"]},
                       data={"source": "local", "local_dir": str(tmp_path / "mine")})
    assert_clean_failure(result, "mine/fpb/train.*: file not found")


def test_base_model_path_that_does_not_exist(tmp_path):
    result = run_stage(tmp_path, "base_model.py", tmp_path / "base", model={"base": str(tmp_path / "nowhere")})
    assert_clean_failure(result, "model.base", "no such folder")
    assert not (tmp_path / "base").exists()


@pytest.mark.parametrize("script, args", [
    ("download.py", ["sentiment", "raw"]),
    ("base_model.py", ["base"]),
    ("preprocess.py", ["sentiment", "raw", "prepared", "--base", "base"]),
    ("train.py", ["sentiment", "--seed", "42", "--data", "d", "--base", "b", "--adapter", "a", "--metrics", "m.json",
                  "--live", "l"]),
    ("evaluate.py", ["sentiment", "--data", "d", "--base", "b", "--predictions", "p", "--metrics", "m",
                     "--confusion", "c"]),
    ("report.py", ["--metrics", "metrics", "--raw", "raw", "--report", "r.md", "--summary", "s.json"]),
])
def test_bad_params_stop_every_stage_before_work(tmp_path, script, args):
    result = run_stage(tmp_path, script, *args, quant={"bits": 3})
    assert_clean_failure(result, "quant.bits = 3 is not valid; valid: 4 | 8 | 16")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["params.yaml"]  # nothing written


def test_empty_test_split_is_an_error(tmp_path, tiny_base):
    (tmp_path / "prepared" / "fpb").mkdir(parents=True)
    (tmp_path / "prepared" / "fpb" / "test.jsonl").write_text("")
    result = run_stage(tmp_path, "evaluate.py", "solo", "--data", tmp_path / "prepared", "--base", tiny_base,
                       "--predictions", tmp_path / "pred", "--metrics", tmp_path / "metrics",
                       "--confusion", tmp_path / "confusion", tasks={"solo": ["fpb"]})
    assert_clean_failure(result, "test.jsonl: the test split is empty")
    assert not (tmp_path / "pred").exists() and not (tmp_path / "metrics").exists()


def test_stage_help_works():
    for script in ("download.py", "base_model.py", "preprocess.py", "train.py", "evaluate.py", "report.py"):
        result = subprocess.run([sys.executable, str(REPO / "stages" / script), "--help"],
                                capture_output=True, text=True, env=run_env())
        assert result.returncode == 0 and "Usage" in result.stdout, script
