// Multi-interest recall over a 20 000-item catalogue (multi_interest_index_fixtures.py: a trained MIND and SDM,
// their hnsw indexes, 100 held-out users each with the exact merge computed in PyTorch, history excluded).
// The exact path must equal PyTorch's merge; the hnsw path at the index's default ef must recover at least 0.97
// of it (issue 5), while being a real approximate search; quotas must hold on the hnsw path too.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "reclite/index/exact_search.hpp"
#include "reclite/index/hnsw_index.hpp"
#include "reclite/pipeline/multi_interest_recall.hpp"
#include "reclite/reclite.hpp"
#include "request_json.hpp"
#include "support/fixtures.hpp"

using reclite::pipeline::InterestHit;
using reclite::pipeline::MultiInterestOptions;

namespace {

constexpr double recall_bar = 0.97;  // issue 5's "Done when"

struct FixtureUser {
  std::vector<float> interests;          // [K, D] as Session::encode_user wrote them
  std::size_t active = 0;
  std::vector<std::int64_t> excluded;    // the history: seen items are never recalled
  std::vector<std::int64_t> want_ids;    // PyTorch's exact merge (float64), best first
  std::vector<float> want_scores;
};

struct BigFixture {
  reclite::Model model;
  reclite::index::ExactIndex exact;
  reclite::index::HnswIndex hnsw;
  std::vector<FixtureUser> users;
  std::size_t k = 0;
  std::size_t dim = 0;
};

std::string big_fixture_path(const std::string& file) { return test::fixture_path("multi_interest_index/" + file); }

// Loads model, indexes and users, encoding every user in C++ (checked against PyTorch's vectors on the way).
BigFixture load_big_fixture(const std::string& name) {
  const tool::Json expected = test::read_json_fixture("multi_interest_index/" + name + ".expected.json");
  reclite::LoadOptions load;
  load.run_self_test = true;
  auto loaded = reclite::Model::load(big_fixture_path(name + ".reclite"), load);
  REQUIRE_MESSAGE(loaded, name << ": " << (loaded ? "" : loaded.error().describe()));
  BigFixture fixture{std::move(*loaded), {}, {}, {}, 0, 0};
  const reclite::Model& model = fixture.model;
  REQUIRE(model.item_vectors() != nullptr);
  fixture.dim = model.item_dim();
  const std::size_t entries = model.catalogue().size();
  const reclite::Span<const std::int64_t> ids(model.catalogue().external_ids(), entries);
  auto exact = reclite::index::ExactIndex::create(model.item_vectors(), entries, fixture.dim, ids);
  REQUIRE(exact);
  fixture.exact = std::move(*exact);
  reclite::index::IndexOptions index_options;  // ef 0: the file's default_ef
  index_options.expected_external_ids = ids;   // the index must be built over this model's catalogue
  index_options.expected_dim = fixture.dim;
  auto hnsw = reclite::index::HnswIndex::open(big_fixture_path(name + ".rlindex"), index_options);
  REQUIRE_MESSAGE(hnsw, (hnsw ? "" : hnsw.error().describe()));
  fixture.hnsw = std::move(*hnsw);

  reclite::Session session(model);
  const auto& users = expected.find("users")->items;
  const double tolerance = expected.find("tolerance")->number;
  for (const auto& top : expected.find("top_k")->items) {
    const auto index = static_cast<std::size_t>(top.find("user")->number);
    CAPTURE(index);
    const tool::Json& user = users[index];
    FixtureUser got;
    tool::RequestBuffers request;
    REQUIRE(tool::build_request(model, *user.find("request"), request));
    got.interests.assign(model.user_dim() * model.user_vector_count(), 0.0f);
    REQUIRE(session.encode_user(request.fields, got.interests));
    got.active = session.last_stats().active_interests;
    REQUIRE(got.active == static_cast<std::size_t>(user.find("active_interests")->number));
    // The merges below compare C++ recall with PyTorch's: the user vectors must agree first.
    std::size_t offset = 0;
    for (const auto& row : user.find("user_vectors")->items)
      for (const auto& value : row.items) REQUIRE(std::fabs(got.interests[offset++] - value.number) <= tolerance);
    for (const auto& id : user.find("excluded_item_ids")->items)
      got.excluded.push_back(static_cast<std::int64_t>(id.number));
    for (const auto& id : top.find("item_ids")->items) got.want_ids.push_back(static_cast<std::int64_t>(id.number));
    got.want_scores = test::float_array(*top.find("scores"));
    fixture.k = static_cast<std::size_t>(top.find("k")->number);
    fixture.users.push_back(std::move(got));
  }
  REQUIRE(fixture.users.size() >= 100);
  return fixture;
}

std::vector<std::string> big_fixture_names() {
  std::vector<std::string> names;
  const tool::Json manifest = test::read_json_fixture("multi_interest_index/manifest.json");
  for (const auto& item : manifest.find("fixtures")->items) names.push_back(item.text);
  REQUIRE(names.size() >= 2);  // one MIND, one SDM
  return names;
}

template <class Index>
std::vector<InterestHit> recall_of(const Index& index, const BigFixture& fixture, const FixtureUser& user,
                                   const MultiInterestOptions& options, reclite::pipeline::MultiInterestScratch& scratch) {
  std::vector<InterestHit> hits(options.k);
  auto found = reclite::pipeline::multi_interest_recall(index, user.interests.data(), user.active, fixture.dim,
                                                        user.excluded, options, scratch, hits);
  REQUIRE(found);
  hits.resize(*found);
  return hits;
}

// Fraction of `want` found in `got`.
double overlap(const std::vector<InterestHit>& got, const std::vector<std::int64_t>& want) {
  std::set<std::int64_t> found;
  for (const InterestHit& hit : got) found.insert(hit.item_id);
  std::size_t hits = 0;
  for (std::int64_t id : want) hits += found.count(id);
  return want.empty() ? 1.0 : double(hits) / double(want.size());
}

// What holds of any merged recall: best first, each item once, no seen item, a queried interest.
void check_well_formed(const std::vector<InterestHit>& hits, const FixtureUser& user) {
  std::set<std::int64_t> ids;
  const std::set<std::int64_t> excluded(user.excluded.begin(), user.excluded.end());
  for (std::size_t r = 0; r < hits.size(); ++r) {
    CAPTURE(r);
    CHECK(ids.insert(hits[r].item_id).second);
    CHECK(excluded.count(hits[r].item_id) == 0);
    CHECK(hits[r].interest < user.active);
    if (r > 0) CHECK(hits[r - 1].score >= hits[r].score);
  }
}

}  // namespace

