"""SASRec reference module: every public variant, each spelled out by the fields of schemas/model.fbs SasRecConfig.

This is the ground truth the C++ engine is tested against, so the forward pass is written as the engine performs
it, step by step, driven only by the variant's settings (never by guesses). /work/shared/reference/models.md §1
gives the equations of each library; `VARIANTS` below maps each one onto the schema fields:

  window     the most recent max_length item rows. padding_side right (RecBole): valid rows at 0..n-1, pads after,
             output read at n-1. left (pmixer, torch-rechub): pads first, output read at max_length-1.
  embedding  x_t = E[s_t] * embedding_scale + P[position_t]; position_t = t + position_offset, or 0 for pads when
             pads_use_position_zero. Then the embedding LayerNorm (RecBole), then pad rows * 0 when
             zero_padding_rows (pmixer V1, torch-rechub).
  attention  per head (contiguous channel slices of width hidden/heads): softmax(Q K^T / sqrt(hidden/heads) + M) V,
             then the output projection. Key j is masked for query i when j > i, or when mask_padding_keys and s_j
             is the padding row. Masked logits get mask_value added; mask_value -inf removes the key (torch bool
             masks).
  blocks     post_norm:  a = LN_att(x + MHA(x, x, x)); x = LN_ff(a + FFN(a))
             query_norm: q = LN_att(x); o = q + MHA(q, x, x); z = LN_ff(o); x = FFN(z) + z
             pre_norm:   x = x + MHA(y, y, y), y = LN_att(x); x = x + FFN(LN_ff(x))
             FFN(v) = outer(act(inner(v))). After every block pad rows * 0 when zero_padding_rows.
  output     the final LayerNorm when present (pmixer, torch-rechub), then the row read as above.

Item rows are table rows here; external item ids exist only in the model file's catalogue. Scores are
<user vector, item table row>; the padding row is not an item.
"""

import math
import re
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reclite_convert.errors import ConversionError
from reclite_convert.modules.two_tower import apply_activation, canonical_activation

BLOCK_STYLES = ("post_norm", "query_norm", "pre_norm")
PADDING_SIDES = ("right", "left")


@dataclass(frozen=True)
class SasRecVariant:
    """One public implementation, as schema fields (SasRecConfig) plus the library's option defaults."""

    name: str
    block_style: str
    padding_side: str
    scale_embeddings: bool          # embedding_scale = sqrt(hidden) when True, else 1
    position_offset: int
    pads_use_position_zero: bool
    embedding_norm: bool
    mask_padding_keys: bool
    mask_value: float
    zero_padding_rows: bool
    final_norm: bool
    activation: str                 # the library's default
    layer_norm_epsilon: float       # the library's default
    heads: int                      # the library's default
    max_length: int                 # the library's default training window

    def position_rows(self, max_length: int) -> int:
        return max_length + self.position_offset


_PMIXER_V1 = dict(block_style="query_norm", padding_side="left", scale_embeddings=True, position_offset=0,
                  pads_use_position_zero=False, embedding_norm=False, mask_padding_keys=False,
                  mask_value=-math.inf, zero_padding_rows=True, final_norm=True, activation="relu",
                  layer_norm_epsilon=1e-8, heads=1, max_length=200)

VARIANTS: Dict[str, SasRecVariant] = {
    "recbole": SasRecVariant("recbole", block_style="post_norm", padding_side="right", scale_embeddings=False,
                             position_offset=0, pads_use_position_zero=False, embedding_norm=True,
                             mask_padding_keys=True, mask_value=-10000.0, zero_padding_rows=False, final_norm=False,
                             activation="gelu_erf", layer_norm_epsilon=1e-12, heads=2, max_length=50),
    "pmixer_v1": SasRecVariant("pmixer_v1", **_PMIXER_V1),
    "pmixer_v2": SasRecVariant("pmixer_v2", **dict(_PMIXER_V1, position_offset=1, pads_use_position_zero=True,
                                                   zero_padding_rows=False)),
    "pmixer_v3": SasRecVariant("pmixer_v3", **dict(_PMIXER_V1, block_style="post_norm", position_offset=1,
                                                   pads_use_position_zero=True, zero_padding_rows=False)),
    "pmixer_v3_pre_norm": SasRecVariant("pmixer_v3_pre_norm", **dict(
        _PMIXER_V1, block_style="pre_norm", position_offset=1, pads_use_position_zero=True,
        zero_padding_rows=False)),
    "torch_rechub": SasRecVariant("torch_rechub", **dict(_PMIXER_V1, max_length=50)),
}


def variant_of(name: str) -> SasRecVariant:
    if name not in VARIANTS:
        raise ConversionError(f"option --variant: unknown SASRec variant '{name}', expected one of "
                              f"{', '.join(VARIANTS)}")
    return VARIANTS[name]


