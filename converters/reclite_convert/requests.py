"""Requests as the engine receives them, and the PyTorch outputs for them.

A request maps each user field name to {"ids": [...]} (categorical: one id; history: most recent last, any
length; ids='item' fields hold EXTERNAL item ids) or {"values": [...]} (dense). These helpers turn requests into
module batches, compute user and item vectors in float32 eval mode, and draw random requests for self-tests and
fixtures.
"""

from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from reclite_convert.catalogue import Catalogue
from reclite_convert.errors import ConversionError
from reclite_convert.modules.features import CategoricalFeature, HistoryFeature


def _to_rows(field, ids: Sequence[int], catalogue: Catalogue) -> List[int]:
    if field.ids == "item":
        return catalogue.rows_of(ids).tolist()
    return [int(i) for i in ids]


def request_batch(module, requests: Sequence[Dict], catalogue: Catalogue) -> Dict[str, torch.Tensor]:
    batch = {}
    for field in module.user_fields:
        try:
            entries = [request[field.name] for request in requests]
        except KeyError:
            raise ConversionError(f"request: no value for user field '{field.name}'") from None
        if isinstance(field, CategoricalFeature):
            rows = [_to_rows(field, entry["ids"], catalogue) for entry in entries]
            if any(len(r) != 1 for r in rows):
                raise ConversionError(f"request: categorical field '{field.name}' takes exactly one id")
            batch[field.name] = torch.tensor([r[0] for r in rows], dtype=torch.long)
        elif isinstance(field, HistoryFeature):
            rows = [_to_rows(field, entry["ids"], catalogue) for entry in entries]
            length = max(len(r) for r in rows)
            padded = [[field.padding_id] * (length - len(r)) + r for r in rows]
            batch[field.name] = torch.tensor(padded, dtype=torch.long).reshape(len(rows), length)
        else:
            batch[field.name] = torch.tensor([entry["values"] for entry in entries],
                                             dtype=torch.float32).reshape(len(entries), field.width)
    return batch


def user_vectors(module, requests: Sequence[Dict], catalogue: Catalogue) -> np.ndarray:
    module.eval()
    with torch.inference_mode():
        return module.user_vector(request_batch(module, requests, catalogue)).float().numpy().copy()


def item_vectors(module, catalogue: Catalogue, entries: Optional[np.ndarray] = None,
                 batch_size: int = 8192) -> np.ndarray:
    """Item vectors of catalogue entries (all by default), [entries, dim] float32."""
    module.eval()
    if entries is None:
        entries = np.arange(len(catalogue))
    parts = []
    with torch.inference_mode():
        for start in range(0, len(entries), batch_size):
            chunk = entries[start:start + batch_size]
            parts.append(module.item_vector(catalogue.item_batch(module.item_fields, chunk)).float().numpy())
    return np.ascontiguousarray(np.concatenate(parts, axis=0), dtype=np.float32)


def random_request(module, catalogue: Catalogue, rng: np.random.Generator,
                   history_length: Optional[int] = None) -> Dict[str, Dict[str, list]]:
    """One random request; history_length None draws a length in [1, max_length] per history field."""
    request = {}
    for field in module.user_fields:
        if isinstance(field, CategoricalFeature):
            if field.ids == "item":
                request[field.name] = {"ids": [int(rng.choice(catalogue.external_ids))]}
            else:
                request[field.name] = {"ids": [int(rng.integers(0, field.vocabulary_size))]}
        elif isinstance(field, HistoryFeature):
            if history_length is None:
                length = int(rng.integers(1, field.max_length + 1))
            elif field.ids == "item":
                length = history_length
            else:
                # the requested length is for the item history; side histories stay within their window so a
                # request truncates only item ids (the engine's stats count truncation over all fields)
                length = min(history_length, field.max_length)
            if field.ids == "item":
                ids = rng.choice(catalogue.external_ids, size=length).tolist()
            else:
                # never the padding id: which ids count as valid is then the same for every reader
                vocabulary = module.tables[field.table].vocabulary_size
                ids = [(int(v) + field.padding_id + 1) % vocabulary
                       for v in rng.integers(0, vocabulary - 1, size=length)]
            request[field.name] = {"ids": [int(i) for i in ids]}
        else:
            request[field.name] = {"values": [float(v) for v in rng.normal(size=field.width).astype(np.float32)]}
    return request


def history_fields(module) -> List[HistoryFeature]:
    return [f for f in module.user_fields if isinstance(f, HistoryFeature)]


def requests_with_history_lengths(module, catalogue: Catalogue, rng: np.random.Generator,
                                  lengths: Sequence[Optional[int]]) -> List[Dict]:
    """One request per length (None = random); a model without history gets random requests."""
    return [random_request(module, catalogue, rng, length) for length in lengths]


__all__ = ["request_batch", "user_vectors", "item_vectors", "random_request",
           "history_fields", "requests_with_history_lengths"]
