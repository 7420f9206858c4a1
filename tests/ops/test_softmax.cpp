#include "reclite/ops/softmax.hpp"

#include <cmath>
#include <cstdint>
#include <limits>

#include "ops/kernel_check.hpp"

namespace ops = reclite::ops;

namespace {
const float infinity = std::numeric_limits<float>::infinity();
const float not_a_number = std::numeric_limits<float>::quiet_NaN();

// Double-precision masked softmax of finite logits (valid == nullptr: all take part).
std::vector<double> exact_softmax(const float* in, const std::uint8_t* valid, std::size_t n) {
  double largest = -std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i < n; ++i)
    if (!valid || valid[i]) largest = std::max(largest, static_cast<double>(in[i]));
  std::vector<double> out(n, 0.0);
  double sum = 0;
  for (std::size_t i = 0; i < n; ++i)
    if (!valid || valid[i]) sum += out[i] = std::exp(in[i] - largest);
  for (double& value : out) value /= sum;
  return out;
}

std::vector<std::uint8_t> random_mask(std::size_t n, unsigned seed) {
  std::vector<float> draws = test::random_floats(n, seed, 0.0f, 1.0f);
  std::vector<std::uint8_t> mask(n);
  for (std::size_t i = 0; i < n; ++i) mask[i] = draws[i] < 0.6f ? static_cast<std::uint8_t>(1 + i % 3) : 0;
  mask[n / 2] = 1;  // at least one entry takes part
  return mask;
}
}  // namespace

TEST_CASE("ops/softmax: simd and reference match double precision on awkward sizes") {
  for (std::size_t n : test::awkward_sizes()) {
    CAPTURE(n);
    test::UnalignedFloats in(n, 81, -20.0f, 20.0f);
    const std::vector<double> exact = exact_softmax(in.data(), nullptr, n);
    std::vector<float> got = test::nan_filled(n), want = test::nan_filled(n);
    ops::softmax(in.data(), got.data(), n);
    ops::reference::softmax(in.data(), want.data(), n);
    test::check_close(want, exact, n, test::tolerance::simd_vs_reference);
    test::check_close(got, exact, n, test::tolerance::simd_vs_reference);
    CHECK(std::isnan(got[n]));
    CHECK(std::isnan(want[n]));
    double total = 0;
    for (std::size_t i = 0; i < n; ++i) total += got[i];
    CHECK(total == doctest::Approx(1.0).epsilon(1e-5));
  }
}

TEST_CASE("ops/softmax: masked softmax matches double precision and zeroes masked entries exactly") {
  for (std::size_t n : test::awkward_sizes()) {
    CAPTURE(n);
    test::UnalignedFloats in(n, 82, -20.0f, 20.0f);
    const std::vector<std::uint8_t> valid = random_mask(n, 83);
    const std::vector<double> exact = exact_softmax(in.data(), valid.data(), n);
    std::vector<float> got = test::nan_filled(n), want = test::nan_filled(n);
    ops::masked_softmax(in.data(), valid.data(), got.data(), n);
    ops::reference::masked_softmax(in.data(), valid.data(), want.data(), n);
    test::check_close(want, exact, n, test::tolerance::simd_vs_reference);
    test::check_close(got, exact, n, test::tolerance::simd_vs_reference);
    for (std::size_t i = 0; i < n; ++i)
      if (!valid[i]) CHECK(got[i] == 0.0f);
    CHECK(std::isnan(got[n]));
    CHECK(std::isnan(want[n]));
  }
}

TEST_CASE("ops/softmax: in place gives the same result as out of place") {
  for (std::size_t n : test::awkward_sizes()) {
    CAPTURE(n);
    test::UnalignedFloats in(n, 84, -5.0f, 5.0f);
    test::UnalignedFloats masked_in = in;
    const std::vector<std::uint8_t> valid = random_mask(n, 85);
    std::vector<float> separate = test::nan_filled(n), masked_separate = test::nan_filled(n);
    ops::softmax(in.data(), separate.data(), n);
    ops::masked_softmax(masked_in.data(), valid.data(), masked_separate.data(), n);
    ops::softmax(in.data(), in.data(), n);
    ops::masked_softmax(masked_in.data(), valid.data(), masked_in.data(), n);
    test::check_close(in.data(), separate, n, test::tolerance::exact);
    test::check_close(masked_in.data(), masked_separate, n, test::tolerance::exact);
  }
}

