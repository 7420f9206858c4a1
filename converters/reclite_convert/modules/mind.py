"""MIND reference module (Li et al. 2019): the ground truth for the C++ engine's MindConfig (schemas/model.fbs).

Every step is the schema's, driven only by the settings below (/work/shared/reference/models.md §2 gives the
libraries; `VARIANTS` maps each onto the schema fields). One request, in float32:

  window     each history field keeps its most recent max_length ids; n = that count. Slots of the window:
             padding_side right: valid at 0..n-1, pads after; left: pads first, valid at T-n..T-1. Pad slots
             hold each field's padding_row (so a pad behaviour has the embedding of the padding rows).
  behaviour  e_t = E_item[b_t] (item_only), the sum of the history fields' rows (sum) or their mean (mean);
             every history table has width hidden_size.
  bilinear   ê_t = W e_t, W [hidden, hidden] (PyTorch Linear layout, no bias).
  K'         max(1, min(K, floor(log2(n + 1)))) when dynamic_interests, else K.
  routing    b = a local copy of initial_logits [K, T] (batch of 1: no sum over a batch, no state kept).
             Per iteration: L = b; when dynamic_interests, L[k >= K', :] = inactive_logit; then, when
             routing_padding is logit_before_softmax, L[:, pads] = pad_logit (replacement, pads win);
             w = softmax of L over behaviours (each capsule's row) or over capsules (each behaviour's column);
             when zero_after_softmax, w[:, pads] = 0 (no renormalisation);
             z_k = sum_t w_kt ê_t; c_k = squash(z_k) = |z|^2/(1+|z|^2) z / sqrt(|z|^2 + squash_epsilon);
             b_kt += c_k . ê_t, except after the last iteration unless update_logits_on_last_iteration.
  head       h_k = head([user fields ; c_k]) (dense layers [out, in] with activations), then L2 normalisation
             (F.normalize, eps 1e-12) when head_l2_normalize, then h_k = 0 for k >= K' when dynamic_interests and
             mask_inactive_interests. The serving output is all K vectors [K, D].
  items      rows of the item table (F.normalize'd when normalize_items).
  label      for a known target item e (its item vector): p >= 100: h_k of the largest h_k . e (the hard limit;
             ties to the lower k); otherwise w_k = (h_k . e)^p and sum_k softmax(w)_k h_k. Inactive interests
             (dynamic_interests) take no part (their w is pad_logit).

Item ids are table rows inside the module; requests with external ids go through a Catalogue.
"""

import math
from dataclasses import dataclass, fields as dataclass_fields, replace
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reclite_convert.errors import ConversionError
from reclite_convert.modules.features import CategoricalFeature, DenseFeature, HistoryFeature
from reclite_convert.modules.two_tower import (NORMALIZE_EPSILON, TableShape, apply_activation,
                                               canonical_activation, collect_tables, make_embeddings, tower_input)

PAD_LOGIT = -4294967296.0        # -2^32 + 1 in float32 (DeepMatch, fun-rec)
INACTIVE_LOGIT = -2147483648.0   # -2^31 (DeepMatch HEAD, fun-rec)
ROUTING_SOFTMAXES = ("over_behaviours", "over_capsules")
ROUTING_PADDINGS = ("logit_before_softmax", "zero_after_softmax")
BEHAVIOUR_COMBINES = ("item_only", "sum", "mean")
PADDING_SIDES = ("right", "left")
INITIAL_LOGITS = ("zeros", "normal", "truncated_normal")


