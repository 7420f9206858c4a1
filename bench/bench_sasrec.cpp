// SASRec on the device: full encode of a 50-item history, one incremental append, and history -> top-100 over a
// 100k-item catalogue, for 2 blocks, hidden 64, 2 heads, window 50 (RecBole: inner 256, right padding; pmixer V2:
// inner 64, left padding, so every append re-encodes the window). The model file is built in memory with the
// FlatBuffers builder (tests/format/tiny_sasrec.hpp), random weights.
// Google Benchmark's columns are per-iteration means (the CPU column counts every cache refill after a preemption on
// a loaded machine); the counter median_us is the median wall time of one call, the statistic bench_sasrec_models
// and the peers report, so compare that one with docs/performance.md.
//
//   ./bench_sasrec --benchmark_repetitions=10 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "format/tiny_model.hpp"
#include "format/tiny_sasrec.hpp"
#include "reclite/index/exact_search.hpp"
#include "reclite/reclite.hpp"

namespace {

// Per-call wall times of one benchmark run; median_us is set from them at the end.
struct CallTimes {
  std::vector<double> microseconds;
  std::chrono::steady_clock::time_point started;
  void start() { started = std::chrono::steady_clock::now(); }
  void stop() {
    microseconds.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - started).count());
  }
  void report(benchmark::State& state) {
    if (microseconds.empty()) return;
    auto middle = microseconds.begin() + static_cast<std::ptrdiff_t>(microseconds.size() / 2);
    std::nth_element(microseconds.begin(), middle, microseconds.end());
    state.counters["median_us"] = *middle;
  }
};

constexpr std::uint32_t items = 100000;
constexpr std::uint32_t window = 50;

struct BenchModel {
  std::unique_ptr<test::AlignedBuffer> buffer;
  std::unique_ptr<reclite::Model> model;
  std::vector<std::int64_t> history;  // 2 * window known ids
};

const BenchModel& bench_model(const std::string& variant) {
  static std::vector<std::pair<std::string, std::unique_ptr<BenchModel>>> cache;
  for (auto& entry : cache)
    if (entry.first == variant) return *entry.second;
  test::TinySasRecOptions options;
  options.spec = test::sasrec_spec(variant);
  options.items = items;
  options.max_length = window;
  options.hidden = 64;
  options.heads = 2;
  options.layers = 2;
  options.inner = variant == "recbole" ? 256 : 64;
  options.weight_std = 0.1f;
  auto bench = std::make_unique<BenchModel>();
  bench->buffer = std::make_unique<test::AlignedBuffer>(test::build_tiny_sasrec(options).bytes);
  auto loaded = reclite::Model::from_buffer(bench->buffer->data(), bench->buffer->size, variant + ".reclite");
  if (!loaded) std::abort();
  bench->model = std::make_unique<reclite::Model>(std::move(*loaded));
  std::mt19937 generator(1);
  std::uniform_int_distribution<std::uint32_t> row(1, items);
  for (std::uint32_t i = 0; i < 2 * window; ++i) bench->history.push_back(test::TinySasRec::external_id(row(generator)));
  cache.emplace_back(variant, std::move(bench));
  return *cache.back().second;
}

void BM_SasRecFullEncode(benchmark::State& state, const std::string& variant) {
  const BenchModel& bench = bench_model(variant);
  reclite::Session session(*bench.model);
  std::vector<float> vector(bench.model->user_dim());
  reclite::FieldInput field;
  field.ids = reclite::Span<const std::int64_t>(bench.history.data() + window, window);
  const reclite::Span<const reclite::FieldInput> request(&field, 1);
  CallTimes times;
  for (auto _ : state) {
    times.start();
    if (!session.encode_user(request, vector)) state.SkipWithError("encode_user failed");
    benchmark::DoNotOptimize(vector.data());
    times.stop();
  }
  times.report(state);
}

// One append per iteration. RecBole: appends at positions 25..49 (incremental); every 25 the state is reset to a
// 25-item history outside the timing. pmixer V2: every append re-encodes the full window.
void BM_SasRecAppend(benchmark::State& state, const std::string& variant) {
  const BenchModel& bench = bench_model(variant);
  auto sequences = reclite::SequenceSession::create(*bench.model);
  const reclite::Span<const std::int64_t> start(bench.history.data(), window / 2);
  auto sequence = sequences->start(start);
  std::size_t next = window / 2;
  std::size_t incremental = 0;
  CallTimes times;
  for (auto _ : state) {
    if (sequence->length() == window) {
      state.PauseTiming();
      (void)sequences->reset(*sequence, start);
      next = window / 2;
      state.ResumeTiming();
    }
    times.start();
    auto report = sequences->append(*sequence, bench.history[next++ % bench.history.size()]);
    benchmark::DoNotOptimize(sequence->user_vector().data());
    times.stop();
    incremental += report->path == reclite::UpdatePath::incremental ? 1 : 0;
  }
  times.report(state);
  state.counters["incremental_share"] =
      benchmark::Counter(static_cast<double>(incremental) / static_cast<double>(state.iterations()));
}

// History -> user vector -> exact top-100 over 100k item vectors, history items excluded.
void BM_SasRecTop100(benchmark::State& state, const std::string& variant) {
  const BenchModel& bench = bench_model(variant);
  const reclite::Model& model = *bench.model;
  auto exact = reclite::index::ExactIndex::create(
      model.item_vectors(), model.catalogue().size(), model.item_dim(),
      reclite::Span<const std::int64_t>(model.catalogue().external_ids(), model.catalogue().size()));
  reclite::Session session(model);
  std::vector<float> vector(model.user_dim());
  std::vector<reclite::index::SearchHit> hits(100);
  const reclite::Span<const std::int64_t> history(bench.history.data() + window, window);
  reclite::FieldInput field;
  field.ids = history;
  const reclite::Span<const reclite::FieldInput> request(&field, 1);
  for (auto _ : state) {
    if (!session.encode_user(request, vector)) state.SkipWithError("encode_user failed");
    auto found = exact->search_top_k(vector.data(), 100, history, hits);
    benchmark::DoNotOptimize(found);
  }
}

}  // namespace

BENCHMARK_CAPTURE(BM_SasRecFullEncode, recbole, std::string("recbole"))->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_SasRecFullEncode, pmixer_v2, std::string("pmixer_v2"))->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_SasRecAppend, recbole, std::string("recbole"))->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_SasRecAppend, pmixer_v2, std::string("pmixer_v2"))->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_SasRecTop100, recbole, std::string("recbole"))->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
