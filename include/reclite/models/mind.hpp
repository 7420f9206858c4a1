// MIND (Li et al. 2019): behaviour embeddings -> shared bilinear map -> B2I dynamic routing -> K interest
// capsules -> per-interest user head. Every choice the public implementations disagree on is a field of
// schemas/model.fbs MindConfig; /work/shared/reference/models.md §2 and converters/reclite_convert/modules/mind.py
// (the ground truth of the fixtures) give the maths, for one request in float32:
//
//   window     each history field keeps its most recent max_length ids (all fields of a request have the same
//              length); n = that count; right padding: valid slots 0..n-1, left: T-n..T-1; pads hold padding_row.
//   behaviour  e_t = item row (item_only), or the sum / mean of every history field's row (widths = hidden).
//   bilinear   ê_t = W e_t, W [hidden, hidden] (PyTorch layout).
//   K'         max(1, min(K, floor(log2(n + 1)))) when dynamic_interests, else K.
//   routing    b = copy of initial_logits [K, T]; per iteration L = b; inactive rows (k >= K') := inactive_logit
//              (dynamic_interests); then pad columns := pad_logit (logit_before_softmax: pads win); softmax of L
//              per capsule row (over_behaviours) or per behaviour column (over_capsules); pad weights := 0
//              (zero_after_softmax, no renormalisation); c_k = squash(sum_t w_kt ê_t) with
//              squash(z) = |z|^2/(1+|z|^2) z / sqrt(|z|^2 + eps); b += c ê^T except after the last iteration
//              (update_logits_on_last_iteration cannot change the output, so it is not evaluated).
//   head       h_k = head([user fields ; c_k]), then l2 normalisation (head_l2_normalize), then h_k = 0 for
//              k >= K' (dynamic_interests and mask_inactive_interests). The output is all K vectors [K, hidden].
//   label      for a known target e: p >= 100 picks the h_k with the largest h_k . e (ties to the lower k);
//              otherwise softmax_k((h_k . e)^p) weights the h_k. Inactive interests take no part.
//
// A request is: the history fields (MindConfig order, the item history first), then the user fields.
// The session's workspace is sized at build; encode_user allocates nothing.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "reclite/core/config.hpp"
#include "reclite/core/result.hpp"
#include "reclite/format/model_file.hpp"
#include "reclite/models/architecture.hpp"
#include "reclite/models/catalogue.hpp"
#include "reclite/models/history_window.hpp"
#include "reclite/models/tower.hpp"
#include "reclite/ops/axpy.hpp"
#include "reclite/ops/dot.hpp"
#include "reclite/ops/gemm.hpp"
#include "reclite/ops/gemv.hpp"
#include "reclite/ops/l2_normalize.hpp"
#include "reclite/ops/softmax.hpp"

RECLITE_BEGIN_NAMESPACE
namespace models {

class MindModel final : public ArchitectureModel {
 public:
  // Bounds that keep every scratch size far from overflow.
  static constexpr std::uint32_t max_window = 4096;
  static constexpr std::uint32_t max_hidden = 1u << 14;
  static constexpr std::uint32_t max_interests = 256;
  static constexpr std::uint32_t max_iterations = 64;

