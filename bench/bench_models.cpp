// Per-call latency of our engine on the benchmark models of bench/make_bench_models.py: single thread, batch 1.
//
//   bench_models --models=DIR [--results=FILE] [Google Benchmark flags, e.g. --benchmark_repetitions=10]
//
// Each timed call is also timed on its own (steady_clock), and at exit the median and p99 over every call of
// every repetition go to --results (JSON lines, bench/peers/bench_data.hpp) for scripts/bench's table. Requests
// cycle through the 1000 sample requests of DIR/requests.bin, the same ones every peer program reads.
// Before benchmarking it prints resident memory (VmRSS, /proc/self/status) around loading the 100k-item DSSM
// model (memory-mapped) and its hnsw index, next to their file sizes.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "end_to_end_ef.hpp"
#include "peers/bench_data.hpp"
#include "reclite/index/exact_search.hpp"
#include "reclite/index/hnsw_index.hpp"
#include "reclite/reclite.hpp"

namespace {

using reclite::FieldInput;
using reclite::Span;
using reclite::index::SearchHit;

constexpr std::size_t top_k = 100;

using bench::die;
using bench::take;
using bench::timed_loop;

// The FieldInputs of every request for one model: categorical fields by name ("field_0".."field_7"), then the
// history when the model has one; each points into the request records (nothing copied).
std::vector<std::vector<FieldInput>> make_inputs(const reclite::Model& model, const bench::Requests& requests) {
  std::vector<std::vector<FieldInput>> all(requests.count);
  const std::size_t fields = model.user_fields().size();
  for (std::size_t r = 0; r < requests.count; ++r) {
    all[r].resize(fields);
    for (std::size_t f = 0; f < requests.fields; ++f) {
      auto index = take(model.user_field_index("field_" + std::to_string(f)), model.name());
      all[r][index].ids = Span<const std::int64_t>(requests.categorical(r) + f, 1);
    }
    if (fields > requests.fields) {
      auto index = take(model.user_field_index("history"), model.name());
      all[r][index].ids = Span<const std::int64_t>(requests.history_ids(r), requests.history);
    }
  }
  return all;
}

struct Memory {
  long rss = 0, anonymous = 0, file = 0;  // kB
};

Memory memory_now() {
  Memory memory;
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) memory.rss = std::stol(line.substr(6));
    if (line.rfind("RssAnon:", 0) == 0) memory.anonymous = std::stol(line.substr(8));
    if (line.rfind("RssFile:", 0) == 0) memory.file = std::stol(line.substr(8));
  }
  return memory;
}

long file_kb(const std::string& path) {
  std::ifstream stream(path, std::ios::binary | std::ios::ate);
  return stream ? static_cast<long>(stream.tellg()) / 1024 : -1;
}

std::map<std::string, std::string> memory_extras;

