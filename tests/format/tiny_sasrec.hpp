// Builds small SASRec model files in memory with the FlatBuffers C++ builder, in any public variant and
// optionally broken in one way, so the SASRec tests run without Python. Tensor names follow the converter's
// `reclite` layout (converters/reclite_convert/modules/sasrec.py): item_embedding.weight [items + 1, hidden] (row
// 0 = padding), position_embedding.weight, embedding_norm.*, layers.<l>.{query,key,value,output,inner,outer}.*,
// layers.<l>.{attention_norm,feed_forward_norm}.*, final_norm.*. Catalogue: external id 1000 + r at row r.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "reclite/core/checksum.hpp"
#include "reclite/format/model_generated.h"

namespace test {

// A variant's schema fields, as converters/reclite_convert/modules/sasrec.py VARIANTS spells them.
struct SasRecSpec {
  std::string variant = "recbole";
  reclite::fbs::SasRecBlockStyle block_style = reclite::fbs::SasRecBlockStyle::post_norm;
  reclite::fbs::PaddingSide padding_side = reclite::fbs::PaddingSide::right;
  bool scale_embeddings = false;
  std::uint32_t position_offset = 0;
  bool pads_use_position_zero = false;
  bool embedding_norm = true;
  bool mask_padding_keys = true;
  float mask_value = -10000.0f;
  bool zero_padding_rows = false;
  bool final_norm = false;
  reclite::fbs::Activation activation = reclite::fbs::Activation::gelu_erf;
  float layer_norm_epsilon = 1e-12f;
};

inline const std::vector<std::string>& sasrec_variants() {
  static const std::vector<std::string> names{"recbole",   "pmixer_v1",          "pmixer_v2",
                                              "pmixer_v3", "pmixer_v3_pre_norm", "torch_rechub"};
  return names;
}

inline SasRecSpec sasrec_spec(const std::string& variant) {
  namespace fbs = reclite::fbs;
  SasRecSpec spec;
  spec.variant = variant;
  if (variant == "recbole") return spec;
  // pmixer V1 / torch-rechub, then the differences of V2 and V3.
  spec.block_style = fbs::SasRecBlockStyle::query_norm;
  spec.padding_side = fbs::PaddingSide::left;
  spec.scale_embeddings = true;
  spec.embedding_norm = false;
  spec.mask_padding_keys = false;
  spec.mask_value = -std::numeric_limits<float>::infinity();
  spec.zero_padding_rows = true;
  spec.final_norm = true;
  spec.activation = fbs::Activation::relu;
  spec.layer_norm_epsilon = 1e-8f;
  if (variant == "pmixer_v1" || variant == "torch_rechub") return spec;
  spec.position_offset = 1;
  spec.pads_use_position_zero = true;
  spec.zero_padding_rows = false;
  if (variant == "pmixer_v3") spec.block_style = fbs::SasRecBlockStyle::post_norm;
  if (variant == "pmixer_v3_pre_norm") spec.block_style = fbs::SasRecBlockStyle::pre_norm;
  return spec;
}

struct TinySasRecOptions {
  SasRecSpec spec;
  std::uint32_t items = 40;  // catalogue entries; the item table has items + 1 rows
  std::uint32_t max_length = 8;
  std::uint32_t hidden = 16;
  std::uint32_t heads = 2;
  std::uint32_t inner = 24;
  std::uint32_t layers = 2;
  bool output_projection = true;
  unsigned seed = 7;
  float weight_std = 0.3f;
  std::uint32_t position_rows = 0;      // 0: max_length + position_offset
  std::string skip_tensor;              // leave this tensor out (the config still names it)
  std::string misshape_tensor;          // give this tensor one extra column
  bool catalogue_includes_padding = false;
};

struct TinySasRec {
  TinySasRecOptions options;
  std::map<std::string, std::vector<float>> tensors;
  std::vector<std::uint8_t> bytes;

