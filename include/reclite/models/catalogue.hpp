// Catalogue: the items a model can recommend, viewed in the model file. Entry numbers are index labels;
// external ids are the app's item ids; rows index the item-id embedding table. Lookup by external id is a
// binary search over the file's order_by_external_id (verified sorted and unique at load): no allocation.
#pragma once

#include <cstddef>
#include <cstdint>

#include "reclite/core/config.hpp"
#include "reclite/format/model_config.hpp"

RECLITE_BEGIN_NAMESPACE
namespace models {

class Catalogue {
 public:
  static constexpr std::int64_t not_found = -1;

  Catalogue() = default;
  explicit Catalogue(const format::CatalogueView& view) noexcept : view_(view) {}

  std::size_t size() const noexcept { return view_.count; }
  std::int64_t external_id(std::size_t entry) const noexcept { return view_.external_ids[entry]; }
  std::uint32_t row(std::size_t entry) const noexcept { return view_.row_of_entry(entry); }
  const std::int64_t* external_ids() const noexcept { return view_.external_ids; }

  // Entry number of `external_id`, or not_found.
  std::int64_t find_entry(std::int64_t external_id) const noexcept {
    std::size_t low = 0;
    std::size_t high = view_.count;
    while (low < high) {
      const std::size_t middle = low + (high - low) / 2;
      const std::int64_t value = view_.external_ids[view_.order_by_external_id[middle]];
      if (value < external_id)
        low = middle + 1;
      else
        high = middle;
    }
    if (low < view_.count && view_.external_ids[view_.order_by_external_id[low]] == external_id)
      return view_.order_by_external_id[low];
    return not_found;
  }

  // Largest row any entry maps to (for checking tables cover the catalogue); 0 when empty.
  std::uint32_t max_row() const noexcept {
    std::uint32_t largest = 0;
    for (std::size_t entry = 0; entry < view_.count; ++entry) largest = row(entry) > largest ? row(entry) : largest;
    return largest;
  }

 private:
  format::CatalogueView view_;
};

}  // namespace models
RECLITE_END_NAMESPACE
