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

SASRec (describe_sasrec; SasRecConfig and TransformerLayer name them):
  item_embedding, position_embedding                      [item_rows, hidden], [position_rows, hidden] f32
  embedding_norm.weight / .bias                           [hidden] (RecBole)
  layers.<l>.{query,key,value,output}.weight / .bias      [hidden, hidden] / [hidden]
  layers.<l>.inner.weight / .bias, outer.weight / .bias   [inner, hidden] / [inner], [hidden, inner] / [hidden]
  layers.<l>.{attention_norm,feed_forward_norm}.weight / .bias   [hidden]
  final_norm.weight / .bias                               [hidden] (pmixer, torch-rechub)
  catalogue.item_vectors                                  [entries, hidden]: item table rows of the entries

MIND (describe_mind; MindConfig names them):
  embedding.<table>                 item table, side history tables, user field tables
  bilinear.weight                   [hidden, hidden] (applied as W e)
  routing.initial_logits            [interests, max_length] frozen initial routing logits
  head.<i>.weight / .bias           user head layer i, [out, in] / [out]
  catalogue.item_vectors            [entries, hidden]: item rows, normalised when normalize_items

SDM (describe_sdm; SdmConfig names them):
  embedding.<table>, profile.weight / .bias, long_attention.<f>.weight / .bias ([1, u + D_f] / [1]),
  long_output.weight / .bias, short_input.weight / .bias, lstm.input_weight, lstm.recurrent_weight, lstm.bias,
  attention.qkv_weight [3u, u], attention.output_weight [u, u], attention_norm.weight / .bias,
  user_attention.weight / .bias, gate.weight / .bias, catalogue.item_vectors [entries, u]