  static Result<std::unique_ptr<MindModel>> build(const format::ModelFile& file, const Catalogue& catalogue) {
    const format::MindConfig& config = *file.mind();
    auto model = std::unique_ptr<MindModel>(new MindModel());
    MindModel& m = *model;
    m.config_ = &config;
    m.catalogue_ = &catalogue;
    m.name_ = file.name();
    auto invalid = [&](const std::string& what) { return fail(ErrorCode::invalid_config, file.name() + ": mind." + what); };
    if (config.hidden_size == 0 || config.hidden_size > max_hidden)
      return invalid("hidden_size must be in [1, " + std::to_string(max_hidden) + "], got " + std::to_string(config.hidden_size));
    if (config.max_length == 0 || config.max_length > max_window)
      return invalid("max_length must be in [1, " + std::to_string(max_window) + "], got " + std::to_string(config.max_length));
    if (config.interests == 0 || config.interests > max_interests)
      return invalid("interests must be in [1, " + std::to_string(max_interests) + "], got " + std::to_string(config.interests));
    if (config.routing_iterations == 0 || config.routing_iterations > max_iterations)
      return invalid("routing_iterations must be in [1, " + std::to_string(max_iterations) + "], got " +
                     std::to_string(config.routing_iterations));
    if (!(config.squash_epsilon >= 0.0f) || !std::isfinite(config.squash_epsilon))
      return invalid("squash_epsilon must be finite and >= 0");
    if (std::isnan(config.pad_logit) || std::isnan(config.inactive_logit)) return invalid("pad_logit and inactive_logit must not be NaN");
    if (std::isnan(config.label_attention_power)) return invalid("label_attention_power must not be NaN");
    if (catalogue.size() == 0) return fail(ErrorCode::invalid_config, file.name() + ": mind needs an item catalogue (histories are external item ids)");
    const std::size_t hidden = config.hidden_size, window = config.max_length, interests = config.interests;
    m.hidden_ = hidden;
    m.window_ = window;
    m.interests_ = interests;

    if (config.history_fields.empty()) return invalid("history_fields is empty");
    for (std::size_t f = 0; f < config.history_fields.size(); ++f) {
      const format::InputFieldConfig& field = config.history_fields[f];
      if (field.kind != format::FieldKind::history) return invalid("history_fields['" + field.name + "'] is not a history field");
      if (f == 0 && field.ids != format::IdSpace::item) return invalid("the first history field ('" + field.name + "') must hold item ids");
      if (field.max_length != config.max_length)
        return invalid("history field '" + field.name + "' has max_length " + std::to_string(field.max_length) +
                       ", the model's is " + std::to_string(config.max_length));
      auto resolved = resolve_field(file, field, "mind.history_fields", &catalogue);
      RECLITE_TRY(resolved);
      if (resolved->dim != hidden)
        return fail(ErrorCode::tensor_shape, file.name() + ": history field '" + field.name + "': embedding width " +
                                                 std::to_string(resolved->dim) + ", expected hidden_size " + std::to_string(hidden));
      m.history_tables_.push_back(resolved->table);
    }
    const auto h = static_cast<std::int64_t>(hidden);
    auto bilinear = file.tensor(config.bilinear_weight, "mind.bilinear_weight", format::DType::f32, {h, h});
    RECLITE_TRY(bilinear);
    m.bilinear_ = (*bilinear)->f32();
    auto logits = file.tensor(config.initial_logits, "mind.initial_logits", format::DType::f32,
                              {static_cast<std::int64_t>(interests), static_cast<std::int64_t>(window)});
    RECLITE_TRY(logits);
    m.initial_logits_ = (*logits)->f32();
    auto items = file.tensor(config.item_embedding, "mind.item_embedding", format::DType::f32, {-1, h});
    RECLITE_TRY(items);
    m.item_table_ = (*items)->f32();
    if (catalogue.max_row() >= static_cast<std::uint64_t>((*items)->shape[0]))
      return fail(ErrorCode::invalid_item_catalogue, file.name() + ": catalogue row " + std::to_string(catalogue.max_row()) +
                                                         " is outside the item_embedding '" + config.item_embedding + "'");

    // User fields: a tower without layers gives their concatenation o.
    std::size_t user_width = 0;
    if (!config.user_fields.empty()) {
      m.user_tower_config_.inputs = config.user_fields;
      auto tower = Tower::build(file, m.user_tower_config_, "mind.user_fields", &catalogue);
      RECLITE_TRY(tower);
      m.user_tower_ = std::move(*tower);
      user_width = m.user_tower_.output_dim();
    }
    m.user_width_ = user_width;
    std::size_t width = user_width + hidden;
    m.head_input_ = width;
    std::size_t widest = width;
    for (std::size_t i = 0; i < config.head_layers.size(); ++i) {
      const auto& layer = config.head_layers[i];
      const std::string role = "mind.head_layers[" + std::to_string(i) + "]";
      auto weight = file.tensor(layer.weight, role + ".weight", format::DType::f32, {-1, static_cast<std::int64_t>(width)});
      RECLITE_TRY(weight);
      ResolvedLayer resolved;
      resolved.weight = (*weight)->f32();
      resolved.inputs = width;
      resolved.outputs = static_cast<std::size_t>((*weight)->shape[0]);
      resolved.activation = layer.activation;
      if (resolved.outputs == 0 || resolved.outputs > (1u << 20))
        return fail(ErrorCode::tensor_shape, file.name() + ": " + role + ".weight has " + std::to_string(resolved.outputs) + " rows");
      if (!layer.bias.empty()) {
        auto bias = file.tensor(layer.bias, role + ".bias", format::DType::f32, {static_cast<std::int64_t>(resolved.outputs)});
        RECLITE_TRY(bias);
        resolved.bias = (*bias)->f32();
      }
      width = resolved.outputs;
      widest = std::max(widest, width);
      m.head_.push_back(resolved);
    }
    if (width != hidden)
      return invalid("the user head ends at width " + std::to_string(width) + ", the item vectors have hidden_size " +
                     std::to_string(hidden));
    m.head_widest_ = widest;

    // Scratch, in floats: tower, o, e, ê, b, L/w, c, delta, one column, head input and two layer buffers.
    std::size_t at = 0;
    auto take = [&at](std::size_t floats) {
      const std::size_t start = at;
      at += (floats + 15) / 16 * 16;
      return start;
    };
    m.at_tower_ = take(config.user_fields.empty() ? 0 : m.user_tower_.workspace_floats());
    m.at_user_ = take(user_width);
    m.at_behaviours_ = take(window * hidden);
    m.at_mapped_ = take(window * hidden);
    m.at_logits_ = take(interests * window);
    m.at_weights_ = take(interests * window);
    m.at_capsules_ = take(interests * hidden);
    m.at_delta_ = take(interests * window);
    m.at_column_ = take(interests);
    m.at_head_ = take(m.head_input_ + 2 * widest);
    m.scratch_floats_ = at;
    m.at_tower_rows_ = config.history_fields.size() * window;
    m.scratch_rows_ = m.at_tower_rows_ + (config.user_fields.empty() ? 0 : m.user_tower_.row_scratch_size());

    for (const auto& field : config.history_fields) m.fields_.push_back(&field);
    for (const auto& field : config.user_fields) m.fields_.push_back(&field);
    return model;
  }

