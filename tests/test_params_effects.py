"""Every key of params.yaml changes what happens: each is named here with the tests that show its
effect (a changed value gives a different, checked result), and a test fails when a key of
params.yaml has none, or names a test that does not exist. Tests of keys no other module shows
are below."""

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, fpb_records, greedy_answers, logged_rows, params_with, run_env, write_filings
from finlora import batching, training
from finlora.mixing import mix
from finlora.prepare import prepare
from finlora import samples
from finlora.sources import fetch
from finlora.tasks import TASKS

EFFECTS = {
    "model.base": ["test_pipeline_e2e.py::test_repro_runs_every_stage_and_writes_the_metrics",
                   "test_config.py::test_hub_id_is_accepted_without_network"],
    "model.chat_template": ["test_params_effects.py::test_the_chat_template_wraps_the_prompt_as_a_user_turn",
                            "reliability/test_faults.py::test_tokenizer_without_a_chat_template",
                            "test_protocol.py::test_each_protocol_uses_its_answer_lengths_and_the_raw_prompt"],
    "model.task_marker": ["test_params_effects.py::test_the_task_marker_names_the_task_first_in_every_prompt",
                          "test_predict.py::test_prompt_for_new_text_matches_the_training_prompt",
                          "test_finer.py::test_the_real_tokenizer_keeps_prompts_within_max_seq_len"],
    "model.trust_remote_code": ["reliability/test_faults.py::test_model_code_is_not_run_unless_trusted"],
    "model.head": ["test_head.py::test_a_head_training_learns_and_changes_only_the_adapter_and_the_head",
                   "test_head.py::test_evaluation_scores_the_heads_labels_without_generating"],
    "data.source": ["test_released.py::test_every_task_trains_from_its_train_file_and_tests_on_its_test_file_unchanged",
                    "test_sources.py::test_local_files_in_the_datasets_own_schema",
                    "test_sources.py::test_hub_offline_fails_with_a_clear_message"],
    "data.local_dir": ["test_sources.py::test_local_files_in_the_datasets_own_schema",
                       "test_released.py::test_a_folder_without_finlora_data_is_named"],
    "data.train_size": ["test_params_effects.py::test_split_sizes_and_seed_choose_the_rows"],
    "data.test_size": ["test_params_effects.py::test_split_sizes_and_seed_choose_the_rows"],
    "data.sizes": ["test_params_effects.py::test_split_sizes_and_seed_choose_the_rows"],
    "data.seed": ["test_params_effects.py::test_split_sizes_and_seed_choose_the_rows"],
    "data.on_bad_record": ["test_released.py::test_a_bad_record_names_its_file_and_line_or_is_skipped_and_counted",
                           "test_xbrl.py::test_bad_questions_stop_with_file_and_line_or_are_skipped_and_counted"],
    "data.carved_test_fraction": ["test_params_effects.py::test_the_carved_test_share_follows_the_param"],
    "data.tfns_labels": ["test_released.py::test_tfns_labels_are_read_corrected_or_as_published"],
    "finer.entities_per_sentence": ["test_finer.py::test_each_entity_is_a_question_quoting_the_sentence_and_prompts_batch_k"],
    "finer.questions_per_prompt": ["test_finer.py::test_each_entity_is_a_question_quoting_the_sentence_and_prompts_batch_k"],
    "xbrl.text_value_chars": ["test_params_effects.py::test_text_facts_are_cut_to_text_value_chars"],
    "xbrl.max_prompt_chars": ["test_xbrl.py::test_prompts_over_the_budget_are_dropped_and_counted_never_cut"],
    "lora.rank": ["test_pipeline_e2e.py::test_lora_rank_experiment_reruns_only_what_depends_on_lora"],
    "lora.alpha": ["test_params_effects.py::test_lora_settings_reach_the_adapter"],
    "lora.dropout": ["test_training.py::test_lora_dropouts_get_the_uniform_mask_and_nothing_else"],
    "lora.target_modules": ["test_training_runs.py::test_quantised_and_variant_training",
                            "test_params_effects.py::test_lora_settings_reach_the_adapter"],
    "lora.variant": ["test_training_runs.py::test_quantised_and_variant_training"],
    "quant.bits": ["test_training_runs.py::test_quantised_and_variant_training"],
    "train.lr": ["test_params_effects.py::test_learning_rate_changes_the_training"],
    "train.epochs": ["test_params_effects.py::test_epochs_seed_and_batch_shape_the_steps"],
    "train.batch_size": ["test_params_effects.py::test_epochs_seed_and_batch_shape_the_steps",
                         "test_training.py::test_deepspeed_config_follows_params"],
    "train.grad_accum": ["test_training.py::test_deepspeed_config_follows_params"],
    "train.max_seq_len": ["test_training.py::test_too_long_examples_are_dropped_and_counted",
                          "test_finer.py::test_the_real_tokenizer_keeps_prompts_within_max_seq_len"],
    "train.zero_stage": ["test_training.py::test_deepspeed_config_follows_params"],
    "train.num_gpus": ["test_params_effects.py::test_the_train_stage_launches_num_gpus_processes",
                       "test_training_runs.py::test_two_processes_match_one_process_on_the_same_global_batch"],
    "train.hostfile": ["test_config.py::test_the_hostfile_is_none_for_this_machine_or_an_existing_file",
                       "test_training_runs.py::test_two_nodes_train_as_one_process_on_the_same_global_batches"],
    "train.gradient_checkpointing": ["test_training_runs.py::test_gradient_checkpointing_gives_the_same_loss"],
    "train.liger_kernel": ["test_training_runs.py::test_liger_kernels_train_to_the_same_losses",
                           "reliability/test_faults.py::test_cuda_only_option_on_a_cpu_machine"],
    "train.checkpoint_every": ["test_training_runs.py::test_training_killed_with_sigkill_resumes_from_its_checkpoint"],
    "train.seeds": ["test_params_effects.py::test_epochs_seed_and_batch_shape_the_steps",
                    "test_report.py::test_seeds_give_the_mean_sd_and_t_interval",
                    "test_pipeline_e2e.py::test_a_second_seed_trains_only_that_seed_and_the_report_gives_the_spread"],
    "train.sampling": ["test_params_effects.py::test_sampling_params_set_each_tasks_share"],
    "train.sampling_temperature": ["test_params_effects.py::test_sampling_params_set_each_tasks_share"],
    "train.validation_fraction": ["test_mixing.py::test_hold_out_sets_aside_a_seeded_share_of_each_task_that_training_never_sees",
                                  "test_pipeline_e2e.py::test_repro_runs_every_stage_and_writes_the_metrics"],
    "train.validate_every": ["test_params_effects.py::test_validate_every_and_keep_best_choose_the_steps_and_the_adapter"],
    "train.keep_best": ["test_params_effects.py::test_validate_every_and_keep_best_choose_the_steps_and_the_adapter",
                        "test_training.py::test_train_keeps_the_adapter_of_its_best_validated_step"],
    "train.by_group": ["test_config.py::test_a_group_trains_with_its_own_settings_where_it_has_them"],
    "eval.batch_size": ["test_generation.py::test_answers_do_not_depend_on_batch_size_batch_tokens_or_prefix_reuse"],
    "train.prefix_packing": [
        "test_packing.py::test_packing_puts_a_filings_questions_in_one_micro_batch",
        "test_packing.py::test_a_packed_training_has_the_losses_and_adapter_of_the_same_schedule_unpacked"],
    "eval.prefix_cache": ["test_params_effects.py::test_eval_prefix_cache_computes_each_shared_prefix_once",
                          "test_generation.py::test_answers_are_the_same_under_every_prefix_cache"],
    "eval.batch_tokens": ["test_params_effects.py::test_eval_batch_tokens_caps_each_batch_and_keeps_the_answers",
                          "test_generation.py::test_batches_go_longest_first_within_batch_size_and_batch_tokens"],
    "eval.max_new_tokens": ["test_protocol.py::test_each_protocol_uses_its_answer_lengths_and_the_raw_prompt",
                            "test_params_effects.py::test_answer_lengths_per_task"],
    "eval.max_new_tokens_by_task": ["test_params_effects.py::test_answer_lengths_per_task"],
    "eval.limit": ["test_params_effects.py::test_eval_limit_evaluates_the_first_n"],
    "eval.bits": ["test_evaluation.py::test_eight_bit_merged_and_auto_placed_evaluation_answer_as_their_model_does"],
    "eval.merge_adapter": ["test_evaluation.py::test_eight_bit_merged_and_auto_placed_evaluation_answer_as_their_model_does"],
    # on a CPU, auto places every layer on the CPU (checked there); layers split only over GPUs
    "eval.device_map": ["test_evaluation.py::test_eight_bit_merged_and_auto_placed_evaluation_answer_as_their_model_does"],
    "eval.bertscore_model": ["test_later_tasks.py::test_bertscore_matches_greedy_cosine_matching_done_here",
                             "test_later_tasks.py::test_an_unloadable_scorer_is_said_once_and_no_bertscore_is_written"],
    "eval.protocol": ["test_protocol.py::test_each_protocol_uses_its_answer_lengths_and_the_raw_prompt",
                      "test_protocol.py::test_the_report_names_the_protocol_and_finloras_commit"],
    "few_shot.shots": ["test_fewshot.py::test_the_model_answers_the_whole_few_shot_prompt",
                       "test_fewshot.py::test_the_report_gives_a_row_a_k_and_pairs_the_adapter_with_it",
                       "test_pipeline_e2e.py::test_few_shot_runs_only_its_own_stages_and_the_report"],
    "few_shot.seed": ["test_fewshot.py::test_k_shots_are_k_train_records_balanced_nested_and_never_a_test_prompt"],
    "forgetting.tasks": ["test_forgetting.py::test_the_shipped_task_scores_the_log_likelihood_choice",
                         "test_forgetting.py::test_an_unknown_task_is_named",
                         "test_pipeline_e2e.py::test_forgetting_scores_the_base_and_each_adapter_in_the_report"],
    "forgetting.limit": ["test_forgetting.py::test_the_shipped_task_scores_the_log_likelihood_choice"],
}
MAPPINGS = ("tasks", "data.sizes", "eval.max_new_tokens_by_task", "train.by_group")  # keys whose values are mappings


