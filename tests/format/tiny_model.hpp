// Builds small model files in memory with the FlatBuffers C++ builder, each optionally broken in one way, so
// loader tests can feed every kind of bad input without Python. The model: a YouTubeDNN user tower over
//   "age"      categorical, vocabulary 5, table "embedding.age" [5, 4]
//   "history"  history of item ids, max_length 3, mean pooling, table "embedding.item" [6, 4] (row 0 = padding)
//   "scores"   dense, width 2
// concatenated (10 values) -> "user.0" Linear 10 -> 4 with ReLU -> L2 normalisation; items are rows of
// "embedding.item"; catalogue: external ids 100..104 at rows 1..5. Weights are small deterministic values.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "reclite/core/checksum.hpp"
#include "reclite/format/model_generated.h"

namespace test {

struct TinyModelOptions {
  std::uint16_t format_major = 1;
  std::uint16_t format_minor = 0;
  reclite::fbs::Architecture architecture = reclite::fbs::Architecture::youtube_dnn;
  std::string skip_tensor;              // leave this tensor out
  std::string misshape_tensor;          // give this tensor one extra column (data sized to match)
  std::string corrupt_crc_tensor;       // store a wrong CRC for this tensor
  bool duplicate_external_id = false;   // two catalogue entries share an id
  bool catalogue_row_out_of_range = false;
  std::uint32_t history_max_length = 3;
  std::int64_t age_vocabulary = 5;      // the config's claim; the table keeps 5 rows
};

inline std::vector<float> tiny_values(std::size_t count, float seed) {
  std::vector<float> values(count);
  for (std::size_t i = 0; i < count; ++i) values[i] = 0.1f * static_cast<float>((i * 7 + static_cast<std::size_t>(seed * 13)) % 17) - 0.8f;
  return values;
}

struct TinyTensor {
  std::string name;
  std::vector<std::int64_t> shape;
  std::vector<float> values;
};

inline std::vector<TinyTensor> tiny_tensors() {
  return {{"embedding.age", {5, 4}, tiny_values(20, 1)},
          {"embedding.item", {6, 4}, tiny_values(24, 2)},
          {"user.0.weight", {4, 10}, tiny_values(40, 3)},
          {"user.0.bias", {4}, tiny_values(4, 4)}};
}

inline std::vector<std::uint8_t> build_tiny_model(const TinyModelOptions& options = {}) {
  namespace fbs = reclite::fbs;
  flatbuffers::FlatBufferBuilder builder(4096);
  builder.ForceDefaults(true);  // write format_major even when it equals the default, so tests can vary it
  std::vector<flatbuffers::Offset<fbs::Tensor>> tensors;
  for (TinyTensor tensor : tiny_tensors()) {
    if (tensor.name == options.skip_tensor) continue;
    if (tensor.name == options.misshape_tensor) {
      tensor.shape.back() += 1;
      std::size_t count = 1;
      for (auto extent : tensor.shape) count *= static_cast<std::size_t>(extent);
      tensor.values = tiny_values(count, 9);
    }
    const std::size_t bytes = tensor.values.size() * sizeof(float);
    std::uint32_t crc = reclite::crc32(tensor.values.data(), bytes);
    if (tensor.name == options.corrupt_crc_tensor) crc ^= 1u;
    builder.ForceVectorAlignment(bytes, 1, 32);  // FlatBuffers C++ allows at most 32
    auto data = builder.CreateVector(reinterpret_cast<const std::uint8_t*>(tensor.values.data()), bytes);
    auto shape = builder.CreateVector(tensor.shape);
    auto name = builder.CreateString(tensor.name);
    tensors.push_back(fbs::CreateTensor(builder, name, fbs::DType::f32, shape, data, 0, crc));
  }
  auto tensor_vector = builder.CreateVector(tensors);

  std::vector<flatbuffers::Offset<fbs::InputField>> fields;
  fields.push_back(fbs::CreateInputField(builder, builder.CreateString("age"), fbs::FieldKind::categorical,
                                         fbs::IdSpace::vocabulary, builder.CreateString("embedding.age"),
                                         options.age_vocabulary));
  fields.push_back(fbs::CreateInputField(builder, builder.CreateString("history"), fbs::FieldKind::history,
                                         fbs::IdSpace::item, builder.CreateString("embedding.item"), 6,
                                         options.history_max_length, fbs::Pooling::mean, 0.0f, 0));
  fields.push_back(fbs::CreateInputField(builder, builder.CreateString("scores"), fbs::FieldKind::dense,
                                         fbs::IdSpace::vocabulary, 0, 0, 0, fbs::Pooling::mean, 0.0f, 0, 2));
  std::vector<flatbuffers::Offset<fbs::DenseLayer>> layers{
      fbs::CreateDenseLayer(builder, builder.CreateString("user.0.weight"), builder.CreateString("user.0.bias"),
                            fbs::Activation::relu)};
  auto tower = fbs::CreateTower(builder, builder.CreateVector(fields), builder.CreateVector(layers), true, 1.0f);
  auto config = fbs::CreateYoutubeDnnConfig(builder, tower, builder.CreateString("embedding.item"), false);

  std::vector<std::int64_t> external_ids{100, 101, 102, 103, 104};
  if (options.duplicate_external_id) external_ids[3] = 102;
  std::vector<std::uint32_t> rows{1, 2, 3, 4, options.catalogue_row_out_of_range ? 6u : 5u};
  std::vector<std::uint32_t> order{0, 1, 2, 3, 4};
  auto catalogue = fbs::CreateItemCatalogue(builder, builder.CreateVector(external_ids), builder.CreateVector(rows),
                                            builder.CreateVector(order));
  fbs::ModelBuilder model(builder);
  model.add_format_major(options.format_major);
  model.add_format_minor(options.format_minor);
  model.add_architecture(options.architecture);
  model.add_config_type(fbs::ArchitectureConfig::YoutubeDnnConfig);
  model.add_config(config.Union());
  model.add_tensors(tensor_vector);
  model.add_catalogue(catalogue);
  auto root = model.Finish();
  fbs::FinishModelBuffer(builder, root);
  return std::vector<std::uint8_t>(builder.GetBufferPointer(), builder.GetBufferPointer() + builder.GetSize());
}

// A copy of `bytes` in 64-byte aligned storage (model buffers must be 8-byte aligned; tensor data 64).
struct AlignedBuffer {
  explicit AlignedBuffer(const std::vector<std::uint8_t>& bytes) : storage((bytes.size() + 127) / 64 + 1) {
    if (!bytes.empty()) std::memcpy(data(), bytes.data(), bytes.size());  // memcpy from null is UB even for 0 bytes
    size = bytes.size();
  }
  struct alignas(64) Block { std::uint8_t bytes[64]; };
  std::vector<Block> storage;
  std::size_t size = 0;
  std::uint8_t* data() { return storage.front().bytes; }
};

}  // namespace test
