// libFuzzer target: any bytes as an hnswlib graph file, checked against a description that agrees with the
// file's own size and CRC, so only the structural checks stand between the bytes and hnswlib. The validator
// itself must never read out of bounds (ASan + UBSan); tests/index loads crafted graphs through hnswlib.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "reclite/core/checksum.hpp"
#include "reclite/index/index_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  // First byte: dim 1..16; second: count 1..64. The rest is the graph file.
  reclite::index::IndexDescription description;
  description.path = "fuzz.rlindex";
  description.hnsw_path = "fuzz.rlindex.hnsw";
  description.dim = 1 + data[0] % 16;
  description.count = 1 + data[1] % 64;
  description.m = 16;
  description.ef_construction = 200;
  description.default_ef = 10;
  description.hnsw_file_size = size - 2;
  description.hnsw_crc32 = reclite::crc32(data + 2, size - 2);
  for (std::size_t i = 0; i < description.count; ++i) description.external_ids.push_back(static_cast<std::int64_t>(i));
  auto layout = reclite::index::validate_hnsw_graph(description, data + 2, size - 2, description.hnsw_path);
  (void)layout;
  return 0;
}
