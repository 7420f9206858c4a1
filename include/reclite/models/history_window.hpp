// History windows for sequence models that evaluate every slot of a fixed window (MIND, SDM): each history
// field keeps its most recent `length` ids; right padding puts the n valid rows at slots 0..n-1, left padding at
// length-n..length-1; pad slots hold the field's padding_row. Ids are never skipped: an unknown id is an error
// (the reference modules refuse it too), so a window always means what the model was trained on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "reclite/core/config.hpp"
#include "reclite/core/result.hpp"
#include "reclite/core/span.hpp"
#include "reclite/format/model_config.hpp"
#include "reclite/models/catalogue.hpp"

RECLITE_BEGIN_NAMESPACE
namespace models {

// Table row of `id` in a history field: external item ids through the catalogue, vocabulary ids as they are;
// -1 when unknown or out of the vocabulary.
inline std::int64_t history_row(const format::InputFieldConfig& field, const Catalogue& catalogue,
                                std::int64_t id) noexcept {
  if (field.ids == format::IdSpace::item) {
    const std::int64_t entry = catalogue.find_entry(id);
    return entry < 0 ? -1 : static_cast<std::int64_t>(catalogue.row(static_cast<std::size_t>(entry)));
  }
  return id >= 0 && id < field.vocabulary_size ? id : -1;
}

// Every id of a history is known (feature_out_of_vocabulary names the first that is not). `model` and
// `architecture` name the caller in the message, which is only built on failure (a good request allocates nothing).
inline Result<void> check_history_ids(const std::string& model, const char* architecture,
                                      const format::InputFieldConfig& field, const Catalogue& catalogue,
                                      Span<const std::int64_t> ids) {
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (history_row(field, catalogue, ids[i]) >= 0) continue;
    return fail(ErrorCode::feature_out_of_vocabulary,
                model + ": " + architecture + " field '" + field.name + "': " +
                    (field.ids == format::IdSpace::item ? "item id " + std::to_string(ids[i]) + " is not in the catalogue"
                                                        : "value " + std::to_string(ids[i]) + " is outside the vocabulary [0, " +
                                                              std::to_string(field.vocabulary_size) + ")") +
                    " (position " + std::to_string(i) + ")");
  }
  return {};
}

// Fills rows[0, length) with the window of checked `ids`; returns n, the number of valid slots.
inline std::size_t fill_history_window(const format::InputFieldConfig& field, const Catalogue& catalogue,
                                       Span<const std::int64_t> ids, std::size_t length, format::PaddingSide side,
                                       std::uint32_t* rows) noexcept {
  const std::size_t n = ids.size() < length ? ids.size() : length;
  const std::size_t start = ids.size() - n;
  const std::size_t first_valid = side == format::PaddingSide::right ? 0 : length - n;
  const auto pad = static_cast<std::uint32_t>(field.padding_row);
  for (std::size_t t = 0; t < length; ++t) rows[t] = pad;
  for (std::size_t t = 0; t < n; ++t)
    rows[first_valid + t] = static_cast<std::uint32_t>(history_row(field, catalogue, ids[start + t]));
  return n;
}

}  // namespace models
RECLITE_END_NAMESPACE
