// SASRec (Kang & McAuley 2018) in every public variant: RecBole, pmixer's SASRec.pytorch V1/V2/V3 (post- and
// pre-LN), torch-rechub. Each variant is spelled out by the fields of schemas/model.fbs SasRecConfig (never
// inferred); /work/shared/reference/models.md §1 and converters/reclite_convert/modules/sasrec.py give the maths:
//
//   window     the most recent max_length known item rows. Right padding (RecBole): valid rows at slots 0..n-1,
//              the output is read at n-1; pads after n-1 are never attended by it (causal), so only slots 0..n-1
//              are evaluated. Left padding (pmixer, torch-rechub): pads first, valid rows at L-n..L-1, the
//              output is read at L-1; pads are attended (no key mask), so the exact L-slot window is evaluated.
//   embedding  x_t = E[row_t] * embedding_scale + P[t + position_offset] (pads: P[0] when
//              pads_use_position_zero); then the embedding LayerNorm if present; then pad rows * 0 when
//              zero_padding_rows.
//   attention  per head (contiguous channel slices of hidden/heads): softmax(Q K^T / sqrt(hidden/heads) + M) V, then
//              the output projection (identity when absent). Key j is blocked for query i when j > i, or when
//              mask_padding_keys and slot j is a pad. Blocked logits get mask_value added (-inf removes them).
//              A row with at least one open key: blocked future keys add exp(s - 10000 - max), exactly 0 in
//              float32 for any realistic logits, so they are skipped; a row with every key blocked and a finite
//              mask_value is a uniform shift of every logit of the window, evaluated as such; with -inf it is
//              all zeros (torch gives NaN; such rows are pad rows no valid output attends).
//   blocks     post_norm:  a = LN_att(x + MHA(x, x, x)); x = LN_ff(a + FFN(a))
//              query_norm: q = LN_att(x); z = LN_ff(q + MHA(q, x, x)); x = FFN(z) + z
//              pre_norm:   x = x + MHA(y, y, y), y = LN_att(x); x = x + FFN(LN_ff(x))
//              FFN(v) = outer(act(inner(v))); after every block pad rows * 0 when zero_padding_rows.
//   output     the final LayerNorm when present, at the read slot. Item vectors are rows of E (unscaled).
//
// Speed: the last block computes keys and values for every slot but queries, feed-forward and norms only for the
// read slot. Causality makes a right-padded window's keys and values at slots 0..n-1 independent of later items,
// so append_position() computes one new slot per block against a cache (models/sequence_session.hpp).
// Every dense layer runs ops::linear on weights packed once in build() (ops/packed_linear.hpp; about 4 * (4 d^2 +
// 2 d * inner) bytes per block, 192 KiB for d 64 / inner 256), the query projection pre-scaled by 1 / sqrt(head
// size). Keys are kept transposed per head ([heads][head size][key_stride] per layer, key_stride = max_length
// rounded up to 16), so Q K^T and the weights times V are strided ops::gemm_nn products on the heads in place, each
// query row only over its open keys; a single query (an append, the last block) runs every head at once
// (ops::gemm_nn_row_groups), with the same sums in the same order.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "reclite/core/checksum.hpp"
#include "reclite/core/config.hpp"
#include "reclite/core/result.hpp"
#include "reclite/format/model_file.hpp"
#include "reclite/models/architecture.hpp"
#include "reclite/models/catalogue.hpp"
#include "reclite/ops/activation.hpp"
#include "reclite/ops/axpy.hpp"
#include "reclite/ops/gemm.hpp"
#include "reclite/ops/layer_norm.hpp"
#include "reclite/ops/packed_linear.hpp"
#include "reclite/ops/softmax.hpp"

RECLITE_BEGIN_NAMESPACE
namespace models {

// One block's weights, viewed in the model file; null bias = zero, null output_weight = identity.
struct SasRecLayerWeights {
  const float* query_weight = nullptr;
  const float* query_bias = nullptr;
  const float* key_weight = nullptr;
  const float* key_bias = nullptr;
  const float* value_weight = nullptr;
  const float* value_bias = nullptr;
  const float* output_weight = nullptr;
  const float* output_bias = nullptr;
  const float* attention_norm_weight = nullptr;
  const float* attention_norm_bias = nullptr;
  const float* inner_weight = nullptr;
  const float* inner_bias = nullptr;
  const float* outer_weight = nullptr;
  const float* outer_bias = nullptr;
  const float* feed_forward_norm_weight = nullptr;
  const float* feed_forward_norm_bias = nullptr;
};

// One block's dense layers, packed at load (model-owned, immutable). output is empty when the block has none.
struct SasRecPackedLayer {
  ops::PackedLinear query;  // scaled by 1 / sqrt(head size)
  ops::PackedLinear key;
  ops::PackedLinear value;
  ops::PackedLinear output;
  ops::PackedLinear inner;
  ops::PackedLinear outer;

