"""Two-tower reference modules: DSSM, YouTubeDNN and the FM two-tower decomposition.

These are the ground truth for the C++ engine, so each step is the operation the engine performs in float32
(schemas/model.fbs; /work/shared/reference/models.md §4-§6):
  tower input = concatenation over the tower's fields in order
    categorical -> E[id]
    history     -> pooled rows of the last max_length ids (sum, mean = sum / (n + mean_epsilon) with n = 0 giving
                   zeros, mean_over_window = sum over the window padded with E[padding_id] / max_length)
    dense       -> the values
  then Linear (+ BatchNorm1d, folded at conversion) + activation per layer, then L2 normalisation
  (F.normalize, eps 1e-12), then the user vector is divided by the temperature.

Batches are dicts field name -> tensor: categorical [B] int64 rows, history [B, L] int64 rows left-padded with
padding_id (most recent last; any L), dense [B, width] float32. Item-id values are table rows here; external
item ids exist only in the model file's catalogue.
"""

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from reclite_convert.modules.features import CategoricalFeature, DenseFeature, HistoryFeature

ACTIVATIONS = ("none", "relu", "tanh", "sigmoid", "gelu_erf")
_ACTIVATION_ALIASES = {"gelu": "gelu_erf", "linear": "none", "identity": "none"}
NORMALIZE_EPSILON = 1e-12  # F.normalize's default, and the engine's
EMBEDDING_INIT_STD = 0.1   # keeps float32 magnitudes modest so 1e-5 absolute parity is meaningful


def canonical_activation(name: str) -> str:
    name = _ACTIVATION_ALIASES.get(name, name)
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation '{name}', expected one of {ACTIVATIONS} (or gelu)")
    return name


def apply_activation(x: torch.Tensor, name: str) -> torch.Tensor:
    if name == "relu":
        return torch.relu(x)
    if name == "tanh":
        return torch.tanh(x)
    if name == "sigmoid":
        return torch.sigmoid(x)
    if name == "gelu_erf":
        return F.gelu(x)  # the exact (erf) form, PyTorch's default
    return x


@dataclass
class TowerOptions:
    """Dense layers of a tower. `activations` / a list `batch_norm` give per-layer values and win over the rest."""

    widths: Sequence[int] = (64, 32)
    activation: str = "relu"
    last_activation: str = "none"
    activations: Optional[Sequence[str]] = None
    batch_norm: Union[bool, Sequence[bool]] = False
    batch_norm_eps: float = 1e-5

    def layer_activations(self) -> List[str]:
        count = len(self.widths)
        if self.activations is not None:
            if len(self.activations) != count:
                raise ValueError(f"activations has {len(self.activations)} entries for {count} layers")
            return [canonical_activation(a) for a in self.activations]
        return [canonical_activation(self.activation)] * max(count - 1, 0) + \
            ([canonical_activation(self.last_activation)] if count else [])

    def layer_batch_norm(self) -> List[bool]:
        count = len(self.widths)
        if isinstance(self.batch_norm, bool):
            return [self.batch_norm] * count
        if len(self.batch_norm) != count:
            raise ValueError(f"batch_norm has {len(self.batch_norm)} entries for {count} layers")
        return [bool(b) for b in self.batch_norm]


class DenseBlock(nn.Module):
    """y = act(BN(W x + b)); BatchNorm is optional and evaluated with running statistics in eval mode."""

    def __init__(self, in_width: int, out_width: int, activation: str, batch_norm: bool, batch_norm_eps: float):
        super().__init__()
        self.linear = nn.Linear(in_width, out_width)
        self.batch_norm = nn.BatchNorm1d(out_width, eps=batch_norm_eps) if batch_norm else None
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.linear(x)
        if self.batch_norm is not None:
            x = self.batch_norm(x)
        return apply_activation(x, self.activation)


def field_width(field, tables: Dict[str, "TableShape"]) -> int:
    if isinstance(field, DenseFeature):
        return field.width
    return tables[field.table].embedding_dim


@dataclass
class TableShape:
    vocabulary_size: int
    embedding_dim: int