"""

import json
from dataclasses import dataclass, field as dataclass_field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from reclite_convert import __version__
from reclite_convert.catalogue import Catalogue
from reclite_convert.errors import ConversionError
from reclite_convert.modules.features import CategoricalFeature, HistoryFeature
from reclite_convert.modules.sasrec import SASRec
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
class TransformerLayerSpec:
    query_weight: str
    query_bias: Optional[str]
    key_weight: str
    key_bias: Optional[str]
    value_weight: str
    value_bias: Optional[str]
    output_weight: Optional[str]
    output_bias: Optional[str]
    attention_norm_weight: str
    attention_norm_bias: str
    inner_weight: str
    inner_bias: Optional[str]
    outer_weight: str
    outer_bias: Optional[str]
    feed_forward_norm_weight: str
    feed_forward_norm_bias: str


@dataclass
class SasRecConfigSpec:
    """schemas/model.fbs SasRecConfig, field for field (names and meanings as there)."""

    variant: str
    history_field: str
    item_embedding: str
    position_embedding: str
    max_length: int
    hidden_size: int
    heads: int
    inner_size: int
    activation: str
    layer_norm_epsilon: float
    embedding_scale: float
    padding_row: int
    padding_side: str                 # right | left
    position_offset: int
    pads_use_position_zero: bool
    embedding_norm_weight: Optional[str]
    embedding_norm_bias: Optional[str]
    mask_padding_keys: bool
    mask_value: float
    zero_padding_rows: bool
    block_style: str                  # post_norm | query_norm | pre_norm
    layers: List[TransformerLayerSpec]
    final_norm_weight: Optional[str]
    final_norm_bias: Optional[str]


@dataclass
class MindConfigSpec:
    """schemas/model.fbs MindConfig, field for field."""

    variant: str
    history_fields: List[InputFieldSpec]
    behaviour_combine: str
    padding_side: str
    max_length: int
    hidden_size: int
    bilinear_weight: str
    interests: int
    routing_iterations: int
    initial_logits: str
    routing_softmax: str
    routing_padding: str
    pad_logit: float
    squash_epsilon: float
    dynamic_interests: bool
    inactive_logit: float
    mask_inactive_interests: bool
    update_logits_on_last_iteration: bool
    user_fields: List[InputFieldSpec]
    head_layers: List[DenseLayerSpec]
    head_l2_normalize: bool
    label_attention_power: float
    item_embedding: str
    normalize_items: bool


@dataclass
class SdmConfigSpec:
    """schemas/model.fbs SdmConfig, field for field."""

    variant: str
    units: int
    user_fields: List[InputFieldSpec]
    profile_weight: str
    profile_bias: Optional[str]
    short_fields: List[InputFieldSpec]
    long_fields: List[InputFieldSpec]
    short_length: int
    long_length: int
    long_attention_weights: List[str]
    long_attention_biases: List[str]
    long_output_weight: str
    long_output_bias: Optional[str]
    short_input_weight: str
    short_input_bias: Optional[str]
    lstm_input_weight: str
    lstm_recurrent_weight: str
    lstm_bias: Optional[str]
    lstm_gate_order: str
    lstm_forget_bias: float
    lstm_layers: int
    attention_qkv_weight: str
    attention_output_weight: str
    attention_heads: int
    attention_mask_value: float
    attention_norm_weight: str
    attention_norm_bias: str
    attention_norm_epsilon: float
    user_attention_weight: str
    user_attention_bias: Optional[str]
    gate_weight: str
    gate_bias: Optional[str]
    item_embedding: str
    normalize_items: bool


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


def sasrec_config(module: SASRec) -> Tuple[SasRecConfigSpec, List[TensorData]]:
    """The SasRecConfig of `module` and its tensors (already in Linear layout [out, in], float32)."""
    variant = module.variant
    tensors = [TensorData("item_embedding", _f32(module.item_embedding.weight)),
               TensorData("position_embedding", _f32(module.position_embedding.weight))]

    def add(name: str, tensor: torch.Tensor) -> str:
        tensors.append(TensorData(name, _f32(tensor)))
        return name

    embedding_norm = (None, None)
    if module.embedding_norm is not None:
        embedding_norm = (add("embedding_norm.weight", module.embedding_norm.weight),
                          add("embedding_norm.bias", module.embedding_norm.bias))
    layers = []
    for index, layer in enumerate(module.layers):
        names = {}
        for part in ("query", "key", "value", "output", "inner", "outer", "attention_norm", "feed_forward_norm"):
            sub = getattr(layer, part)
            names[f"{part}_weight"] = add(f"layers.{index}.{part}.weight", sub.weight)
            names[f"{part}_bias"] = add(f"layers.{index}.{part}.bias", sub.bias)
        layers.append(TransformerLayerSpec(**names))
    final_norm = (None, None)
    if module.final_norm is not None:
        final_norm = (add("final_norm.weight", module.final_norm.weight),
                      add("final_norm.bias", module.final_norm.bias))
    config = SasRecConfigSpec(
        variant=variant.name, history_field=module.history_field, item_embedding="item_embedding",
        position_embedding="position_embedding", max_length=module.max_length, hidden_size=module.hidden_size,
        heads=module.heads, inner_size=module.inner_size, activation=module.activation,
        layer_norm_epsilon=module.layer_norm_epsilon, embedding_scale=module.embedding_scale,
        padding_row=module.padding_row, padding_side=variant.padding_side, position_offset=variant.position_offset,
        pads_use_position_zero=variant.pads_use_position_zero, embedding_norm_weight=embedding_norm[0],
        embedding_norm_bias=embedding_norm[1], mask_padding_keys=variant.mask_padding_keys,
        mask_value=variant.mask_value, zero_padding_rows=variant.zero_padding_rows, block_style=variant.block_style,
        layers=layers, final_norm_weight=final_norm[0], final_norm_bias=final_norm[1])
    return config, tensors


def sasrec_history_lengths(module: SASRec) -> List[Optional[int]]:
    """Self-test history lengths: short, random, full and over-long; empty too where the library defines it."""
    longest = module.max_length
    lengths = [1, None, longest, longest + 7]
    return ([0] if module.variant.padding_side == "left" else [2]) + lengths


def sasrec_self_test_samples(module: SASRec, catalogue: Catalogue, seed: int = 20240601,
                             lengths: Optional[Sequence[Optional[int]]] = None) -> List[SelfTestSampleSpec]:
    """User-vector samples: one history (external item ids, most recent last) per length (None: random)."""
    rng = np.random.default_rng(seed)
    histories = []
    for length in (sasrec_history_lengths(module) if lengths is None else lengths):
        if length is None:
            length = int(rng.integers(1, module.max_length + 1))
        histories.append([int(i) for i in rng.choice(catalogue.external_ids, size=length)])
    with torch.inference_mode():
        expected = module.user_vector([catalogue.rows_of(h).tolist() for h in histories]).float().numpy()
    return [SelfTestSampleSpec("user_vector", [FieldValueSpec(module.history_field, ids=history)],
                               np.ascontiguousarray(vector))
            for history, vector in zip(histories, expected)]


def describe_sasrec(module: SASRec, catalogue: Optional[Catalogue] = None,
                    metadata: Optional[Dict[str, str]] = None, self_test: bool = True) -> ModelDescription:
    """Everything the model file holds for a SASRec module; the catalogue excludes its padding row."""
    module.eval()
    if catalogue is None:
        catalogue = Catalogue(module.item_rows, padding_row=module.padding_row)
    if catalogue.vocabulary_size != module.item_rows:
        raise ConversionError(f"catalogue: built for {catalogue.vocabulary_size} item rows, the item table has "
                              f"{module.item_rows}")
    if module.padding_row in set(catalogue.item_rows.tolist()):
        raise ConversionError(f"catalogue: the padding row {module.padding_row} is not an item")
    config, tensors = sasrec_config(module)
    tensors.append(TensorData("catalogue.item_vectors", _f32(module.item_embedding.weight[
        torch.from_numpy(catalogue.item_rows)])))
    catalogue_description = CatalogueSpec(external_ids=catalogue.external_ids.astype(np.int64),
                                          item_rows=catalogue.item_rows.astype(np.uint32),
                                          order_by_external_id=catalogue.order_by_external_id.astype(np.uint32),
                                          item_vectors="catalogue.item_vectors")
    entries = [("sasrec", json.dumps(module.options(), sort_keys=True)),
               ("catalogue.padding_row", json.dumps(module.padding_row))]
    entries += sorted((metadata or {}).items())
    return ModelDescription(architecture="sasrec", config=config, tensors=tensors, catalogue=catalogue_description,
                            self_test=sasrec_self_test_samples(module, catalogue) if self_test else [],
                            metadata=entries)


# --- MIND and SDM ----------------------------------------------------------------------------------------------
def _history_input(field, tables, pooling: str = "mean") -> InputFieldSpec:
    """A MIND/SDM history field: its window is the config's, pooling is unused (recorded as the field says)."""
    return InputFieldSpec(name=field.name, kind="history", ids=field.ids, embedding=f"embedding.{field.table}",
                          vocabulary_size=tables[field.table].vocabulary_size, max_length=field.max_length,
                          pooling=pooling, mean_epsilon=field.mean_epsilon, padding_row=field.padding_id)


