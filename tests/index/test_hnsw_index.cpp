#include "reclite/index/hnsw_index.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "index/index_fixtures.hpp"
#include "reclite/index/exact_search.hpp"
#include "support/check.hpp"

using reclite::ErrorCode;
using reclite::Span;
using reclite::index::SearchHit;
namespace item_index = reclite::index;

namespace {

struct Fixture {
  item_index::HnswIndex index;
  std::vector<float> vectors;  // [count, dim], row = entry
  item_index::ExactIndex exact;

  explicit Fixture(const std::string& name) {
    auto opened = item_index::HnswIndex::open(test::index_fixture(name + ".rlindex"));
    REQUIRE_MESSAGE(opened.has_value(), opened.error().describe());
    index = std::move(*opened);
    vectors = test::read_floats(test::index_fixture(name + ".vectors.f32"));
    REQUIRE(vectors.size() == index.size() * index.dim());
    auto created = item_index::ExactIndex::create(vectors.data(), index.size(), index.dim(), index.external_ids());
    REQUIRE(created.has_value());
    exact = *created;
  }

  std::vector<float> queries(const std::string& name, const char* which) const {
    auto values = test::read_floats(test::index_fixture(name + "." + which + ".f32"));
    REQUIRE(values.size() % index.dim() == 0);
    return values;
  }

  // Mean recall@k of the hnsw search against exact search over the query file.
  double recall(const std::vector<float>& queries, std::size_t k) const {
    std::size_t dim = index.dim(), count = queries.size() / dim;
    std::vector<SearchHit> got(k), want(k);
    double total = 0;
    for (std::size_t q = 0; q < count; ++q) {
      auto found = index.search_top_k(queries.data() + q * dim, k, {}, got);
      auto truth = exact.search_top_k(queries.data() + q * dim, k, {}, want);
      REQUIRE(found.has_value());
      REQUIRE(truth.has_value());
      REQUIRE(*found == k);
      total += test::overlap(got, *found, want, *truth);
    }
    return total / double(count);
  }
};

}  // namespace

TEST_CASE("index/hnsw_index: recall at 10 on held-out queries reaches 0.98 at the stored ef") {
  for (const char* name : {"clustered_unit", "clustered_raw"}) {
    CAPTURE(name);
    Fixture fixture(name);
    CHECK(fixture.index.size() == 20000);
    CHECK(fixture.index.dim() == 64);
    CHECK(fixture.index.ef() == fixture.index.default_ef());
    double recall = fixture.recall(fixture.queries(name, "test"), 10);
    CAPTURE(recall);
    CAPTURE(fixture.index.default_ef());
    CHECK(recall >= 0.98);
  }
}

TEST_CASE("index/hnsw_index: the stored measured recall matches what C++ measures") {
  for (const char* name : {"clustered_unit", "clustered_raw", "small"}) {
    CAPTURE(name);
    Fixture fixture(name);
    auto queries = fixture.queries(name, "tuning");
    CHECK(queries.size() / fixture.index.dim() == fixture.index.description().recall_queries);
    double recall = fixture.recall(queries, 10);
    CHECK(std::fabs(recall - fixture.index.description().measured_recall) <= 0.02);
  }
}

TEST_CASE("index/hnsw_index: scores are inner products and results come best first") {
  Fixture fixture("clustered_raw");
  auto queries = fixture.queries("clustered_raw", "test");
  const std::size_t dim = 64, k = 100;
  std::vector<SearchHit> got(k + 1, SearchHit{-7, 0, std::numeric_limits<float>::quiet_NaN()});
  auto found = fixture.index.search_top_k(queries.data(), k, {}, Span<SearchHit>(got.data(), k));
  REQUIRE(found.has_value());
  REQUIRE(*found == k);
  for (std::size_t i = 0; i < k; ++i) {
    CAPTURE(i);
    float want = reclite::ops::reference::dot(queries.data(), fixture.vectors.data() + got[i].entry * dim, dim);
    CHECK(test::is_close(got[i].score, want, test::tolerance::simd_vs_reference));
    CHECK(got[i].item_id == fixture.index.external_ids()[got[i].entry]);
    if (i > 0) CHECK(item_index::ranks_before(got[i - 1], got[i]));
  }
  CHECK(got[k].item_id == -7);
}

TEST_CASE("index/hnsw_index: excluded items never come back and k results still do") {
  Fixture fixture("clustered_unit");
  auto queries = fixture.queries("clustered_unit", "test");
  const std::size_t dim = 64, k = 10;
  for (std::size_t q = 0; q < 20; ++q) {
    CAPTURE(q);
    const float* query = queries.data() + q * dim;
    std::vector<SearchHit> best(50);
    REQUIRE(fixture.exact.search_top_k(query, 50, {}, best).has_value());
    // The exact top 50, in reverse order, plus ids the catalogue does not hold.
    std::vector<std::int64_t> excluded{-1, 42};
    for (std::size_t i = 50; i-- > 0;) excluded.push_back(best[i].item_id);
    std::vector<SearchHit> got(k);
    auto found = fixture.index.search_top_k(query, k, excluded, got);
    REQUIRE(found.has_value());
    CHECK(*found == k);
    for (std::size_t i = 0; i < *found; ++i)
      CHECK(std::find(excluded.begin(), excluded.end(), got[i].item_id) == excluded.end());
  }
}

