// HnswIndex: approximate top-k item search over a validated item index, on hnswlib 0.6.2's graph.
//
// The only reclite header that includes hnswlib, and the only one that needs C++ exceptions enabled:
// hnswlib reports failure by throwing std::runtime_error (or std::bad_alloc), so every call into it sits in a
// try block that turns the exception into Error index_library_error naming the index file. No exception
// leaves this header.
//
// open() validates both files first (index/index_file.hpp), so hnswlib only ever loads a graph whose every
// count, offset and neighbour id has been checked; after loading, hnswlib's memory is compared with the
// checked bytes, so a file changed in between is refused too. Validation happens once, so the search trusts the
// graph: every neighbour id is below count and present at its level.
//
// hnswlib loads and owns the graph; the search is ours (search_graph below), the HNSW search of Malkov &
// Yashunin (arXiv:1603.09320, algorithms 2 and 5) over hnswlib's public members: greedy descent through the upper
// levels, then a best-first beam search of width ef on level 0, with hnswlib's distance function, its visited
// lists and its tie order, so without exclusion it returns the items of searchKnn(query, k) at the same ef.
// Unlike searchKnn it filters: excluded items are walked through but never enter the beam (hnswlib's own
// treatment of deleted elements), so excluding the user's history does not widen the beam by its length. It
// counts no metrics (searchKnn increments two atomics per hop) and keeps its beams in thread_local buffers, so
// after a thread's first call the only allocation is hnswlib's visited-list pool's (its std::deque re-allocates
// a block each time its one list is taken and given back; tests/allocation pins it at one per search).
//
// The k results are then re-scored exactly (detail::score_four_rows, i.e. ops::dot, on vectors the walk just
// read, so cached) and sorted once, to return true inner products (hnswlib's "ip" distance is 1 - ip, rounded:
// 1 - d loses up to 2^-24 of an O(1) distance, and ties by distance are not ties by score) with the same scores
// and tie order as ExactIndex. Measured (bench_index, callgrind, with searchKnn): the re-scoring costs about 3%
// of a search at ef 128.
//
// hnswlib 0.6.2's headers define, at namespace scope and not inline, four functions (cpuid, xgetbv,
// AVXCapable, AVX512Capable) and five distance-function pointers (space_ip.h, space_l2.h); they are declared
// weak below first, so that several translation units may include this header and link. InnerProductSpace's
// constructor writes those pointers, so spaces are constructed under one lock.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <stdint.h>
void cpuid(int32_t cpuInfo[4], int32_t eax, int32_t ecx) __attribute__((weak));
uint64_t xgetbv(unsigned int index) __attribute__((weak));
bool AVXCapable() __attribute__((weak));
bool AVX512Capable() __attribute__((weak));
namespace hnswlib {
extern float (*InnerProductSIMD16Ext)(const void*, const void*, const void*) __attribute__((weak));
extern float (*InnerProductSIMD4Ext)(const void*, const void*, const void*) __attribute__((weak));
extern float (*InnerProductDistanceSIMD16Ext)(const void*, const void*, const void*) __attribute__((weak));
extern float (*InnerProductDistanceSIMD4Ext)(const void*, const void*, const void*) __attribute__((weak));
extern float (*L2SqrSIMD16Ext)(const void*, const void*, const void*) __attribute__((weak));
}  // namespace hnswlib
#endif
#include <hnswlib/hnswlib.h>

#include "reclite/core/config.hpp"
#include "reclite/core/result.hpp"
#include "reclite/core/span.hpp"
#include "reclite/index/exact_search.hpp"
#include "reclite/index/index_file.hpp"
#include "reclite/index/search_hit.hpp"
#include "reclite/ops/dot.hpp"

