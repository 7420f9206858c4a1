// Kernel timings beside their scalar references, at the sizes of the models we serve:
// dot n=64 (retrieval score), the DSSM tower 192 -> 256 -> 128 -> 64 with ReLU, layer_norm n=64
// (SASRec hidden size) and softmax n=50 (RecBole's default sequence length); SASRec's dense layers (window 50 or one
// appended row, hidden 64, inner 256, GELU-erf) on packed weights (ops::linear) against gemm_nt / gemv.
// stream/<KiB>: the floor of any kernel that uses each loaded float once (as one row through dense layers does):
// one fused multiply-add per float over a buffer read again and again, 8 independent accumulators, aligned loads;
// 434 KiB is what one SASRec append reads (2 blocks of d 64 / inner 256 weights and 50 cached keys and values),
// which lives in L2 (1 MiB), 32 KiB lives in L1. Reported as bytes per second.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "reclite/ops/dot.hpp"
#include "reclite/ops/gemm.hpp"
#include "reclite/ops/gemv.hpp"
#include "reclite/ops/layer_norm.hpp"
#include "reclite/ops/packed_linear.hpp"
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

// args: rows, outputs, inputs, activation (0 none, 4 gelu_erf). kind 0: ops::linear on packed weights; 1: gemm_nt
// (or gemv for one row) on the nn.Linear layout; 2: the scalar reference.
template <int kind>
void sasrec_linear(benchmark::State& state) {
  const std::size_t rows = static_cast<std::size_t>(state.range(0)), outputs = static_cast<std::size_t>(state.range(1)),
                    inputs = static_cast<std::size_t>(state.range(2));
  const auto activation = static_cast<ops::Activation>(state.range(3));
  const std::vector<float> weight = random_values(outputs * inputs, 10), input = random_values(rows * inputs, 11),
                           bias = random_values(outputs, 12);
  const ops::PackedLinear packed(weight.data(), bias.data(), outputs, inputs);
  std::vector<float> output(rows * outputs);
  for (auto _ : state) {
    if (kind == 0)
      ops::linear(input.data(), inputs, packed, output.data(), outputs, rows, activation);
    else if (kind == 1 && rows == 1)
      ops::gemv(weight.data(), input.data(), bias.data(), output.data(), outputs, inputs, activation);
    else if (kind == 1)
      ops::gemm_nt(input.data(), weight.data(), bias.data(), output.data(), rows, outputs, inputs, activation);
    else
      ops::reference::linear(input.data(), inputs, weight.data(), bias.data(), output.data(), outputs, rows, outputs,
                             inputs, activation);
    benchmark::DoNotOptimize(output.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * rows * outputs * inputs));  // multiply-adds
}

void sasrec_linear_shapes(benchmark::internal::Benchmark* benchmark) {
  for (std::int64_t rows : {50, 1}) {
    benchmark->Args({rows, 64, 64, 0});    // query, key, value, output projections
    benchmark->Args({rows, 256, 64, 4});   // feed-forward inner, GELU-erf
    benchmark->Args({rows, 64, 256, 0});   // feed-forward outer
  }
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

#if RECLITE_HAS_SIMD
void stream(benchmark::State& state) {
  using Batch = ops::simd::Batch<float>;
  constexpr std::size_t lanes = Batch::size;
  const std::size_t floats = static_cast<std::size_t>(state.range(0)) * 1024 / sizeof(float) / (8 * lanes) * (8 * lanes);
  std::vector<float> values = random_values(floats + 16, 9);
  const float* data = values.data();
  while (reinterpret_cast<std::uintptr_t>(data) % 64 != 0) ++data;
  const Batch scale(1.0001f);
  for (auto _ : state) {
    Batch s0(0.0f), s1(0.0f), s2(0.0f), s3(0.0f), s4(0.0f), s5(0.0f), s6(0.0f), s7(0.0f);
    for (std::size_t i = 0; i < floats; i += 8 * lanes) {
      s0 = ops::simd::fma(scale, Batch::load_aligned(data + i), s0);
      s1 = ops::simd::fma(scale, Batch::load_aligned(data + i + lanes), s1);
      s2 = ops::simd::fma(scale, Batch::load_aligned(data + i + 2 * lanes), s2);
      s3 = ops::simd::fma(scale, Batch::load_aligned(data + i + 3 * lanes), s3);
      s4 = ops::simd::fma(scale, Batch::load_aligned(data + i + 4 * lanes), s4);
      s5 = ops::simd::fma(scale, Batch::load_aligned(data + i + 5 * lanes), s5);
      s6 = ops::simd::fma(scale, Batch::load_aligned(data + i + 6 * lanes), s6);
      s7 = ops::simd::fma(scale, Batch::load_aligned(data + i + 7 * lanes), s7);
    }
    float sum = ops::simd::reduce_add(((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)));
    benchmark::DoNotOptimize(sum);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(floats * sizeof(float)));
}
#endif
}  // namespace

#if RECLITE_HAS_SIMD
BENCHMARK(stream)->Name("stream")->Arg(32)->Arg(434);
#endif
BENCHMARK_TEMPLATE(dot_64, false)->Name("dot/64/simd");
BENCHMARK_TEMPLATE(dot_64, true)->Name("dot/64/reference");
BENCHMARK_TEMPLATE(gemv_relu, false)->Name("gemv_relu/simd")->Args({192, 256})->Args({256, 128})->Args({128, 64});
BENCHMARK_TEMPLATE(gemv_relu, true)->Name("gemv_relu/reference")->Args({192, 256})->Args({256, 128})->Args({128, 64});
BENCHMARK_TEMPLATE(sasrec_linear, 0)->Name("sasrec_linear/packed")->Apply(sasrec_linear_shapes);
BENCHMARK_TEMPLATE(sasrec_linear, 1)->Name("sasrec_linear/gemm_nt_or_gemv")->Apply(sasrec_linear_shapes);
BENCHMARK_TEMPLATE(sasrec_linear, 2)->Name("sasrec_linear/reference")->Apply(sasrec_linear_shapes);
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
