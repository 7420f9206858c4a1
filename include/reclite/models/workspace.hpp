// Per-session scratch memory, sized once from the model (Session construction) so requests allocate nothing.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "reclite/core/config.hpp"
#include "reclite/models/request.hpp"

RECLITE_BEGIN_NAMESPACE
namespace models {

struct WorkspaceSize {
  std::size_t floats = 0;       // tower inputs and layer buffers
  std::size_t rows = 0;         // history rows
  std::size_t item_fields = 0;  // item-side fields, for encoding catalogue items

  WorkspaceSize& include(const WorkspaceSize& other) {
    floats = std::max(floats, other.floats);
    rows = std::max(rows, other.rows);
    item_fields = std::max(item_fields, other.item_fields);
    return *this;
  }
};

struct Workspace {
  std::vector<float> floats;
  std::vector<std::uint32_t> rows;
  std::vector<std::int64_t> item_ids;
  std::vector<FieldInput> item_inputs;

  void reserve(const WorkspaceSize& size) {
    floats.resize(std::max<std::size_t>(size.floats, 1));
    rows.resize(std::max<std::size_t>(size.rows, 1));
    item_ids.resize(std::max<std::size_t>(size.item_fields, 1));
    item_inputs.resize(std::max<std::size_t>(size.item_fields, 1));
  }
};

}  // namespace models
RECLITE_END_NAMESPACE
