"""SDM reference module (Lv et al. 2019) with DeepMatch's semantics: the ground truth for SdmConfig.

Every step is the schema's (schemas/model.fbs SdmConfig; /work/shared/reference/models.md §3.1), in float32, for
one request. Short and long histories are right-padded windows of short_length / long_length slots (the most
recent ids kept), pad slots holding each field's padding_row; n_s, n_l are the valid counts. Masked attention
logits are REPLACED by mask_value (-2^32+1) before the softmax, in all three attentions.

  profile     p = tanh(W_u [user fields] + b_u)                                   [u]
  long term   per long field f: a_t = tanh(w_f . [p ; E_f(l_t)] + c_f) / sqrt(D_f), t >= n_l masked,
              g_f = sum_t softmax(a)_t E_f(l_t);  P = tanh(W_p [g_f]_f + b_p)
  short term  x_t = tanh(W_s [E_f(s_t)]_f + b_s)
              LSTM: gates = W_ih x_t + W_hh h + b, row blocks in lstm_gate_order (ifgo: i,f,g,o; igfo: i,g,f,o;
              ifco: i,f,c,o); c = c * sigmoid(f + lstm_forget_bias) + sigmoid(i) * tanh(g); h = tanh(c) * sigmoid(o).
              lstm_layers layers of the SAME cell (DeepMatch's MultiRNNCell of one BasicLSTMCell), each with its own
              zero state; layers after the first add their input (ResidualWrapper). Outputs at t >= n_s are exactly
              0 (dynamic_rnn with sequence_length).
              MHSA: [q|k|v] = W_qkv R (no bias, heads contiguous slices of u/h); logits q.k / sqrt(u/h); keys
              t >= n_s and j > i masked; O = W_o concat(heads) (no bias); X = LayerNorm(O + R) (epsilon).
              user attention: q = tanh(W_a p + b_a); a_t = q . X_t / sqrt(u), t >= n_s masked;
              s = sum_t softmax(a)_t X_t + mean over ALL short_length rows of X (pads included, as DeepMatch).
  fusion      G = sigmoid(W_g [P ; s ; p] + b_g); o = G * s + (1 - G) * P; user vector = l2norm(o).
  items       rows of the item table, l2-normalised when normalize_items.
"""

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reclite_convert.errors import ConversionError
from reclite_convert.modules.features import CategoricalFeature, DenseFeature, HistoryFeature
from reclite_convert.modules.mind import PAD_LOGIT, field_rows, history_window, user_field_batch
from reclite_convert.modules.two_tower import NORMALIZE_EPSILON, collect_tables, make_embeddings, tower_input

GATE_ORDERS = ("ifgo", "igfo", "ifco")
# where each gate's row block sits, per order: (input, forget, candidate, output)
_GATE_BLOCKS = {"ifgo": (0, 1, 2, 3), "igfo": (0, 2, 1, 3), "ifco": (0, 1, 2, 3)}

VARIANTS: Dict[str, Dict[str, Any]] = {
    # DeepMatch sdm.py: TF1 BasicLSTMCell (i, j, f, o; forget_bias 1.0 at run time), rnn_layers 2 sharing the cell
    # with a residual on the second, 4 heads, DeepCTR LayerNorm eps 1e-9, masks -2^32+1, l2norm of both sides.
    "deepmatch": dict(lstm_gate_order="igfo", lstm_forget_bias=1.0, lstm_layers=2, attention_heads=4,
                      attention_norm_epsilon=1e-9, attention_mask_value=PAD_LOGIT, normalize_items=True),
    # ours: PyTorch's gate order and no run-time forget bias, one layer; the rest as DeepMatch.
    "reclite": dict(lstm_gate_order="ifgo", lstm_forget_bias=0.0, lstm_layers=1, attention_heads=4,
                    attention_norm_epsilon=1e-9, attention_mask_value=PAD_LOGIT, normalize_items=True),
}


def variant_defaults(variant: str) -> Dict[str, Any]:
    if variant not in VARIANTS:
        raise ConversionError(f"option --variant: unknown SDM variant '{variant}', expected one of "
                              f"{', '.join(VARIANTS)}")
    return dict(VARIANTS[variant])