TEST_CASE("ops/softmax: huge finite logits do not overflow") {
  for (std::size_t n : {std::size_t{3}, std::size_t{17}, std::size_t{50}}) {
    CAPTURE(n);
    std::vector<float> in(n, -3e38f);
    in[1] = 3e38f;
    in[n - 1] = 3e38f - 1e32f;  // 2 float ulps below: its share is exp(-1e32), i.e. 0
    std::vector<float> got = test::nan_filled(n), want = test::nan_filled(n);
    ops::softmax(in.data(), got.data(), n);
    ops::reference::softmax(in.data(), want.data(), n);
    for (std::size_t i = 0; i < n; ++i) {
      CAPTURE(i);
      CHECK(got[i] == (i == 1 ? 1.0f : 0.0f));
      CHECK(want[i] == (i == 1 ? 1.0f : 0.0f));
    }
    // Shifting all logits by a constant leaves the result unchanged.
    std::vector<float> shifted(n), small(n);
    for (std::size_t i = 0; i < n; ++i) small[i] = static_cast<float>(i % 5) * 0.5f;
    for (std::size_t i = 0; i < n; ++i) shifted[i] = small[i] + 1e4f;
    std::vector<float> from_small = test::nan_filled(n), from_shifted = test::nan_filled(n);
    ops::softmax(small.data(), from_small.data(), n);
    ops::softmax(shifted.data(), from_shifted.data(), n);
    test::check_close(from_shifted, from_small, n, test::tolerance::simd_vs_reference);
  }
}

TEST_CASE("ops/softmax: minus infinity entries get zero and plus infinity takes all the mass") {
  for (std::size_t n : {std::size_t{5}, std::size_t{17}, std::size_t{40}}) {
    CAPTURE(n);
    std::vector<float> in(n, 0.5f);
    in[0] = -infinity;
    in[n - 1] = -infinity;
    const std::vector<double> exact = exact_softmax(in.data(), nullptr, n);
    std::vector<float> got = test::nan_filled(n);
    ops::softmax(in.data(), got.data(), n);
    test::check_close(got, exact, n, test::tolerance::simd_vs_reference);
    CHECK(got[0] == 0.0f);

    in[2] = infinity;
    in[3] = infinity;
    for (auto kernel : {ops::softmax, ops::reference::softmax}) {
      std::vector<float> limit = test::nan_filled(n);
      kernel(in.data(), limit.data(), n);
      for (std::size_t i = 0; i < n; ++i) CHECK(limit[i] == (i == 2 || i == 3 ? 0.5f : 0.0f));
      CHECK(std::isnan(limit[n]));
    }
  }
}

TEST_CASE("ops/softmax: all minus infinity and fully masked rows give zeros") {
  for (std::size_t n : {std::size_t{1}, std::size_t{17}, std::size_t{50}}) {
    CAPTURE(n);
    const std::vector<float> in(n, -infinity);
    test::UnalignedFloats finite(n, 86);
    const std::vector<std::uint8_t> none(n, 0);
    for (auto kernel : {ops::softmax, ops::reference::softmax}) {
      std::vector<float> got = test::nan_filled(n);
      kernel(in.data(), got.data(), n);
      for (std::size_t i = 0; i < n; ++i) CHECK(got[i] == 0.0f);
      CHECK(std::isnan(got[n]));
    }
    for (auto kernel : {ops::masked_softmax, ops::reference::masked_softmax}) {
      std::vector<float> got = test::nan_filled(n);
      kernel(finite.data(), none.data(), got.data(), n);
      for (std::size_t i = 0; i < n; ++i) CHECK(got[i] == 0.0f);
      CHECK(std::isnan(got[n]));
    }
  }
}