  std::size_t bytes() const noexcept {
    return query.bytes() + key.bytes() + value.bytes() + output.bytes() + inner.bytes() + outer.bytes();
  }
};

namespace detail {

// Floats per row of transposed keys: max_length rounded up to 16, so whole vector batches of any width (4, 8, 16
// lanes) read past the last slot without leaving the row.
inline std::size_t sasrec_key_stride(std::size_t window) noexcept { return (window + 15) / 16 * 16; }

// 64-bit FNV-1a, for the model fingerprint (identity, not security).
struct Fingerprint {
  std::uint64_t value = 14695981039346656037ull;
  void add_bytes(const void* data, std::size_t size) noexcept {
    const auto* bytes = static_cast<const std::uint8_t*>(data);
    for (std::size_t i = 0; i < size; ++i) value = (value ^ bytes[i]) * 1099511628211ull;
  }
  template <class T>
  void add(T scalar) noexcept {
    add_bytes(&scalar, sizeof(T));
  }
  void add(const std::string& text) noexcept {
    add<std::uint64_t>(text.size());
    add_bytes(text.data(), text.size());
  }
};

// Where each scratch buffer starts, in floats, for a window of `length` slots.
struct SasRecScratch {
  std::size_t x, out, keys, values, normed, query, context, attended, inner, key_rows, scores, total;

  SasRecScratch(std::size_t length, std::size_t hidden, std::size_t inner_size, std::size_t heads) noexcept {
    std::size_t at = 0;
    auto take = [&at](std::size_t floats) {
      const std::size_t start = at;
      at += (floats + 15) / 16 * 16;  // 64-byte steps keep every buffer as aligned as the first
      return start;
    };
    const std::size_t rows = length * hidden;
    const std::size_t key_stride = sasrec_key_stride(length);
    x = take(rows);
    out = take(rows);
    keys = take(hidden * key_stride);
    values = take(rows);
    normed = take(rows);
    query = take(rows);
    context = take(rows);
    attended = take(rows);
    inner = take(length * inner_size);
    key_rows = take(rows);
    scores = take(std::max(length, heads) * key_stride);  // a row per query, or per head for a single query
    total = at;
  }
};

}  // namespace detail

class SasRecModel final : public ArchitectureModel {
 public:
  // Generous bounds that keep every scratch size far from overflow (the window's scores are max_length^2).
  static constexpr std::uint32_t max_window = 4096;
  static constexpr std::uint32_t max_hidden = 1u << 16;
  static constexpr std::uint32_t max_inner = 1u << 20;
  static constexpr std::size_t max_layers = 256;

