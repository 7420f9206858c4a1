// Session: the per-thread side of a Model. It owns the workspace (sized once, at construction), checks each
// request once on entry, then evaluates without allocating. One Session per thread; it must not outlive its
// Model.
//
//   reclite::Session session(*model);
//   std::vector<float> user(model->user_dim());
//   reclite::Result<void> done = session.encode_user(request, user);
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
#include "reclite/models/model.hpp"
#include "reclite/models/workspace.hpp"
#include "reclite/ops/dot.hpp"

RECLITE_BEGIN_NAMESPACE

class Session {
 public:
  explicit Session(const Model& model) : model_(&model) { workspace_.reserve(model.architecture_model().workspace_size()); }

  const Model& model() const noexcept { return *model_; }

  // The user vector(s) of a request: one FieldInput per Model::user_fields() entry, in that order.
  // `user_vector` must hold user_vector_count() x user_dim() floats.
  Result<void> encode_user(Span<const FieldInput> request, Span<float> user_vector) {
    const auto& architecture = model_->architecture_model();
    const std::size_t needed = architecture.user_dim() * architecture.user_vector_count();
    if (user_vector.size() < needed)
      return fail(ErrorCode::output_size, model_->name() + ": user vector buffer holds " + std::to_string(user_vector.size()) +
                                              " floats, needs " + std::to_string(needed));
    RECLITE_TRY(architecture.check_user(request));
    stats_ = EncodeStats();
    architecture.encode_user(request, user_vector.data(), workspace_, &stats_);
    return {};
  }

  // The vector of catalogue item `item_id` (external id), computed by the model's item side.
  Result<void> encode_item(std::int64_t item_id, Span<float> item_vector) {
    auto entry = find_entry(item_id);
    RECLITE_TRY(entry);
    const std::size_t dim = model_->item_dim();
    if (item_vector.size() < dim)
      return fail(ErrorCode::output_size, model_->name() + ": item vector buffer holds " + std::to_string(item_vector.size()) +
                                              " floats, needs " + std::to_string(dim));
    model_->architecture_model().encode_item_entry(*entry, item_vector.data(), workspace_);
    return {};
  }

  // Scores <user, item> for each candidate (external ids), from the precomputed item vectors, or from the item
  // side when the file has none. `scores` holds one float per candidate.
  Result<void> score_items(Span<const float> user_vector, Span<const std::int64_t> item_ids, Span<float> scores) {
    const std::size_t dim = model_->item_dim();
    if (user_vector.size() != model_->user_dim() || model_->user_dim() != dim)
      return fail(ErrorCode::invalid_argument, model_->name() + ": user vector has " + std::to_string(user_vector.size()) +
                                                   " values, expected " + std::to_string(dim));
    if (scores.size() < item_ids.size())
      return fail(ErrorCode::output_size, model_->name() + ": scores buffer holds " + std::to_string(scores.size()) +
                                              " floats, needs " + std::to_string(item_ids.size()));
    for (float value : user_vector)
      if (!std::isfinite(value)) return fail(ErrorCode::non_finite_input, model_->name() + ": user vector is not finite");
    const float* vectors = model_->item_vectors();
    const models::Catalogue& catalogue = model_->catalogue();
    // Candidates are random rows of a large table: look up and prefetch a block ahead, so the cache misses of
    // the block overlap instead of following one another.
    constexpr std::size_t block = 16;
    std::size_t entries[block];
    for (std::size_t start = 0; start < item_ids.size(); start += block) {
      const std::size_t end = std::min(item_ids.size(), start + block);
      for (std::size_t i = start; i < end; ++i) catalogue.prefetch(item_ids[i]);
      for (std::size_t i = start; i < end; ++i) {
        auto entry = find_entry(item_ids[i]);
        RECLITE_TRY(entry);
        entries[i - start] = *entry;
        if (vectors != nullptr) __builtin_prefetch(vectors + *entry * dim);
      }
      for (std::size_t i = start; i < end; ++i) {
        const float* item = vectors != nullptr ? vectors + entries[i - start] * dim : nullptr;
        if (item == nullptr) {
          model_->architecture_model().encode_item_entry(entries[i - start], item_scratch(dim), workspace_);
          item = item_scratch_.data();
        }
        scores[i] = ops::dot(user_vector.data(), item, dim);
      }
    }
    return {};
  }

