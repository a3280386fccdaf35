from finlora import models
import random

import pytest

from conftest import greedy_answers
from finlora.generation import (PrefixNode, answer_batches, first_line, generate_answers, left_pad, length_batches,
                                prefix_tree, stop_token_ids)
from finlora.prompts import build_context, prompt_ids
from finlora import samples
from finlora.tasks import TASKS


def mixed_prompts(tokenizer) -> list[list[int]]:
    rows = samples.generate("ner", 1, 12, seed=3)["splits"]["test"] + samples.generate("fpb", 1, 12, seed=3)["splits"]["test"][:4]
    tasks = ["ner"] * 12 + ["fpb"] * 4
    return [prompt_ids(tokenizer, build_context(TASKS[t].example(r)), True) for t, r in zip(tasks, rows)]


def test_left_padding_goes_between_the_shared_prefix_and_the_rest():
    batch = left_pad([[5, 6, 7], [8]], pad_id=0, device="cpu")
    assert batch["input_ids"].tolist() == [[5, 6, 7], [0, 0, 8]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]
    batch = left_pad([[5, 6], [8]], pad_id=0, device="cpu", prefix=[1, 2])
    assert batch["input_ids"].tolist() == [[1, 2, 5, 6], [1, 2, 0, 8]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 1]]


def test_batches_go_longest_first_within_batch_size_and_batch_tokens():
    lengths = [5, 9, 3, 9, 2, 7]
    assert length_batches(lengths, 4) == [[1, 3, 5, 0], [2, 4]]
    # 2 x 9 = 18 tokens fit in 20, 3 x 9 do not; 2 x 7 fit, 3 x 7 do not
    assert length_batches(lengths, 4, batch_tokens=20) == [[1, 3], [5, 0], [2, 4]]
    assert length_batches([30, 4, 4], 4, batch_tokens=20) == [[0], [1, 2]]  # over the budget: alone
    # rows that read their first 8 tokens from one copy hold 8 + 3 x 2 tokens, not 3 x 10
    assert length_batches([10, 10, 10], 4, batch_tokens=20) == [[0, 1], [2]]
    assert length_batches([10, 10, 10], 4, batch_tokens=20, held_once=8) == [[0, 1, 2]]


def test_the_shared_prefix_leaves_each_prompt_a_token():
    assert prefix_tree([[1, 2, 3, 4], [1, 2, 3, 9], [1, 2, 3]], "shared").prefix == [1, 2]
    assert prefix_tree([[1, 2], [3, 4]], "shared").prefix == [] and prefix_tree([[1, 2, 3]], "shared").prefix == []
    assert prefix_tree([[1, 2, 3], [1, 2, 3]], "shared").prefix == [1, 2]  # identical prompts


def nested_prompts() -> tuple[list[list[int]], dict[str, list[int]]]:
    """An instruction every prompt shares; two filings under it, the first with a section two
    of its questions share; and a prompt with no filing. Token ids stay in the tiny model's vocabulary."""
    rng = random.Random(0)
    part = {name: [rng.randrange(200, 900) for _ in range(length)]
            for name, length in (("instruction", 40), ("filing1", 50), ("section", 36), ("filing2", 45))}
    question = [[rng.randrange(200, 900) for _ in range(rng.randrange(3, 9))] for _ in range(8)]
    prompts = [part["instruction"] + part["filing1"] + question[0],
               part["instruction"] + part["filing2"] + question[1],
               part["instruction"] + part["filing1"] + part["section"] + question[2],
               part["instruction"] + question[3],
               part["instruction"] + part["filing1"] + question[4],
               part["instruction"] + part["filing2"] + question[5],
               part["instruction"] + part["filing1"] + part["section"] + question[6],
               part["instruction"] + part["filing1"] + question[7]]
    return prompts, part


def shape(node: PrefixNode) -> tuple:
    return len(node.prefix), sorted(node.rows), sorted(shape(child) for child in node.children)


def test_the_prefix_tree_nests_shared_prefixes_and_leaves_each_prompt_a_token():
    prompts, part = nested_prompts()
    instruction, filing1 = len(part["instruction"]), len(part["instruction"]) + len(part["filing1"])
    tree = prefix_tree(prompts, "tree", min_tokens=32)
    assert tree.prefix == part["instruction"] and tree.rows == [3]
    assert shape(tree) == (instruction, [3], sorted([
        (filing1, [0, 4, 7], [(filing1 + len(part["section"]), [2, 6], [])]),
        (instruction + len(part["filing2"]), [1, 5], []),
    ]))
    for node in (tree, *tree.children, *tree.children[0].children):
        for row in node.rows:
            assert prompts[row][:len(node.prefix)] == node.prefix and len(prompts[row]) > len(node.prefix)
    # a nested prefix shorter than min_tokens gets no node: its prompts stay with the parent
    assert shape(prefix_tree(prompts, "tree", min_tokens=46)) == (instruction, [1, 3, 5], [
        (filing1, [0, 2, 4, 6, 7], [])])
    assert shape(prefix_tree(prompts, "shared")) == (instruction, list(range(8)), [])
    assert shape(prefix_tree(prompts, "none")) == (0, list(range(8)), [])
    with pytest.raises(ValueError, match="tree"):
        prefix_tree(prompts, "radix")


