#include "reclite/index/exact_search.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include <doctest/doctest.h>

#include "index/compact_data.hpp"
#include "support/check.hpp"

using reclite::Span;
using reclite::index::SearchHit;
namespace item_index = reclite::index;

namespace {

// Small integers: every dot product is exact in float32, so SIMD and scalar agree bit for bit and ties
// are frequent, which exercises the tie rule.
std::vector<float> small_integers(std::size_t n, unsigned seed) {
  std::mt19937 generator(seed);
  std::uniform_int_distribution<int> distribution(-2, 2);
  std::vector<float> values(n);
  for (auto& value : values) value = static_cast<float>(distribution(generator));
  return values;
}

std::vector<SearchHit> unwritten(std::size_t n) {
  float nan = std::numeric_limits<float>::quiet_NaN();
  return std::vector<SearchHit>(n + 1, SearchHit{-7, 0xFFFFFFFFu, nan});
}

void check_same_hits(const std::vector<SearchHit>& got, const std::vector<SearchHit>& want, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    CAPTURE(i);
    CHECK(got[i].entry == want[i].entry);
    CHECK(got[i].item_id == want[i].item_id);
    CHECK(got[i].score == want[i].score);
  }
}

}  // namespace

TEST_CASE("index/exact_search: top k equals the scalar reference with ties on awkward sizes") {
  for (std::size_t count : {1, 3, 17, 1000}) {
    for (std::size_t dim : {1, 3, 16, 17, 64}) {
      auto vectors = small_integers(count * dim, static_cast<unsigned>(count * 100 + dim));
      auto query = small_integers(dim + 1, 7);
      for (std::size_t k : {std::size_t{1}, std::size_t{5}, count, count + 3}) {
        CAPTURE(count);
        CAPTURE(dim);
        CAPTURE(k);
        auto got = unwritten(k);
        auto want = unwritten(k);
        // Query one float off alignment.
        std::size_t n = item_index::exact_top_k(query.data() + 1, vectors.data(), count, dim, k, {}, Span<SearchHit>(got.data(), k));
        std::size_t m = item_index::reference::exact_top_k(query.data() + 1, vectors.data(), count, dim, dim, k, {},
                                                      Span<SearchHit>(want.data(), k));
        REQUIRE(n == std::min(k, count));
        REQUIRE(m == n);
        check_same_hits(got, want, n);
        for (std::size_t i = 1; i < n; ++i) CHECK(item_index::ranks_before(got[i - 1], got[i]));
        CHECK(got[k].item_id == -7);  // guard untouched
      }
    }
  }
}

TEST_CASE("index/exact_search: equal scores go to the lower entry") {
  std::vector<float> vectors{1, 0, 2, 0, 2, 0, 1, 0, 2, 0};  // five rows of dim 2; rows 1, 2 and 4 tie
  float query[2] = {1, 0};
  auto got = unwritten(2);
  REQUIRE(item_index::exact_top_k(query, vectors.data(), 5, 2, 2, {}, Span<SearchHit>(got.data(), 2)) == 2);
  CHECK(got[0].entry == 1);
  CHECK(got[1].entry == 2);
}

TEST_CASE("index/exact_search: random floats match the reference within rounding") {
  const std::size_t count = 1000, dim = 64, k = 50;
  auto vectors = test::random_floats(count * dim, 3);
  auto query = test::random_floats(dim, 4);
  auto got = unwritten(k);
  auto want = unwritten(k);
  REQUIRE(item_index::exact_top_k(query.data(), vectors.data(), count, dim, k, {}, Span<SearchHit>(got.data(), k)) == k);
  REQUIRE(item_index::reference::exact_top_k(query.data(), vectors.data(), count, dim, dim, k, {},
                                        Span<SearchHit>(want.data(), k)) == k);
  for (std::size_t i = 0; i < k; ++i) {
    CAPTURE(i);
    CHECK(test::is_close(got[i].score, want[i].score, test::tolerance::simd_vs_reference));
    // Entries may only swap where the reference's scores are within rounding of each other.
    bool near_tie = (i > 0 && want[i].score - want[i - 1].score > -1e-4f) ||
                    (i + 1 < k && want[i].score - want[i + 1].score < 1e-4f);
    if (!near_tie) CHECK(got[i].entry == want[i].entry);
  }
}