  // --- ArchitectureModel --------------------------------------------------------------------------------------
  format::Architecture architecture() const noexcept override { return format::Architecture::mind; }
  const std::vector<const format::InputFieldConfig*>& user_fields() const noexcept override { return fields_; }
  std::size_t user_dim() const noexcept override { return hidden_; }
  std::size_t user_vector_count() const noexcept override { return interests_; }
  std::size_t item_dim() const noexcept override { return hidden_; }
  WorkspaceSize workspace_size() const noexcept override { return WorkspaceSize{scratch_floats_, scratch_rows_, 0}; }

  // K' for a window of n valid behaviours.
  std::size_t active_interest_count(std::size_t n) const noexcept {
    if (!config_->dynamic_interests) return interests_;
    std::size_t log2 = 0;
    for (std::size_t value = n + 1; value > 1; value >>= 1) ++log2;  // floor(log2(n + 1)), exact
    return std::max<std::size_t>(1, std::min(interests_, log2));
  }

  Result<void> check_user(Span<const FieldInput> inputs) const override {
    const std::size_t histories = config_->history_fields.size();
    if (inputs.size() != fields_.size())
      return fail(ErrorCode::invalid_argument, name_ + ": mind takes " + std::to_string(fields_.size()) +
                                                   " fields (histories, then user fields), got " + std::to_string(inputs.size()));
    const std::size_t length = inputs[0].ids.size();
    for (std::size_t f = 0; f < histories; ++f) {
      const auto& field = config_->history_fields[f];
      if (inputs[f].ids.size() != length)
        return fail(ErrorCode::invalid_argument, name_ + ": history field '" + field.name + "' has " +
                                                     std::to_string(inputs[f].ids.size()) + " ids, the item history '" +
                                                     config_->history_fields[0].name + "' has " + std::to_string(length));
    }
    if (!config_->user_fields.empty()) RECLITE_TRY(user_tower_.check(inputs.subspan(histories, inputs.size() - histories)));
    return {};
  }

