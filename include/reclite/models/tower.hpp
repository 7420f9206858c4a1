// Tower: the shared body of two-tower models. Input = concatenation over the tower's fields, in order:
// categorical -> its embedding row; history -> pooled embedding of its most recent max_length ids; dense -> its
// values. Then dense layers y = act(W x + b) with W [out, in] (BatchNorm folded by the converter), then optional
// L2 normalisation (x / max(||x||, 1e-12), as torch.nn.functional.normalize) and division by the temperature.
//
// `build` checks everything the file declares against the tensors (shapes, dtypes, ranges), so that `evaluate`,
// given a request that passed `check`, cannot read out of bounds. Pooling follows the converter's reference
// modules (converters/reclite_convert/modules): mean = sum / (count + mean_epsilon); an empty history gives zeros;
// mean_over_window averages padding rows in, over max_length slots.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "reclite/core/config.hpp"
#include "reclite/core/result.hpp"
#include "reclite/core/span.hpp"
#include "reclite/format/model_file.hpp"
#include "reclite/models/catalogue.hpp"
#include "reclite/models/request.hpp"
#include "reclite/ops/activation.hpp"
#include "reclite/ops/axpy.hpp"
#include "reclite/ops/embedding.hpp"
#include "reclite/ops/gemv.hpp"
#include "reclite/ops/l2_normalize.hpp"

RECLITE_BEGIN_NAMESPACE
namespace models {

// An input field resolved against its tensors.
struct ResolvedField {
  const format::InputFieldConfig* config = nullptr;
  const float* table = nullptr;  // [rows, dim]; null for dense fields
  std::size_t rows = 0;
  std::size_t dim = 0;     // width of this field's contribution to the tower input
  std::size_t offset = 0;  // where the contribution starts in the tower input
};

// Resolves `field` (of a tower or FM side called `where`) against the file. The embedding table must have
// vocabulary_size rows; item-id fields must cover every catalogue row.
inline Result<ResolvedField> resolve_field(const format::ModelFile& file, const format::InputFieldConfig& field,
                                           const std::string& where, const Catalogue* catalogue) {
  ResolvedField resolved;
  resolved.config = &field;
  const std::string role = where + " field '" + field.name + "'";
  auto invalid = [&](const std::string& what) { return fail(ErrorCode::invalid_config, file.name() + ": " + role + ": " + what); };
  if (field.kind == format::FieldKind::dense) {
    if (field.width == 0 || field.width > (1u << 20)) return invalid("dense width must be in [1, 2^20]");
    resolved.dim = field.width;
    return resolved;
  }
  if (field.vocabulary_size <= 0 || field.vocabulary_size > (std::int64_t{1} << 32))
    return invalid("vocabulary_size must be in [1, 2^32], got " + std::to_string(field.vocabulary_size));
  auto table = file.tensor(field.embedding, role + " embedding", format::DType::f32, {field.vocabulary_size, -1});
  RECLITE_TRY(table);
  resolved.table = (*table)->f32();
  resolved.rows = static_cast<std::size_t>(field.vocabulary_size);
  resolved.dim = static_cast<std::size_t>((*table)->shape[1]);
  if (resolved.dim == 0) return invalid("embedding width is 0");
  if (field.kind == format::FieldKind::history) {
    if (field.max_length == 0 || field.max_length > (1u << 16)) return invalid("max_length must be in [1, 65536]");
    if (field.padding_row < 0 || field.padding_row >= field.vocabulary_size)
      return invalid("padding_row " + std::to_string(field.padding_row) + " is outside the vocabulary");
    if (!(field.mean_epsilon >= 0.0f) || !std::isfinite(field.mean_epsilon)) return invalid("mean_epsilon must be finite and >= 0");
  }
  if (field.ids == format::IdSpace::item) {
    if (catalogue == nullptr || catalogue->size() == 0) return invalid("item ids need a catalogue");
    if (catalogue->max_row() >= resolved.rows)
      return fail(ErrorCode::invalid_item_catalogue, file.name() + ": catalogue row " + std::to_string(catalogue->max_row()) +
                                                         " is outside the " + std::to_string(resolved.rows) +
                                                         "-row table of " + role);
  }
  return resolved;
}

struct ResolvedLayer {
  const float* weight = nullptr;
  const float* bias = nullptr;
  std::size_t inputs = 0;
  std::size_t outputs = 0;
  ops::Activation activation = ops::Activation::none;
};

class Tower {
 public:
  static Result<Tower> build(const format::ModelFile& file, const format::TowerConfig& config, const std::string& where,
                             const Catalogue* catalogue) {
    Tower tower;
    tower.config_ = &config;
    tower.where_ = where;
    tower.catalogue_ = catalogue;
    if (config.inputs.empty()) return fail(ErrorCode::invalid_config, file.name() + ": " + where + " has no input fields");
    for (const auto& field : config.inputs) {
      auto resolved = resolve_field(file, field, where, catalogue);
      RECLITE_TRY(resolved);
      resolved->offset = tower.input_dim_;
      tower.input_dim_ += resolved->dim;
      if (field.kind == format::FieldKind::history)
        tower.max_history_ = std::max<std::size_t>(tower.max_history_, field.max_length);
      tower.fields_.push_back(*resolved);
    }
    std::size_t width = tower.input_dim_;
    tower.max_width_ = width;
    for (std::size_t i = 0; i < config.layers.size(); ++i) {
      const auto& layer = config.layers[i];
      const std::string role = where + ".layers[" + std::to_string(i) + "]";
      auto weight = file.tensor(layer.weight, role + ".weight", format::DType::f32, {-1, static_cast<std::int64_t>(width)});
      RECLITE_TRY(weight);
      ResolvedLayer resolved;
      resolved.weight = (*weight)->f32();
      resolved.inputs = width;
      resolved.outputs = static_cast<std::size_t>((*weight)->shape[0]);
      resolved.activation = layer.activation;
      if (resolved.outputs == 0) return fail(ErrorCode::tensor_shape, file.name() + ": " + role + ".weight has 0 rows");
      if (!layer.bias.empty()) {
        auto bias = file.tensor(layer.bias, role + ".bias", format::DType::f32, {static_cast<std::int64_t>(resolved.outputs)});
        RECLITE_TRY(bias);
        resolved.bias = (*bias)->f32();
      }
      width = resolved.outputs;
      tower.max_width_ = std::max(tower.max_width_, width);
      tower.layers_.push_back(resolved);
    }
    tower.output_dim_ = width;
    if (!(config.temperature > 0.0f) || !std::isfinite(config.temperature))
      return fail(ErrorCode::invalid_config, file.name() + ": " + where + ".temperature must be finite and > 0");
    return tower;
  }

