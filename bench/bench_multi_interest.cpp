// MIND and SDM per-call latency and multi-interest recall on the models of bench/make_multi_interest_models.py
// (issue 5): MIND K = 4, hidden 64, 3 routing iterations, history 50; SDM units 64, 2 heads, short 10, long 50;
// 100k items; single thread, batch 1.
//
//   bench_multi_interest --models=DIR [--results=FILE] [Google Benchmark flags, e.g. --benchmark_repetitions=10]
//
// Requests cycle through the 1000 requests of DIR/multi_interest_requests.bin (profile, 60 items, their
// categories), the ones pytorch_bench.py and bench_libtorch read: MIND's history is the last 50 items, SDM's
// short term the last 10 and its long term the 50 before. Tasks (JSON lines through bench/peers/bench_data.hpp,
// median and p99 over every timed call of every repetition, as bench_models does):
//   mind_encode                 Session::encode_user: all K = 4 interest vectors
//   sdm_encode                  Session::encode_user: the user vector
//   mind_hnsw_top100            pipeline::multi_interest_recall(k 100) over HnswIndex, on PyTorch's interest
//                               vectors (mind.queries.npy, K' of mind.active.npy), at the smallest ef of the ladder
//                               whose merged top-100 reaches recall >= 0.95 of the exact merge (printed)
//   mind_exact_top100           the same over ExactIndex (the exact merge)
//   mind_end_to_end             encode_user + multi_interest_recall over HnswIndex (that ef), the request's 60
//                               history items excluded
//   mind_exact_end_to_end       encode_user + multi_interest_recall over ExactIndex, history excluded
//   sdm_end_to_end, sdm_exact_end_to_end   the same for SDM (one vector: a single search)
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "peers/bench_data.hpp"
#include "reclite/index/exact_search.hpp"
#include "reclite/index/hnsw_index.hpp"
#include "reclite/reclite.hpp"

