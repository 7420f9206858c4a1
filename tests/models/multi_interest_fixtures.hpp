// The MIND and SDM fixtures the converter writes at test time (ctest fixtures/multi_interest): names, loading,
// requests and expected user vectors.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "reclite/reclite.hpp"
#include "request_json.hpp"
#include "support/fixtures.hpp"

namespace test {

// Fixture names of one architecture ("mind" or "sdm") listed in multi_interest/manifest.json.
inline std::vector<std::string> multi_interest_fixtures(const std::string& architecture) {
  std::vector<std::string> names;
  const tool::Json manifest = read_json_fixture("multi_interest/manifest.json");
  for (const auto& item : manifest.find("fixtures")->items)
    if (item.text.rfind(architecture + "_", 0) == 0) names.push_back(item.text);
  REQUIRE(!names.empty());
  return names;
}

inline reclite::Model load_multi_interest(const std::string& name) {
  reclite::LoadOptions options;
  options.run_self_test = true;  // the converter's embedded samples must pass on load
  auto loaded = reclite::Model::load(fixture_path("multi_interest/" + name + ".reclite"), options);
  REQUIRE_MESSAGE(loaded, name << ": " << (loaded ? "" : loaded.error().describe()));
  return std::move(*loaded);
}

// All interests of a fixture user, concatenated [K * D].
inline std::vector<float> expected_interests(const tool::Json& user) {
  std::vector<float> values;
  for (const auto& row : user.find("user_vectors")->items)
    for (const auto& item : row.items) values.push_back(static_cast<float>(item.number));
  return values;
}

}  // namespace test
