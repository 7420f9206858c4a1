// Exact top-k by inner product over a row-major [count, dim] float matrix (a model's item vectors, or the
// vectors inside an hnsw graph), the oracle hnsw recall is measured against and the fallback when an
// approximate search cannot return enough items.
//
// exact_top_k scans rows four at a time with ops::dot (SIMD), keeps the best k in a fixed-capacity min-heap
// that lives in the caller's output span (no allocation), and compares each score with the heap's worst before
// touching the heap, so for k << count almost every row costs one dot product and one comparison.
// Exclusion is checked only when a row would enter the heap. Ties: the lower entry wins (search_hit.hpp).
// Rows scoring NaN are never returned. The scalar reference sorts every score; scores differ from it only
// by ops::dot's summation order (see ops/dot.hpp), so in scalar builds they are equal bit for bit.
//
// The float32 scan is memory-bound (100k x 64 floats = 25.6 MB per query). ExactIndex (and the exact_top_k
// overload taking a CompactVectors) therefore first reads an int8 copy with rigorous per-row error bounds
// (index/compact_vectors.hpp, 4x fewer bytes), and scores in float32 with ops::dot only the rows whose upper
// bound reaches the current k-th best score: same ids, same float32 scores, same order as the plain scan.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "reclite/core/config.hpp"
#include "reclite/core/result.hpp"
#include "reclite/core/span.hpp"
#include "reclite/index/compact_vectors.hpp"
#include "reclite/index/search_hit.hpp"
#include "reclite/ops/dot.hpp"
#include "reclite/ops/indices_not_below.hpp"

RECLITE_BEGIN_NAMESPACE
namespace index {

namespace detail {

#if defined(__GNUC__) || defined(__clang__)
#define RECLITE_INDEX_NOINLINE __attribute__((noinline))
#elif defined(_MSC_VER)
#define RECLITE_INDEX_NOINLINE __declspec(noinline)
#else
#define RECLITE_INDEX_NOINLINE
#endif

// Every exact score in index/ comes from this one out-of-line function, so a (query, row) pair gets the same
// float32 bits in every search (plain scan, compact first pass, hnsw re-scoring), whatever the consumer's
// -ffp-contract and the inliner decide: GCC fuses a * b + c into one FMA per call site by default, which
// changes the last bit of the scalar dot (and of ops::dot's tail) from one inlined copy to the next.
// Four rows per call: four independent dot products keep four rows' loads in flight (about 25% faster than
// one row per call on the plain scan). scores[j] = ops::dot(query, rows[j], dim) for j < 4; callers with
// fewer rows repeat a pointer.
RECLITE_INDEX_NOINLINE inline void score_four_rows(const float* query, const float* const* rows, std::size_t dim,
                                                   float* scores) noexcept {
  const float score0 = ops::dot(query, rows[0], dim);
  const float score1 = ops::dot(query, rows[1], dim);
  const float score2 = ops::dot(query, rows[2], dim);
  const float score3 = ops::dot(query, rows[3], dim);
  scores[0] = score0;
  scores[1] = score1;
  scores[2] = score2;
  scores[3] = score3;
}

// The same over the scalar reference (ops::reference::dot): in scalar builds ops::dot is that loop, and the two
// out-of-line functions compile to the same code, so the reference's scores equal the engine's bit for bit.
RECLITE_INDEX_NOINLINE inline void reference_score_four_rows(const float* query, const float* const* rows,
                                                             std::size_t dim, float* scores) noexcept {
  const float score0 = ops::reference::dot(query, rows[0], dim);
  const float score1 = ops::reference::dot(query, rows[1], dim);
  const float score2 = ops::reference::dot(query, rows[2], dim);
  const float score3 = ops::reference::dot(query, rows[3], dim);
  scores[0] = score0;
  scores[1] = score1;
  scores[2] = score2;
  scores[3] = score3;
}

// One row's score, through score_four_rows.
inline float score_row(const float* query, const float* row, std::size_t dim) noexcept {
  const float* rows[4] = {row, row, row, row};
  float scores[4];
  score_four_rows(query, rows, dim, scores);
  return scores[0];
}

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

// The best k hits offered so far, in a min-heap at `heap` (capacity k) whose root is the current k-th best.
// Offering rows in any order keeps the same set (ranks_before is a strict total order on non-NaN scores).
// Row r is entry entry_of(r); is_excluded(entry) is asked only for rows that would enter the heap.
// Writes item_id = entry.
template <class EntryOf, class IsExcluded>
struct TopKHeap {
  SearchHit* heap;
  std::size_t k;
  EntryOf entry_of;
  IsExcluded is_excluded;
  std::size_t size = 0;

  void offer(std::size_t row, float score) noexcept {
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
  }

  // A row whose score is below this cannot enter: the k-th best score, or -infinity while the heap fills.
  float threshold() const noexcept { return size == k ? heap[0].score : -std::numeric_limits<float>::infinity(); }

