// SASRec per-call latency on the models of bench/make_bench_models.py (issue 4): 2 blocks, hidden 64, 2 heads,
// window 50, 100k items; single thread, batch 1. `sasrec` is the RecBole variant (right padding: appends are
// incremental), `sasrec_v3` pmixer V3 (left padding: every append re-encodes the window), for comparison.
//
//   bench_sasrec_models --models=DIR [--results=FILE] [Google Benchmark flags, e.g. --benchmark_repetitions=10]
//
// Requests cycle through the 1000 50-item histories of DIR/sasrec_requests.bin, the ones pytorch_bench.py and
// bench_libtorch read. Tasks (JSON lines through bench/peers/bench_data.hpp, median and p99 over every timed call
// of every repetition, as bench_models does):
//   sasrec_encode              Session::encode_user on a 50-item history
//   sasrec_append              SequenceSession::append of item 50 to a state holding items 1..49 (the state is
//                              reset to the next request's 49 items before every append, outside the per-call
//                              timer, without PauseTiming: see register_append)
//   sasrec_end_to_end          encode_user + HnswIndex::search_top_k(100), the 50 history items excluded, at the
//                              smallest ef of the ladder whose results reach recall@100 >= 0.95 against the exact
//                              top-100 with the same exclusion (bench/end_to_end_ef.hpp; not run when none up to
//                              1024 does)
//   sasrec_exact_end_to_end    encode_user + ExactIndex::search_top_k(100), history excluded
//   sasrec_exact_top100        ExactIndex::search_top_k(100) alone, on the PyTorch user vectors (no exclusion)
//   sasrec_v3_encode, sasrec_v3_append   the same for pmixer V3
// The in-memory SASRec benchmarks (random weights, no files) stay in bench_sasrec.cpp.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
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

// One FieldInput per request: the model's history field (its only input) over the request's 50 ids.
std::vector<FieldInput> make_inputs(const reclite::Model& model, const bench::Requests& requests) {
  if (model.user_fields().size() != 1) die(model.name() + ": expected one input field (the history)");
  std::vector<FieldInput> all(requests.count);
  for (std::size_t r = 0; r < requests.count; ++r)
    all[r].ids = Span<const std::int64_t>(requests.history_ids(r), requests.history);
  return all;
}

void register_encode(const std::string& name, const reclite::Model& model, const std::vector<FieldInput>& inputs) {
  benchmark::RegisterBenchmark(name.c_str(), [&model, &inputs, name](benchmark::State& state) {
    reclite::Session session(model);
    std::vector<float> user(model.user_dim());
    timed_loop(state, name, [&](std::size_t call) {
      auto done = session.encode_user(Span<const FieldInput>(&inputs[call % inputs.size()], 1), user);
      benchmark::DoNotOptimize(done);
      benchmark::DoNotOptimize(user.data());
    });
  })->Unit(benchmark::kMicrosecond);
}

// Append the last item of a request to a state holding its first history - 1 items; the reset before it is not
// timed. Only the append is timed (bench::Timer, as every pooled sample); Google Benchmark's PauseTiming and
// ResumeTiming are not used: they read the thread CPU clock, a system call on our VM, and with them around the
// reset the same append measured about 1 us slower (4.8 vs 3.9 us; kernel entry and exit flush the TLB under
// PTI), a cost the back-to-back encode it is compared with does not pay.
void register_append(const std::string& name, const reclite::Model& model, const bench::Requests& requests) {
  benchmark::RegisterBenchmark(name.c_str(), [&model, &requests, name](benchmark::State& state) {
    auto sequences = take(reclite::SequenceSession::create(model), name);
    const std::size_t prefix = requests.history - 1;
    auto sequence = take(sequences.start(Span<const std::int64_t>(requests.history_ids(0), prefix)), name);
    auto& pooled = bench::samples()[name];
    std::size_t call = 0, incremental = 0;
    for (auto _ : state) {
      const std::size_t r = call++ % requests.count;
      if (call > 1) take(sequences.reset(sequence, Span<const std::int64_t>(requests.history_ids(r), prefix)), name);
      bench::Timer timer;
      auto report = sequences.append(sequence, requests.history_ids(r)[prefix]);
      pooled.push_back(timer.microseconds());
      incremental += report && report->path == reclite::UpdatePath::incremental ? 1 : 0;
      benchmark::DoNotOptimize(sequence.user_vector().data());
    }
    state.counters["incremental_share"] =
        benchmark::Counter(static_cast<double>(incremental) / static_cast<double>(state.iterations()));
  })->Unit(benchmark::kMicrosecond);
}