def collect_tables(categorical_fields: Sequence, history_fields: Sequence) -> Dict[str, TableShape]:
    """Tables named by categorical fields (which fix their shapes); histories must name one of them."""
    tables: Dict[str, TableShape] = {}
    for field in categorical_fields:
        if "." in field.table:
            raise ValueError(f"field '{field.name}': table name '{field.table}' may not contain '.'")
        shape = TableShape(field.vocabulary_size, field.embedding_dim)
        known = tables.setdefault(field.table, shape)
        if known != shape:
            raise ValueError(f"field '{field.name}': table '{field.table}' is [{shape.vocabulary_size}, "
                             f"{shape.embedding_dim}] here but [{known.vocabulary_size}, {known.embedding_dim}] "
                             f"in another field")
    for field in history_fields:
        if field.table not in tables:
            raise ValueError(f"history field '{field.name}': embedding_name '{field.table}' is not the table of "
                             f"any categorical field")
        if not 0 <= field.padding_id < tables[field.table].vocabulary_size:
            raise ValueError(f"history field '{field.name}': padding_id {field.padding_id} is outside the table")
    return tables


def make_embeddings(tables: Dict[str, TableShape]) -> nn.ModuleDict:
    embeddings = nn.ModuleDict()
    for name, shape in tables.items():
        table = nn.Embedding(shape.vocabulary_size, shape.embedding_dim)
        nn.init.normal_(table.weight, std=EMBEDDING_INIT_STD)
        embeddings[name] = table
    return embeddings


def window(ids: torch.Tensor, max_length: int, padding_id: int) -> torch.Tensor:
    """The last max_length ids of each row, left-padded with padding_id to exactly max_length columns."""
    ids = ids.long()
    if ids.dim() == 1:
        ids = ids.unsqueeze(0)
    if ids.shape[1] >= max_length:
        return ids[:, ids.shape[1] - max_length:]
    pad = torch.full((ids.shape[0], max_length - ids.shape[1]), padding_id, dtype=torch.long, device=ids.device)
    return torch.cat([pad, ids], dim=1)


def pool_history(field: HistoryFeature, ids: torch.Tensor, table: nn.Embedding) -> torch.Tensor:
    ids = window(ids, field.max_length, field.padding_id)
    rows = table(ids)  # [B, max_length, D]
    if field.pooling == "mean_over_window":
        return rows.sum(dim=1) / float(field.max_length)
    valid = (ids != field.padding_id).to(rows.dtype)
    total = (rows * valid.unsqueeze(-1)).sum(dim=1)  # masked rows are exact zeros: the sum is over valid rows
    if field.pooling == "sum":
        return total
    count = valid.sum(dim=1, keepdim=True)
    # sum then divide, as the engine does; an empty history pools to zeros even when mean_epsilon is 0
    return torch.where(count > 0, total / (count + field.mean_epsilon), torch.zeros_like(total))


def tower_input(fields: Sequence, batch: Dict[str, torch.Tensor], embeddings: nn.ModuleDict) -> torch.Tensor:
    parts = []
    for field in fields:
        if field.name not in batch:
            raise KeyError(f"batch has no value for field '{field.name}'")
        value = batch[field.name]
        if isinstance(field, CategoricalFeature):
            parts.append(embeddings[field.table](value.long().reshape(-1)))
        elif isinstance(field, HistoryFeature):
            parts.append(pool_history(field, value, embeddings[field.table]))
        else:
            parts.append(value.float().reshape(-1, field.width))
    return torch.cat(parts, dim=1)


