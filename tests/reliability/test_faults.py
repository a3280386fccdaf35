"""Faults beyond plain bad rows, each through the real stage scripts where a user would meet it:
one line with a hint, exit status 2, no traceback unless --debug, nothing half-written, nothing
already computed lost. docs/reliability.md lists them."""

import json
import re
import resource
import signal

import pytest
import torch

from conftest import REPO, fpb_records, params_with
from test_bad_input import assert_clean_failure, run_stage, write_raw

from finlora import training
from finlora.errors import FinloraError

FPB_ROW = json.dumps({"sentence": "Sales rose 5%.", "label": "positive"})


@pytest.mark.parametrize("overrides, message", [
    ({"lora": {"rnak": 4}}, "unknown key 'lora.rnak'"),
    ({"quant": {"bits": "four"}}, "quant.bits must be an integer (got 'four')"),
    ({"lora": {"dropout": 1.5}}, "lora.dropout = 1.5 is not valid; valid: a number in [0, 1)"),
    ({"tasks": {"solo": ["fbp"]}}, "tasks.solo = 'fbp' is not valid"),
    ({"eval": {"merge_adapter": True, "bits": 8}}, "eval.merge_adapter with eval.bits 8 is not supported"),
    ({"tasks": {"solo": ["xbrl_value"]}, "data": {"source": "hub"}}, "task xbrl_value with data.source hub"),
])
def test_bad_params_stop_the_stage_with_one_line(tmp_path, overrides, message):
    result = run_stage(tmp_path, "download.py", "solo", tmp_path / "raw", **{"tasks": {"solo": ["fpb"]}, **overrides})
    assert_clean_failure(result, message)
    assert len(result.stderr.strip().splitlines()) <= 2  # the error and its hint
    assert not (tmp_path / "raw").exists()


def test_debug_flag_shows_the_traceback(tmp_path):
    result = run_stage(tmp_path, "download.py", "solo", tmp_path / "raw", "--debug", quant={"bits": 3})
    assert result.returncode != 0 and "Traceback" in result.stderr and "quant.bits = 3" in result.stderr


def test_unreadable_data_file(tmp_path):
    write_raw(tmp_path / "raw", "fpb", [FPB_ROW])
    (tmp_path / "raw" / "fpb" / "train.jsonl").write_bytes(b'{"sentence": "\xff\xfe", "label": "positive"}\n')
    result = run_stage(tmp_path, "preprocess.py", "solo", tmp_path / "raw", tmp_path / "out", tasks={"solo": ["fpb"]})
    assert_clean_failure(result, "fpb/train.jsonl: cannot read")


def test_duplicate_ids_name_both_lines_or_are_skipped(tmp_path, tokenizer_dir):
    row = {"tokens": ["Revenues", "were", "$", "12"], "ner_tags": ["O", "O", "O", "B-Revenues"]}
    lines = [json.dumps({"id": str(i), **row}) for i in (1, 2, 1)]
    write_raw(tmp_path / "raw", "finer", lines, lines[:1])
    (tmp_path / "raw" / "finer" / "tags.json").write_text('["Revenues"]')
    args = ("preprocess.py", "solo", tmp_path / "raw", tmp_path / "out", "--base", tokenizer_dir)
    assert_clean_failure(run_stage(tmp_path, *args, tasks={"solo": ["finer"]}),
                         "finer/train.jsonl:3: id '1' was already used on line 1")
    result = run_stage(tmp_path, *args, tasks={"solo": ["finer"]}, data={"on_bad_record": "skip"})
    assert result.returncode == 0
    assert json.loads((tmp_path / "out" / "finer" / "stats.json").read_text())["train"]["skipped_bad_records"] == 1


def test_prompts_over_the_budget_are_counted_never_cut(tmp_path):
    download = run_stage(tmp_path, "download.py", "x", tmp_path / "raw", tasks={"x": ["xbrl_value"]},
                         data={"sizes": {"xbrl_value": {"train": 3, "test": 2}}})
    assert download.returncode == 0, download.stderr
    result = run_stage(tmp_path, "preprocess.py", "x", tmp_path / "raw", tmp_path / "out",
                       tasks={"x": ["xbrl_value"]}, xbrl={"max_prompt_chars": 500})
    assert result.returncode == 0, result.stderr
    stats = json.loads((tmp_path / "out" / "xbrl_value" / "stats.json").read_text())
    assert stats["train"]["dropped_over_budget"] == 3 and stats["train"]["records"] == 0


