#include "reclite/ops/gemm.hpp"

#include <cmath>
#include <cstring>
#include <limits>

#include "ops/kernel_check.hpp"

namespace ops = reclite::ops;

namespace {
// Shapes around every tile edge: 1, 4 and 8 rows per tile, 4 columns, 4/8/16 lanes over k or n.
const std::size_t m_sizes[] = {1, 2, 3, 4, 5, 8, 17, 50, 64};
const std::size_t n_sizes[] = {1, 3, 4, 5, 15, 16, 17, 33, 50, 65};
const std::size_t k_sizes[] = {1, 3, 15, 16, 17, 64, 65, 256};
}  // namespace

TEST_CASE("ops/gemm: gemm_nt matches reference and double precision on awkward shapes") {
  for (std::size_t m : m_sizes) {
    for (std::size_t n : n_sizes) {
      for (std::size_t k : k_sizes) {
        CAPTURE(m);
        CAPTURE(n);
        CAPTURE(k);
        test::UnalignedFloats a(m * k, 61), b(n * k, 62), bias(n, 63);
        const bool with_bias = (m + n + k) % 2 == 0;
        const float* bias_data = with_bias ? bias.data() : nullptr;
        std::vector<float> got = test::nan_filled(m * n), want = test::nan_filled(m * n);
        ops::gemm_nt(a.data(), b.data(), bias_data, got.data(), m, n, k);
        ops::reference::gemm_nt(a.data(), b.data(), bias_data, want.data(), m, n, k);
        bool all_close = true;
        for (std::size_t i = 0; i < m && all_close; ++i) {
          for (std::size_t j = 0; j < n && all_close; ++j) {
            double exact = with_bias ? bias[j] : 0.0, magnitude = std::fabs(exact);
            for (std::size_t p = 0; p < k; ++p) {
              exact += static_cast<double>(a[i * k + p]) * b[j * k + p];
              magnitude += std::fabs(static_cast<double>(a[i * k + p]) * b[j * k + p]);
            }
            all_close = test::sum_is_close(got[i * n + j], exact, magnitude, test::tolerance::simd_vs_reference) &&
                        test::sum_is_close(want[i * n + j], exact, magnitude, test::tolerance::simd_vs_reference);
            CAPTURE(i);
            CAPTURE(j);
            CHECK(all_close);
          }
        }
        CHECK(std::isnan(got[m * n]));
        CHECK(std::isnan(want[m * n]));
      }
    }
  }
}

TEST_CASE("ops/gemm: gemm_nt applies the activation after the bias") {
  const std::size_t m = 9, n = 13, k = 21;
  test::UnalignedFloats a(m * k, 64), b(n * k, 65), bias(n, 66);
  std::vector<float> linear = test::nan_filled(m * n);
  ops::gemm_nt(a.data(), b.data(), bias.data(), linear.data(), m, n, k);
  for (ops::Activation activation : {ops::Activation::relu, ops::Activation::gelu_erf}) {
    CAPTURE(static_cast<int>(activation));
    std::vector<float> want = test::nan_filled(m * n), got = test::nan_filled(m * n);
    ops::apply_activation(activation, linear.data(), want.data(), m * n);
    ops::gemm_nt(a.data(), b.data(), bias.data(), got.data(), m, n, k, activation);
    test::check_close(got, want, m * n, test::tolerance::exact);
    std::vector<float> reference_got = test::nan_filled(m * n);
    ops::reference::gemm_nt(a.data(), b.data(), bias.data(), reference_got.data(), m, n, k, activation);
    test::check_close(reference_got, want, m * n, test::tolerance::simd_vs_reference);
    CHECK(std::isnan(got[m * n]));
  }
}