  void encode_user(Span<const FieldInput> inputs, float* output, Workspace& workspace,
                   EncodeStats* stats) const noexcept override {
    const format::MindConfig& config = *config_;
    const std::size_t histories = config.history_fields.size();
    const std::size_t T = window_, H = hidden_, K = interests_;
    float* scratch = workspace.floats.data();
    std::uint32_t* rows = workspace.rows.data();
    // Window and behaviours.
    const HistoryWindow window = fill_history_window(config.history_fields, *catalogue_, inputs.subspan(0, histories), T,
                                                     config.padding_side, rows);
    const std::size_t n = window.valid;
    const std::size_t first_valid = config.padding_side == format::PaddingSide::right ? 0 : T - n;
    auto is_pad = [&](std::size_t t) { return t < first_valid || t >= first_valid + n; };
    const std::size_t combined = config.behaviour_combine == format::BehaviourCombine::item_only ? 1 : histories;
    float* behaviours = scratch + at_behaviours_;
    for (std::size_t t = 0; t < T; ++t) {
      float* e = behaviours + t * H;
      const float* first = history_tables_[0] + static_cast<std::size_t>(rows[t]) * H;
      std::copy(first, first + H, e);
      for (std::size_t f = 1; f < combined; ++f) ops::add_to(history_tables_[f] + static_cast<std::size_t>(rows[f * T + t]) * H, e, H);
      if (config.behaviour_combine == format::BehaviourCombine::mean && combined > 1)
        for (std::size_t d = 0; d < H; ++d) e[d] /= static_cast<float>(combined);
    }
    float* mapped = scratch + at_mapped_;
    ops::gemm_nt(behaviours, bilinear_, nullptr, mapped, T, H, H);  // ê_t = W e_t
    const std::size_t active = active_interest_count(n);

    // B2I routing.
    float* logits = scratch + at_logits_;
    float* weights = scratch + at_weights_;
    float* capsules = scratch + at_capsules_;
    float* delta = scratch + at_delta_;
    float* column = scratch + at_column_;
    std::copy(initial_logits_, initial_logits_ + K * T, logits);
    for (std::size_t iteration = 0; iteration < config.routing_iterations; ++iteration) {
      std::copy(logits, logits + K * T, weights);
      if (config.dynamic_interests)
        for (std::size_t k = active; k < K; ++k) std::fill(weights + k * T, weights + (k + 1) * T, config.inactive_logit);
      if (config.routing_padding == format::RoutingPadding::logit_before_softmax)
        for (std::size_t k = 0; k < K; ++k)
          for (std::size_t t = 0; t < T; ++t)
            if (is_pad(t)) weights[k * T + t] = config.pad_logit;
      if (config.routing_softmax == format::RoutingSoftmax::over_behaviours) {
        for (std::size_t k = 0; k < K; ++k) ops::softmax(weights + k * T, weights + k * T, T);
      } else {
        for (std::size_t t = 0; t < T; ++t) {
          for (std::size_t k = 0; k < K; ++k) column[k] = weights[k * T + t];
          ops::softmax(column, column, K);
          for (std::size_t k = 0; k < K; ++k) weights[k * T + t] = column[k];
        }
      }
      if (config.routing_padding == format::RoutingPadding::zero_after_softmax)
        for (std::size_t k = 0; k < K; ++k)
          for (std::size_t t = 0; t < T; ++t)
            if (is_pad(t)) weights[k * T + t] = 0.0f;
      ops::gemm_nn(weights, mapped, capsules, K, H, T);
      for (std::size_t k = 0; k < K; ++k) squash(capsules + k * H, H, config.squash_epsilon);
      if (iteration + 1 < config.routing_iterations) {
        ops::gemm_nt(capsules, mapped, nullptr, delta, K, T, H);
        ops::add_to(delta, logits, K * T);
      }
    }

    // User head.
    float* user = scratch + at_user_;
    if (!config.user_fields.empty())
      user_tower_.evaluate(inputs.subspan(histories, inputs.size() - histories), user, scratch + at_tower_, rows + at_tower_rows_, stats);
    float* head_input = scratch + at_head_;
    float* buffers[2] = {head_input + head_input_, head_input + head_input_ + head_widest_};
    std::copy(user, user + user_width_, head_input);
    for (std::size_t k = 0; k < K; ++k) {
      float* out = output + k * H;
      if (config.dynamic_interests && config.mask_inactive_interests && k >= active) {
        std::fill(out, out + H, 0.0f);
        continue;
      }
      std::copy(capsules + k * H, capsules + (k + 1) * H, head_input + user_width_);
      const float* current = head_input;
      for (std::size_t l = 0; l < head_.size(); ++l) {
        const ResolvedLayer& layer = head_[l];
        ops::gemv(layer.weight, current, layer.bias, buffers[l % 2], layer.outputs, layer.inputs, layer.activation);
        current = buffers[l % 2];
      }
      if (config.head_l2_normalize)
        ops::l2_normalize(current, out, H);
      else
        std::copy(current, current + H, out);
    }
    if (stats != nullptr) {
      stats->history_ids_used += n;
      stats->history_ids_truncated += window.truncated;
      stats->history_ids_unknown += window.unknown;
      stats->active_interests = active;
    }
  }

