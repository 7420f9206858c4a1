#include "reclite/index/index_file.hpp"

#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "index/index_fixtures.hpp"
#include "reclite/index/hnsw_index.hpp"

using reclite::ErrorCode;
namespace item_index = reclite::index;

namespace {

// Opens through HnswIndex (the path users take) and checks the code and that the message names
// the file and the field.
void check_refused(const std::string& path, ErrorCode code, const std::string& file, const std::string& field) {
  auto opened = item_index::HnswIndex::open(path);
  REQUIRE(!opened.has_value());
  CAPTURE(opened.error().describe());
  CHECK(opened.error().code == code);
  CHECK(opened.error().message.find(file) != std::string::npos);
  CHECK(opened.error().message.find(field) != std::string::npos);
}

std::string copy_fixture(const std::string& folder, const std::string& name) {
  std::string path = folder + "/" + name + ".rlindex";
  test::write_bytes(path, test::read_bytes(test::index_fixture(name + ".rlindex")));
  test::write_bytes(path + ".hnsw", test::read_bytes(test::index_fixture(name + ".rlindex.hnsw")));
  return path;
}

}  // namespace

TEST_CASE("index/index_file: the fixture index reads with its documented fields") {
  auto files = item_index::open_index_files(test::index_fixture("small.rlindex"));
  REQUIRE(files.has_value());
  const auto& d = files->description;
  CHECK(d.format_major == 1);
  CHECK(d.format_minor == 0);
  CHECK(d.dim == 16);
  CHECK(d.count == 300);
  CHECK(d.m == 16);
  CHECK(d.ef_construction == 200);
  CHECK(d.default_ef >= 10);
  CHECK(d.external_ids.size() == 300);
  CHECK(d.hnsw_file == "small.rlindex.hnsw");
  CHECK(d.producer.find("reclite_convert") != std::string::npos);
  CHECK(item_index::catalogue_crc32(d.external_ids) == d.catalogue_crc32);
  CHECK(files->layout.levels.size() == 300);
  CHECK(files->layout.levels[files->layout.enterpoint] == files->layout.max_level);
}

TEST_CASE("index/index_file: missing files are file_not_found naming the path") {
  auto folder = test::scratch_folder("missing");
  check_refused(folder + "/absent.rlindex", ErrorCode::file_not_found, "absent.rlindex", "cannot open");
  std::string path = copy_fixture(folder, "small");
  std::remove((path + ".hnsw").c_str());
  check_refused(path, ErrorCode::file_not_found, "small.rlindex.hnsw", "hnsw_file");
}

TEST_CASE("index/index_file: a file of another kind is not_an_index_file") {
  auto folder = test::scratch_folder("identifier");
  std::string path = copy_fixture(folder, "small");
  auto bytes = test::read_bytes(path);
  bytes[4] = 'R', bytes[5] = 'C', bytes[6] = 'L', bytes[7] = 'T';
  test::write_bytes(path, bytes);
  check_refused(path, ErrorCode::not_an_index_file, "small.rlindex", "RLIX");
  test::write_bytes(path, std::vector<std::uint8_t>{1, 2, 3});
  check_refused(path, ErrorCode::not_an_index_file, "small.rlindex", "3 bytes");
}

TEST_CASE("index/index_file: a truncated rlindex fails verification") {
  auto folder = test::scratch_folder("truncated");
  std::string path = copy_fixture(folder, "small");
  auto bytes = test::read_bytes(path);
  for (std::size_t keep : {bytes.size() / 2, bytes.size() - 9, std::size_t{12}}) {
    CAPTURE(keep);
    test::write_bytes(path, std::vector<std::uint8_t>(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(keep)));
    check_refused(path, ErrorCode::corrupt_index, "small.rlindex", "verification");
  }
}

TEST_CASE("index/index_file: a newer major version is refused naming both versions") {
  auto folder = test::scratch_folder("version");
  auto description = item_index::read_index_description(test::index_fixture("small.rlindex"));
  REQUIRE(description.has_value());
  item_index::IndexDescription d = *description;
  d.format_major = 2;
  d.format_minor = 3;
  std::string path = folder + "/small.rlindex";
  test::write_index_description(d, path);
  check_refused(path, ErrorCode::unsupported_format_version, "small.rlindex", "2.3 is newer than this reader's 1.0");
}