@dataclass(frozen=True)
class MindSettings:
    """The MindConfig fields that are settings, not tensors; a variant gives defaults, options override."""

    routing_softmax: str = "over_behaviours"
    routing_padding: str = "logit_before_softmax"
    padding_side: str = "right"
    squash_epsilon: float = 1e-9
    dynamic_interests: bool = True
    mask_inactive_interests: bool = True
    update_logits_on_last_iteration: bool = False
    behaviour_combine: str = "item_only"
    routing_iterations: int = 3
    pad_logit: float = PAD_LOGIT
    inactive_logit: float = INACTIVE_LOGIT
    head_l2_normalize: bool = False
    normalize_items: bool = False
    label_attention_power: float = 1.0
    initial_logits: str = "normal"      # how a fresh module draws its frozen routing logits (not a schema field)

    def check(self) -> "MindSettings":
        for name, allowed in (("routing_softmax", ROUTING_SOFTMAXES), ("routing_padding", ROUTING_PADDINGS),
                              ("behaviour_combine", BEHAVIOUR_COMBINES), ("padding_side", PADDING_SIDES),
                              ("initial_logits", INITIAL_LOGITS)):
            if getattr(self, name) not in allowed:
                raise ConversionError(f"option --{name.replace('_', '-')}: '{getattr(self, name)}' is not one of "
                                      f"{', '.join(allowed)}")
        if self.routing_iterations < 1:
            raise ConversionError(f"option --routing-iterations: must be at least 1, got {self.routing_iterations}")
        if not self.squash_epsilon >= 0:
            raise ConversionError(f"option --squash-epsilon: must be >= 0, got {self.squash_epsilon}")
        return self


VARIANTS: Dict[str, MindSettings] = {
    # DeepMatch <= v0.2.0: stored B, softmax over behaviours, pads -2^32+1 before it (right padding), squash eps
    # 1e-8, B updated on every iteration; dynamic_k zeros h_k for k >= K' (MaskUserEmbedding). Its routing has no
    # K', but over behaviours each capsule routes on its own row, so masking the rows changes nothing kept.
    "deepmatch_v020": MindSettings(squash_epsilon=1e-8, update_logits_on_last_iteration=True),
    # DeepMatch >= v0.2.1: softmax over capsules (the paper), pads zeroed after it, K' masks logits each
    # iteration and h_k at serving; fresh TruncatedNormal(0, 1) logits per call -> frozen snapshot here.
    "deepmatch_head": MindSettings(routing_softmax="over_capsules", routing_padding="zero_after_softmax",
                                   label_attention_power=100.0, initial_logits="truncated_normal"),
    # fun-rec: stored B, left padding, over behaviours, K' rows -2^31 before the pads; no masking at serving;
    # the behaviour is the mean of the history tables.
    "fun_rec": MindSettings(padding_side="left", mask_inactive_interests=False, update_logits_on_last_iteration=True,
                            behaviour_combine="mean"),
    # torch-rechub: torch.randn logits per call -> frozen snapshot; softmax over behaviours including pads, then
    # pads zeroed; all K capsules; h = l2norm([o ; c] U); items l2norm(E). Its sequences are left-padded.
    "torch_rechub": MindSettings(routing_padding="zero_after_softmax", padding_side="left", dynamic_interests=False,
                                 mask_inactive_interests=False, head_l2_normalize=True, normalize_items=True,
                                 label_attention_power=100.0),
    # ours: the paper's routing (as DeepMatch HEAD) with any behaviour combination.
    "reclite": MindSettings(routing_softmax="over_capsules", routing_padding="zero_after_softmax",
                            initial_logits="truncated_normal"),
}
SETTING_NAMES = tuple(f.name for f in dataclass_fields(MindSettings))


def variant_settings(variant: str, **overrides) -> MindSettings:
    if variant not in VARIANTS:
        raise ConversionError(f"option --variant: unknown MIND variant '{variant}', expected one of "
                              f"{', '.join(VARIANTS)}")
    unknown = set(overrides) - set(SETTING_NAMES)
    if unknown:
        raise ConversionError(f"MIND: unknown setting '{sorted(unknown)[0]}'")
    return replace(VARIANTS[variant], **{k: v for k, v in overrides.items() if v is not None}).check()


def active_interest_count(n: int, interests: int) -> int:
    """K' = max(1, min(K, floor(log2(n + 1)))), with an exact integer log2."""
    return max(1, min(interests, (int(n) + 1).bit_length() - 1))