TEST_CASE("ops/gemm: gemm_nn matches reference and double precision on awkward shapes") {
  for (std::size_t m : m_sizes) {
    for (std::size_t n : n_sizes) {
      for (std::size_t k : k_sizes) {
        CAPTURE(m);
        CAPTURE(n);
        CAPTURE(k);
        test::UnalignedFloats a(m * k, 67), b(k * n, 68);
        std::vector<float> got = test::nan_filled(m * n), want = test::nan_filled(m * n);
        ops::gemm_nn(a.data(), b.data(), got.data(), m, n, k);
        ops::reference::gemm_nn(a.data(), b.data(), want.data(), m, n, k);
        bool all_close = true;
        for (std::size_t i = 0; i < m && all_close; ++i) {
          for (std::size_t j = 0; j < n && all_close; ++j) {
            double exact = 0.0, magnitude = 0.0;
            for (std::size_t p = 0; p < k; ++p) {
              exact += static_cast<double>(a[i * k + p]) * b[p * n + j];
              magnitude += std::fabs(static_cast<double>(a[i * k + p]) * b[p * n + j]);
            }
            all_close = test::sum_is_close(got[i * n + j], exact, magnitude, test::tolerance::simd_vs_reference) &&
                        test::sum_is_close(want[i * n + j], exact, magnitude, test::tolerance::simd_vs_reference);
            CAPTURE(i);
            CAPTURE(j);
            CHECK(all_close);
          }
        }
        CHECK(std::isnan(got[m * n]));
        CHECK(std::isnan(want[m * n]));
      }
    }
  }
}

TEST_CASE("ops/gemm: identity matrices reproduce the other operand exactly") {
  const std::size_t size = 19;
  std::vector<float> identity(size * size, 0.0f);
  for (std::size_t i = 0; i < size; ++i) identity[i * size + i] = 1.0f;
  test::UnalignedFloats values(size * size, 69);
  std::vector<float> got = test::nan_filled(size * size);
  ops::gemm_nn(values.data(), identity.data(), got.data(), size, size, size);
  test::check_close(got, values.data(), size * size, test::tolerance::exact);
  ops::gemm_nn(identity.data(), values.data(), got.data(), size, size, size);
  test::check_close(got, values.data(), size * size, test::tolerance::exact);
  ops::gemm_nt(values.data(), identity.data(), nullptr, got.data(), size, size, size);
  test::check_close(got, values.data(), size * size, test::tolerance::exact);
  CHECK(std::isnan(got[size * size]));
}

TEST_CASE("ops/gemm: NaN in one row of a stays in that row of c") {
  const std::size_t m = 8, n = 20, k = 24;
  test::UnalignedFloats a(m * k, 70), b(n * k, 71), b_nn(k * n, 72);
  a[3 * k + k - 1] = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> nt = test::nan_filled(m * n), nn = test::nan_filled(m * n);
  ops::gemm_nt(a.data(), b.data(), nullptr, nt.data(), m, n, k);
  ops::gemm_nn(a.data(), b_nn.data(), nn.data(), m, n, k);
  for (std::size_t i = 0; i < m; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      CAPTURE(i);
      CAPTURE(j);
      CHECK(std::isnan(nt[i * n + j]) == (i == 3));
      CHECK(std::isnan(nn[i * n + j]) == (i == 3));
    }
  }
}