TEST_CASE("index/index_file: field checks of the rlindex name the field") {
  auto folder = test::scratch_folder("fields");
  auto description = item_index::read_index_description(test::index_fixture("small.rlindex"));
  REQUIRE(description.has_value());
  std::string path = folder + "/small.rlindex";
  SUBCASE("hnsw_file with a folder") {
    item_index::IndexDescription d = *description;
    d.hnsw_file = "../small.rlindex.hnsw";
    test::write_index_description(d, path);
    check_refused(path, ErrorCode::corrupt_index, "small.rlindex", "hnsw_file");
  }
  SUBCASE("duplicate external ids") {
    item_index::IndexDescription d = *description;
    d.external_ids[7] = d.external_ids[3];
    d.catalogue_crc32 = item_index::catalogue_crc32(d.external_ids);
    test::write_index_description(d, path);
    check_refused(path, ErrorCode::corrupt_index, "small.rlindex", "external_ids");
  }
  SUBCASE("count differs from the ids") {
    item_index::IndexDescription d = *description;
    d.count = 299;
    test::write_index_description(d, path);
    check_refused(path, ErrorCode::corrupt_index, "small.rlindex", "external_ids");
  }
  SUBCASE("catalogue checksum") {
    item_index::IndexDescription d = *description;
    d.catalogue_crc32 ^= 1;
    test::write_index_description(d, path);
    check_refused(path, ErrorCode::checksum_mismatch, "small.rlindex", "catalogue_crc32");
  }
  SUBCASE("dim zero") {
    item_index::IndexDescription d = *description;
    d.dim = 0;
    test::write_index_description(d, path);
    check_refused(path, ErrorCode::corrupt_index, "small.rlindex", "field dim");
  }
}

TEST_CASE("index/index_file: a truncated or resized graph file is corrupt_index naming hnsw_file_size") {
  auto folder = test::scratch_folder("graph_size");
  std::string path = copy_fixture(folder, "small");
  auto graph = test::read_bytes(path + ".hnsw");
  test::write_bytes(path + ".hnsw", std::vector<std::uint8_t>(graph.begin(), graph.end() - 100));
  check_refused(path, ErrorCode::corrupt_index, "small.rlindex.hnsw", "hnsw_file_size");
  graph.push_back(0);
  test::write_bytes(path + ".hnsw", graph);
  check_refused(path, ErrorCode::corrupt_index, "small.rlindex.hnsw", "hnsw_file_size");
}

TEST_CASE("index/index_file: a flipped bit in the graph file is checksum_mismatch") {
  auto folder = test::scratch_folder("graph_bit");
  std::string path = copy_fixture(folder, "small");
  auto graph = test::read_bytes(path + ".hnsw");
  graph[graph.size() / 2] ^= 0x10;
  test::write_bytes(path + ".hnsw", graph);
  check_refused(path, ErrorCode::checksum_mismatch, "small.rlindex.hnsw", "hnsw_crc32");
}

// Crafted graphs: the .rlindex is rewritten with the new size and CRC, so only structural checks catch them.
TEST_CASE("index/index_file: a crafted huge max_elements is refused before any allocation") {
  auto folder = test::scratch_folder("crafted_max_elements");
  auto graph = test::read_bytes(test::index_fixture("small.rlindex.hnsw"));
  test::poke<std::uint64_t>(graph, 8, 4294967295u);
  std::string path = test::with_graph(folder, "small", graph);
  check_refused(path, ErrorCode::corrupt_index, "small.rlindex.hnsw", "field max_elements: 4294967295 elements of");
  auto opened = item_index::HnswIndex::open(path);
  CHECK(opened.error().message.find("need 876 GB, file has 64 kB") != std::string::npos);
  test::poke<std::uint64_t>(graph, 8, ~std::uint64_t{0});  // the product overflows size_t
  path = test::with_graph(folder, "small", graph);
  check_refused(path, ErrorCode::corrupt_index, "small.rlindex.hnsw", "max_elements");
}

TEST_CASE("index/index_file: a crafted out of range neighbour id is refused") {
  auto folder = test::scratch_folder("crafted_neighbour");
  auto graph = test::read_bytes(test::index_fixture("small.rlindex.hnsw"));
  REQUIRE(test::peek<std::uint16_t>(graph, 96) > 0);  // element 0 has level-0 links
  test::poke<std::uint32_t>(graph, 96 + 4, 300);      // count is 300
  std::string path = test::with_graph(folder, "small", graph);
  check_refused(path, ErrorCode::corrupt_index, "small.rlindex.hnsw", "level 0 neighbour id: 300 (element 0)");
}

