"""Reads a model file back with the generated FlatBuffers code, into plain Python values.

Used by `inspect` and the tests; the engine has its own verifying loader. Tensor arrays are numpy views of the
file's bytes.
"""

import zlib
from typing import Any, Dict

import numpy as np

import reclite_convert  # noqa: F401  (puts the generated code on sys.path)
from reclite.fbs import (Activation, Architecture, ArchitectureConfig, BehaviourCombine, DssmConfig, DType,
                         FieldKind, FmTwoTowerConfig, IdSpace, LstmGateOrder, MindConfig, Model, PaddingSide, Pooling,
                         RoutingPadding, RoutingSoftmax, SasRecBlockStyle, SasRecConfig, SdmConfig, SelfTestTarget,
                         YoutubeDnnConfig)
from reclite_convert.errors import ConversionError

_NUMPY_DTYPES = {"f32": np.dtype("<f4"), "i32": np.dtype("<i4"), "i64": np.dtype("<i8"), "f16": np.dtype("<f2")}


def _names(enum_class) -> Dict[int, str]:
    return {value: name for name, value in vars(enum_class).items() if not name.startswith("_")}


_ACTIVATIONS = _names(Activation.Activation)
_ARCHITECTURES = _names(Architecture.Architecture)
_DTYPE_NAMES = _names(DType.DType)
_KINDS = _names(FieldKind.FieldKind)
_ID_SPACES = _names(IdSpace.IdSpace)
_POOLINGS = _names(Pooling.Pooling)
_TARGETS = _names(SelfTestTarget.SelfTestTarget)
_PADDING_SIDES = _names(PaddingSide.PaddingSide)
_BLOCK_STYLES = _names(SasRecBlockStyle.SasRecBlockStyle)
_ROUTING_SOFTMAXES = _names(RoutingSoftmax.RoutingSoftmax)
_ROUTING_PADDINGS = _names(RoutingPadding.RoutingPadding)
_BEHAVIOUR_COMBINES = _names(BehaviourCombine.BehaviourCombine)
_GATE_ORDERS = _names(LstmGateOrder.LstmGateOrder)
_LAYER_PARTS = ("query_weight", "query_bias", "key_weight", "key_bias", "value_weight", "value_bias",
                "output_weight", "output_bias", "attention_norm_weight", "attention_norm_bias", "inner_weight",
                "inner_bias", "outer_weight", "outer_bias", "feed_forward_norm_weight", "feed_forward_norm_bias")


def _accessor(name: str) -> str:
    return "".join(word.capitalize() for word in name.split("_"))


def _sasrec(config) -> Dict[str, Any]:
    layers = []
    for i in range(config.LayersLength()):
        layer = config.Layers(i)
        layers.append({part: _text(getattr(layer, _accessor(part))()) for part in _LAYER_PARTS})
    return {
        "variant": _text(config.Variant()), "history_field": _text(config.HistoryField()),
        "item_embedding": _text(config.ItemEmbedding()), "position_embedding": _text(config.PositionEmbedding()),
        "max_length": config.MaxLength(), "hidden_size": config.HiddenSize(), "heads": config.Heads(),
        "inner_size": config.InnerSize(), "activation": _ACTIVATIONS.get(config.Activation(), config.Activation()),
        "layer_norm_epsilon": config.LayerNormEpsilon(), "embedding_scale": config.EmbeddingScale(),
        "padding_row": config.PaddingRow(),
        "padding_side": _PADDING_SIDES.get(config.PaddingSide(), config.PaddingSide()),
        "position_offset": config.PositionOffset(), "pads_use_position_zero": config.PadsUsePositionZero(),
        "embedding_norm_weight": _text(config.EmbeddingNormWeight()),
        "embedding_norm_bias": _text(config.EmbeddingNormBias()),
        "mask_padding_keys": config.MaskPaddingKeys(), "mask_value": config.MaskValue(),
        "zero_padding_rows": config.ZeroPaddingRows(),
        "block_style": _BLOCK_STYLES.get(config.BlockStyle(), config.BlockStyle()), "layers": layers,
        "final_norm_weight": _text(config.FinalNormWeight()), "final_norm_bias": _text(config.FinalNormBias())}


def _layers(count, get):
    return [{"weight": _text(get(i).Weight()), "bias": _text(get(i).Bias()),
             "activation": _ACTIVATIONS.get(get(i).Activation(), get(i).Activation())} for i in range(count)]


