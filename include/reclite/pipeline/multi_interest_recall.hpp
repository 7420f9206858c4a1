// Multi-interest recall: one index query per active interest of a multi-interest user (MIND), merged into one
// list. Each item keeps its best score over the interests (ties to the lower interest) and says which interest
// recalled it; items are ranked by score, ties to the lower catalogue entry (index::ranks_before); seen items are
// excluded by every query; an optional quota caps how many results one interest may contribute (the freed places
// go to the next items by score, so one dominant interest cannot crowd out the others).
//
// With per-interest depth >= k the first k merged items equal the exact merge over the whole catalogue (each of
// them is in the top k of the interest that recalled it), which the fixtures check (mind_sdm_fixtures.py).
// Works with any index offering search_top_k(query, k, excluded_item_ids, Span<SearchHit>) (ExactIndex,
// HnswIndex). The caller owns the scratch: after the first call of a given size, nothing is allocated.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "reclite/core/config.hpp"
#include "reclite/core/result.hpp"
#include "reclite/core/span.hpp"
#include "reclite/index/search_hit.hpp"

RECLITE_BEGIN_NAMESPACE
namespace pipeline {

struct InterestHit {
  std::int64_t item_id;    // external id
  std::uint32_t entry;     // catalogue entry number
  float score;             // best inner product over the interests
  std::uint32_t interest;  // the interest that gave it (the lower one on a tie)
};

struct MultiInterestOptions {
  std::size_t k = 100;             // results wanted
  std::size_t per_interest_k = 0;  // depth of each interest's query; 0 means k
  std::size_t quota = 0;           // most results one interest may contribute; 0 means no cap
};

// Reusable buffers of multi_interest_recall; grown on first use, then reused.
struct MultiInterestScratch {
  std::vector<index::SearchHit> hits;
  std::vector<InterestHit> candidates;
  std::vector<std::size_t> taken;
};

// The merged recall of `active` interests ([active, dim] row-major; for MIND the first K' of encode_user's
// output) into `out`; returns how many were written (at most k and out.size()).
// Errors: invalid_argument (null interests, dim different from the index's), and the index's own errors.
template <class Index>
Result<std::size_t> multi_interest_recall(const Index& index, const float* interests, std::size_t active,
                                          std::size_t dim, Span<const std::int64_t> excluded_item_ids,
                                          const MultiInterestOptions& options, MultiInterestScratch& scratch,
                                          Span<InterestHit> out) {
  if (active == 0 || options.k == 0 || out.size() == 0) return std::size_t{0};
  if (interests == nullptr) return fail(ErrorCode::invalid_argument, "multi_interest_recall: interests is null");
  if (dim != index.dim())
    return fail(ErrorCode::invalid_argument, "multi_interest_recall: interests have dim " + std::to_string(dim) +
                                                 ", the index " + std::to_string(index.dim()));
  const std::size_t depth = std::min(options.per_interest_k == 0 ? options.k : options.per_interest_k, index.size());
  if (scratch.hits.size() < depth) scratch.hits.resize(depth);
  if (scratch.candidates.size() < active * depth) scratch.candidates.resize(active * depth);
  if (scratch.taken.size() < active) scratch.taken.resize(active);
  std::size_t count = 0;
  for (std::size_t interest = 0; interest < active; ++interest) {
    auto found = index.search_top_k(interests + interest * dim, depth, excluded_item_ids,
                                    Span<index::SearchHit>(scratch.hits.data(), depth));
    RECLITE_TRY(found);
    for (std::size_t i = 0; i < *found; ++i) {
      const index::SearchHit& hit = scratch.hits[i];
      scratch.candidates[count++] = InterestHit{hit.item_id, hit.entry, hit.score, static_cast<std::uint32_t>(interest)};
    }
  }
  InterestHit* begin = scratch.candidates.data();
  InterestHit* end = begin + count;
  // Per entry: the best score first, ties to the lower interest; keep that one.
  std::sort(begin, end, [](const InterestHit& a, const InterestHit& b) {
    if (a.entry != b.entry) return a.entry < b.entry;
    if (a.score != b.score) return a.score > b.score;
    return a.interest < b.interest;
  });
  end = std::unique(begin, end, [](const InterestHit& a, const InterestHit& b) { return a.entry == b.entry; });
  std::sort(begin, end, [](const InterestHit& a, const InterestHit& b) {
    return a.score > b.score || (a.score == b.score && a.entry < b.entry);
  });
  const std::size_t wanted = std::min(options.k, out.size());
  std::fill(scratch.taken.begin(), scratch.taken.begin() + static_cast<std::ptrdiff_t>(active), std::size_t{0});
  std::size_t written = 0;
  for (InterestHit* hit = begin; hit != end && written < wanted; ++hit) {
    if (options.quota != 0 && scratch.taken[hit->interest] >= options.quota) continue;
    ++scratch.taken[hit->interest];
    out[written++] = *hit;
  }
  return written;
}

}  // namespace pipeline
RECLITE_END_NAMESPACE
