#include "reclite/ops/embedding.hpp"

#include <cmath>
#include <cstdint>
#include <limits>

#include "ops/kernel_check.hpp"
#include "reclite/format/model_generated.h"

namespace ops = reclite::ops;

TEST_CASE("ops/embedding: sum_rows equals the reference exactly and double precision closely") {
  const std::size_t table_rows = 40;
  for (std::size_t dim : test::awkward_sizes()) {
    for (std::size_t count : {std::size_t{1}, std::size_t{3}, std::size_t{17}, std::size_t{50}}) {
      CAPTURE(dim);
      CAPTURE(count);
      test::UnalignedFloats table(table_rows * dim, 121);
      std::vector<std::uint32_t> rows(count);
      for (std::size_t t = 0; t < count; ++t) rows[t] = static_cast<std::uint32_t>((t * 7 + 3) % table_rows);
      rows[0] = static_cast<std::uint32_t>(table_rows - 1);  // the last row: an overrun would leave the table
      std::vector<double> exact(dim, 0.0), magnitude(dim, 0.0);
      for (std::size_t t = 0; t < count; ++t)
        for (std::size_t d = 0; d < dim; ++d) {
          exact[d] += table[rows[t] * dim + d];
          magnitude[d] += std::fabs(table[rows[t] * dim + d]);
        }
      std::vector<float> got = test::nan_filled(dim), want = test::nan_filled(dim);
      ops::sum_rows(table.data(), dim, rows.data(), count, got.data());
      ops::reference::sum_rows(table.data(), dim, rows.data(), count, want.data());
      test::check_close(got, want, dim, test::tolerance::exact);
      for (std::size_t d = 0; d < dim; ++d)
        CHECK_SUM_CLOSE(want[d], exact[d], magnitude[d], test::tolerance::simd_vs_reference);
      CHECK(std::isnan(got[dim]));
      CHECK(std::isnan(want[dim]));
    }
  }
}

TEST_CASE("ops/embedding: sum_rows of no rows gives zeros") {
  const std::size_t dim = 17;
  const std::vector<float> table(dim, 1.0f);
  for (auto kernel : {ops::sum_rows, ops::reference::sum_rows}) {
    std::vector<float> got = test::nan_filled(dim);
    kernel(table.data(), dim, nullptr, 0, got.data());
    for (std::size_t d = 0; d < dim; ++d) CHECK(got[d] == 0.0f);
    CHECK(std::isnan(got[dim]));
  }
}

TEST_CASE("ops/embedding: sum_rows adds rows in the given order") {
  // 1e8 + 1 - 1e8 is 0 in float32 but 1 - 1e8 + 1e8 is 0 too; (1 + 1e8) rounds away the 1 while
  // (1e8 - 1e8) + 1 keeps it: the order must be exactly the caller's.
  const std::size_t dim = 17;
  std::vector<float> table(3 * dim);
  for (std::size_t d = 0; d < dim; ++d) {
    table[0 * dim + d] = 1e8f;
    table[1 * dim + d] = -1e8f;
    table[2 * dim + d] = 1.0f;
  }
  const std::uint32_t cancel_first[] = {0, 1, 2};
  const std::uint32_t one_first[] = {2, 0, 1};
  std::vector<float> got = test::nan_filled(dim);
  ops::sum_rows(table.data(), dim, cancel_first, 3, got.data());
  for (std::size_t d = 0; d < dim; ++d) CHECK(got[d] == 1.0f);
  ops::sum_rows(table.data(), dim, one_first, 3, got.data());
  for (std::size_t d = 0; d < dim; ++d) CHECK(got[d] == 0.0f);
}

TEST_CASE("ops/embedding: pooling masks padding ids and means over the rest") {
  const std::size_t table_rows = 30;
  const std::int64_t padding_id = 0;
  for (std::size_t dim : test::awkward_sizes()) {
    CAPTURE(dim);
    test::UnalignedFloats table(table_rows * dim, 122);
    const std::vector<std::int64_t> ids{5, 0, 29, 7, 0, 0, 5, 12, 0};  // 5 unmasked, repeats kept
    for (ops::Pooling pooling : {ops::Pooling::sum, ops::Pooling::mean}) {
      for (float mean_epsilon : {0.0f, 1e-8f, 0.5f}) {
        CAPTURE(static_cast<int>(pooling));
        CAPTURE(mean_epsilon);
        std::vector<double> exact(dim, 0.0);
        for (std::int64_t id : ids)
          if (id != padding_id)
            for (std::size_t d = 0; d < dim; ++d) exact[d] += table[static_cast<std::size_t>(id) * dim + d];
        if (pooling == ops::Pooling::mean)
          for (double& value : exact) value /= 5.0 + static_cast<double>(mean_epsilon);
        std::vector<float> got = test::nan_filled(dim), want = test::nan_filled(dim);
        ops::pool_embeddings(table.data(), dim, ids.data(), ids.size(), padding_id, pooling, mean_epsilon, got.data());
        ops::reference::pool_embeddings(table.data(), dim, ids.data(), ids.size(), padding_id, pooling, mean_epsilon,
                                        want.data());
        test::check_close(got, want, dim, test::tolerance::exact);
        test::check_close(want, exact, dim, test::tolerance::simd_vs_reference);
        CHECK(std::isnan(got[dim]));
      }
    }
  }
}

TEST_CASE("ops/embedding: an empty or fully padded history pools to zeros") {
  const std::size_t dim = 33;
  test::UnalignedFloats table(4 * dim, 123);
  const std::vector<std::int64_t> all_padding{3, 3, 3};
  for (auto kernel : {ops::pool_embeddings, ops::reference::pool_embeddings}) {
    for (ops::Pooling pooling : {ops::Pooling::sum, ops::Pooling::mean}) {
      for (float mean_epsilon : {0.0f, 1e-16f}) {  // epsilon 0 would make 0 / 0 without the guard
        std::vector<float> empty = test::nan_filled(dim), padded = test::nan_filled(dim);
        kernel(table.data(), dim, nullptr, 0, 3, pooling, mean_epsilon, empty.data());
        kernel(table.data(), dim, all_padding.data(), all_padding.size(), 3, pooling, mean_epsilon, padded.data());
        for (std::size_t d = 0; d < dim; ++d) {
          CHECK(empty[d] == 0.0f);
          CHECK(padded[d] == 0.0f);
        }
        CHECK(std::isnan(empty[dim]));
        CHECK(std::isnan(padded[dim]));
      }
    }
  }
}

TEST_CASE("ops/embedding: a padding id that never occurs masks nothing") {
  // torch-rechub without padding_idx: every slot is averaged, divisor = count (+ epsilon).
  const std::size_t dim = 16;
  test::UnalignedFloats table(3 * dim, 124);
  const std::vector<std::int64_t> ids{0, 0, 1, 2};
  std::vector<float> got = test::nan_filled(dim);
  ops::pool_embeddings(table.data(), dim, ids.data(), ids.size(), -1, ops::Pooling::mean, 0.0f, got.data());
  for (std::size_t d = 0; d < dim; ++d) {
    const float sum = ((table[d] + table[d]) + table[dim + d]) + table[2 * dim + d];
    CHECK(got[d] == sum / 4.0f);
  }
}

TEST_CASE("ops/embedding: pooling enum values equal the schema's") {
  CHECK(static_cast<int>(ops::Pooling::sum) == static_cast<int>(reclite::fbs::Pooling::sum));
  CHECK(static_cast<int>(ops::Pooling::mean) == static_cast<int>(reclite::fbs::Pooling::mean));
}
