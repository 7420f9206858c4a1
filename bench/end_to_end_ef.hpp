// The ef of an end-to-end benchmark (user model, then the top-k with the user's history excluded): the smallest ef
// of the ladder at which HnswIndex's results reach `floor` recall@k against ExactIndex's with the same exclusions,
// measured on our own user vectors of the requests. The ef chosen for searches without exclusion is not enough:
// HnswIndex's beam holds ef items that are not excluded, so the two recalls differ (docs/performance.md).
// Ours only (includes the engine); the peers' programs do not include it.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "peers/bench_data.hpp"
#include "reclite/index/exact_search.hpp"
#include "reclite/index/hnsw_index.hpp"

namespace bench {

struct EndToEndEf {
  std::size_t ef = 0;
  double recall = 0;  // recall@k at ef, against the exact top-k with the same exclusions
};

// users: [excluded.size(), dim] floats, row r excluding excluded[r]. Prints and records (extras, under `name`)
// every rung tried; the largest rung when none reaches the floor.
inline EndToEndEf choose_end_to_end_ef(const std::string& name, reclite::index::HnswIndex& index,
                                       const reclite::index::ExactIndex& exact, const std::vector<float>& users,
                                       std::size_t dim,
                                       const std::vector<reclite::Span<const std::int64_t>>& excluded,
                                       std::size_t k, double floor, std::map<std::string, std::string>& extras) {
  static const std::size_t ladder[] = {100, 128, 160, 192, 256, 320, 384, 512, 768, 1024};
  const std::size_t count = excluded.size();
  std::vector<reclite::index::SearchHit> hits(k);
  auto top_entries = [&](auto& searcher) {
    std::vector<std::int64_t> entries(count * k, -1);
    for (std::size_t r = 0; r < count; ++r) {
      const std::size_t found = take(searcher.search_top_k(users.data() + r * dim, k, excluded[r], hits), name);
      for (std::size_t i = 0; i < found; ++i) entries[r * k + i] = hits[i].entry;
    }
    return entries;
  };
  const std::vector<std::int64_t> truth = top_entries(exact);
  EndToEndEf chosen;
  std::printf("%s: recall@%zu with the history excluded, vs exact with the same exclusion (%zu requests):",
              name.c_str(), k, count);
  for (std::size_t ef : ladder) {
    index.set_ef(ef);
    const double recall = recall_at_k(top_entries(index), truth, k, count, k);
    std::printf(" ef %zu %.4f;", ef, recall);
    extras[name + "_recall_at_" + std::to_string(k) + "_history_excluded: ef " + std::to_string(ef)] =
        std::to_string(recall);
    chosen = EndToEndEf{ef, recall};
    if (recall >= floor) break;
  }
  std::printf(" -> ef %zu\n", chosen.ef);
  extras[name + "_ef"] = std::to_string(chosen.ef);
  return chosen;
}

}  // namespace bench