RECLITE_BEGIN_NAMESPACE
namespace index {

struct IndexOptions {
  // Search beam width; 0 uses the file's default_ef (chosen by the builder for its recall target).
  std::size_t ef = 0;
  // When not empty, the index must have been built for exactly these catalogue ids (in entry order), else
  // index_model_mismatch. The span need only live during open().
  Span<const std::int64_t> expected_external_ids;
  // When not 0, the index's vectors must have this many floats, else index_model_mismatch.
  std::size_t expected_dim = 0;
};

class HnswIndex {
 public:
  HnswIndex() noexcept = default;

  // Opens NAME.rlindex and its graph file. Errors: those of open_index_files (file_not_found,
  // not_an_index_file, corrupt_index, unsupported_format_version, checksum_mismatch), index_model_mismatch,
  // index_library_error (hnswlib failed, e.g. out of memory). Thread-safe.
  static Result<HnswIndex> open(const std::string& path, const IndexOptions& options = {}) {
    auto files = open_index_files(path);
    if (!files) return std::move(files).error();
    IndexDescription& description = files->description;
    if (options.expected_dim != 0 || !options.expected_external_ids.empty()) {
      auto matches = check_index_catalogue(
          description, options.expected_external_ids.empty() ? Span<const std::int64_t>(description.external_ids)
                                                             : options.expected_external_ids,
          options.expected_dim != 0 ? options.expected_dim : description.dim);
      if (!matches) return std::move(matches).error();
    }
    HnswIndex index;
    try {
      {
        static std::mutex space_lock;
        std::lock_guard<std::mutex> guard(space_lock);
        index.space_ = std::make_unique<hnswlib::InnerProductSpace>(description.dim);
      }
      // max_elements = count: hnswlib sizes its buffers by this rather than by the file's max_elements.
      index.graph_ = std::make_unique<hnswlib::HierarchicalNSW<float>>(index.space_.get(), description.hnsw_path,
                                                                        false, description.count);
    } catch (const std::exception& error) {
      return fail(ErrorCode::index_library_error,
                  description.hnsw_path + ": hnswlib could not load the graph: " + error.what());
    } catch (...) {
      return fail(ErrorCode::index_library_error, description.hnsw_path + ": hnswlib could not load the graph");
    }
    // hnswlib 0.6.2's loading constructor leaves these counters uninitialised; no element is deleted (checked).
    index.graph_->num_deleted_ = 0;
    index.graph_->metric_distance_computations = 0;
    index.graph_->metric_hops = 0;
    auto same = index.matches_checked_bytes(files->hnsw.data(), files->layout, description);
    if (!same) return std::move(same).error();

    const auto& graph = *index.graph_;
    index.entry_of_internal_.resize(description.count);
    index.internal_of_entry_.resize(description.count);
    for (std::size_t i = 0; i < description.count; ++i) {
      // Labels were checked to be a permutation of 0..count-1.
      auto entry = static_cast<std::uint32_t>(graph.getExternalLabel(static_cast<unsigned>(i)));
      index.entry_of_internal_[i] = entry;
      index.internal_of_entry_[entry] = static_cast<std::uint32_t>(i);
      index.identity_labels_ = index.identity_labels_ && entry == i;
    }
    index.order_by_external_id_.resize(description.count);
    for (std::size_t i = 0; i < description.count; ++i) index.order_by_external_id_[i] = static_cast<std::uint32_t>(i);
    const auto& ids = description.external_ids;
    std::sort(index.order_by_external_id_.begin(), index.order_by_external_id_.end(),
              [&](std::uint32_t a, std::uint32_t b) { return ids[a] < ids[b]; });
    index.vectors_ = reinterpret_cast<const float*>(graph.data_level0_memory_ + graph.offsetData_);
    index.row_stride_ = graph.size_data_per_element_ / sizeof(float);
    index.description_ = std::move(description);
    index.set_ef(options.ef != 0 ? options.ef : index.description_.default_ef);
    return index;
  }

  std::size_t dim() const noexcept { return description_.dim; }
  std::size_t size() const noexcept { return description_.count; }
  std::size_t default_ef() const noexcept { return description_.default_ef; }
  std::size_t ef() const noexcept { return graph_ ? graph_->ef_ : 0; }
  // External id of each catalogue entry.
  Span<const std::int64_t> external_ids() const noexcept { return description_.external_ids; }
  const IndexDescription& description() const noexcept { return description_; }