class Tower(nn.Module):
    """Fields -> concatenation -> dense blocks -> optional L2 normalisation -> division by the temperature.

    The embedding tables belong to the model (they are shared), so they are passed to forward.
    """

    def __init__(self, fields: Sequence, tables: Dict[str, TableShape], options: TowerOptions,
                 l2_normalize: bool, temperature: float = 1.0):
        super().__init__()
        self.fields = list(fields)
        self.options = options
        self.l2_normalize = l2_normalize
        self.temperature = float(temperature)
        width = sum(field_width(f, tables) for f in self.fields)
        self.input_width = width
        self.layers = nn.ModuleList()
        for out_width, activation, batch_norm in zip(options.widths, options.layer_activations(),
                                                     options.layer_batch_norm()):
            self.layers.append(DenseBlock(width, int(out_width), activation, batch_norm, options.batch_norm_eps))
            width = int(out_width)
        self.output_width = width

    def forward(self, batch: Dict[str, torch.Tensor], embeddings: nn.ModuleDict) -> torch.Tensor:
        x = tower_input(self.fields, batch, embeddings)
        for layer in self.layers:
            x = layer(x)
        if self.l2_normalize:
            x = F.normalize(x, dim=1, eps=NORMALIZE_EPSILON)
        if self.temperature != 1.0:
            x = x / self.temperature
        return x


def _single_item_field(fields: Sequence, model: str) -> CategoricalFeature:
    item_fields = [f for f in fields if isinstance(f, CategoricalFeature) and f.ids == "item"]
    if len(item_fields) != 1:
        raise ValueError(f"{model}: the item side needs exactly one categorical field with ids='item', "
                         f"found {len(item_fields)}")
    return item_fields[0]


class DSSM(nn.Module):
    """User tower and item tower; score = <user, item>. Item fields are categorical, one of them the item id."""

    architecture = "dssm"

    def __init__(self, user_fields: Sequence, item_fields: Sequence, user_tower: TowerOptions = None,
                 item_tower: TowerOptions = None, l2_normalize: bool = True, temperature: float = 1.0):
        super().__init__()
        user_tower = user_tower or TowerOptions()
        item_tower = item_tower or TowerOptions()
        for field in item_fields:
            if not isinstance(field, CategoricalFeature):
                raise ValueError(f"DSSM: item field '{field.name}' must be categorical")
        self.item_field = _single_item_field(item_fields, "DSSM")
        categorical = [f for f in list(user_fields) + list(item_fields) if isinstance(f, CategoricalFeature)]
        histories = [f for f in user_fields if isinstance(f, HistoryFeature)]
        self.tables = collect_tables(categorical, histories)
        self.embeddings = make_embeddings(self.tables)
        self.user_tower = Tower(user_fields, self.tables, user_tower, l2_normalize, temperature)
        self.item_tower = Tower(item_fields, self.tables, item_tower, l2_normalize, 1.0)
        if self.user_tower.output_width != self.item_tower.output_width:
            raise ValueError(f"DSSM: user tower width {self.user_tower.output_width} != item tower width "
                             f"{self.item_tower.output_width}")

    @property
    def user_fields(self):
        return self.user_tower.fields

    @property
    def item_fields(self):
        return self.item_tower.fields

    def user_vector(self, batch):
        return self.user_tower(batch, self.embeddings)

    def item_vector(self, batch):
        return self.item_tower(batch, self.embeddings)

    def score(self, user_batch, item_batch):
        return (self.user_vector(user_batch) * self.item_vector(item_batch)).sum(dim=-1)


class YoutubeDNN(nn.Module):
    """User tower over user fields and the item history; item vectors are rows of the item table."""

    architecture = "youtube_dnn"

    def __init__(self, user_fields: Sequence, item_feature: CategoricalFeature, user_tower: TowerOptions = None,
                 l2_normalize: bool = True, temperature: float = 1.0, normalize_items: bool = True):
        super().__init__()
        user_tower = user_tower or TowerOptions()
        if not isinstance(item_feature, CategoricalFeature) or item_feature.ids != "item":
            raise ValueError("YoutubeDNN: item_feature must be a CategoricalFeature with ids='item'")
        self.item_field = item_feature
        categorical = [f for f in user_fields if isinstance(f, CategoricalFeature)] + [item_feature]
        histories = [f for f in user_fields if isinstance(f, HistoryFeature)]
        self.tables = collect_tables(categorical, histories)
        self.embeddings = make_embeddings(self.tables)
        self.user_tower = Tower(user_fields, self.tables, user_tower, l2_normalize, temperature)
        self.normalize_items = normalize_items
        if self.user_tower.output_width != item_feature.embedding_dim:
            raise ValueError(f"YoutubeDNN: the user tower's last width {self.user_tower.output_width} must equal "
                             f"the item embedding_dim {item_feature.embedding_dim}")

    @property
    def user_fields(self):
        return self.user_tower.fields

    @property
    def item_fields(self):
        return [self.item_field]

    def user_vector(self, batch):
        return self.user_tower(batch, self.embeddings)

    def item_vector(self, batch):
        rows = self.embeddings[self.item_field.table](batch[self.item_field.name].long().reshape(-1))
        if self.normalize_items:
            rows = F.normalize(rows, dim=1, eps=NORMALIZE_EPSILON)
        return rows

    def score(self, user_batch, item_batch):
        return (self.user_vector(user_batch) * self.item_vector(item_batch)).sum(dim=-1)