def _multi_interest_catalogue(module, catalogue: Optional[Catalogue], tensors: List[TensorData]) -> Tuple[
        Catalogue, CatalogueSpec]:
    if catalogue is None:
        catalogue = Catalogue(module.item_rows, padding_row=module.padding_row)
    if catalogue.vocabulary_size != module.item_rows:
        raise ConversionError(f"catalogue: built for {catalogue.vocabulary_size} item rows, the item table has "
                              f"{module.item_rows}")
    if module.padding_row in set(catalogue.item_rows.tolist()):
        raise ConversionError(f"catalogue: the padding row {module.padding_row} is not an item")
    with torch.inference_mode():
        vectors = module.item_table()[torch.from_numpy(catalogue.item_rows)]
    tensors.append(TensorData("catalogue.item_vectors", _f32(vectors)))
    return catalogue, CatalogueSpec(external_ids=catalogue.external_ids.astype(np.int64),
                                    item_rows=catalogue.item_rows.astype(np.uint32),
                                    order_by_external_id=catalogue.order_by_external_id.astype(np.uint32),
                                    item_vectors="catalogue.item_vectors")


def mind_config(module) -> Tuple[MindConfigSpec, List[TensorData]]:
    """The MindConfig of a MIND module and its tensors (float32, Linear layout)."""
    tensors = _embedding_tensors(module)
    tensors.append(TensorData("bilinear.weight", _f32(module.bilinear.weight)))
    tensors.append(TensorData("routing.initial_logits", _f32(module.initial_logits)))
    layers = []
    for index, (layer, activation) in enumerate(zip(module.head, module.layer_activations())):
        tensors.append(TensorData(f"head.{index}.weight", _f32(layer.weight)))
        bias = None
        if layer.bias is not None:
            bias = f"head.{index}.bias"
            tensors.append(TensorData(bias, _f32(layer.bias)))
        layers.append(DenseLayerSpec(f"head.{index}.weight", bias, activation))
    s = module.settings
    config = MindConfigSpec(
        variant=module.variant, history_fields=[_history_input(f, module.tables) for f in module.history_fields],
        behaviour_combine=s.behaviour_combine, padding_side=s.padding_side, max_length=module.max_length,
        hidden_size=module.hidden_size, bilinear_weight="bilinear.weight", interests=module.interests,
        routing_iterations=s.routing_iterations, initial_logits="routing.initial_logits",
        routing_softmax=s.routing_softmax, routing_padding=s.routing_padding, pad_logit=s.pad_logit,
        squash_epsilon=s.squash_epsilon, dynamic_interests=s.dynamic_interests, inactive_logit=s.inactive_logit,
        mask_inactive_interests=s.mask_inactive_interests,
        update_logits_on_last_iteration=s.update_logits_on_last_iteration,
        user_fields=[_input_field(f, module.tables) for f in module.user_fields], head_layers=layers,
        head_l2_normalize=s.head_l2_normalize, label_attention_power=s.label_attention_power,
        item_embedding=f"embedding.{module.item_table_name}", normalize_items=s.normalize_items)
    return config, tensors