  // Sets the search beam width (searches use at least k). Not thread-safe: no search may be in flight.
  void set_ef(std::size_t ef) noexcept {
    if (graph_) graph_->setEf(std::max<std::size_t>(ef, 1));
  }

  // The best min(k, count - excluded) items for `query` ([dim] floats) by inner product, best first
  // (search_hit.hpp), into out. Excluded ids are never returned (ids not in the catalogue are ignored). The beam
  // holds max(ef, k) items that are not excluded: excluded items are walked through like any other, so the graph
  // stays connected, but never take a place in the beam, and the walk goes on while the beam is not full. When
  // the graph search still finds fewer than k (or k plus the excluded items are more than half the catalogue),
  // an exact search answers. k = 0 gives 0 hits, k > count means count. Errors: non_finite_input, output_size
  // (out shorter than min(k, count)), invalid_argument (null query), index_library_error. Concurrent calls are
  // safe.
  Result<std::size_t> search_top_k(const float* query, std::size_t k, Span<const std::int64_t> excluded_item_ids,
                                   Span<SearchHit> out) const {
    const std::size_t count = description_.count;
    std::size_t wanted = std::min(k, count);
    if (wanted == 0) return std::size_t{0};
    if (query == nullptr) return fail(ErrorCode::invalid_argument, "search_top_k: query is null");
    for (std::size_t i = 0; i < description_.dim; ++i)
      if (!std::isfinite(query[i]))
        return fail(ErrorCode::non_finite_input, "search_top_k: query[" + std::to_string(i) + "] is not finite");
    if (out.size() < wanted)
      return fail(ErrorCode::output_size, "search_top_k: output holds " + std::to_string(out.size()) + " hits, " +
                                              std::to_string(wanted) + " needed");
    std::size_t written = 0;
    try {
      SearchScratch& scratch = search_scratch();
      std::vector<std::uint32_t>& excluded = scratch.excluded;  // sorted entries of the excluded catalogue ids
      excluded_entries(excluded_item_ids, excluded);
      wanted = std::min(wanted, count - excluded.size());
      if (wanted == 0) return std::size_t{0};
      // The beam no longer grows with the excluded items, but the walk still has to pass through those it meets:
      // once the wanted and the excluded items are half the catalogue, it visits most of the graph, and scanning
      // all of it is as fast and exact.
      if (2 * (wanted + excluded.size()) > count) return exact_search(query, wanted, excluded, out);

      // Excluded items as hnswlib internal ids, sorted, for the walk.
      const std::vector<std::uint32_t>* excluded_internal = &excluded;
      if (!identity_labels_ && !excluded.empty()) {
        scratch.excluded_internal.clear();
        for (std::uint32_t entry : excluded) scratch.excluded_internal.push_back(internal_of_entry_[entry]);
        std::sort(scratch.excluded_internal.begin(), scratch.excluded_internal.end());
        excluded_internal = &scratch.excluded_internal;
      }
      const std::size_t beam = std::max(graph_->ef_, wanted);
      if (excluded.empty())
        search_graph<false>(query, beam, *excluded_internal, scratch);
      else
        search_graph<true>(query, beam, *excluded_internal, scratch);

      // The beam's wanted nearest, popped as searchKnn pops them (so ties at the cut fall the same way), then
      // re-scored exactly and sorted once by ranks_before: the heap's order does not matter.
      Heap& results = scratch.results;
      while (results.size() > wanted) pop_heap(results);
      written = results.size();
      for (std::size_t i = 0; i < written; ++i) out[i].entry = entry_of_internal_[results[i].second];
      score_hits(query, out.data(), written);
      std::sort(out.begin(), out.begin() + written,
                [](const SearchHit& a, const SearchHit& b) noexcept { return ranks_before(a, b); });
      if (written < wanted) return exact_search(query, wanted, excluded, out);
    } catch (const std::exception& error) {
      return fail(ErrorCode::index_library_error, description_.hnsw_path + ": hnsw search failed: " + error.what());
    } catch (...) {
      return fail(ErrorCode::index_library_error, description_.hnsw_path + ": hnsw search failed");
    }
    return written;
  }

