// History windows for sequence models that evaluate every slot of a fixed window (MIND, SDM). Unknown ids are
// skipped, as for every architecture: an item newer than the model (or a side value outside its vocabulary) is
// treated as a behaviour the user did not have, so the window holds the most recent behaviours the model knows
// and an app never has to filter histories against the catalogue. Session::last_stats() counts what was skipped;
// an app that wants strictness checks history_ids_unknown.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "reclite/core/config.hpp"
#include "reclite/core/span.hpp"
#include "reclite/format/model_config.hpp"
#include "reclite/models/catalogue.hpp"
#include "reclite/models/request.hpp"

RECLITE_BEGIN_NAMESPACE
namespace models {

using InputFieldConfigs = std::vector<format::InputFieldConfig>;

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

// What filling one window did: valid slots, behaviours skipped for an unknown id, known behaviours left out
// because they are older than the window.
struct HistoryWindow {
  std::size_t valid = 0;
  std::size_t unknown = 0;
  std::size_t truncated = 0;
};

// Fills the window of parallel history fields (the item history and its side fields, position by position, all
// of the same length: checked by the caller): field f's rows go to rows[f * length, (f + 1) * length).
// A behaviour whose id is unknown in any field is skipped in every field, as if the user had not had it (the
// rule of every architecture: docs/errors.md); the most recent `length` known behaviours are kept, oldest first.
// Right padding puts them at slots 0..valid-1, left padding at length-valid..length-1; pad slots hold each
// field's padding_row. Behaviours older than the oldest kept one are counted as truncated without being looked up.
inline HistoryWindow fill_history_window(const InputFieldConfigs& fields, const Catalogue& catalogue,
                                         Span<const FieldInput> inputs, std::size_t length, format::PaddingSide side,
                                         std::uint32_t* rows) noexcept {
  HistoryWindow window;
  const std::size_t count = fields.size();
  const std::size_t positions = count == 0 ? 0 : inputs[0].ids.size();
  // Newest first, into slots length-1, length-2, ... (the left-padded layout); moved for right padding below.
  for (std::size_t p = positions; p-- > 0;) {
    if (window.valid == length) {
      window.truncated = p + 1;
      break;
    }
    const std::size_t slot = length - 1 - window.valid;
    bool known = true;
    for (std::size_t f = 0; f < count && known; ++f) {
      const std::int64_t row = history_row(fields[f], catalogue, inputs[f].ids[p]);
      known = row >= 0;
      if (known) rows[f * length + slot] = static_cast<std::uint32_t>(row);
    }
    if (known)
      ++window.valid;
    else
      ++window.unknown;
  }
  const std::size_t pads = length - window.valid;
  for (std::size_t f = 0; f < count; ++f) {
    std::uint32_t* field_rows = rows + f * length;
    const auto pad = static_cast<std::uint32_t>(fields[f].padding_row);
    if (side == format::PaddingSide::right) {
      std::copy(field_rows + pads, field_rows + length, field_rows);
      std::fill(field_rows + window.valid, field_rows + length, pad);
    } else {
      std::fill(field_rows, field_rows + pads, pad);
    }
  }
  return window;
}

}  // namespace models
RECLITE_END_NAMESPACE
