"""Attention over a prefix held once for a whole batch equals plain attention over each row's own
copy of it, and generation under the prefix tree uses it."""

import torch
from test_generation import nested_prompts

from finlora import models, prefix_attention
from finlora.generation import generate_answers


def plain_attention(query, prefix_keys, prefix_values, own_keys, own_values, mask, scaling):
    """Every row given its own copy of the prefix, the heads' keys repeated, softmax written out, in float64."""
    batch, heads = query.shape[:2]
    groups = heads // own_keys.shape[1]
    keys = torch.cat([prefix_keys.expand(batch, -1, -1, -1), own_keys], dim=2).repeat_interleave(groups, dim=1)
    values = torch.cat([prefix_values.expand(batch, -1, -1, -1), own_values], dim=2).repeat_interleave(groups, dim=1)
    scores = (query.double() @ keys.double().transpose(-1, -2)) * scaling
    weights = scores.masked_fill(~mask, float("-inf")).softmax(-1)
    return (weights @ values.double()).transpose(1, 2)


def test_prefix_held_once_gives_the_attention_of_a_copy_per_row():
    torch.manual_seed(0)
    batch, heads, kv_heads, queries, dim, prefix, own = 3, 6, 2, 4, 8, 7, 5
    query = torch.randn(batch, heads, queries, dim)
    prefix_keys, prefix_values = torch.randn(1, kv_heads, prefix, dim), torch.randn(1, kv_heads, prefix, dim)
    own_keys, own_values = torch.randn(batch, kv_heads, own, dim), torch.randn(batch, kv_heads, own, dim)
    # the queries are the last 4 of each row's own 5 positions; row 1 is left-padded by 3, so its
    # first query (a padding position) sees nothing of its own, only the prefix
    causal = torch.ones(queries, own, dtype=torch.bool).tril(diagonal=own - queries)
    own_mask = causal.expand(batch, 1, queries, own).clone()
    own_mask[1, :, :, :3] = False
    mask = torch.cat([torch.ones(batch, 1, queries, prefix, dtype=torch.bool), own_mask], dim=-1)
    assert not own_mask[1, 0, 0].any()

    output, weights = prefix_attention.shared_prefix_attention(
        None, query, (prefix_keys, own_keys), (prefix_values, own_values), mask, scaling=0.35)
    expected = plain_attention(query, prefix_keys, prefix_values, own_keys, own_values, mask, 0.35)
    assert weights is None and output.shape == (batch, queries, heads, dim)
    assert torch.allclose(output.double(), expected, atol=1e-5)


def test_the_rows_own_keys_grow_in_place_and_read_as_if_concatenated(monkeypatch):
    monkeypatch.setattr(prefix_attention, "ROOM", 3)
    torch.manual_seed(0)
    prefix_keys, prefix_values = torch.randn(1, 2, 7, 4), torch.randn(1, 2, 7, 4)
    layer = prefix_attention.SharedPrefixLayer(prefix_keys, prefix_values)
    written_keys, written_values, buffers = [], [], set()
    for length in (5, 1, 1, 1, 1, 4, 1):  # a prefill, then steps; the buffer of 5 + 3 overflows at the fourth step
        keys, values = torch.randn(3, 2, length, 4), torch.randn(3, 2, length, 4)
        written_keys.append(keys)
        written_values.append(values)
        (prefix_k, own_k), (prefix_v, own_v) = layer.update(keys, values)
        buffers.add(layer.buffers[0].data_ptr())
        assert prefix_k is prefix_keys and prefix_v is prefix_values
        assert torch.equal(own_k, torch.cat(written_keys, dim=2)) and torch.equal(own_v, torch.cat(written_values, dim=2))
        assert layer.get_seq_length() == 7 + own_k.shape[2]
    assert len(buffers) == 3  # 5 + 3, then 9 + 3, then 13 + 3 positions


def test_tree_generation_reads_one_copy_of_each_prefix_for_a_batch(tiny_base, monkeypatch):
    tokenizer = models.load_tokenizer(tiny_base)
    model = models.load_base(tiny_base).eval()
    prompts, _ = nested_prompts()
    seen = []
    real = prefix_attention._grouped_attention

    def recording(query, keys, values, bias, scaling):
        seen.append((query.shape[0], keys.shape[0]))
        return real(query, keys, values, bias, scaling)

    monkeypatch.setattr(prefix_attention, "_grouped_attention", recording)
    monkeypatch.setattr(prefix_attention, "ROOM", 2)  # the rows' own buffers grow every other step
    tree = generate_answers(model, tokenizer, prompts, 4, 6, progress=False, prefix_cache="tree")
    assert any(rows > 1 and copies == 1 for rows, copies in seen)  # batches of several rows over one copy
    seen.clear()
    copied = generate_answers(model, tokenizer, prompts, 4, 6, progress=False, prefix_cache="shared")
    assert seen == [] and copied.answers == tree.answers
    assert model.config._attn_implementation != prefix_attention.IMPLEMENTATION  # put back after each batch
