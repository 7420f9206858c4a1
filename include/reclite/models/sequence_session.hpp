// SequenceSession: the per-thread side of SASRec's incremental updates, as Session is for encode_user. It owns
// the scratch memory (sized once, at create) and updates per-user SequenceStates (models/sequence_state.hpp):
//
//   auto sequences = reclite::SequenceSession::create(*model);        // one per thread
//   auto state = sequences->start(history);                           // full encode, allocates the state
//   auto report = sequences->append(*state, tapped_item);             // microseconds, allocates nothing
//   std::vector<std::uint8_t> saved = state->serialize();             // keep across launches
//   auto restored = sequences->restore(saved);                        // refused if from another model
//
// append() computes only the new position in every block, against the cached keys and values, when the model is
// right-padded (RecBole) and the window is not full; that equals a full re-encode up to float32 rounding because
// causal attention never lets a slot see a later one. Otherwise it re-encodes the window (AppendReport::path says
// which): a full window shifts every position, and left-padded models (pmixer, torch-rechub) change pads and
// absolute positions with every event.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "reclite/core/config.hpp"
#include "reclite/core/result.hpp"
#include "reclite/core/span.hpp"
#include "reclite/models/model.hpp"
#include "reclite/models/sasrec.hpp"
#include "reclite/models/sequence_state.hpp"

RECLITE_BEGIN_NAMESPACE

struct AppendReport {
  UpdatePath path = UpdatePath::incremental;
  std::size_t length = 0;  // items in the window afterwards
};

class SequenceSession {
 public:
  // A session for `model`, which must hold a SASRec model (wrong_architecture otherwise) and outlive the session.
  static Result<SequenceSession> create(const Model& model) {
    if (model.architecture() != Architecture::sasrec)
      return fail(ErrorCode::wrong_architecture, model.name() + ": holds a '" + format::architecture_name(model.architecture()) +
                                                     "' model; sequence states need 'sasrec'");
    SequenceSession session;
    session.model_ = &model;
    session.sasrec_ = static_cast<const models::SasRecModel*>(&model.architecture_model());
    session.scratch_.resize(session.sasrec_->scratch_floats());
    return session;
  }

  const Model& model() const noexcept { return *model_; }

  // A state holding the most recent max_length known items of `history` (external ids, most recent last), fully
  // encoded. Unknown ids are skipped and counted (last_stats()). A right-padded model with no known item gives a
  // state without a user vector, ready for append; left-padded models encode the all-padding window.
  Result<SequenceState> start(Span<const std::int64_t> history) {
    SequenceState state = new_state();
    encode_history(state, history);
    return state;
  }

  // Appends one event (external item id) and updates the user vector. Allocates nothing.
  // Errors: state_model_mismatch when `state` was made for another model.
  Result<AppendReport> append(SequenceState& state, std::int64_t item_id) {
    RECLITE_TRY(check_owned(state));
    stats_ = EncodeStats();
    AppendReport report;
    const std::int64_t row = sasrec_->row_of(item_id);
    if (row < 0) {
      stats_.history_ids_unknown = 1;
      report.path = UpdatePath::skipped_unknown_item;
      report.length = state.length_;
      return report;
    }
    stats_.history_ids_used = 1;
    const std::size_t window = sasrec_->max_length();
    if (sasrec_->supports_incremental() && state.length_ < window) {
      const std::size_t position = state.length_;
      state.rows_[position] = static_cast<std::uint32_t>(row);
      state.ids_[position] = item_id;
      sasrec_->append_position(static_cast<std::uint32_t>(row), position, state.user_vector_.data(), scratch_.data(),
                               state.keys_.data(), state.values_.data());
      state.length_ = position + 1;
      state.has_user_vector_ = true;
      report.path = UpdatePath::incremental;
      report.length = state.length_;
      return report;
    }
    report.path = state.length_ == window ? UpdatePath::reencode_window_full : UpdatePath::reencode_padding;
    if (state.length_ == window) {
      // Drop the oldest item; the rest move one slot earlier.
      std::copy(state.rows_.begin() + 1, state.rows_.begin() + static_cast<std::ptrdiff_t>(window), state.rows_.begin());
      std::copy(state.ids_.begin() + 1, state.ids_.begin() + static_cast<std::ptrdiff_t>(window), state.ids_.begin());
      --state.length_;
      stats_.history_ids_truncated = 1;
    }
    state.rows_[state.length_] = static_cast<std::uint32_t>(row);
    state.ids_[state.length_] = item_id;
    ++state.length_;
    encode_state(state);
    report.length = state.length_;
    return report;
  }

  // Re-encodes `state` from a new history (as start, reusing the state's memory). Allocates nothing.
  Result<void> reset(SequenceState& state, Span<const std::int64_t> history) {
    RECLITE_TRY(check_owned(state));
    encode_history(state, history);
    return {};
  }