namespace {

using bench::die;
using bench::take;
using bench::timed_loop;
using reclite::FieldInput;
using reclite::Span;
using reclite::pipeline::InterestHit;

constexpr std::size_t top_k = 100;
constexpr std::size_t sequence = 60, mind_history = 50, short_length = 10, long_length = 50, profile_fields = 4;
// ef >= k (hnswlib searches with max(ef, k)); make_bench_models.py's ladder from 100 on.
const std::vector<std::size_t> ef_ladder = {100, 128, 160, 192, 256, 320, 384, 512, 768, 1024};
constexpr double recall_floor = 0.95;

// Where each input field of a model reads the request: a column, how far in, how many values.
struct FieldSource {
  const char* column;
  std::size_t skip, length;
};

// The FieldInputs of every request for one model, in the model's field order, each pointing into the request
// records (nothing copied). Field names are the converter's: field_0..3, history / history_category (MIND),
// short_item / short_category / long_item / long_category (SDM).
std::vector<std::vector<FieldInput>> make_inputs(const reclite::Model& model, const bench::ColumnRequests& requests,
                                                 const std::map<std::string, FieldSource>& sources) {
  const std::size_t fields = model.user_fields().size();
  if (fields != sources.size())
    die(model.name() + ": " + std::to_string(fields) + " input fields, the benchmark fills " +
        std::to_string(sources.size()));
  std::vector<std::vector<FieldInput>> all(requests.count, std::vector<FieldInput>(fields));
  for (const auto& source : sources) {
    const auto index = take(model.user_field_index(source.first), model.name());
    const auto column = requests.column(source.second.column);
    if (column.width < source.second.skip + source.second.length)
      die(std::string("multi_interest_requests.bin: column '") + source.second.column + "' too narrow");
    for (std::size_t r = 0; r < requests.count; ++r)
      all[r][index].ids = Span<const std::int64_t>(requests.values(r, column, source.second.skip), source.second.length);
  }
  return all;
}

std::map<std::string, FieldSource> profile_sources() {
  std::map<std::string, FieldSource> sources;
  for (std::size_t f = 0; f < profile_fields; ++f) sources["field_" + std::to_string(f)] = {"profile", f, 1};
  return sources;
}

// Our user vectors of every request [count, vectors x dim] and K' per request (1 for SDM).
void encode_all(const reclite::Model& model, const std::vector<std::vector<FieldInput>>& inputs,
                std::vector<float>& vectors, std::vector<std::size_t>& active) {
  reclite::Session session(model);
  const std::size_t width = model.user_dim() * model.user_vector_count();
  vectors.assign(inputs.size() * width, 0.0f);
  active.assign(inputs.size(), 1);
  for (std::size_t r = 0; r < inputs.size(); ++r) {
    take(session.encode_user(inputs[r], Span<float>(vectors.data() + r * width, width)), "encode_user");
    if (model.user_vector_count() > 1) active[r] = session.last_stats().active_interests;
  }
}

double max_abs_difference(const std::vector<float>& ours, const bench::Npy<float>& theirs) {
  if (ours.size() != theirs.data.size()) die("user vectors: sizes differ from PyTorch's");
  double worst = 0;
  for (std::size_t i = 0; i < ours.size(); ++i)
    worst = std::max(worst, static_cast<double>(std::fabs(ours[i] - theirs.data[i])));
  return worst;
}

// The merged top-100 of every request's active interests (no exclusion), as entries [count, 100].
template <class Index>
std::vector<std::int64_t> merged_top(const Index& index, const std::vector<float>& vectors,
                                     const std::vector<std::size_t>& active, std::size_t width, std::size_t dim) {
  reclite::pipeline::MultiInterestOptions options;
  options.k = top_k;
  reclite::pipeline::MultiInterestScratch scratch;
  std::vector<InterestHit> hits(top_k);
  std::vector<std::int64_t> entries(active.size() * top_k, -1);
  for (std::size_t r = 0; r < active.size(); ++r) {
    const auto found = take(reclite::pipeline::multi_interest_recall(index, vectors.data() + r * width, active[r], dim,
                                                                     {}, options, scratch, hits),
                            "multi_interest_recall");
    for (std::size_t i = 0; i < found; ++i) entries[r * top_k + i] = hits[i].entry;
  }
  return entries;
}

// The smallest ef of the ladder whose merged top-100 reaches recall_floor against the exact merge (the largest
// rung when none does); every rung tried is printed and recorded.
std::size_t choose_ef(const std::string& name, reclite::index::HnswIndex& index,
                      const reclite::index::ExactIndex& exact, const std::vector<float>& vectors,
                      const std::vector<std::size_t>& active, std::size_t width, std::size_t dim,
                      std::map<std::string, std::string>& extras) {
  const auto truth = merged_top(exact, vectors, active, width, dim);
  std::size_t chosen = ef_ladder.back();
  std::printf("%s: recall@100 of the hnsw merge vs the exact merge (our %zu request vectors):", name.c_str(),
              active.size());
  for (std::size_t ef : ef_ladder) {
    index.set_ef(ef);
    const double recall = bench::recall_at_k(merged_top(index, vectors, active, width, dim), truth, top_k,
                                             active.size(), top_k);
    std::printf(" ef %zu %.4f;", ef, recall);
    extras[name + "_recall_at_100: ef " + std::to_string(ef)] = std::to_string(recall);
    if (recall >= recall_floor) {
      chosen = ef;
      break;
    }
  }
  std::printf(" -> ef %zu (default ef %zu)\n", chosen, index.default_ef());
  extras[name + "_ef95"] = std::to_string(chosen);
  return chosen;
}

void register_encode(const std::string& name, const reclite::Model& model,
                     const std::vector<std::vector<FieldInput>>& inputs) {
  benchmark::RegisterBenchmark(name.c_str(), [&model, &inputs, name](benchmark::State& state) {
    reclite::Session session(model);
    std::vector<float> user(model.user_dim() * model.user_vector_count());
    timed_loop(state, name, [&](std::size_t call) {
      auto done = session.encode_user(inputs[call % inputs.size()], user);
      benchmark::DoNotOptimize(done);
      benchmark::DoNotOptimize(user.data());
    });
  })->Unit(benchmark::kMicrosecond);
}

// multi_interest_recall alone on given vectors (PyTorch's), no exclusion.
template <class Index>
void register_recall(const std::string& name, const Index& index, const bench::Npy<float>& vectors,
                     const std::vector<std::size_t>& active, std::size_t dim) {
  benchmark::RegisterBenchmark(name.c_str(), [&index, &vectors, &active, dim, name](benchmark::State& state) {
    reclite::pipeline::MultiInterestOptions options;
    options.k = top_k;
    reclite::pipeline::MultiInterestScratch scratch;
    std::vector<InterestHit> hits(top_k);
    timed_loop(state, name, [&](std::size_t call) {
      const std::size_t r = call % active.size();
      auto found = reclite::pipeline::multi_interest_recall(index, &vectors.data[r * vectors.columns()], active[r], dim,
                                                            {}, options, scratch, hits);
      benchmark::DoNotOptimize(found);
      benchmark::DoNotOptimize(hits.data());
    });
  })->Unit(benchmark::kMicrosecond);
}

// encode_user, then multi_interest_recall over the active interests (K' from the session), history excluded.
template <class Index>
void register_end_to_end(const std::string& name, const reclite::Model& model, const Index& index,
                         const std::vector<std::vector<FieldInput>>& inputs, const bench::ColumnRequests& requests) {
  benchmark::RegisterBenchmark(name.c_str(), [&model, &index, &inputs, &requests, name](benchmark::State& state) {
    reclite::Session session(model);
    const std::size_t dim = model.user_dim();
    std::vector<float> user(dim * model.user_vector_count());
    reclite::pipeline::MultiInterestOptions options;
    options.k = top_k;
    reclite::pipeline::MultiInterestScratch scratch;
    std::vector<InterestHit> hits(top_k);
    const auto items = requests.column("items");
    const bool multi = model.user_vector_count() > 1;
    timed_loop(state, name, [&](std::size_t call) {
      const std::size_t r = call % inputs.size();
      auto done = session.encode_user(inputs[r], user);
      const std::size_t active = multi ? session.last_stats().active_interests : 1;
      auto found = reclite::pipeline::multi_interest_recall(
          index, user.data(), active, dim, Span<const std::int64_t>(requests.values(r, items), sequence), options,
          scratch, hits);
      benchmark::DoNotOptimize(done);
      benchmark::DoNotOptimize(found);
      benchmark::DoNotOptimize(hits.data());
    });
  })->Unit(benchmark::kMicrosecond);
}

// A small number as a JSON value ("%.3g"): std::to_string prints 3.5e-07 as 0.000000.
std::string scientific(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3g", value);
  return text;
}

reclite::index::ExactIndex exact_index(const reclite::Model& model) {
  return take(reclite::index::ExactIndex::create(
                  model.item_vectors(), model.catalogue().size(), model.item_dim(),
                  Span<const std::int64_t>(model.catalogue().external_ids(), model.catalogue().size())),
              model.name() + ": ExactIndex");
}

}  // namespace