 private:
  // Fills item_id and the exact score of hits[0, n) from their entries, four rows per call of
  // detail::score_four_rows (the scorer of every exact search, so scores equal ExactIndex's bit for bit).
  // hnswlib's label is the entry number (checked at open).
  void score_hits(const float* query, SearchHit* hits, std::size_t n) const noexcept {
    for (std::size_t first = 0; first < n; first += 4) {
      const float* rows[4];
      for (std::size_t j = 0; j < 4; ++j) {
        const std::size_t entry = hits[first + (first + j < n ? j : 0)].entry;
        rows[j] = vectors_ + (identity_labels_ ? entry : internal_of_entry(entry)) * row_stride_;
      }
      float scores[4];
      detail::score_four_rows(query, rows, description_.dim, scores);
      for (std::size_t j = 0; j < 4 && first + j < n; ++j) {
        hits[first + j].score = scores[j];
        hits[first + j].item_id = description_.external_ids[hits[first + j].entry];
      }
    }
  }

  std::size_t internal_of_entry(std::size_t entry) const noexcept { return internal_of_entry_[entry]; }

  // (distance, hnswlib internal id) pairs in a max-heap by distance alone: hnswlib's CompareByFirst, through the
  // same std::push_heap / std::pop_heap calls std::priority_queue makes, so equal distances leave the heap in
  // searchKnn's order.
  // A function object, not a function pointer, so the heap operations inline the comparison.
  using Heap = std::vector<std::pair<float, unsigned>>;
  struct Farther {
    bool operator()(const std::pair<float, unsigned>& a, const std::pair<float, unsigned>& b) const noexcept {
      return a.first < b.first;
    }
  };
  static void push_heap(Heap& heap, float distance, unsigned id) {
    heap.emplace_back(distance, id);
    std::push_heap(heap.begin(), heap.end(), Farther{});
  }
  static void pop_heap(Heap& heap) noexcept {
    std::pop_heap(heap.begin(), heap.end(), Farther{});
    heap.pop_back();
  }

  // One thread's buffers for search_top_k, reused by every call (cleared, never shrunk), so a search allocates
  // only while they grow to the largest beam and exclusion list the thread has seen.
  struct SearchScratch {
    std::vector<std::uint32_t> excluded;           // catalogue entries, sorted
    std::vector<std::uint32_t> excluded_internal;  // the same as hnswlib internal ids, when labels are permuted
    Heap results;                                  // the beam: the best items found, farthest on top
    Heap candidates;                               // nodes to expand: (-distance, id), nearest on top
    // Bit id % 1024 set for each excluded internal id: most ids are cleared by one load, not a binary search
    // (with 50 excluded ids, about 5% of ids share a bit).
    std::uint64_t excluded_bits[16];
  };
  static SearchScratch& search_scratch() {
    thread_local SearchScratch scratch;
    return scratch;
  }

  template <class... Addresses>
  static void prefetch(const Addresses*... addresses) noexcept {
#if defined(__GNUC__)
    (__builtin_prefetch(addresses), ...);
#else
    ((void)addresses, ...);
#endif
  }

  // Returns a visited list to hnswlib's pool (thread-safe) however the search ends.
  struct VisitedLease {
    hnswlib::VisitedListPool* pool;
    hnswlib::VisitedList* list;
    ~VisitedLease() { pool->releaseVisitedList(list); }
  };

