// Golden parity for SDM (DeepMatch semantics: TF1 gate order, run-time forget bias, two layers of one shared
// cell with a residual, masked MHSA, LayerNorm eps 1e-9, user attention with the mean over all short rows, gate,
// l2): every fixture user, over (short, long) lengths from (0, 0) to beyond both windows, gives PyTorch's user
// vector; bad requests fail with the codes docs/errors.md gives.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "models/multi_interest_fixtures.hpp"
#include "reclite/reclite.hpp"
#include "request_json.hpp"
#include "support/check.hpp"
#include "support/fixtures.hpp"

TEST_CASE("models/sdm_parity: user vectors equal PyTorch for every short and long length") {
  std::size_t fixtures = 0;
  for (const std::string& name : test::multi_interest_fixtures("sdm")) {
    CAPTURE(name);
    reclite::Model model = test::load_multi_interest(name);
    const tool::Json expected = test::read_json_fixture("multi_interest/" + name + ".expected.json");
    const double tolerance = expected.find("tolerance")->number;
    REQUIRE(model.architecture() == reclite::Architecture::sdm);
    REQUIRE(model.user_vector_count() == 1);
    REQUIRE(model.user_dim() == static_cast<std::size_t>(expected.find("user_dim")->number));
    reclite::Session session(model);
    std::size_t index = 0;
    for (const auto& user : expected.find("users")->items) {
      CAPTURE(index);
      tool::RequestBuffers request;
      auto built = tool::build_request(model, *user.find("request"), request);
      REQUIRE_MESSAGE(built, (built ? "" : built.error().describe()));
      const std::vector<float> want = test::expected_interests(user);
      REQUIRE(want.size() == model.user_dim());
      std::vector<float> got = test::nan_filled(want.size());
      auto done = session.encode_user(request.fields, reclite::Span<float>(got.data(), want.size()));
      REQUIRE_MESSAGE(done, (done ? "" : done.error().describe()));
      CHECK(test::max_abs_error(got, want, want.size()) <= tolerance);
      CHECK(std::isnan(got[want.size()]));
      CHECK(session.last_stats().active_interests == 1);
      ++index;
    }
    CHECK(index == 11);
    ++fixtures;
  }
  CHECK(fixtures == 2);
}

TEST_CASE("models/sdm: unknown history behaviours are skipped, mismatched lengths and unknown user values are refused") {
  reclite::Model model = test::load_multi_interest("sdm_deepmatch_trained");
  const auto& fields = model.user_fields();
  REQUIRE(fields.size() == 6);  // user_id, gender, short_item, short_category, long_item, long_category
  CHECK(fields[0]->name == "user_id");
  CHECK(fields[2]->name == "short_item");
  CHECK(fields[5]->name == "long_category");
  const std::int64_t item = model.catalogue().external_id(3);
  std::vector<std::vector<std::int64_t>> ids = {{1}, {0}, {item, item}, {2, 2}, {item}, {5}};
  auto request = [&] {
    std::vector<reclite::FieldInput> inputs(ids.size());
    for (std::size_t f = 0; f < ids.size(); ++f)
      inputs[f].ids = reclite::Span<const std::int64_t>(ids[f].data(), ids[f].size());
    return inputs;
  };
  reclite::Session session(model);
  std::vector<float> vector(model.user_dim());
  REQUIRE(session.encode_user(request(), vector));
  double norm = 0;
  for (float value : vector) norm += double(value) * value;
  CHECK(std::fabs(norm - 1.0) < 1e-5);

  // A behaviour with an unknown id in any of its fields is skipped in all of them, short and long alike.
  auto encode = [&] {
    std::vector<float> out(model.user_dim());
    auto done = session.encode_user(request(), out);
    REQUIRE_MESSAGE(done, (done ? "" : done.error().describe()));
    return out;
  };
  ids[2] = {item};
  ids[3] = {2};
  const std::vector<float> want_short = encode();
  ids[2] = {item, 7001};  // odd: no item has it
  ids[3] = {2, 2};
  CHECK(encode() == want_short);
  CHECK(session.last_stats().history_ids_unknown == 1);
  ids[2] = {7001, item};  // the unknown one first: the same known behaviour remains
  CHECK(encode() == want_short);
  ids[2] = {item, item};
  ids[3] = {2, 13};  // categories are 0..12
  CHECK(encode() == want_short);
  CHECK(session.last_stats().history_ids_unknown == 1);
  ids[3] = {2, 2};
  ids[4] = {};
  ids[5] = {};
  const std::vector<float> want_no_long = encode();
  ids[4] = {item};
  ids[5] = {13};
  CHECK(encode() == want_no_long);
  CHECK(session.last_stats().history_ids_unknown == 1);
  CHECK(session.last_stats().history_ids_used == 2);
  ids[5] = {5};
  reclite::Result<void> refused;

  ids[2] = {item, item};
  ids[5] = {5, 6};  // long_category longer than long_item
  refused = session.encode_user(request(), vector);
  REQUIRE(!refused);
  CHECK(refused.error().code == reclite::ErrorCode::invalid_argument);
  CHECK(refused.error().message.find("long_category") != std::string::npos);

  ids[5] = {5};
  ids[0] = {60};  // 60 users: 0..59
  refused = session.encode_user(request(), vector);
  REQUIRE(!refused);
  CHECK(refused.error().code == reclite::ErrorCode::feature_out_of_vocabulary);

  std::vector<float> label(model.user_dim());
  ids[0] = {1};
  refused = session.label_aware_vector(request(), item, label);
  REQUIRE(!refused);
  CHECK(refused.error().code == reclite::ErrorCode::invalid_argument);
}