class SasRecLayer(nn.Module):
    """One transformer block: Q, K, V and output projections, two LayerNorms, a two-layer feed-forward."""

    def __init__(self, hidden_size: int, inner_size: int, layer_norm_epsilon: float):
        super().__init__()
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(hidden_size, hidden_size)
        self.value = nn.Linear(hidden_size, hidden_size)
        self.output = nn.Linear(hidden_size, hidden_size)
        self.attention_norm = nn.LayerNorm(hidden_size, eps=layer_norm_epsilon)
        self.inner = nn.Linear(hidden_size, inner_size)
        self.outer = nn.Linear(inner_size, hidden_size)
        self.feed_forward_norm = nn.LayerNorm(hidden_size, eps=layer_norm_epsilon)


class SASRec(nn.Module):
    """SASRec in one of VARIANTS. `user_vector(histories)` takes lists of item rows, most recent last.

    Keys (the `reclite` layout): item_embedding.weight [item_rows, hidden], position_embedding.weight
    [position_rows, hidden], embedding_norm.{weight,bias} (RecBole only), layers.<l>.{query,key,value,output,inner,
    outer}.{weight,bias} ([out, in] / [out]), layers.<l>.{attention_norm,feed_forward_norm}.{weight,bias},
    final_norm.{weight,bias} (pmixer and torch-rechub only).
    """

    architecture = "sasrec"

    def __init__(self, item_rows: int, max_length: int, hidden_size: int, heads: int, inner_size: int,
                 layers: int, variant: str = "recbole", activation: Optional[str] = None,
                 layer_norm_epsilon: Optional[float] = None, padding_row: int = 0, history_field: str = "history"):
        super().__init__()
        self.variant = variant_of(variant)
        if heads < 1 or hidden_size % heads:
            raise ConversionError(f"option --heads: {heads} heads do not divide the hidden size {hidden_size}")
        if max_length < 1:
            raise ConversionError(f"option --max-length: must be at least 1, got {max_length}")
        if not 0 <= padding_row < item_rows:
            raise ConversionError(f"option --padding-row: {padding_row} is not a row of the item table "
                                  f"[0, {item_rows})")
        try:
            self.activation = canonical_activation(activation or self.variant.activation)
        except ValueError as error:
            raise ConversionError(f"option --activation: {error}") from None
        self.layer_norm_epsilon = float(self.variant.layer_norm_epsilon if layer_norm_epsilon is None
                                        else layer_norm_epsilon)
        self.item_rows, self.max_length, self.hidden_size = item_rows, max_length, hidden_size
        self.heads, self.inner_size, self.padding_row = heads, inner_size, padding_row
        self.history_field = history_field
        # float32, as the engine stores it and as torch multiplies a float32 tensor by a Python float
        self.embedding_scale = float(np.float32(math.sqrt(hidden_size))) if self.variant.scale_embeddings else 1.0
        self.item_embedding = nn.Embedding(item_rows, hidden_size)
        self.position_embedding = nn.Embedding(self.variant.position_rows(max_length), hidden_size)
        self.embedding_norm = nn.LayerNorm(hidden_size, eps=self.layer_norm_epsilon) \
            if self.variant.embedding_norm else None
        self.layers = nn.ModuleList(SasRecLayer(hidden_size, inner_size, self.layer_norm_epsilon)
                                    for _ in range(layers))
        self.final_norm = nn.LayerNorm(hidden_size, eps=self.layer_norm_epsilon) if self.variant.final_norm else None
        with torch.no_grad():
            for parameter in self.parameters():
                if parameter.dim() > 1:
                    nn.init.normal_(parameter, 0.0, 0.1)

    # --- windows ----------------------------------------------------------------------------------------------
    def windows(self, histories: Sequence[Sequence[int]]) -> Tuple[torch.Tensor, torch.Tensor]:
        """(rows [B, max_length] padded with padding_row as the library pads, output position per history)."""
        rows, read = [], []
        window = self.max_length
        for history in histories:
            recent = [int(r) for r in history][-window:] if len(history) else []
            pads = [self.padding_row] * (window - len(recent))
            if self.variant.padding_side == "right":
                if not recent:
                    raise ConversionError(f"{self.variant.name}: an empty history has no output position "
                                          f"(RecBole reads position n-1)")
                rows.append(recent + pads)
                read.append(len(recent) - 1)
            else:
                rows.append(pads + recent)
                read.append(window - 1)
        return torch.tensor(rows, dtype=torch.long).reshape(len(rows), window), torch.tensor(read, dtype=torch.long)

    # --- forward ----------------------------------------------------------------------------------------------
    def attention(self, layer: SasRecLayer, queries: torch.Tensor, keys: torch.Tensor,
                  allowed: torch.Tensor) -> torch.Tensor:
        batch, length, _ = queries.shape
        head_size = self.hidden_size // self.heads

        def split(x):  # [B, T, d] -> [B, heads, T, d/heads], head k = channels k*dh .. (k+1)*dh-1
            return x.reshape(batch, length, self.heads, head_size).transpose(1, 2)

        q, k, v = split(layer.query(queries)), split(layer.key(keys)), split(layer.value(keys))
        logits = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(head_size)
        blocked = ~allowed[:, None, :, :]
        if math.isinf(self.variant.mask_value):
            logits = logits.masked_fill(blocked, -math.inf)
        else:
            logits = logits + blocked.to(logits.dtype) * self.variant.mask_value
        context = torch.matmul(torch.softmax(logits, dim=-1), v)
        return layer.output(context.transpose(1, 2).reshape(batch, length, self.hidden_size))

    def feed_forward(self, layer: SasRecLayer, x: torch.Tensor) -> torch.Tensor:
        return layer.outer(apply_activation(layer.inner(x), self.activation))

    def sequence_output(self, rows: torch.Tensor) -> torch.Tensor:
        """Hidden states [B, T, hidden] of windows of item rows [B, T] (already padded)."""
        batch, length = rows.shape
        variant = self.variant
        valid = rows != self.padding_row
        x = self.item_embedding(rows)
        if variant.scale_embeddings:
            x = x * self.embedding_scale
        positions = torch.arange(length).unsqueeze(0).expand(batch, length) + variant.position_offset
        if variant.pads_use_position_zero:
            positions = positions * valid
        x = x + self.position_embedding(positions)
        if self.embedding_norm is not None:
            x = self.embedding_norm(x)
        keep = valid.unsqueeze(-1).to(x.dtype)
        if variant.zero_padding_rows:
            x = x * keep
        allowed = torch.tril(torch.ones(length, length, dtype=torch.bool)).unsqueeze(0).expand(batch, length, length)
        if variant.mask_padding_keys:
            allowed = allowed & valid.unsqueeze(1)
        for layer in self.layers:
            if variant.block_style == "post_norm":
                a = layer.attention_norm(x + self.attention(layer, x, x, allowed))
                x = layer.feed_forward_norm(a + self.feed_forward(layer, a))
            elif variant.block_style == "query_norm":
                q = layer.attention_norm(x)
                z = layer.feed_forward_norm(q + self.attention(layer, q, x, allowed))
                x = self.feed_forward(layer, z) + z
            else:
                y = layer.attention_norm(x)
                x = x + self.attention(layer, y, y, allowed)
                x = x + self.feed_forward(layer, layer.feed_forward_norm(x))
            if variant.zero_padding_rows:
                x = x * keep
        if self.final_norm is not None:
            x = self.final_norm(x)
        return x

    def user_vector(self, histories: Sequence[Sequence[int]]) -> torch.Tensor:
        """[B, hidden]: the output at the variant's read position of each history (item rows, most recent last)."""
        rows, read = self.windows(histories)
        states = self.sequence_output(rows)
        return states[torch.arange(len(read)), read]

    def item_table(self) -> torch.Tensor:
        return self.item_embedding.weight

    def score(self, histories: Sequence[Sequence[int]]) -> torch.Tensor:
        """[B, item_rows] inner products with every row (the padding row included: exclude it when ranking)."""
        return self.user_vector(histories) @ self.item_table().T

    def options(self) -> Dict[str, object]:
        """What the tensors cannot tell, as the converter records it."""
        return {"variant": self.variant.name, "heads": self.heads, "layer_norm_epsilon": self.layer_norm_epsilon,
                "activation": self.activation, "max_length": self.max_length, "padding_row": self.padding_row,
                "history_field": self.history_field}


