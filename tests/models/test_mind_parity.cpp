// Golden parity for MIND: every fixture the converter wrote from the reference module (DeepMatch <= 0.2.0 and
// HEAD, fun-rec, torch-rechub converted through its own layout, ours; random and trained weights) gives the same
// K interests and the same K' as PyTorch for every history length (0, 1, 2, 3, 4, 7, 8, T, T + 5), and the same
// label-aware vector for a known target. Bad requests fail with the codes docs/errors.md gives.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "models/multi_interest_fixtures.hpp"
#include "reclite/reclite.hpp"
#include "request_json.hpp"
#include "support/check.hpp"
#include "support/fixtures.hpp"

TEST_CASE("models/mind_parity: interests and active counts equal PyTorch for every variant and history length") {
  std::size_t fixtures = 0;
  for (const std::string& name : test::multi_interest_fixtures("mind")) {
    CAPTURE(name);
    reclite::Model model = test::load_multi_interest(name);
    const tool::Json expected = test::read_json_fixture("multi_interest/" + name + ".expected.json");
    const double tolerance = expected.find("tolerance")->number;
    REQUIRE(model.architecture() == reclite::Architecture::mind);
    REQUIRE(model.user_vector_count() == static_cast<std::size_t>(expected.find("interests")->number));
    REQUIRE(model.user_dim() == static_cast<std::size_t>(expected.find("user_dim")->number));
    reclite::Session session(model);
    std::size_t index = 0;
    for (const auto& user : expected.find("users")->items) {
      CAPTURE(index);
      tool::RequestBuffers request;
      auto built = tool::build_request(model, *user.find("request"), request);
      REQUIRE_MESSAGE(built, (built ? "" : built.error().describe()));
      const std::vector<float> want = test::expected_interests(user);
      REQUIRE(want.size() == model.user_dim() * model.user_vector_count());
      std::vector<float> got = test::nan_filled(want.size());
      auto done = session.encode_user(request.fields, reclite::Span<float>(got.data(), want.size()));
      REQUIRE_MESSAGE(done, (done ? "" : done.error().describe()));
      CHECK(test::max_abs_error(got, want, want.size()) <= tolerance);
      CHECK(std::isnan(got[want.size()]));
      CHECK(session.last_stats().active_interests == static_cast<std::size_t>(user.find("active_interests")->number));
      ++index;
    }
    CHECK(index == 9);
    ++fixtures;
  }
  CHECK(fixtures == 10);
}

TEST_CASE("models/mind_parity: label-aware attention equals PyTorch for a known target") {
  for (const std::string& name : test::multi_interest_fixtures("mind")) {
    CAPTURE(name);
    reclite::Model model = test::load_multi_interest(name);
    const tool::Json expected = test::read_json_fixture("multi_interest/" + name + ".expected.json");
    const double tolerance = expected.find("tolerance")->number;
    reclite::Session session(model);
    const auto& users = expected.find("users")->items;
    for (const auto& entry : expected.find("label_aware")->items) {
      const auto user = static_cast<std::size_t>(entry.find("user")->number);
      CAPTURE(user);
      tool::RequestBuffers request;
      REQUIRE(tool::build_request(model, *users[user].find("request"), request));
      const std::vector<float> want = test::float_array(*entry.find("user_vector"));
      std::vector<float> got = test::nan_filled(want.size());
      const auto item = static_cast<std::int64_t>(entry.find("item_id")->number);
      auto done = session.label_aware_vector(request.fields, item, reclite::Span<float>(got.data(), want.size()));
      REQUIRE_MESSAGE(done, (done ? "" : done.error().describe()));
      CHECK(test::max_abs_error(got, want, want.size()) <= tolerance);
      CHECK(std::isnan(got[want.size()]));
    }
  }
}

namespace {
struct MindRequest {
  std::vector<std::vector<std::int64_t>> ids;
  std::vector<std::vector<float>> values;
  std::vector<reclite::FieldInput> fields;
};

// A valid request for `model` with `length` behaviours (catalogue items, category 1), user ids 0.
MindRequest make_request(const reclite::Model& model, std::size_t length) {
  MindRequest request;
  const auto& fields = model.user_fields();
  request.ids.resize(fields.size());
  request.values.resize(fields.size());
  for (std::size_t f = 0; f < fields.size(); ++f) {
    const auto& field = *fields[f];
    if (field.kind == reclite::format::FieldKind::history) {
      for (std::size_t i = 0; i < length; ++i)
        request.ids[f].push_back(field.ids == reclite::format::IdSpace::item
                                     ? model.catalogue().external_id(i % model.catalogue().size())
                                     : 1);
    } else if (field.kind == reclite::format::FieldKind::categorical) {
      request.ids[f].push_back(0);
    } else {
      request.values[f].assign(field.width, 0.5f);
    }
  }
  for (std::size_t f = 0; f < fields.size(); ++f) {
    reclite::FieldInput input;
    input.ids = reclite::Span<const std::int64_t>(request.ids[f].data(), request.ids[f].size());
    input.values = reclite::Span<const float>(request.values[f].data(), request.values[f].size());
    request.fields.push_back(input);
  }
  return request;
}

// Points each field at its ids again after a test edited them.
void repoint(MindRequest& request) {
  for (std::size_t f = 0; f < request.fields.size(); ++f)
    request.fields[f].ids = reclite::Span<const std::int64_t>(request.ids[f].data(), request.ids[f].size());
}
}  // namespace

