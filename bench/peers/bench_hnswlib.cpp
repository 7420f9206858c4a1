// Peer: raw hnswlib 0.6.2 searchKnn(query, 100) on the same graph file our HnswIndex opens, at the same ef
// (the index's default ef, and the ef giving recall@100 >= 0.95), results popped into a vector. Compiled with
// the same flags as bench_models, so hnswlib picks the same SIMD distance.
//   bench_hnswlib --models=DIR [--results=FILE] [Google Benchmark flags]
#include <benchmark/benchmark.h>
#include <hnswlib/hnswlib.h>

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "bench_data.hpp"

int main(int argc, char** argv) {
  const std::string directory = bench::take_flag(argc, argv, "models", "build/bench/models");
  const std::string results = bench::take_flag(argc, argv, "results");
  benchmark::Initialize(&argc, argv);
  bench::Npy<float> queries;
  bench::Npy<std::int64_t> truth;
  if (!bench::read_npy(directory + "/dssm.queries.npy", queries) || !bench::read_npy(directory + "/dssm.truth.npy", truth)) {
    std::fprintf(stderr, "bench_hnswlib: cannot read dssm.queries.npy / dssm.truth.npy in %s\n", directory.c_str());
    return 1;
  }
  const std::size_t dim = queries.columns(), k = 100;
  const auto items = static_cast<std::size_t>(bench::manifest_number(directory, "dssm", "items") > 0
                                                  ? bench::manifest_number(directory, "dssm", "items")
                                                  : 100000);
  hnswlib::InnerProductSpace space(dim);
  hnswlib::HierarchicalNSW<float> graph(&space, directory + "/dssm.rlindex.hnsw", false, items);
  const auto default_ef = static_cast<std::size_t>(bench::manifest_number(directory, "dssm", "default_ef"));
  const auto ef95 = static_cast<std::size_t>(bench::manifest_number(directory, "dssm", "ef_recall_95"));
  std::map<std::string, std::string> extras;
  for (std::size_t ef : {default_ef, ef95}) {
    graph.setEf(ef);
    std::vector<std::int64_t> found(queries.rows() * k);
    for (std::size_t q = 0; q < queries.rows(); ++q) {
      auto result = graph.searchKnn(&queries.data[q * dim], k);
      for (std::size_t i = result.size(); i-- > 0; result.pop()) found[q * k + i] = static_cast<std::int64_t>(result.top().second);
    }
    double recall = bench::recall_at_k(found, truth.data, truth.columns(), queries.rows(), k);
    std::printf("hnswlib searchKnn recall@100 at ef %zu: %.4f\n", ef, recall);
    extras["recall_at_100: ef " + std::to_string(ef)] = std::to_string(recall);
  }
  auto search = [&](const std::string& name, std::size_t ef) {
    benchmark::RegisterBenchmark(name.c_str(), [&, name, ef](benchmark::State& state) {
      graph.setEf(ef);
      auto& pooled = bench::samples()[name];
      std::vector<std::pair<float, hnswlib::labeltype>> hits;
      hits.reserve(k);
      std::size_t call = 0;
      for (auto _ : state) {
        const float* query = &queries.data[(call++ % queries.rows()) * dim];
        bench::Timer timer;
        auto result = graph.searchKnn(query, k);
        hits.clear();
        for (; !result.empty(); result.pop()) hits.push_back(result.top());
        pooled.push_back(timer.microseconds());
        benchmark::DoNotOptimize(hits.data());
      }
    })->Unit(benchmark::kMicrosecond);
  };
  search("hnsw_top100_default_ef", default_ef);
  search("hnsw_top100_ef95", ef95);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  bench::write_results(results, "hnswlib", extras);
  return 0;
}