TEST_CASE("index/hnsw_index: excluding most of the catalogue falls back to exact search") {
  Fixture fixture("small");
  auto queries = fixture.queries("small", "test");
  auto ids = fixture.index.external_ids();
  std::vector<std::int64_t> excluded(ids.begin(), ids.end());
  std::set<std::int64_t> kept{excluded[5], excluded[123], excluded[299]};
  excluded.erase(std::remove_if(excluded.begin(), excluded.end(), [&](std::int64_t id) { return kept.count(id) > 0; }),
                 excluded.end());
  std::vector<SearchHit> got(10);
  auto found = fixture.index.search_top_k(queries.data(), 10, excluded, got);
  REQUIRE(found.has_value());
  REQUIRE(*found == 3);
  std::set<std::int64_t> returned;
  for (std::size_t i = 0; i < 3; ++i) returned.insert(got[i].item_id);
  CHECK(returned == kept);
  excluded.insert(excluded.end(), kept.begin(), kept.end());
  auto none = fixture.index.search_top_k(queries.data(), 10, excluded, got);
  REQUIRE(none.has_value());
  CHECK(*none == 0);
}

TEST_CASE("index/hnsw_index: k = 0 returns nothing and k above count clamps") {
  Fixture fixture("small");
  auto queries = fixture.queries("small", "test");
  std::vector<SearchHit> got(300);
  auto zero = fixture.index.search_top_k(queries.data(), 0, {}, Span<SearchHit>());
  REQUIRE(zero.has_value());
  CHECK(*zero == 0);
  auto all = fixture.index.search_top_k(queries.data(), 1000, {}, got);
  REQUIRE(all.has_value());
  REQUIRE(*all == 300);
  std::vector<SearchHit> want(300);
  REQUIRE(fixture.exact.search_top_k(queries.data(), 300, {}, want).has_value());
  for (std::size_t i = 0; i < 300; ++i) CHECK(got[i].entry == want[i].entry);

  Fixture single("single");
  auto one = single.index.search_top_k(single.queries("single", "test").data(), 5, {}, got);
  REQUIRE(one.has_value());
  CHECK(*one == 1);
  CHECK(got[0].item_id == single.index.external_ids()[0]);
}

TEST_CASE("index/hnsw_index: bad queries and short outputs are refused") {
  Fixture fixture("small");
  std::vector<float> query(16, 0.5f);
  std::vector<SearchHit> got(10);
  auto small = fixture.index.search_top_k(query.data(), 10, {}, Span<SearchHit>(got.data(), 9));
  REQUIRE(!small.has_value());
  CHECK(small.error().code == ErrorCode::output_size);
  query[15] = std::numeric_limits<float>::infinity();
  auto infinite = fixture.index.search_top_k(query.data(), 10, {}, got);
  REQUIRE(!infinite.has_value());
  CHECK(infinite.error().code == ErrorCode::non_finite_input);
  query[15] = std::numeric_limits<float>::quiet_NaN();
  auto nan = fixture.index.search_top_k(query.data(), 10, {}, got);
  REQUIRE(!nan.has_value());
  CHECK(nan.error().code == ErrorCode::non_finite_input);
  CHECK(nan.error().message.find("query[15]") != std::string::npos);
}

TEST_CASE("index/hnsw_index: set_ef changes the beam and a larger ef does not lower recall") {
  Fixture fixture("clustered_raw");
  auto queries = fixture.queries("clustered_raw", "test");
  double at_default = fixture.recall(queries, 10);
  fixture.index.set_ef(400);
  CHECK(fixture.index.ef() == 400);
  double at_400 = fixture.recall(queries, 10);
  CHECK(at_400 >= at_default - 0.005);
  CHECK(at_400 >= 0.995);
  item_index::IndexOptions options;
  options.ef = 17;
  auto opened = item_index::HnswIndex::open(test::index_fixture("small.rlindex"), options);
  REQUIRE(opened.has_value());
  CHECK(opened->ef() == 17);
}

TEST_CASE("index/hnsw_index: concurrent searches give the same results as one thread") {
  Fixture fixture("clustered_unit");
  auto queries = fixture.queries("clustered_unit", "test");
  const std::size_t dim = 64, k = 20, count = queries.size() / dim;
  std::vector<SearchHit> sequential(count * k);
  for (std::size_t q = 0; q < count; ++q)
    REQUIRE(fixture.index.search_top_k(queries.data() + q * dim, k, {}, Span<SearchHit>(sequential.data() + q * k, k)).has_value());
  std::vector<SearchHit> parallel(count * k);
  std::vector<int> failures(4, 0);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (std::size_t round = 0; round < 3; ++round)
        for (std::size_t q = t; q < count; q += 4)
          if (!fixture.index.search_top_k(queries.data() + q * dim, k, {}, Span<SearchHit>(parallel.data() + q * k, k)))
            ++failures[t];
    });
  for (auto& thread : threads) thread.join();
  CHECK(failures == std::vector<int>(4, 0));
  for (std::size_t i = 0; i < count * k; ++i) {
    CAPTURE(i);
    CHECK(parallel[i].entry == sequential[i].entry);
    CHECK(parallel[i].score == sequential[i].score);
  }
}
