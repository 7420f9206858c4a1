// Turns a JSON user request into the FieldInputs a Session takes, using the model's field list.
// A field's value may be a number (categorical id), an array (history ids, or dense values), or an object
// {"ids": [...]} / {"values": [...]}. Fields are matched by name; an unknown name is an error.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "json.hpp"
#include "reclite/reclite.hpp"

namespace tool {

struct RequestBuffers {
  std::vector<std::vector<std::int64_t>> ids;
  std::vector<std::vector<float>> values;
  std::vector<reclite::FieldInput> fields;
};

inline bool to_id(const Json& value, std::int64_t& out) {
  if (!value.is_number() || std::floor(value.number) != value.number || std::fabs(value.number) > 9.0e15) return false;
  out = static_cast<std::int64_t>(value.number);
  return true;
}

inline reclite::Result<void> build_request(const reclite::Model& model, const Json& request, RequestBuffers& buffers) {
  using reclite::ErrorCode;
  const auto& fields = model.user_fields();
  buffers.ids.assign(fields.size(), {});
  buffers.values.assign(fields.size(), {});
  buffers.fields.assign(fields.size(), {});
  const Json* object = request.find("fields") != nullptr ? request.find("fields") : &request;
  if (!object->is_object()) return reclite::fail(ErrorCode::invalid_argument, "request: expected a JSON object of fields");
  for (const auto& member : object->members) {
    auto index = model.user_field_index(member.first);
    RECLITE_TRY(index);
    const auto& field = *fields[*index];
    const Json* value = &member.second;
    const bool dense = field.kind == reclite::format::FieldKind::dense;
    if (value->is_object()) {
      const Json* inner = value->find(dense ? "values" : "ids");
      if (inner == nullptr)
        return reclite::fail(ErrorCode::invalid_argument, "request field '" + member.first + "': expected key '" +
                                                              (dense ? "values" : "ids") + "'");
      value = inner;
    }
    std::vector<Json> items = value->is_array() ? value->items : std::vector<Json>{*value};
    for (const Json& item : items) {
      if (dense) {
        if (!item.is_number()) return reclite::fail(ErrorCode::invalid_argument, "request field '" + member.first + "': expected numbers");
        buffers.values[*index].push_back(static_cast<float>(item.number));
      } else {
        std::int64_t id = 0;
        if (!to_id(item, id)) return reclite::fail(ErrorCode::invalid_argument, "request field '" + member.first + "': expected integer ids");
        buffers.ids[*index].push_back(id);
      }
    }
  }
  for (std::size_t i = 0; i < fields.size(); ++i) {
    buffers.fields[i].ids = reclite::Span<const std::int64_t>(buffers.ids[i].data(), buffers.ids[i].size());
    buffers.fields[i].values = reclite::Span<const float>(buffers.values[i].data(), buffers.values[i].size());
  }
  return {};
}

// Every external item id in the request's item-id histories (the items a user has already seen), each once.
inline std::vector<std::int64_t> seen_items(const reclite::Model& model, const RequestBuffers& buffers) {
  std::vector<std::int64_t> seen;
  const auto& fields = model.user_fields();
  for (std::size_t i = 0; i < fields.size(); ++i)
    if (fields[i]->kind == reclite::format::FieldKind::history && fields[i]->ids == reclite::format::IdSpace::item)
      seen.insert(seen.end(), buffers.ids[i].begin(), buffers.ids[i].end());
  std::sort(seen.begin(), seen.end());
  seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
  return seen;
}

}  // namespace tool
