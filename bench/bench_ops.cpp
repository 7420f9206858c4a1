// Kernel timings beside their scalar references, at the sizes of the models we serve:
// dot n=64 (retrieval score), the DSSM tower 192 -> 256 -> 128 -> 64 with ReLU, layer_norm n=64
// (SASRec hidden size) and softmax n=50 (RecBole's default sequence length).
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "reclite/ops/dot.hpp"
#include "reclite/ops/gemv.hpp"
#include "reclite/ops/layer_norm.hpp"
#include "reclite/ops/simd.hpp"
#include "reclite/ops/softmax.hpp"

namespace ops = reclite::ops;

namespace {
std::vector<float> random_values(std::size_t n, unsigned seed) {
  std::mt19937 generator(seed);
  std::uniform_real_distribution<float> distribution(-1.0f, 1.0f);
  std::vector<float> values(n);
  for (float& value : values) value = distribution(generator);
  return values;
}

template <bool use_reference>
void dot_64(benchmark::State& state) {
  const std::vector<float> a = random_values(64, 1), b = random_values(64, 2);
  for (auto _ : state) {
    float result = use_reference ? ops::reference::dot(a.data(), b.data(), 64) : ops::dot(a.data(), b.data(), 64);
    benchmark::DoNotOptimize(result);
  }
}

template <bool use_reference>
void gemv_relu(benchmark::State& state) {
  const std::size_t cols = static_cast<std::size_t>(state.range(0)), rows = static_cast<std::size_t>(state.range(1));
  const std::vector<float> weight = random_values(rows * cols, 3), input = random_values(cols, 4),
                           bias = random_values(rows, 5);
  std::vector<float> output(rows);
  for (auto _ : state) {
    if (use_reference)
      ops::reference::gemv(weight.data(), input.data(), bias.data(), output.data(), rows, cols, ops::Activation::relu);
    else
      ops::gemv(weight.data(), input.data(), bias.data(), output.data(), rows, cols, ops::Activation::relu);
    benchmark::DoNotOptimize(output.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * rows * cols));  // multiply-adds
}

template <bool use_reference>
void layer_norm_64(benchmark::State& state) {
  const std::vector<float> in = random_values(64, 6), gamma = random_values(64, 7), beta = random_values(64, 8);
  std::vector<float> out(64);
  for (auto _ : state) {
    if (use_reference)
      ops::reference::layer_norm(in.data(), gamma.data(), beta.data(), 1e-12f, out.data(), 64);
    else
      ops::layer_norm(in.data(), gamma.data(), beta.data(), 1e-12f, out.data(), 64);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
}

template <bool use_reference>
void softmax_50(benchmark::State& state) {
  const std::vector<float> in = random_values(50, 9);
  std::vector<float> out(50);
  for (auto _ : state) {
    if (use_reference)
      ops::reference::softmax(in.data(), out.data(), 50);
    else
      ops::softmax(in.data(), out.data(), 50);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
}
}  // namespace

BENCHMARK_TEMPLATE(dot_64, false)->Name("dot/64/simd");
BENCHMARK_TEMPLATE(dot_64, true)->Name("dot/64/reference");
BENCHMARK_TEMPLATE(gemv_relu, false)->Name("gemv_relu/simd")->Args({192, 256})->Args({256, 128})->Args({128, 64});
BENCHMARK_TEMPLATE(gemv_relu, true)->Name("gemv_relu/reference")->Args({192, 256})->Args({256, 128})->Args({128, 64});
BENCHMARK_TEMPLATE(layer_norm_64, false)->Name("layer_norm/64/simd");
BENCHMARK_TEMPLATE(layer_norm_64, true)->Name("layer_norm/64/reference");
BENCHMARK_TEMPLATE(softmax_50, false)->Name("softmax/50/simd");
BENCHMARK_TEMPLATE(softmax_50, true)->Name("softmax/50/reference");

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::AddCustomContext("instruction_set", ops::simd::instruction_set_name());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
