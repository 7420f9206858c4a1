// What a request carries: one FieldInput per input field of the model, in the model's field order
// (Model::user_fields(); Model::user_field_index finds a field by name once, outside the hot path).
// The caller owns the memory; nothing is copied.
#pragma once

#include <cstddef>
#include <cstdint>

#include "reclite/core/config.hpp"
#include "reclite/core/span.hpp"

RECLITE_BEGIN_NAMESPACE
namespace models {

struct FieldInput {
  // categorical: exactly one id. history: the behaviour list, most recent LAST; only the most recent
  // max_length are used. Ids are vocabulary rows or external item ids, as the field declares.
  Span<const std::int64_t> ids;
  // dense: exactly `width` finite values.
  Span<const float> values;
};

// What happened to a request's inputs that did not make it an error (for logging and monitoring).
struct EncodeStats {
  std::size_t history_ids_used = 0;        // ids that contributed to pooled histories
  std::size_t history_ids_truncated = 0;   // older ids beyond max_length, ignored
  std::size_t history_ids_unknown = 0;     // item ids not in the catalogue / rows out of vocabulary, ignored
  std::size_t active_interests = 0;        // multi-interest models (MIND): K', the interests retrieval uses
};

}  // namespace models
RECLITE_END_NAMESPACE