def squash(z: torch.Tensor, epsilon: float) -> torch.Tensor:
    squared = (z * z).sum(dim=-1, keepdim=True)
    return squared / (1.0 + squared) * z / torch.sqrt(squared + epsilon)


def history_window(rows: Sequence[int], max_length: int, padding_row: int, side: str) -> Tuple[List[int], int]:
    """(the window of max_length slots, n): the most recent max_length rows, padded on `side`."""
    recent = [int(r) for r in rows][-max_length:] if len(rows) else []
    pads = [int(padding_row)] * (max_length - len(recent))
    return (recent + pads if side == "right" else pads + recent), len(recent)


def valid_slots(n: int, max_length: int, side: str) -> List[bool]:
    return [t < n for t in range(max_length)] if side == "right" else [t >= max_length - n
                                                                         for t in range(max_length)]


def field_rows(field, ids: Sequence[int], catalogue) -> List[int]:
    """A request field's ids as table rows: external item ids through the catalogue, vocabulary ids as they are."""
    if field.ids == "item" and catalogue is not None:
        return catalogue.rows_of(ids).tolist()
    return [int(i) for i in ids]


def user_field_batch(fields: Sequence, requests: Sequence[Dict], catalogue) -> Dict[str, torch.Tensor]:
    """Tensors of the user (head / profile) fields of requests, as tower_input reads them."""
    batch = {}
    for field in fields:
        entries = []
        for request in requests:
            if field.name not in request:
                raise ConversionError(f"request: no value for user field '{field.name}'")
            entries.append(request[field.name])
        if isinstance(field, CategoricalFeature):
            rows = [field_rows(field, e.get("ids", []), catalogue) for e in entries]
            if any(len(r) != 1 for r in rows):
                raise ConversionError(f"request: categorical field '{field.name}' takes exactly one id")
            batch[field.name] = torch.tensor([r[0] for r in rows], dtype=torch.long)
        elif isinstance(field, HistoryFeature):
            rows = [field_rows(field, e.get("ids", []), catalogue) for e in entries]
            length = max(1, max(len(r) for r in rows))
            batch[field.name] = torch.tensor([[field.padding_id] * (length - len(r)) + r for r in rows],
                                             dtype=torch.long)
        else:
            batch[field.name] = torch.tensor([e.get("values", []) for e in entries],
                                             dtype=torch.float32).reshape(len(entries), field.width)
    return batch