TEST_CASE("index/exact_search: excluded entries are skipped and k results still come back") {
  const std::size_t count = 1000, dim = 17, k = 10;
  auto vectors = small_integers(count * dim, 5);
  auto query = small_integers(dim, 6);
  auto all = unwritten(count);
  REQUIRE(item_index::reference::exact_top_k(query.data(), vectors.data(), count, dim, dim, count, {},
                                        Span<SearchHit>(all.data(), count)) == count);
  std::vector<std::uint32_t> excluded{all[0].entry, all[2].entry, all[3].entry, 5000};
  std::sort(excluded.begin(), excluded.end());
  auto got = unwritten(k);
  auto want = unwritten(k);
  REQUIRE(item_index::exact_top_k(query.data(), vectors.data(), count, dim, k, excluded, Span<SearchHit>(got.data(), k)) == k);
  REQUIRE(item_index::reference::exact_top_k(query.data(), vectors.data(), count, dim, dim, k, excluded,
                                        Span<SearchHit>(want.data(), k)) == k);
  check_same_hits(got, want, k);
  for (std::size_t i = 0; i < k; ++i) CHECK(!std::binary_search(excluded.begin(), excluded.end(), got[i].entry));
  CHECK(got[0].entry == all[1].entry);

  // Excluding all but two rows leaves two results whatever k is.
  std::vector<std::uint32_t> most;
  for (std::uint32_t entry = 0; entry < count; ++entry)
    if (entry != 10 && entry != 900) most.push_back(entry);
  REQUIRE(item_index::exact_top_k(query.data(), vectors.data(), count, dim, k, most, Span<SearchHit>(got.data(), k)) == 2);
  CHECK(std::min(got[0].entry, got[1].entry) == 10);
  CHECK(std::max(got[0].entry, got[1].entry) == 900);
}

TEST_CASE("index/exact_search: strided rows and NaN rows") {
  const std::size_t count = 17, dim = 3, stride = 5;
  auto vectors = small_integers(count * stride, 8);
  vectors[4 * stride + 1] = std::numeric_limits<float>::quiet_NaN();  // row 4 scores NaN: never returned
  float query[dim] = {1, 1, 1};
  auto got = unwritten(count);
  auto want = unwritten(count);
  std::size_t n = item_index::exact_top_k(query, vectors.data(), count, dim, stride, count, {}, Span<SearchHit>(got.data(), count));
  std::size_t m = item_index::reference::exact_top_k(query, vectors.data(), count, dim, stride, count, {},
                                                Span<SearchHit>(want.data(), count));
  REQUIRE(n == count - 1);
  REQUIRE(m == n);
  check_same_hits(got, want, n);
}

TEST_CASE("index/exact_search: k = 0 and an empty output write nothing") {
  std::vector<float> vectors{1, 2, 3};
  float query[1] = {1};
  auto got = unwritten(2);
  CHECK(item_index::exact_top_k(query, vectors.data(), 3, 1, 0, {}, Span<SearchHit>(got.data(), 2)) == 0);
  CHECK(item_index::exact_top_k(query, vectors.data(), 3, 1, 2, {}, Span<SearchHit>(got.data(), 0)) == 0);
  CHECK(got[0].item_id == -7);
}