  // Multi-interest models (MIND): the label-aware user vector of `request` for the known target `item_id`
  // (external id): encode_user, then attention of the interests on the target's item vector. `user_vector`
  // holds user_dim() floats; last_stats() then describes the request. Allocates only on first use.
  Result<void> label_aware_vector(Span<const FieldInput> request, std::int64_t item_id, Span<float> user_vector) {
    const auto& architecture = model_->architecture_model();
    const std::size_t dim = architecture.user_dim(), count = architecture.user_vector_count();
    if (architecture.architecture() != Architecture::mind)
      return fail(ErrorCode::invalid_argument, model_->name() + ": label-aware attention needs a multi-interest model, this is '" +
                                                   format::architecture_name(architecture.architecture()) + "'");
    if (user_vector.size() < dim)
      return fail(ErrorCode::output_size, model_->name() + ": user vector buffer holds " + std::to_string(user_vector.size()) +
                                              " floats, needs " + std::to_string(dim));
    auto entry = find_entry(item_id);
    RECLITE_TRY(entry);
    if (interests_.size() < dim * count) interests_.resize(dim * count);  // first use only
    RECLITE_TRY(encode_user(request, Span<float>(interests_.data(), dim * count)));
    architecture.encode_item_entry(*entry, item_scratch(model_->item_dim()), workspace_);
    if (!architecture.label_aware_vector(interests_.data(), stats_.active_interests, item_scratch_.data(),
                                         user_vector.data(), workspace_))
      return fail(ErrorCode::invalid_argument, model_->name() + ": this model has no label-aware attention");
    return {};
  }

  // What the last encode_user did with its histories (ids used, truncated, unknown) and, for multi-interest
  // models, how many interests are active (EncodeStats::active_interests).
  const EncodeStats& last_stats() const noexcept { return stats_; }

 private:
  Result<std::size_t> find_entry(std::int64_t item_id) const {
    const std::int64_t entry = model_->catalogue().find_entry(item_id);
    if (entry < 0)
      return fail(ErrorCode::feature_out_of_vocabulary, model_->name() + ": item id " + std::to_string(item_id) +
                                                            " is not in the catalogue");
    return static_cast<std::size_t>(entry);
  }
  float* item_scratch(std::size_t dim) {
    if (item_scratch_.size() < dim) item_scratch_.resize(dim);  // first use only
    return item_scratch_.data();
  }

  const Model* model_;
  models::Workspace workspace_;
  std::vector<float> item_scratch_;
  std::vector<float> interests_;
  EncodeStats stats_;
};

// Defined here because it needs a Session.
inline Result<SelfTestReport> Model::run_self_test() const {
  SelfTestReport report;
  Session session(*this);
  const auto& samples = file().self_test();
  report.samples = samples.size();
  const auto& fields = user_fields();
  for (std::size_t s = 0; s < samples.size(); ++s) {
    const auto& sample = samples[s];
    std::vector<float> got(sample.expected.size());
    if (sample.target == format::SelfTestTarget::user_vector) {
      std::vector<FieldInput> request(fields.size());
      for (const auto& value : sample.inputs) {
        auto index = user_field_index(value.field);
        if (!index)
          return fail(ErrorCode::self_test_mismatch, name() + ": self-test sample " + std::to_string(s) + ": " + index.error().message);
        request[*index].ids = Span<const std::int64_t>(value.ids.data(), value.ids.size());
        request[*index].values = Span<const float>(value.values.data(), value.values.size());
      }
      if (got.size() != user_dim() * user_vector_count())
        return fail(ErrorCode::self_test_mismatch, name() + ": self-test sample " + std::to_string(s) + " expects " +
                                                       std::to_string(got.size()) + " values, the model gives " +
                                                       std::to_string(user_dim() * user_vector_count()));
      auto done = session.encode_user(request, got);
      if (!done)
        return fail(ErrorCode::self_test_mismatch, name() + ": self-test sample " + std::to_string(s) + ": " + done.error().message);
    } else {
      if (got.size() != item_dim())
        return fail(ErrorCode::self_test_mismatch, name() + ": self-test sample " + std::to_string(s) + " expects " +
                                                       std::to_string(got.size()) + " values, the item side gives " +
                                                       std::to_string(item_dim()));
      auto done = session.encode_item(sample.item_id, got);
      if (!done)
        return fail(ErrorCode::self_test_mismatch, name() + ": self-test sample " + std::to_string(s) + ": " + done.error().message);
    }
    for (std::size_t i = 0; i < got.size(); ++i) {
      const double error = std::fabs(static_cast<double>(got[i]) - static_cast<double>(sample.expected[i]));
      const bool bad = !(error <= sample.tolerance);  // NaN fails
      if (bad) report.passed = false;
      if (bad || error > report.max_error) {
        if (error > report.max_error || std::isnan(error)) report.max_error = std::isnan(error) ? INFINITY : error;
        report.worst_sample = s;
      }
    }
  }
  return report;
}

RECLITE_END_NAMESPACE