class MIND(nn.Module):
    """MIND with its settings (a variant of VARIANTS plus overrides). Keys (the `reclite` layout):

      embeddings.<table>.weight   [rows, width]: the item table, side history tables (width hidden), user tables
      bilinear.weight             [hidden, hidden]   ê = W e
      initial_logits              [interests, max_length] (a buffer: frozen, never trained)
      head.<i>.weight / .bias     [out, in] / [out]  (the bias may be absent: head_bias False)
    """

    architecture = "mind"

    def __init__(self, item_rows: int, hidden_size: int, interests: int = 4, max_length: int = 20,
                 variant: str = "reclite", side_histories: Sequence[Dict[str, Any]] = (),
                 user_fields: Sequence = (), head_widths: Optional[Sequence[int]] = None,
                 head_activation: str = "relu", head_last_activation: str = "none", head_bias: bool = True,
                 history_field: str = "history", item_table: str = "item", padding_row: int = 0,
                 initial_logits_seed: int = 0, initial_logits_std: float = 1.0, **settings):
        super().__init__()
        from reclite_convert.spec import SpecDefaults, parse_field

        self.variant = variant
        self.settings = variant_settings(variant, **settings)
        if interests < 1 or max_length < 1 or hidden_size < 1:
            raise ConversionError(f"MIND: interests ({interests}), max_length ({max_length}) and hidden size "
                                  f"({hidden_size}) must be positive")
        self.item_rows, self.hidden_size = int(item_rows), int(hidden_size)
        self.interests, self.max_length = int(interests), int(max_length)
        self.padding_row, self.item_table_name, self.history_field = int(padding_row), item_table, history_field
        self.initial_logits_seed, self.initial_logits_std = int(initial_logits_seed), float(initial_logits_std)
        self.side_histories = [dict(s) for s in side_histories]
        self.user_fields = [f if not isinstance(f, dict) else parse_field("user_fields", f, SpecDefaults())
                            for f in user_fields]
        # history fields: the item history first, then the side histories (each over its own table)
        self.history_fields = [HistoryFeature(history_field, self.max_length, item_table,
                                              padding_id=self.padding_row, ids="item")]
        categorical = [CategoricalFeature(item_table, self.item_rows, self.hidden_size, ids="item")]
        for side in self.side_histories:
            table = side.get("table", side["name"])
            categorical.append(CategoricalFeature(table, int(side["vocabulary_size"]), self.hidden_size))
            self.history_fields.append(HistoryFeature(side["name"], self.max_length, table,
                                                      padding_id=int(side.get("padding_row", 0)),
                                                      ids="vocabulary"))
        if self.settings.behaviour_combine == "item_only" and self.side_histories:
            raise ConversionError("MIND: side histories need behaviour_combine sum or mean (item_only uses the "
                                  "item history alone)")
        categorical += [f for f in self.user_fields if isinstance(f, CategoricalFeature)]
        try:
            self.tables = collect_tables(categorical, [f for f in self.user_fields if isinstance(f, HistoryFeature)])
        except ValueError as error:
            raise ConversionError(f"MIND: {error}") from None
        self.embeddings = make_embeddings(self.tables)
        self.bilinear = nn.Linear(self.hidden_size, self.hidden_size, bias=False)
        self.register_buffer("initial_logits", self.draw_initial_logits())
        width = sum(f.width if isinstance(f, DenseFeature) else self.tables[f.table].embedding_dim
                    for f in self.user_fields) + self.hidden_size
        self.head_widths = [int(w) for w in (head_widths if head_widths is not None else [self.hidden_size])]
        self.head_activation = canonical_activation(head_activation)
        self.head_last_activation = canonical_activation(head_last_activation)
        self.head_bias = bool(head_bias)
        self.head = nn.ModuleList()
        for out_width in self.head_widths:
            self.head.append(nn.Linear(width, out_width, bias=self.head_bias))
            width = out_width
        self.output_width = width
        if self.output_width != self.hidden_size:
            raise ConversionError(f"MIND: the user head ends at width {self.output_width}, the item vectors have "
                                  f"{self.hidden_size}")

    # --- construction helpers ---------------------------------------------------------------------------------
    def draw_initial_logits(self) -> torch.Tensor:
        shape = (self.interests, self.max_length)
        generator = torch.Generator().manual_seed(self.initial_logits_seed)
        kind = self.settings.initial_logits
        if kind == "zeros":
            return torch.zeros(shape)
        values = torch.randn(shape, generator=generator)
        if kind == "truncated_normal":  # TF TruncatedNormal: redraw beyond two standard deviations
            while bool((values.abs() > 2).any()):
                values = torch.where(values.abs() > 2, torch.randn(shape, generator=generator), values)
        return values * self.initial_logits_std

    def layer_activations(self) -> List[str]:
        count = len(self.head_widths)
        return [self.head_activation] * (count - 1) + [self.head_last_activation]

    def options(self) -> Dict[str, Any]:
        """Constructor arguments as JSON values: MIND(**options()) rebuilds this module (weights aside)."""
        from reclite_convert.spec import field_to_spec

        settings = {name: getattr(self.settings, name) for name in SETTING_NAMES}
        return dict(settings, item_rows=self.item_rows, hidden_size=self.hidden_size, interests=self.interests,
                    max_length=self.max_length, variant=self.variant, side_histories=self.side_histories,
                    user_fields=[field_to_spec(f) for f in self.user_fields], head_widths=self.head_widths,
                    head_activation=self.head_activation, head_last_activation=self.head_last_activation,
                    head_bias=self.head_bias, history_field=self.history_field, item_table=self.item_table_name,
                    padding_row=self.padding_row, initial_logits_seed=self.initial_logits_seed,
                    initial_logits_std=self.initial_logits_std)

    # --- batched forward (training and reference share it; samples never interact) ------------------------------
    def windows(self, histories: Sequence[Dict[str, Sequence[int]]]) -> Tuple[Dict[str, torch.Tensor],
                                                                            torch.Tensor, torch.Tensor]:
        """(rows per history field [B, T], valid slots [B, T], n [B]) from table rows, most recent last."""
        side = self.settings.padding_side
        rows = {f.name: [] for f in self.history_fields}
        valid, counts = [], []
        for history in histories:
            item_rows = history.get(self.history_field, [])
            for field in self.history_fields:
                values = history.get(field.name, [])
                if len(values) != len(item_rows):
                    raise ConversionError(f"request: history field '{field.name}' has {len(values)} ids, the item "
                                          f"history '{self.history_field}' has {len(item_rows)}")
                window, n = history_window(values, self.max_length, field.padding_id, side)
                rows[field.name].append(window)
            counts.append(n)
            valid.append(valid_slots(n, self.max_length, side))
        return ({name: torch.tensor(r, dtype=torch.long).reshape(len(histories), self.max_length)
                 for name, r in rows.items()},
                torch.tensor(valid, dtype=torch.bool).reshape(len(histories), self.max_length),
                torch.tensor(counts, dtype=torch.long))

    def behaviours(self, rows: Dict[str, torch.Tensor]) -> torch.Tensor:
        """e_t [B, T, hidden] combined as behaviour_combine says."""
        combine = self.settings.behaviour_combine
        fields = self.history_fields[:1] if combine == "item_only" else self.history_fields
        parts = [self.embeddings[f.table](rows[f.name]) for f in fields]
        total = parts[0]
        for part in parts[1:]:
            total = total + part
        return total / float(len(parts)) if combine == "mean" and len(parts) > 1 else total

    def active_counts(self, counts: torch.Tensor) -> torch.Tensor:
        if not self.settings.dynamic_interests:
            return torch.full_like(counts, self.interests)
        return torch.tensor([active_interest_count(int(n), self.interests) for n in counts], dtype=torch.long)

    def route(self, mapped: torch.Tensor, valid: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
        """Interest capsules [B, K, hidden] from ê [B, T, hidden]; each sample starts from its own copy of the
        frozen initial logits."""
        s = self.settings
        batch = mapped.shape[0]
        logits = self.initial_logits.unsqueeze(0).expand(batch, -1, -1).clone()   # [B, K, T]
        pads = (~valid).unsqueeze(1)                                                 # [B, 1, T]
        inactive = (torch.arange(self.interests).unsqueeze(0) >= active.unsqueeze(1)).unsqueeze(2)  # [B, K, 1]
        capsules = None
        for iteration in range(s.routing_iterations):
            masked = logits
            if s.dynamic_interests:
                masked = masked.masked_fill(inactive, s.inactive_logit)
            if s.routing_padding == "logit_before_softmax":
                masked = masked.masked_fill(pads, s.pad_logit)
            weights = torch.softmax(masked, dim=2 if s.routing_softmax == "over_behaviours" else 1)
            if s.routing_padding == "zero_after_softmax":
                weights = weights.masked_fill(pads, 0.0)
            capsules = squash(torch.matmul(weights, mapped), s.squash_epsilon)       # [B, K, hidden]
            if iteration + 1 < s.routing_iterations or s.update_logits_on_last_iteration:
                logits = logits + torch.matmul(capsules, mapped.transpose(1, 2))
        return capsules

    def interest_vectors(self, histories: Sequence[Dict[str, Sequence[int]]],
                         user_batch: Dict[str, torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        """(h [B, K, D] with inactive interests zeroed as configured, K' [B])."""
        rows, valid, counts = self.windows(histories)
        active = self.active_counts(counts)
        mapped = self.bilinear(self.behaviours(rows))
        capsules = self.route(mapped, valid, active)
        batch = capsules.shape[0]
        x = capsules
        if self.user_fields:
            other = tower_input(self.user_fields, user_batch, self.embeddings)        # [B, user width]
            x = torch.cat([other.unsqueeze(1).expand(batch, self.interests, other.shape[1]), capsules], dim=2)
        for layer, activation in zip(self.head, self.layer_activations()):
            x = apply_activation(layer(x), activation)
        if self.settings.head_l2_normalize:
            x = F.normalize(x, dim=-1, eps=NORMALIZE_EPSILON)
        if self.settings.dynamic_interests and self.settings.mask_inactive_interests:
            keep = torch.arange(self.interests).unsqueeze(0) < active.unsqueeze(1)
            x = x * keep.unsqueeze(2).to(x.dtype)
        return x, active

    def item_table(self) -> torch.Tensor:
        """Item vectors of every item row [item_rows, D] (the padding row included: it is no catalogue entry)."""
        table = self.embeddings[self.item_table_name].weight
        return F.normalize(table, dim=1, eps=NORMALIZE_EPSILON) if self.settings.normalize_items else table

    def label_aware(self, interests: torch.Tensor, active: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """[B, D]: label-aware attention of interests [B, K, D] for target item vectors [B, D]."""
        s = self.settings
        dots = (interests * targets.unsqueeze(1)).sum(dim=-1)                                    # [B, K]
        inactive = torch.arange(self.interests).unsqueeze(0) >= active.unsqueeze(1)
        if s.label_attention_power >= 100:
            # the p -> infinity limit: the interest with the largest inner product (pow(dot, 100) would underflow
            # to 0 in float32 for |dot| < 0.41 and tie); first maximum, so ties go to the lower interest
            if s.dynamic_interests:
                dots = dots.masked_fill(inactive, s.pad_logit)
            chosen = torch.argmax(dots, dim=1)
            return interests[torch.arange(interests.shape[0]), chosen]
        weights = torch.pow(dots, s.label_attention_power)
        if s.dynamic_interests:
            weights = weights.masked_fill(inactive, s.pad_logit)
        return (torch.softmax(weights, dim=1).unsqueeze(2) * interests).sum(dim=1)

    # --- one request, as the engine serves it -----------------------------------------------------------------
    def request_histories(self, request: Dict, catalogue=None) -> Dict[str, List[int]]:
        histories = {}
        for field in self.history_fields:
            if field.name not in request:
                raise ConversionError(f"request: no value for history field '{field.name}'")
            histories[field.name] = field_rows(field, request[field.name].get("ids", []), catalogue)
        return histories

    def encode(self, requests: Sequence[Dict], catalogue=None) -> Tuple[torch.Tensor, torch.Tensor]:
        """(h [B, K, D], K' [B]) of requests {field: {"ids": [...]} | {"values": [...]}} (external item ids
        through the catalogue). Each request is computed on its own: results do not depend on the batch."""
        self.eval()
        with torch.inference_mode():
            parts = [self.interest_vectors([self.request_histories(r, catalogue)],
                                           user_field_batch(self.user_fields, [r], catalogue)) for r in requests]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def user_vectors(self, request: Dict, catalogue=None) -> np.ndarray:
        """[K, D] float32: the interests of one request (inactive ones zeroed when configured)."""
        return self.encode([request], catalogue)[0][0].float().numpy().copy()

    def active_interests(self, request: Dict, catalogue=None) -> int:
        return int(self.encode([request], catalogue)[1][0])

    def label_aware_vector(self, request: Dict, target_row: int, catalogue=None) -> np.ndarray:
        """[D]: the user vector for a known candidate (an item row)."""
        interests, active = self.encode([request], catalogue)
        with torch.inference_mode():
            target = self.item_table()[int(target_row)].unsqueeze(0)
            return self.label_aware(interests, active, target)[0].float().numpy().copy()


def build_from_weights(options: Dict[str, Any], weights: Dict[str, np.ndarray], source: str) -> MIND:
    """Our MIND from its state_dict (the `reclite` layout) and its options (MIND.options(), overrides applied)."""
    from reclite_convert.layouts.common import fill_module

    try:
        module = MIND(**options)
    except TypeError as error:
        raise ConversionError(f"MIND options: {error}") from None
    fill_module(module, weights, {}, source)
    return module


# --- brief training --------------------------------------------------------------------------------------------
def synthetic_log(item_rows: int, categories: Sequence[int], users: int = 200, length: int = 40, seed: int = 0,
                  padding_row: int = 0) -> List[List[int]]:
    """Multi-interest sequences: each user alternates between two or three favourite categories."""
    rng = np.random.default_rng(seed)
    categories = np.asarray(categories)
    rows = np.array([r for r in range(item_rows) if r != padding_row])
    by_category = {c: rows[categories[rows] == c] for c in np.unique(categories[rows])}
    keys = sorted(by_category)
    log = []
    for _ in range(users):
        favourites = rng.choice(keys, size=int(rng.integers(2, 4)), replace=False)
        sequence = []
        for _ in range(length):
            pool = by_category[favourites[int(rng.integers(0, len(favourites)))]] if rng.random() < 0.85 else rows
            sequence.append(int(rng.choice(pool)))
        log.append(sequence)
    return log


def train_sampled_softmax(module: nn.Module, log: Sequence[Sequence[int]], make_batch, steps: int = 200,
                          batch_size: int = 64, negatives: int = 64, learning_rate: float = 0.01, seed: int = 0,
                          padding_row: int = 0) -> None:
    """Sampled softmax (target plus `negatives` shared uniform negatives) over next items of the log.

    make_batch(module, prefixes) -> the module's user vectors for the training target [B, D] given item-row
    prefixes (MIND: label-aware attention; SDM: its user vector); module.item_table() gives the item vectors.
    """
    rng = np.random.default_rng(seed)
    optimizer = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=learning_rate)
    item_rows = module.item_table().shape[0]
    module.train()
    for _ in range(steps):
        prefixes, targets = [], []
        for user in rng.integers(0, len(log), size=batch_size):
            sequence = log[int(user)]
            cut = int(rng.integers(1, len(sequence)))
            prefixes.append(list(sequence[:cut]))
            targets.append(int(sequence[cut]))
        sampled = rng.integers(0, item_rows, size=negatives)
        sampled = sampled[sampled != padding_row]
        candidates = torch.tensor(np.concatenate([targets, sampled]), dtype=torch.long)
        vectors = make_batch(module, prefixes, torch.tensor(targets, dtype=torch.long))
        logits = vectors @ module.item_table()[candidates].T / 0.1
        loss = F.cross_entropy(logits, torch.arange(len(targets)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    module.eval()


def mind_training_batch(categories: Optional[Sequence[int]] = None, user_values=None):
    """make_batch for train_sampled_softmax: histories (with side histories from `categories`, one per side
    field, indexed by item row) and user fields from user_values(prefix) -> request-like dict of rows."""

    def make_batch(module: MIND, prefixes, targets):
        histories, user_requests = [], []
        for prefix in prefixes:
            history = {module.history_field: prefix}
            for side in module.history_fields[1:]:
                history[side.name] = [int(categories[r]) for r in prefix]
            histories.append(history)
            user_requests.append(user_values(prefix) if user_values else {})
        user_batch = user_field_batch(module.user_fields, user_requests, None)
        interests, active = module.interest_vectors(histories, user_batch)
        return module.label_aware(interests, active, module.item_table()[targets])

    return make_batch


__all__ = ["MIND", "build_from_weights", "MindSettings", "VARIANTS", "active_interest_count", "squash", "variant_settings",
           "synthetic_log", "train_sampled_softmax", "mind_training_batch", "history_window", "valid_slots",
           "field_rows", "user_field_batch", "PAD_LOGIT", "INACTIVE_LOGIT"]