def _mind(config) -> Dict[str, Any]:
    return {
        "variant": _text(config.Variant()),
        "history_fields": [_input_field(config.HistoryFields(i)) for i in range(config.HistoryFieldsLength())],
        "behaviour_combine": _BEHAVIOUR_COMBINES.get(config.BehaviourCombine(), config.BehaviourCombine()),
        "padding_side": _PADDING_SIDES.get(config.PaddingSide(), config.PaddingSide()),
        "max_length": config.MaxLength(), "hidden_size": config.HiddenSize(),
        "bilinear_weight": _text(config.BilinearWeight()), "interests": config.Interests(),
        "routing_iterations": config.RoutingIterations(), "initial_logits": _text(config.InitialLogits()),
        "routing_softmax": _ROUTING_SOFTMAXES.get(config.RoutingSoftmax(), config.RoutingSoftmax()),
        "routing_padding": _ROUTING_PADDINGS.get(config.RoutingPadding(), config.RoutingPadding()),
        "pad_logit": config.PadLogit(), "squash_epsilon": config.SquashEpsilon(),
        "dynamic_interests": config.DynamicInterests(), "inactive_logit": config.InactiveLogit(),
        "mask_inactive_interests": config.MaskInactiveInterests(),
        "update_logits_on_last_iteration": config.UpdateLogitsOnLastIteration(),
        "user_fields": [_input_field(config.UserFields(i)) for i in range(config.UserFieldsLength())],
        "head_layers": _layers(config.HeadLayersLength(), config.HeadLayers),
        "head_l2_normalize": config.HeadL2Normalize(), "label_attention_power": config.LabelAttentionPower(),
        "item_embedding": _text(config.ItemEmbedding()), "normalize_items": config.NormalizeItems()}


def _sdm(config) -> Dict[str, Any]:
    result = {
        "variant": _text(config.Variant()), "units": config.Units(),
        "user_fields": [_input_field(config.UserFields(i)) for i in range(config.UserFieldsLength())],
        "short_fields": [_input_field(config.ShortFields(i)) for i in range(config.ShortFieldsLength())],
        "long_fields": [_input_field(config.LongFields(i)) for i in range(config.LongFieldsLength())],
        "short_length": config.ShortLength(), "long_length": config.LongLength(),
        "long_attention_weights": [_text(config.LongAttentionWeights(i))
                                   for i in range(config.LongAttentionWeightsLength())],
        "long_attention_biases": [_text(config.LongAttentionBiases(i))
                                  for i in range(config.LongAttentionBiasesLength())],
        "lstm_gate_order": _GATE_ORDERS.get(config.LstmGateOrder(), config.LstmGateOrder()),
        "lstm_forget_bias": config.LstmForgetBias(), "lstm_layers": config.LstmLayers(),
        "attention_heads": config.AttentionHeads(), "attention_mask_value": config.AttentionMaskValue(),
        "attention_norm_epsilon": config.AttentionNormEpsilon(), "normalize_items": config.NormalizeItems()}
    for name in ("profile_weight", "profile_bias", "long_output_weight", "long_output_bias", "short_input_weight",
                 "short_input_bias", "lstm_input_weight", "lstm_recurrent_weight", "lstm_bias",
                 "attention_qkv_weight", "attention_output_weight", "attention_norm_weight", "attention_norm_bias",
                 "user_attention_weight", "user_attention_bias", "gate_weight", "gate_bias", "item_embedding"):
        result[name] = _text(getattr(config, _accessor(name))())
    return result


def _text(value) -> Any:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _input_field(field) -> Dict[str, Any]:
    return {"name": _text(field.Name()), "kind": _KINDS[field.Kind()], "ids": _ID_SPACES[field.Ids()],
            "embedding": _text(field.Embedding()), "vocabulary_size": field.VocabularySize(),
            "max_length": field.MaxLength(), "pooling": _POOLINGS[field.Pooling()],
            "mean_epsilon": field.MeanEpsilon(), "padding_row": field.PaddingRow(), "width": field.Width()}


def _tower(tower) -> Dict[str, Any]:
    return {"inputs": [_input_field(tower.Inputs(i)) for i in range(tower.InputsLength())],
            "layers": [{"weight": _text(tower.Layers(i).Weight()), "bias": _text(tower.Layers(i).Bias()),
                        "activation": _ACTIVATIONS[tower.Layers(i).Activation()]}
                       for i in range(tower.LayersLength())],
            "l2_normalize": tower.L2Normalize(), "temperature": tower.Temperature()}


def _config(model) -> Dict[str, Any]:
    table = model.Config()
    kind = model.ConfigType()
    if table is None:
        return {}
    if kind == ArchitectureConfig.ArchitectureConfig.DssmConfig:
        config = DssmConfig.DssmConfig()
        config.Init(table.Bytes, table.Pos)
        return {"user_tower": _tower(config.UserTower()), "item_tower": _tower(config.ItemTower())}
    if kind == ArchitectureConfig.ArchitectureConfig.YoutubeDnnConfig:
        config = YoutubeDnnConfig.YoutubeDnnConfig()
        config.Init(table.Bytes, table.Pos)
        return {"user_tower": _tower(config.UserTower()), "item_embedding": _text(config.ItemEmbedding()),
                "normalize_items": config.NormalizeItems()}
    if kind == ArchitectureConfig.ArchitectureConfig.FmTwoTowerConfig:
        config = FmTwoTowerConfig.FmTwoTowerConfig()
        config.Init(table.Bytes, table.Pos)

        def fields(count, get):
            return [dict(_input_field(get(i).Field()), linear=_text(get(i).Linear())) for i in range(count)]
        return {"user_fields": fields(config.UserFieldsLength(), config.UserFields),
                "item_fields": fields(config.ItemFieldsLength(), config.ItemFields),
                "embedding_dim": config.EmbeddingDim()}
    if kind == ArchitectureConfig.ArchitectureConfig.SasRecConfig:
        config = SasRecConfig.SasRecConfig()
        config.Init(table.Bytes, table.Pos)
        return _sasrec(config)
    if kind == ArchitectureConfig.ArchitectureConfig.MindConfig:
        config = MindConfig.MindConfig()
        config.Init(table.Bytes, table.Pos)
        return _mind(config)
    if kind == ArchitectureConfig.ArchitectureConfig.SdmConfig:
        config = SdmConfig.SdmConfig()
        config.Init(table.Bytes, table.Pos)
        return _sdm(config)
    return {"unknown_config_type": kind}


