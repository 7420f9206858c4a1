"""Builds the FlatBuffers model file from a ModelDescription; the only module that touches the builder.

Tensor bytes start 64-byte aligned relative to the buffer start (SIMD loads straight from the mapped file):
each data vector is prepared with alignment 64, which raises the builder's minalign to 64, and Finish pads
the front of the buffer to minalign, so offsets aligned from the end are aligned from the start too.
"""

import zlib
from typing import List, Optional

import flatbuffers
import numpy as np

import reclite_convert  # noqa: F401  (puts the generated code on sys.path)
from reclite.fbs import (Activation, Architecture, ArchitectureConfig, BehaviourCombine, DenseLayer, DssmConfig, DType,
                         FieldKind, FieldValue, FmField, FmTwoTowerConfig, IdSpace, InputField, ItemCatalogue,
                         KeyValue, LstmGateOrder, MindConfig, Model, PaddingSide, Pooling, RoutingPadding,
                         RoutingSoftmax, SasRecBlockStyle, SasRecConfig, SdmConfig, SelfTestSample, SelfTestTarget,
                         Tensor, Tower, TransformerLayer, YoutubeDnnConfig)
from reclite_convert.errors import ConversionError
from reclite_convert.model_spec import (DssmConfigSpec, FmTwoTowerConfigSpec, MindConfigSpec, ModelDescription,
                                        SasRecConfigSpec, SdmConfigSpec, TensorData, TowerSpec, TransformerLayerSpec,
                                        YoutubeDnnConfigSpec)

FILE_IDENTIFIER = b"RCLT"
FORMAT_MAJOR = 1
FORMAT_MINOR = 0
DATA_ALIGNMENT = 64

_DTYPES = {np.dtype(np.float32): DType.DType.f32, np.dtype(np.int32): DType.DType.i32,
           np.dtype(np.int64): DType.DType.i64}


def _enum(enum_class, name: str) -> int:
    return getattr(enum_class, name)