TEST_CASE("index/index_file: a crafted upper level neighbour missing from that level is refused") {
  auto folder = test::scratch_folder("crafted_upper");
  auto files = item_index::open_index_files(test::index_fixture("small.rlindex"));
  REQUIRE(files.has_value());
  const auto& layout = files->layout;
  auto graph = test::read_bytes(test::index_fixture("small.rlindex.hnsw"));
  // Find the enterpoint's level-1 list and point its first link at an element that has only level 0.
  std::size_t offset = 96 + 300 * layout.element_bytes;
  for (std::size_t i = 0; i < layout.enterpoint; ++i) offset += 4 + layout.levels[i] * (4 + 4 * layout.max_m);
  REQUIRE(layout.max_level >= 1);
  REQUIRE(test::peek<std::uint32_t>(graph, offset + 4) > 0);
  std::uint32_t ground = 0;
  while (layout.levels[ground] != 0) ++ground;
  test::poke<std::uint32_t>(graph, offset + 8, ground);
  std::string path = test::with_graph(folder, "small", graph);
  check_refused(path, ErrorCode::corrupt_index, "small.rlindex.hnsw", "neighbour id");
}

TEST_CASE("index/index_file: a crafted out of range enterpoint is refused") {
  auto folder = test::scratch_folder("crafted_enterpoint");
  auto graph = test::read_bytes(test::index_fixture("small.rlindex.hnsw"));
  test::poke<std::uint32_t>(graph, 52, 4000000000u);
  std::string path = test::with_graph(folder, "small", graph);
  check_refused(path, ErrorCode::corrupt_index, "small.rlindex.hnsw", "enterpoint_node: 4000000000");
}

TEST_CASE("index/index_file: crafted labels sizes and deletion marks are refused") {
  auto folder = test::scratch_folder("crafted_misc");
  auto files = item_index::open_index_files(test::index_fixture("small.rlindex"));
  REQUIRE(files.has_value());
  const auto& layout = files->layout;
  auto original = test::read_bytes(test::index_fixture("small.rlindex.hnsw"));
  SUBCASE("duplicate label") {
    auto graph = original;
    test::poke<std::uint64_t>(graph, 96 + layout.element_bytes + layout.label_offset,
                              test::peek<std::uint64_t>(graph, 96 + layout.label_offset));
    check_refused(test::with_graph(folder, "small", graph), ErrorCode::corrupt_index, "small.rlindex.hnsw", "label");
  }
  SUBCASE("deleted element") {
    auto graph = original;
    graph[96 + 2] = 1;
    check_refused(test::with_graph(folder, "small", graph), ErrorCode::corrupt_index, "small.rlindex.hnsw", "flags");
  }
  SUBCASE("level 0 link count above maxM0") {
    auto graph = original;
    test::poke<std::uint16_t>(graph, 96, 33);
    check_refused(test::with_graph(folder, "small", graph), ErrorCode::corrupt_index, "small.rlindex.hnsw",
                  "link count");
  }
  SUBCASE("element size") {
    auto graph = original;
    test::poke<std::uint64_t>(graph, 24, layout.element_bytes + 4);
    check_refused(test::with_graph(folder, "small", graph), ErrorCode::corrupt_index, "small.rlindex.hnsw",
                  "size_data_per_element");
  }
  SUBCASE("link list size") {
    auto graph = original;
    std::size_t offset = 96 + 300 * layout.element_bytes;
    test::poke<std::uint32_t>(graph, offset, 0xFFFFFFF0u);
    check_refused(test::with_graph(folder, "small", graph), ErrorCode::corrupt_index, "small.rlindex.hnsw",
                  "linkListSize");
  }
  SUBCASE("maxlevel") {
    auto graph = original;
    test::poke<std::int32_t>(graph, 48, -3);
    check_refused(test::with_graph(folder, "small", graph), ErrorCode::corrupt_index, "small.rlindex.hnsw",
                  "maxlevel");
  }
  SUBCASE("NaN in a vector") {
    auto graph = original;
    test::poke<float>(graph, 96 + layout.data_offset, std::numeric_limits<float>::quiet_NaN());
    check_refused(test::with_graph(folder, "small", graph), ErrorCode::corrupt_index, "small.rlindex.hnsw",
                  "vector");
  }
}

TEST_CASE("index/index_file: an index for another catalogue is index_model_mismatch") {
  auto description = item_index::read_index_description(test::index_fixture("small.rlindex"));
  REQUIRE(description.has_value());
  std::vector<std::int64_t> ids = description->external_ids;
  CHECK(item_index::check_index_catalogue(*description, ids, 16).has_value());
  auto wrong_dim = item_index::check_index_catalogue(*description, ids, 32);
  REQUIRE(!wrong_dim.has_value());
  CHECK(wrong_dim.error().code == ErrorCode::index_model_mismatch);
  CHECK(wrong_dim.error().message.find("field dim") != std::string::npos);
  std::swap(ids[0], ids[1]);
  item_index::IndexOptions options;
  options.expected_external_ids = ids;
  auto opened = item_index::HnswIndex::open(test::index_fixture("small.rlindex"), options);
  REQUIRE(!opened.has_value());
  CHECK(opened.error().code == ErrorCode::index_model_mismatch);
  CHECK(opened.error().message.find("external_ids") != std::string::npos);
}