# --- building from a checkpoint (the layouts rename keys first) ----------------------------------------------
@dataclass
class SasRecOptions:
    """What a SASRec checkpoint cannot tell (None: the variant's library default, or what the tensors show)."""

    variant: Optional[str] = None
    heads: Optional[int] = None
    layer_norm_epsilon: Optional[float] = None
    activation: Optional[str] = None
    max_length: Optional[int] = None
    history_field: Optional[str] = None
    padding_row: int = 0


_LAYER_KEY = re.compile(r"^layers\.(\d+)\.")


def build_from_weights(weights: Dict[str, np.ndarray], variant: str, options: SasRecOptions, source: str,
                       source_key: Optional[Dict[str, str]] = None, history_field: str = "history",
                       their_key: Optional[Callable[[str], str]] = None) -> SASRec:
    """Our module for `variant`, filled with `weights` (already under our keys), in eval mode.

    source_key maps our keys to the checkpoint's names (their_key names the ones the file lacks), so every message
    names the key as the file spells it.
    Hidden and inner sizes, the layer count and the position rows come from the tensors; the rest from options.
    """
    from reclite_convert.layouts.common import fill_module  # the shared key/shape checks

    source_key = dict(source_key or {})
    the_variant = variant_of(variant)

    def name(key: str) -> str:
        return source_key.get(key) or (their_key(key) if their_key else key)

    def need(key: str) -> np.ndarray:
        if key not in weights:
            raise ConversionError(f"{source}: missing key '{name(key)}'")
        value = np.asarray(weights[key])
        if value.ndim != 2:
            raise ConversionError(f"{source}: key '{name(key)}': expected a matrix, got shape {list(value.shape)}")
        return value

    items = need("item_embedding.weight")
    positions = need("position_embedding.weight")
    item_rows, hidden_size = items.shape
    layer_indices = {int(m.group(1)) for m in (_LAYER_KEY.match(k) for k in weights) if m}
    layers = max(layer_indices) + 1 if layer_indices else 0
    if layers == 0:
        raise ConversionError(f"{source}: no transformer layer (missing key '{name('layers.0.query.weight')}')")
    inner_size = need("layers.0.inner.weight").shape[0]
    offset = the_variant.position_offset
    visible = positions.shape[0] - offset
    max_length = visible if options.max_length is None else int(options.max_length)
    if max_length != visible or visible < 1:
        raise ConversionError(
            f"{source}: key '{name('position_embedding.weight')}' has "
            f"{positions.shape[0]} rows; variant {the_variant.name} with max length {max_length} needs "
            f"{max_length + offset} (max_length{' + 1, row 0 for padding' if offset else ''}): check --variant "
            f"and --max-length")
    heads = the_variant.heads if options.heads is None else int(options.heads)
    module = SASRec(item_rows, max_length, hidden_size, heads, inner_size, layers, variant=the_variant.name,
                    activation=options.activation, layer_norm_epsilon=options.layer_norm_epsilon,
                    padding_row=int(options.padding_row), history_field=options.history_field or history_field)
    for key in module.state_dict():
        source_key[key] = name(key)
    fill_module(module, weights, source_key, source)
    return module