void report_memory(const std::string& step, const Memory& memory, const Memory& start) {
  std::printf("  %-58s VmRSS %7.1f MB (+%6.1f)  anon %6.1f MB  file-backed %6.1f MB\n", step.c_str(),
              memory.rss / 1024.0, (memory.rss - start.rss) / 1024.0, memory.anonymous / 1024.0, memory.file / 1024.0);
  memory_extras["rss_mb: " + step] = std::to_string(memory.rss / 1024.0);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string directory = bench::take_flag(argc, argv, "models", "build/bench/models");
  const std::string results = bench::take_flag(argc, argv, "results");
  benchmark::Initialize(&argc, argv);

  bench::Requests requests;
  if (!bench::read_requests(directory + "/requests.bin", requests)) die(directory + "/requests.bin: cannot read");

  // --- resident memory: load the DSSM model and its index as an app would --------------------------------------
  std::printf("resident memory (files: dssm.reclite %.1f MB, dssm.rlindex %.1f MB + .hnsw %.1f MB)\n",
              file_kb(directory + "/dssm.reclite") / 1024.0, file_kb(directory + "/dssm.rlindex") / 1024.0,
              file_kb(directory + "/dssm.rlindex.hnsw") / 1024.0);
  const Memory start = memory_now();
  report_memory("start (requests read)", start, start);
  reclite::LoadOptions lazy;
  lazy.verify_checksums = false;
  auto mapped = take(reclite::Model::load(directory + "/dssm.reclite", lazy), "dssm.reclite");
  report_memory("Model::load, no checksums (mapped, untouched)", memory_now(), start);
  {
    reclite::Session session(mapped);
    std::vector<float> user(mapped.user_dim());
    auto inputs = make_inputs(mapped, requests);
    for (const auto& request : inputs) take(session.encode_user(request, user), "encode_user");
    report_memory("+ encode_user on all 1000 requests", memory_now(), start);
  }
  auto index = take(reclite::index::HnswIndex::open(directory + "/dssm.rlindex"), "dssm.rlindex");
  report_memory("+ HnswIndex::open", memory_now(), start);
  bench::Npy<float> queries;
  if (!bench::read_npy(directory + "/dssm.queries.npy", queries)) die("dssm.queries.npy: cannot read");
  {
    std::vector<SearchHit> hits(top_k);
    for (std::size_t q = 0; q < queries.rows(); ++q)
      take(index.search_top_k(&queries.data[q * queries.columns()], top_k, {}, hits), "search_top_k");
    report_memory("+ 1000 hnsw searches (and the queries, 0.25 MB)", memory_now(), start);
  }
  const Memory before_checked = memory_now();
  reclite::LoadOptions checked;
  checked.run_self_test = true;  // checksums on (the default) and the converter's samples recomputed
  auto dssm = take(reclite::Model::load(directory + "/dssm.reclite", checked), "dssm.reclite self-test");
  report_memory("+ a second Model::load with checksums and self-test", memory_now(), start);
  memory_extras["rss_mb: checksummed load adds"] = std::to_string((memory_now().rss - before_checked.rss) / 1024.0);

  auto youtube = take(reclite::Model::load(directory + "/youtube_dnn.reclite", checked), "youtube_dnn.reclite self-test");
  auto fm = take(reclite::Model::load(directory + "/fm.reclite", checked), "fm.reclite self-test");
  std::printf("self-tests passed: dssm, youtube_dnn, fm\n");

  // --- recall@100 of our index against the exact top-100 of the same queries ----------------------------------
  bench::Npy<std::int64_t> truth;
  if (!bench::read_npy(directory + "/dssm.truth.npy", truth)) die("dssm.truth.npy: cannot read");
  const double ef95_number = bench::manifest_number(directory, "dssm", "ef_recall_95");
  if (ef95_number <= 0) die("manifest.json: no ef_recall_95 for dssm");
  const std::size_t ef95 = static_cast<std::size_t>(ef95_number);
  const std::size_t default_ef = index.default_ef();
  auto measure_recall = [&](std::size_t ef) {
    return bench::index_recall_at_k<SearchHit>(index, queries, truth, ef, top_k);
  };
  const double recall_default = measure_recall(default_ef), recall_95 = measure_recall(ef95);
  std::printf("recall@100 vs exact on the 1000 request user vectors: %.4f at default ef %zu, %.4f at ef %zu\n",
              recall_default, default_ef, recall_95, ef95);
  memory_extras["recall_at_100: default_ef " + std::to_string(default_ef)] = std::to_string(recall_default);
  memory_extras["recall_at_100: ef " + std::to_string(ef95)] = std::to_string(recall_95);

  auto exact = take(reclite::index::ExactIndex::create(
                        dssm.item_vectors(), dssm.catalogue().size(), dssm.item_dim(),
                        Span<const std::int64_t>(dssm.catalogue().external_ids(), dssm.catalogue().size())),
                    "ExactIndex");

  // --- benchmarks --------------------------------------------------------------------------------------------
  const auto dssm_inputs = make_inputs(dssm, requests);
  const auto youtube_inputs = make_inputs(youtube, requests);
  const auto fm_inputs = make_inputs(fm, requests);
  const std::size_t count = requests.count;

  auto user_tower = [&](const char* name, const reclite::Model& model, const std::vector<std::vector<FieldInput>>& inputs) {
    benchmark::RegisterBenchmark(name, [&model, &inputs, name, count](benchmark::State& state) {
      reclite::Session session(model);
      std::vector<float> user(model.user_dim() * model.user_vector_count());
      timed_loop(state, name, [&](std::size_t call) {
        auto done = session.encode_user(inputs[call % count], user);
        benchmark::DoNotOptimize(done);
        benchmark::DoNotOptimize(user.data());
      });
    })->Unit(benchmark::kMicrosecond);
  };
  user_tower("dssm_user", dssm, dssm_inputs);
  user_tower("youtube_dnn_user", youtube, youtube_inputs);
  user_tower("fm_user", fm, fm_inputs);

  benchmark::RegisterBenchmark("fm_user_scores_1000", [&](benchmark::State& state) {
    reclite::Session session(fm);
    std::vector<float> user(fm.user_dim()), scores(requests.candidates);
    timed_loop(state, "fm_user_scores_1000", [&](std::size_t call) {
      const std::size_t r = call % count;
      auto done = session.encode_user(fm_inputs[r], user);
      auto scored = session.score_items(user, Span<const std::int64_t>(requests.candidate_ids(r), requests.candidates),
                                        scores);
      benchmark::DoNotOptimize(done);
      benchmark::DoNotOptimize(scored);
      benchmark::DoNotOptimize(scores.data());
    });
  })->Unit(benchmark::kMicrosecond);

  auto search = [&](const std::string& name, std::size_t ef) {
    benchmark::RegisterBenchmark(name.c_str(), [&, name, ef](benchmark::State& state) {
      index.set_ef(ef);
      std::vector<SearchHit> hits(top_k);
      timed_loop(state, name, [&](std::size_t call) {
        auto found = index.search_top_k(&queries.data[(call % queries.rows()) * queries.columns()], top_k, {}, hits);
        benchmark::DoNotOptimize(found);
        benchmark::DoNotOptimize(hits.data());
      });
    })->Unit(benchmark::kMicrosecond);
  };
  search("hnsw_top100_default_ef", default_ef);
  search("hnsw_top100_ef95", ef95);

  benchmark::RegisterBenchmark("exact_top100", [&](benchmark::State& state) {
    std::vector<SearchHit> hits(top_k);
    timed_loop(state, "exact_top100", [&](std::size_t call) {
      auto found = exact.search_top_k(&queries.data[(call % queries.rows()) * queries.columns()], top_k, {}, hits);
      benchmark::DoNotOptimize(found);
      benchmark::DoNotOptimize(hits.data());
    });
  })->Unit(benchmark::kMicrosecond);

  // The end to end's ef: the smallest of the ladder whose results with the history excluded reach recall@100 0.95
  // of the exact ones with the same exclusion (bench/end_to_end_ef.hpp), on our DSSM user vectors of the requests.
  std::vector<float> dssm_users(count * dssm.user_dim());
  std::vector<Span<const std::int64_t>> histories;
  {
    reclite::Session session(dssm);
    for (std::size_t r = 0; r < count; ++r) {
      take(session.encode_user(dssm_inputs[r], Span<float>(dssm_users.data() + r * dssm.user_dim(), dssm.user_dim())),
           "dssm encode_user");
      histories.push_back(Span<const std::int64_t>(requests.history_ids(r), requests.history));
    }
  }
  const bench::EndToEndEf end_to_end = bench::choose_end_to_end_ef("dssm", index, exact, dssm_users, dssm.user_dim(),
                                                                  histories, top_k, 0.95, memory_extras);

  benchmark::RegisterBenchmark("end_to_end", [&](benchmark::State& state) {
    // DSSM user tower, then hnsw top-100 with the 50 history items excluded, at the ef chosen above.
    index.set_ef(end_to_end.ef);
    reclite::Session session(dssm);
    std::vector<float> user(dssm.user_dim());
    std::vector<SearchHit> hits(top_k);
    timed_loop(state, "end_to_end", [&](std::size_t call) {
      const std::size_t r = call % count;
      auto done = session.encode_user(dssm_inputs[r], user);
      auto found = index.search_top_k(user.data(), top_k,
                                      Span<const std::int64_t>(requests.history_ids(r), requests.history), hits);
      benchmark::DoNotOptimize(done);
      benchmark::DoNotOptimize(found);
      benchmark::DoNotOptimize(hits.data());
    });
  })->Unit(benchmark::kMicrosecond);

  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  report_memory("after the benchmarks", memory_now(), start);
  memory_extras["ef95"] = std::to_string(ef95);
  memory_extras["default_ef"] = std::to_string(default_ef);
  std::map<std::string, std::string> extras;
  for (const auto& entry : memory_extras) extras[entry.first] = entry.second;
  bench::write_results(results, "reclite", extras);
  bench::print_samples();
  return 0;
}
