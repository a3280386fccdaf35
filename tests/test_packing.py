import random
import weakref

import pytest
import torch

from conftest import params_with
from finlora import models
from finlora.batching import IGNORE, Encoded, collate
from finlora.loss import answer_loss_sum
from finlora.errors import FinloraError
from finlora.packing import packed_passes, prefix_groups


def example(prompt: list[int], answer: list[int]) -> Encoded:
    return Encoded(prompt + answer, [IGNORE] * len(prompt) + answer)


def test_examples_that_share_a_long_prefix_go_into_one_group():
    shared = list(range(100, 170))  # 70 tokens
    examples = [example(shared + [1, 2], [7]), example([5] * 80, [8]), example(shared + [3], [9, 9]),
                example(shared[:40] + [4] * 40, [7])]  # shares 40 tokens only: below the minimum
    # a group of one keeps its prompt as prefix, up to the position that predicts its first answer token
    assert sorted(prefix_groups(examples, min_prefix=64)) == [([0, 2], 70), ([1], 79), ([3], 79)]
    assert sorted(prefix_groups(examples, min_prefix=32)) == [([0, 2, 3], 40), ([1], 79)]


def test_each_filing_gets_its_own_group_rather_than_all_sharing_the_instruction():
    instruction = list(range(1000, 1070))  # 70 tokens every prompt starts with
    lone, filing_a, filing_b = [200] * 40, list(range(300, 400)), list(range(400, 480))
    examples = [example(instruction + lone + [1], [9]),
                *[example(instruction + filing_a + [q], [7]) for q in (1, 2, 3)],
                *[example(instruction + filing_b + [q], [8]) for q in (4, 5)]]
    # grouped, filing A saves 2 x 170 positions and B 1 x 150: more than all six at the
    # instruction's 70 (5 x 70), or the lone prompt joining A at 70 (3 x 70 + 150)
    assert prefix_groups(examples, min_prefix=64) == [([0], 110), ([1, 2, 3], 170), ([4, 5], 150)]


def test_a_short_instruction_ahead_of_long_different_filings_is_not_a_group():
    instruction = list(range(1000, 1070))  # 70 tokens, then each filing's 200
    filing_a, filing_b = list(range(300, 500)), list(range(500, 700))
    examples = [example(instruction + filing_a + [1], [9]), example(instruction + filing_b + [2], [8])]
    # grouped, the two filings would run side by side in one pass to save 70 positions
    assert prefix_groups(examples, min_prefix=64) == [([0], 270), ([1], 270)]
    examples.append(example(instruction + filing_a + [3], [7]))  # a second question of filing A
    assert prefix_groups(examples, min_prefix=64) == [([0, 2], 270), ([1], 270)]


def test_a_shared_prefix_ends_before_the_first_answer_position():
    # the same prompt twice, answers that start alike: the prefix stops where the answer is predicted
    examples = [example([1] * 70, [5, 6]), example([1] * 70, [5, 7])]
    assert prefix_groups(examples, min_prefix=64) == [([0, 1], 69)]


def test_each_group_is_a_pass_laid_out_by_hand():
    # two groups: prefix [10, 11] (examples 0, 1) and [40, 41, 42] (examples 2, 3), and a lone example
    examples = [example([10, 11, 20], [21]), example([10, 11, 30, 31], [32]),
                example([40, 41, 42, 50], [51]), example([70, 71], [72]), example([40, 41, 42, 60], [61])]
    first, second, lone = packed_passes(examples, pad_id=0, min_prefix=2)
    assert first["prefix_ids"].tolist() == [[10, 11]]
    assert first["input_ids"].tolist() == [[20, 30, 31]]  # the rests one after another, unpadded
    assert first["rest_lengths"].tolist() == [1, 2]
    # 21 is predicted after 20 (slot 0), 32 after 31 (slot 2)
    assert first["answer_positions"].tolist() == [0, 2]
    assert first["answer_targets"].tolist() == [21, 32]
    assert second["prefix_ids"].tolist() == [[40, 41, 42]]
    assert second["input_ids"].tolist() == [[50, 60]]
    assert second["rest_lengths"].tolist() == [1, 1]
    assert second["answer_positions"].tolist() == [0, 1]
    assert second["answer_targets"].tolist() == [51, 61]
    assert lone["input_ids"].tolist() == [[70, 71]] and "prefix_ids" not in lone  # shares nothing: a plain row
    # nothing long enough to share: a plain pass per example
    assert [batch["input_ids"].tolist() for batch in packed_passes(examples[:2], pad_id=0, min_prefix=4)] == [
        [[10, 11, 20]], [[10, 11, 30, 31]]]