  static Result<std::unique_ptr<SasRecModel>> build(const format::ModelFile& file, const Catalogue& catalogue) {
    const format::SasRecConfig& config = *file.sasrec();
    auto model = std::unique_ptr<SasRecModel>(new SasRecModel());
    model->config_ = &config;
    model->catalogue_ = &catalogue;
    model->name_ = file.name();
    const std::string& name = file.name();
    auto invalid = [&](const std::string& what) { return fail(ErrorCode::invalid_config, name + ": sasrec." + what); };
    if (config.history_field.empty()) return invalid("history_field is empty");
    if (config.hidden_size == 0 || config.hidden_size > max_hidden)
      return invalid("hidden_size must be in [1, " + std::to_string(max_hidden) + "], got " + std::to_string(config.hidden_size));
    if (config.heads == 0 || config.hidden_size % config.heads != 0)
      return invalid("heads = " + std::to_string(config.heads) + " does not divide hidden_size = " +
                     std::to_string(config.hidden_size));
    if (config.max_length == 0 || config.max_length > max_window)
      return invalid("max_length must be in [1, " + std::to_string(max_window) + "], got " + std::to_string(config.max_length));
    if (config.inner_size == 0 || config.inner_size > max_inner)
      return invalid("inner_size must be in [1, " + std::to_string(max_inner) + "], got " + std::to_string(config.inner_size));
    if (config.layers.size() > max_layers)
      return invalid("layers: " + std::to_string(config.layers.size()) + " blocks, at most " + std::to_string(max_layers));
    if (!std::isfinite(config.layer_norm_epsilon) || config.layer_norm_epsilon < 0.0f)
      return invalid("layer_norm_epsilon must be finite and >= 0");
    if (!std::isfinite(config.embedding_scale)) return invalid("embedding_scale must be finite");
    if (std::isnan(config.mask_value) || config.mask_value == std::numeric_limits<float>::infinity())
      return invalid("mask_value must be finite or -inf");
    if (config.position_offset > max_window) return invalid("position_offset above " + std::to_string(max_window));
    if (catalogue.size() == 0) return fail(ErrorCode::invalid_config, name + ": sasrec needs an item catalogue (histories are external item ids)");

    const auto hidden = static_cast<std::int64_t>(config.hidden_size);
    const auto inner = static_cast<std::int64_t>(config.inner_size);
    detail::Fingerprint fingerprint;
    auto tensor = [&](const std::string& tensor_name, const std::string& role,
                      const std::vector<std::int64_t>& shape) -> Result<const format::TensorInfo*> {
      auto found = file.tensor(tensor_name, "sasrec." + role, format::DType::f32, shape);
      if (found) {
        fingerprint.add((*found)->name);
        for (std::int64_t extent : (*found)->shape) fingerprint.add(extent);
        fingerprint.add((*found)->stored_crc32);
      }
      return found;
    };
    // Optional tensors: empty name = absent (nullptr).
    auto optional = [&](const std::string& tensor_name, const std::string& role, const std::vector<std::int64_t>& shape,
                        const float** out) -> Result<void> {
      *out = nullptr;
      if (tensor_name.empty()) return {};
      auto found = tensor(tensor_name, role, shape);
      RECLITE_TRY(found);
      *out = (*found)->f32();
      return {};
    };
    auto required = [&](const std::string& tensor_name, const std::string& role, const std::vector<std::int64_t>& shape,
                        const float** out) -> Result<void> {
      if (tensor_name.empty())
        return fail(ErrorCode::missing_tensor, name + ": sasrec." + role + " names no tensor (empty name)");
      return optional(tensor_name, role, shape, out);
    };

    auto items = tensor(config.item_embedding, "item_embedding", {-1, hidden});
    RECLITE_TRY(items);
    model->item_table_ = (*items)->f32();
    model->item_rows_ = static_cast<std::size_t>((*items)->shape[0]);
    if (config.padding_row < 0 || static_cast<std::uint64_t>(config.padding_row) >= model->item_rows_)
      return invalid("padding_row " + std::to_string(config.padding_row) + " is outside the " +
                     std::to_string(model->item_rows_) + "-row item_embedding '" + config.item_embedding + "'");
    auto positions = tensor(config.position_embedding, "position_embedding", {-1, hidden});
    RECLITE_TRY(positions);
    model->position_table_ = (*positions)->f32();
    const std::int64_t position_rows = (*positions)->shape[0];
    const std::int64_t needed_positions = static_cast<std::int64_t>(config.max_length) + config.position_offset;
    if (position_rows < needed_positions)
      return fail(ErrorCode::tensor_shape, name + ": tensor '" + config.position_embedding +
                                               "' (sasrec.position_embedding): " + std::to_string(position_rows) +
                                               " rows, needs max_length + position_offset = " +
                                               std::to_string(needed_positions));
    const std::vector<std::int64_t> vector{hidden};
    const std::vector<std::int64_t> square{hidden, hidden};
    if (config.embedding_norm_weight.empty() != config.embedding_norm_bias.empty())
      return invalid("embedding_norm_weight and embedding_norm_bias must be both present or both absent");
    RECLITE_TRY(optional(config.embedding_norm_weight, "embedding_norm_weight", vector, &model->embedding_norm_weight_));
    RECLITE_TRY(optional(config.embedding_norm_bias, "embedding_norm_bias", vector, &model->embedding_norm_bias_));
    if (config.final_norm_weight.empty() != config.final_norm_bias.empty())
      return invalid("final_norm_weight and final_norm_bias must be both present or both absent");
    RECLITE_TRY(optional(config.final_norm_weight, "final_norm_weight", vector, &model->final_norm_weight_));
    RECLITE_TRY(optional(config.final_norm_bias, "final_norm_bias", vector, &model->final_norm_bias_));

    for (std::size_t l = 0; l < config.layers.size(); ++l) {
      const format::TransformerLayerConfig& names = config.layers[l];
      const std::string at = "layers[" + std::to_string(l) + "].";
      SasRecLayerWeights weights;
      RECLITE_TRY(required(names.query_weight, at + "query_weight", square, &weights.query_weight));
      RECLITE_TRY(optional(names.query_bias, at + "query_bias", vector, &weights.query_bias));
      RECLITE_TRY(required(names.key_weight, at + "key_weight", square, &weights.key_weight));
      RECLITE_TRY(optional(names.key_bias, at + "key_bias", vector, &weights.key_bias));
      RECLITE_TRY(required(names.value_weight, at + "value_weight", square, &weights.value_weight));
      RECLITE_TRY(optional(names.value_bias, at + "value_bias", vector, &weights.value_bias));
      RECLITE_TRY(optional(names.output_weight, at + "output_weight", square, &weights.output_weight));
      RECLITE_TRY(optional(names.output_bias, at + "output_bias", vector, &weights.output_bias));
      RECLITE_TRY(required(names.attention_norm_weight, at + "attention_norm_weight", vector, &weights.attention_norm_weight));
      RECLITE_TRY(required(names.attention_norm_bias, at + "attention_norm_bias", vector, &weights.attention_norm_bias));
      RECLITE_TRY(required(names.inner_weight, at + "inner_weight", {inner, hidden}, &weights.inner_weight));
      RECLITE_TRY(optional(names.inner_bias, at + "inner_bias", {inner}, &weights.inner_bias));
      RECLITE_TRY(required(names.outer_weight, at + "outer_weight", {hidden, inner}, &weights.outer_weight));
      RECLITE_TRY(optional(names.outer_bias, at + "outer_bias", vector, &weights.outer_bias));
      RECLITE_TRY(required(names.feed_forward_norm_weight, at + "feed_forward_norm_weight", vector,
                           &weights.feed_forward_norm_weight));
      RECLITE_TRY(required(names.feed_forward_norm_bias, at + "feed_forward_norm_bias", vector,
                           &weights.feed_forward_norm_bias));
      model->layers_.push_back(weights);
    }
    // Pack every dense layer once; the query projection carries the logit scale 1 / sqrt(head size).
    const std::size_t d = config.hidden_size;
    const float query_scale = 1.0f / std::sqrt(static_cast<float>(d / config.heads));
    for (const SasRecLayerWeights& weights : model->layers_) {
      SasRecPackedLayer packed;
      packed.query = ops::PackedLinear(weights.query_weight, weights.query_bias, d, d, query_scale);
      packed.key = ops::PackedLinear(weights.key_weight, weights.key_bias, d, d);
      packed.value = ops::PackedLinear(weights.value_weight, weights.value_bias, d, d);
      if (weights.output_weight != nullptr)
        packed.output = ops::PackedLinear(weights.output_weight, weights.output_bias, d, d);
      packed.inner = ops::PackedLinear(weights.inner_weight, weights.inner_bias, config.inner_size, d);
      packed.outer = ops::PackedLinear(weights.outer_weight, weights.outer_bias, d, config.inner_size);
      model->packed_layers_.push_back(std::move(packed));
    }

    // Catalogue: every entry a real item row (the padding row is not an item); note whether entries are
    // consecutive rows, so the item table itself can serve as the [entries, hidden] item-vector matrix.
    const std::uint32_t first_row = catalogue.row(0);
    bool consecutive = true;
    for (std::size_t entry = 0; entry < catalogue.size(); ++entry) {
      const std::uint32_t row = catalogue.row(entry);
      if (row >= model->item_rows_)
        return fail(ErrorCode::invalid_item_catalogue, name + ": catalogue row " + std::to_string(row) + " is outside the " +
                                                           std::to_string(model->item_rows_) + "-row item_embedding '" +
                                                           config.item_embedding + "'");
      if (static_cast<std::int64_t>(row) == config.padding_row)
        return fail(ErrorCode::invalid_item_catalogue, name + ": catalogue entry " + std::to_string(entry) + " (item id " +
                                                           std::to_string(catalogue.external_id(entry)) +
                                                           ") is the padding row " + std::to_string(row) +
                                                           ", which is not an item");
      consecutive = consecutive && row == first_row + entry;
    }
    if (consecutive) model->item_vectors_ = model->item_table_ + static_cast<std::size_t>(first_row) * config.hidden_size;

    model->hidden_ = config.hidden_size;
    model->window_ = config.max_length;
    model->head_size_ = config.hidden_size / config.heads;
    model->key_stride_ = detail::sasrec_key_stride(model->window_);
    model->scratch_ = detail::SasRecScratch(model->window_, model->hidden_, config.inner_size, config.heads);

    format::InputFieldConfig field;
    field.name = config.history_field;
    field.kind = format::FieldKind::history;
    field.ids = format::IdSpace::item;
    field.embedding = config.item_embedding;
    field.vocabulary_size = static_cast<std::int64_t>(model->item_rows_);
    field.max_length = config.max_length;
    field.padding_row = config.padding_row;
    model->history_field_ = field;
    model->user_fields_ = {&model->history_field_};

    // Everything that changes what the model computes: config values, tensor names, shapes and CRCs, catalogue.
    fingerprint.add(std::string("reclite.sasrec"));
    fingerprint.add(config.variant);
    fingerprint.add(config.max_length);
    fingerprint.add(config.hidden_size);
    fingerprint.add(config.heads);
    fingerprint.add(config.inner_size);
    fingerprint.add(static_cast<std::uint8_t>(config.activation));
    fingerprint.add(config.layer_norm_epsilon);
    fingerprint.add(config.embedding_scale);
    fingerprint.add(config.padding_row);
    fingerprint.add(static_cast<std::uint8_t>(config.padding_side));
    fingerprint.add(config.position_offset);
    fingerprint.add(config.pads_use_position_zero);
    fingerprint.add(config.mask_padding_keys);
    fingerprint.add(config.mask_value);
    fingerprint.add(config.zero_padding_rows);
    fingerprint.add(static_cast<std::uint8_t>(config.block_style));
    fingerprint.add<std::uint64_t>(config.layers.size());
    fingerprint.add<std::uint64_t>(catalogue.size());
    fingerprint.add(crc32(catalogue.external_ids(), catalogue.size() * sizeof(std::int64_t)));
    for (std::size_t entry = 0; entry < catalogue.size(); ++entry) fingerprint.add(catalogue.row(entry));
    model->fingerprint_ = fingerprint.value;
    return model;
  }