TEST_CASE("index/exact_search: ExactIndex returns external ids and honours excluded ids") {
  const std::size_t count = 300, dim = 16;
  auto vectors = small_integers(count * dim, 9);
  std::vector<std::int64_t> ids(count);
  for (std::size_t i = 0; i < count; ++i) ids[i] = 1000000 + static_cast<std::int64_t>((i * 7919) % 100003);
  auto created = item_index::ExactIndex::create(vectors.data(), count, dim, ids);
  REQUIRE(created.has_value());
  auto query = small_integers(dim, 10);
  auto all = unwritten(count);
  REQUIRE(item_index::reference::exact_top_k(query.data(), vectors.data(), count, dim, dim, count, {},
                                        Span<SearchHit>(all.data(), count)) == count);
  for (std::size_t excluded_count : {std::size_t{3}, std::size_t{40}}) {  // linear scan and binary search
    CAPTURE(excluded_count);
    std::vector<std::int64_t> excluded{-5};  // not in the catalogue: ignored
    for (std::size_t i = 0; i < excluded_count; ++i) excluded.push_back(ids[all[2 * i].entry]);
    auto got = unwritten(10);
    auto found = created->search_top_k(query.data(), 10, excluded, Span<SearchHit>(got.data(), 10));
    REQUIRE(found.has_value());
    REQUIRE(*found == 10);
    for (std::size_t i = 0; i < 10; ++i) {
      CHECK(got[i].item_id == ids[got[i].entry]);
      CHECK(std::find(excluded.begin(), excluded.end(), got[i].item_id) == excluded.end());
    }
    CHECK(got[0].entry == all[1].entry);
  }
  auto got = unwritten(count);
  auto everything = created->search_top_k(query.data(), count + 5, {}, Span<SearchHit>(got.data(), count));
  REQUIRE(everything.has_value());
  CHECK(*everything == count);
}

TEST_CASE("index/exact_search: ExactIndex refuses bad queries outputs and catalogues") {
  std::vector<float> vectors{1, 0, 0, 1};
  std::vector<std::int64_t> ids{5, 6};
  auto created = item_index::ExactIndex::create(vectors.data(), 2, 2, ids);
  REQUIRE(created.has_value());
  std::vector<SearchHit> out(2);
  float nan_query[2] = {1, std::numeric_limits<float>::quiet_NaN()};
  auto bad = created->search_top_k(nan_query, 2, {}, out);
  REQUIRE(!bad.has_value());
  CHECK(bad.error().code == reclite::ErrorCode::non_finite_input);
  float query[2] = {1, 0};
  auto small = created->search_top_k(query, 2, {}, Span<SearchHit>(out.data(), 1));
  REQUIRE(!small.has_value());
  CHECK(small.error().code == reclite::ErrorCode::output_size);
  auto none = created->search_top_k(query, 0, {}, Span<SearchHit>());
  REQUIRE(none.has_value());
  CHECK(*none == 0);
  std::vector<std::int64_t> duplicated{5, 5};
  auto refused = item_index::ExactIndex::create(vectors.data(), 2, 2, duplicated);
  REQUIRE(!refused.has_value());
  CHECK(refused.error().code == reclite::ErrorCode::invalid_argument);
  CHECK(refused.error().message.find("appears more than once") != std::string::npos);
}

namespace {

// Brute force with the engine's row score (detail::score_row = ops::dot, out of line so its rounding does not
// depend on the call site), NaN dropped, all sorted. In scalar builds this is reference::exact_top_k.
std::vector<SearchHit> sorted_scores(const std::vector<float>& vectors, std::size_t count, std::size_t dim,
                                     const float* query, const std::vector<std::int64_t>& ids,
                                     const std::vector<std::int64_t>& excluded) {
  std::vector<SearchHit> all;
  for (std::size_t row = 0; row < count; ++row) {
    if (std::find(excluded.begin(), excluded.end(), ids[row]) != excluded.end()) continue;
    float score = item_index::detail::score_row(query, vectors.data() + row * dim, dim);
    if (std::isnan(score)) continue;
    all.push_back(SearchHit{ids[row], static_cast<std::uint32_t>(row), score});
  }
  std::sort(all.begin(), all.end(), item_index::ranks_before);
  return all;
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof(float)) == 0; }

}  // namespace