# --- brief training ------------------------------------------------------------------------------------------
def synthetic_sequences(item_rows: int, users: int = 200, length: int = 40, seed: int = 0,
                        padding_row: int = 0) -> List[List[int]]:
    """A sequence log with structure to learn: each user walks item rows in steps of a personal stride."""
    rng = np.random.default_rng(seed)
    items = np.array([r for r in range(item_rows) if r != padding_row])
    sequences = []
    for _ in range(users):
        start, stride = int(rng.integers(0, len(items))), int(rng.integers(1, 4))
        walk = [(start + stride * t + int(rng.random() < 0.2) * int(rng.integers(0, len(items)))) % len(items)
                for t in range(length)]
        sequences.append([int(items[w]) for w in walk])
    return sequences


def train_next_item(module: nn.Module, sequences: Sequence[Sequence[int]], steps: int = 200, batch_size: int = 64,
                    learning_rate: float = 0.005, seed: int = 0, padding_row: int = 0,
                    user_vector: Optional[Callable] = None, item_table: Optional[Callable] = None) -> None:
    """Next-item cross-entropy over all item rows (the padding row excluded) for a few hundred steps.

    Works with any module offering user_vector(histories) and item_table(), so library-style modules train the
    same way. Histories are prefixes of the sequences of at least one item, ending before the target.
    """
    user_vector = user_vector or module.user_vector
    item_table = item_table or module.item_table
    rng = np.random.default_rng(seed)
    optimizer = torch.optim.Adam(module.parameters(), lr=learning_rate)
    module.train()
    for _ in range(steps):
        histories, targets = [], []
        for user in rng.integers(0, len(sequences), size=batch_size):
            sequence = sequences[int(user)]
            cut = int(rng.integers(1, len(sequence)))
            histories.append(sequence[:cut])
            targets.append(sequence[cut])
        logits = user_vector(histories) @ item_table().T
        is_padding = torch.arange(logits.shape[1]) == padding_row
        logits = logits.masked_fill(is_padding.unsqueeze(0), -math.inf)
        loss = F.cross_entropy(logits, torch.tensor(targets, dtype=torch.long))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    module.eval()


__all__ = ["SASRec", "SasRecLayer", "SasRecOptions", "SasRecVariant", "VARIANTS", "build_from_weights",
           "synthetic_sequences", "train_next_item", "variant_of"]