class FMTwoTower(nn.Module):
    """Factorisation machine split by field owner (fun-rec fm_recall; recall-and-metrics.md).

    user = [1 ; sum_u v_u], item = [sum_t w_t + 1/2 sum_f ((sum_t v_t,f)^2 - sum_t v_t,f^2) ; sum_t v_t], so
    <user, item> is the full FM score minus the terms that depend on the user alone. `score` is the full FM
    score (bias, first-order weights of every field, all pairwise interactions) for training with a logistic
    or BPR loss; only the item fields' first-order weights reach the model file.
    """

    architecture = "fm_two_tower"

    def __init__(self, user_fields: Sequence[CategoricalFeature], item_fields: Sequence[CategoricalFeature],
                 embedding_dim: int):
        super().__init__()
        for field in list(user_fields) + list(item_fields):
            if not isinstance(field, CategoricalFeature):
                raise ValueError(f"FMTwoTower: field '{field.name}' must be categorical")
            if field.embedding_dim != embedding_dim:
                raise ValueError(f"FMTwoTower: field '{field.name}' has embedding_dim {field.embedding_dim}, "
                                 f"the model uses {embedding_dim}")
        self.user_fields = list(user_fields)
        self.item_fields = list(item_fields)
        self.item_field = _single_item_field(item_fields, "FMTwoTower")
        self.embedding_dim = embedding_dim
        self.tables = collect_tables(self.user_fields + self.item_fields, [])
        self.embeddings = make_embeddings(self.tables)
        self.linear = nn.ModuleDict()
        for name, shape in self.tables.items():
            weights = nn.Embedding(shape.vocabulary_size, 1)
            nn.init.normal_(weights.weight, std=0.01)
            self.linear[name] = weights
        self.bias = nn.Parameter(torch.zeros(1))

    def _rows(self, fields, batch):
        return [self.embeddings[f.table](batch[f.name].long().reshape(-1)) for f in fields]

    def user_vector(self, batch):
        rows = self._rows(self.user_fields, batch)
        total = torch.stack(rows, dim=0).sum(dim=0)
        return torch.cat([torch.ones_like(total[:, :1]), total], dim=1)

    def item_vector(self, batch):
        rows = self._rows(self.item_fields, batch)
        total = torch.stack(rows, dim=0).sum(dim=0)
        squares = torch.stack([r * r for r in rows], dim=0).sum(dim=0)
        first_order = torch.stack([self.linear[f.table](batch[f.name].long().reshape(-1)).squeeze(-1)
                                   for f in self.item_fields], dim=0).sum(dim=0)
        pairwise = 0.5 * (total * total - squares).sum(dim=1)
        return torch.cat([(first_order + pairwise).unsqueeze(1), total], dim=1)

    def score(self, user_batch, item_batch):
        """Full FM score over the user and item fields: the training objective's logit."""
        fields = [(f, user_batch) for f in self.user_fields] + [(f, item_batch) for f in self.item_fields]
        rows = [self.embeddings[f.table](b[f.name].long().reshape(-1)) for f, b in fields]
        total = torch.stack(rows, dim=0).sum(dim=0)
        squares = torch.stack([r * r for r in rows], dim=0).sum(dim=0)
        first_order = torch.stack([self.linear[f.table](b[f.name].long().reshape(-1)).squeeze(-1)
                                   for f, b in fields], dim=0).sum(dim=0)
        return self.bias + first_order + 0.5 * (total * total - squares).sum(dim=1)
