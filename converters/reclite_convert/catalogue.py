"""The item catalogue: which item rows a model can recommend, under which external ids (schema ItemCatalogue).

Entry i is item row item_rows[i] under external id external_ids[i]. The padding row of the item vocabulary is
not an item, so by default every other row is an entry, under its own row number as external id.
"""

from typing import Dict, Mapping, Optional, Sequence

import numpy as np

from reclite_convert.errors import ConversionError
from reclite_convert.modules.features import CategoricalFeature


class Catalogue:
    """Entries with their external ids, item rows and item-side feature values."""

    def __init__(self, vocabulary_size: int, external_ids: Optional[Sequence[int]] = None,
                 item_rows: Optional[Sequence[int]] = None, padding_row: Optional[int] = 0,
                 item_features: Optional[Mapping[str, Sequence[int]]] = None):
        if item_rows is None:
            item_rows = [row for row in range(vocabulary_size) if row != padding_row]
        rows = np.asarray(item_rows, dtype=np.int64).reshape(-1)
        if len(rows) == 0:
            raise ConversionError("catalogue: no entries")
        if rows.min() < 0 or rows.max() >= vocabulary_size:
            raise ConversionError(f"catalogue: item rows must lie in [0, {vocabulary_size}), found "
                                  f"{int(rows.min())}..{int(rows.max())}")
        if len(np.unique(rows)) != len(rows):
            raise ConversionError("catalogue: an item row appears in two entries")
        ids = rows.copy() if external_ids is None else np.asarray(external_ids, dtype=np.int64).reshape(-1)
        if len(ids) != len(rows):
            raise ConversionError(f"catalogue: {len(ids)} external ids for {len(rows)} item rows")
        order = np.argsort(ids, kind="stable")
        sorted_ids = ids[order]
        duplicates = sorted_ids[1:][sorted_ids[1:] == sorted_ids[:-1]]
        if len(duplicates):
            raise ConversionError(f"catalogue: external id {int(duplicates[0])} is given to more than one item "
                                  f"(external ids must be unique)")
        self.vocabulary_size = vocabulary_size
        self.padding_row = padding_row
        self.external_ids = ids
        self.item_rows = rows
        self.order_by_external_id = order.astype(np.int64)
        self.item_features = {name: np.asarray(values, dtype=np.int64).reshape(-1)
                              for name, values in (item_features or {}).items()}
        self._row_of_id = dict(zip(ids.tolist(), rows.tolist()))

    def __len__(self) -> int:
        return len(self.item_rows)

    def row_of(self, external_id: int) -> int:
        try:
            return self._row_of_id[int(external_id)]
        except KeyError:
            raise ConversionError(f"catalogue: no item has external id {external_id}") from None

    def rows_of(self, external_ids: Sequence[int]) -> np.ndarray:
        return np.asarray([self.row_of(i) for i in external_ids], dtype=np.int64)

    def feature_column(self, field: CategoricalFeature) -> np.ndarray:
        """Values of a vocabulary field for every entry, read from item_features[field] indexed by item row."""
        if field.name not in self.item_features:
            raise ConversionError(f"catalogue: the item tower reads field '{field.name}', so its value per item is "
                                  f"needed (item features: an array indexed by item row, key '{field.name}')")
        by_row = self.item_features[field.name]
        if len(by_row) != self.vocabulary_size:
            raise ConversionError(f"catalogue: item feature '{field.name}' has {len(by_row)} values, expected one "
                                  f"per item row ({self.vocabulary_size})")
        values = by_row[self.item_rows]
        if values.min() < 0 or values.max() >= field.vocabulary_size:
            raise ConversionError(f"catalogue: item feature '{field.name}' has values outside [0, "
                                  f"{field.vocabulary_size})")
        return values

    def feature_values(self, fields: Sequence[CategoricalFeature]) -> Optional[np.ndarray]:
        """[entries, F] int32 values of the item side's vocabulary fields in order; None when there are none."""
        vocabulary_fields = [f for f in fields if isinstance(f, CategoricalFeature) and f.ids == "vocabulary"]
        if not vocabulary_fields:
            return None
        return np.stack([self.feature_column(f) for f in vocabulary_fields], axis=1).astype(np.int32)

    def item_batch(self, fields: Sequence, entries: np.ndarray) -> Dict[str, "object"]:
        """Batch of the item side's fields for the given entry numbers (item field: the entry's own row)."""
        import torch

        batch = {}
        rows = self.item_rows[entries]
        for field in fields:
            if field.ids == "item":
                batch[field.name] = torch.from_numpy(rows)
            else:
                batch[field.name] = torch.from_numpy(self.feature_column(field)[entries])
        return batch


def load_item_ids(path: str, vocabulary_size: int, padding_row: Optional[int]):
    """(external ids, item rows) from --item-ids: .npy, 1-D (one id per non-padding row, in row order) or
    [entries, 2] (item row, external id)."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ConversionError(f"{path}: cannot read as a .npy array: {error}") from error
    if array.dtype.kind not in "iu":
        raise ConversionError(f"{path}: external ids must be integers, got {array.dtype}")
    if array.ndim == 2 and array.shape[1] == 2:
        return array[:, 1].astype(np.int64), array[:, 0].astype(np.int64)
    if array.ndim != 1:
        raise ConversionError(f"{path}: expected shape [entries] or [entries, 2], got {list(array.shape)}")
    rows = [row for row in range(vocabulary_size) if row != padding_row]
    if len(array) != len(rows):
        raise ConversionError(f"{path}: {len(array)} external ids, expected one per item row except the padding "
                              f"row ({len(rows)})")
    return array.astype(np.int64), np.asarray(rows, dtype=np.int64)