TEST_CASE("index/exact_search: the compact first pass returns exactly the float32 result") {
  using item_index::CompactCopy;
  item_index::ExactIndexOptions compact_options, plain_options;
  compact_options.compact_copy = CompactCopy::always;
  plain_options.compact_copy = CompactCopy::never;
  std::size_t searches = 0, compact_searches = 0;
  for (std::size_t count : {1, 3, 17, 1000, 20000}) {
    for (std::size_t dim : {1, 3, 16, 17, 64, 100}) {
      for (auto shape : test::all_vector_shapes()) {
        if (count == 20000 && dim != 17 && dim != 64) continue;  // keeps the sanitizer build quick
        CAPTURE(count);
        CAPTURE(dim);
        CAPTURE(test::shape_name(shape));
        auto vectors = test::shaped_vectors(shape, count, dim, static_cast<unsigned>(count + dim * 7 + int(shape)));
        std::vector<std::int64_t> ids(count);
        for (std::size_t i = 0; i < count; ++i) ids[i] = 5000000 - 7 * static_cast<std::int64_t>(i);  // descending
        auto compact = item_index::ExactIndex::create(vectors.data(), count, dim, ids, compact_options);
        auto plain = item_index::ExactIndex::create(vectors.data(), count, dim, ids, plain_options);
        REQUIRE(compact.has_value());
        REQUIRE(plain.has_value());
        CHECK(compact->compact_copy_bytes() == ((count + 15) / 16) * ((dim + 3) / 4) * 64 + 12 * count);
        CHECK(plain->compact_copy_bytes() == 0);
        auto queries = test::shaped_queries(dim, static_cast<unsigned>(dim + count));
        for (std::size_t q = 0; q < queries.size(); ++q) {
          const float* query = queries[q].data();
          CAPTURE(q);
          auto everything = sorted_scores(vectors, count, dim, query, ids, {});
          // Exclude the best, the third and a few others, plus an id outside the catalogue.
          std::vector<std::int64_t> excluded{-1};
          for (std::size_t i = 0; i < everything.size(); i += 2 + i) excluded.push_back(everything[i].item_id);
          for (bool with_exclusion : {false, true}) {
            CAPTURE(with_exclusion);
            const auto& removed = with_exclusion ? excluded : std::vector<std::int64_t>{};
            auto want = with_exclusion ? sorted_scores(vectors, count, dim, query, ids, removed) : everything;
            for (std::size_t k : {std::size_t{1}, std::size_t{10}, std::size_t{100}, count}) {
              CAPTURE(k);
              auto got = unwritten(k);
              auto got_plain = unwritten(k);
              auto found = compact->search_top_k(query, k, removed, Span<SearchHit>(got.data(), k));
              auto found_plain = plain->search_top_k(query, k, removed, Span<SearchHit>(got_plain.data(), k));
              REQUIRE(found.has_value());
              REQUIRE(found_plain.has_value());
              const std::size_t expected = std::min(k, want.size());
              REQUIRE(*found == expected);
              REQUIRE(*found_plain == expected);
              for (std::size_t i = 0; i < expected; ++i) {
                CAPTURE(i);
                CHECK(got[i].entry == want[i].entry);
                CHECK(got[i].item_id == want[i].item_id);
                CHECK(same_bits(got[i].score, want[i].score));
                CHECK(got_plain[i].entry == want[i].entry);
                CHECK(same_bits(got_plain[i].score, want[i].score));
              }
              CHECK(got[k].item_id == -7);  // guard untouched
#if !RECLITE_HAS_SIMD
              // Scalar builds: ops::dot is the reference dot, so the reference's own result is matched too.
              if (!with_exclusion) {
                auto reference = unwritten(k);
                std::size_t m = item_index::reference::exact_top_k(query, vectors.data(), count, dim, dim, k, {},
                                                                   Span<SearchHit>(reference.data(), k));
                REQUIRE(m == expected);
                for (std::size_t i = 0; i < m; ++i) {
                  CHECK(got[i].entry == reference[i].entry);
                  CHECK(same_bits(got[i].score, reference[i].score));
                }
              }
#endif
              ++searches;
            }
          }
          item_index::CompactVectors::Query prepared;
          compact_searches += reclite::index::CompactVectors::build(vectors.data(), 1, dim, dim).prepare(query, prepared);
        }
      }
    }
  }
  CHECK(searches > 1000);
  CHECK(compact_searches > 0);
}

