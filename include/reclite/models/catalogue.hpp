// Catalogue: the items a model can recommend, viewed in the model file. Entry numbers are index labels;
// external ids are the app's item ids; rows index the item-id embedding table.
// Lookup by external id is an open-addressing hash table built once at load (16 bytes per slot, load factor at
// most 1/2): one cache miss per lookup, which matters when a request scores a thousand candidates. The file's
// order_by_external_id is verified at load (ids unique) but not needed for lookup.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "reclite/core/config.hpp"
#include "reclite/format/model_config.hpp"

RECLITE_BEGIN_NAMESPACE
namespace models {

class Catalogue {
 public:
  static constexpr std::int64_t not_found = -1;

  Catalogue() = default;
  // External ids must be unique (format/model_file.hpp checks it before any Catalogue is built).
  explicit Catalogue(const format::CatalogueView& view) : view_(view) {
    std::size_t capacity = 16;
    while (capacity < 2 * view_.count) capacity *= 2;
    slots_.assign(capacity, Slot{0, 0});
    mask_ = capacity - 1;
    for (std::size_t entry = 0; entry < view_.count; ++entry) {
      std::size_t slot = home(view_.external_ids[entry]);
      while (slots_[slot].entry_plus_one != 0) slot = (slot + 1) & mask_;
      slots_[slot] = Slot{view_.external_ids[entry], static_cast<std::uint32_t>(entry + 1)};
    }
  }

  std::size_t size() const noexcept { return view_.count; }
  std::int64_t external_id(std::size_t entry) const noexcept { return view_.external_ids[entry]; }
  std::uint32_t row(std::size_t entry) const noexcept { return view_.row_of_entry(entry); }
  const std::int64_t* external_ids() const noexcept { return view_.external_ids; }

  // Entry number of `external_id`, or not_found.
  std::int64_t find_entry(std::int64_t external_id) const noexcept {
    if (slots_.empty()) return not_found;
    for (std::size_t slot = home(external_id);; slot = (slot + 1) & mask_) {
      const Slot& candidate = slots_[slot];
      if (candidate.entry_plus_one == 0) return not_found;
      if (candidate.id == external_id) return static_cast<std::int64_t>(candidate.entry_plus_one) - 1;
    }
  }

  // Hints the cache to fetch the slot `external_id` starts probing at (for batched lookups).
  void prefetch(std::int64_t external_id) const noexcept {
    if (!slots_.empty()) __builtin_prefetch(&slots_[home(external_id)]);
  }

  // Largest row any entry maps to (for checking tables cover the catalogue); 0 when empty.
  std::uint32_t max_row() const noexcept {
    std::uint32_t largest = 0;
    for (std::size_t entry = 0; entry < view_.count; ++entry) largest = row(entry) > largest ? row(entry) : largest;
    return largest;
  }

 private:
  struct Slot {
    std::int64_t id;
    std::uint32_t entry_plus_one;  // 0: empty
  };

  // splitmix64's finaliser: ids are often sequential or strided, which a plain mask would cluster.
  std::size_t home(std::int64_t id) const noexcept {
    auto value = static_cast<std::uint64_t>(id);
    value = (value ^ (value >> 30)) * 0xBF58476D1CE4E5B9ull;
    value = (value ^ (value >> 27)) * 0x94D049BB133111EBull;
    value ^= value >> 31;
    return static_cast<std::size_t>(value) & mask_;
  }

  format::CatalogueView view_;
  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
};

}  // namespace models
RECLITE_END_NAMESPACE