  // Sorts the heap best first; returns its size.
  std::size_t finish() noexcept {
    std::sort(heap, heap + size, ranks_before);
    return size;
  }
};

template <class EntryOf, class IsExcluded>
TopKHeap<EntryOf, IsExcluded> make_top_k_heap(SearchHit* heap, std::size_t k, EntryOf entry_of,
                                               IsExcluded is_excluded) noexcept {
  return TopKHeap<EntryOf, IsExcluded>{heap, k, entry_of, is_excluded};
}

// The scan behind every exact search: every row scored with ops::dot. Row r is at vectors + r * row_stride.
template <class EntryOf, class IsExcluded>
std::size_t exact_scan(const float* query, const float* vectors, std::size_t count, std::size_t dim,
                       std::size_t row_stride, std::size_t k, EntryOf entry_of, IsExcluded is_excluded,
                       SearchHit* heap) noexcept {
  if (k == 0) return 0;
  auto top = make_top_k_heap(heap, k, entry_of, is_excluded);
  std::size_t row = 0;
  float scores[4];
  for (; row + 4 <= count; row += 4) {
    const float* base = vectors + row * row_stride;
    const float* rows[4] = {base, base + row_stride, base + 2 * row_stride, base + 3 * row_stride};
    score_four_rows(query, rows, dim, scores);
    for (std::size_t j = 0; j < 4; ++j) top.offer(row + j, scores[j]);
  }
  if (row < count) {
    const float* rows[4];
    for (std::size_t j = 0; j < 4; ++j) rows[j] = vectors + std::min(row + j, count - 1) * row_stride;
    score_four_rows(query, rows, dim, scores);
    for (std::size_t j = 0; row + j < count; ++j) top.offer(row + j, scores[j]);
  }
  return top.finish();
}

inline void prefetch(const void* address) noexcept {
#if defined(__GNUC__) || defined(__clang__)
  __builtin_prefetch(address);
#else
  (void)address;
#endif
}

// The same result as exact_scan, bit for bit, reading the compact copy first: each chunk of rows gets upper
// bounds of its float32 scores from the int8 copy (index/compact_vectors.hpp), and only rows whose bound
// reaches the current k-th best score are scored with ops::dot and offered. `prepared` comes from
// compact.prepare(query). Adds the number of rows scored in float32 to *rescored when given.
template <class EntryOf, class IsExcluded>
std::size_t compact_scan(const float* query, const CompactVectors& compact, const CompactVectors::Query& prepared,
                         const float* vectors, std::size_t row_stride, std::size_t k, EntryOf entry_of,
                         IsExcluded is_excluded, SearchHit* heap, std::size_t* rescored = nullptr) noexcept {
  if (k == 0) return 0;
  const std::size_t count = compact.size(), dim = compact.dim();
  auto top = make_top_k_heap(heap, k, entry_of, is_excluded);
  alignas(64) float upper[CompactVectors::chunk_rows];
  std::uint32_t candidates[CompactVectors::chunk_rows];
  std::size_t scored = 0;
  for (std::size_t first = 0; first < count; first += CompactVectors::chunk_rows) {
    const std::size_t rows = std::min(CompactVectors::chunk_rows, count - first);
    compact.upper_bounds(prepared, first, rows, upper);
    // Rows not provably below the k-th best at the chunk's start (NaN bounds included); the threshold only
    // rises, so each is checked again before it is scored.
    const std::size_t candidate_count = ops::indices_not_below(upper, top.threshold(), candidates, rows);
    // Candidates are scattered rows of the float32 matrix: ask for all of them before scoring the first.
    for (std::size_t c = 0; c < candidate_count; ++c) {
      const char* row = reinterpret_cast<const char*>(vectors + (first + candidates[c]) * row_stride);
      for (std::size_t byte = 0; byte < dim * sizeof(float); byte += 64) prefetch(row + byte);
    }
    if (top.size < k && candidate_count > k - top.size) {
      // The heap still fills (the first chunk): score the candidates with the highest bounds first, so the
      // threshold is high before the others are checked. Any order of offers gives the same top k.
      auto higher = [&upper](std::uint32_t a, std::uint32_t b) noexcept {
        float bound_a = std::isnan(upper[a]) ? std::numeric_limits<float>::infinity() : upper[a];
        float bound_b = std::isnan(upper[b]) ? std::numeric_limits<float>::infinity() : upper[b];
        return bound_a > bound_b;
      };
      std::nth_element(candidates, candidates + (k - top.size), candidates + candidate_count, higher);
    }
    // Candidates still not below the threshold are scored four at a time (a group may hold up to three rows
    // the first one's offer would have excluded: harmless, each is offered and compared).
    for (std::size_t c = 0; c < candidate_count;) {
      std::size_t group[4];
      std::size_t grouped = 0;
      for (; c < candidate_count && grouped < 4; ++c)
        if (!(upper[candidates[c]] < top.threshold())) group[grouped++] = first + candidates[c];
      if (grouped == 0) break;
      const float* rows[4];
      for (std::size_t j = 0; j < 4; ++j) rows[j] = vectors + group[j < grouped ? j : 0] * row_stride;
      float scores[4];
      score_four_rows(query, rows, dim, scores);
      for (std::size_t j = 0; j < grouped; ++j) top.offer(group[j], scores[j]);
      scored += grouped;
    }
  }
  if (rescored != nullptr) *rescored += scored;
  return top.finish();
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

// Same result as the plain exact_top_k above (bit for bit), reading `compact` (built from these vectors with
// CompactVectors::build(vectors, count, dim, row_stride)) first: about 4x fewer bytes for large catalogues and
// k << count. Falls back to the plain scan when compact is empty or the query's magnitude is out of its range.
inline std::size_t exact_top_k(const float* query, const float* vectors, std::size_t count, std::size_t dim,
                               std::size_t row_stride, const CompactVectors& compact, std::size_t k,
                               Span<const std::uint32_t> excluded_entries, Span<SearchHit> out) noexcept {
  RECLITE_ASSERT(std::is_sorted(excluded_entries.begin(), excluded_entries.end()));
  RECLITE_ASSERT(compact.empty() || (compact.size() == count && compact.dim() == dim));
  CompactVectors::Query prepared;
  if (compact.empty() || !compact.prepare(query, prepared))
    return exact_top_k(query, vectors, count, dim, row_stride, k, excluded_entries, out);
  return detail::compact_scan(query, compact, prepared, vectors, row_stride, std::min(k, out.size()),
                              detail::IdentityEntry{}, detail::SortedEntries{excluded_entries}, out.data());
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
    const float* row_vector = vectors + row * row_stride;
    const float* rows[4] = {row_vector, row_vector, row_vector, row_vector};
    float scores[4];
    detail::reference_score_four_rows(query, rows, dim, scores);
    const float score = scores[0];
    if (std::isnan(score)) continue;
    all.push_back(SearchHit{static_cast<std::int64_t>(entry), entry, score});
  }
  std::sort(all.begin(), all.end(), ranks_before);
  std::size_t written = std::min({k, out.size(), all.size()});
  std::copy(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(written), out.begin());
  return written;
}
}  // namespace reference

// Whether ExactIndex keeps a compact (int8) copy of the vectors for its first pass.
enum class CompactCopy : std::uint8_t {
  automatic,  // built for at least 4096 rows of 16 to 2048 floats; used when k <= count / 8
  always,     // built whenever dim <= CompactVectors::max_dim, used for every search (tests, measurements)
  never,      // every search scans the float32 vectors
};

struct ExactIndexOptions {
  CompactCopy compact_copy = CompactCopy::automatic;
};

// An exact index over item vectors and their external ids, with HnswIndex's search interface.
// The vectors and ids are not copied and must outlive it; the compact copy (compact_copy_bytes(), about a
// quarter of the vectors' size plus 12 bytes per item) is owned and built by create(). Searches are const,
// thread-safe and allocate nothing (except to sort more than 16 excluded ids given unsorted).
class ExactIndex {
 public:
  ExactIndex() noexcept = default;

