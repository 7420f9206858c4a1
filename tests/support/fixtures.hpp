// Access to the model fixtures the converter writes at test time (tests/CMakeLists.txt: fixtures/generate).
#pragma once

#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "json.hpp"

namespace test {

inline std::string fixture_path(const std::string& name) { return std::string(RECLITE_FIXTURE_DIR) + "/" + name; }

// Parses a JSON fixture file; fails the test if it cannot.
inline tool::Json read_json_fixture(const std::string& name) {
  std::string text;
  REQUIRE_MESSAGE(tool::read_text_file(fixture_path(name), text), "missing fixture " << fixture_path(name));
  tool::Json json;
  tool::JsonParser parser(text);
  REQUIRE_MESSAGE(parser.parse(json), name << ": " << parser.error());
  return json;
}

// Names listed in manifest.json.
inline std::vector<std::string> fixture_names() {
  tool::Json manifest = read_json_fixture("manifest.json");
  std::vector<std::string> names;
  const tool::Json* list = manifest.find("fixtures");
  REQUIRE(list != nullptr);
  for (const auto& item : list->items) names.push_back(item.text);
  return names;
}

inline std::vector<float> float_array(const tool::Json& array) {
  std::vector<float> values;
  for (const auto& item : array.items) values.push_back(static_cast<float>(item.number));
  return values;
}

}  // namespace test