TEST_CASE("pipeline/multi_interest_recall: exact search over 20000 items equals the PyTorch merge") {
  for (const std::string& name : big_fixture_names()) {
    CAPTURE(name);
    BigFixture fixture = load_big_fixture(name);
    reclite::pipeline::MultiInterestScratch scratch;
    MultiInterestOptions options;
    options.k = fixture.k;
    std::size_t swapped = 0;
    for (std::size_t u = 0; u < fixture.users.size(); ++u) {
      CAPTURE(u);
      const FixtureUser& user = fixture.users[u];
      const std::vector<InterestHit> hits = recall_of(fixture.exact, fixture, user, options, scratch);
      REQUIRE(hits.size() == user.want_ids.size());
      check_well_formed(hits, user);
      for (std::size_t r = 0; r < hits.size(); ++r) {
        CAPTURE(r);
        CHECK(std::fabs(hits[r].score - user.want_scores[r]) <= 1e-5);
        if (hits[r].item_id != user.want_ids[r]) {
          // Only a near-tie may swap neighbours (float32 scores here, float64 in PyTorch).
          const auto& s = user.want_scores;
          CHECK(((r > 0 && s[r - 1] - s[r] <= 1e-5) || (r + 1 < s.size() && s[r] - s[r + 1] <= 1e-5)));
          ++swapped;
        }
      }
    }
    MESSAGE(name << ": near-tie swaps against PyTorch over " << fixture.users.size() << " users: " << swapped);
  }
}