def sdm_config(module) -> Tuple[SdmConfigSpec, List[TensorData]]:
    """The SdmConfig of an SDM module and its tensors (float32, Linear layout)."""
    tensors = _embedding_tensors(module)

    def add(name: str, tensor: torch.Tensor) -> str:
        tensors.append(TensorData(name, _f32(tensor)))
        return name

    attention_weights, attention_biases = [], []
    for index, layer in enumerate(module.long_attention):
        attention_weights.append(add(f"long_attention.{index}.weight", layer.weight))
        attention_biases.append(add(f"long_attention.{index}.bias", layer.bias))
    config = SdmConfigSpec(
        variant=module.variant, units=module.units,
        user_fields=[_input_field(f, module.tables) for f in module.user_fields],
        profile_weight=add("profile.weight", module.profile.weight),
        profile_bias=add("profile.bias", module.profile.bias),
        short_fields=[_history_input(f, module.tables) for f in module.short_fields],
        long_fields=[_history_input(f, module.tables) for f in module.long_fields],
        short_length=module.short_length, long_length=module.long_length,
        long_attention_weights=attention_weights, long_attention_biases=attention_biases,
        long_output_weight=add("long_output.weight", module.long_output.weight),
        long_output_bias=add("long_output.bias", module.long_output.bias),
        short_input_weight=add("short_input.weight", module.short_input.weight),
        short_input_bias=add("short_input.bias", module.short_input.bias),
        lstm_input_weight=add("lstm.input_weight", module.lstm_input_weight),
        lstm_recurrent_weight=add("lstm.recurrent_weight", module.lstm_recurrent_weight),
        lstm_bias=add("lstm.bias", module.lstm_bias), lstm_gate_order=module.lstm_gate_order,
        lstm_forget_bias=module.lstm_forget_bias, lstm_layers=module.lstm_layers,
        attention_qkv_weight=add("attention.qkv_weight", module.attention_qkv.weight),
        attention_output_weight=add("attention.output_weight", module.attention_output.weight),
        attention_heads=module.attention_heads, attention_mask_value=module.attention_mask_value,
        attention_norm_weight=add("attention_norm.weight", module.attention_norm.weight),
        attention_norm_bias=add("attention_norm.bias", module.attention_norm.bias),
        attention_norm_epsilon=module.attention_norm_epsilon,
        user_attention_weight=add("user_attention.weight", module.user_attention.weight),
        user_attention_bias=add("user_attention.bias", module.user_attention.bias),
        gate_weight=add("gate.weight", module.gate.weight), gate_bias=add("gate.bias", module.gate.bias),
        item_embedding=f"embedding.{module.item_table_name}", normalize_items=module.normalize_items)
    return config, tensors