def _tensor(tensor, buffer: bytes) -> Dict[str, Any]:
    dtype = _DTYPE_NAMES.get(tensor.Dtype(), str(tensor.Dtype()))
    shape = [int(tensor.Shape(i)) for i in range(tensor.ShapeLength())]
    data_field = tensor._tab.Offset(10)  # slot 3 (data): 4 + 2 * 3
    offset = tensor._tab.Vector(data_field) if data_field else 0
    size = tensor.DataLength()
    data = memoryview(buffer)[offset:offset + size]
    entry = {"name": _text(tensor.Name()), "dtype": dtype, "shape": shape, "bytes": size, "offset": offset,
             "crc32": tensor.Crc32(), "crc_ok": (zlib.crc32(data) & 0xFFFFFFFF) == tensor.Crc32()}
    numpy_dtype = _NUMPY_DTYPES.get(dtype)
    if numpy_dtype is not None and size == int(np.prod(shape, dtype=np.int64)) * numpy_dtype.itemsize:
        entry["array"] = np.frombuffer(buffer, dtype=numpy_dtype, count=size // numpy_dtype.itemsize,
                                       offset=offset).reshape(shape)
    return entry


def read_model(buffer: bytes, source: str = "model") -> Dict[str, Any]:
    """The whole file as dicts and lists (tensors with numpy arrays under 'array')."""
    if len(buffer) < 8 or not Model.Model.ModelBufferHasIdentifier(buffer, 0):
        raise ConversionError(f"{source}: not a reclite model file (identifier is not RCLT)")
    model = Model.Model.GetRootAs(buffer, 0)
    result: Dict[str, Any] = {
        "identifier": bytes(buffer[4:8]).decode("ascii"), "format_major": model.FormatMajor(),
        "format_minor": model.FormatMinor(), "producer": _text(model.Producer()),
        "architecture": _ARCHITECTURES.get(model.Architecture(), str(model.Architecture())),
        "config": _config(model),
        "tensors": [_tensor(model.Tensors(i), buffer) for i in range(model.TensorsLength())],
        "metadata": {_text(model.Metadata(i).Key()): _text(model.Metadata(i).Value())
                     for i in range(model.MetadataLength())},
        "self_test": [],
        "catalogue": None,
    }
    catalogue = model.Catalogue()
    if catalogue is not None:
        result["catalogue"] = {
            "external_ids": catalogue.ExternalIdsAsNumpy() if catalogue.ExternalIdsLength() else np.zeros(0),
            "item_rows": catalogue.ItemRowsAsNumpy() if catalogue.ItemRowsLength() else None,
            "order_by_external_id": catalogue.OrderByExternalIdAsNumpy()
            if catalogue.OrderByExternalIdLength() else np.zeros(0),
            "feature_values": _text(catalogue.FeatureValues()), "item_vectors": _text(catalogue.ItemVectors())}
    for i in range(model.SelfTestLength()):
        sample = model.SelfTest(i)
        inputs = {}
        for j in range(sample.InputsLength()):
            value = sample.Inputs(j)
            entry = {}
            if not value.IdsIsNone():
                entry["ids"] = [int(v) for v in value.IdsAsNumpy()] if value.IdsLength() else []
            if not value.ValuesIsNone():
                entry["values"] = [float(v) for v in value.ValuesAsNumpy()] if value.ValuesLength() else []
            inputs[_text(value.Field())] = entry
        result["self_test"].append({
            "target": _TARGETS[sample.Target()], "inputs": inputs, "item_id": sample.ItemId(),
            "expected": np.array(sample.ExpectedAsNumpy(), dtype=np.float32) if sample.ExpectedLength()
            else np.zeros(0, np.float32), "tolerance": sample.Tolerance()})
    return result


def read_model_file(path: str) -> Dict[str, Any]:
    try:
        with open(path, "rb") as file:
            buffer = file.read()
    except OSError as error:
        raise ConversionError(f"{path}: cannot read: {error.strerror}") from error
    return read_model(buffer, path)