def params_keys(node: dict, prefix: str = "") -> list[str]:
    keys = []
    for key, value in node.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and name not in MAPPINGS:
            keys += params_keys(value, f"{name}.")
        elif name != "tasks":  # the task groups: every stage's foreach
            keys.append(name)
    return keys


def test_every_params_key_names_tests_that_exist_and_show_its_effect():
    keys = params_keys(yaml.safe_load((REPO / "params.yaml").read_text()))
    assert sorted(keys) == sorted(EFFECTS), "params.yaml and EFFECTS disagree: add the key's tests here"
    for key, tests in EFFECTS.items():
        for test in tests:
            file, name = test.split("::")
            defined = {node.name for node in ast.parse((REPO / "tests" / file).read_text()).body
                       if isinstance(node, ast.FunctionDef)}
            assert name in defined, f"{key}: {test} does not exist"


def test_split_sizes_and_seed_choose_the_rows():
    def rows(**data):
        return fetch(TASKS["fpb"], params_with({"data": {"sizes": {}, **data}}).data).splits

    small = rows(train_size=6, test_size=3)
    assert (len(small["train"]), len(small["test"])) == (6, 3)
    assert rows(train_size=6, test_size=3, seed=43) != small
    per_task = rows(train_size=6, test_size=3, sizes={"fpb": {"train": 2, "test": 1}})
    assert (len(per_task["train"]), len(per_task["test"])) == (2, 1)