def reorder_gates(matrix: np.ndarray, source: str, target: str) -> np.ndarray:
    """Rows (first axis) of an LSTM weight or bias, in four gate blocks, from one gate order to another."""
    blocks = np.split(np.asarray(matrix), 4, axis=0)
    by_gate = [blocks[_GATE_BLOCKS[source][g]] for g in range(4)]  # i, f, candidate, o
    ordered = [None] * 4
    for gate in range(4):
        ordered[_GATE_BLOCKS[target][gate]] = by_gate[gate]
    return np.concatenate(ordered, axis=0)


def lstm_from_tf1(kernel: np.ndarray, bias: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TF1 BasicLSTMCell kernel [in + u, 4u] and bias [4u] -> (input [4u, in], recurrent [4u, u], bias) in the
    cell's own gate order igfo. The forget bias of 1.0 is NOT folded: record lstm_forget_bias 1.0 instead."""
    kernel = np.asarray(kernel)
    units = kernel.shape[1] // 4
    inputs = kernel.shape[0] - units
    return (np.ascontiguousarray(kernel[:inputs].T), np.ascontiguousarray(kernel[inputs:].T),
            np.ascontiguousarray(bias))


def lstm_from_torch(lstm: nn.LSTM) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-layer nn.LSTM -> (input, recurrent, bias_ih + bias_hh), gate order ifgo, forget bias 0."""
    state = {k: v.detach().cpu().numpy() for k, v in lstm.state_dict().items()}
    bias = state.get("bias_ih_l0", 0) + state.get("bias_hh_l0", 0)
    return state["weight_ih_l0"], state["weight_hh_l0"], np.asarray(bias, dtype=np.float32)


class SDM(nn.Module):
    """SDM with DeepMatch semantics. Requests name fields: user fields, short_<history> and long_<history> for
    each history (the item first: ids are external item ids; side histories: vocabulary ids).

    Keys (the `reclite` layout): embeddings.<table>.weight; profile.{weight,bias} [u, user width];
    long_attention.<f>.{weight,bias} [1, u + D_f] / [1]; long_output.{weight,bias} [u, sum D_f];
    short_input.{weight,bias} [u, sum D_f]; lstm_input_weight [4u, u], lstm_recurrent_weight [4u, u], lstm_bias
    [4u] (rows in lstm_gate_order); attention_qkv.weight [3u, u]; attention_output.weight [u, u];
    attention_norm.{weight,bias} [u]; user_attention.{weight,bias} [u, u]; gate.{weight,bias} [u, 3u].
    """

    architecture = "sdm"

    def __init__(self, item_rows: int, units: int, short_length: int = 10, long_length: int = 20,
                 variant: str = "deepmatch", side_histories: Sequence[Dict[str, Any]] = (),
                 user_fields: Sequence = (), item_table: str = "item", padding_row: int = 0,
                 short_prefix: str = "short_", long_prefix: str = "long_", **settings):
        super().__init__()
        from reclite_convert.spec import SpecDefaults, parse_field

        resolved = variant_defaults(variant)
        unknown = set(settings) - set(resolved)
        if unknown:
            raise ConversionError(f"SDM: unknown setting '{sorted(unknown)[0]}'")
        resolved.update({k: v for k, v in settings.items() if v is not None})
        if resolved["lstm_gate_order"] not in GATE_ORDERS:
            raise ConversionError(f"option --lstm-gate-order: '{resolved['lstm_gate_order']}' is not one of "
                                  f"{', '.join(GATE_ORDERS)}")
        self.variant = variant
        self.lstm_gate_order = resolved["lstm_gate_order"]
        self.lstm_forget_bias = float(resolved["lstm_forget_bias"])
        self.lstm_layers = int(resolved["lstm_layers"])
        self.attention_heads = int(resolved["attention_heads"])
        self.attention_norm_epsilon = float(resolved["attention_norm_epsilon"])
        self.attention_mask_value = float(resolved["attention_mask_value"])
        self.normalize_items = bool(resolved["normalize_items"])
        if self.attention_heads < 1 or units % self.attention_heads:
            raise ConversionError(f"option --heads: {self.attention_heads} heads do not divide the units {units}")
        if self.lstm_layers < 1 or short_length < 1 or long_length < 1:
            raise ConversionError("SDM: lstm_layers, short_length and long_length must be positive")
        self.item_rows, self.units = int(item_rows), int(units)
        self.short_length, self.long_length = int(short_length), int(long_length)
        self.item_table_name, self.padding_row = item_table, int(padding_row)
        self.short_prefix, self.long_prefix = short_prefix, long_prefix
        self.side_histories = [dict(s) for s in side_histories]
        self.user_fields = [f if not isinstance(f, dict) else parse_field("user_fields", f, SpecDefaults())
                            for f in user_fields]
        if not self.user_fields:
            raise ConversionError("SDM: the profile needs at least one user field")
        histories = [(item_table, item_table, self.item_rows, self.units, self.padding_row, "item")]
        for side in self.side_histories:
            histories.append((side["name"], side.get("table", side["name"]), int(side["vocabulary_size"]),
                              int(side["embedding_dim"]), int(side.get("padding_row", 0)), "vocabulary"))
        categorical = [CategoricalFeature(table, rows, dim, ids=ids) for _, table, rows, dim, _, ids in histories]
        self.short_fields = [HistoryFeature(short_prefix + name, self.short_length, table, padding_id=pad, ids=ids)
                             for name, table, _, _, pad, ids in histories]
        self.long_fields = [HistoryFeature(long_prefix + name, self.long_length, table, padding_id=pad, ids=ids)
                            for name, table, _, _, pad, ids in histories]
        categorical += [f for f in self.user_fields if isinstance(f, CategoricalFeature)]
        try:
            self.tables = collect_tables(categorical, [f for f in self.user_fields if isinstance(f, HistoryFeature)])
        except ValueError as error:
            raise ConversionError(f"SDM: {error}") from None
        self.embeddings = make_embeddings(self.tables)
        u = self.units
        user_width = sum(f.width if isinstance(f, DenseFeature) else self.tables[f.table].embedding_dim
                         for f in self.user_fields)
        widths = [self.tables[f.table].embedding_dim for f in self.short_fields]
        self.profile = nn.Linear(user_width, u)
        self.long_attention = nn.ModuleList(nn.Linear(u + w, 1) for w in widths)
        self.long_output = nn.Linear(sum(widths), u)
        self.short_input = nn.Linear(sum(widths), u)
        bound = 1.0 / math.sqrt(u)
        self.lstm_input_weight = nn.Parameter(torch.empty(4 * u, u).uniform_(-bound, bound))
        self.lstm_recurrent_weight = nn.Parameter(torch.empty(4 * u, u).uniform_(-bound, bound))
        self.lstm_bias = nn.Parameter(torch.zeros(4 * u))
        self.attention_qkv = nn.Linear(u, 3 * u, bias=False)
        self.attention_output = nn.Linear(u, u, bias=False)
        self.attention_norm = nn.LayerNorm(u, eps=self.attention_norm_epsilon)
        self.user_attention = nn.Linear(u, u)
        self.gate = nn.Linear(3 * u, u)

    def options(self) -> Dict[str, Any]:
        """Constructor arguments as JSON values: SDM(**options()) rebuilds this module (weights aside)."""
        from reclite_convert.spec import field_to_spec

        return {"item_rows": self.item_rows, "units": self.units, "short_length": self.short_length,
                "long_length": self.long_length, "variant": self.variant, "side_histories": self.side_histories,
                "user_fields": [field_to_spec(f) for f in self.user_fields], "item_table": self.item_table_name,
                "padding_row": self.padding_row, "short_prefix": self.short_prefix,
                "long_prefix": self.long_prefix, "lstm_gate_order": self.lstm_gate_order,
                "lstm_forget_bias": self.lstm_forget_bias, "lstm_layers": self.lstm_layers,
                "attention_heads": self.attention_heads, "attention_norm_epsilon": self.attention_norm_epsilon,
                "attention_mask_value": self.attention_mask_value, "normalize_items": self.normalize_items}

    # --- pieces -------------------------------------------------------------------------------------------------
    def windows(self, histories: Sequence[Dict[str, Sequence[int]]], fields: Sequence[HistoryFeature],
                length: int) -> Tuple[Dict[str, torch.Tensor], torch.Tensor]:
        """(rows per field [B, length], n [B]) right-padded; the fields of one kind share their length."""
        rows = {f.name: [] for f in fields}
        counts = []
        for history in histories:
            first = history.get(fields[0].name, [])
            for field in fields:
                values = history.get(field.name, [])
                if len(values) != len(first):
                    raise ConversionError(f"request: history field '{field.name}' has {len(values)} ids, "
                                          f"'{fields[0].name}' has {len(first)}")
                window, n = history_window(values, length, field.padding_id, "right")
                rows[field.name].append(window)
            counts.append(n)
        return ({name: torch.tensor(r, dtype=torch.long).reshape(len(histories), length) for name, r in rows.items()},
                torch.tensor(counts, dtype=torch.long))

    def masked_softmax(self, logits: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits.masked_fill(~allowed, self.attention_mask_value), dim=-1)

    def lstm_cell(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        gates = x @ self.lstm_input_weight.T + h @ self.lstm_recurrent_weight.T + self.lstm_bias
        blocks = gates.chunk(4, dim=-1)
        order = _GATE_BLOCKS[self.lstm_gate_order]
        i, f, g, o = (blocks[order[gate]] for gate in range(4))
        c = c * torch.sigmoid(f + self.lstm_forget_bias) + torch.sigmoid(i) * torch.tanh(g)
        return torch.tanh(c) * torch.sigmoid(o), c

    def lstm(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """[B, T, u] outputs, 0 at padded steps; layers share the cell, layers after the first are residual."""
        batch, length, u = x.shape
        keep = valid.unsqueeze(-1).to(x.dtype)
        inputs = x
        for layer in range(self.lstm_layers):
            h = x.new_zeros(batch, u)
            c = x.new_zeros(batch, u)
            outputs = []
            for t in range(length):
                h_new, c_new = self.lstm_cell(inputs[:, t], h, c)
                step = keep[:, t]
                h, c = step * h_new + (1 - step) * h, step * c_new + (1 - step) * c
                outputs.append(h_new + inputs[:, t] if layer > 0 else h_new)
            inputs = torch.stack(outputs, dim=1) * keep
        return inputs

    def self_attention(self, r: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        batch, length, u = r.shape
        heads, size = self.attention_heads, u // self.attention_heads
        q, k, v = self.attention_qkv(r).split(u, dim=-1)

        def split(x):  # [B, T, u] -> [B, heads, T, u/heads], head k = channels k*size .. (k+1)*size-1
            return x.reshape(batch, length, heads, size).transpose(1, 2)

        logits = torch.matmul(split(q), split(k).transpose(-1, -2)) / math.sqrt(size)
        causal = torch.tril(torch.ones(length, length, dtype=torch.bool))
        allowed = (causal.unsqueeze(0) & valid.unsqueeze(1)).unsqueeze(1)       # [B, 1, T, T]
        context = torch.matmul(self.masked_softmax(logits, allowed), split(v))
        output = self.attention_output(context.transpose(1, 2).reshape(batch, length, u))
        return self.attention_norm(output + r)

    def user_vector_batch(self, histories: Sequence[Dict[str, Sequence[int]]],
                          user_batch: Dict[str, torch.Tensor]) -> torch.Tensor:
        """[B, u] user vectors from item/vocabulary rows of short_* and long_* fields and user field tensors."""
        u = self.units
        p = torch.tanh(self.profile(tower_input(self.user_fields, user_batch, self.embeddings)))      # [B, u]
        batch = p.shape[0]
        # long term
        long_rows, long_counts = self.windows(histories, self.long_fields, self.long_length)
        long_valid = torch.arange(self.long_length).unsqueeze(0) < long_counts.unsqueeze(1)
        pooled = []
        for field, attention in zip(self.long_fields, self.long_attention):
            rows = self.embeddings[field.table](long_rows[field.name])                               # [B, T, D]
            query = p.unsqueeze(1).expand(batch, self.long_length, u)
            scores = torch.tanh(attention(torch.cat([query, rows], dim=-1))).squeeze(-1) / math.sqrt(rows.shape[-1])
            pooled.append((self.masked_softmax(scores, long_valid).unsqueeze(-1) * rows).sum(dim=1))
        preference = torch.tanh(self.long_output(torch.cat(pooled, dim=-1)))                        # P [B, u]
        # short term
        short_rows, short_counts = self.windows(histories, self.short_fields, self.short_length)
        short_valid = torch.arange(self.short_length).unsqueeze(0) < short_counts.unsqueeze(1)
        x = torch.tanh(self.short_input(torch.cat([self.embeddings[f.table](short_rows[f.name])
                                                   for f in self.short_fields], dim=-1)))
        states = self.self_attention(self.lstm(x, short_valid), short_valid)                        # X [B, T, u]
        query = torch.tanh(self.user_attention(p))
        scores = (states * query.unsqueeze(1)).sum(dim=-1) / math.sqrt(u)
        session = (self.masked_softmax(scores, short_valid).unsqueeze(-1) * states).sum(dim=1) + states.mean(dim=1)
        gate = torch.sigmoid(self.gate(torch.cat([preference, session, p], dim=-1)))
        return F.normalize(gate * session + (1 - gate) * preference, dim=-1, eps=NORMALIZE_EPSILON)

    def item_table(self) -> torch.Tensor:
        table = self.embeddings[self.item_table_name].weight
        return F.normalize(table, dim=1, eps=NORMALIZE_EPSILON) if self.normalize_items else table

    # --- one request ------------------------------------------------------------------------------------------
    def request_histories(self, request: Dict, catalogue=None) -> Dict[str, List[int]]:
        histories = {}
        for field in self.short_fields + self.long_fields:
            if field.name not in request:
                raise ConversionError(f"request: no value for history field '{field.name}'")
            histories[field.name] = field_rows(field, request[field.name].get("ids", []), catalogue)
        return histories

    def encode(self, requests: Sequence[Dict], catalogue=None) -> torch.Tensor:
        self.eval()
        with torch.inference_mode():
            return torch.cat([self.user_vector_batch([self.request_histories(r, catalogue)],
                                                     user_field_batch(self.user_fields, [r], catalogue))
                              for r in requests])

    def user_vectors(self, request: Dict, catalogue=None) -> np.ndarray:
        """[u] float32: the user vector of one request."""
        return self.encode([request], catalogue)[0].float().numpy().copy()


def build_from_weights(options: Dict[str, Any], weights: Dict[str, np.ndarray], source: str) -> SDM:
    """Our SDM from its state_dict (the `reclite` layout) and its options (SDM.options(), overrides applied)."""
    from reclite_convert.layouts.common import fill_module

    try:
        module = SDM(**options)
    except TypeError as error:
        raise ConversionError(f"SDM options: {error}") from None
    fill_module(module, weights, {}, source)
    return module


def sdm_training_batch(categories: Optional[Sequence[int]] = None, user_values=None, short_share: float = 0.3):
    """make_batch for mind.train_sampled_softmax: the prefix's last part is the session, the rest the long term."""

    def make_batch(module: SDM, prefixes, targets):
        histories, user_requests = [], []
        for prefix in prefixes:
            cut = max(0, len(prefix) - max(1, int(round(len(prefix) * short_share))))
            parts = {"short_": prefix[cut:], "long_": prefix[:cut]}
            history = {}
            for kind, fields in (("short_", module.short_fields), ("long_", module.long_fields)):
                for index, field in enumerate(fields):
                    rows = parts[kind]
                    history[field.name] = rows if index == 0 else [int(categories[r]) for r in rows]
            histories.append(history)
            user_requests.append(user_values(prefix) if user_values else {})
        return module.user_vector_batch(histories, user_field_batch(module.user_fields, user_requests, None))

    return make_batch


__all__ = ["SDM", "build_from_weights", "VARIANTS", "GATE_ORDERS", "lstm_from_tf1", "lstm_from_torch", "reorder_gates",
           "sdm_training_batch", "variant_defaults"]
