#include "reclite/ops/activation.hpp"

#include <cmath>
#include <functional>
#include <limits>

#include "ops/kernel_check.hpp"
#include "reclite/format/model_generated.h"

namespace ops = reclite::ops;

namespace {
using Kernel = void (*)(const float*, float*, std::size_t) noexcept;

struct Case {
  const char* name;
  Kernel kernel;
  Kernel reference;
  double (*exact)(double);
  float low, high;
};

double exact_relu(double x) { return x < 0 ? 0 : x; }
double exact_tanh(double x) { return std::tanh(x); }
double exact_sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double exact_gelu(double x) { return x * 0.5 * (1.0 + std::erf(x / std::sqrt(2.0))); }

const Case cases[] = {
    {"relu", ops::relu, ops::reference::relu, exact_relu, -4.0f, 4.0f},
    {"tanh", ops::tanh, ops::reference::tanh, exact_tanh, -10.0f, 10.0f},
    {"sigmoid", ops::sigmoid, ops::reference::sigmoid, exact_sigmoid, -30.0f, 30.0f},
    {"gelu_erf", ops::gelu_erf, ops::reference::gelu_erf, exact_gelu, -10.0f, 10.0f},
};

const float infinity = std::numeric_limits<float>::infinity();
const float not_a_number = std::numeric_limits<float>::quiet_NaN();
}  // namespace

TEST_CASE("ops/activation: simd and reference match double precision on awkward sizes") {
  for (const Case& activation : cases) {
    for (std::size_t n : test::awkward_sizes()) {
      CAPTURE(activation.name);
      CAPTURE(n);
      test::UnalignedFloats in(n, 21, activation.low, activation.high);
      std::vector<double> exact(n);
      for (std::size_t i = 0; i < n; ++i) exact[i] = activation.exact(in[i]);
      std::vector<float> got = test::nan_filled(n), want = test::nan_filled(n);
      activation.kernel(in.data(), got.data(), n);
      activation.reference(in.data(), want.data(), n);
      test::check_close(want, exact, n, test::tolerance::transcendental);
      test::check_close(got, exact, n, test::tolerance::transcendental);
      test::check_close(got, want, n, test::tolerance::transcendental);
      CHECK(std::isnan(got[n]));
      CHECK(std::isnan(want[n]));
    }
  }
}

TEST_CASE("ops/activation: relu is exact") {
  for (std::size_t n : test::awkward_sizes()) {
    CAPTURE(n);
    test::UnalignedFloats in(n, 22);
    std::vector<float> got = test::nan_filled(n), want = test::nan_filled(n);
    ops::relu(in.data(), got.data(), n);
    ops::reference::relu(in.data(), want.data(), n);
    test::check_close(got, want, n, test::tolerance::exact);
    CHECK(std::isnan(got[n]));
  }
}

TEST_CASE("ops/activation: in place gives the same result as out of place") {
  for (const Case& activation : cases) {
    for (std::size_t n : test::awkward_sizes()) {
      CAPTURE(activation.name);
      CAPTURE(n);
      test::UnalignedFloats in(n, 23, activation.low, activation.high);
      std::vector<float> separate = test::nan_filled(n);
      activation.kernel(in.data(), separate.data(), n);
      activation.kernel(in.data(), in.data(), n);
      test::check_close(in.data(), separate, n, test::tolerance::exact);
    }
  }
}

TEST_CASE("ops/activation: extremes give limits and NaN propagates") {
  // 17 values: whole SIMD batches and a scalar tail on every instruction set both see the extremes.
  const std::vector<float> in{-infinity, -1e30f, -100.0f, -20.0f, -1e-40f, -0.0f, 0.0f, 1e-40f, 20.0f,
                              100.0f, 1e30f, infinity, not_a_number, -infinity, 100.0f, -100.0f, not_a_number};
  const std::size_t n = in.size();
  for (const Case& activation : cases) {
    for (Kernel kernel : {activation.kernel, activation.reference}) {
      CAPTURE(activation.name);
      std::vector<float> out = test::nan_filled(n);
      kernel(in.data(), out.data(), n);
      for (std::size_t i = 0; i < n; ++i) {
        CAPTURE(i);
        CAPTURE(in[i]);
        CAPTURE(out[i]);
        if (std::isnan(in[i])) {
          CHECK(std::isnan(out[i]));
          continue;
        }
        CHECK(!std::isnan(out[i]));
        const double want = activation.exact(in[i]);  // double: exact limits, 0 * inf avoided below
        if (std::string(activation.name) == "gelu_erf" && in[i] == -infinity) {
          CHECK(out[i] == 0.0f);  // the limit, not -inf * 0
        } else if (std::isinf(want)) {
          CHECK(out[i] == want);
        } else {
          CHECK(test::is_close(out[i], want, test::tolerance::transcendental));
        }
      }
      CHECK(std::isnan(out[n]));
    }
  }
}

