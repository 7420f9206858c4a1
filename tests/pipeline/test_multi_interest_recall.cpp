// Multi-interest recall: the merge of one query per active interest equals the exact merge the converter wrote
// for every MIND fixture user (ids, and the interest of each item), and a hand-made case pins down ties, seen
// items, duplicates and quotas.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "models/multi_interest_fixtures.hpp"
#include "reclite/index/exact_search.hpp"
#include "reclite/pipeline/multi_interest_recall.hpp"
#include "reclite/reclite.hpp"
#include "request_json.hpp"
#include "support/fixtures.hpp"

using reclite::pipeline::InterestHit;

TEST_CASE("pipeline/multi_interest_recall: the merge equals the fixtures' exact top 100 with interests") {
  for (const char* architecture : {"mind", "sdm"}) {
    for (const std::string& name : test::multi_interest_fixtures(architecture)) {
      CAPTURE(name);
      reclite::Model model = test::load_multi_interest(name);
      const tool::Json expected = test::read_json_fixture("multi_interest/" + name + ".expected.json");
      REQUIRE(model.item_vectors() != nullptr);
      const std::size_t dim = model.item_dim(), entries = model.catalogue().size();
      auto exact = reclite::index::ExactIndex::create(
          model.item_vectors(), entries, dim, reclite::Span<const std::int64_t>(model.catalogue().external_ids(), entries));
      REQUIRE(exact);
      reclite::Session session(model);
      reclite::pipeline::MultiInterestScratch scratch;
      const auto& users = expected.find("users")->items;
      for (const auto& top : expected.find("top_k")->items) {
        const auto user = static_cast<std::size_t>(top.find("user")->number);
        CAPTURE(user);
        tool::RequestBuffers request;
        REQUIRE(tool::build_request(model, *users[user].find("request"), request));
        std::vector<float> interests(model.user_dim() * model.user_vector_count());
        REQUIRE(session.encode_user(request.fields, interests));
        const std::size_t active = session.last_stats().active_interests;
        const auto k = static_cast<std::size_t>(top.find("k")->number);
        reclite::pipeline::MultiInterestOptions options;
        options.k = k;
        std::vector<InterestHit> hits(k);
        auto found = reclite::pipeline::multi_interest_recall(*exact, interests.data(), active, dim, {}, options, scratch, hits);
        REQUIRE(found);
        const auto& want_ids = top.find("item_ids")->items;
        const auto& want_interests = top.find("interest_of_item")->items;
        const std::vector<float> want_scores = test::float_array(*top.find("scores"));
        REQUIRE(*found == want_ids.size());
        std::size_t mismatched = 0;
        for (std::size_t r = 0; r < *found; ++r) {
          CAPTURE(r);
          CHECK(std::fabs(hits[r].score - want_scores[r]) <= 1e-5);
          if (hits[r].item_id != static_cast<std::int64_t>(want_ids[r].number)) {
            // Only a near-tie may swap neighbours (float32 scores here, float64 in the fixture).
            const bool tie = (r > 0 && want_scores[r - 1] - want_scores[r] <= 1e-5) ||
                             (r + 1 < *found && want_scores[r] - want_scores[r + 1] <= 1e-5);
            CHECK(tie);
            ++mismatched;
            continue;
          }
          if (hits[r].interest != static_cast<std::uint32_t>(want_interests[r].number)) {
            // Only a near-tie between two interests may pick the other one.
            const float* item = model.item_vectors() + hits[r].entry * dim;
            const std::size_t other = static_cast<std::size_t>(want_interests[r].number);
            double mine = 0, theirs = 0;
            for (std::size_t d = 0; d < dim; ++d) {
              mine += double(interests[hits[r].interest * dim + d]) * item[d];
              theirs += double(interests[other * dim + d]) * item[d];
            }
            CHECK(std::fabs(mine - theirs) <= 1e-5);
          }
        }
        CHECK(mismatched <= 2);
      }
    }
  }
}

