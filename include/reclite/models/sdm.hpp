// SDM (Lv et al. 2019) with DeepMatch's semantics (schemas/model.fbs SdmConfig; /work/shared/reference/models.md
// §3.1; converters/reclite_convert/modules/sdm.py is the ground truth of the fixtures). One request, float32:
//
//   profile     p = tanh(W_u [user fields] + b_u)                                                     [u]
//   long term   per long field f (right-padded window of long_length, n_l valid):
//               a_t = tanh(w_f . [p ; E_f(l_t)] + c_f) / sqrt(D_f), t >= n_l replaced by the mask value,
//               g_f = sum_t softmax(a)_t E_f(l_t);  P = tanh(W_p [g_f]_f + b_p)
//   short term  x_t = tanh(W_s [E_f(s_t)]_f + b_s) (right-padded window of short_length, n_s valid)
//               LSTM: gates = W_ih x + W_hh h + b, row blocks in lstm_gate_order; c = c sigmoid(f + forget_bias)
//               + sigmoid(i) tanh(g); h = tanh(c) sigmoid(o). lstm_layers layers of the SAME cell, each from a
//               zero state; layers after the first add their input. Outputs at t >= n_s are exactly 0.
//               MHSA: [q|k|v] = W_qkv R (no bias; heads contiguous slices of u/h); logits q.k / sqrt(u/h), keys
//               t >= n_s and j > i replaced by the mask value; O = W_o concat(heads); X = LayerNorm(O + R).
//               User attention: q = tanh(W_a p + b_a); a_t = q . X_t / sqrt(u), t >= n_s masked;
//               s = sum_t softmax(a)_t X_t + mean over ALL short_length rows of X (pads included, as DeepMatch).
//   fusion      G = sigmoid(W_g [P ; s ; p] + b_g); o = G s + (1 - G) P; user vector = l2norm(o).
//   items       rows of the item table, L2-normalised when normalize_items.
//
// A request is: the user fields, the short fields, then the long fields (SdmConfig order; the converter names
// them short_<history> and long_<history>). Short fields share one length, long fields another. Every slot of
// both windows is evaluated (pads change the result through the mean and fully masked rows).
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
#include "reclite/ops/activation.hpp"
#include "reclite/ops/axpy.hpp"
#include "reclite/ops/dot.hpp"
#include "reclite/ops/gemm.hpp"
#include "reclite/ops/gemv.hpp"
#include "reclite/ops/l2_normalize.hpp"
#include "reclite/ops/layer_norm.hpp"
#include "reclite/ops/softmax.hpp"

RECLITE_BEGIN_NAMESPACE
namespace models {

class SdmModel final : public ArchitectureModel {
 public:
  static constexpr std::uint32_t max_window = 4096;
  static constexpr std::uint32_t max_units = 1u << 14;
  static constexpr std::uint32_t max_layers = 64;