  // The HNSW search (Malkov & Yashunin, algorithms 2 and 5) over hnswlib's graph: from the enterpoint, greedy
  // descent to level 0, then best-first search on level 0 until the nearest unexpanded node is farther than the
  // beam's farthest item and the beam holds `beam` items. Leaves the beam in scratch.results.
  // With Filtered, ids in `excluded` (sorted internal ids) are expanded but never enter the beam, and the walk
  // only stops early once the beam is full; without, the stop rule is searchKnn's (the beam is then always
  // full when it applies), so the result is searchKnn's at ef = beam.
  template <bool Filtered>
  void search_graph(const float* query, std::size_t beam, const std::vector<std::uint32_t>& excluded,
                    SearchScratch& scratch) const {
    const hnswlib::HierarchicalNSW<float>& graph = *graph_;
    const auto distance_to = [&](unsigned id) noexcept {
      return graph.fstdistfunc_(query, graph.getDataByInternalId(id), graph.dist_func_param_);
    };
    std::uint64_t* excluded_bits = scratch.excluded_bits;
    if (Filtered) {
      std::fill(excluded_bits, excluded_bits + 16, std::uint64_t{0});
      for (std::uint32_t id : excluded) excluded_bits[(id >> 6) & 15] |= std::uint64_t{1} << (id & 63);
    }
    const auto is_excluded = [&](unsigned id) noexcept {
      return Filtered && ((excluded_bits[(id >> 6) & 15] >> (id & 63)) & 1) != 0 &&
             std::binary_search(excluded.begin(), excluded.end(), static_cast<std::uint32_t>(id));
    };

    unsigned nearest = static_cast<unsigned>(graph.enterpoint_node_);
    float nearest_distance = distance_to(nearest);
    for (int level = graph.maxlevel_; level > 0; --level) {
      // Move to the nearest neighbour at this level while one is nearer (the list is the one of the node the
      // scan started from, as in searchKnn).
      for (bool moved = true; moved;) {
        moved = false;
        hnswlib::linklistsizeint* list = graph.get_linklist(nearest, level);
        const std::size_t size = graph.getListCount(list);
        for (std::size_t i = 1; i <= size; ++i) {
          const float distance = distance_to(list[i]);
          if (distance < nearest_distance) {
            nearest_distance = distance;
            nearest = list[i];
            moved = true;
          }
        }
      }
    }

    VisitedLease visited{graph.visited_list_pool_, graph.visited_list_pool_->getFreeVisitedList()};
    hnswlib::vl_type* visited_mark = visited.list->mass;
    const hnswlib::vl_type mark = visited.list->curV;
    Heap& results = scratch.results;
    Heap& candidates = scratch.candidates;
    results.clear();
    candidates.clear();
    if (results.capacity() < beam + 1) results.reserve(beam + 1);

    // The beam's farthest distance (a node farther cannot enter a full beam); the largest float while it is empty.
    float bound;
    if (!is_excluded(nearest)) {
      bound = nearest_distance;
      push_heap(results, nearest_distance, nearest);
      push_heap(candidates, -nearest_distance, nearest);
    } else {
      bound = std::numeric_limits<float>::max();
      push_heap(candidates, -bound, nearest);
    }
    visited_mark[nearest] = mark;

    while (!candidates.empty()) {
      const std::pair<float, unsigned> next = candidates.front();
      if (-next.first > bound && (!Filtered || results.size() >= beam)) break;
      pop_heap(candidates);
      hnswlib::linklistsizeint* list = graph.get_linklist0(next.second);
      const std::size_t size = graph.getListCount(list);
      // Prefetches (as hnswlib's search does): each neighbour's mark and vector one step ahead, and the links of
      // the node to expand next.
      if (size > 0) prefetch(visited_mark + list[1], graph.getDataByInternalId(list[1]));
      for (std::size_t j = 1; j <= size; ++j) {
        const unsigned id = list[j];
        if (j < size) prefetch(visited_mark + list[j + 1], graph.getDataByInternalId(list[j + 1]));
        if (visited_mark[id] == mark) continue;
        visited_mark[id] = mark;
        const float distance = distance_to(id);
        if (results.size() < beam || bound > distance) {
          push_heap(candidates, -distance, id);
          prefetch(graph.get_linklist0(candidates.front().second));
          if (!is_excluded(id)) push_heap(results, distance, id);
          if (results.size() > beam) pop_heap(results);
          if (!results.empty()) bound = results.front().first;
        }
      }
    }
  }

