"""Attention for a batch whose rows all continue one prefix, with the prefix's keys and values held once.

Copying a prefix's cache out to every row of a batch costs memory, and each generation step then
concatenates and reads every row's copy: on FiNER's prompts (a 1,711-token tag list, rests of a
few hundred tokens, 7 rows a batch) that copying took about two fifths of decoding's time on a
CPU (bench/RESULTS.md).
Here each layer keeps the prefix once and only the rows' own keys and values grow. Attention runs
in two parts that are merged exactly by their log-sum-exps:
  - every row's queries against the one prefix, stacked into one sequence per key/value head;
  - each row's queries against its own keys, under its mask (padding, causality).
Neither part copies keys out to every query head, as transformers does for a masked attention.

The two-part kernel is PyTorch's fused CPU attention, the one that returns the log-sum-exp; on
other devices `supported` is false and the caller keeps one copy of the prefix per row.
"""

from __future__ import annotations

import contextlib

import torch
from transformers import AttentionInterface, DynamicCache
from transformers.cache_utils import DynamicLayer
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

IMPLEMENTATION = "finlora_shared_prefix"


def supported(device: torch.device) -> bool:
    return device.type == "cpu"


class SharedPrefixLayer(DynamicLayer):
    """One layer's cache: the prefix's keys and values (batch 1), then the rows' own, which grow
    in place in a buffer with room to spare, where a dynamic layer's would be copied whole at
    every step (torch.cat)."""

    def __init__(self, prefix_keys: torch.Tensor, prefix_values: torch.Tensor):
        super().__init__()
        self.prefix_keys, self.prefix_values = prefix_keys, prefix_values
        self.lazy_initialization(prefix_keys, prefix_values)
        self.buffers: tuple[torch.Tensor, torch.Tensor] | None = None

    def update(self, key_states, value_states, *args, **kwargs):
        start = super().get_seq_length()  # the rows' own positions so far
        end = start + key_states.shape[-2]
        if self.buffers is None or end > self.buffers[0].shape[-2]:
            self.buffers = tuple(_with_room(own, states, start, end)
                                 for own, states in zip((self.keys, self.values), (key_states, value_states)))
        for buffer, states in zip(self.buffers, (key_states, value_states)):
            buffer[..., start:end, :] = states
        self.keys, self.values = (buffer[..., :end, :] for buffer in self.buffers)
        # read by `shared_prefix_attention` only
        return (self.prefix_keys, self.keys), (self.prefix_values, self.values)

    def get_seq_length(self) -> int:
        return self.prefix_keys.shape[-2] + super().get_seq_length()


ROOM = 256  # tokens a row's own buffer grows by beyond what it holds: a new buffer every 256 steps


def _with_room(own: torch.Tensor, states: torch.Tensor, start: int, end: int) -> torch.Tensor:
    """A buffer for `end + ROOM` of the rows' own positions, holding the first `start` of them."""
    buffer = states.new_empty((*states.shape[:-2], end + ROOM, states.shape[-1]))
    if start:
        buffer[..., :start, :] = own
    return buffer


def cache_over(prefix_cache: DynamicCache) -> DynamicCache:
    """A cache for a batch of rows that continue `prefix_cache` (batch 1), which it shares, not copies."""
    cache = DynamicCache()
    cache.layers = [SharedPrefixLayer(layer.keys, layer.values) for layer in prefix_cache.layers]
    return cache


def shared_prefix_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """Scaled-dot-product attention over (prefix, own) keys and values; plain keys go to transformers' own."""
    if not isinstance(key, tuple):
        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout,
                                      **kwargs)
    (prefix_keys, own_keys), (prefix_values, own_values) = key, value
    own_mask = attention_mask[..., prefix_keys.shape[-2]:]
    bias = torch.zeros(own_mask.shape, dtype=query.dtype, device=query.device).masked_fill_(~own_mask, float("-inf"))
    prefix_out, prefix_lse = _grouped_attention(query, prefix_keys, prefix_values, None, scaling)
    own_out, own_lse = _grouped_attention(query, own_keys, own_values, bias, scaling)
    own_lse = own_lse.masked_fill(~own_mask.any(-1), float("-inf"))  # the kernel gives 0 where a row sees nothing
    top = torch.maximum(prefix_lse, own_lse)
    prefix_weight, own_weight = (prefix_lse - top).exp().unsqueeze(-1), (own_lse - top).exp().unsqueeze(-1)
    output = (prefix_weight * prefix_out + own_weight * own_out) / (prefix_weight + own_weight)
    return output.transpose(1, 2).contiguous(), None


def _grouped_attention(query, keys, values, bias, scaling):
    """Attention and its log-sum-exp, without copying keys out to every query head (the fused kernel
    takes no grouped heads): the query heads that share a key/value head are stacked into one
    sequence, and against keys held once for the batch (the prefix) every row's are too.

    query: (batch, heads, length, dim); keys and values: (batch or 1, key/value heads, keys, dim);
    bias: None, or (batch, 1, length, keys) for keys of each row's own."""
    batch, heads, length, dim = query.shape
    copies, kv_heads = keys.shape[:2]
    stacked = query.reshape(batch, kv_heads, heads // kv_heads * length, dim)
    if copies == 1:
        stacked = stacked.transpose(0, 1).reshape(1, kv_heads, -1, dim)
    if bias is not None:
        bias = bias.repeat(1, 1, heads // kv_heads, 1)
    out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(stacked, keys, values, 0.0, False,
                                                                          attn_mask=bias, scale=scaling)
    if copies == 1:
        out = out.reshape(kv_heads, batch, -1, dim).transpose(0, 1)
        lse = lse.reshape(kv_heads, batch, -1).transpose(0, 1)
    return out.reshape(query.shape), lse.reshape(batch, heads, length)


def _always_a_mask(*args, **kwargs):
    """transformers' mask for its attention, never dropped for `is_causal`: the two parts need it."""
    return sdpa_mask(*args, **{**kwargs, "allow_is_causal_skip": False})


AttentionInterface.register(IMPLEMENTATION, shared_prefix_attention)
ALL_MASK_ATTENTION_FUNCTIONS.register(IMPLEMENTATION, _always_a_mask)


@contextlib.contextmanager
def in_use(model):
    """The model's attention is `shared_prefix_attention` for the context."""
    config = model.config
    previous = config._attn_implementation
    config._attn_implementation = IMPLEMENTATION
    try:
        yield
    finally:
        config._attn_implementation = previous