TEST_CASE("pipeline/multi_interest_recall: hnsw at the default ef recovers 0.97 of the exact merge") {
  for (const std::string& name : big_fixture_names()) {
    CAPTURE(name);
    BigFixture fixture = load_big_fixture(name);
    const reclite::index::HnswIndex& hnsw = fixture.hnsw;
    REQUIRE(hnsw.ef() == hnsw.default_ef());
    reclite::pipeline::MultiInterestScratch scratch;
    MultiInterestOptions options;
    options.k = fixture.k;  // per-interest depth 0: k, as served
    double total = 0, worst = 1;
    std::size_t users_with_misses = 0, widest_beam = 0;
    for (std::size_t u = 0; u < fixture.users.size(); ++u) {
      CAPTURE(u);
      const FixtureUser& user = fixture.users[u];
      const std::vector<InterestHit> hits = recall_of(hnsw, fixture, user, options, scratch);
      CHECK(hits.size() == user.want_ids.size());
      check_well_formed(hits, user);
      const double recall = overlap(hits, user.want_ids);
      total += recall;
      worst = std::min(worst, recall);
      users_with_misses += recall < 1.0;
      // hnswlib searches with a beam of max(ef, k + excluded) (hnsw_index.hpp asks for the excluded ones too).
      widest_beam = std::max(widest_beam, std::max(hnsw.ef(), options.k + user.excluded.size()));
    }
    const double mean = total / double(fixture.users.size());
    MESSAGE(name << ": mean recall@" << options.k << " of the hnsw merge vs PyTorch's exact merge " << mean
                 << " (worst user " << worst << ") at ef " << hnsw.ef() << " over " << hnsw.size() << " items, "
                 << fixture.users.size() << " users, " << users_with_misses << " of them with a miss");
    CHECK(mean >= recall_bar);
    // Not an exhaustive search in disguise: the beam is a small part of the catalogue, and results do differ.
    CHECK(widest_beam * 20 <= hnsw.size());
    CHECK(users_with_misses >= 1);
  }
}

TEST_CASE("pipeline/multi_interest_recall: hnsw with a quota keeps every interest under it") {
  const std::string name = "mind_deepmatch_head";  // several interests per user (SDM has one)
  BigFixture fixture = load_big_fixture(name);
  reclite::pipeline::MultiInterestScratch scratch;
  MultiInterestOptions options;
  options.k = fixture.k;
  options.quota = fixture.k / 4;
  std::size_t binding = 0;  // users whose unrestricted merge takes more than the quota from one interest
  double total = 0;
  for (std::size_t u = 0; u < fixture.users.size(); ++u) {
    CAPTURE(u);
    const FixtureUser& user = fixture.users[u];
    MultiInterestOptions unlimited = options;
    unlimited.quota = 0;
    std::vector<std::size_t> free_counts(user.active, 0), counts(user.active, 0);
    for (const InterestHit& hit : recall_of(fixture.hnsw, fixture, user, unlimited, scratch)) ++free_counts[hit.interest];
    binding += *std::max_element(free_counts.begin(), free_counts.end()) > options.quota;

    const std::vector<InterestHit> hits = recall_of(fixture.hnsw, fixture, user, options, scratch);
    check_well_formed(hits, user);
    for (const InterestHit& hit : hits) ++counts[hit.interest];
    for (std::size_t interest = 0; interest < user.active; ++interest) {
      CAPTURE(interest);
      CHECK(counts[interest] <= options.quota);
    }
    // The same quota over exact search: the hnsw path must find nearly the same items.
    total += overlap(hits, [&] {
      std::vector<std::int64_t> ids;
      for (const InterestHit& hit : recall_of(fixture.exact, fixture, user, options, scratch)) ids.push_back(hit.item_id);
      return ids;
    }());
  }
  const double mean = total / double(fixture.users.size());
  MESSAGE(name << ": with quota " << options.quota << ", mean overlap of the hnsw and exact merges " << mean << "; the quota binds for "
               << binding << " of " << fixture.users.size() << " users");
  CHECK(binding >= 10);  // else the quota checks above prove nothing
  CHECK(mean >= recall_bar);
}