def test_the_carved_test_share_follows_the_param(tmp_path):
    shutil.copytree(REPO / "tests" / "fixtures" / "finlora" / "data" / "test", tmp_path / "test")  # test files only
    for fraction, expected in ((0.5, 3), (0.25, 2)):  # of fiqa's six test records, none trained on twice
        data = params_with({"data": {"source": "finlora", "local_dir": str(tmp_path),
                                     "carved_test_fraction": fraction}}).data
        splits = fetch(TASKS["fiqa"], data).splits
        assert len(splits["test"]) == expected and len(splits["train"]) == 6 - expected


def test_text_facts_are_cut_to_text_value_chars(tmp_path):
    from finlora import samples

    raw = samples.generate("xbrl_value", 2, 12, 42)
    write_filings(raw, tmp_path)
    prompts = {chars: "\n".join(r["context"] for r in prepare(
        TASKS["xbrl_value"], raw["splits"]["test"], tmp_path / "t.jsonl", params_with({"xbrl": {"text_value_chars": chars}}),
        filings=tmp_path).records) for chars in (20, 100)}
    longest = {chars: max(len(line.split(">", 1)[1].rsplit("</", 1)[0]) for line in prompt.splitlines()
                          if line.startswith("<us-gaap:") and ">" in line) for chars, prompt in prompts.items()}
    assert longest[20] <= 20 + 3 < longest[100] <= 100 + 3  # (a little over: XML escapes)