  std::size_t input_dim() const noexcept { return input_dim_; }
  std::size_t output_dim() const noexcept { return output_dim_; }
  const std::vector<ResolvedField>& fields() const noexcept { return fields_; }
  // Floats of scratch `evaluate` needs: the input plus two ping-pong layer buffers.
  std::size_t workspace_floats() const noexcept { return input_dim_ + 2 * max_width_; }
  // Row indices of scratch `evaluate` needs for histories.
  std::size_t row_scratch_size() const noexcept { return std::max<std::size_t>(max_history_, 1); }

  // Checks a request once, on entering the session: field count, categorical ids in range, dense sizes and
  // finiteness. Histories never fail: unknown ids are skipped and counted (EncodeStats).
  Result<void> check(Span<const FieldInput> inputs) const {
    if (inputs.size() != fields_.size())
      return fail(ErrorCode::invalid_argument, where_ + ": expected " + std::to_string(fields_.size()) +
                                                   " fields in the request, got " + std::to_string(inputs.size()));
    for (std::size_t i = 0; i < fields_.size(); ++i) {
      const auto& field = *fields_[i].config;
      const FieldInput& input = inputs[i];
      // Built only on failure: a good request must not allocate.
      auto role = [&] { return where_ + " field '" + field.name + "'"; };
      switch (field.kind) {
        case format::FieldKind::categorical: {
          if (input.ids.size() != 1)
            return fail(ErrorCode::invalid_argument, role() + ": expected exactly 1 id, got " + std::to_string(input.ids.size()));
          if (lookup_row(fields_[i], input.ids[0]) < 0)
            return fail(ErrorCode::feature_out_of_vocabulary,
                        role() + ": " + (field.ids == format::IdSpace::item ? "item id " : "value ") +
                            std::to_string(input.ids[0]) +
                            (field.ids == format::IdSpace::item ? " is not in the catalogue"
                                                                : " is outside the vocabulary [0, " +
                                                                      std::to_string(field.vocabulary_size) + ")"));
          break;
        }
        case format::FieldKind::history:
          break;
        case format::FieldKind::dense: {
          if (input.values.size() != field.width)
            return fail(ErrorCode::invalid_argument, role() + ": expected " + std::to_string(field.width) + " values, got " +
                                                         std::to_string(input.values.size()));
          for (float value : input.values)
            if (!std::isfinite(value)) return fail(ErrorCode::non_finite_input, role() + ": NaN or infinite value");
          break;
        }
      }
    }
    return {};
  }