  // --- ArchitectureModel --------------------------------------------------------------------------------------
  format::Architecture architecture() const noexcept override { return format::Architecture::sasrec; }
  const std::vector<const format::InputFieldConfig*>& user_fields() const noexcept override { return user_fields_; }
  std::size_t user_dim() const noexcept override { return hidden_; }
  std::size_t item_dim() const noexcept override { return hidden_; }
  WorkspaceSize workspace_size() const noexcept override { return WorkspaceSize{scratch_.total, window_, 0}; }

  // One history field. Right-padded models need at least one known item (they read position n-1).
  Result<void> check_user(Span<const FieldInput> inputs) const override {
    if (inputs.size() != 1)
      return fail(ErrorCode::invalid_argument, name_ + ": sasrec takes 1 field ('" + config_->history_field +
                                                   "'), got " + std::to_string(inputs.size()));
    if (reads_last_item()) {
      const Span<const std::int64_t> ids = inputs[0].ids;
      bool any_known = false;
      for (std::size_t i = ids.size(); i-- > 0 && !any_known;) any_known = row_of(ids[i]) >= 0;
      if (!any_known) return empty_history_error(ids.size());
    }
    return {};
  }

  void encode_user(Span<const FieldInput> inputs, float* output, Workspace& workspace,
                   EncodeStats* stats) const noexcept override {
    std::uint32_t* rows = workspace.rows.data();
    const std::size_t count = collect_window(inputs[0].ids, rows, stats);
    encode_window(rows + (window_ - count), count, output, workspace.floats.data(), nullptr, nullptr);
  }

