// After warm-up, a user evaluation allocates nothing: this executable replaces global operator new with a
// counting one (it has its own binary so the replacement touches no other test).
#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "format/tiny_model.hpp"
#include "format/tiny_sasrec.hpp"
#include "index/index_fixtures.hpp"
#include "reclite/index/exact_search.hpp"
#include "reclite/index/hnsw_index.hpp"
#include "reclite/reclite.hpp"
#include "request_json.hpp"
#include "support/check.hpp"
#include "support/fixtures.hpp"

namespace {
std::atomic<std::size_t> allocations{0};
}

void* operator new(std::size_t size) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* pointer = std::malloc(size == 0 ? 1 : size)) return pointer;
  throw std::bad_alloc();
}
void operator delete(void* pointer) noexcept { std::free(pointer); }
void operator delete(void* pointer, std::size_t) noexcept { std::free(pointer); }

TEST_CASE("allocation/session: encode_user allocates nothing after the first call") {
  for (const std::string& name : test::fixture_names()) {
    CAPTURE(name);
    auto loaded = reclite::Model::load(test::fixture_path(name + ".reclite"));
    REQUIRE(loaded);
    const tool::Json expected = test::read_json_fixture(name + ".expected.json");
    const auto& users = expected.find("users")->items;
    std::vector<tool::RequestBuffers> requests(users.size());
    for (std::size_t u = 0; u < users.size(); ++u) REQUIRE(tool::build_request(*loaded, *users[u].find("request"), requests[u]));
    reclite::Session session(*loaded);
    std::vector<float> vector(loaded->user_dim() * loaded->user_vector_count());
    REQUIRE(session.encode_user(requests[0].fields, vector));  // warm-up
    const std::size_t before = allocations.load();
    for (const auto& request : requests) {
      auto done = session.encode_user(request.fields, vector);
      CHECK(done.has_value());
    }
    CHECK(allocations.load() == before);
    // encode_item and scoring from precomputed vectors allocate nothing either.
    const std::int64_t first_item = loaded->catalogue().external_id(0);
    std::vector<float> item(loaded->item_dim());
    REQUIRE(session.encode_item(first_item, item));
    std::vector<std::int64_t> candidates(loaded->catalogue().external_ids(), loaded->catalogue().external_ids() + 50);
    std::vector<float> scores(candidates.size());
    const std::size_t before_items = allocations.load();
    REQUIRE(session.encode_item(first_item, item));
    REQUIRE(session.score_items(vector, candidates, scores));
    CHECK(allocations.load() == before_items);
  }
}

TEST_CASE("allocation/session: many sessions share one model across threads with equal results") {
  auto loaded = reclite::Model::load(test::fixture_path("dssm_trained.reclite"));
  REQUIRE(loaded);
  const reclite::Model& model = *loaded;
  const tool::Json expected = test::read_json_fixture("dssm_trained.expected.json");
  const auto& users = expected.find("users")->items;
  std::vector<tool::RequestBuffers> requests(users.size());
  for (std::size_t u = 0; u < users.size(); ++u) REQUIRE(tool::build_request(model, *users[u].find("request"), requests[u]));
  std::atomic<std::size_t> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      reclite::Session session(model);
      std::vector<float> vector(model.user_dim());
      for (int round = 0; round < 20; ++round)
        for (std::size_t u = 0; u < requests.size(); ++u) {
          if (!session.encode_user(requests[u].fields, vector)) { ++mismatches; continue; }
          std::vector<float> want = test::float_array(*users[u].find("user_vector"));
          if (test::max_abs_error(vector, want, want.size()) > 1e-5) ++mismatches;
        }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(mismatches.load() == 0);
}

// SASRec: encode_user, SequenceSession::append (incremental and re-encoding) and reset allocate nothing after
// warm-up, for every variant (small models built in C++, plus the converter's fixtures when they exist).
namespace {
void check_sasrec_allocations(const reclite::Model& model, const std::vector<std::int64_t>& catalogue_ids) {
  reclite::Session session(model);
  std::vector<float> vector(model.user_dim());
  std::vector<std::int64_t> history(catalogue_ids.begin(), catalogue_ids.begin() + 5);
  reclite::FieldInput field;
  field.ids = reclite::Span<const std::int64_t>(history.data(), history.size());
  const reclite::Span<const reclite::FieldInput> request(&field, 1);
  REQUIRE(session.encode_user(request, vector));  // warm-up
  auto sequences = reclite::SequenceSession::create(model);
  REQUIRE(sequences);
  auto state = sequences->start(reclite::Span<const std::int64_t>(history.data(), 2));
  REQUIRE(state);
  const std::size_t before = allocations.load();
  for (int round = 0; round < 3; ++round) CHECK(session.encode_user(request, vector).has_value());
  for (std::size_t i = 0; i < 3 * model.file().sasrec()->max_length; ++i)
    CHECK(sequences->append(*state, catalogue_ids[i % catalogue_ids.size()]).has_value());
  CHECK(sequences->reset(*state, history).has_value());
  CHECK(allocations.load() == before);
}
}  // namespace

