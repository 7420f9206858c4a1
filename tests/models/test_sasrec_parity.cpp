// Golden parity for SASRec: every fixture the converter wrote from library-style PyTorch modules (RecBole, pmixer
// V1/V2/V3 post- and pre-LN, torch-rechub; random and trained weights; fixtures/sasrec) gives the same user vector
// as PyTorch within the fixture's tolerance, by full encode and by incremental appends, and the same exact
// top-100 through ExactIndex over the model's item vectors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "reclite/index/exact_search.hpp"
#include "reclite/reclite.hpp"
#include "support/check.hpp"
#include "support/fixtures.hpp"

namespace {

// The fixtures exist once the converter's module does (ctest fixtures/sasrec writes them before this runs).
bool sasrec_fixtures_expected() {
  std::ifstream module(std::string(RECLITE_SOURCE_DIR) + "/converters/reclite_convert/sasrec_fixtures.py");
  return module.good();
}

std::vector<std::string> sasrec_fixture_names() {
  if (!sasrec_fixtures_expected()) {
    MESSAGE("converters/reclite_convert/sasrec_fixtures.py is absent: SASRec fixture parity skipped");
    return {};
  }
  std::vector<std::string> names;
  const tool::Json manifest = test::read_json_fixture("sasrec/manifest.json");
  for (const auto& item : manifest.find("fixtures")->items) names.push_back(item.text);
  REQUIRE(!names.empty());
  return names;
}

reclite::Model load_fixture(const std::string& name) {
  reclite::LoadOptions options;
  options.run_self_test = true;  // embedded samples, if any, must pass on load
  auto loaded = reclite::Model::load(test::fixture_path("sasrec/" + name + ".reclite"), options);
  REQUIRE_MESSAGE(loaded, name << ": " << (loaded ? "" : loaded.error().describe()));
  return std::move(*loaded);
}

std::vector<std::int64_t> history_of(const tool::Json& user) {
  std::vector<std::int64_t> ids;
  for (const auto& item : user.find("history")->items) ids.push_back(static_cast<std::int64_t>(item.number));
  return ids;
}

}  // namespace

TEST_CASE("models/sasrec_parity: user vectors equal PyTorch for every variant and history length") {
  std::size_t variants_seen = 0;
  for (const std::string& name : sasrec_fixture_names()) {
    CAPTURE(name);
    reclite::Model model = load_fixture(name);
    const tool::Json expected = test::read_json_fixture("sasrec/" + name + ".expected.json");
    const double tolerance = expected.find("tolerance")->number;
    const auto window = static_cast<std::size_t>(expected.find("max_length")->number);
    CHECK(model.user_fields()[0]->name == expected.find("history_field")->text);
    reclite::Session session(model);
    std::vector<std::size_t> lengths;
    for (const auto& user : expected.find("users")->items) {
      const std::vector<std::int64_t> history = history_of(user);
      lengths.push_back(history.size());
      CAPTURE(history.size());
      const std::vector<float> want = test::float_array(*user.find("user_vector"));
      REQUIRE(want.size() == model.user_dim());
      std::vector<float> got = test::nan_filled(want.size());
      reclite::FieldInput field;
      field.ids = reclite::Span<const std::int64_t>(history.data(), history.size());
      auto done = session.encode_user(reclite::Span<const reclite::FieldInput>(&field, 1),
                                      reclite::Span<float>(got.data(), want.size()));
      REQUIRE_MESSAGE(done, (done ? "" : done.error().describe()));
      CHECK(test::max_abs_error(got, want, want.size()) <= tolerance);
      CHECK(std::isnan(got[want.size()]));
      CHECK(session.last_stats().history_ids_truncated == (history.size() > window ? history.size() - window : 0));
    }
    for (std::size_t length : {std::size_t{1}, std::size_t{2}, window - 1, window, window + 7})
      CHECK_MESSAGE(std::find(lengths.begin(), lengths.end(), length) != lengths.end(), "no user of length " << length);
    ++variants_seen;
  }
  if (sasrec_fixtures_expected()) CHECK(variants_seen >= 12);  // six variants, random and trained
}

TEST_CASE("models/sasrec_parity: appending a history one event at a time reaches PyTorch's vector") {
  for (const std::string& name : sasrec_fixture_names()) {
    CAPTURE(name);
    reclite::Model model = load_fixture(name);
    const tool::Json expected = test::read_json_fixture("sasrec/" + name + ".expected.json");
    const double tolerance = expected.find("tolerance")->number;
    auto sequences = reclite::SequenceSession::create(model);
    REQUIRE(sequences);
    for (const auto& user : expected.find("users")->items) {
      const std::vector<std::int64_t> history = history_of(user);
      CAPTURE(history.size());
      auto state = sequences->start({});
      REQUIRE(state);
      for (std::int64_t id : history) REQUIRE(sequences->append(*state, id));
      const std::vector<float> want = test::float_array(*user.find("user_vector"));
      REQUIRE(state->has_user_vector());
      CHECK(test::max_abs_error(state->user_vector().data(), want, want.size()) <= tolerance);
      // And the state survives serialisation.
      auto restored = sequences->restore(state->serialize());
      REQUIRE(restored);
      CHECK(test::max_abs_error(restored->user_vector().data(), want, want.size()) <= tolerance);
    }
  }
}

TEST_CASE("models/sasrec_parity: exact top-100 over the catalogue equals PyTorch") {
  for (const std::string& name : sasrec_fixture_names()) {
    CAPTURE(name);
    reclite::Model model = load_fixture(name);
    const tool::Json expected = test::read_json_fixture("sasrec/" + name + ".expected.json");
    REQUIRE(model.item_vectors() != nullptr);
    auto exact = reclite::index::ExactIndex::create(
        model.item_vectors(), model.catalogue().size(), model.item_dim(),
        reclite::Span<const std::int64_t>(model.catalogue().external_ids(), model.catalogue().size()));
    REQUIRE(exact);
    reclite::Session session(model);
    const auto& users = expected.find("users")->items;
    for (const auto& top : expected.find("top_k")->items) {
      const auto user = static_cast<std::size_t>(top.find("user")->number);
      CAPTURE(user);
      const std::vector<std::int64_t> history = history_of(users[user]);
      reclite::FieldInput field;
      field.ids = reclite::Span<const std::int64_t>(history.data(), history.size());
      std::vector<float> vector(model.user_dim());
      REQUIRE(session.encode_user(reclite::Span<const reclite::FieldInput>(&field, 1), vector));
      const auto k = static_cast<std::size_t>(top.find("k")->number);
      std::vector<reclite::index::SearchHit> hits(k);
      auto found = exact->search_top_k(vector.data(), k, {}, hits);
      REQUIRE(found);
      const auto& want_ids = top.find("item_ids")->items;
      const std::vector<float> want_scores = test::float_array(*top.find("scores"));
      REQUIRE(*found == want_ids.size());
      for (std::size_t r = 0; r < *found; ++r) {
        const auto want_id = static_cast<std::int64_t>(want_ids[r].number);
        CHECK(std::fabs(hits[r].score - want_scores[r]) <= 1e-4);
        if (hits[r].item_id == want_id) continue;
        // Only a near tie may order differently from PyTorch's float64 scores.
        const bool near_tie = (r > 0 && std::fabs(want_scores[r] - want_scores[r - 1]) < 1e-5f) ||
                              (r + 1 < *found && std::fabs(want_scores[r] - want_scores[r + 1]) < 1e-5f);
        CAPTURE(r);
        CHECK_MESSAGE(near_tie, "rank " << r << ": got " << hits[r].item_id << ", PyTorch " << want_id);
      }
    }
  }
}
