// One result of an item search, and the order results are returned in.
// Best first means: higher inner product first; equal scores go to the lower catalogue entry, so every search
// (exact, hnsw, the Python fixtures) orders ties the same way and results are deterministic.
#pragma once

#include <cstdint>

#include "reclite/core/config.hpp"

RECLITE_BEGIN_NAMESPACE
namespace index {

struct SearchHit {
  std::int64_t item_id;  // external id (catalogue external_ids[entry])
  std::uint32_t entry;   // catalogue entry number (= hnswlib label, = row of the item vectors)
  float score;           // inner product of the query and the item vector
};

// True when `a` is returned before `b`.
constexpr bool ranks_before(const SearchHit& a, const SearchHit& b) noexcept {
  return a.score > b.score || (a.score == b.score && a.entry < b.entry);
}

}  // namespace index
RECLITE_END_NAMESPACE