  // vectors: [count, dim] row-major, row i = catalogue entry i with external id external_ids[i] (unique).
  static Result<ExactIndex> create(const float* vectors, std::size_t count, std::size_t dim,
                                   Span<const std::int64_t> external_ids, const ExactIndexOptions& options = {}) {
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
    index.compact_always_ = options.compact_copy == CompactCopy::always;
    bool build = options.compact_copy == CompactCopy::always ||
                 (options.compact_copy == CompactCopy::automatic && count >= 4096 && dim >= 16);
    if (build) index.compact_ = CompactVectors::build(vectors, count, dim, dim);
    return index;
  }

  std::size_t dim() const noexcept { return dim_; }
  std::size_t size() const noexcept { return count_; }
  Span<const std::int64_t> external_ids() const noexcept { return external_ids_; }
  // Bytes of the compact copy (0 when there is none).
  std::size_t compact_copy_bytes() const noexcept { return compact_.memory_bytes(); }

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
    std::size_t written = 0;
    CompactVectors::Query prepared;
    if (!compact_.empty() && (compact_always_ || wanted * 8 <= count_) && compact_.prepare(query, prepared))
      written = detail::compact_scan(query, compact_, prepared, vectors_, dim_, wanted, detail::IdentityEntry{},
                                     is_excluded, out.data());
    else
      written = detail::exact_scan(query, vectors_, count_, dim_, dim_, wanted, detail::IdentityEntry{}, is_excluded,
                                   out.data());
    for (std::size_t i = 0; i < written; ++i) out[i].item_id = ids[out[i].entry];
    return written;
  }

 private:
  const float* vectors_ = nullptr;
  std::size_t count_ = 0;
  std::size_t dim_ = 0;
  Span<const std::int64_t> external_ids_;
  CompactVectors compact_;
  bool compact_always_ = false;
};

}  // namespace index
RECLITE_END_NAMESPACE
