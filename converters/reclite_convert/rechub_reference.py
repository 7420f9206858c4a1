"""A minimal stand-in for torch-rechub's DSSM and YoutubeDNN, for tests and fixtures.

It has torch-rechub's state_dict layout and forward maths (models.md §4-§5), re-written here so the
torch_rechub layout can be checked without the library: EmbeddingLayer concatenates sparse and sequence
features in list order, then dense values; a SequenceFeature without padding_idx averages its whole padded
window (AveragePooling: sum / (T + 1e-16)); MLP layers are Linear -> BatchNorm1d -> ReLU -> Dropout, the last
included; towers end in F.normalize; YoutubeDNN items are F.normalize(E[item]).

Fields are given as spec dicts (docs/converter.md); 'embedding_name' plays torch-rechub's shared_with.
"""

from typing import Dict, List, Sequence

import torch
import torch.nn.functional as F
from torch import nn


class RechubMLP(nn.Module):
    def __init__(self, input_width: int, widths: Sequence[int], dropout: float = 0.0):
        super().__init__()
        layers: List[nn.Module] = []
        for width in widths:
            layers += [nn.Linear(input_width, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(p=dropout)]
            input_width = width
        self.mlp = nn.Sequential(*layers)

    def forward(self, x):
        return self.mlp(x)


class RechubEmbedding(nn.Module):
    def __init__(self, fields: Sequence[Dict]):
        super().__init__()
        self.embed_dict = nn.ModuleDict()
        for field in fields:
            if field.get("kind", "categorical") == "categorical":
                table = field.get("embedding_name") or field["name"]
                if table not in self.embed_dict:
                    self.embed_dict[table] = nn.Embedding(field["vocabulary_size"], field["embedding_dim"])

    def forward(self, batch: Dict[str, torch.Tensor], fields: Sequence[Dict]) -> torch.Tensor:
        sparse, dense = [], []
        for field in fields:
            kind = field.get("kind", "categorical")
            if kind == "categorical":
                table = field.get("embedding_name") or field["name"]
                sparse.append(self.embed_dict[table](batch[field["name"]].long()))
            elif kind == "history":
                rows = self.embed_dict[field["embedding_name"]](batch[field["name"]].long())  # [B, T, D]
                mask = torch.ones(rows.shape[0], 1, rows.shape[1])  # no padding_idx: every position counts
                summed = torch.bmm(mask, rows).squeeze(1)
                sparse.append(summed / (mask.sum(dim=-1) + 1e-16))
            else:
                dense.append(batch[field["name"]].float().reshape(rows_count(batch), -1))
        return torch.cat(sparse + dense, dim=1)


def rows_count(batch: Dict[str, torch.Tensor]) -> int:
    return next(iter(batch.values())).shape[0]


def _input_width(fields: Sequence[Dict], tables: nn.ModuleDict) -> int:
    width = 0
    for field in fields:
        kind = field.get("kind", "categorical")
        if kind == "dense":
            width += field["width"]
        else:
            width += tables[field.get("embedding_name") or field["name"]].embedding_dim
    return width


class RechubDSSM(nn.Module):
    def __init__(self, user_fields: Sequence[Dict], item_fields: Sequence[Dict], user_widths: Sequence[int],
                 item_widths: Sequence[int]):
        super().__init__()
        self.user_fields, self.item_fields = list(user_fields), list(item_fields)
        self.embedding = RechubEmbedding(self.user_fields + self.item_fields)
        self.user_mlp = RechubMLP(_input_width(self.user_fields, self.embedding.embed_dict), user_widths)
        self.item_mlp = RechubMLP(_input_width(self.item_fields, self.embedding.embed_dict), item_widths)

    def user_tower(self, batch):
        return F.normalize(self.user_mlp(self.embedding(batch, self.user_fields)), p=2, dim=1)

    def item_tower(self, batch):
        return F.normalize(self.item_mlp(self.embedding(batch, self.item_fields)), p=2, dim=1)


class RechubYoutubeDNN(nn.Module):
    def __init__(self, user_fields: Sequence[Dict], item_field: Dict, user_widths: Sequence[int]):
        super().__init__()
        self.user_fields, self.item_field = list(user_fields), item_field
        self.embedding = RechubEmbedding(self.user_fields + [item_field])
        self.user_mlp = RechubMLP(_input_width(self.user_fields, self.embedding.embed_dict), user_widths)

    def user_tower(self, batch):
        return F.normalize(self.user_mlp(self.embedding(batch, self.user_fields)), p=2, dim=1)

    def item_tower(self, batch):
        table = self.item_field.get("embedding_name") or self.item_field["name"]
        return F.normalize(self.embedding.embed_dict[table](batch[self.item_field["name"]].long()), p=2, dim=1)


def randomize(module: nn.Module, generator: torch.Generator) -> None:
    """Weights and BatchNorm statistics far from their defaults, so folding and pad rows matter."""
    with torch.no_grad():
        for sub in module.modules():
            if isinstance(sub, nn.Embedding):
                sub.weight.normal_(0.0, 0.1, generator=generator)
            elif isinstance(sub, nn.BatchNorm1d):
                sub.weight.uniform_(0.5, 1.5, generator=generator)
                sub.bias.normal_(0.0, 0.2, generator=generator)
                sub.running_mean.normal_(0.0, 0.3, generator=generator)
                sub.running_var.uniform_(0.3, 2.0, generator=generator)
                sub.num_batches_tracked.fill_(100)
    module.eval()