def test_lora_settings_reach_the_adapter(tiny_base):
    from finlora import models

    for alpha, targets in ((16, "qkv"), ("2r", "attention")):
        lora = params_with({"lora": {"rank": 4, "alpha": alpha, "target_modules": targets}}).lora
        model = models.add_lora(models.load_base(tiny_base, 16), lora)
        config = model.peft_config["default"]
        assert config.lora_alpha == (16 if alpha == 16 else 8)
        assert sorted(config.target_modules) == sorted(lora.target_modules)


def test_learning_rate_changes_the_training(tiny_base, tmp_path):
    rows = [{"context": f"Instruction: x\nInput: sentence {i}\nAnswer: ", "target": "positive"} for i in range(8)]
    losses = {}
    for lr in (1e-2, 1e-4):
        metrics = training.train(params_with({"tasks": {"s": ["fpb"]}, "train": {"lr": lr, "batch_size": 4, "epochs": 3}}),
                                 rows, tiny_base, tmp_path / str(lr), tmp_path / f"{lr}.json", None)
        losses[lr] = metrics["final_loss"]
    assert losses[1e-2] < losses[1e-4]


def test_epochs_seed_and_batch_shape_the_steps():
    encoded = [batching.Encoded(list(range(10 + i % 5)), [-100] * 9 + [1] * (1 + i % 5)) for i in range(32)]

    def steps(**train):
        return batching.micro_batches(encoded, params_with({"train": train}), 1)

    assert len(steps(epochs=1, batch_size=8)) == 4 and len(steps(epochs=2, batch_size=8)) == 8
    assert len(steps(epochs=1, batch_size=4)) == 8
    assert steps(epochs=1, batch_size=8, seeds=[1]) != steps(epochs=1, batch_size=8, seeds=[2])


