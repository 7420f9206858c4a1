// Peer: the TorchScript user sides (torch.jit.trace, batch 1) of bench/make_bench_models.py run by libtorch,
// one thread (at::set_num_threads(1)), under torch::InferenceMode. Inputs are built as tensors for all 1000
// requests before timing (history item rows = external ids here; FM candidate entries = ids - 1), so only
// forward() is timed: the most favourable setting for the peer.
// SASRec (when DIR holds sasrec_requests.bin): sasrec.user.ts (RecBole: item rows [1, 50], length [1]) and
// sasrec_v3.user.ts (pmixer V3: item rows [1, 50]) on the 50-item histories, as tasks sasrec_encode and
// sasrec_v3_encode. MIND and SDM (when DIR holds multi_interest_requests.bin): mind.user.ts and sdm.user.ts of
// bench/make_multi_interest_models.py, as tasks mind_encode and sdm_encode.
//   bench_libtorch --models=DIR [--results=FILE] [Google Benchmark flags]
#include <benchmark/benchmark.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "bench_data.hpp"

int main(int argc, char** argv) {
  const std::string directory = bench::take_flag(argc, argv, "models", "build/bench/models");
  const std::string results = bench::take_flag(argc, argv, "results");
  benchmark::Initialize(&argc, argv);
  at::set_num_threads(1);
  at::set_num_interop_threads(1);

  bench::Requests requests;
  if (!bench::read_requests(directory + "/requests.bin", requests)) {
    std::fprintf(stderr, "bench_libtorch: cannot read %s/requests.bin\n", directory.c_str());
    return 1;
  }
  std::vector<torch::Tensor> categorical, history, candidates;
  const auto int64 = torch::TensorOptions().dtype(torch::kInt64);
  for (std::size_t r = 0; r < requests.count; ++r) {
    categorical.push_back(torch::from_blob(const_cast<std::int64_t*>(requests.categorical(r)),
                                           {1, static_cast<long>(requests.fields)}, int64).clone());
    history.push_back(torch::from_blob(const_cast<std::int64_t*>(requests.history_ids(r)),
                                       {1, static_cast<long>(requests.history)}, int64).clone());
    candidates.push_back(torch::from_blob(const_cast<std::int64_t*>(requests.candidate_ids(r)),
                                          {static_cast<long>(requests.candidates)}, int64).clone() - 1);
  }
  const std::size_t count = requests.count;

  struct Case {
    std::string task, file;
    int inputs;  // 1: (categorical); 2: (categorical, history); 3: (categorical, candidates);
                 // 4: (SASRec item rows); 5: (SASRec item rows, length); 6: MIND; 7: SDM (see below)
  };
  std::vector<Case> cases = {{"dssm_user", "dssm.user.ts", 2},
                             {"youtube_dnn_user", "youtube_dnn.user.ts", 2},
                             {"fm_user", "fm.user.ts", 1},
                             {"fm_user_scores_1000", "fm.score.ts", 3}};
  bench::Requests sasrec_requests;
  std::vector<torch::Tensor> sasrec_rows, sasrec_length;
  if (std::ifstream(directory + "/sasrec_requests.bin").good()) {
    if (!bench::read_requests(directory + "/sasrec_requests.bin", sasrec_requests)) {
      std::fprintf(stderr, "bench_libtorch: cannot read %s/sasrec_requests.bin\n", directory.c_str());
      return 1;
    }
    for (std::size_t r = 0; r < sasrec_requests.count; ++r) {
      sasrec_rows.push_back(torch::from_blob(const_cast<std::int64_t*>(sasrec_requests.history_ids(r)),
                                             {1, static_cast<long>(sasrec_requests.history)}, int64).clone());
      sasrec_length.push_back(torch::full({1}, static_cast<std::int64_t>(sasrec_requests.history), int64));
    }
    cases.push_back({"sasrec_encode", "sasrec.user.ts", 5});
    cases.push_back({"sasrec_v3_encode", "sasrec_v3.user.ts", 4});
  }
  // MIND and SDM (when DIR holds multi_interest_requests.bin): mind.user.ts (profile [1, 4], item rows [1, 50],
  // category ids [1, 50]) and sdm.user.ts (profile, short items and categories [1, 10], long ones [1, 50]), on the
  // windows bench_multi_interest reads: MIND the last 50 of the 60 items, SDM the last 10 and the 50 before.
  bench::ColumnRequests multi;
  std::vector<std::vector<torch::jit::IValue>> mind_inputs, sdm_inputs;
  if (std::ifstream(directory + "/multi_interest_requests.bin").good()) {
    if (!bench::read_column_requests(directory + "/multi_interest_requests.bin", multi)) {
      std::fprintf(stderr, "bench_libtorch: cannot read %s/multi_interest_requests.bin\n", directory.c_str());
      return 1;
    }
    const auto profile = multi.column("profile"), items = multi.column("items"), categories = multi.column("categories");
    auto slice = [&](std::size_t r, const bench::ColumnRequests::Column& column, std::size_t skip, std::size_t length) {
      return torch::from_blob(const_cast<std::int64_t*>(multi.values(r, column, skip)), {1, static_cast<long>(length)},
                              int64).clone();
    };
    for (std::size_t r = 0; r < multi.count; ++r) {
      mind_inputs.push_back({slice(r, profile, 0, profile.width), slice(r, items, 10, 50), slice(r, categories, 10, 50)});
      sdm_inputs.push_back({slice(r, profile, 0, profile.width), slice(r, items, 50, 10), slice(r, categories, 50, 10),
                            slice(r, items, 0, 50), slice(r, categories, 0, 50)});
    }
    // make_multi_interest_models.py writes NAME.user.ts only when the trace reproduces the module.
    if (std::ifstream(directory + "/mind.user.ts").good()) cases.push_back({"mind_encode", "mind.user.ts", 6});
    if (std::ifstream(directory + "/sdm.user.ts").good()) cases.push_back({"sdm_encode", "sdm.user.ts", 7});
  }
  auto make_inputs = [&](const Case& c, std::size_t r) {
    if (c.inputs == 6) return mind_inputs[r % mind_inputs.size()];
    if (c.inputs == 7) return sdm_inputs[r % sdm_inputs.size()];
    std::vector<torch::jit::IValue> inputs;
    if (c.inputs >= 4) {
      inputs.emplace_back(sasrec_rows[r % sasrec_rows.size()]);
      if (c.inputs == 5) inputs.emplace_back(sasrec_length[r % sasrec_length.size()]);
      return inputs;
    }
    inputs.emplace_back(categorical[r]);
    if (c.inputs == 2) inputs.emplace_back(history[r]);
    if (c.inputs == 3) inputs.emplace_back(candidates[r]);
    return inputs;
  };
  std::vector<torch::jit::script::Module> modules;
  for (const auto& c : cases) {
    modules.push_back(torch::jit::load(directory + "/" + c.file));
    modules.back().eval();
  }
  {
    // The profiling executor specialises a graph over its first calls; time the optimised graph, as a server would.
    torch::InferenceMode guard;
    for (std::size_t i = 0; i < cases.size(); ++i)
      for (std::size_t r = 0; r < 50; ++r) modules[i].forward(make_inputs(cases[i], r));
  }
  for (std::size_t i = 0; i < cases.size(); ++i) {
    benchmark::RegisterBenchmark(cases[i].task.c_str(), [&, i](benchmark::State& state) {
      torch::InferenceMode guard;
      auto& module = modules[i];
      auto& pooled = bench::samples()[cases[i].task];
      std::size_t call = 0;
      for (auto _ : state) {
        const std::size_t r = call++ % count;
        std::vector<torch::jit::IValue> inputs = make_inputs(cases[i], r);
        bench::Timer timer;
        torch::Tensor out = module.forward(inputs).toTensor();
        pooled.push_back(timer.microseconds());
        benchmark::DoNotOptimize(out.data_ptr());
      }
    })->Unit(benchmark::kMicrosecond);
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  bench::write_results(results, "libtorch");
  return 0;
}