  void encode_item_entry(std::size_t entry, float* output, Workspace&) const noexcept override {
    const float* row = item_table_ + static_cast<std::size_t>(catalogue_->row(entry)) * hidden_;
    std::copy(row, row + hidden_, output);
  }

  // --- SASRec ------------------------------------------------------------------------------------------------
  const format::SasRecConfig& config() const noexcept { return *config_; }
  const std::string& model_name() const noexcept { return name_; }
  std::size_t hidden_size() const noexcept { return hidden_; }
  std::size_t max_length() const noexcept { return window_; }
  std::size_t layer_count() const noexcept { return layers_.size(); }
  std::size_t scratch_floats() const noexcept { return scratch_.total; }
  // Floats of one layer's key cache (transposed per head, rows of key_stride) and value cache ([max_length][hidden]).
  std::size_t key_cache_floats() const noexcept { return hidden_ * key_stride_; }
  std::size_t value_cache_floats() const noexcept { return window_ * hidden_; }
  // Bytes of the dense layers packed at load, beside the mapped model file.
  std::size_t packed_weight_bytes() const noexcept {
    std::size_t bytes = 0;
    for (const SasRecPackedLayer& layer : packed_layers_) bytes += layer.bytes();
    return bytes;
  }
  // Identifies what the model computes (config, tensors by CRC, catalogue); serialised states carry it.
  std::uint64_t fingerprint() const noexcept { return fingerprint_; }
  // Right padding: the output is read at n-1, an empty window has none, and a window that is not full can be
  // extended one slot at a time (earlier slots never see later ones). Left padding shifts every slot per event.
  bool reads_last_item() const noexcept { return config_->padding_side == format::PaddingSide::right; }
  bool supports_incremental() const noexcept { return reads_last_item(); }
  // The item table rows of catalogue entries 0..N-1 when they are consecutive rows ([N, hidden]); else null.
  const float* item_vectors() const noexcept { return item_vectors_; }
  const Catalogue& catalogue() const noexcept { return *catalogue_; }

  // Item table row of an external item id, or -1 when it is not in the catalogue.
  std::int64_t row_of(std::int64_t item_id) const noexcept {
    const std::int64_t entry = catalogue_->find_entry(item_id);
    return entry < 0 ? -1 : static_cast<std::int64_t>(catalogue_->row(static_cast<std::size_t>(entry)));
  }

  Error empty_history_error(std::size_t ids) const {
    return fail(ErrorCode::empty_history,
                name_ + ": sasrec '" + config_->variant + "' reads its output at the last item (right padding), but field '" +
                    config_->history_field + "' holds no known item (" + std::to_string(ids) + " ids, none in the catalogue)");
  }