TEST_CASE("allocation/sasrec: encode_user and sequence appends allocate nothing after warm-up") {
  for (const std::string& variant : test::sasrec_variants()) {
    CAPTURE(variant);
    test::TinySasRecOptions options;
    options.spec = test::sasrec_spec(variant);
    test::AlignedBuffer buffer(test::build_tiny_sasrec(options).bytes);
    auto loaded = reclite::Model::from_buffer(buffer.data(), buffer.size, "tiny_sasrec.reclite");
    REQUIRE(loaded);
    std::vector<std::int64_t> ids(loaded->catalogue().external_ids(),
                                  loaded->catalogue().external_ids() + loaded->catalogue().size());
    check_sasrec_allocations(*loaded, ids);
  }
  std::ifstream module(std::string(RECLITE_SOURCE_DIR) + "/converters/reclite_convert/sasrec_fixtures.py");
  if (!module.good()) return;
  const tool::Json manifest = test::read_json_fixture("sasrec/manifest.json");
  for (const auto& item : manifest.find("fixtures")->items) {
    CAPTURE(item.text);
    auto loaded = reclite::Model::load(test::fixture_path("sasrec/" + item.text + ".reclite"));
    REQUIRE(loaded);
    std::vector<std::int64_t> ids(loaded->catalogue().external_ids(),
                                  loaded->catalogue().external_ids() + loaded->catalogue().size());
    check_sasrec_allocations(*loaded, ids);
  }
}

// MIND and SDM (the converter's multi-interest fixtures): encode_user, label-aware attention and the merged
// multi-interest recall allocate nothing after warm-up.
TEST_CASE("allocation/multi_interest: MIND and SDM requests and recall allocate nothing after warm-up") {
  const tool::Json manifest = test::read_json_fixture("multi_interest/manifest.json");
  std::size_t fixtures = 0;
  for (const auto& item : manifest.find("fixtures")->items) {
    const std::string name = item.text;
    CAPTURE(name);
    auto loaded = reclite::Model::load(test::fixture_path("multi_interest/" + name + ".reclite"));
    REQUIRE(loaded);
    const reclite::Model& model = *loaded;
    const tool::Json expected = test::read_json_fixture("multi_interest/" + name + ".expected.json");
    const auto& users = expected.find("users")->items;
    std::vector<tool::RequestBuffers> requests(users.size());
    for (std::size_t u = 0; u < users.size(); ++u) REQUIRE(tool::build_request(model, *users[u].find("request"), requests[u]));
    std::vector<std::vector<std::int64_t>> seen;
    for (const auto& request : requests) seen.push_back(tool::seen_items(model, request));
    const std::size_t dim = model.item_dim(), entries = model.catalogue().size();
    auto exact = reclite::index::ExactIndex::create(model.item_vectors(), entries, dim,
                                                    reclite::Span<const std::int64_t>(model.catalogue().external_ids(), entries));
    REQUIRE(exact);
    reclite::Session session(model);
    std::vector<float> vectors(model.user_dim() * model.user_vector_count());
    std::vector<float> label(model.user_dim());
    reclite::pipeline::MultiInterestScratch scratch;
    reclite::pipeline::MultiInterestOptions options;
    options.k = 50;
    options.quota = 20;
    std::vector<reclite::pipeline::InterestHit> hits(options.k);
    const bool mind = model.architecture() == reclite::Architecture::mind;
    const std::int64_t target = model.catalogue().external_id(5);
    auto run = [&](std::size_t u) {
      CHECK(session.encode_user(requests[u].fields, vectors).has_value());
      const std::size_t active = session.last_stats().active_interests;
      CHECK(reclite::pipeline::multi_interest_recall(*exact, vectors.data(), active, dim, seen[u], options, scratch, hits)
                .has_value());
      if (mind) CHECK(session.label_aware_vector(requests[u].fields, target, label).has_value());
    };
    for (std::size_t u = 0; u < requests.size(); ++u) run(u);  // warm-up
    const std::size_t before = allocations.load();
    for (std::size_t u = 0; u < requests.size(); ++u) run(u);
    CHECK(allocations.load() == before);
    ++fixtures;
  }
  CHECK(fixtures == 12);
}

// HnswIndex's own graph search keeps its beams in thread_local buffers and takes a visited list from hnswlib's
// pool: once a thread has searched with its largest k, ef and exclusion list, the only allocation left is the
// pool's. VisitedListPool keeps its lists in a std::deque, and libstdc++'s deque frees its block when the one
// pooled list is taken and allocates it again when the list comes back: one allocation per search, which this
// test pins so that any other shows.
TEST_CASE("allocation/hnsw_index: search_top_k allocates only the visited list pool's block after warm-up") {
  auto opened = reclite::index::HnswIndex::open(test::index_fixture("clustered_unit.rlindex"));
  REQUIRE(opened);
  const reclite::index::HnswIndex& index = *opened;
  auto queries = test::read_floats(test::index_fixture("clustered_unit.test.f32"));
  const std::size_t dim = index.dim(), count = queries.size() / dim, k = 100;
  auto ids = index.external_ids();
  std::vector<std::int64_t> history;
  for (std::size_t i = 0; i < 50; ++i) history.push_back(ids[(i * 397) % ids.size()]);
  std::vector<reclite::index::SearchHit> hits(k);
  std::size_t searches = 0;
  auto run = [&](std::size_t q) {
    const float* query = queries.data() + q * dim;
    CHECK(index.search_top_k(query, k, {}, hits).has_value());
    CHECK(index.search_top_k(query, k, history, hits).has_value());
    searches += 2;
  };
  for (std::size_t q = 0; q < count; q += 10) run(q);  // warm-up
  const std::size_t before = allocations.load();
  searches = 0;
  for (std::size_t q = 0; q < count; q += 10) run(q);
  CHECK(allocations.load() - before <= searches);
}