// max |append result - full encode| over the first requests: the incremental path must equal the full encode.
double append_vs_encode(const reclite::Model& model, const bench::Requests& requests, std::size_t count) {
  auto sequences = take(reclite::SequenceSession::create(model), "SequenceSession");
  reclite::Session session(model);
  std::vector<float> full(model.user_dim());
  double worst = 0;
  for (std::size_t r = 0; r < count; ++r) {
    auto sequence = take(sequences.start(Span<const std::int64_t>(requests.history_ids(r), requests.history - 1)),
                         "start");
    take(sequences.append(sequence, requests.history_ids(r)[requests.history - 1]), "append");
    FieldInput field;
    field.ids = Span<const std::int64_t>(requests.history_ids(r), requests.history);
    take(session.encode_user(Span<const FieldInput>(&field, 1), full), "encode_user");
    for (std::size_t i = 0; i < full.size(); ++i)
      worst = std::max(worst, static_cast<double>(std::fabs(full[i] - sequence.user_vector()[i])));
  }
  return worst;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string directory = bench::take_flag(argc, argv, "models", "build/bench/models");
  const std::string results = bench::take_flag(argc, argv, "results");
  benchmark::Initialize(&argc, argv);

  bench::Requests requests;
  if (!bench::read_requests(directory + "/sasrec_requests.bin", requests) || requests.fields != 0)
    die(directory + "/sasrec_requests.bin: cannot read (bench/make_bench_models.py --only sasrec writes it)");

  reclite::LoadOptions checked;
  checked.run_self_test = true;  // checksums and the converter's self-test samples
  auto model = take(reclite::Model::load(directory + "/sasrec.reclite", checked), "sasrec.reclite self-test");
  auto v3 = take(reclite::Model::load(directory + "/sasrec_v3.reclite", checked), "sasrec_v3.reclite self-test");
  std::printf("self-tests passed: sasrec (RecBole), sasrec_v3 (pmixer V3)\n");
  std::map<std::string, std::string> extras;

  // Our user vectors against PyTorch's (sasrec.queries.npy, the reference module on the same requests).
  bench::Npy<float> queries;
  if (!bench::read_npy(directory + "/sasrec.queries.npy", queries) || queries.rows() != requests.count)
    die("sasrec.queries.npy: cannot read");
  const auto inputs = make_inputs(model, requests);
  const auto v3_inputs = make_inputs(v3, requests);
  std::vector<float> users(requests.count * model.user_dim());  // ours, for the end-to-end ef
  {
    reclite::Session session(model);
    std::vector<float> user(model.user_dim());
    double worst = 0;
    for (std::size_t r = 0; r < requests.count; ++r) {
      take(session.encode_user(Span<const FieldInput>(&inputs[r], 1), user), "encode_user");
      for (std::size_t i = 0; i < user.size(); ++i)
        worst = std::max(worst, static_cast<double>(std::fabs(user[i] - queries.data[r * queries.columns() + i])));
      std::copy(user.begin(), user.end(), users.begin() + static_cast<std::ptrdiff_t>(r * user.size()));
    }
    const double append_worst = append_vs_encode(model, requests, 100);
    std::printf("max |ours - PyTorch| over 1000 user vectors: %.3g; max |append - full encode| (100 users): %.3g\n",
                worst, append_worst);
    extras["sasrec_max_abs_diff_vs_pytorch"] = std::to_string(worst);
    extras["sasrec_max_abs_diff_append_vs_encode"] = std::to_string(append_worst);
  }

  auto index = take(reclite::index::HnswIndex::open(directory + "/sasrec.rlindex"), "sasrec.rlindex");
  // Recall without exclusion at the manifest's ef_recall_95 (the smallest ef of make_bench_models' ladder reaching
  // recall@100 0.95 on PyTorch's user vectors of these requests), for the record.
  const double ef95_number = bench::manifest_number(directory, "sasrec", "ef_recall_95");
  {
    bench::Npy<std::int64_t> truth;
    if (!bench::read_npy(directory + "/sasrec.truth.npy", truth)) die("sasrec.truth.npy: cannot read");
    auto measure_recall = [&](std::size_t ef) {
      return bench::index_recall_at_k<SearchHit>(index, queries, truth, ef, top_k);
    };
    const std::size_t default_ef = index.default_ef();
    const double recall_default = measure_recall(default_ef);
    std::printf("sasrec hnsw: recall@100 vs exact on the 1000 request user vectors: %.4f at default ef %zu",
                recall_default, default_ef);
    extras["sasrec_recall_at_100: default_ef " + std::to_string(default_ef)] = std::to_string(recall_default);
    if (ef95_number > 0) {
      const auto ef95 = static_cast<std::size_t>(ef95_number);
      const double recall = measure_recall(ef95);
      std::printf(", %.4f at ef %zu\n", recall, ef95);
      extras["sasrec_recall_at_100: ef " + std::to_string(ef95)] = std::to_string(recall);
    } else {
      std::printf("\n");
    }
  }
  auto exact = take(reclite::index::ExactIndex::create(
                        model.item_vectors(), model.catalogue().size(), model.item_dim(),
                        Span<const std::int64_t>(model.catalogue().external_ids(), model.catalogue().size())),
                    "ExactIndex");

  // The end to end runs at the ef whose results, history excluded, reach recall@100 0.95 of the exact ones, so its
  // time is that of a search returning the right items; when no ef up to 1024 does, it is not timed: a fast search
  // of the wrong items is no answer to the question.
  std::vector<Span<const std::int64_t>> histories;
  for (const auto& input : inputs) histories.push_back(input.ids);
  const bench::EndToEndEf end_to_end =
      bench::choose_end_to_end_ef("sasrec", index, exact, users, model.user_dim(), histories, top_k, 0.95, extras);
  const std::size_t ef_end_to_end = end_to_end.recall >= 0.95 ? end_to_end.ef : 0;

  register_encode("sasrec_encode", model, inputs);
  register_append("sasrec_append", model, requests);

  if (ef_end_to_end > 0) benchmark::RegisterBenchmark("sasrec_end_to_end", [&](benchmark::State& state) {
    index.set_ef(ef_end_to_end);
    reclite::Session session(model);
    std::vector<float> user(model.user_dim());
    std::vector<SearchHit> hits(top_k);
    timed_loop(state, "sasrec_end_to_end", [&](std::size_t call) {
      const std::size_t r = call % requests.count;
      auto done = session.encode_user(Span<const FieldInput>(&inputs[r], 1), user);
      auto found = index.search_top_k(user.data(), top_k, inputs[r].ids, hits);
      benchmark::DoNotOptimize(done);
      benchmark::DoNotOptimize(found);
      benchmark::DoNotOptimize(hits.data());
    });
  })->Unit(benchmark::kMicrosecond);

  benchmark::RegisterBenchmark("sasrec_exact_end_to_end", [&](benchmark::State& state) {
    reclite::Session session(model);
    std::vector<float> user(model.user_dim());
    std::vector<SearchHit> hits(top_k);
    timed_loop(state, "sasrec_exact_end_to_end", [&](std::size_t call) {
      const std::size_t r = call % requests.count;
      auto done = session.encode_user(Span<const FieldInput>(&inputs[r], 1), user);
      auto found = exact.search_top_k(user.data(), top_k, inputs[r].ids, hits);
      benchmark::DoNotOptimize(done);
      benchmark::DoNotOptimize(found);
      benchmark::DoNotOptimize(hits.data());
    });
  })->Unit(benchmark::kMicrosecond);

  benchmark::RegisterBenchmark("sasrec_exact_top100", [&](benchmark::State& state) {
    std::vector<SearchHit> hits(top_k);
    timed_loop(state, "sasrec_exact_top100", [&](std::size_t call) {
      auto found = exact.search_top_k(&queries.data[(call % queries.rows()) * queries.columns()], top_k, {}, hits);
      benchmark::DoNotOptimize(found);
      benchmark::DoNotOptimize(hits.data());
    });
  })->Unit(benchmark::kMicrosecond);

  register_encode("sasrec_v3_encode", v3, v3_inputs);
  register_append("sasrec_v3_append", v3, requests);

  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  bench::write_results(results, "reclite", extras);
  bench::print_samples();
  return 0;
}
