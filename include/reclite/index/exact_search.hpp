// Exact top-k by inner product over a row-major [count, dim] float matrix (a model's item vectors, or the
// vectors inside an hnsw graph), the oracle hnsw recall is measured against and the fallback when an
// approximate search cannot return enough items.
//
// exact_top_k scans rows four at a time with ops::dot (SIMD), keeps the best k in a fixed-capacity min-heap
// that lives in the caller's output span (no allocation), and compares each score with the heap's worst before
// touching the heap, so for k << count almost every row costs one dot product and one comparison.
// Exclusion is checked only when a row would enter the heap. Ties: the lower entry wins (search_hit.hpp).
// Rows scoring NaN are never returned. The scalar reference sorts every score; scores differ from it only
// by ops::dot's summation order (see ops/dot.hpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "reclite/core/config.hpp"
#include "reclite/core/result.hpp"
#include "reclite/core/span.hpp"
#include "reclite/index/search_hit.hpp"
#include "reclite/ops/dot.hpp"

RECLITE_BEGIN_NAMESPACE
namespace index {

namespace detail {

// Heap order: the root is the hit every other hit ranks before (the current k-th best).
inline bool heap_above(const SearchHit& a, const SearchHit& b) noexcept { return ranks_before(b, a); }

inline void heap_sift_up(SearchHit* heap, std::size_t position) noexcept {
  SearchHit moving = heap[position];
  while (position > 0) {
    std::size_t parent = (position - 1) / 2;
    if (!heap_above(moving, heap[parent])) break;
    heap[position] = heap[parent];
    position = parent;
  }
  heap[position] = moving;
}

inline void heap_sift_down(SearchHit* heap, std::size_t size, std::size_t position) noexcept {
  SearchHit moving = heap[position];
  for (;;) {
    std::size_t child = 2 * position + 1;
    if (child >= size) break;
    if (child + 1 < size && heap_above(heap[child + 1], heap[child])) ++child;
    if (!heap_above(heap[child], moving)) break;
    heap[position] = heap[child];
    position = child;
  }
  heap[position] = moving;
}

// The scan behind every exact search. Row r (at vectors + r * row_stride) is entry entry_of(r);
// is_excluded(entry) is asked only for rows that would enter the heap. Writes item_id = entry.
template <class EntryOf, class IsExcluded>
std::size_t exact_scan(const float* query, const float* vectors, std::size_t count, std::size_t dim,
                       std::size_t row_stride, std::size_t k, EntryOf entry_of, IsExcluded is_excluded,
                       SearchHit* heap) noexcept {
  std::size_t size = 0;
  auto offer = [&](std::size_t row, float score) noexcept {
    if (size == k) {
      // Common case first: most rows lose to the current k-th best without touching the heap.
      if (!(score >= heap[0].score)) return;
      SearchHit candidate{0, static_cast<std::uint32_t>(entry_of(row)), score};
      if (!ranks_before(candidate, heap[0]) || is_excluded(candidate.entry)) return;
      candidate.item_id = candidate.entry;
      heap[0] = candidate;
      heap_sift_down(heap, size, 0);
    } else {
      if (std::isnan(score)) return;
      std::uint32_t entry = static_cast<std::uint32_t>(entry_of(row));
      if (is_excluded(entry)) return;
      heap[size] = SearchHit{static_cast<std::int64_t>(entry), entry, score};
      heap_sift_up(heap, size++);
    }
  };
  if (k == 0) return 0;
  std::size_t row = 0;
  // Four independent dot products per step keep the loads of four rows in flight.
  for (; row + 4 <= count; row += 4) {
    const float* base = vectors + row * row_stride;
    float score0 = ops::dot(query, base, dim);
    float score1 = ops::dot(query, base + row_stride, dim);
    float score2 = ops::dot(query, base + 2 * row_stride, dim);
    float score3 = ops::dot(query, base + 3 * row_stride, dim);
    offer(row, score0);
    offer(row + 1, score1);
    offer(row + 2, score2);
    offer(row + 3, score3);
  }
  for (const float* base = vectors + row * row_stride; row < count; ++row, base += row_stride)
    offer(row, ops::dot(query, base, dim));
  std::sort(heap, heap + size, ranks_before);
  return size;
}

// Membership in a sorted list of entry numbers (duplicates allowed).
struct SortedEntries {
  Span<const std::uint32_t> entries;
  bool operator()(std::uint32_t entry) const noexcept {
    return !entries.empty() && std::binary_search(entries.begin(), entries.end(), entry);
  }
};

struct IdentityEntry {
  std::size_t operator()(std::size_t row) const noexcept { return row; }
};

}  // namespace detail

// The best min(k, out.size(), count - excluded) rows of `vectors` ([count, dim], row-major, row stride
// `row_stride` floats, row i = entry i) for `query` ([dim]), best first, into out; returns how many.
// excluded_entries must be sorted ascending. Each hit's item_id is its entry number (no catalogue here).
inline std::size_t exact_top_k(const float* query, const float* vectors, std::size_t count, std::size_t dim,
                               std::size_t row_stride, std::size_t k, Span<const std::uint32_t> excluded_entries,
                               Span<SearchHit> out) noexcept {
  RECLITE_ASSERT(std::is_sorted(excluded_entries.begin(), excluded_entries.end()));
  return detail::exact_scan(query, vectors, count, dim, row_stride, std::min(k, out.size()),
                            detail::IdentityEntry{}, detail::SortedEntries{excluded_entries}, out.data());
}

// Same, over a densely packed matrix (row stride = dim).
inline std::size_t exact_top_k(const float* query, const float* vectors, std::size_t count, std::size_t dim,
                               std::size_t k, Span<const std::uint32_t> excluded_entries,
                               Span<SearchHit> out) noexcept {
  return exact_top_k(query, vectors, count, dim, dim, k, excluded_entries, out);
}

namespace reference {
// Scores every row with the scalar dot, sorts them all: the oracle for exact_top_k (allocates).
inline std::size_t exact_top_k(const float* query, const float* vectors, std::size_t count, std::size_t dim,
                               std::size_t row_stride, std::size_t k, Span<const std::uint32_t> excluded_entries,
                               Span<SearchHit> out) {
  std::vector<SearchHit> all;
  for (std::size_t row = 0; row < count; ++row) {
    auto entry = static_cast<std::uint32_t>(row);
    if (std::binary_search(excluded_entries.begin(), excluded_entries.end(), entry)) continue;
    float score = ops::reference::dot(query, vectors + row * row_stride, dim);
    if (std::isnan(score)) continue;
    all.push_back(SearchHit{static_cast<std::int64_t>(entry), entry, score});
  }
  std::sort(all.begin(), all.end(), ranks_before);
  std::size_t written = std::min({k, out.size(), all.size()});
  std::copy(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(written), out.begin());
  return written;
}
}  // namespace reference

// A non-owning exact index over item vectors and their external ids, with HnswIndex's search interface.
// The vectors and ids must outlive it. Searches are const and thread-safe.
class ExactIndex {
 public:
  ExactIndex() noexcept = default;