def test_answers_are_the_same_under_every_prefix_cache(tiny_base):
    tokenizer = models.load_tokenizer(tiny_base)
    model = models.load_base(tiny_base).eval()
    prompts, _ = nested_prompts()
    answers = {mode: generate_answers(model, tokenizer, prompts, 4, 6, progress=False, prefix_cache=mode)
               for mode in ("none", "shared", "tree")}
    assert answers["tree"].answers == answers["shared"].answers == answers["none"].answers \
        == greedy_answers(model, tokenizer, prompts, 6)  # plain `generate`, a prompt at a time (conftest)
    assert answers["tree"].new_tokens == answers["none"].new_tokens
    assert len(set(answers["none"].answers)) > 1  # the prompts are told apart
    # batch by batch, one node's prompts at a time: each filing's (and section's) questions together
    batches = list(answer_batches(model, tokenizer, prompts, 4, 6, progress=False))
    assert sorted(sorted(batch.rows) for batch in batches) == [[0, 4, 7], [1, 5], [2, 6], [3]]
    assert {row: answer for batch in batches for row, answer in zip(batch.rows, batch.answers)} == dict(
        enumerate(answers["tree"].answers))


def test_stop_tokens_are_the_end_token_and_every_newline_token(tiny_base):
    tokenizer = models.load_tokenizer(tiny_base)
    stops = stop_token_ids(tokenizer)
    assert tokenizer.eos_token_id in stops
    assert tokenizer.encode("\n", add_special_tokens=False)[0] in stops
    assert tokenizer.encode("positive", add_special_tokens=False)[0] not in stops


def test_answers_do_not_depend_on_batch_size_batch_tokens_or_prefix_reuse(tiny_base):
    tokenizer = models.load_tokenizer(tiny_base)
    model = models.load_base(tiny_base).eval()
    prompts = mixed_prompts(tokenizer)
    assert len(set(len(p) for p in prompts)) > 1  # the batches really are padded
    reference = generate_answers(model, tokenizer, prompts, 1, 6, progress=False, prefix_cache="none")
    batched = generate_answers(model, tokenizer, prompts, 8, 6, progress=False)
    assert batched.answers == reference.answers
    budgeted = generate_answers(model, tokenizer, prompts, 8, 6, progress=False,
                                batch_tokens=3 * max(len(p) for p in prompts))
    assert budgeted.answers == reference.answers
    assert len(prefix_tree(prompts, "shared").prefix) > 20  # chat preamble + "Instruction: What is ..."
    assert 0 < batched.new_tokens <= 6 * len(prompts)


def test_first_line():
    assert first_line("  positive\nExplanation: ...") == "positive" and first_line("") == ""
    assert first_line("\npositive") == ""


def test_under_finlora_protocols_answers_run_past_a_newline(tiny_base):
    """A model made to answer with a newline first: the strict answer stops there, empty; the
    whole answer (first_line_only=False, the finlora-* protocols) runs on to its token budget."""
    import torch

    tokenizer = models.load_tokenizer(tiny_base)
    model = models.load_base(tiny_base).eval()
    prompts = mixed_prompts(tokenizer)[:4]
    newline = tokenizer.encode("\n", add_special_tokens=False)[0]
    with torch.no_grad():  # the newline token's output row along the first prompt's last hidden state
        hidden = model(torch.tensor([prompts[0]]), output_hidden_states=True).hidden_states[-1][0, -1]
        model.get_output_embeddings().weight[newline] = 100 * hidden / hidden.norm()
    strict = generate_answers(model, tokenizer, prompts, 4, 8, progress=False)
    whole = generate_answers(model, tokenizer, prompts, 4, 8, progress=False, first_line_only=False)
    assert any(answer.startswith("\n") for answer in whole.answers)
    assert strict.answers == [first_line(answer) for answer in whole.answers]
    assert whole.new_tokens > strict.new_tokens


def test_a_prefix_read_from_one_copy_counts_once_in_batch_tokens(tiny_base):
    tokenizer = models.load_tokenizer(tiny_base)
    model = models.load_base(tiny_base).eval()
    prompts = mixed_prompts(tokenizer)
    budget = 3 * max(len(p) for p in prompts)
    batches = {mode: list(answer_batches(model, tokenizer, prompts, 8, 6, progress=False, batch_tokens=budget,
                                         prefix_cache=mode)) for mode in ("shared", "tree")}
    assert max(len(batch.rows) for batch in batches["shared"]) == 3 < max(len(batch.rows) for batch in batches["tree"])
    answers = {mode: {row: answer for batch in batches[mode] for row, answer in zip(batch.rows, batch.answers)}
               for mode in batches}
    assert answers["tree"] == answers["shared"]


def test_batches_already_answered_are_skipped_and_the_rest_keep_their_batches(tiny_base):
    """What an interrupted evaluation resumes: the batches it had not finished, as an
    uninterrupted run makes them, so they get the same answers."""
    tokenizer = models.load_tokenizer(tiny_base)
    model = models.load_base(tiny_base).eval()
    prompts, _ = nested_prompts()
    full = list(answer_batches(model, tokenizer, prompts, 2, 6, progress=False))
    done = frozenset(full[0].rows + full[1].rows)
    rest = list(answer_batches(model, tokenizer, prompts, 2, 6, progress=False, done=done))
    assert [batch.rows for batch in rest] == [batch.rows for batch in full[2:]]
    assert [batch.answers for batch in rest] == [batch.answers for batch in full[2:]]
    assert not list(answer_batches(model, tokenizer, prompts, 2, 6, progress=False, done=frozenset(range(8))))