  // The most recent max_length known items of `ids` (most recent last), written to rows[L-n, L) oldest first;
  // returns n. Unknown ids are skipped before windowing; ids older than the oldest kept item are truncated.
  std::size_t collect_window(Span<const std::int64_t> ids, std::uint32_t* rows, EncodeStats* stats) const noexcept {
    std::size_t count = 0;
    std::size_t unknown = 0;
    std::size_t i = ids.size();
    while (i > 0 && count < window_) {
      const std::int64_t row = row_of(ids[--i]);
      if (row < 0)
        ++unknown;
      else
        rows[window_ - 1 - count++] = static_cast<std::uint32_t>(row);
    }
    if (stats != nullptr) {
      stats->history_ids_used += count;
      stats->history_ids_unknown += unknown;
      stats->history_ids_truncated += i;
    }
    return count;
  }

  // The user vector of a window of `count` known item rows (oldest first, count <= max_length; count >= 1 for
  // right padding). keys/values: null, or per-layer caches (layers * key_cache_floats(), layers *
  // value_cache_floats()) that receive every evaluated slot's keys and values (right padding: slots 0..count-1).
  // scratch has scratch_floats().
  void encode_window(const std::uint32_t* rows, std::size_t count, float* output, float* scratch, float* keys,
                     float* values) const noexcept {
    const bool left = !reads_last_item();
    const std::size_t slots = left ? window_ : count;
    const std::size_t first_valid = left ? window_ - count : 0;
    RECLITE_ASSERT(count <= window_ && slots >= 1);
    float* x = scratch + scratch_.x;
    float* out = scratch + scratch_.out;
    for (std::size_t slot = 0; slot < slots; ++slot) {
      const bool pad = slot < first_valid;
      embed(pad ? static_cast<std::uint32_t>(config_->padding_row) : rows[slot - first_valid], slot, pad, x + slot * hidden_);
    }
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      const bool last = l + 1 == layers_.size();
      float* layer_keys = keys != nullptr ? keys + l * key_cache_floats() : scratch + scratch_.keys;
      float* layer_values = values != nullptr ? values + l * value_cache_floats() : scratch + scratch_.values;
      run_block(l, x, 0, last ? slots - 1 : 0, slots, first_valid, layer_keys, layer_values, out, scratch);
      std::swap(x, out);
    }
    // x holds the read slot's row: row 0 after a last block that queried only it, row slots-1 with no blocks.
    finish(layers_.empty() ? x + (slots - 1) * hidden_ : x, output);
  }