def test_packing_with_gradient_checkpointing_or_zero_2_is_refused_by_name():
    with pytest.raises(FinloraError, match="train.prefix_packing.*gradient_checkpointing"):
        params_with({"train": {"prefix_packing": True, "gradient_checkpointing": True}})
    with pytest.raises(FinloraError, match="train.prefix_packing.*zero_stage is 2.*0 or 1"):
        params_with({"train": {"prefix_packing": True, "zero_stage": 2}})
    with pytest.raises(FinloraError, match="train.by_group.finer.prefix_packing.*gradient_checkpointing"):
        params_with({"train": {"gradient_checkpointing": True, "by_group": {"finer": {"prefix_packing": True}}}})


@pytest.mark.parametrize("with_lora", [False, True])
def test_packed_loss_and_gradients_equal_the_unpacked_ones(tiny_base, with_lora):
    """Three filings' questions (two, three and one of them) and an unrelated prompt, right-padded
    in one batch as they are, and packed: the same summed loss and the same gradient, dropout off."""
    rng = random.Random(0)
    tokens = lambda n: [rng.randrange(200, 900) for _ in range(n)]  # noqa: E731
    filings = [tokens(90), tokens(70), tokens(120)]
    examples = [example(filing + tokens(rng.randrange(4, 12)), tokens(rng.randrange(1, 4)))
                for filing, questions in zip(filings, (2, 3, 1)) for _ in range(questions)]
    examples.append(example(tokens(40), tokens(2)))
    model = models.load_base(tiny_base)
    if with_lora:
        model = models.add_lora(model, params_with({"lora": {"dropout": 0.0}}).lora)
        with torch.no_grad():  # B starts at zero; make the adapter matter
            for name, parameter in model.named_parameters():
                if "lora_B" in name:
                    parameter.normal_(std=0.02)
    model.train()
    trained = [p for p in model.parameters() if p.requires_grad]

    def loss_and_grads(batches):  # gradients accumulate over the passes, as in training
        model.zero_grad()
        total = answers = 0
        for batch in batches:
            summed, count = answer_loss_sum(model, batch)
            (summed * 0.5).backward()  # a scaled loss, as DeepSpeed's accumulation scales it
            total, answers = total + summed.item(), answers + count
        return total, answers, [p.grad.clone() for p in trained]

    passes = packed_passes(examples, pad_id=0)
    # three filings, the unrelated prompt
    assert sorted(len(batch.get("rest_lengths", [0])) for batch in passes) == [1, 1, 2, 3]
    positions = sum(batch["input_ids"].numel() + batch.get("prefix_ids", torch.empty(0)).numel() for batch in passes)
    assert positions < 0.75 * collate(examples, 0)["input_ids"].numel()
    unpacked, packed = loss_and_grads([collate(examples, 0)]), loss_and_grads(passes)
    assert packed[1] == unpacked[1] == sum(len(e.labels) - e.labels.count(IGNORE) for e in examples)
    assert packed[0] == pytest.approx(unpacked[0], rel=1e-5)
    for a, b in zip(packed[2], unpacked[2]):
        # relative to each gradient's norm: an element's rounding differs by CPU (1e-6 to 1e-5 seen)
        assert (a - b).norm() <= 1e-4 * b.norm()
    assert any(g.abs().sum() > 0 for g in unpacked[2])


class Held:
    """A key whose end marks a saved tensor's release."""


def test_a_packed_pass_holds_one_calls_graph_at_a_time(tiny_base):
    """What the graph keeps for the backward pass once a packed group's loss is computed: the
    prefix's graph and its gradients so far, the same for two rests (one call) as for six (three
    calls), where holding every rest's graph (each with a copy of the prefix's keys and values)
    would grow with them."""
    rng = random.Random(1)
    tokens = lambda n: [rng.randrange(200, 900) for _ in range(n)]  # noqa: E731
    filing = tokens(150)
    model = models.add_lora(models.load_base(tiny_base), params_with({"lora": {"dropout": 0.0}}).lora)
    model.train()

    def held_bytes(questions: int) -> int:
        batch = packed_passes([example(filing + tokens(10), tokens(2)) for _ in range(questions)], pad_id=0)[0]
        assert len(batch["rest_lengths"]) == questions
        held = {}  # what each tensor saved for the backward pass and still alive keeps: its storage

        def pack(tensor):
            key = Held()
            storage = tensor.untyped_storage()
            held[id(key)] = storage.data_ptr(), storage.nbytes()
            weakref.finalize(key, held.pop, id(key))
            return key, tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda packed: packed[1]):
            summed, _ = answer_loss_sum(model, batch)
        size = sum(dict(held.values()).values())  # each storage once
        summed.backward()
        return size

    two, six = held_bytes(2), held_bytes(6)
    assert two > 0
    assert six == two


