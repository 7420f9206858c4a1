// Test helpers for the item index: fixture paths, raw float files, scratch folders and .rlindex rewriting.
// Fixtures come from converters/reclite_convert/index_fixtures.py (ctest test fixtures/index).
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <unistd.h>

#include "reclite/format/index_generated.h"
#include "reclite/index/exact_search.hpp"
#include "reclite/index/index_file.hpp"

namespace test {

inline std::string index_fixture(const std::string& name) { return std::string(RECLITE_FIXTURE_DIR "/index/") + name; }

inline std::vector<std::uint8_t> read_bytes(const std::string& path) {
  std::ifstream stream(path, std::ios::binary);
  REQUIRE_MESSAGE(stream.good(), "missing fixture " << path << " (run ctest, which writes fixtures first)");
  return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(stream), std::istreambuf_iterator<char>());
}

inline void write_bytes(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream stream(path, std::ios::binary | std::ios::trunc);
  stream.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(stream.good());
}

// Little-endian float32 file as a vector (the fixtures' .f32 files).
inline std::vector<float> read_floats(const std::string& path) {
  auto bytes = read_bytes(path);
  std::vector<float> values(bytes.size() / sizeof(float));
  std::memcpy(values.data(), bytes.data(), values.size() * sizeof(float));
  return values;
}

// A fresh empty folder for one test's files.
inline std::string scratch_folder(const std::string& name) {
  auto folder = std::filesystem::temp_directory_path() /
                ("reclite_index_" + std::to_string(::getpid()) + "_" + name);
  std::filesystem::remove_all(folder);
  std::filesystem::create_directories(folder);
  return folder.string();
}

// Writes `d` as a .rlindex at `path` (the fields a test changed, everything else as read).
inline void write_index_description(const reclite::index::IndexDescription& d, const std::string& path) {
  flatbuffers::FlatBufferBuilder builder;
  auto index = reclite::fbs::CreateItemIndexDirect(
      builder, d.format_major, d.format_minor, d.producer.c_str(), reclite::fbs::IndexMetric::inner_product,
      static_cast<std::uint32_t>(d.dim), static_cast<std::uint32_t>(d.count), static_cast<std::uint32_t>(d.m),
      static_cast<std::uint32_t>(d.ef_construction), static_cast<std::uint32_t>(d.default_ef), d.recall_target,
      d.measured_recall, static_cast<std::uint32_t>(d.recall_queries), d.hnsw_file.c_str(), d.hnsw_file_size,
      d.hnsw_crc32, &d.external_ids, d.catalogue_crc32);
  reclite::fbs::FinishItemIndexBuffer(builder, index);
  write_bytes(path, std::vector<std::uint8_t>(builder.GetBufferPointer(),
                                              builder.GetBufferPointer() + builder.GetSize()));
}

// Copies fixture NAME into `folder` with its graph replaced by `graph`, and the .rlindex rewritten with the
// graph's true size and CRC-32: only structural checks can then catch what was changed. Returns the path.
inline std::string with_graph(const std::string& folder, const std::string& name, const std::vector<std::uint8_t>& graph) {
  auto description = reclite::index::read_index_description(index_fixture(name + ".rlindex"));
  REQUIRE(description.has_value());
  reclite::index::IndexDescription d = *description;
  d.hnsw_file_size = graph.size();
  d.hnsw_crc32 = reclite::crc32(graph.data(), graph.size());
  std::string path = folder + "/" + name + ".rlindex";
  write_bytes(path + ".hnsw", graph);
  write_index_description(d, path);
  return path;
}

template <class T>
void poke(std::vector<std::uint8_t>& bytes, std::size_t offset, T value) {
  REQUIRE(offset + sizeof(T) <= bytes.size());
  std::memcpy(bytes.data() + offset, &value, sizeof(T));
}

template <class T>
T peek(const std::vector<std::uint8_t>& bytes, std::size_t offset) {
  REQUIRE(offset + sizeof(T) <= bytes.size());
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof(T));
  return value;
}

// Fraction of `want`'s entries found in `got` (recall of one query).
inline double overlap(const std::vector<reclite::index::SearchHit>& got, std::size_t got_count,
                      const std::vector<reclite::index::SearchHit>& want, std::size_t want_count) {
  std::size_t hits = 0;
  for (std::size_t i = 0; i < want_count; ++i)
    for (std::size_t j = 0; j < got_count; ++j)
      if (got[j].entry == want[i].entry) {
        ++hits;
        break;
      }
  return want_count == 0 ? 1.0 : double(hits) / double(want_count);
}

}  // namespace test
