"""Feature spec of a tower: which fields it reads, in which order, and which embedding table each one uses.

Field order is the order of the tower input (concatenation). Tables are shared by `embedding_name`: a history
of items uses the table of the item-id field. Words match schemas/model.fbs (InputField).
"""

from dataclasses import dataclass
from typing import Optional

ID_SPACES = ("vocabulary", "item")
POOLINGS = ("sum", "mean", "mean_over_window")


@dataclass
class CategoricalFeature:
    """One id per request: contributes row E[id] of its table."""

    name: str
    vocabulary_size: int
    embedding_dim: int
    embedding_name: Optional[str] = None
    ids: str = "vocabulary"

    @property
    def table(self) -> str:
        return self.embedding_name or self.name

    def __post_init__(self):
        if self.ids not in ID_SPACES:
            raise ValueError(f"field '{self.name}': ids must be one of {ID_SPACES}, got '{self.ids}'")
        if self.vocabulary_size <= 0 or self.embedding_dim <= 0:
            raise ValueError(f"field '{self.name}': vocabulary_size and embedding_dim must be positive")


@dataclass
class HistoryFeature:
    """A list of ids, most recent last; the last `max_length` are pooled over the shared table `embedding_name`."""

    name: str
    max_length: int
    embedding_name: str
    pooling: str = "mean"
    padding_id: int = 0
    mean_epsilon: float = 0.0
    ids: str = "item"

    @property
    def table(self) -> str:
        return self.embedding_name

    def __post_init__(self):
        if self.ids not in ID_SPACES:
            raise ValueError(f"field '{self.name}': ids must be one of {ID_SPACES}, got '{self.ids}'")
        if self.pooling not in POOLINGS:
            raise ValueError(f"field '{self.name}': pooling must be one of {POOLINGS}, got '{self.pooling}'")
        if self.max_length <= 0:
            raise ValueError(f"field '{self.name}': max_length must be positive")


@dataclass
class DenseFeature:
    """`width` float values copied into the tower input."""

    name: str
    width: int

    def __post_init__(self):
        if self.width <= 0:
            raise ValueError(f"field '{self.name}': width must be positive")