TEST_CASE("index/exact_search: the compact first pass re-scores few rows of a large catalogue") {
  const std::size_t count = 20000, dim = 64, k = 100;
  for (auto shape : {test::VectorShape::gaussian, test::VectorShape::clustered, test::VectorShape::skewed_norms}) {
    CAPTURE(test::shape_name(shape));
    auto vectors = test::shaped_vectors(shape, count, dim, 21);
    auto compact = item_index::CompactVectors::build(vectors.data(), count, dim, dim);
    auto query = test::shaped_queries(dim, 22)[0];
    item_index::CompactVectors::Query prepared;
    REQUIRE(compact.prepare(query.data(), prepared));
    auto got = unwritten(k);
    auto want = unwritten(k);
    std::size_t rescored = 0;
    std::size_t n = item_index::detail::compact_scan(query.data(), compact, prepared, vectors.data(), dim, k,
                                                     item_index::detail::IdentityEntry{},
                                                     item_index::detail::SortedEntries{}, got.data(), &rescored);
    REQUIRE(n == k);
    REQUIRE(item_index::exact_top_k(query.data(), vectors.data(), count, dim, k, {}, Span<SearchHit>(want.data(), k)) == k);
    check_same_hits(got, want, k);
    auto via_overload = unwritten(k);
    REQUIRE(item_index::exact_top_k(query.data(), vectors.data(), count, dim, dim, compact, k, {},
                                    Span<SearchHit>(via_overload.data(), k)) == k);
    check_same_hits(via_overload, want, k);
    CAPTURE(rescored);
    // Clustered rows sit close together, so more of them stay within the bound of the k-th best.
    CHECK(rescored < (shape == test::VectorShape::clustered ? count / 2 : count / 10));
  }
}

TEST_CASE("index/exact_search: ExactIndex builds its compact copy only where it pays off") {
  const std::size_t dim = 16;
  for (std::size_t count : {std::size_t{100}, std::size_t{5000}}) {
    auto vectors = test::shaped_vectors(test::VectorShape::gaussian, count, dim, 3);
    std::vector<std::int64_t> ids(count);
    for (std::size_t i = 0; i < count; ++i) ids[i] = static_cast<std::int64_t>(i);
    auto automatic = item_index::ExactIndex::create(vectors.data(), count, dim, ids);
    REQUIRE(automatic.has_value());
    CHECK((automatic->compact_copy_bytes() > 0) == (count >= 4096));
    // k close to count uses the float32 scan; both give the reference's result.
    auto query = test::shaped_queries(dim, 4)[0];
    for (std::size_t k : {std::size_t{10}, count - 1}) {
      auto got = unwritten(k);
      auto found = automatic->search_top_k(query.data(), k, {}, Span<SearchHit>(got.data(), k));
      REQUIRE(found.has_value());
      auto want = sorted_scores(vectors, count, dim, query.data(), ids, {});
      for (std::size_t i = 0; i < k; ++i) {
        CAPTURE(i);
        CAPTURE(got[i].score);
        CAPTURE(want[i].score);
        CHECK(got[i].entry == want[i].entry);
        CHECK(same_bits(got[i].score, want[i].score));
      }
    }
  }
  std::vector<float> wide(2 * (item_index::CompactVectors::max_dim + 1), 0.5f);
  std::vector<std::int64_t> two{1, 2};
  item_index::ExactIndexOptions always;
  always.compact_copy = item_index::CompactCopy::always;
  auto too_wide = item_index::ExactIndex::create(wide.data(), 2, item_index::CompactVectors::max_dim + 1, two, always);
  REQUIRE(too_wide.has_value());
  CHECK(too_wide->compact_copy_bytes() == 0);
}