  // Sorted, distinct catalogue entries of the ids in `ids` (ids not in the catalogue are skipped), into entries.
  void excluded_entries(Span<const std::int64_t> ids, std::vector<std::uint32_t>& entries) const {
    entries.clear();
    const auto& external = description_.external_ids;
    for (std::int64_t id : ids) {
      auto at = std::lower_bound(order_by_external_id_.begin(), order_by_external_id_.end(), id,
                                 [&](std::uint32_t entry, std::int64_t value) { return external[entry] < value; });
      if (at != order_by_external_id_.end() && external[*at] == id) entries.push_back(*at);
    }
    std::sort(entries.begin(), entries.end());
    entries.erase(std::unique(entries.begin(), entries.end()), entries.end());
  }

  Result<std::size_t> exact_search(const float* query, std::size_t wanted, const std::vector<std::uint32_t>& excluded,
                                   Span<SearchHit> out) const {
    const std::uint32_t* entry_of = entry_of_internal_.data();
    std::size_t written = detail::exact_scan(
        query, vectors_, description_.count, description_.dim, row_stride_, wanted,
        [entry_of](std::size_t row) noexcept { return entry_of[row]; },
        detail::SortedEntries{Span<const std::uint32_t>(excluded)}, out.data());
    for (std::size_t i = 0; i < written; ++i) out[i].item_id = description_.external_ids[out[i].entry];
    return written;
  }

  // hnswlib read the file again by path: check it holds exactly the bytes validated from the mapping.
  Result<void> matches_checked_bytes(const std::uint8_t* data, const HnswLayout& layout,
                                     const IndexDescription& description) const {
    const auto& graph = *graph_;
    const std::size_t count = description.count;
    bool same = graph.cur_element_count == count && graph.max_elements_ == count &&
                graph.size_data_per_element_ == layout.element_bytes && graph.offsetData_ == layout.data_offset &&
                graph.label_offset_ == layout.label_offset && graph.maxM_ == layout.max_m &&
                graph.maxM0_ == layout.max_m0 && graph.maxlevel_ == layout.max_level &&
                graph.enterpoint_node_ == layout.enterpoint &&
                std::memcmp(graph.data_level0_memory_, data + hnsw_header_size, count * layout.element_bytes) == 0;
    std::size_t offset = hnsw_header_size + count * layout.element_bytes;
    const std::size_t list_bytes = 4 + 4 * layout.max_m;
    for (std::size_t i = 0; same && i < count; ++i) {
      std::size_t bytes = layout.levels[i] * list_bytes;
      same = graph.element_levels_[i] == layout.levels[i] &&
             (bytes == 0 || std::memcmp(graph.linkLists_[i], data + offset + 4, bytes) == 0);
      offset += 4 + bytes;
    }
    if (!same)
      return fail(ErrorCode::corrupt_index,
                  description.hnsw_path + ": the file changed between validation and loading by hnswlib");
    return {};
  }

  // space_ is declared first so that it outlives graph_, which points into it.
  std::unique_ptr<hnswlib::InnerProductSpace> space_;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> graph_;
  IndexDescription description_;
  std::vector<std::uint32_t> entry_of_internal_;      // hnswlib internal id -> entry (label)
  std::vector<std::uint32_t> internal_of_entry_;      // entry -> hnswlib internal id
  std::vector<std::uint32_t> order_by_external_id_;   // entries in increasing external id
  const float* vectors_ = nullptr;                    // internal id i's vector at vectors_ + i * row_stride_
  bool identity_labels_ = true;                       // internal id == entry for every item (the usual build)
  std::size_t row_stride_ = 0;
};

}  // namespace index
RECLITE_END_NAMESPACE