  const std::vector<float>& tensor(const std::string& name) const { return tensors.at(name); }
  bool has(const std::string& name) const { return tensors.count(name) != 0; }
  std::size_t item_rows() const { return options.items + 1; }
  static std::int64_t external_id(std::size_t row) { return 1000 + static_cast<std::int64_t>(row); }
};

inline std::string sasrec_layer_tensor(std::size_t layer, const std::string& part) {
  return "layers." + std::to_string(layer) + "." + part;
}

inline TinySasRec build_tiny_sasrec(const TinySasRecOptions& options = {}) {
  namespace fbs = reclite::fbs;
  TinySasRec model;
  model.options = options;
  const SasRecSpec& spec = options.spec;
  const std::int64_t d = options.hidden;
  const std::int64_t inner = options.inner;
  const std::int64_t position_rows =
      options.position_rows != 0 ? options.position_rows : options.max_length + spec.position_offset;
  std::mt19937 generator(options.seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<std::pair<std::string, std::vector<std::int64_t>>> shapes;
  auto add = [&](const std::string& name, std::vector<std::int64_t> shape, float center, float spread) {
    std::size_t count = 1;
    for (auto extent : shape) count *= static_cast<std::size_t>(extent);
    std::vector<float> values(count);
    for (auto& value : values) value = center + spread * normal(generator);
    model.tensors[name] = values;
    shapes.emplace_back(name, shape);
  };
  const float w = options.weight_std;
  add("item_embedding.weight", {options.items + 1, d}, 0.0f, 1.0f);
  if (spec.variant != "recbole")  // pmixer zeros the padding row; RecBole's is random
    for (std::int64_t c = 0; c < d; ++c) model.tensors["item_embedding.weight"][static_cast<std::size_t>(c)] = 0.0f;
  add("position_embedding.weight", {position_rows, d}, 0.0f, 1.0f);
  if (spec.pads_use_position_zero)
    for (std::int64_t c = 0; c < d; ++c) model.tensors["position_embedding.weight"][static_cast<std::size_t>(c)] = 0.0f;
  if (spec.embedding_norm) {
    add("embedding_norm.weight", {d}, 1.0f, 0.1f);
    add("embedding_norm.bias", {d}, 0.0f, 0.1f);
  }
  for (std::uint32_t l = 0; l < options.layers; ++l) {
    for (const char* part : {"query", "key", "value", "output"}) {
      if (std::string(part) == "output" && !options.output_projection) continue;
      add(sasrec_layer_tensor(l, std::string(part) + ".weight"), {d, d}, 0.0f, w);
      add(sasrec_layer_tensor(l, std::string(part) + ".bias"), {d}, 0.0f, 0.1f);
    }
    add(sasrec_layer_tensor(l, "attention_norm.weight"), {d}, 1.0f, 0.1f);
    add(sasrec_layer_tensor(l, "attention_norm.bias"), {d}, 0.0f, 0.1f);
    add(sasrec_layer_tensor(l, "inner.weight"), {inner, d}, 0.0f, w);
    add(sasrec_layer_tensor(l, "inner.bias"), {inner}, 0.0f, 0.1f);
    add(sasrec_layer_tensor(l, "outer.weight"), {d, inner}, 0.0f, w);
    add(sasrec_layer_tensor(l, "outer.bias"), {d}, 0.0f, 0.1f);
    add(sasrec_layer_tensor(l, "feed_forward_norm.weight"), {d}, 1.0f, 0.1f);
    add(sasrec_layer_tensor(l, "feed_forward_norm.bias"), {d}, 0.0f, 0.1f);
  }
  if (spec.final_norm) {
    add("final_norm.weight", {d}, 1.0f, 0.1f);
    add("final_norm.bias", {d}, 0.0f, 0.1f);
  }

  flatbuffers::FlatBufferBuilder builder(1 << 16);
  std::vector<flatbuffers::Offset<fbs::Tensor>> tensors;
  for (auto& [name, shape] : shapes) {
    if (name == options.skip_tensor) continue;
    std::vector<float> values = model.tensors[name];
    std::vector<std::int64_t> stored_shape = shape;
    if (name == options.misshape_tensor) {
      stored_shape.back() += 1;
      std::size_t count = 1;
      for (auto extent : stored_shape) count *= static_cast<std::size_t>(extent);
      values.assign(count, 0.5f);
    }
    const std::size_t bytes = values.size() * sizeof(float);
    builder.ForceVectorAlignment(bytes, 1, 32);  // FlatBuffers C++ allows at most 32
    auto data = builder.CreateVector(reinterpret_cast<const std::uint8_t*>(values.data()), bytes);
    tensors.push_back(fbs::CreateTensor(builder, builder.CreateString(name), fbs::DType::f32,
                                        builder.CreateVector(stored_shape), data, 0,
                                        reclite::crc32(values.data(), bytes)));
  }
  auto tensor_vector = builder.CreateVector(tensors);
  auto named = [&](const std::string& name) { return builder.CreateString(name); };
  auto named_if = [&](const std::string& name) {
    return model.tensors.count(name) ? builder.CreateString(name) : flatbuffers::Offset<flatbuffers::String>();
  };
  std::vector<flatbuffers::Offset<fbs::TransformerLayer>> layers;
  for (std::uint32_t l = 0; l < options.layers; ++l) {
    auto t = [&](const std::string& part) { return named(sasrec_layer_tensor(l, part)); };
    auto t_if = [&](const std::string& part) { return named_if(sasrec_layer_tensor(l, part)); };
    layers.push_back(fbs::CreateTransformerLayer(
        builder, t("query.weight"), t("query.bias"), t("key.weight"), t("key.bias"), t("value.weight"), t("value.bias"),
        t_if("output.weight"), t_if("output.bias"), t("attention_norm.weight"), t("attention_norm.bias"),
        t("inner.weight"), t("inner.bias"), t("outer.weight"), t("outer.bias"), t("feed_forward_norm.weight"),
        t("feed_forward_norm.bias")));
  }
  auto layer_vector = builder.CreateVector(layers);
  const float scale = spec.scale_embeddings ? std::sqrt(static_cast<float>(options.hidden)) : 1.0f;
  auto config = fbs::CreateSasRecConfig(
      builder, named(spec.variant), named("history"), named("item_embedding.weight"), named("position_embedding.weight"),
      options.max_length, options.hidden, options.heads, options.inner, spec.activation, spec.layer_norm_epsilon, scale,
      0, spec.padding_side, spec.position_offset, spec.pads_use_position_zero, named_if("embedding_norm.weight"),
      named_if("embedding_norm.bias"), spec.mask_padding_keys, spec.mask_value, spec.zero_padding_rows,
      spec.block_style, layer_vector, named_if("final_norm.weight"), named_if("final_norm.bias"));

  std::vector<std::int64_t> external_ids;
  std::vector<std::uint32_t> rows;
  std::vector<std::uint32_t> order;
  const std::uint32_t first = options.catalogue_includes_padding ? 0 : 1;
  for (std::uint32_t row = first; row <= options.items; ++row) {
    order.push_back(static_cast<std::uint32_t>(external_ids.size()));
    external_ids.push_back(TinySasRec::external_id(row));
    rows.push_back(row);
  }
  auto catalogue = fbs::CreateItemCatalogue(builder, builder.CreateVector(external_ids), builder.CreateVector(rows),
                                            builder.CreateVector(order));
  fbs::ModelBuilder root(builder);
  root.add_format_major(1);
  root.add_format_minor(0);
  root.add_architecture(fbs::Architecture::sasrec);
  root.add_config_type(fbs::ArchitectureConfig::SasRecConfig);
  root.add_config(config.Union());
  root.add_tensors(tensor_vector);
  root.add_catalogue(catalogue);
  fbs::FinishModelBuffer(builder, root.Finish());
  model.bytes.assign(builder.GetBufferPointer(), builder.GetBufferPointer() + builder.GetSize());
  return model;
}

}  // namespace test