  static Result<std::unique_ptr<SdmModel>> build(const format::ModelFile& file, const Catalogue& catalogue) {
    const format::SdmConfig& config = *file.sdm();
    auto model = std::unique_ptr<SdmModel>(new SdmModel());
    SdmModel& m = *model;
    m.config_ = &config;
    m.catalogue_ = &catalogue;
    m.name_ = file.name();
    const std::string& name = file.name();
    auto invalid = [&](const std::string& what) { return fail(ErrorCode::invalid_config, name + ": sdm." + what); };
    if (config.units == 0 || config.units > max_units)
      return invalid("units must be in [1, " + std::to_string(max_units) + "], got " + std::to_string(config.units));
    if (config.attention_heads == 0 || config.units % config.attention_heads != 0)
      return invalid("attention_heads = " + std::to_string(config.attention_heads) + " does not divide units = " +
                     std::to_string(config.units));
    if (config.short_length == 0 || config.short_length > max_window || config.long_length == 0 || config.long_length > max_window)
      return invalid("short_length and long_length must be in [1, " + std::to_string(max_window) + "]");
    if (config.lstm_layers == 0 || config.lstm_layers > max_layers)
      return invalid("lstm_layers must be in [1, " + std::to_string(max_layers) + "], got " + std::to_string(config.lstm_layers));
    if (!std::isfinite(config.lstm_forget_bias)) return invalid("lstm_forget_bias must be finite");
    if (std::isnan(config.attention_mask_value)) return invalid("attention_mask_value must not be NaN");
    if (!(config.attention_norm_epsilon >= 0.0f) || !std::isfinite(config.attention_norm_epsilon))
      return invalid("attention_norm_epsilon must be finite and >= 0");
    if (config.user_fields.empty()) return invalid("user_fields is empty (the profile needs at least one)");
    if (config.short_fields.empty() || config.short_fields.size() != config.long_fields.size())
      return invalid("short_fields and long_fields must be non-empty and as many");
    if (config.long_attention_weights.size() != config.long_fields.size())
      return invalid("long_attention_weights has " + std::to_string(config.long_attention_weights.size()) +
                     " names, expected one per long field (" + std::to_string(config.long_fields.size()) + ")");
    if (!config.long_attention_biases.empty() && config.long_attention_biases.size() != config.long_fields.size())
      return invalid("long_attention_biases must be empty or one per long field");
    if (catalogue.size() == 0) return fail(ErrorCode::invalid_config, name + ": sdm needs an item catalogue");
    const std::size_t u = config.units;
    const auto units = static_cast<std::int64_t>(u);
    m.units_ = u;
    m.short_length_ = config.short_length;
    m.long_length_ = config.long_length;

    std::size_t widths = 0;
    for (std::size_t f = 0; f < config.short_fields.size(); ++f) {
      for (int kind = 0; kind < 2; ++kind) {
        const format::InputFieldConfig& field = kind == 0 ? config.short_fields[f] : config.long_fields[f];
        const std::uint32_t length = kind == 0 ? config.short_length : config.long_length;
        const std::string where = kind == 0 ? "sdm.short_fields" : "sdm.long_fields";
        if (field.kind != format::FieldKind::history) return invalid(where.substr(4) + " '" + field.name + "' is not a history field");
        if (field.max_length != length)
          return invalid(where.substr(4) + " '" + field.name + "' has max_length " + std::to_string(field.max_length) +
                         ", the window is " + std::to_string(length));
        auto resolved = resolve_field(file, field, where, &catalogue);
        RECLITE_TRY(resolved);
        (kind == 0 ? m.short_tables_ : m.long_tables_).push_back(resolved->table);
        if (kind == 0) {
          m.field_dims_.push_back(resolved->dim);
          widths += resolved->dim;
        } else if (resolved->dim != m.field_dims_[f]) {
          return invalid("long field '" + field.name + "' is " + std::to_string(resolved->dim) + " wide, its short field " +
                         std::to_string(m.field_dims_[f]));
        }
      }
    }
    m.history_width_ = widths;
    m.user_tower_config_.inputs = config.user_fields;
    auto tower = Tower::build(file, m.user_tower_config_, "sdm.user_fields", &catalogue);
    RECLITE_TRY(tower);
    m.user_tower_ = std::move(*tower);
    const auto user_width = static_cast<std::int64_t>(m.user_tower_.output_dim());

    auto tensor = [&](const std::string& tensor_name, const std::string& role, const std::vector<std::int64_t>& shape,
                      const float** out, bool needed) -> Result<void> {
      *out = nullptr;
      if (tensor_name.empty()) {
        if (needed) return fail(ErrorCode::missing_tensor, name + ": sdm." + role + " names no tensor (empty name)");
        return {};
      }
      auto found = file.tensor(tensor_name, "sdm." + role, format::DType::f32, shape);
      RECLITE_TRY(found);
      *out = (*found)->f32();
      return {};
    };
    const auto history = static_cast<std::int64_t>(widths);
    RECLITE_TRY(tensor(config.profile_weight, "profile_weight", {units, user_width}, &m.profile_weight_, true));
    RECLITE_TRY(tensor(config.profile_bias, "profile_bias", {units}, &m.profile_bias_, false));
    for (std::size_t f = 0; f < config.long_fields.size(); ++f) {
      const std::string at = "[" + std::to_string(f) + "]";
      const float* weight = nullptr;
      const float* bias = nullptr;
      RECLITE_TRY(tensor(config.long_attention_weights[f], "long_attention_weights" + at,
                         {1, units + static_cast<std::int64_t>(m.field_dims_[f])}, &weight, true));
      if (!config.long_attention_biases.empty())
        RECLITE_TRY(tensor(config.long_attention_biases[f], "long_attention_biases" + at, {1}, &bias, false));
      m.long_attention_weights_.push_back(weight);
      m.long_attention_biases_.push_back(bias);
    }
    RECLITE_TRY(tensor(config.long_output_weight, "long_output_weight", {units, history}, &m.long_output_weight_, true));
    RECLITE_TRY(tensor(config.long_output_bias, "long_output_bias", {units}, &m.long_output_bias_, false));
    RECLITE_TRY(tensor(config.short_input_weight, "short_input_weight", {units, history}, &m.short_input_weight_, true));
    RECLITE_TRY(tensor(config.short_input_bias, "short_input_bias", {units}, &m.short_input_bias_, false));
    RECLITE_TRY(tensor(config.lstm_input_weight, "lstm_input_weight", {4 * units, units}, &m.lstm_input_weight_, true));
    RECLITE_TRY(tensor(config.lstm_recurrent_weight, "lstm_recurrent_weight", {4 * units, units}, &m.lstm_recurrent_weight_, true));
    RECLITE_TRY(tensor(config.lstm_bias, "lstm_bias", {4 * units}, &m.lstm_bias_, false));
    RECLITE_TRY(tensor(config.attention_qkv_weight, "attention_qkv_weight", {3 * units, units}, &m.qkv_weight_, true));
    RECLITE_TRY(tensor(config.attention_output_weight, "attention_output_weight", {units, units}, &m.attention_output_weight_, true));
    RECLITE_TRY(tensor(config.attention_norm_weight, "attention_norm_weight", {units}, &m.norm_weight_, true));
    RECLITE_TRY(tensor(config.attention_norm_bias, "attention_norm_bias", {units}, &m.norm_bias_, true));
    RECLITE_TRY(tensor(config.user_attention_weight, "user_attention_weight", {units, units}, &m.user_attention_weight_, true));
    RECLITE_TRY(tensor(config.user_attention_bias, "user_attention_bias", {units}, &m.user_attention_bias_, false));
    RECLITE_TRY(tensor(config.gate_weight, "gate_weight", {units, 3 * units}, &m.gate_weight_, true));
    RECLITE_TRY(tensor(config.gate_bias, "gate_bias", {units}, &m.gate_bias_, false));
    auto items = file.tensor(config.item_embedding, "sdm.item_embedding", format::DType::f32, {-1, units});
    RECLITE_TRY(items);
    m.item_table_ = (*items)->f32();
    if (catalogue.max_row() >= static_cast<std::uint64_t>((*items)->shape[0]))
      return fail(ErrorCode::invalid_item_catalogue, name + ": catalogue row " + std::to_string(catalogue.max_row()) +
                                                         " is outside the item_embedding '" + config.item_embedding + "'");
    // Gate blocks (input, forget, candidate, output) per order: ifgo and ifco 0,1,2,3; igfo 0,2,1,3.
    const bool tf1 = config.lstm_gate_order == format::LstmGateOrder::igfo;
    m.gate_blocks_[0] = 0;
    m.gate_blocks_[1] = tf1 ? 2 : 1;
    m.gate_blocks_[2] = tf1 ? 1 : 2;
    m.gate_blocks_[3] = 3;

    std::size_t widest_field = 0;
    for (std::size_t dim : m.field_dims_) widest_field = std::max(widest_field, dim);
    const std::size_t S = config.short_length, L = config.long_length;
    std::size_t at = 0;
    auto take = [&at](std::size_t floats) {
      const std::size_t start = at;
      at += (floats + 15) / 16 * 16;
      return start;
    };
    m.at_tower_ = take(m.user_tower_.workspace_floats());
    m.at_user_ = take(static_cast<std::size_t>(user_width));
    m.at_profile_ = take(u);
    m.at_pair_ = take(u + widest_field);
    m.at_scores_ = take(std::max(S, L));
    m.at_pooled_ = take(widths);
    m.at_preference_ = take(u);
    m.at_short_input_ = take(widths);
    m.at_sequence_[0] = take(S * u);
    m.at_sequence_[1] = take(S * u);
    m.at_gates_ = take(8 * u);
    m.at_state_ = take(2 * u);
    m.at_qkv_ = take(S * 3 * u);
    m.at_attention_ = take(S * S);
    m.at_context_ = take(S * u);
    m.at_states_ = take(S * u);
    m.at_session_ = take(u);
    m.at_query_ = take(u);
    m.at_fusion_ = take(3 * u);
    m.at_gate_ = take(u);
    m.scratch_floats_ = at;
    m.at_long_rows_ = config.short_fields.size() * S;
    m.at_tower_rows_ = m.at_long_rows_ + config.long_fields.size() * L;
    m.scratch_rows_ = m.at_tower_rows_ + m.user_tower_.row_scratch_size();

    for (const auto& field : config.user_fields) m.fields_.push_back(&field);
    for (const auto& field : config.short_fields) m.fields_.push_back(&field);
    for (const auto& field : config.long_fields) m.fields_.push_back(&field);
    return model;
  }