namespace {
// Six items in 2-D; two interests along the axes.
struct Toy {
  std::vector<float> vectors = {1.0f, 0.0f,   // 100: interest 0 scores 1
                                0.0f, 1.0f,   // 101: interest 1 scores 1
                                0.9f, 0.1f,   // 102
                                0.5f, 0.5f,   // 103: both interests score 0.5 (tie: interest 0)
                                0.1f, 0.8f,   // 104
                                0.7f, 0.0f};  // 105
  std::vector<std::int64_t> ids = {100, 101, 102, 103, 104, 105};
  std::vector<float> interests = {1.0f, 0.0f, 0.0f, 1.0f};
};
}  // namespace

TEST_CASE("pipeline/multi_interest_recall: ties duplicates exclusions and quotas") {
  Toy toy;
  auto exact = reclite::index::ExactIndex::create(toy.vectors.data(), 6, 2, toy.ids);
  REQUIRE(exact);
  reclite::pipeline::MultiInterestScratch scratch;
  reclite::pipeline::MultiInterestOptions options;
  options.k = 6;
  std::vector<InterestHit> hits(6);
  auto found = reclite::pipeline::multi_interest_recall(*exact, toy.interests.data(), 2, 2, {}, options, scratch, hits);
  REQUIRE(found);
  REQUIRE(*found == 6);  // each item once, though both queries return all six
  // Scores: 100 (1, i0), 101 (1, i1), 102 (0.9, i0), 104 (0.8, i1), 105 (0.7, i0), 103 (0.5, tie -> i0).
  const std::int64_t want_ids[] = {100, 101, 102, 104, 105, 103};
  const std::uint32_t want_interests[] = {0, 1, 0, 1, 0, 0};
  for (std::size_t r = 0; r < 6; ++r) {
    CAPTURE(r);
    CHECK(hits[r].item_id == want_ids[r]);
    CHECK(hits[r].interest == want_interests[r]);
  }

  // Seen items are excluded from every interest's query.
  const std::vector<std::int64_t> seen = {100, 104};
  found = reclite::pipeline::multi_interest_recall(*exact, toy.interests.data(), 2, 2, seen, options, scratch, hits);
  REQUIRE(found);
  REQUIRE(*found == 4);
  CHECK(hits[0].item_id == 101);
  CHECK(hits[1].item_id == 102);
  CHECK(hits[2].item_id == 105);
  CHECK(hits[3].item_id == 103);

  // A quota of 2 per interest: interest 0 gives 100, 102; interest 1 gives 101, 104; 105 and 103 are cut.
  options.quota = 2;
  found = reclite::pipeline::multi_interest_recall(*exact, toy.interests.data(), 2, 2, {}, options, scratch, hits);
  REQUIRE(found);
  REQUIRE(*found == 4);
  CHECK(hits[0].item_id == 100);
  CHECK(hits[1].item_id == 101);
  CHECK(hits[2].item_id == 102);
  CHECK(hits[3].item_id == 104);

  // Only the active interests are queried; k bounds the result.
  options.quota = 0;
  options.k = 3;
  found = reclite::pipeline::multi_interest_recall(*exact, toy.interests.data(), 1, 2, {}, options, scratch, hits);
  REQUIRE(found);
  REQUIRE(*found == 3);
  CHECK(hits[0].item_id == 100);
  CHECK(hits[1].item_id == 102);
  CHECK(hits[2].item_id == 105);
  for (std::size_t r = 0; r < 3; ++r) CHECK(hits[r].interest == 0);

  auto wrong_dim = reclite::pipeline::multi_interest_recall(*exact, toy.interests.data(), 2, 3, {}, options, scratch, hits);
  REQUIRE(!wrong_dim);
  CHECK(wrong_dim.error().code == reclite::ErrorCode::invalid_argument);
  auto null = reclite::pipeline::multi_interest_recall(*exact, static_cast<const float*>(nullptr), 2, 2, {}, options,
                                                       scratch, hits);
  REQUIRE(!null);
  CHECK(null.error().code == reclite::ErrorCode::invalid_argument);
}
