// Item search on 100k structured items of dim 64, top-100: HnswIndex::search_top_k against hnswlib's own
// searchKnn at the same ef (the wrapper's overhead), and exact_top_k (the brute-force baseline), plain and
// with the int8 compact copy first (ExactIndex's default for large catalogues).
// Items: 100 categories of Zipf-skewed sizes, anisotropic clouds around their centres, norms growing with
// log popularity (as index_fixtures.py), fixed seed. The graph is built here with hnswlib (M 16,
// ef_construction 100), saved to /tmp with a .rlindex beside it, and reopened through HnswIndex::open.
// Run: bench_index --benchmark_repetitions=10 --benchmark_enable_random_interleaving=true
//      --benchmark_report_aggregates_only=true   (medians; Arg = ef)
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "reclite/format/index_generated.h"
#include "reclite/index/exact_search.hpp"
#include "reclite/index/hnsw_index.hpp"

namespace {

constexpr std::size_t item_count = 100000, dim = 64, query_count = 256, top_k = 100, search_ef = 128;

std::vector<float> structured(std::size_t count, std::uint32_t seed, std::size_t first_row = 0) {
  std::mt19937 generator(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const std::size_t categories = 100;
  std::vector<float> centres(categories * dim), axes(categories * dim * dim);
  for (auto& value : centres) value = normal(generator);
  for (auto& value : axes) value = normal(generator) / std::sqrt(float(dim));
  std::vector<double> weights(categories);
  for (std::size_t c = 0; c < categories; ++c) weights[c] = 1.0 / std::pow(double(c + 1), 0.9);
  std::discrete_distribution<std::size_t> category(weights.begin(), weights.end());
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  std::vector<float> rows(count * dim), noise(dim);
  for (std::size_t i = 0; i < count; ++i) {
    std::size_t c = category(generator);
    float* row = rows.data() + i * dim;
    for (std::size_t j = 0; j < dim; ++j) noise[j] = normal(generator) * 0.45f * std::pow(float(j + 1), -0.8f);
    double norm = 0;
    for (std::size_t j = 0; j < dim; ++j) {
      float value = centres[c * dim + j] / std::sqrt(float(dim)) * 1.0f;
      for (std::size_t l = 0; l < dim; ++l) value += axes[(c * dim + j) * dim + l] * noise[l];
      row[j] = value;
      norm += double(value) * value;
    }
    double rank = double((i + first_row) * 7919 % (count + first_row) + 1);
    double scale = (0.6 + 0.9 * (1.0 - std::log(rank) / std::log(double(count + first_row))) + 0.1 * uniform(generator)) /
                   std::sqrt(norm);
    for (std::size_t j = 0; j < dim; ++j) row[j] = float(row[j] * scale);
  }
  return rows;
}

struct Setup {
  std::vector<float> items = structured(item_count, 5);
  std::vector<float> queries = structured(query_count, 5, item_count);  // same centres, later rows
  std::string path = "/tmp/reclite_bench_index.rlindex";
  std::unique_ptr<hnswlib::InnerProductSpace> space;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> raw;
  reclite::index::HnswIndex index;
  std::vector<reclite::index::SearchHit> truth;      // exact top-100 per query
  reclite::index::CompactVectors compact = reclite::index::CompactVectors::build(items.data(), item_count, dim, dim);

  // recall@100 of HnswIndex at the index's current ef.
  double recall() {
    std::vector<reclite::index::SearchHit> got(top_k);
    std::size_t hits = 0;
    for (std::size_t q = 0; q < query_count; ++q) {
      auto found = index.search_top_k(queries.data() + q * dim, top_k, {}, got);
      for (std::size_t i = 0; i < top_k; ++i)
        for (std::size_t j = 0; j < *found; ++j) hits += got[j].entry == truth[q * top_k + i].entry;
    }
    return double(hits) / double(query_count * top_k);
  }

  Setup() {
    std::vector<std::int64_t> ids(item_count);
    for (std::size_t i = 0; i < item_count; ++i) ids[i] = 1000000 + std::int64_t(i) * 3;
    std::string hnsw_path = path + ".hnsw";
    space = std::make_unique<hnswlib::InnerProductSpace>(dim);
    {
      hnswlib::HierarchicalNSW<float> built(space.get(), item_count, 16, 100, 100);
      for (std::size_t i = 0; i < item_count; ++i) built.addPoint(items.data() + i * dim, i);
      built.saveIndex(hnsw_path);
    }
    std::ifstream stream(hnsw_path, std::ios::binary);
    std::vector<char> graph((std::istreambuf_iterator<char>(stream)), std::istreambuf_iterator<char>());
    flatbuffers::FlatBufferBuilder builder;
    auto root = reclite::fbs::CreateItemIndexDirect(
        builder, 1, 0, "bench_index", reclite::fbs::IndexMetric::inner_product, dim, item_count, 16, 100, search_ef,
        0.0f, 0.0f, 0, "reclite_bench_index.rlindex.hnsw", graph.size(), reclite::crc32(graph.data(), graph.size()),
        &ids, reclite::index::catalogue_crc32(ids));
    reclite::fbs::FinishItemIndexBuffer(builder, root);
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(builder.GetBufferPointer()), builder.GetSize());

    auto opened = reclite::index::HnswIndex::open(path);
    if (!opened) {
      std::fprintf(stderr, "%s\n", opened.error().describe().c_str());
      std::abort();
    }
    index = std::move(*opened);
    raw = std::make_unique<hnswlib::HierarchicalNSW<float>>(space.get(), hnsw_path, false, item_count);
    raw->setEf(search_ef);

    truth.resize(query_count * top_k);
    for (std::size_t q = 0; q < query_count; ++q)
      reclite::index::exact_top_k(queries.data() + q * dim, items.data(), item_count, dim, top_k, {},
                                  reclite::Span<reclite::index::SearchHit>(truth.data() + q * top_k, top_k));
  }
};

Setup& setup() {
  static Setup instance;
  return instance;
}

void BM_hnsw_index_search_top_k(benchmark::State& state) {
  auto& s = setup();
  s.index.set_ef(std::size_t(state.range(0)));
  std::vector<reclite::index::SearchHit> out(top_k);
  std::size_t q = 0;
  for (auto _ : state) {
    auto found = s.index.search_top_k(s.queries.data() + (q++ % query_count) * dim, top_k, {}, out);
    benchmark::DoNotOptimize(found);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["ef"] = double(state.range(0));
  state.counters["recall_at_100"] = s.recall();
}

void BM_hnswlib_searchKnn(benchmark::State& state) {
  auto& s = setup();
  s.raw->setEf(std::size_t(state.range(0)));
  std::vector<std::pair<float, std::size_t>> out(top_k);
  std::size_t q = 0;
  for (auto _ : state) {
    auto found = s.raw->searchKnn(s.queries.data() + (q++ % query_count) * dim, top_k);
    for (std::size_t i = found.size(); i-- > 0; found.pop()) out[i] = found.top();  // best first, like ours
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["ef"] = double(state.range(0));
}

void BM_exact_top_k(benchmark::State& state) {
  auto& s = setup();
  std::vector<reclite::index::SearchHit> out(top_k);
  std::size_t q = 0;
  for (auto _ : state) {
    auto found = reclite::index::exact_top_k(s.queries.data() + (q++ % query_count) * dim, s.items.data(), item_count,
                                             dim, top_k, {}, out);
    benchmark::DoNotOptimize(found);
  }
  state.counters["items"] = double(item_count);
}

// The same exact search reading the int8 copy first (what ExactIndex does); checked equal to the plain scan.
void BM_exact_top_k_compact(benchmark::State& state) {
  auto& s = setup();
  std::vector<reclite::index::SearchHit> out(top_k);
  std::size_t rescored = 0;
  for (std::size_t q = 0; q < query_count; ++q) {
    reclite::index::CompactVectors::Query prepared;
    const float* query = s.queries.data() + q * dim;
    if (!s.compact.prepare(query, prepared)) std::abort();
    reclite::index::detail::compact_scan(query, s.compact, prepared, s.items.data(), dim, top_k,
                                         reclite::index::detail::IdentityEntry{},
                                         reclite::index::detail::SortedEntries{}, out.data(), &rescored);
    for (std::size_t i = 0; i < top_k; ++i)
      if (out[i].entry != s.truth[q * top_k + i].entry || out[i].score != s.truth[q * top_k + i].score) std::abort();
  }
  std::size_t q = 0;
  for (auto _ : state) {
    auto found = reclite::index::exact_top_k(s.queries.data() + (q++ % query_count) * dim, s.items.data(), item_count,
                                             dim, dim, s.compact, top_k, {}, out);
    benchmark::DoNotOptimize(found);
  }
  state.counters["items"] = double(item_count);
  state.counters["rescored_rows"] = double(rescored) / double(query_count);
  state.counters["compact_mb"] = double(s.compact.memory_bytes()) / 1e6;
}

}  // namespace

BENCHMARK(BM_hnsw_index_search_top_k)->Arg(128)->Arg(512)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_hnswlib_searchKnn)->Arg(128)->Arg(512)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_exact_top_k)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_exact_top_k_compact)->Unit(benchmark::kMicrosecond);
BENCHMARK_MAIN();