@pytest.mark.slow
def test_the_train_stage_launches_num_gpus_processes(tmp_path):
    """DVC resolves train.num_gpus into the train stage's command, and that command's launcher
    starts that many processes (a script that records its rank stands in for stages/train.py)."""
    from dvc.repo import Repo

    shutil.copy(REPO / "dvc.yaml", tmp_path)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["train"]["num_gpus"] = 2
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    Repo.init(tmp_path, no_scm=True)
    command = next(stage.cmd for stage in Repo(tmp_path).index.stages if stage.name.startswith("train@"))
    launcher, _, _ = command.partition(" stages/train.py ")
    (tmp_path / "rank.py").write_text("import os, pathlib\n"
                                      "pathlib.Path(f\"rank-{os.environ['RANK']}-of-{os.environ['WORLD_SIZE']}\").touch()\n")
    env = run_env()
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # `python` is this environment's
    result = subprocess.run([*launcher.split(), "rank.py"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert sorted(path.name for path in tmp_path.glob("rank-*")) == ["rank-0-of-2", "rank-1-of-2"]


def test_sampling_params_set_each_tasks_share():
    by_task = {"big": [{"t": "big"}] * 90, "small": [{"t": "small"}] * 10}

    def small_share(**train):
        p = params_with({"train": train}).train
        return sum(r["t"] == "small" for r in mix(by_task, p.sampling, p.sampling_temperature, p.seed))

    assert small_share(sampling="proportional") == 10 and small_share(sampling="balanced") == 50
    assert small_share(sampling="temperature", sampling_temperature=2.0) == 25  # 100 * 1 / (1 + 3)
    assert small_share(sampling="temperature", sampling_temperature=1.0) == 10


def test_validate_every_and_keep_best_choose_the_steps_and_the_adapter(tiny_base, tmp_path):
    records = fpb_records(16)
    params = params_with({"tasks": {"sentiment": ["fpb"]},
                          "train": {"lr": 1e-2, "batch_size": 4, "epochs": 3, "validate_every": 4, "keep_best": False}})
    metrics = training.train(params, records[4:], tiny_base, tmp_path / "adapter", tmp_path / "train.json",
                             tmp_path / "live", validation=records[:4])
    curve = logged_rows(tmp_path / "live", "accuracy", "val")
    assert [step + 1 for step, _ in curve] == [4, 8, 9]  # every 4 of the 9 steps, and the last
    assert metrics["kept_step"] == 9 and metrics["val_accuracy"] == round(curve[-1][1], 4)


def test_answer_lengths_per_task(tiny_base, tmp_path, monkeypatch):
    """eval.max_new_tokens bounds every task's answers, max_new_tokens_by_task one task's: the
    answers are those of plain `generate` at that many new tokens (conftest's reference)."""
    from finlora import models
    from finlora.evaluation import evaluate
    from finlora.files import read_jsonl, write_jsonl
    from finlora.prompts import prompt_ids

    monkeypatch.chdir(tmp_path)
    records = [{"context": f"Instruction: x\nInput: s{i}\nAnswer: ", "target": "neutral"} for i in range(3)]
    for task in ("fpb", "tfns"):
        write_jsonl(tmp_path / "prepared" / task / "test.jsonl", records)
    params = params_with({"tasks": {"s": ["fpb", "tfns"]}, "eval": {"max_new_tokens": 2, "max_new_tokens_by_task": {"tfns": 6}}})
    evaluate(params, ["fpb", "tfns"], tiny_base, None, tmp_path / "prepared", tmp_path / "p", tmp_path / "m",
             tmp_path / "c", progress_key="lengths")
    tokenizer, model = models.load_tokenizer(tiny_base, params.model.chat_template), models.load_model(tiny_base, None)
    prompts = [prompt_ids(tokenizer, r["context"], params.model.chat_template) for r in records]
    short, long = greedy_answers(model, tokenizer, prompts, 2), greedy_answers(model, tokenizer, prompts, 6)
    assert short != long  # the two lengths give different answers, so the check below can fail
    assert [r["answer"] for r in read_jsonl(tmp_path / "p" / "fpb.jsonl")] == short
    assert [r["answer"] for r in read_jsonl(tmp_path / "p" / "tfns.jsonl")] == long


def test_eval_limit_evaluates_the_first_n(tiny_base, tmp_path, monkeypatch):
    from finlora.evaluation import evaluate
    from finlora.files import write_jsonl

    monkeypatch.chdir(tmp_path)
    records = [{"context": f"Instruction: x\nInput: s{i}\nAnswer: ", "target": "neutral"} for i in range(6)]
    write_jsonl(tmp_path / "prepared" / "fpb" / "test.jsonl", records)
    params = params_with({"tasks": {"s": ["fpb"]}, "eval": {"limit": 4, "max_new_tokens": 2}})
    scores = evaluate(params, ["fpb"], tiny_base, None, tmp_path / "prepared", tmp_path / "p", tmp_path / "m",
                      tmp_path / "c", progress_key="limit")
    rows = [json.loads(line) for line in Path(tmp_path / "p" / "fpb.jsonl").read_text().splitlines()]
    assert scores["fpb"]["n"] == 4 and [r["context"] for r in rows] == [r["context"] for r in records[:4]]


def test_eval_batch_tokens_caps_each_batch_and_keeps_the_answers(tiny_base, tmp_path, monkeypatch):
    from finlora import generation
    from finlora.evaluation import evaluate
    from finlora.files import read_jsonl, write_jsonl

    monkeypatch.chdir(tmp_path)
    records = [{"context": f"Instruction: x\nInput: {'word ' * (3 * i)}s{i}\nAnswer: ", "target": "neutral"}
               for i in range(6)]
    write_jsonl(tmp_path / "prepared" / "fpb" / "test.jsonl", records)
    seen = []

    def recording(lengths, batch_size, batch_tokens=None, held_once=0):
        batches = real_batches(lengths, batch_size, batch_tokens, held_once)
        seen.append([(len(rows), max(lengths[i] for i in rows) - held_once, held_once) for rows in batches])
        return batches

    real_batches = generation.length_batches
    monkeypatch.setattr(generation, "length_batches", recording)
    answers = {}
    for budget in (10_000, 40):
        params = params_with({"tasks": {"s": ["fpb"]}, "eval": {"batch_size": 8, "batch_tokens": budget,
                                                                "max_new_tokens": 2}})
        evaluate(params, ["fpb"], tiny_base, None, tmp_path / "prepared", tmp_path / f"p{budget}",
                 tmp_path / "m", tmp_path / "c", progress_key=f"budget{budget}")
        answers[budget] = [row["answer"] for row in read_jsonl(tmp_path / f"p{budget}" / "fpb.jsonl")]
    assert [rows for rows, _, _ in seen[0]] == [6]
    # each row's own tokens, and once the prefix its rows read from one copy
    assert len(seen[1]) > 1 and all(rows * own + once <= 40 or rows == 1 for rows, own, once in seen[1])
    assert answers[40] == answers[10_000]


def test_eval_prefix_cache_computes_each_shared_prefix_once(tiny_base, tmp_path, monkeypatch):
    """Three "filings" of three questions each under one instruction: the tree computes the
    instruction and each filing once, shared the instruction only, none nothing; same answers."""
    from finlora import generation
    from finlora.evaluation import evaluate
    from finlora.files import read_jsonl, write_jsonl

    monkeypatch.chdir(tmp_path)
    filings = [" ".join(f"fact{f}x{i}={i * f}" for i in range(30)) for f in range(3)]
    records = [{"context": f"Instruction: read the filing\nFiling: {filing}\nQuestion {q}: fact{q}?\nAnswer: ",
                "target": "neutral"} for filing in filings for q in range(3)]
    write_jsonl(tmp_path / "prepared" / "fpb" / "test.jsonl", records)
    computed = []

    def recording(model, parent_cache, prefix, cached, device):
        computed.append(len(prefix) - cached)
        return real_extend(model, parent_cache, prefix, cached, device)

    real_extend = generation._extend_cache
    monkeypatch.setattr(generation, "_extend_cache", recording)
    answers, prefix_tokens = {}, {}
    for mode in ("none", "shared", "tree"):
        computed.clear()
        params = params_with({"tasks": {"s": ["fpb"]}, "eval": {"prefix_cache": mode, "max_new_tokens": 3}})
        evaluate(params, ["fpb"], tiny_base, None, tmp_path / "prepared", tmp_path / mode, tmp_path / "m",
                 tmp_path / "c", progress_key=mode)
        answers[mode] = [row["answer"] for row in read_jsonl(tmp_path / mode / "fpb.jsonl")]
        prefix_tokens[mode] = list(computed)
    assert prefix_tokens["none"] == [] and len(prefix_tokens["shared"]) == 1
    assert len(prefix_tokens["tree"]) == 4 and prefix_tokens["tree"][0] == prefix_tokens["shared"][0]
    assert sum(prefix_tokens["tree"][1:]) > 3 * 100  # each filing (30 facts) once
    assert answers["tree"] == answers["shared"] == answers["none"]


def test_the_chat_template_wraps_the_prompt_as_a_user_turn(tokenizer_dir):
    from transformers import AutoTokenizer

    from finlora.prompts import prompt_ids

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    context = "Instruction: What is the sentiment of this news?\nInput: Sales rose.\nAnswer: "
    raw = tokenizer.decode(prompt_ids(tokenizer, context, params_with({}).model.chat_template))
    chat = tokenizer.decode(prompt_ids(tokenizer, context, params_with({"model": {"chat_template": True}}).model.chat_template))
    assert raw == context  # the default: the raw prompt, as FinLoRA's code feeds it
    assert chat.startswith("<|im_start|>") and f"<|im_start|>user\n{context}" in chat
    assert chat.endswith("<|im_start|>assistant\n")


def test_the_task_marker_names_the_task_first_in_every_prompt():
    released = [{"context": "Instruction: What is the sentiment of this tweet?\nInput: $X up\nAnswer: ",
                 "target": "positive"}]
    generated = samples.generate("fiqa", 3, 1, seed=3)["splits"]["train"]
    for rows in (released, generated):
        marked = prepare(TASKS["fiqa"], rows, Path("f"), params_with({})).records
        plain = prepare(TASKS["fiqa"], rows, Path("f"), params_with({"model": {"task_marker": False}})).records
        assert plain[0]["context"].startswith("Instruction: What is the sentiment of this ")
        assert [r["context"] for r in marked] == ["Task: fiqa\n" + r["context"] for r in plain]
        assert [r["target"] for r in marked] == [r["target"] for r in plain]