TEST_CASE("models/mind: history lengths 0 1 2 and beyond max_length are served with K' = floor(log2(n + 1))") {
  reclite::Model model = test::load_multi_interest("mind_reclite_random");
  reclite::Session session(model);
  std::vector<float> vectors(model.user_dim() * model.user_vector_count());
  const std::size_t window = model.file().mind()->max_length;
  const std::size_t lengths[] = {0, 1, 2, 3, 7, window, window + 13};
  const std::size_t want_active[] = {1, 1, 1, 2, 3, 4, 4};
  for (std::size_t i = 0; i < 7; ++i) {
    CAPTURE(lengths[i]);
    MindRequest request = make_request(model, lengths[i]);
    REQUIRE(session.encode_user(request.fields, vectors));
    CHECK(session.last_stats().active_interests == want_active[i]);
    CHECK(session.last_stats().history_ids_truncated == (lengths[i] > window ? lengths[i] - window : 0));
    for (std::size_t k = want_active[i]; k < model.user_vector_count(); ++k)  // masked interests are zeros
      for (std::size_t d = 0; d < model.user_dim(); ++d) CHECK(vectors[k * model.user_dim() + d] == 0.0f);
    for (float value : vectors) CHECK(std::isfinite(value));
  }
}

TEST_CASE("models/mind: a behaviour with an unknown id in any history field is skipped in every field") {
  reclite::Model model = test::load_multi_interest("mind_reclite_random");
  reclite::Session session(model);
  const std::size_t size = model.user_dim() * model.user_vector_count();
  const std::size_t window = model.file().mind()->max_length;
  REQUIRE(model.user_fields()[0]->name == "history");
  REQUIRE(model.user_fields()[1]->name == "history_category");
  auto encode = [&](MindRequest& request) {
    repoint(request);
    std::vector<float> vectors(size);
    auto done = session.encode_user(request.fields, vectors);
    REQUIRE_MESSAGE(done, (done ? "" : done.error().describe()));
    return vectors;
  };

  MindRequest known = make_request(model, 4);  // behaviours 0, 1, 2, 3 without 1
  for (std::size_t f = 0; f < 2; ++f) known.ids[f].erase(known.ids[f].begin() + 1);
  const std::vector<float> want = encode(known);
  const std::size_t want_active = session.last_stats().active_interests;
  CHECK(want_active == 2);  // K' of 3 behaviours

  MindRequest unknown_item = make_request(model, 4);
  unknown_item.ids[0][1] = 7001;  // odd: no item has it
  CHECK(encode(unknown_item) == want);
  CHECK(session.last_stats().history_ids_unknown == 1);
  CHECK(session.last_stats().history_ids_used == 3);
  CHECK(session.last_stats().active_interests == want_active);

  MindRequest unknown_category = make_request(model, 4);
  unknown_category.ids[1][1] = 13;  // categories are 0..12
  CHECK(encode(unknown_category) == want);
  CHECK(session.last_stats().history_ids_unknown == 1);

  // Unknown newest behaviours leave room for older known ones: nothing is truncated.
  MindRequest full = make_request(model, window);
  const std::vector<float> want_full = encode(full);
  MindRequest longer = make_request(model, window + 2);
  longer.ids[0][window] = 7001;
  longer.ids[1][window + 1] = -1;
  CHECK(encode(longer) == want_full);
  CHECK(session.last_stats().history_ids_unknown == 2);
  CHECK(session.last_stats().history_ids_truncated == 0);
  longer.ids[0][window] = model.catalogue().external_id(3);  // now one known behaviour too many
  encode(longer);
  CHECK(session.last_stats().history_ids_unknown == 1);
  CHECK(session.last_stats().history_ids_truncated == 1);

  // Only unknown behaviours: served as the empty history (all-padding window, K' = 1).
  MindRequest empty = make_request(model, 0);
  const std::vector<float> want_empty = encode(empty);
  MindRequest all_unknown = make_request(model, 3);
  for (auto& id : all_unknown.ids[0]) id = 7001;
  CHECK(encode(all_unknown) == want_empty);
  CHECK(session.last_stats().active_interests == 1);
  CHECK(session.last_stats().history_ids_unknown == 3);
}

TEST_CASE("models/mind: mismatched history lengths, missing fields and small outputs are refused") {
  reclite::Model model = test::load_multi_interest("mind_reclite_random");
  reclite::Session session(model);
  std::vector<float> vectors(model.user_dim() * model.user_vector_count());
  reclite::Result<void> refused;

  MindRequest mismatched = make_request(model, 4);
  mismatched.fields[1].ids = reclite::Span<const std::int64_t>(mismatched.ids[1].data(), 3);
  refused = session.encode_user(mismatched.fields, vectors);
  REQUIRE(!refused);
  CHECK(refused.error().code == reclite::ErrorCode::invalid_argument);
  CHECK(refused.error().message.find("has 3 ids") != std::string::npos);

  MindRequest missing = make_request(model, 4);
  refused = session.encode_user(reclite::Span<const reclite::FieldInput>(missing.fields.data(), 1), vectors);
  REQUIRE(!refused);
  CHECK(refused.error().code == reclite::ErrorCode::invalid_argument);

  MindRequest fine = make_request(model, 4);
  std::vector<float> small(model.user_dim());  // one vector is not enough for K interests
  refused = session.encode_user(fine.fields, small);
  REQUIRE(!refused);
  CHECK(refused.error().code == reclite::ErrorCode::output_size);

  std::vector<float> label(model.user_dim());
  refused = session.label_aware_vector(fine.fields, 7001, label);
  REQUIRE(!refused);
  CHECK(refused.error().code == reclite::ErrorCode::feature_out_of_vocabulary);
}