  // Extends a right-padded window of `position` slots by one item row: computes slot `position` in every block
  // against the caches (slots 0..position-1 filled by encode_window or earlier appends) and writes the new user
  // vector. position < max_length.
  void append_position(std::uint32_t row, std::size_t position, float* output, float* scratch, float* keys,
                       float* values) const noexcept {
    RECLITE_ASSERT(reads_last_item() && position < window_);
    float* x = scratch + scratch_.x;
    float* out = scratch + scratch_.out;
    embed(row, position, false, x);
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      run_block(l, x, position, position, position + 1, 0, keys + l * key_cache_floats(),
                values + l * value_cache_floats(), out, scratch);
      std::swap(x, out);
    }
    finish(x, output);
  }

 private:
  SasRecModel() : scratch_(0, 0, 0, 0) {}

  // x = E[row] * scale + P[position]; embedding LayerNorm; zeroed when a pad and zero_padding_rows.
  void embed(std::uint32_t row, std::size_t slot, bool pad, float* x) const noexcept {
    if (pad && config_->zero_padding_rows) {
      std::fill(x, x + hidden_, 0.0f);
      return;
    }
    const std::size_t position = pad && config_->pads_use_position_zero ? 0 : slot + config_->position_offset;
    ops::scale(item_table_ + static_cast<std::size_t>(row) * hidden_, config_->embedding_scale, x, hidden_);
    ops::add_to(position_table_ + position * hidden_, x, hidden_);
    if (embedding_norm_weight_ != nullptr)
      ops::layer_norm(x, embedding_norm_weight_, embedding_norm_bias_, config_->layer_norm_epsilon, x, hidden_);
  }

  void finish(const float* row, float* output) const noexcept {
    if (final_norm_weight_ != nullptr)
      ops::layer_norm(row, final_norm_weight_, final_norm_bias_, config_->layer_norm_epsilon, output, hidden_);
    else
      std::copy(row, row + hidden_, output);
  }

  void layer_norm_rows(const float* in, const float* gamma, const float* beta, float* out, std::size_t rows) const noexcept {
    for (std::size_t r = 0; r < rows; ++r)
      ops::layer_norm(in + r * hidden_, gamma, beta, config_->layer_norm_epsilon, out + r * hidden_, hidden_);
  }

  // One block. x holds the block inputs of slots [key_first, slots) (row r at x + (r - key_first) * hidden);
  // keys/values receive slots [key_first, slots) (slot r: column r of the transposed keys, row r * hidden of the
  // values; earlier slots are already there); out receives the outputs of slots [query_first, slots) (row r at
  // out + (r - query_first) * hidden).
  void run_block(std::size_t l, const float* x, std::size_t key_first, std::size_t query_first, std::size_t slots,
                 std::size_t first_valid, float* keys, float* values, float* out, float* scratch) const noexcept {
    const SasRecLayerWeights& layer = layers_[l];
    const SasRecPackedLayer& packed = packed_layers_[l];
    const std::size_t d = hidden_;
    const std::size_t new_keys = slots - key_first;
    const std::size_t queries = slots - query_first;
    const float* x_query = x + (query_first - key_first) * d;
    float* normed = scratch + scratch_.normed;
    float* query = scratch + scratch_.query;
    float* context = scratch + scratch_.context;
    float* attended = scratch + scratch_.attended;
    float* inner = scratch + scratch_.inner;
    const format::SasRecBlockStyle style = config_->block_style;

    // Keys and values: from y = LN_att(x) (pre_norm) or from x.
    const float* key_input = x;
    if (style == format::SasRecBlockStyle::pre_norm) {
      layer_norm_rows(x, layer.attention_norm_weight, layer.attention_norm_bias, normed, new_keys);
      key_input = normed;
    }
    // Queries: x (post_norm), LN_att(x) (query_norm, also the residual), y (pre_norm).
    const float* query_input = x_query;
    if (style == format::SasRecBlockStyle::query_norm) {
      layer_norm_rows(x_query, layer.attention_norm_weight, layer.attention_norm_bias, normed, queries);
      query_input = normed;
    } else if (style == format::SasRecBlockStyle::pre_norm) {
      query_input = normed + (query_first - key_first) * d;
    }
    float* key_rows = scratch + scratch_.key_rows;
    // One new position whose keys, values and query read the same row (an append): the three projections stream
    // together; otherwise keys and values for every new slot, queries for the query slots.
    const bool one_row = new_keys == 1 && queries == 1 && query_input == key_input;
    if (one_row) {
      const ops::PackedLinear* projections[] = {&packed.key, &packed.value, &packed.query};
      float* outputs[] = {key_rows, values + key_first * d, query};
      ops::linear_one_row(key_input, projections, outputs, 3);
    } else {
      ops::linear(key_input, d, packed.key, key_rows, d, new_keys);
      ops::linear(key_input, d, packed.value, values + key_first * d, d, new_keys);
      ops::linear(query_input, d, packed.query, query, d, queries);
    }
    for (std::size_t r = 0; r < new_keys; ++r)  // transposed: channel c of slot key_first + r at c * key_stride
      for (std::size_t c = 0; c < d; ++c) keys[c * key_stride_ + key_first + r] = key_rows[r * d + c];

    attend(query, keys, values, query_first, slots, first_valid, context, scratch);
    if (!packed.output.empty()) {
      ops::linear(context, d, packed.output, attended, d, queries);
    } else {
      std::copy(context, context + queries * d, attended);
      if (layer.output_bias != nullptr)
        for (std::size_t r = 0; r < queries; ++r) ops::add_to(layer.output_bias, attended + r * d, d);
    }

    // Residuals, norms and the feed-forward; `context` is free again and holds the FFN input.
    const std::size_t inner_size = config_->inner_size;
    float* ffn_input = context;
    const float* residual = nullptr;
    switch (style) {
      case format::SasRecBlockStyle::post_norm:  // a = LN_att(x + attn); out = LN_ff(a + FFN(a))
        ops::add_to(x_query, attended, queries * d);
        layer_norm_rows(attended, layer.attention_norm_weight, layer.attention_norm_bias, ffn_input, queries);
        residual = ffn_input;
        break;
      case format::SasRecBlockStyle::query_norm:  // z = LN_ff(q + attn); out = FFN(z) + z
        ops::add_to(query_input, attended, queries * d);
        layer_norm_rows(attended, layer.feed_forward_norm_weight, layer.feed_forward_norm_bias, ffn_input, queries);
        residual = ffn_input;
        break;
      case format::SasRecBlockStyle::pre_norm:  // h = x + attn; out = h + FFN(LN_ff(h))
        ops::add_to(x_query, attended, queries * d);
        layer_norm_rows(attended, layer.feed_forward_norm_weight, layer.feed_forward_norm_bias, ffn_input, queries);
        residual = attended;
        break;
    }
    ops::linear(ffn_input, d, packed.inner, inner, inner_size, queries, config_->activation);
    ops::linear(inner, inner_size, packed.outer, out, d, queries);
    ops::add_to(residual, out, queries * d);
    if (style == format::SasRecBlockStyle::post_norm)
      layer_norm_rows(out, layer.feed_forward_norm_weight, layer.feed_forward_norm_bias, out, queries);
    if (config_->zero_padding_rows)
      for (std::size_t slot = query_first; slot < std::min(first_valid, slots); ++slot)
        std::fill(out + (slot - query_first) * d, out + (slot - query_first + 1) * d, 0.0f);
  }

  // context[i] = concat over heads of softmax(q_i K^T / sqrt(dh) + M_i) V for query slots [query_first, slots);
  // query row i at query + (i - query_first) * hidden, already scaled by 1 / sqrt(dh); keys (transposed per head)
  // and values hold slots [0, slots). Query rows go four at a time: scores only over the keys the block can open.
  void attend(const float* query, const float* keys, const float* values, std::size_t query_first, std::size_t slots,
              std::size_t first_valid, float* context, float* scratch) const noexcept {
    const std::size_t d = hidden_;
    const std::size_t dh = head_size_;
    const std::size_t queries = slots - query_first;
    const std::size_t stride = key_stride_;
    float* scores = scratch + scratch_.scores;  // row i at scores + i * stride
    const bool mask_pads = config_->mask_padding_keys && first_valid > 0;
    const float mask_value = config_->mask_value;
    const bool removes = std::isinf(mask_value);
    // Keys a query row takes part in: 0..slot, or the whole window when every key is blocked by a finite mask
    // (that row is the window uniformly shifted by mask_value, the future included).
    auto extent_of = [&](std::size_t slot) {
      return mask_pads && slot < first_valid && !removes ? slots : slot + 1;
    };
    const std::size_t heads = config_->heads;
    // Masks of one score row: every key blocked with a finite mask, or the pads; then the softmax over `extent`.
    auto normalise = [&](float* row, std::size_t slot, std::size_t extent) {
      if (extent > slot + 1) {  // every key blocked, finite mask
        for (std::size_t j = 0; j < extent; ++j) row[j] += mask_value;
      } else if (mask_pads) {
        for (std::size_t j = 0; j < std::min(first_valid, extent); ++j) row[j] += mask_value;
      }
      ops::softmax(row, row, extent);
    };
    if (queries == 1) {
      // One query (an append, or the last block of an encode): all heads at once, score row h for head h. The
      // same sums in the same order as the block path below, so an append equals the full encode bit for bit.
      const std::size_t extent = extent_of(query_first);
      const std::size_t columns = std::min(stride, (extent + 15) / 16 * 16);
      ops::gemm_nn_row_groups(query, dh, keys, stride, dh * stride, scores, stride, heads, columns, dh);
      for (std::size_t h = 0; h < heads; ++h) normalise(scores + h * stride, query_first, extent);
      ops::gemm_nn_row_groups(scores, stride, values, d, dh, context, dh, heads, dh, extent);
      return;
    }
    constexpr std::size_t block = 4;
    for (std::size_t h = 0; h < heads; ++h) {
      const float* head_keys = keys + h * dh * stride;
      for (std::size_t i0 = 0; i0 < queries; i0 += block) {
        const std::size_t rows = std::min(block, queries - i0);
        std::size_t open = 0;  // keys any row of the block takes part in
        for (std::size_t i = i0; i < i0 + rows; ++i) open = std::max(open, extent_of(query_first + i));
        // Whole 16-float groups (inside the key stride); scores past a row's extent are ignored.
        const std::size_t columns = std::min(stride, (open + 15) / 16 * 16);
        float* block_scores = scores + i0 * stride;
        ops::gemm_nn(query + i0 * d + h * dh, d, head_keys, stride, block_scores, stride, rows, columns, dh);
        for (std::size_t i = i0; i < i0 + rows; ++i) {
          const std::size_t slot = query_first + i;
          float* row = scores + i * stride;
          const std::size_t extent = extent_of(slot);
          normalise(row, slot, extent);
          std::fill(row + extent, row + open, 0.0f);
        }
        ops::gemm_nn(block_scores, stride, values + h * dh, d, context + i0 * d + h * dh, d, rows, dh, open);
      }
    }
  }

  const format::SasRecConfig* config_ = nullptr;
  const Catalogue* catalogue_ = nullptr;
  std::string name_;
  const float* item_table_ = nullptr;
  std::size_t item_rows_ = 0;
  const float* item_vectors_ = nullptr;
  const float* position_table_ = nullptr;
  const float* embedding_norm_weight_ = nullptr;
  const float* embedding_norm_bias_ = nullptr;
  const float* final_norm_weight_ = nullptr;
  const float* final_norm_bias_ = nullptr;
  std::vector<SasRecLayerWeights> layers_;
  std::vector<SasRecPackedLayer> packed_layers_;
  std::size_t hidden_ = 0;
  std::size_t window_ = 0;
  std::size_t head_size_ = 0;
  std::size_t key_stride_ = 0;  // floats per row of transposed keys
  detail::SasRecScratch scratch_;
  std::uint64_t fingerprint_ = 0;
  format::InputFieldConfig history_field_;
  std::vector<const format::InputFieldConfig*> user_fields_;
};

}  // namespace models
RECLITE_END_NAMESPACE