class _Writer:
    def __init__(self, description: ModelDescription):
        self.description = description
        payload = sum(t.array.nbytes for t in description.tensors)
        if description.catalogue is not None:
            payload += 16 * len(description.catalogue.external_ids)  # int64 id, uint32 row, uint32 order
        # one allocation up front: growing by doubling would copy the tables several times
        self.builder = flatbuffers.Builder(payload + DATA_ALIGNMENT * (len(description.tensors) + 1) + (1 << 16))

    # --- primitives -------------------------------------------------------------------------------------------
    def string(self, text: Optional[str]) -> int:
        return 0 if text is None else self.builder.CreateString(text)

    def numbers(self, values, dtype) -> int:
        array = np.ascontiguousarray(np.asarray(values, dtype=dtype).reshape(-1)).astype(
            np.dtype(dtype).newbyteorder("<"), copy=False)
        return self.builder.CreateNumpyVector(array)

    def aligned_bytes(self, data: memoryview) -> int:
        builder = self.builder
        builder.StartVector(1, len(data), DATA_ALIGNMENT)
        builder.head = builder.head - len(data)
        builder.Bytes[builder.head:builder.head + len(data)] = data
        return builder.EndVector()

    def table_vector(self, start_vector, offsets: List[int]) -> int:
        start_vector(self.builder, len(offsets))
        for offset in reversed(offsets):
            self.builder.PrependUOffsetTRelative(offset)
        return self.builder.EndVector()

    # --- tables -----------------------------------------------------------------------------------------------
    def tensor(self, tensor: TensorData) -> int:
        array = np.asarray(tensor.array)
        if array.dtype not in _DTYPES:
            raise ConversionError(f"tensor '{tensor.name}': dtype {array.dtype} cannot be stored")
        # a byte view, not a copy: the bytes are copied once, into the builder
        data = memoryview(np.ascontiguousarray(array.astype(array.dtype.newbyteorder("<"), copy=False))).cast("B")
        b = self.builder
        data_offset = self.aligned_bytes(data)
        shape_offset = self.numbers(list(array.shape), np.int64)
        name_offset = self.string(tensor.name)
        Tensor.TensorStart(b)
        Tensor.TensorAddName(b, name_offset)
        Tensor.TensorAddDtype(b, _DTYPES[array.dtype])
        Tensor.TensorAddShape(b, shape_offset)
        Tensor.TensorAddData(b, data_offset)
        Tensor.TensorAddCrc32(b, zlib.crc32(data) & 0xFFFFFFFF)
        return Tensor.TensorEnd(b)

    def input_field(self, field) -> int:
        b = self.builder
        name = self.string(field.name)
        embedding = self.string(field.embedding)
        InputField.InputFieldStart(b)
        InputField.InputFieldAddName(b, name)
        InputField.InputFieldAddKind(b, _enum(FieldKind.FieldKind, field.kind))
        InputField.InputFieldAddIds(b, _enum(IdSpace.IdSpace, field.ids))
        if embedding:
            InputField.InputFieldAddEmbedding(b, embedding)
        InputField.InputFieldAddVocabularySize(b, int(field.vocabulary_size))
        InputField.InputFieldAddMaxLength(b, int(field.max_length))
        InputField.InputFieldAddPooling(b, _enum(Pooling.Pooling, field.pooling))
        InputField.InputFieldAddMeanEpsilon(b, float(field.mean_epsilon))
        InputField.InputFieldAddPaddingRow(b, int(field.padding_row))
        InputField.InputFieldAddWidth(b, int(field.width))
        return InputField.InputFieldEnd(b)

    def dense_layers(self, layers) -> List[int]:
        b = self.builder
        layer_offsets = []
        for layer in layers:
            weight, bias = self.string(layer.weight), self.string(layer.bias)
            DenseLayer.DenseLayerStart(b)
            DenseLayer.DenseLayerAddWeight(b, weight)
            if bias:
                DenseLayer.DenseLayerAddBias(b, bias)
            DenseLayer.DenseLayerAddActivation(b, _enum(Activation.Activation, layer.activation))
            layer_offsets.append(DenseLayer.DenseLayerEnd(b))
        return layer_offsets

    def tower(self, tower: TowerSpec) -> int:
        b = self.builder
        inputs = self.table_vector(Tower.TowerStartInputsVector, [self.input_field(f) for f in tower.inputs])
        layers = self.table_vector(Tower.TowerStartLayersVector, self.dense_layers(tower.layers))
        Tower.TowerStart(b)
        Tower.TowerAddInputs(b, inputs)
        Tower.TowerAddLayers(b, layers)
        Tower.TowerAddL2Normalize(b, bool(tower.l2_normalize))
        Tower.TowerAddTemperature(b, float(tower.temperature))
        return Tower.TowerEnd(b)

    def transformer_layer(self, layer: TransformerLayerSpec) -> int:
        b = self.builder
        parts = ("query_weight", "query_bias", "key_weight", "key_bias", "value_weight", "value_bias",
                 "output_weight", "output_bias", "attention_norm_weight", "attention_norm_bias", "inner_weight",
                 "inner_bias", "outer_weight", "outer_bias", "feed_forward_norm_weight", "feed_forward_norm_bias")
        names = {part: self.string(getattr(layer, part)) for part in parts}
        TransformerLayer.TransformerLayerStart(b)
        for part in parts:
            if names[part]:
                adder = "TransformerLayerAdd" + "".join(word.capitalize() for word in part.split("_"))
                getattr(TransformerLayer, adder)(b, names[part])
        return TransformerLayer.TransformerLayerEnd(b)

    def sasrec_config(self, config: SasRecConfigSpec) -> int:
        b = self.builder
        layers = self.table_vector(SasRecConfig.SasRecConfigStartLayersVector,
                                   [self.transformer_layer(layer) for layer in config.layers])
        strings = {name: self.string(getattr(config, name))
                   for name in ("variant", "history_field", "item_embedding", "position_embedding",
                                "embedding_norm_weight", "embedding_norm_bias", "final_norm_weight",
                                "final_norm_bias")}
        S = SasRecConfig
        S.SasRecConfigStart(b)
        S.SasRecConfigAddVariant(b, strings["variant"])
        S.SasRecConfigAddHistoryField(b, strings["history_field"])
        S.SasRecConfigAddItemEmbedding(b, strings["item_embedding"])
        S.SasRecConfigAddPositionEmbedding(b, strings["position_embedding"])
        S.SasRecConfigAddMaxLength(b, int(config.max_length))
        S.SasRecConfigAddHiddenSize(b, int(config.hidden_size))
        S.SasRecConfigAddHeads(b, int(config.heads))
        S.SasRecConfigAddInnerSize(b, int(config.inner_size))
        S.SasRecConfigAddActivation(b, _enum(Activation.Activation, config.activation))
        S.SasRecConfigAddLayerNormEpsilon(b, float(config.layer_norm_epsilon))
        S.SasRecConfigAddEmbeddingScale(b, float(config.embedding_scale))
        S.SasRecConfigAddPaddingRow(b, int(config.padding_row))
        S.SasRecConfigAddPaddingSide(b, _enum(PaddingSide.PaddingSide, config.padding_side))
        S.SasRecConfigAddPositionOffset(b, int(config.position_offset))
        S.SasRecConfigAddPadsUsePositionZero(b, bool(config.pads_use_position_zero))
        if strings["embedding_norm_weight"]:
            S.SasRecConfigAddEmbeddingNormWeight(b, strings["embedding_norm_weight"])
            S.SasRecConfigAddEmbeddingNormBias(b, strings["embedding_norm_bias"])
        S.SasRecConfigAddMaskPaddingKeys(b, bool(config.mask_padding_keys))
        S.SasRecConfigAddMaskValue(b, float(config.mask_value))
        S.SasRecConfigAddZeroPaddingRows(b, bool(config.zero_padding_rows))
        S.SasRecConfigAddBlockStyle(b, _enum(SasRecBlockStyle.SasRecBlockStyle, config.block_style))
        S.SasRecConfigAddLayers(b, layers)
        if strings["final_norm_weight"]:
            S.SasRecConfigAddFinalNormWeight(b, strings["final_norm_weight"])
            S.SasRecConfigAddFinalNormBias(b, strings["final_norm_bias"])
        return S.SasRecConfigEnd(b)

    def mind_config(self, config: MindConfigSpec) -> int:
        b = self.builder
        history = self.table_vector(MindConfig.MindConfigStartHistoryFieldsVector,
                                    [self.input_field(f) for f in config.history_fields])
        users = self.table_vector(MindConfig.MindConfigStartUserFieldsVector,
                                  [self.input_field(f) for f in config.user_fields])
        head = self.table_vector(MindConfig.MindConfigStartHeadLayersVector, self.dense_layers(config.head_layers))
        strings = {name: self.string(getattr(config, name))
                   for name in ("variant", "bilinear_weight", "initial_logits", "item_embedding")}
        M = MindConfig
        M.MindConfigStart(b)
        M.MindConfigAddVariant(b, strings["variant"])
        M.MindConfigAddHistoryFields(b, history)
        M.MindConfigAddBehaviourCombine(b, _enum(BehaviourCombine.BehaviourCombine, config.behaviour_combine))
        M.MindConfigAddPaddingSide(b, _enum(PaddingSide.PaddingSide, config.padding_side))
        M.MindConfigAddMaxLength(b, int(config.max_length))
        M.MindConfigAddHiddenSize(b, int(config.hidden_size))
        M.MindConfigAddBilinearWeight(b, strings["bilinear_weight"])
        M.MindConfigAddInterests(b, int(config.interests))
        M.MindConfigAddRoutingIterations(b, int(config.routing_iterations))
        M.MindConfigAddInitialLogits(b, strings["initial_logits"])
        M.MindConfigAddRoutingSoftmax(b, _enum(RoutingSoftmax.RoutingSoftmax, config.routing_softmax))
        M.MindConfigAddRoutingPadding(b, _enum(RoutingPadding.RoutingPadding, config.routing_padding))
        M.MindConfigAddPadLogit(b, float(config.pad_logit))
        M.MindConfigAddSquashEpsilon(b, float(config.squash_epsilon))
        M.MindConfigAddDynamicInterests(b, bool(config.dynamic_interests))
        M.MindConfigAddInactiveLogit(b, float(config.inactive_logit))
        M.MindConfigAddMaskInactiveInterests(b, bool(config.mask_inactive_interests))
        M.MindConfigAddUpdateLogitsOnLastIteration(b, bool(config.update_logits_on_last_iteration))
        M.MindConfigAddUserFields(b, users)
        M.MindConfigAddHeadLayers(b, head)
        M.MindConfigAddHeadL2Normalize(b, bool(config.head_l2_normalize))
        M.MindConfigAddLabelAttentionPower(b, float(config.label_attention_power))
        M.MindConfigAddItemEmbedding(b, strings["item_embedding"])
        M.MindConfigAddNormalizeItems(b, bool(config.normalize_items))
        return M.MindConfigEnd(b)

    def sdm_config(self, config: SdmConfigSpec) -> int:
        b = self.builder
        S = SdmConfig
        users = self.table_vector(S.SdmConfigStartUserFieldsVector, [self.input_field(f) for f in config.user_fields])
        short = self.table_vector(S.SdmConfigStartShortFieldsVector,
                                  [self.input_field(f) for f in config.short_fields])
        long = self.table_vector(S.SdmConfigStartLongFieldsVector, [self.input_field(f) for f in config.long_fields])
        attention_weights = self.table_vector(S.SdmConfigStartLongAttentionWeightsVector,
                                              [self.string(n) for n in config.long_attention_weights])
        attention_biases = self.table_vector(S.SdmConfigStartLongAttentionBiasesVector,
                                             [self.string(n) for n in config.long_attention_biases])
        names = ("variant", "profile_weight", "profile_bias", "long_output_weight", "long_output_bias",
                 "short_input_weight", "short_input_bias", "lstm_input_weight", "lstm_recurrent_weight", "lstm_bias",
                 "attention_qkv_weight", "attention_output_weight", "attention_norm_weight", "attention_norm_bias",
                 "user_attention_weight", "user_attention_bias", "gate_weight", "gate_bias", "item_embedding")
        strings = {name: self.string(getattr(config, name)) for name in names}
        S.SdmConfigStart(b)
        for name in names:
            if strings[name]:
                getattr(S, "SdmConfigAdd" + "".join(w.capitalize() for w in name.split("_")))(b, strings[name])
        S.SdmConfigAddUnits(b, int(config.units))
        S.SdmConfigAddUserFields(b, users)
        S.SdmConfigAddShortFields(b, short)
        S.SdmConfigAddLongFields(b, long)
        S.SdmConfigAddShortLength(b, int(config.short_length))
        S.SdmConfigAddLongLength(b, int(config.long_length))
        S.SdmConfigAddLongAttentionWeights(b, attention_weights)
        if config.long_attention_biases:
            S.SdmConfigAddLongAttentionBiases(b, attention_biases)
        S.SdmConfigAddLstmGateOrder(b, _enum(LstmGateOrder.LstmGateOrder, config.lstm_gate_order))
        S.SdmConfigAddLstmForgetBias(b, float(config.lstm_forget_bias))
        S.SdmConfigAddLstmLayers(b, int(config.lstm_layers))
        S.SdmConfigAddAttentionHeads(b, int(config.attention_heads))
        S.SdmConfigAddAttentionMaskValue(b, float(config.attention_mask_value))
        S.SdmConfigAddAttentionNormEpsilon(b, float(config.attention_norm_epsilon))
        S.SdmConfigAddNormalizeItems(b, bool(config.normalize_items))
        return S.SdmConfigEnd(b)

    def config(self, config) -> (int, int):
        b = self.builder
        if isinstance(config, MindConfigSpec):
            return ArchitectureConfig.ArchitectureConfig.MindConfig, self.mind_config(config)
        if isinstance(config, SdmConfigSpec):
            return ArchitectureConfig.ArchitectureConfig.SdmConfig, self.sdm_config(config)
        if isinstance(config, SasRecConfigSpec):
            return ArchitectureConfig.ArchitectureConfig.SasRecConfig, self.sasrec_config(config)
        if isinstance(config, DssmConfigSpec):
            user, item = self.tower(config.user_tower), self.tower(config.item_tower)
            DssmConfig.DssmConfigStart(b)
            DssmConfig.DssmConfigAddUserTower(b, user)
            DssmConfig.DssmConfigAddItemTower(b, item)
            return ArchitectureConfig.ArchitectureConfig.DssmConfig, DssmConfig.DssmConfigEnd(b)
        if isinstance(config, YoutubeDnnConfigSpec):
            user, table = self.tower(config.user_tower), self.string(config.item_embedding)
            YoutubeDnnConfig.YoutubeDnnConfigStart(b)
            YoutubeDnnConfig.YoutubeDnnConfigAddUserTower(b, user)
            YoutubeDnnConfig.YoutubeDnnConfigAddItemEmbedding(b, table)
            YoutubeDnnConfig.YoutubeDnnConfigAddNormalizeItems(b, bool(config.normalize_items))
            return ArchitectureConfig.ArchitectureConfig.YoutubeDnnConfig, YoutubeDnnConfig.YoutubeDnnConfigEnd(b)
        if isinstance(config, FmTwoTowerConfigSpec):
            def fm_fields(fields):
                offsets = []
                for fm_field in fields:
                    field, linear = self.input_field(fm_field.field), self.string(fm_field.linear)
                    FmField.FmFieldStart(b)
                    FmField.FmFieldAddField(b, field)
                    if linear:
                        FmField.FmFieldAddLinear(b, linear)
                    offsets.append(FmField.FmFieldEnd(b))
                return offsets
            user = self.table_vector(FmTwoTowerConfig.FmTwoTowerConfigStartUserFieldsVector,
                                     fm_fields(config.user_fields))
            item = self.table_vector(FmTwoTowerConfig.FmTwoTowerConfigStartItemFieldsVector,
                                     fm_fields(config.item_fields))
            FmTwoTowerConfig.FmTwoTowerConfigStart(b)
            FmTwoTowerConfig.FmTwoTowerConfigAddUserFields(b, user)
            FmTwoTowerConfig.FmTwoTowerConfigAddItemFields(b, item)
            FmTwoTowerConfig.FmTwoTowerConfigAddEmbeddingDim(b, int(config.embedding_dim))
            return ArchitectureConfig.ArchitectureConfig.FmTwoTowerConfig, FmTwoTowerConfig.FmTwoTowerConfigEnd(b)
        raise ConversionError(f"unknown architecture config {type(config).__name__}")

    def catalogue(self) -> int:
        catalogue = self.description.catalogue
        if catalogue is None:
            return 0
        b = self.builder
        external_ids = self.numbers(catalogue.external_ids, np.int64)
        item_rows = self.numbers(catalogue.item_rows, np.uint32)
        order = self.numbers(catalogue.order_by_external_id, np.uint32)
        feature_values = self.string(catalogue.feature_values)
        item_vectors = self.string(catalogue.item_vectors)
        ItemCatalogue.ItemCatalogueStart(b)
        ItemCatalogue.ItemCatalogueAddExternalIds(b, external_ids)
        ItemCatalogue.ItemCatalogueAddItemRows(b, item_rows)
        ItemCatalogue.ItemCatalogueAddOrderByExternalId(b, order)
        if feature_values:
            ItemCatalogue.ItemCatalogueAddFeatureValues(b, feature_values)
        if item_vectors:
            ItemCatalogue.ItemCatalogueAddItemVectors(b, item_vectors)
        return ItemCatalogue.ItemCatalogueEnd(b)

    def self_test(self) -> int:
        b = self.builder
        samples = []
        for sample in self.description.self_test:
            inputs = []
            for value in sample.inputs:
                name = self.string(value.field)
                ids = self.numbers(value.ids, np.int64) if value.ids is not None else 0
                values = self.numbers(value.values, np.float32) if value.values is not None else 0
                FieldValue.FieldValueStart(b)
                FieldValue.FieldValueAddField(b, name)
                if value.ids is not None:
                    FieldValue.FieldValueAddIds(b, ids)
                if value.values is not None:
                    FieldValue.FieldValueAddValues(b, values)
                inputs.append(FieldValue.FieldValueEnd(b))
            inputs_vector = self.table_vector(SelfTestSample.SelfTestSampleStartInputsVector, inputs)
            expected = self.numbers(sample.expected, np.float32)
            SelfTestSample.SelfTestSampleStart(b)
            SelfTestSample.SelfTestSampleAddTarget(b, _enum(SelfTestTarget.SelfTestTarget, sample.target))
            SelfTestSample.SelfTestSampleAddInputs(b, inputs_vector)
            SelfTestSample.SelfTestSampleAddItemId(b, int(sample.item_id))
            SelfTestSample.SelfTestSampleAddExpected(b, expected)
            SelfTestSample.SelfTestSampleAddTolerance(b, float(sample.tolerance))
            samples.append(SelfTestSample.SelfTestSampleEnd(b))
        return self.table_vector(Model.ModelStartSelfTestVector, samples)

    def metadata(self) -> int:
        b = self.builder
        entries = []
        for key, value in self.description.metadata:
            key_offset, value_offset = self.string(key), self.string(value)
            KeyValue.KeyValueStart(b)
            KeyValue.KeyValueAddKey(b, key_offset)
            KeyValue.KeyValueAddValue(b, value_offset)
            entries.append(KeyValue.KeyValueEnd(b))
        return self.table_vector(Model.ModelStartMetadataVector, entries)

    def model(self) -> bytes:
        description = self.description
        names = [t.name for t in description.tensors]
        if len(set(names)) != len(names):
            raise ConversionError("two tensors share a name")
        # tensors first: their big aligned blocks end up at the back of the file, tables in front
        tensors = self.table_vector(Model.ModelStartTensorsVector, [self.tensor(t) for t in description.tensors])
        config_type, config = self.config(description.config)
        catalogue = self.catalogue()
        self_test = self.self_test()
        metadata = self.metadata()
        producer = self.string(description.producer)
        b = self.builder
        Model.ModelStart(b)
        Model.ModelAddFormatMajor(b, FORMAT_MAJOR)
        Model.ModelAddFormatMinor(b, FORMAT_MINOR)
        Model.ModelAddProducer(b, producer)
        Model.ModelAddArchitecture(b, _enum(Architecture.Architecture, description.architecture))
        Model.ModelAddConfigType(b, config_type)
        Model.ModelAddConfig(b, config)
        Model.ModelAddTensors(b, tensors)
        if catalogue:
            Model.ModelAddCatalogue(b, catalogue)
        Model.ModelAddSelfTest(b, self_test)
        Model.ModelAddMetadata(b, metadata)
        b.Finish(Model.ModelEnd(b), file_identifier=FILE_IDENTIFIER)
        output = bytes(b.Output())
        if len(output) % DATA_ALIGNMENT:
            raise ConversionError("internal: the finished buffer lost its 64-byte alignment")
        return output


def model_bytes(description: ModelDescription) -> bytes:
    """The model file's bytes."""
    return _Writer(description).model()


def write_model(description: ModelDescription, path: str) -> int:
    """Writes the model file; returns its size in bytes."""
    data = model_bytes(description)
    with open(path, "wb") as file:
        file.write(data)
    return len(data)


__all__ = ["model_bytes", "write_model", "FILE_IDENTIFIER"]