  // Evaluates a checked request into `output` [output_dim]. `workspace` has workspace_floats(), `rows` has
  // row_scratch_size() entries. Allocates nothing.
  void evaluate(Span<const FieldInput> inputs, float* output, float* workspace, std::uint32_t* rows,
                EncodeStats* stats) const noexcept {
    float* input = workspace;
    for (std::size_t i = 0; i < fields_.size(); ++i) {
      const ResolvedField& field = fields_[i];
      float* slot = input + field.offset;
      switch (field.config->kind) {
        case format::FieldKind::categorical: {
          const auto row = static_cast<std::size_t>(lookup_row(field, inputs[i].ids[0]));
          std::copy(field.table + row * field.dim, field.table + (row + 1) * field.dim, slot);
          break;
        }
        case format::FieldKind::history:
          pool_history(field, inputs[i].ids, slot, rows, stats);
          break;
        case format::FieldKind::dense:
          std::copy(inputs[i].values.begin(), inputs[i].values.end(), slot);
          break;
      }
    }
    const float* current = input;
    float* buffers[2] = {workspace + input_dim_, workspace + input_dim_ + max_width_};
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      const ResolvedLayer& layer = layers_[l];
      float* next = buffers[l % 2];
      ops::gemv(layer.weight, current, layer.bias, next, layer.outputs, layer.inputs, layer.activation);
      current = next;
    }
    finish(current, output);
  }

  // Normalisation and temperature, shared with towers whose body is a table row.
  void finish(const float* values, float* output) const noexcept {
    if (config_->l2_normalize)
      ops::l2_normalize(values, output, output_dim_);
    else if (values != output)
      std::copy(values, values + output_dim_, output);
    if (config_->temperature != 1.0f)
      for (std::size_t i = 0; i < output_dim_; ++i) output[i] /= config_->temperature;  // divide, as PyTorch does
  }

  // Row of `id` in the field's table, or -1 when unknown / out of vocabulary.
  std::int64_t lookup_row(const ResolvedField& field, std::int64_t id) const noexcept {
    if (field.config->ids == format::IdSpace::item) {
      const std::int64_t entry = catalogue_->find_entry(id);
      return entry < 0 ? -1 : static_cast<std::int64_t>(catalogue_->row(static_cast<std::size_t>(entry)));
    }
    return id >= 0 && id < field.config->vocabulary_size ? id : -1;
  }

 private:
  void pool_history(const ResolvedField& field, Span<const std::int64_t> ids, float* slot, std::uint32_t* rows,
                    EncodeStats* stats) const noexcept {
    const auto& config = *field.config;
    const std::size_t window = config.max_length;
    const std::size_t start = ids.size() > window ? ids.size() - window : 0;
    std::size_t kept = 0;
    std::size_t unknown = 0;
    std::size_t pads = 0;
    for (std::size_t t = start; t < ids.size(); ++t) {
      const std::int64_t row = lookup_row(field, ids[t]);
      if (row < 0) {
        ++unknown;
      } else if (row == config.padding_row) {
        ++pads;  // a padding id in the list is masked, as in training
      } else {
        rows[kept++] = static_cast<std::uint32_t>(row);
      }
    }
    if (stats != nullptr) {
      stats->history_ids_truncated += start;
      stats->history_ids_unknown += unknown;
      stats->history_ids_used += kept;
    }
    ops::sum_rows(field.table, field.dim, rows, kept, slot);
    switch (config.pooling) {
      case format::Pooling::sum:
        break;
      case format::Pooling::mean: {
        if (kept == 0) break;  // zeros, never 0/0
        const float divisor = static_cast<float>(kept) + config.mean_epsilon;
        for (std::size_t d = 0; d < field.dim; ++d) slot[d] /= divisor;
        break;
      }
      case format::Pooling::mean_over_window: {
        // Every slot of the window not holding a valid id holds the padding row.
        const std::size_t padding_slots = window - kept;
        const float* padding = field.table + static_cast<std::size_t>(config.padding_row) * field.dim;
        ops::axpy(static_cast<float>(padding_slots), padding, slot, field.dim);
        const float divisor = static_cast<float>(window);
        for (std::size_t d = 0; d < field.dim; ++d) slot[d] /= divisor;
        break;
      }
    }
  }

  const format::TowerConfig* config_ = nullptr;
  const Catalogue* catalogue_ = nullptr;
  std::string where_;
  std::vector<ResolvedField> fields_;
  std::vector<ResolvedLayer> layers_;
  std::size_t input_dim_ = 0;
  std::size_t output_dim_ = 0;
  std::size_t max_width_ = 0;
  std::size_t max_history_ = 0;
};

}  // namespace models
RECLITE_END_NAMESPACE