def filing_records(filings: int = 3, questions: int = 4) -> list[dict]:
    """Questions of a few "filings": each filing's prompts share 100+ tokens; filings are as long as
    each other, questions are not, so by length alone a batch would mix filings."""
    return [{"context": "Filing: " + " ".join(f"item{f}-{i}={i * (f + 3):04d}" for i in range(25))
             + f"\nQuestion: what is item{f}-{q}{' exactly' * 3 * q}?\nAnswer: ", "target": str(q * (f + 3))}
            for f in range(filings) for q in range(questions)]


def test_packing_puts_a_filings_questions_in_one_micro_batch(tokenizer_dir):
    from transformers import AutoTokenizer

    from finlora.batching import encode, micro_batches

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    encoded, _ = encode(tokenizer, filing_records(), 1024, False)
    filing_of = [i // 4 for i in range(12)]
    for packed in (True, False):
        params = params_with({"tasks": {"sentiment": ["fpb"]}, "train": {"batch_size": 4, "prefix_packing": packed}})
        batches = [micro[0] for micro in micro_batches(encoded, params, 1)]
        assert sorted(i for batch in batches for i in batch) == sorted(list(range(12)) * 2)  # two epochs, each once
        together = all(len({filing_of[i] for i in batch}) == 1 for batch in batches)
        assert together is packed  # by prompt when packing; by length (questions of mixed filings) when not
        if packed:  # so each micro-batch runs its filing once: one group of four
            assert [len(prefix_groups([encoded[i] for i in batch])) for batch in batches] == [1] * len(batches)


def test_a_packed_training_has_the_losses_and_adapter_of_the_same_schedule_unpacked(tiny_base, tmp_path,
                                                                                     monkeypatch):
    from safetensors.torch import load_file

    from finlora import packing, training

    # micro-batches of 6 over three filings of 4 questions: each holds two filings, so two passes
    params = params_with({"tasks": {"sentiment": ["fpb"]}, "lora": {"dropout": 0.0},
                          "train": {"batch_size": 6, "epochs": 2, "lr": 1e-2, "prefix_packing": True}})
    passes_made = []
    real_passes = packing.packed_passes
    monkeypatch.setattr(packing, "packed_passes",
                        lambda examples, pad_id: passes_made.append(real_passes(examples, pad_id)) or passes_made[-1])
    packed = training.train(params, filing_records(), tiny_base, tmp_path / "p", tmp_path / "p.json", None)
    assert [len(passes) for passes in passes_made] == [2] * 4
    monkeypatch.setattr(packing, "packed_passes", lambda examples, pad_id: [collate(examples, pad_id)])
    unpacked = training.train(params, filing_records(), tiny_base, tmp_path / "u", tmp_path / "u.json", None)
    assert packed["prefix_packing"]
    assert packed["final_loss"] == pytest.approx(unpacked["final_loss"], rel=1e-4)
    a, b = load_file(tmp_path / "p" / "adapter_model.safetensors"), load_file(tmp_path / "u" / "adapter_model.safetensors")
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-3, atol=1e-5)


def test_a_cpu_masked_attention_takes_grouped_heads_only_inside_the_context():
    from transformers.integrations.sdpa_attention import use_gqa_in_sdpa

    from finlora.runtime import grouped_heads_under_masks

    mask, keys = torch.ones(1, 1, 4, 4, dtype=torch.bool), torch.zeros(1, 3, 4, 64)
    assert not use_gqa_in_sdpa(mask, keys, keys)  # transformers' own rule: a mask means copied heads
    with grouped_heads_under_masks(torch.device("cpu")):
        assert use_gqa_in_sdpa(mask, keys, keys)
    with grouped_heads_under_masks(torch.device("cuda")):  # CUDA would fall back to its plain kernel
        assert not use_gqa_in_sdpa(mask, keys, keys)
    assert not use_gqa_in_sdpa(mask, keys, keys)
