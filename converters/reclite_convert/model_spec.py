"""Maps a reference module and its weights onto the schema (schemas/model.fbs) as plain Python objects.

The converter owns layout: BatchNorm is folded into the preceding Linear here (eval mode, running statistics),
weights stay in nn.Linear layout [out, in], everything becomes float32 / int32 / int64. writer.py turns the
resulting ModelDescription into FlatBuffers.

Tensor names:
  embedding.<table>                 [vocabulary_size, embedding_dim] f32
  linear.<table>                    [vocabulary_size] f32, FM first-order weights of an item field's table
  user_tower.<i>.weight / .bias     layer i of the user tower, [out, in] / [out] f32, BatchNorm folded
  item_tower.<i>.weight / .bias     likewise for the DSSM item tower
  catalogue.feature_values          [entries, F] i32 (schema ItemCatalogue.feature_values)
  catalogue.item_vectors            [entries, dim] f32
"""

import json
from dataclasses import dataclass, field as dataclass_field
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from reclite_convert import __version__
from reclite_convert.catalogue import Catalogue
from reclite_convert.errors import ConversionError
from reclite_convert.modules.features import CategoricalFeature, HistoryFeature
from reclite_convert.modules.two_tower import DSSM, FMTwoTower, Tower, YoutubeDNN
from reclite_convert.requests import item_vectors, requests_with_history_lengths, user_vectors
from reclite_convert.spec import module_to_spec

SELF_TEST_TOLERANCE = 1e-5  # our float32 promise (conventions §10, pytorch_parity)


@dataclass
class TensorData:
    name: str
    array: np.ndarray  # float32, int32 or int64, C-contiguous


@dataclass
class InputFieldSpec:
    name: str
    kind: str = "categorical"  # categorical | history | dense
    ids: str = "vocabulary"
    embedding: Optional[str] = None
    vocabulary_size: int = 0
    max_length: int = 0
    pooling: str = "mean"
    mean_epsilon: float = 0.0
    padding_row: int = 0
    width: int = 0


@dataclass
class DenseLayerSpec:
    weight: str
    bias: Optional[str]
    activation: str = "none"


@dataclass
class TowerSpec:
    inputs: List[InputFieldSpec]
    layers: List[DenseLayerSpec]
    l2_normalize: bool = False
    temperature: float = 1.0


@dataclass
class DssmConfigSpec:
    user_tower: TowerSpec
    item_tower: TowerSpec


@dataclass
class YoutubeDnnConfigSpec:
    user_tower: TowerSpec
    item_embedding: str
    normalize_items: bool = False


@dataclass
class FmFieldSpec:
    field: InputFieldSpec
    linear: Optional[str] = None


@dataclass
class FmTwoTowerConfigSpec:
    user_fields: List[FmFieldSpec]
    item_fields: List[FmFieldSpec]
    embedding_dim: int


@dataclass
class CatalogueSpec:
    external_ids: np.ndarray          # int64 [entries]
    item_rows: np.ndarray             # uint32 [entries]
    order_by_external_id: np.ndarray  # uint32 [entries]
    feature_values: Optional[str] = None
    item_vectors: Optional[str] = None


@dataclass
class FieldValueSpec:
    field: str
    ids: Optional[List[int]] = None
    values: Optional[List[float]] = None


@dataclass
class SelfTestSampleSpec:
    target: str  # user_vector | item_vector
    inputs: List[FieldValueSpec]
    expected: np.ndarray
    item_id: int = 0
    tolerance: float = SELF_TEST_TOLERANCE


@dataclass
class ModelDescription:
    architecture: str
    config: object
    tensors: List[TensorData]
    catalogue: Optional[CatalogueSpec] = None
    self_test: List[SelfTestSampleSpec] = dataclass_field(default_factory=list)
    metadata: List[Tuple[str, str]] = dataclass_field(default_factory=list)
    producer: str = f"reclite_convert {__version__}"


def fold_batch_norm(linear: torch.nn.Linear, batch_norm: Optional[torch.nn.BatchNorm1d]):
    """(W', b') with BN(W x + b) = W' x + b' in eval mode; computed in float64, stored as float32.

    W' = W * g / sqrt(rv + eps) per output row, b' = (b - rm) * g / sqrt(rv + eps) + beta.
    """
    weight = linear.weight.detach().double().numpy()
    bias = linear.bias.detach().double().numpy() if linear.bias is not None else np.zeros(weight.shape[0])
    if batch_norm is not None:
        gamma = batch_norm.weight.detach().double().numpy() if batch_norm.affine else np.ones(weight.shape[0])
        beta = batch_norm.bias.detach().double().numpy() if batch_norm.affine else np.zeros(weight.shape[0])
        scale = gamma / np.sqrt(batch_norm.running_var.detach().double().numpy() + batch_norm.eps)
        weight = weight * scale[:, None]
        bias = (bias - batch_norm.running_mean.detach().double().numpy()) * scale + beta
    return np.ascontiguousarray(weight, dtype=np.float32), np.ascontiguousarray(bias, dtype=np.float32)