  // A state from SequenceState::serialize() bytes, validated, then re-encoded. Errors: corrupt_state (truncated,
  // corrupted, counts beyond the window, an item id not in the catalogue), unsupported_state_version,
  // state_model_mismatch (written for another model).
  Result<SequenceState> restore(Span<const std::uint8_t> bytes) {
    auto parsed = detail::parse_sequence_state(bytes);
    RECLITE_TRY(parsed);
    if (parsed->fingerprint != sasrec_->fingerprint() || parsed->max_length != sasrec_->max_length())
      return fail(ErrorCode::state_model_mismatch,
                  model_->name() + ": sequence state was written for another model (fingerprint " +
                      hex(parsed->fingerprint) + ", window " + std::to_string(parsed->max_length) + "; this model: " +
                      hex(sasrec_->fingerprint()) + ", window " + std::to_string(sasrec_->max_length()) + ")");
    SequenceState state = new_state();
    for (std::size_t i = 0; i < parsed->ids.size(); ++i) {
      const std::int64_t row = sasrec_->row_of(parsed->ids[i]);
      if (row < 0)
        return fail(ErrorCode::corrupt_state, model_->name() + ": sequence state item " + std::to_string(i) + " (id " +
                                                  std::to_string(parsed->ids[i]) + ") is not in the catalogue");
      state.rows_[i] = static_cast<std::uint32_t>(row);
      state.ids_[i] = parsed->ids[i];
    }
    state.length_ = parsed->ids.size();
    stats_ = EncodeStats();
    stats_.history_ids_used = state.length_;
    encode_state(state);
    return state;
  }

  // What the last start, reset, append or restore did with its ids (used, truncated, unknown).
  const EncodeStats& last_stats() const noexcept { return stats_; }

 private:
  SequenceSession() = default;

  static std::string hex(std::uint64_t value) {
    static const char digits[] = "0123456789abcdef";
    std::string text(16, '0');
    for (std::size_t i = 0; i < 16; ++i) text[15 - i] = digits[(value >> (4 * i)) & 15];
    return text;
  }

  SequenceState new_state() const {
    SequenceState state;
    const std::size_t window = sasrec_->max_length();
    const std::size_t hidden = sasrec_->hidden_size();
    state.fingerprint_ = sasrec_->fingerprint();
    state.max_length_ = window;
    state.rows_.assign(window, 0);
    state.ids_.assign(window, 0);
    if (sasrec_->supports_incremental()) {
      // The model's cache layout (keys transposed per head); zeros, so lanes read past the last slot are finite.
      state.keys_.assign(sasrec_->layer_count() * sasrec_->key_cache_floats(), 0.0f);
      state.values_.assign(sasrec_->layer_count() * sasrec_->value_cache_floats(), 0.0f);
    }
    state.user_vector_.assign(hidden, 0.0f);
    return state;
  }

  Result<void> check_owned(const SequenceState& state) const {
    if (state.fingerprint_ != sasrec_->fingerprint() || state.max_length_ != sasrec_->max_length() ||
        state.user_vector_.size() != sasrec_->hidden_size())
      return fail(ErrorCode::state_model_mismatch, model_->name() + ": the sequence state belongs to another model");
    return {};
  }

  // Collects the window of `history` into the state (rows and ids, oldest first) and encodes it.
  void encode_history(SequenceState& state, Span<const std::int64_t> history) {
    stats_ = EncodeStats();
    const std::size_t window = sasrec_->max_length();
    std::size_t count = 0;
    std::size_t i = history.size();
    while (i > 0 && count < window) {
      const std::int64_t id = history[--i];
      const std::int64_t row = sasrec_->row_of(id);
      if (row < 0) {
        ++stats_.history_ids_unknown;
        continue;
      }
      state.rows_[window - 1 - count] = static_cast<std::uint32_t>(row);
      state.ids_[window - 1 - count] = id;
      ++count;
    }
    stats_.history_ids_used = count;
    stats_.history_ids_truncated = i;
    std::copy(state.rows_.begin() + static_cast<std::ptrdiff_t>(window - count), state.rows_.end(), state.rows_.begin());
    std::copy(state.ids_.begin() + static_cast<std::ptrdiff_t>(window - count), state.ids_.end(), state.ids_.begin());
    state.length_ = count;
    encode_state(state);
  }

  // Full encode of the state's window into its user vector and caches.
  void encode_state(SequenceState& state) noexcept {
    if (state.length_ == 0 && sasrec_->reads_last_item()) {
      state.has_user_vector_ = false;  // no position to read until the first append
      return;
    }
    const bool cache = sasrec_->supports_incremental();
    sasrec_->encode_window(state.rows_.data(), state.length_, state.user_vector_.data(), scratch_.data(),
                           cache ? state.keys_.data() : nullptr, cache ? state.values_.data() : nullptr);
    state.has_user_vector_ = true;
  }

  const Model* model_ = nullptr;
  const models::SasRecModel* sasrec_ = nullptr;
  std::vector<float> scratch_;
  EncodeStats stats_;
};

RECLITE_END_NAMESPACE