int main(int argc, char** argv) {
  const std::string directory = bench::take_flag(argc, argv, "models", "build/bench/models");
  const std::string results = bench::take_flag(argc, argv, "results");
  benchmark::Initialize(&argc, argv);

  bench::ColumnRequests requests;
  if (!bench::read_column_requests(directory + "/multi_interest_requests.bin", requests) ||
      requests.column("items").width != sequence || requests.column("categories").width != sequence ||
      requests.column("profile").width != profile_fields)
    die(directory + "/multi_interest_requests.bin: cannot read (bench/make_multi_interest_models.py writes it)");

  reclite::LoadOptions checked;
  checked.run_self_test = true;  // checksums and the converter's self-test samples
  auto mind = take(reclite::Model::load(directory + "/mind.reclite", checked), "mind.reclite self-test");
  auto sdm = take(reclite::Model::load(directory + "/sdm.reclite", checked), "sdm.reclite self-test");
  std::printf("self-tests passed: mind, sdm\n");
  std::map<std::string, std::string> extras;

  auto mind_sources = profile_sources();
  mind_sources["history"] = {"items", sequence - mind_history, mind_history};
  mind_sources["history_category"] = {"categories", sequence - mind_history, mind_history};
  auto sdm_sources = profile_sources();
  sdm_sources["short_item"] = {"items", long_length, short_length};
  sdm_sources["short_category"] = {"categories", long_length, short_length};
  sdm_sources["long_item"] = {"items", 0, long_length};
  sdm_sources["long_category"] = {"categories", 0, long_length};
  const auto mind_inputs = make_inputs(mind, requests, mind_sources);
  const auto sdm_inputs = make_inputs(sdm, requests, sdm_sources);

  // Our user vectors against PyTorch's (the reference modules on the same requests), and K' against its K'.
  bench::Npy<float> mind_queries, sdm_queries;
  bench::Npy<std::int64_t> mind_active_npy;
  if (!bench::read_npy(directory + "/mind.queries.npy", mind_queries) ||
      !bench::read_npy(directory + "/sdm.queries.npy", sdm_queries) ||
      !bench::read_npy(directory + "/mind.active.npy", mind_active_npy))
    die("mind.queries.npy, sdm.queries.npy, mind.active.npy: cannot read");
  std::vector<float> mind_vectors, sdm_vectors;
  std::vector<std::size_t> mind_active, sdm_active;
  encode_all(mind, mind_inputs, mind_vectors, mind_active);
  encode_all(sdm, sdm_inputs, sdm_vectors, sdm_active);
  const std::vector<std::size_t> pytorch_active(mind_active_npy.data.begin(), mind_active_npy.data.end());
  if (pytorch_active != mind_active) die("mind: our K' differs from PyTorch's");
  const double mind_worst = max_abs_difference(mind_vectors, mind_queries);
  const double sdm_worst = max_abs_difference(sdm_vectors, sdm_queries);
  std::printf("max |ours - PyTorch| over 1000 requests: MIND %.3g (all K = %zu interests, K' = %zu), SDM %.3g\n",
              mind_worst, mind.user_vector_count(), mind_active[0], sdm_worst);
  extras["mind_max_abs_diff_vs_pytorch"] = scientific(mind_worst);
  extras["sdm_max_abs_diff_vs_pytorch"] = scientific(sdm_worst);

  auto mind_index = take(reclite::index::HnswIndex::open(directory + "/mind.rlindex"), "mind.rlindex");
  auto sdm_index = take(reclite::index::HnswIndex::open(directory + "/sdm.rlindex"), "sdm.rlindex");
  const auto mind_exact = exact_index(mind);
  const auto sdm_exact = exact_index(sdm);
  const std::size_t dim = mind.user_dim();
  const std::size_t mind_ef = choose_ef("mind", mind_index, mind_exact, mind_vectors, mind_active,
                                        dim * mind.user_vector_count(), dim, extras);
  const std::size_t sdm_ef = choose_ef("sdm", sdm_index, sdm_exact, sdm_vectors, sdm_active, sdm.user_dim(),
                                       sdm.user_dim(), extras);

  register_encode("mind_encode", mind, mind_inputs);
  register_encode("sdm_encode", sdm, sdm_inputs);
  // One index object per model, set to its chosen ef once: no benchmark below changes it.
  mind_index.set_ef(mind_ef);
  sdm_index.set_ef(sdm_ef);
  register_recall("mind_hnsw_top100", mind_index, mind_queries, pytorch_active, dim);
  register_recall("mind_exact_top100", mind_exact, mind_queries, pytorch_active, dim);
  register_end_to_end("mind_end_to_end", mind, mind_index, mind_inputs, requests);
  register_end_to_end("mind_exact_end_to_end", mind, mind_exact, mind_inputs, requests);
  register_end_to_end("sdm_end_to_end", sdm, sdm_index, sdm_inputs, requests);
  register_end_to_end("sdm_exact_end_to_end", sdm, sdm_exact, sdm_inputs, requests);

  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  bench::write_results(results, "reclite", extras);
  bench::print_samples();
  return 0;
}