TEST_CASE("ops/softmax: masked entries do not leak even when infinite or NaN") {
  const std::size_t n = 33;
  test::UnalignedFloats in(n, 87, -3.0f, 3.0f);
  std::vector<std::uint8_t> valid(n, 1);
  for (std::size_t i : {std::size_t{0}, std::size_t{7}, std::size_t{16}, std::size_t{32}}) valid[i] = 0;
  const std::vector<double> exact = exact_softmax(in.data(), valid.data(), n);
  in[0] = infinity;
  in[7] = not_a_number;
  in[16] = 1e30f;
  in[32] = -infinity;
  for (auto kernel : {ops::masked_softmax, ops::reference::masked_softmax}) {
    std::vector<float> got = test::nan_filled(n);
    kernel(in.data(), valid.data(), got.data(), n);
    test::check_close(got, exact, n, test::tolerance::simd_vs_reference);
    CHECK(std::isnan(got[n]));
  }
}

TEST_CASE("ops/softmax: masked softmax equals softmax of the valid entries") {
  // RecBole's additive -10000 mask and a boolean mask agree once exp(-10000) underflows to 0.
  const std::size_t n = 50;
  test::UnalignedFloats in(n, 88, -4.0f, 4.0f);
  std::vector<std::uint8_t> valid(n, 0);
  std::vector<float> compact, additive(n);
  for (std::size_t i = 0; i < n; ++i) {
    valid[i] = i < 23;
    if (valid[i]) compact.push_back(in[i]);
    additive[i] = valid[i] ? in[i] : in[i] - 10000.0f;
  }
  std::vector<float> masked = test::nan_filled(n), plain = test::nan_filled(compact.size()),
                     with_additive = test::nan_filled(n);
  ops::masked_softmax(in.data(), valid.data(), masked.data(), n);
  ops::softmax(compact.data(), plain.data(), compact.size());
  ops::softmax(additive.data(), with_additive.data(), n);
  test::check_close(masked, plain, compact.size(), test::tolerance::simd_vs_reference);
  test::check_close(masked, with_additive, n, test::tolerance::simd_vs_reference);
  for (std::size_t i = compact.size(); i < n; ++i) CHECK(masked[i] == 0.0f);
}

TEST_CASE("ops/softmax: NaN among the logits makes every taking part output NaN") {
  for (std::size_t n : {std::size_t{3}, std::size_t{17}, std::size_t{64}}) {
    for (std::size_t position : {std::size_t{0}, n - 1}) {
      for (float other : {0.5f, infinity}) {
        CAPTURE(n);
        CAPTURE(position);
        CAPTURE(other);
        std::vector<float> in(n, 0.25f);
        in[position] = not_a_number;
        in[1] = other;
        std::vector<std::uint8_t> valid(n, 1);
        if (n > 3) valid[n / 2] = 0;  // a masked entry that is neither the NaN nor `other`
        for (auto kernel : {ops::softmax, ops::reference::softmax}) {
          std::vector<float> got = test::nan_filled(n);
          kernel(in.data(), got.data(), n);
          for (std::size_t i = 0; i < n; ++i) CHECK(std::isnan(got[i]));
        }
        for (auto kernel : {ops::masked_softmax, ops::reference::masked_softmax}) {
          std::vector<float> got = test::nan_filled(n);
          kernel(in.data(), valid.data(), got.data(), n);
          for (std::size_t i = 0; i < n; ++i) CHECK((valid[i] ? std::isnan(got[i]) : got[i] == 0.0f));
        }
      }
    }
  }
}

TEST_CASE("ops/softmax: empty rows write nothing") {
  std::vector<float> out = test::nan_filled(0);
  const float in = 1.0f;
  const std::uint8_t valid = 1;
  ops::softmax(&in, out.data(), 0);
  ops::masked_softmax(&in, &valid, out.data(), 0);
  CHECK(std::isnan(out[0]));
}