  // Item vector of a catalogue entry: its row of the item table, L2-normalised when normalize_items.
  void encode_item_entry(std::size_t entry, float* output, Workspace&) const noexcept override {
    const float* row = item_table_ + static_cast<std::size_t>(catalogue_->row(entry)) * hidden_;
    if (config_->normalize_items)
      ops::l2_normalize(row, output, hidden_);
    else
      std::copy(row, row + hidden_, output);
  }

  bool label_aware_vector(const float* interests, std::size_t active, const float* target, float* output,
                          Workspace& workspace) const noexcept override {
    const format::MindConfig& config = *config_;
    const std::size_t K = interests_, H = hidden_;
    float* dots = workspace.floats.data();
    for (std::size_t k = 0; k < K; ++k) dots[k] = ops::dot(interests + k * H, target, H);
    const bool masked = config.dynamic_interests;
    if (config.label_attention_power >= 100.0f) {
      // The p -> infinity limit: the interest with the largest inner product, ties to the lower k.
      std::size_t best = 0;
      for (std::size_t k = 0; k < K; ++k) {
        const float value = masked && k >= active ? config.pad_logit : dots[k];
        const float best_value = masked && best >= active ? config.pad_logit : dots[best];
        if (value > best_value) best = k;
      }
      std::copy(interests + best * H, interests + (best + 1) * H, output);
      return true;
    }
    for (std::size_t k = 0; k < K; ++k)
      dots[k] = masked && k >= active ? config.pad_logit : std::pow(dots[k], config.label_attention_power);
    ops::softmax(dots, dots, K);
    std::fill(output, output + H, 0.0f);
    for (std::size_t k = 0; k < K; ++k) ops::axpy(dots[k], interests + k * H, output, H);
    return true;
  }

 private:
  MindModel() = default;

  // squash(z) = |z|^2/(1+|z|^2) * z / sqrt(|z|^2 + epsilon), in the reference's order of operations.
  static void squash(float* z, std::size_t n, float epsilon) noexcept {
    float squared = 0.0f;
    for (std::size_t i = 0; i < n; ++i) squared += z[i] * z[i];
    const float scale = squared / (1.0f + squared);
    const float root = std::sqrt(squared + epsilon);
    for (std::size_t i = 0; i < n; ++i) z[i] = scale * z[i] / root;
  }

  const format::MindConfig* config_ = nullptr;
  const Catalogue* catalogue_ = nullptr;
  std::string name_;
  std::vector<const format::InputFieldConfig*> fields_;
  std::vector<const float*> history_tables_;
  format::TowerConfig user_tower_config_;
  Tower user_tower_;
  std::vector<ResolvedLayer> head_;
  const float* bilinear_ = nullptr;
  const float* initial_logits_ = nullptr;
  const float* item_table_ = nullptr;
  std::size_t hidden_ = 0, window_ = 0, interests_ = 0, user_width_ = 0, head_input_ = 0, head_widest_ = 0;
  std::size_t at_tower_ = 0, at_user_ = 0, at_behaviours_ = 0, at_mapped_ = 0, at_logits_ = 0, at_weights_ = 0,
              at_capsules_ = 0, at_delta_ = 0, at_column_ = 0, at_head_ = 0, scratch_floats_ = 0;
  std::size_t at_tower_rows_ = 0, scratch_rows_ = 0;
};

}  // namespace models
RECLITE_END_NAMESPACE