  // --- ArchitectureModel --------------------------------------------------------------------------------------
  format::Architecture architecture() const noexcept override { return format::Architecture::sdm; }
  const std::vector<const format::InputFieldConfig*>& user_fields() const noexcept override { return fields_; }
  std::size_t user_dim() const noexcept override { return units_; }
  std::size_t item_dim() const noexcept override { return units_; }
  WorkspaceSize workspace_size() const noexcept override { return WorkspaceSize{scratch_floats_, scratch_rows_, 0}; }

  Result<void> check_user(Span<const FieldInput> inputs) const override {
    const format::SdmConfig& config = *config_;
    const std::size_t users = config.user_fields.size(), histories = config.short_fields.size();
    if (inputs.size() != fields_.size())
      return fail(ErrorCode::invalid_argument, name_ + ": sdm takes " + std::to_string(fields_.size()) +
                                                   " fields (user, short, long), got " + std::to_string(inputs.size()));
    RECLITE_TRY(user_tower_.check(inputs.subspan(0, users)));
    for (int kind = 0; kind < 2; ++kind) {
      const auto& fields = kind == 0 ? config.short_fields : config.long_fields;
      const std::size_t first = users + static_cast<std::size_t>(kind) * histories;
      for (std::size_t f = 0; f < histories; ++f) {
        const Span<const std::int64_t> ids = inputs[first + f].ids;
        if (ids.size() != inputs[first].ids.size())
          return fail(ErrorCode::invalid_argument, name_ + ": history field '" + fields[f].name + "' has " +
                                                       std::to_string(ids.size()) + " ids, '" + fields[0].name + "' has " +
                                                       std::to_string(inputs[first].ids.size()));
      }
    }
    return {};
  }

