// Peer: faiss 1.7 on the DSSM's 100k x 64 item vectors and the same 1000 query user vectors, one thread
// (omp_set_num_threads(1) while searching; the HNSW graph is built with two threads beforehand, untimed).
//   exact_top100            IndexFlatIP, search(1 query, k = 100)
//   hnsw_top100_default_ef  IndexHNSWFlat(M 16, efConstruction 200, METRIC_INNER_PRODUCT) at the smallest
//   hnsw_top100_ef95        efSearch whose recall@100 reaches ours at the index's default ef / at the ef
//                           giving recall@100 >= 0.95 (from manifest.json), measured on the same queries
//   bench_faiss --models=DIR [--results=FILE] [Google Benchmark flags]
#include <benchmark/benchmark.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <omp.h>

#include <cstdio>
#include <string>
#include <vector>

#include "bench_data.hpp"

int main(int argc, char** argv) {
  const std::string directory = bench::take_flag(argc, argv, "models", "build/bench/models");
  const std::string results = bench::take_flag(argc, argv, "results");
  benchmark::Initialize(&argc, argv);
  bench::Npy<float> items, queries;
  bench::Npy<std::int64_t> truth;
  if (!bench::read_npy(directory + "/dssm.items.npy", items) || !bench::read_npy(directory + "/dssm.queries.npy", queries) ||
      !bench::read_npy(directory + "/dssm.truth.npy", truth)) {
    std::fprintf(stderr, "bench_faiss: cannot read dssm.items.npy / queries / truth in %s\n", directory.c_str());
    return 1;
  }
  const int dim = static_cast<int>(items.columns());
  const faiss::Index::idx_t k = 100;
  const auto count = static_cast<faiss::Index::idx_t>(items.rows());

  faiss::IndexFlatIP flat(dim);
  flat.add(count, items.data.data());
  faiss::IndexHNSWFlat hnsw(dim, 16, faiss::METRIC_INNER_PRODUCT);
  hnsw.hnsw.efConstruction = 200;
  omp_set_num_threads(2);
  bench::Timer build;
  hnsw.add(count, items.data.data());
  std::printf("faiss IndexHNSWFlat built in %.1f s\n", build.microseconds() / 1e6);
  omp_set_num_threads(1);

  std::vector<float> distances(k);
  std::vector<faiss::Index::idx_t> labels(k);
  auto recall_at = [&](int ef) {
    hnsw.hnsw.efSearch = ef;
    std::vector<std::int64_t> found(queries.rows() * k);
    for (std::size_t q = 0; q < queries.rows(); ++q) {
      hnsw.search(1, &queries.data[q * dim], k, distances.data(), labels.data());
      for (faiss::Index::idx_t i = 0; i < k; ++i) found[q * k + i] = labels[i];
    }
    return bench::recall_at_k(found, truth.data, truth.columns(), queries.rows(), k);
  };
  const int ladder[] = {16, 32, 48, 64, 80, 100, 128, 160, 192, 256, 320, 384, 448, 512, 640, 768, 1024, 1536, 2048};
  auto matching_ef = [&](double target, std::map<std::string, std::string>& extras, const std::string& label) {
    int chosen = ladder[0];
    double recall = 0;
    for (int ef : ladder) {
      chosen = ef;
      recall = recall_at(ef);
      if (recall >= target) break;
    }
    std::printf("faiss HNSW: efSearch %d gives recall@100 %.4f (target %.4f, %s)\n", chosen, recall, target, label.c_str());
    extras["efSearch for " + label] = std::to_string(chosen);
    extras["recall_at_100 for " + label] = std::to_string(recall);
    return chosen;
  };
  const auto default_ef = static_cast<long>(bench::manifest_number(directory, "dssm", "default_ef"));
  const auto ef95 = static_cast<long>(bench::manifest_number(directory, "dssm", "ef_recall_95"));
  const double recall_default = bench::manifest_number(directory, "dssm", "default_ef_recall_at_100");
  const double recall_95 = bench::manifest_number(directory, "dssm", std::to_string(ef95));
  std::map<std::string, std::string> extras;
  const int faiss_default = matching_ef(recall_default, extras, "hnsw_top100_default_ef");
  const int faiss_95 = matching_ef(recall_95, extras, "hnsw_top100_ef95");
  std::printf("(ours: default ef %ld, ef %ld for recall@100 >= 0.95)\n", default_ef, ef95);

  benchmark::RegisterBenchmark("exact_top100", [&](benchmark::State& state) {
    auto& pooled = bench::samples()["exact_top100"];
    std::size_t call = 0;
    for (auto _ : state) {
      const float* query = &queries.data[(call++ % queries.rows()) * dim];
      bench::Timer timer;
      flat.search(1, query, k, distances.data(), labels.data());
      pooled.push_back(timer.microseconds());
      benchmark::DoNotOptimize(labels.data());
    }
  })->Unit(benchmark::kMicrosecond);
  auto search = [&](const std::string& name, int ef) {
    benchmark::RegisterBenchmark(name.c_str(), [&, name, ef](benchmark::State& state) {
      hnsw.hnsw.efSearch = ef;
      auto& pooled = bench::samples()[name];
      std::size_t call = 0;
      for (auto _ : state) {
        const float* query = &queries.data[(call++ % queries.rows()) * dim];
        bench::Timer timer;
        hnsw.search(1, query, k, distances.data(), labels.data());
        pooled.push_back(timer.microseconds());
        benchmark::DoNotOptimize(labels.data());
      }
    })->Unit(benchmark::kMicrosecond);
  };
  search("hnsw_top100_default_ef", faiss_default);
  search("hnsw_top100_ef95", faiss_95);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  bench::write_results(results, "faiss", extras);
  return 0;
}