TEST_CASE("ops/activation: sigmoid saturates without overflow") {
  // e^-1000 underflows to 0 and 1 / (1 + e^-100) rounds to 1; sigmoid(-100) = e^-100 ~ 3.7e-44 is subnormal.
  const std::vector<float> in{-infinity, -1000.0f, 100.0f, 1000.0f, infinity, -100.0f, -infinity, infinity,
                              -infinity, -1000.0f, 100.0f, 1000.0f, infinity, -100.0f, -infinity, infinity, -100.0f};
  for (Kernel kernel : {ops::sigmoid, ops::reference::sigmoid}) {
    std::vector<float> out = test::nan_filled(in.size());
    kernel(in.data(), out.data(), in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
      CAPTURE(i);
      CAPTURE(out[i]);
      if (in[i] == -100.0f)
        CHECK((out[i] >= 0.0f && out[i] < 1e-43f));
      else
        CHECK(out[i] == (in[i] > 0 ? 1.0f : 0.0f));
    }
    CHECK(std::isnan(out[in.size()]));
  }
}

TEST_CASE("ops/activation: subnormal inputs keep their value where the function is the identity") {
  const std::vector<float> in(17, 1e-40f);
  std::vector<float> out = test::nan_filled(in.size());
  ops::relu(in.data(), out.data(), in.size());
  for (std::size_t i = 0; i < in.size(); ++i) CHECK(out[i] == 1e-40f);
  ops::tanh(in.data(), out.data(), in.size());
  for (std::size_t i = 0; i < in.size(); ++i) CHECK(out[i] == doctest::Approx(1e-40).epsilon(1e-3));
  ops::sigmoid(in.data(), out.data(), in.size());
  for (std::size_t i = 0; i < in.size(); ++i) CHECK(out[i] == 0.5f);
}

TEST_CASE("ops/activation: apply_activation dispatches every value") {
  const std::size_t n = 37;
  test::UnalignedFloats in(n, 24, -3.0f, 3.0f);
  const std::pair<ops::Activation, Kernel> dispatch[] = {{ops::Activation::relu, ops::relu},
                                                         {ops::Activation::tanh, ops::tanh},
                                                         {ops::Activation::sigmoid, ops::sigmoid},
                                                         {ops::Activation::gelu_erf, ops::gelu_erf}};
  for (const auto& entry : dispatch) {
    CAPTURE(static_cast<int>(entry.first));
    std::vector<float> got = test::nan_filled(n), want = test::nan_filled(n), reference_got = test::nan_filled(n);
    ops::apply_activation(entry.first, in.data(), got.data(), n);
    entry.second(in.data(), want.data(), n);
    ops::reference::apply_activation(entry.first, in.data(), reference_got.data(), n);
    test::check_close(got, want, n, test::tolerance::exact);
    test::check_close(reference_got, want, n, test::tolerance::transcendental);
    CHECK(std::isnan(got[n]));
  }
  std::vector<float> copied = test::nan_filled(n);
  ops::apply_activation(ops::Activation::none, in.data(), copied.data(), n);
  test::check_close(copied, in.data(), n, test::tolerance::exact);
  CHECK(std::isnan(copied[n]));
  ops::reference::apply_activation(ops::Activation::none, in.data(), copied.data(), n);
  test::check_close(copied, in.data(), n, test::tolerance::exact);
  std::vector<float> unchanged(in.data(), in.data() + n);
  ops::apply_activation(ops::Activation::none, unchanged.data(), unchanged.data(), n);
  test::check_close(unchanged, in.data(), n, test::tolerance::exact);
}

TEST_CASE("ops/activation: enum values equal the schema's") {
  namespace fbs = reclite::fbs;
  CHECK(static_cast<int>(ops::Activation::none) == static_cast<int>(fbs::Activation::none));
  CHECK(static_cast<int>(ops::Activation::relu) == static_cast<int>(fbs::Activation::relu));
  CHECK(static_cast<int>(ops::Activation::tanh) == static_cast<int>(fbs::Activation::tanh));
  CHECK(static_cast<int>(ops::Activation::sigmoid) == static_cast<int>(fbs::Activation::sigmoid));
  CHECK(static_cast<int>(ops::Activation::gelu_erf) == static_cast<int>(fbs::Activation::gelu_erf));
  CHECK(static_cast<int>(fbs::Activation::MAX) == static_cast<int>(ops::Activation::gelu_erf));
}