TEST_CASE("ops/gemm: strided gemm_nn matches the reference and leaves the gaps between rows alone") {
  for (std::size_t m : {1, 3, 4, 5, 50}) {
    for (std::size_t n : {1, 15, 16, 17, 32, 50, 64}) {
      for (std::size_t k : {1, 3, 32, 50}) {
        CAPTURE(m);
        CAPTURE(n);
        CAPTURE(k);
        const std::size_t lda = k + 5, ldb = n + 7, ldc = n + 3;
        test::UnalignedFloats a(m * lda, 73), b(k * ldb, 74);
        std::vector<float> got = test::nan_filled(m * ldc), want = test::nan_filled(m * ldc);
        ops::gemm_nn(a.data(), lda, b.data(), ldb, got.data(), ldc, m, n, k);
        ops::reference::gemm_nn(a.data(), lda, b.data(), ldb, want.data(), ldc, m, n, k);
        bool all_close = true;
        for (std::size_t i = 0; i < m && all_close; ++i) {
          for (std::size_t j = 0; j < ldc && all_close; ++j) {
            CAPTURE(i);
            CAPTURE(j);
            if (j >= n) {
              all_close = std::isnan(got[i * ldc + j]) && std::isnan(want[i * ldc + j]);
              CHECK(all_close);
              continue;
            }
            double exact = 0.0, magnitude = 0.0;
            for (std::size_t p = 0; p < k; ++p) {
              exact += static_cast<double>(a[i * lda + p]) * b[p * ldb + j];
              magnitude += std::fabs(static_cast<double>(a[i * lda + p]) * b[p * ldb + j]);
            }
            all_close = test::sum_is_close(got[i * ldc + j], exact, magnitude, test::tolerance::simd_vs_reference) &&
                        test::sum_is_close(want[i * ldc + j], exact, magnitude, test::tolerance::simd_vs_reference);
            CHECK(all_close);
          }
        }
      }
    }
  }
}

TEST_CASE("ops/gemm: gemm_nn_row_groups equals gemm_nn row by row, matches double precision, leaves gaps alone") {
  // Groups x batches around the tile of 8 accumulators and the lane count; n with and without a partial batch.
  for (std::size_t groups : {1, 2, 3, 5, 9}) {
    for (std::size_t n : {1, 7, 16, 17, 32, 50, 64}) {
      for (std::size_t k : {1, 3, 32, 50}) {
        CAPTURE(groups);
        CAPTURE(n);
        CAPTURE(k);
        // Interleaved like attention heads: group g's a row at g * a_step, its b block at g * b_step (row p at
        // + p * ldb), its c row at g * c_step; every stride leaves a gap that must stay untouched.
        const std::size_t a_step = k + 3, ldb = groups * (n + 2) + 5, b_step = n + 2, c_step = n + 4;
        test::UnalignedFloats a(groups * a_step, 75), b(k * ldb, 76);
        std::vector<float> got = test::nan_filled(groups * c_step), want = test::nan_filled(groups * c_step);
        std::vector<float> single = test::nan_filled(groups * c_step);
        ops::gemm_nn_row_groups(a.data(), a_step, b.data(), ldb, b_step, got.data(), c_step, groups, n, k);
        ops::reference::gemm_nn_row_groups(a.data(), a_step, b.data(), ldb, b_step, want.data(), c_step, groups, n, k);
        for (std::size_t g = 0; g < groups; ++g)
          ops::gemm_nn(a.data() + g * a_step, k, b.data() + g * b_step, ldb, single.data() + g * c_step, n, 1, n, k);
        bool all_close = true;
        for (std::size_t g = 0; g < groups && all_close; ++g) {
          for (std::size_t j = 0; j < c_step && all_close; ++j) {
            CAPTURE(g);
            CAPTURE(j);
            const float value = got[g * c_step + j];
            if (j >= n) {
              all_close = std::isnan(value) && std::isnan(want[g * c_step + j]);
              CHECK(all_close);
              continue;
            }
            // The incremental SASRec step relies on this: the same bits as gemm_nn with one row.
            all_close = std::memcmp(&value, &single[g * c_step + j], sizeof(float)) == 0;
            CHECK(all_close);
            double exact = 0.0, magnitude = 0.0;
            for (std::size_t p = 0; p < k; ++p) {
              const double term = static_cast<double>(a[g * a_step + p]) * b[p * ldb + g * b_step + j];
              exact += term;
              magnitude += std::fabs(term);
            }
            all_close = all_close && test::sum_is_close(value, exact, magnitude, test::tolerance::simd_vs_reference) &&
                        test::sum_is_close(want[g * c_step + j], exact, magnitude, test::tolerance::simd_vs_reference);
            CHECK(all_close);
          }
        }
      }
    }
  }
}