  void encode_user(Span<const FieldInput> inputs, float* output, Workspace& workspace,
                   EncodeStats* stats) const noexcept override {
    const format::SdmConfig& config = *config_;
    const std::size_t u = units_, S = short_length_, L = long_length_;
    const std::size_t users = config.user_fields.size(), histories = config.short_fields.size();
    float* scratch = workspace.floats.data();
    std::uint32_t* rows = workspace.rows.data();
    const float mask = config.attention_mask_value;

    // Profile.
    float* user = scratch + at_user_;
    user_tower_.evaluate(inputs.subspan(0, users), user, scratch + at_tower_, rows + at_tower_rows_, stats);
    float* profile = scratch + at_profile_;
    ops::gemv(profile_weight_, user, profile_bias_, profile, u, user_tower_.output_dim(), ops::Activation::tanh);

    // Windows.
    const HistoryWindow short_window = fill_history_window(config.short_fields, *catalogue_, inputs.subspan(users, histories),
                                                           S, format::PaddingSide::right, rows);
    const HistoryWindow long_window = fill_history_window(config.long_fields, *catalogue_,
                                                          inputs.subspan(users + histories, histories), L,
                                                          format::PaddingSide::right, rows + at_long_rows_);
    const std::size_t n_short = short_window.valid, n_long = long_window.valid;

    // Long term: attention pooling per field, then P.
    float* pair = scratch + at_pair_;
    float* scores = scratch + at_scores_;
    float* pooled = scratch + at_pooled_;
    std::copy(profile, profile + u, pair);
    std::size_t offset = 0;
    for (std::size_t f = 0; f < histories; ++f) {
      const std::size_t dim = field_dims_[f];
      const std::uint32_t* field_rows = rows + at_long_rows_ + f * L;
      const float divisor = std::sqrt(static_cast<float>(dim));
      for (std::size_t t = 0; t < L; ++t) {
        if (t >= n_long) {
          scores[t] = mask;
          continue;
        }
        const float* row = long_tables_[f] + static_cast<std::size_t>(field_rows[t]) * dim;
        std::copy(row, row + dim, pair + u);
        const float logit = ops::dot(long_attention_weights_[f], pair, u + dim) +
                            (long_attention_biases_[f] != nullptr ? long_attention_biases_[f][0] : 0.0f);
        scores[t] = std::tanh(logit) / divisor;
      }
      ops::softmax(scores, scores, L);
      float* g = pooled + offset;
      std::fill(g, g + dim, 0.0f);
      for (std::size_t t = 0; t < L; ++t)
        ops::axpy(scores[t], long_tables_[f] + static_cast<std::size_t>(field_rows[t]) * dim, g, dim);
      offset += dim;
    }
    float* preference = scratch + at_preference_;
    ops::gemv(long_output_weight_, pooled, long_output_bias_, preference, u, history_width_, ops::Activation::tanh);

    // Short term: projection of the valid slots (the LSTM zeroes the others).
    float* sequence = scratch + at_sequence_[0];
    float* short_input = scratch + at_short_input_;
    for (std::size_t t = 0; t < n_short; ++t) {
      offset = 0;
      for (std::size_t f = 0; f < histories; ++f) {
        const float* row = short_tables_[f] + static_cast<std::size_t>(rows[f * S + t]) * field_dims_[f];
        std::copy(row, row + field_dims_[f], short_input + offset);
        offset += field_dims_[f];
      }
      ops::gemv(short_input_weight_, short_input, short_input_bias_, sequence + t * u, u, history_width_, ops::Activation::tanh);
    }
    std::fill(sequence + n_short * u, sequence + S * u, 0.0f);

    // LSTM layers of one shared cell; layers after the first are residual.
    float* gates = scratch + at_gates_;
    float* recurrent = gates + 4 * u;
    float* h = scratch + at_state_;
    float* c = h + u;
    float* in = sequence;
    float* out = scratch + at_sequence_[1];
    for (std::size_t layer = 0; layer < config.lstm_layers; ++layer) {
      std::fill(h, h + 2 * u, 0.0f);
      for (std::size_t t = 0; t < n_short; ++t) {
        const float* x = in + t * u;
        ops::gemv(lstm_input_weight_, x, nullptr, gates, 4 * u, u);
        ops::gemv(lstm_recurrent_weight_, h, nullptr, recurrent, 4 * u, u);
        for (std::size_t i = 0; i < 4 * u; ++i) gates[i] = gates[i] + recurrent[i] + (lstm_bias_ ? lstm_bias_[i] : 0.0f);
        const float* input_gate = gates + gate_blocks_[0] * u;
        const float* forget_gate = gates + gate_blocks_[1] * u;
        const float* candidate = gates + gate_blocks_[2] * u;
        const float* output_gate = gates + gate_blocks_[3] * u;
        float* y = out + t * u;
        for (std::size_t i = 0; i < u; ++i) {
          c[i] = c[i] * sigmoid(forget_gate[i] + config.lstm_forget_bias) + sigmoid(input_gate[i]) * std::tanh(candidate[i]);
          h[i] = std::tanh(c[i]) * sigmoid(output_gate[i]);
          y[i] = layer > 0 ? h[i] + x[i] : h[i];
        }
      }
      std::fill(out + n_short * u, out + S * u, 0.0f);
      std::swap(in, out);
    }
    const float* recurrent_output = in;  // R [S, u]

    // Masked causal multi-head self-attention, residual, LayerNorm.
    const std::size_t heads = config.attention_heads, size = u / heads;
    float* qkv = scratch + at_qkv_;
    float* attention = scratch + at_attention_;
    float* context = scratch + at_context_;
    float* states = scratch + at_states_;
    ops::gemm_nt(recurrent_output, qkv_weight_, nullptr, qkv, S, 3 * u, u);
    const float scale = std::sqrt(static_cast<float>(size));
    for (std::size_t head = 0; head < heads; ++head) {
      for (std::size_t i = 0; i < S; ++i) {
        float* row = attention + i * S;
        const float* query = qkv + i * 3 * u + head * size;
        for (std::size_t j = 0; j < S; ++j)
          row[j] = j <= i && j < n_short ? ops::dot(query, qkv + j * 3 * u + u + head * size, size) / scale : mask;
        ops::softmax(row, row, S);
        float* target = context + i * u + head * size;
        std::fill(target, target + size, 0.0f);
        for (std::size_t j = 0; j < S; ++j) ops::axpy(row[j], qkv + j * 3 * u + 2 * u + head * size, target, size);
      }
    }
    ops::gemm_nt(context, attention_output_weight_, nullptr, states, S, u, u);
    for (std::size_t t = 0; t < S; ++t) {
      float* row = states + t * u;
      ops::add_to(recurrent_output + t * u, row, u);
      ops::layer_norm(row, norm_weight_, norm_bias_, config.attention_norm_epsilon, row, u);
    }

    // User attention with the mean of all short rows.
    float* query = scratch + at_query_;
    ops::gemv(user_attention_weight_, profile, user_attention_bias_, query, u, u, ops::Activation::tanh);
    const float root_units = std::sqrt(static_cast<float>(u));
    for (std::size_t t = 0; t < S; ++t) scores[t] = t < n_short ? ops::dot(states + t * u, query, u) / root_units : mask;
    ops::softmax(scores, scores, S);
    float* session = scratch + at_session_;
    float* mean = scratch + at_gate_;  // the gate's buffer, free until the fusion
    std::fill(session, session + u, 0.0f);
    std::fill(mean, mean + u, 0.0f);
    for (std::size_t t = 0; t < S; ++t) {
      ops::axpy(scores[t], states + t * u, session, u);
      ops::add_to(states + t * u, mean, u);
    }
    for (std::size_t i = 0; i < u; ++i) session[i] += mean[i] / static_cast<float>(S);

    // Gated fusion and normalisation.
    float* fusion = scratch + at_fusion_;
    std::copy(preference, preference + u, fusion);
    std::copy(session, session + u, fusion + u);
    std::copy(profile, profile + u, fusion + 2 * u);
    float* gate = scratch + at_gate_;
    ops::gemv(gate_weight_, fusion, gate_bias_, gate, u, 3 * u, ops::Activation::sigmoid);
    for (std::size_t i = 0; i < u; ++i) output[i] = gate[i] * session[i] + (1.0f - gate[i]) * preference[i];
    ops::l2_normalize(output, output, u);
    if (stats != nullptr) {
      stats->history_ids_used += n_short + n_long;
      stats->history_ids_truncated += short_window.truncated + long_window.truncated;
      stats->history_ids_unknown += short_window.unknown + long_window.unknown;
      stats->active_interests = 1;
    }
  }

