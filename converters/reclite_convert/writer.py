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
from reclite.fbs import (Activation, Architecture, ArchitectureConfig, DenseLayer, DssmConfig, DType, FieldKind,
                         FieldValue, FmField, FmTwoTowerConfig, IdSpace, InputField, ItemCatalogue, KeyValue, Model,
                         Pooling, SelfTestSample, SelfTestTarget, Tensor, Tower, YoutubeDnnConfig)
from reclite_convert.errors import ConversionError
from reclite_convert.model_spec import (DssmConfigSpec, FmTwoTowerConfigSpec, ModelDescription, TensorData,
                                        TowerSpec, YoutubeDnnConfigSpec)

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

    def tower(self, tower: TowerSpec) -> int:
        b = self.builder
        inputs = self.table_vector(Tower.TowerStartInputsVector, [self.input_field(f) for f in tower.inputs])
        layer_offsets = []
        for layer in tower.layers:
            weight, bias = self.string(layer.weight), self.string(layer.bias)
            DenseLayer.DenseLayerStart(b)
            DenseLayer.DenseLayerAddWeight(b, weight)
            if bias:
                DenseLayer.DenseLayerAddBias(b, bias)
            DenseLayer.DenseLayerAddActivation(b, _enum(Activation.Activation, layer.activation))
            layer_offsets.append(DenseLayer.DenseLayerEnd(b))
        layers = self.table_vector(Tower.TowerStartLayersVector, layer_offsets)
        Tower.TowerStart(b)
        Tower.TowerAddInputs(b, inputs)
        Tower.TowerAddLayers(b, layers)
        Tower.TowerAddL2Normalize(b, bool(tower.l2_normalize))
        Tower.TowerAddTemperature(b, float(tower.temperature))
        return Tower.TowerEnd(b)

    def config(self, config) -> (int, int):
        b = self.builder
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