  // vectors: [count, dim] row-major, row i = catalogue entry i with external id external_ids[i] (unique).
  static Result<ExactIndex> create(const float* vectors, std::size_t count, std::size_t dim,
                                   Span<const std::int64_t> external_ids) {
    if (count > 0 && vectors == nullptr) return fail(ErrorCode::invalid_argument, "ExactIndex: vectors is null");
    if (dim == 0) return fail(ErrorCode::invalid_argument, "ExactIndex: dim must be at least 1");
    if (count > UINT32_MAX) return fail(ErrorCode::invalid_argument, "ExactIndex: more than 2^32 - 1 items");
    if (external_ids.size() != count)
      return fail(ErrorCode::invalid_argument, "ExactIndex: " + std::to_string(external_ids.size()) +
                                                   " external ids for " + std::to_string(count) + " vectors");
    std::vector<std::int64_t> sorted(external_ids.begin(), external_ids.end());
    std::sort(sorted.begin(), sorted.end());
    auto duplicate = std::adjacent_find(sorted.begin(), sorted.end());
    if (duplicate != sorted.end())
      return fail(ErrorCode::invalid_argument,
                  "ExactIndex: external id " + std::to_string(*duplicate) + " appears more than once");
    ExactIndex index;
    index.vectors_ = vectors;
    index.count_ = count;
    index.dim_ = dim;
    index.external_ids_ = external_ids;
    return index;
  }

  std::size_t dim() const noexcept { return dim_; }
  std::size_t size() const noexcept { return count_; }
  Span<const std::int64_t> external_ids() const noexcept { return external_ids_; }

  // The best min(k, count - excluded) items for `query` ([dim] floats), best first, into out.
  // Errors: non_finite_input (NaN or infinity in the query), output_size (out shorter than min(k, count)),
  // invalid_argument (null query). Excluded ids not in the catalogue are ignored.
  Result<std::size_t> search_top_k(const float* query, std::size_t k, Span<const std::int64_t> excluded_item_ids,
                                   Span<SearchHit> out) const {
    std::size_t wanted = std::min(k, count_);
    if (wanted == 0) return std::size_t{0};
    if (query == nullptr) return fail(ErrorCode::invalid_argument, "search_top_k: query is null");
    for (std::size_t i = 0; i < dim_; ++i)
      if (!std::isfinite(query[i]))
        return fail(ErrorCode::non_finite_input, "search_top_k: query[" + std::to_string(i) + "] is not finite");
    if (out.size() < wanted)
      return fail(ErrorCode::output_size, "search_top_k: output holds " + std::to_string(out.size()) +
                                              " hits, " + std::to_string(wanted) + " needed");
    // Small exclusion lists are scanned; longer ones are sorted once for binary search.
    std::vector<std::int64_t> sorted;
    Span<const std::int64_t> excluded = excluded_item_ids;
    bool use_binary_search = excluded.size() > 16;
    if (use_binary_search && !std::is_sorted(excluded.begin(), excluded.end())) {
      sorted.assign(excluded.begin(), excluded.end());
      std::sort(sorted.begin(), sorted.end());
      excluded = sorted;
    }
    const std::int64_t* ids = external_ids_.data();
    auto is_excluded = [&](std::uint32_t entry) noexcept {
      std::int64_t id = ids[entry];
      if (use_binary_search) return std::binary_search(excluded.begin(), excluded.end(), id);
      return std::find(excluded.begin(), excluded.end(), id) != excluded.end();
    };
    std::size_t written = detail::exact_scan(query, vectors_, count_, dim_, dim_, wanted, detail::IdentityEntry{},
                                             is_excluded, out.data());
    for (std::size_t i = 0; i < written; ++i) out[i].item_id = ids[out[i].entry];
    return written;
  }

 private:
  const float* vectors_ = nullptr;
  std::size_t count_ = 0;
  std::size_t dim_ = 0;
  Span<const std::int64_t> external_ids_;
};

}  // namespace index
RECLITE_END_NAMESPACE