  void encode_item_entry(std::size_t entry, float* output, Workspace&) const noexcept override {
    const float* row = item_table_ + static_cast<std::size_t>(catalogue_->row(entry)) * units_;
    if (config_->normalize_items)
      ops::l2_normalize(row, output, units_);
    else
      std::copy(row, row + units_, output);
  }

 private:
  SdmModel() = default;

  static float sigmoid(float x) noexcept { return 1.0f / (1.0f + std::exp(-x)); }

  const format::SdmConfig* config_ = nullptr;
  const Catalogue* catalogue_ = nullptr;
  std::string name_;
  std::vector<const format::InputFieldConfig*> fields_;
  format::TowerConfig user_tower_config_;
  Tower user_tower_;
  std::vector<const float*> short_tables_, long_tables_, long_attention_weights_, long_attention_biases_;
  std::vector<std::size_t> field_dims_;
  const float *profile_weight_ = nullptr, *profile_bias_ = nullptr, *long_output_weight_ = nullptr,
              *long_output_bias_ = nullptr, *short_input_weight_ = nullptr, *short_input_bias_ = nullptr,
              *lstm_input_weight_ = nullptr, *lstm_recurrent_weight_ = nullptr, *lstm_bias_ = nullptr,
              *qkv_weight_ = nullptr, *attention_output_weight_ = nullptr, *norm_weight_ = nullptr,
              *norm_bias_ = nullptr, *user_attention_weight_ = nullptr, *user_attention_bias_ = nullptr,
              *gate_weight_ = nullptr, *gate_bias_ = nullptr, *item_table_ = nullptr;
  std::size_t gate_blocks_[4] = {0, 1, 2, 3};
  std::size_t units_ = 0, short_length_ = 0, long_length_ = 0, history_width_ = 0;
  std::size_t at_tower_ = 0, at_user_ = 0, at_profile_ = 0, at_pair_ = 0, at_scores_ = 0, at_pooled_ = 0,
              at_preference_ = 0, at_short_input_ = 0, at_sequence_[2] = {0, 0}, at_gates_ = 0, at_state_ = 0,
              at_qkv_ = 0, at_attention_ = 0, at_context_ = 0, at_states_ = 0, at_session_ = 0, at_query_ = 0,
              at_fusion_ = 0, at_gate_ = 0, scratch_floats_ = 0;
  std::size_t at_long_rows_ = 0, at_tower_rows_ = 0, scratch_rows_ = 0;
};

}  // namespace models
RECLITE_END_NAMESPACE
