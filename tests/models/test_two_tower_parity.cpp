// Golden parity: every fixture the converter wrote from the PyTorch reference modules (random and trained weights,
// our layout and torch-rechub's) gives the same user vectors, item vectors and exact top-100 as PyTorch.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "reclite/index/exact_search.hpp"
#include "reclite/reclite.hpp"
#include "request_json.hpp"
#include "support/check.hpp"
#include "support/fixtures.hpp"

namespace {

reclite::Model load_fixture(const std::string& name) {
  reclite::LoadOptions options;
  options.run_self_test = true;  // every fixture's embedded samples must pass on load
  auto loaded = reclite::Model::load(test::fixture_path(name + ".reclite"), options);
  REQUIRE_MESSAGE(loaded, name << ": " << (loaded ? "" : loaded.error().describe()));
  return std::move(*loaded);
}

}  // namespace

TEST_CASE("models/two_tower: user vectors equal PyTorch within 1e-5 for every fixture") {
  for (const std::string& name : test::fixture_names()) {
    CAPTURE(name);
    reclite::Model model = load_fixture(name);
    const tool::Json expected = test::read_json_fixture(name + ".expected.json");
    reclite::Session session(model);
    const auto& users = expected.find("users")->items;
    REQUIRE(users.size() >= 6);
    for (std::size_t u = 0; u < users.size(); ++u) {
      CAPTURE(u);
      tool::RequestBuffers buffers;
      auto built = tool::build_request(model, *users[u].find("request"), buffers);
      REQUIRE_MESSAGE(built, (built ? "" : built.error().describe()));
      std::vector<float> want = test::float_array(*users[u].find("user_vector"));
      REQUIRE(want.size() == model.user_dim() * model.user_vector_count());
      std::vector<float> got = test::nan_filled(want.size());
      auto done = session.encode_user(buffers.fields, reclite::Span<float>(got.data(), want.size()));
      REQUIRE_MESSAGE(done, (done ? "" : done.error().describe()));
      CHECK(test::max_abs_error(got, want, want.size()) <= test::tolerance::pytorch_parity.absolute);
      CHECK(std::isnan(got[want.size()]));  // guard untouched
    }
  }
}

TEST_CASE("models/two_tower: item vectors equal PyTorch computed on the device and precomputed") {
  for (const std::string& name : test::fixture_names()) {
    CAPTURE(name);
    reclite::Model model = load_fixture(name);
    const tool::Json expected = test::read_json_fixture(name + ".expected.json");
    reclite::Session session(model);
    REQUIRE(model.item_vectors() != nullptr);
    for (const auto& item : expected.find("items")->items) {
      const auto item_id = static_cast<std::int64_t>(item.find("item_id")->number);
      CAPTURE(item_id);
      std::vector<float> want = test::float_array(*item.find("item_vector"));
      REQUIRE(want.size() == model.item_dim());
      std::vector<float> got = test::nan_filled(want.size());
      auto done = session.encode_item(item_id, reclite::Span<float>(got.data(), want.size()));
      REQUIRE_MESSAGE(done, (done ? "" : done.error().describe()));
      CHECK(test::max_abs_error(got, want, want.size()) <= test::tolerance::pytorch_parity.absolute);
      const std::int64_t entry = model.catalogue().find_entry(item_id);
      REQUIRE(entry >= 0);
      const float* stored = model.item_vectors() + static_cast<std::size_t>(entry) * model.item_dim();
      CHECK(test::max_abs_error(stored, want, want.size()) <= test::tolerance::pytorch_parity.absolute);
    }
  }
}

TEST_CASE("models/two_tower: exact top-100 over the catalogue equals PyTorch") {
  for (const std::string& name : test::fixture_names()) {
    CAPTURE(name);
    reclite::Model model = load_fixture(name);
    const tool::Json expected = test::read_json_fixture(name + ".expected.json");
    reclite::Session session(model);
    auto exact = reclite::index::ExactIndex::create(
        model.item_vectors(), model.catalogue().size(), model.item_dim(),
        reclite::Span<const std::int64_t>(model.catalogue().external_ids(), model.catalogue().size()));
    REQUIRE(exact);
    const auto& users = expected.find("users")->items;
    for (const auto& top : expected.find("top_k")->items) {
      const auto user = static_cast<std::size_t>(top.find("user")->number);
      CAPTURE(user);
      tool::RequestBuffers buffers;
      REQUIRE(tool::build_request(model, *users[user].find("request"), buffers));
      std::vector<float> vector(model.user_dim());
      REQUIRE(session.encode_user(buffers.fields, vector));
      const std::size_t k = static_cast<std::size_t>(top.find("k")->number);
      std::vector<reclite::index::SearchHit> hits(k);
      auto found = exact->search_top_k(vector.data(), k, {}, hits);
      REQUIRE(found);
      const auto& want_ids = top.find("item_ids")->items;
      const std::vector<float> want_scores = test::float_array(*top.find("scores"));
      REQUIRE(*found == want_ids.size());
      std::size_t mismatches = 0;
      for (std::size_t r = 0; r < *found; ++r) {
        const auto want_id = static_cast<std::int64_t>(want_ids[r].number);
        if (hits[r].item_id == want_id) continue;
        // Only an exact tie in float32 may order differently from PyTorch's float64 scores: both neighbours'
        // scores must agree to within float32 rounding of the dot product.
        const bool near_tie = (r > 0 && std::fabs(want_scores[r] - want_scores[r - 1]) < 1e-6f) ||
                              (r + 1 < *found && std::fabs(want_scores[r] - want_scores[r + 1]) < 1e-6f);
        if (!near_tie) ++mismatches;
        CAPTURE(r);
        CHECK_MESSAGE(near_tie, "rank " << r << ": got " << hits[r].item_id << ", PyTorch " << want_id);
      }
      CHECK(mismatches == 0);
      for (std::size_t r = 0; r < *found; ++r) CHECK(std::fabs(hits[r].score - want_scores[r]) <= 1e-5);
    }
  }
}

TEST_CASE("models/two_tower: the second request allocates no session memory and stats report the history") {
  reclite::Model model = load_fixture("youtube_dnn_trained");
  const tool::Json expected = test::read_json_fixture("youtube_dnn_trained.expected.json");
  const auto& users = expected.find("users")->items;
  reclite::Session session(model);
  tool::RequestBuffers buffers;
  // users[5] has max_length + 7 history ids (see fixtures.py): the oldest 7 are truncated.
  REQUIRE(tool::build_request(model, *users[5].find("request"), buffers));
  std::vector<float> vector(model.user_dim());
  REQUIRE(session.encode_user(buffers.fields, vector));
  CHECK(session.last_stats().history_ids_truncated == 7);
  CHECK(session.last_stats().history_ids_unknown == 0);
}
