// Plain C++ descriptions of what a model file declares: architecture, towers, fields, layers, catalogue.
// format/ translates the FlatBuffers tables into these once, at load; nothing above format/ sees fbs:: types,
// so the schema can evolve behind one gate. Strings are copies (small); tensor data stays in the mapped file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "reclite/core/config.hpp"
#include "reclite/ops/activation.hpp"

RECLITE_BEGIN_NAMESPACE
namespace format {

enum class Architecture : std::uint16_t { unknown = 0, dssm = 1, youtube_dnn = 2, fm_two_tower = 3, sasrec = 4, mind = 5, sdm = 6 };

constexpr const char* architecture_name(Architecture architecture) noexcept {
  switch (architecture) {
    case Architecture::dssm: return "dssm";
    case Architecture::youtube_dnn: return "youtube_dnn";
    case Architecture::fm_two_tower: return "fm_two_tower";
    case Architecture::sasrec: return "sasrec";
    case Architecture::mind: return "mind";
    case Architecture::sdm: return "sdm";
    case Architecture::unknown: break;
  }
  return "unknown";
}

enum class DType : std::uint8_t { f32 = 0, f16 = 1, i8_row_scaled = 2, i32 = 3, i64 = 4 };

constexpr const char* dtype_name(DType dtype) noexcept {
  switch (dtype) {
    case DType::f32: return "f32";
    case DType::f16: return "f16";
    case DType::i8_row_scaled: return "i8_row_scaled";
    case DType::i32: return "i32";
    case DType::i64: return "i64";
  }
  return "unknown";
}

constexpr std::size_t dtype_size(DType dtype) noexcept {
  switch (dtype) {
    case DType::f32: return 4;
    case DType::f16: return 2;
    case DType::i8_row_scaled: return 1;
    case DType::i32: return 4;
    case DType::i64: return 8;
  }
  return 0;
}

// ops::Activation's values equal reclite.fbs.Activation's, so the file's value converts directly.
using ops::Activation;

constexpr const char* activation_name(Activation activation) noexcept {
  switch (activation) {
    case Activation::none: return "none";
    case Activation::relu: return "relu";
    case Activation::tanh: return "tanh";
    case Activation::sigmoid: return "sigmoid";
    case Activation::gelu_erf: return "gelu_erf";
  }
  return "unknown";
}

enum class IdSpace : std::uint8_t { vocabulary = 0, item = 1 };
enum class FieldKind : std::uint8_t { categorical = 0, history = 1, dense = 2 };
enum class Pooling : std::uint8_t { sum = 0, mean = 1, mean_over_window = 2 };

constexpr const char* field_kind_name(FieldKind kind) noexcept {
  return kind == FieldKind::categorical ? "categorical" : kind == FieldKind::history ? "history" : "dense";
}
constexpr const char* pooling_name(Pooling pooling) noexcept {
  return pooling == Pooling::sum ? "sum" : pooling == Pooling::mean ? "mean" : "mean_over_window";
}

struct InputFieldConfig {
  std::string name;
  FieldKind kind = FieldKind::categorical;
  IdSpace ids = IdSpace::vocabulary;
  std::string embedding;  // tensor name; empty for dense fields
  std::int64_t vocabulary_size = 0;
  std::uint32_t max_length = 0;
  Pooling pooling = Pooling::mean;
  float mean_epsilon = 0.0f;
  std::int64_t padding_row = 0;
  std::uint32_t width = 0;
};

struct DenseLayerConfig {
  std::string weight;
  std::string bias;  // empty: no bias
  Activation activation = Activation::none;
};

struct TowerConfig {
  std::vector<InputFieldConfig> inputs;
  std::vector<DenseLayerConfig> layers;
  bool l2_normalize = false;
  float temperature = 1.0f;
};

struct DssmConfig {
  TowerConfig user_tower;
  TowerConfig item_tower;
};

struct YoutubeDnnConfig {
  TowerConfig user_tower;
  std::string item_embedding;
  bool normalize_items = false;
};

struct FmFieldConfig {
  InputFieldConfig field;
  std::string linear;  // tensor name of first-order weights [V]; item fields only
};

struct FmTwoTowerConfig {
  std::vector<FmFieldConfig> user_fields;
  std::vector<FmFieldConfig> item_fields;
  std::uint32_t embedding_dim = 0;
};

// SASRec (schemas/model.fbs SasRecConfig, TransformerLayer): every public variant, spelled out by these fields.
enum class SasRecBlockStyle : std::uint8_t { post_norm = 0, query_norm = 1, pre_norm = 2 };
enum class PaddingSide : std::uint8_t { right = 0, left = 1 };

constexpr const char* block_style_name(SasRecBlockStyle style) noexcept {
  return style == SasRecBlockStyle::post_norm ? "post_norm" : style == SasRecBlockStyle::query_norm ? "query_norm" : "pre_norm";
}
constexpr const char* padding_side_name(PaddingSide side) noexcept { return side == PaddingSide::right ? "right" : "left"; }

// Tensor names of one transformer block; empty means absent (an absent bias is zero, an absent output
// projection is the identity).
struct TransformerLayerConfig {
  std::string query_weight, query_bias;
  std::string key_weight, key_bias;
  std::string value_weight, value_bias;
  std::string output_weight, output_bias;
  std::string attention_norm_weight, attention_norm_bias;
  std::string inner_weight, inner_bias;
  std::string outer_weight, outer_bias;
  std::string feed_forward_norm_weight, feed_forward_norm_bias;
};

struct SasRecConfig {
  std::string variant;
  std::string history_field;
  std::string item_embedding;      // [item_rows, hidden]
  std::string position_embedding;  // [position_rows, hidden]
  std::uint32_t max_length = 0;
  std::uint32_t hidden_size = 0;
  std::uint32_t heads = 0;
  std::uint32_t inner_size = 0;
  Activation activation = Activation::relu;
  float layer_norm_epsilon = 1e-8f;
  float embedding_scale = 1.0f;
  std::int64_t padding_row = 0;
  PaddingSide padding_side = PaddingSide::right;
  std::uint32_t position_offset = 0;
  bool pads_use_position_zero = false;
  std::string embedding_norm_weight, embedding_norm_bias;
  bool mask_padding_keys = false;
  float mask_value = -10000.0f;
  bool zero_padding_rows = false;
  SasRecBlockStyle block_style = SasRecBlockStyle::post_norm;
  std::vector<TransformerLayerConfig> layers;
  std::string final_norm_weight, final_norm_bias;
};

// MIND (schemas/model.fbs MindConfig): every routing choice spelled out; models/mind.hpp gives the maths.
enum class RoutingSoftmax : std::uint8_t { over_behaviours = 0, over_capsules = 1 };
enum class RoutingPadding : std::uint8_t { logit_before_softmax = 0, zero_after_softmax = 1 };
enum class BehaviourCombine : std::uint8_t { item_only = 0, sum = 1, mean = 2 };

struct MindConfig {
  std::string variant;
  std::vector<InputFieldConfig> history_fields;  // the first is the item history
  BehaviourCombine behaviour_combine = BehaviourCombine::item_only;
  PaddingSide padding_side = PaddingSide::right;
  std::uint32_t max_length = 0;
  std::uint32_t hidden_size = 0;
  std::string bilinear_weight;  // [hidden, hidden], applied as W e
  std::uint32_t interests = 0;
  std::uint32_t routing_iterations = 3;
  std::string initial_logits;  // [interests, max_length]
  RoutingSoftmax routing_softmax = RoutingSoftmax::over_behaviours;
  RoutingPadding routing_padding = RoutingPadding::logit_before_softmax;
  float pad_logit = -4294967296.0f;
  float squash_epsilon = 1e-9f;
  bool dynamic_interests = true;
  float inactive_logit = -2147483648.0f;
  bool mask_inactive_interests = true;
  bool update_logits_on_last_iteration = false;
  std::vector<InputFieldConfig> user_fields;
  std::vector<DenseLayerConfig> head_layers;
  bool head_l2_normalize = false;
  float label_attention_power = 1.0f;
  std::string item_embedding;
  bool normalize_items = false;
};

// SDM (schemas/model.fbs SdmConfig), DeepMatch semantics; models/sdm.hpp gives the maths.
enum class LstmGateOrder : std::uint8_t { ifgo = 0, igfo = 1, ifco = 2 };

struct SdmConfig {
  std::string variant;
  std::uint32_t units = 0;
  std::vector<InputFieldConfig> user_fields;
  std::string profile_weight, profile_bias;
  std::vector<InputFieldConfig> short_fields;
  std::vector<InputFieldConfig> long_fields;
  std::uint32_t short_length = 0;
  std::uint32_t long_length = 0;
  std::vector<std::string> long_attention_weights;  // each [1, u + D_f]
  std::vector<std::string> long_attention_biases;   // empty or one per long field (an empty name: no bias)
  std::string long_output_weight, long_output_bias;
  std::string short_input_weight, short_input_bias;
  std::string lstm_input_weight, lstm_recurrent_weight, lstm_bias;
  LstmGateOrder lstm_gate_order = LstmGateOrder::ifgo;
  float lstm_forget_bias = 0.0f;
  std::uint32_t lstm_layers = 1;
  std::string attention_qkv_weight, attention_output_weight;
  std::uint32_t attention_heads = 4;
  float attention_mask_value = -4294967296.0f;
  std::string attention_norm_weight, attention_norm_bias;
  float attention_norm_epsilon = 1e-9f;
  std::string user_attention_weight, user_attention_bias;
  std::string gate_weight, gate_bias;
  std::string item_embedding;
  bool normalize_items = true;
};

// The catalogue, viewed in place. Pointers stay valid while the ModelFile lives.
struct CatalogueView {
  std::size_t count = 0;
  const std::int64_t* external_ids = nullptr;
  const std::uint32_t* item_rows = nullptr;  // nullptr: entry i is row i
  const std::uint32_t* order_by_external_id = nullptr;
  std::string feature_values;  // tensor name, may be empty
  std::string item_vectors;    // tensor name, may be empty

  std::uint32_t row_of_entry(std::size_t entry) const noexcept {
    return item_rows != nullptr ? item_rows[entry] : static_cast<std::uint32_t>(entry);
  }
};

struct FieldValueView {
  std::string field;
  std::vector<std::int64_t> ids;
  std::vector<float> values;
};

enum class SelfTestTarget : std::uint8_t { user_vector = 0, item_vector = 1 };

struct SelfTestSampleView {
  SelfTestTarget target = SelfTestTarget::user_vector;
  std::vector<FieldValueView> inputs;
  std::int64_t item_id = 0;
  std::vector<float> expected;
  float tolerance = 1e-5f;
};

}  // namespace format
RECLITE_END_NAMESPACE