def _f32(tensor: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(tensor.detach().cpu().float().numpy())


def _input_field(field, tables) -> InputFieldSpec:
    if isinstance(field, CategoricalFeature):
        return InputFieldSpec(name=field.name, kind="categorical", ids=field.ids,
                              embedding=f"embedding.{field.table}", vocabulary_size=field.vocabulary_size)
    if isinstance(field, HistoryFeature):
        return InputFieldSpec(name=field.name, kind="history", ids=field.ids, embedding=f"embedding.{field.table}",
                              vocabulary_size=tables[field.table].vocabulary_size, max_length=field.max_length,
                              pooling=field.pooling, mean_epsilon=field.mean_epsilon, padding_row=field.padding_id)
    return InputFieldSpec(name=field.name, kind="dense", width=field.width)


def _tower(prefix: str, tower: Tower, tables, tensors: List[TensorData]) -> TowerSpec:
    layers = []
    for index, block in enumerate(tower.layers):
        weight, bias = fold_batch_norm(block.linear, block.batch_norm)
        tensors.append(TensorData(f"{prefix}.{index}.weight", weight))
        tensors.append(TensorData(f"{prefix}.{index}.bias", bias))
        layers.append(DenseLayerSpec(f"{prefix}.{index}.weight", f"{prefix}.{index}.bias", block.activation))
    return TowerSpec(inputs=[_input_field(f, tables) for f in tower.fields], layers=layers,
                     l2_normalize=tower.l2_normalize, temperature=tower.temperature)


def _embedding_tensors(module) -> List[TensorData]:
    return [TensorData(f"embedding.{name}", _f32(table.weight)) for name, table in module.embeddings.items()]


def architecture_config(module) -> Tuple[object, List[TensorData]]:
    tensors = _embedding_tensors(module)
    if isinstance(module, DSSM):
        config = DssmConfigSpec(_tower("user_tower", module.user_tower, module.tables, tensors),
                                _tower("item_tower", module.item_tower, module.tables, tensors))
    elif isinstance(module, YoutubeDNN):
        config = YoutubeDnnConfigSpec(_tower("user_tower", module.user_tower, module.tables, tensors),
                                      f"embedding.{module.item_field.table}", module.normalize_items)
    elif isinstance(module, FMTwoTower):
        linear_tables = []
        for field in module.item_fields:
            if field.table not in linear_tables:
                linear_tables.append(field.table)
                tensors.append(TensorData(f"linear.{field.table}", _f32(module.linear[field.table].weight[:, 0])))
        config = FmTwoTowerConfigSpec(
            [FmFieldSpec(_input_field(f, module.tables)) for f in module.user_fields],
            [FmFieldSpec(_input_field(f, module.tables), f"linear.{f.table}") for f in module.item_fields],
            module.embedding_dim)
    else:
        raise ConversionError(f"no model-file mapping for {type(module).__name__}")
    return config, tensors


def catalogue_spec(module, catalogue: Catalogue, tensors: List[TensorData]) -> CatalogueSpec:
    if catalogue.vocabulary_size != module.item_field.vocabulary_size:
        raise ConversionError(f"catalogue: built for {catalogue.vocabulary_size} item rows, the model's item field "
                              f"'{module.item_field.name}' has {module.item_field.vocabulary_size}")
    spec = CatalogueSpec(external_ids=catalogue.external_ids.astype(np.int64),
                         item_rows=catalogue.item_rows.astype(np.uint32),
                         order_by_external_id=catalogue.order_by_external_id.astype(np.uint32))
    values = catalogue.feature_values(module.item_fields)
    if values is not None:
        tensors.append(TensorData("catalogue.feature_values", values))
        spec.feature_values = "catalogue.feature_values"
    tensors.append(TensorData("catalogue.item_vectors", item_vectors(module, catalogue)))
    spec.item_vectors = "catalogue.item_vectors"
    return spec


def self_test_samples(module, catalogue: Catalogue, seed: int = 20240601) -> List[SelfTestSampleSpec]:
    """Five user samples (empty, short, random, full and over-long histories) and three item samples."""
    rng = np.random.default_rng(seed)
    histories = [f for f in module.user_fields if isinstance(f, HistoryFeature)]
    if histories:
        longest = max(f.max_length for f in histories)
        lengths = [0, 1, None, longest, longest + 7]
    else:
        lengths = [None] * 3
    requests = requests_with_history_lengths(module, catalogue, rng, lengths)
    expected = user_vectors(module, requests, catalogue)
    samples = []
    for request, vector in zip(requests, expected):
        inputs = [FieldValueSpec(name, ids=value.get("ids"), values=value.get("values"))
                  for name, value in request.items()]
        samples.append(SelfTestSampleSpec("user_vector", inputs, vector))
    entries = np.unique(np.concatenate([[0, len(catalogue) - 1], rng.integers(0, len(catalogue), size=1)]))
    for entry, vector in zip(entries, item_vectors(module, catalogue, entries)):
        samples.append(SelfTestSampleSpec("item_vector", [], vector, item_id=int(catalogue.external_ids[entry])))
    return samples


def describe(module, catalogue: Optional[Catalogue] = None, metadata: Optional[Dict[str, str]] = None,
             self_test: bool = True) -> ModelDescription:
    """Everything the model file holds for `module` (which must already hold its trained weights)."""
    module.eval()
    if catalogue is None:
        catalogue = Catalogue(module.item_field.vocabulary_size)
    config, tensors = architecture_config(module)
    catalogue_description = catalogue_spec(module, catalogue, tensors)
    entries = [("spec", json.dumps(module_to_spec(module), sort_keys=True)),
               ("catalogue.padding_row", json.dumps(catalogue.padding_row))]
    entries += sorted((metadata or {}).items())
    return ModelDescription(architecture=module.architecture, config=config, tensors=tensors,
                            catalogue=catalogue_description,
                            self_test=self_test_samples(module, catalogue) if self_test else [],
                            metadata=entries)


__all__ = ["ModelDescription", "describe", "fold_batch_norm"]