def multi_interest_request(module, catalogue: Catalogue, rng: np.random.Generator, length: int,
                           long_length: Optional[int] = None, item_categories=None) -> Dict[str, Dict[str, list]]:
    """A request for MIND (history length `length`) or SDM (short `length`, long `long_length`): external item
    ids drawn from the catalogue; side histories from item_categories[row] when given, else random non-pad ids;
    user fields random."""
    request: Dict[str, Dict[str, list]] = {}

    def histories(fields, count):
        entries = rng.integers(0, len(catalogue), size=count)
        rows = catalogue.item_rows[entries]
        for field in fields:
            if field.ids == "item":
                request[field.name] = {"ids": [int(i) for i in catalogue.external_ids[entries]]}
            elif item_categories is not None:
                request[field.name] = {"ids": [int(item_categories[r]) for r in rows]}
            else:
                vocabulary = module.tables[field.table].vocabulary_size
                request[field.name] = {"ids": [int((v + field.padding_id + 1) % vocabulary)
                                               for v in rng.integers(0, vocabulary - 1, size=count)]}

    if module.architecture == "mind":
        histories(module.history_fields, length)
    else:
        histories(module.short_fields, length)
        histories(module.long_fields, length if long_length is None else long_length)
    for field in module.user_fields:
        if isinstance(field, CategoricalFeature):
            if field.ids == "item":
                request[field.name] = {"ids": [int(rng.choice(catalogue.external_ids))]}
            else:
                request[field.name] = {"ids": [int(rng.integers(0, field.vocabulary_size))]}
        elif isinstance(field, HistoryFeature):
            ids = rng.choice(catalogue.external_ids, size=int(rng.integers(1, field.max_length + 1)))
            request[field.name] = {"ids": [int(i) for i in ids]}
        else:
            request[field.name] = {"values": [float(v) for v in rng.normal(size=field.width).astype(np.float32)]}
    return request


def multi_interest_self_test(module, catalogue: Catalogue, seed: int = 20240601) -> List[SelfTestSampleSpec]:
    """User samples: MIND histories of length 0, 1, 3, max, max+5 (expected: all K vectors concatenated);
    SDM (short, long) lengths (0, 0), (1, 0), (0, 1), (3, max), (max+2, max+5)."""
    rng = np.random.default_rng(seed)
    if module.architecture == "mind":
        longest = module.max_length
        pairs = [(0, None), (1, None), (3, None), (longest, None), (longest + 5, None)]
    else:
        pairs = [(0, 0), (1, 0), (0, 1), (3, module.long_length), (module.short_length + 2, module.long_length + 5)]
    samples = []
    for short, long in pairs:
        request = multi_interest_request(module, catalogue, rng, short, long)
        expected = module.user_vectors(request, catalogue).reshape(-1)
        inputs = [FieldValueSpec(name, ids=value.get("ids"), values=value.get("values"))
                  for name, value in request.items()]
        samples.append(SelfTestSampleSpec("user_vector", inputs, np.ascontiguousarray(expected, dtype=np.float32)))
    return samples


def describe_multi_interest(module, catalogue: Optional[Catalogue] = None,
                            metadata: Optional[Dict[str, str]] = None, self_test: bool = True) -> ModelDescription:
    """Everything the model file holds for a MIND or SDM module; the catalogue excludes its padding row."""
    module.eval()
    config, tensors = mind_config(module) if module.architecture == "mind" else sdm_config(module)
    catalogue, catalogue_description = _multi_interest_catalogue(module, catalogue, tensors)
    entries = [(module.architecture, json.dumps(module.options(), sort_keys=True)),
               ("catalogue.padding_row", json.dumps(module.padding_row))]
    entries += sorted((metadata or {}).items())
    return ModelDescription(architecture=module.architecture, config=config, tensors=tensors,
                            catalogue=catalogue_description,
                            self_test=multi_interest_self_test(module, catalogue) if self_test else [],
                            metadata=entries)


def describe(module, catalogue: Optional[Catalogue] = None, metadata: Optional[Dict[str, str]] = None,
             self_test: bool = True) -> ModelDescription:
    """Everything the model file holds for `module` (which must already hold its trained weights)."""
    if isinstance(module, SASRec):
        return describe_sasrec(module, catalogue, metadata, self_test)
    if getattr(module, "architecture", None) in ("mind", "sdm"):
        return describe_multi_interest(module, catalogue, metadata, self_test)
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


__all__ = ["ModelDescription", "describe", "describe_multi_interest", "describe_sasrec", "fold_batch_norm"]