def test_tokenizer_without_a_chat_template(tmp_path, tokenizer_dir):
    plain = tmp_path / "plain-tokenizer"
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    tokenizer.chat_template = None
    tokenizer.save_pretrained(plain)
    (plain / "chat_template.jinja").unlink(missing_ok=True)
    write_raw(tmp_path / "raw", "finer", ['{"id": "1", "tokens": ["$", "1"], "ner_tags": ["O", "B-Revenues"]}'])
    (tmp_path / "raw" / "finer" / "tags.json").write_text('["Revenues"]')
    result = run_stage(tmp_path, "preprocess.py", "solo", tmp_path / "raw", tmp_path / "out", "--base", plain,
                       tasks={"solo": ["finer"]}, model={"chat_template": True})
    assert_clean_failure(result, "the tokenizer has no chat template, but model.chat_template is true",
                         "model.chat_template: false")


def test_adapter_trained_on_another_base_is_refused_before_loading(tmp_path, tiny_base):
    (tmp_path / "prepared" / "fpb").mkdir(parents=True)
    (tmp_path / "prepared" / "fpb" / "test.jsonl").write_text(json.dumps({"context": "c", "target": "positive"}))
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4}))
    (adapter / "finlora_adapter.json").write_text(json.dumps({"base": "meta-llama/Llama-3.1-8B@abc"}))
    result = run_stage(tmp_path, "evaluate.py", "solo", "--data", tmp_path / "prepared", "--base", tiny_base,
                       "--adapter", adapter, "--predictions", tmp_path / "pred", "--metrics", tmp_path / "metrics",
                       "--confusion", tmp_path / "confusion", tasks={"solo": ["fpb"]})
    assert_clean_failure(result, "was trained on base model meta-llama/Llama-3.1-8B@abc")
    assert not (tmp_path / "metrics").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("train, message, hint", [
    ({"liger_kernel": True}, "train.liger_kernel needs a CUDA GPU", "train.liger_kernel: false"),
])
def test_cuda_only_option_on_a_cpu_machine(tmp_path, train, message, hint):
    result = run_stage(tmp_path, "train.py", "solo", "--seed", "42", "--data", "d", "--base", "b", "--adapter", tmp_path / "a",
                       "--metrics", tmp_path / "m.json", "--live", tmp_path / "l", tasks={"solo": ["fpb"]},
                       train=train)
    assert_clean_failure(result, message, hint)
    assert not (tmp_path / "a").exists()


def test_out_of_memory_ends_with_advice_and_no_adapter(tiny_base, tmp_path, monkeypatch):
    def exhausted(model, batch):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    params = params_with({"tasks": {"s": ["fpb"]}, "train": {"batch_size": 4}})
    records = fpb_records(8)
    monkeypatch.setattr(training, "answer_loss_sum", exhausted)
    with pytest.raises(FinloraError, match="out of memory while training") as error:
        training.train(params, records, tiny_base, tmp_path / "a", tmp_path / "m.json", tmp_path / "l")
    assert "train.gradient_checkpointing: true" in str(error.value)
    assert not (tmp_path / "a").exists() and not (tmp_path / "m.json").exists()


def test_disk_full_while_writing_keeps_the_previous_output(tmp_path):
    """The file-size limit makes writes fail the way a full disk does (EFBIG instead of ENOSPC)."""
    previous = tmp_path / "raw" / "fpb" / "train.jsonl"
    previous.parent.mkdir(parents=True)
    previous.write_text(FPB_ROW + "\n")

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))

    result = run_stage(tmp_path, "download.py", "sentiment", tmp_path / "raw", preexec_fn=limit_file_size)
    assert_clean_failure(result, "/raw/fpb/train.jsonl: cannot write (File too large)", "free disk space")
    assert previous.read_text() == FPB_ROW + "\n"  # the last good output is still there
    assert [p.name for p in (tmp_path).iterdir() if p.name.startswith(".raw")] == []


def test_model_code_is_not_run_unless_trusted(tmp_path, tiny_model_dir):
    folder = tmp_path / "custom-model"
    folder.mkdir()
    for item in tiny_model_dir.iterdir():
        (folder / item.name).write_bytes(item.read_bytes())
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_custom.CustomModel"}
    (folder / "config.json").write_text(json.dumps(config))
    marker = tmp_path / "code-ran"
    (folder / "modeling_custom.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    result = run_stage(tmp_path, "base_model.py", tmp_path / "base", model={"base": str(folder)})
    assert_clean_failure(result, "ships its own Python code (auto_map in config.json)", "model.trust_remote_code: true")
    assert not marker.exists() and not (tmp_path / "base").exists()


def test_no_secrets_in_the_code_and_the_token_only_from_the_environment():
    files = [*(REPO / "src").rglob("*.py"), *(REPO / "stages").glob("*.py"), REPO / "params.yaml", REPO / "dvc.yaml"]
    text = "\n".join(path.read_text() for path in files)
    assert not re.search(r"\bhf_[A-Za-z0-9]{30,}", text)  # the shape of a Hugging Face token
    assert not re.search(r"\btoken\s*=", text)  # none passed in code: huggingface_hub reads HF_TOKEN itself
