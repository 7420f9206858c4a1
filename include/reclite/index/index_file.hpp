// Opening and validating an item index: NAME.rlindex (schemas/index.fbs) and the hnswlib 0.6.2 graph file it
// names. docs/index-format.md lists every field, check and error code.
//
// hnswlib trusts its files: a wrong count or neighbour id makes it allocate terabytes or read out of bounds.
// So nothing reaches hnswlib before this header has checked, in order: the .rlindex's size and identifier,
// the FlatBuffers verifier, the format version, each field's meaning; then the graph file's size and CRC-32
// and, field by field, hnswlib's header, level-0 block (link counts, neighbour ids, labels, vectors) and
// upper-level link lists against the .rlindex and the file length, with overflow-free arithmetic. A crafted
// file with a valid checksum still cannot make a search read outside what hnswlib allocated.
//
// The graph format is hnswlib 0.6.2's saveIndex (hnswalg.h), in host byte order (little-endian here):
//   header  size_t offsetLevel0, max_elements, cur_element_count, size_data_per_element, label_offset,
//           offsetData; int maxlevel; uint enterpoint_node; size_t maxM, maxM0, M; double mult;
//           size_t ef_construction                                    (96 bytes)
//   level 0 cur_element_count x size_data_per_element bytes; per element: uint16 link count, uint8 flags
//           (1 = deleted), uint8 unused, maxM0 x uint32 neighbours, dim x float vector, size_t label
//   upper   per element: uint32 byte size (levels x (4 + 4 maxM)), then per level uint32 count + maxM ids
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "reclite/core/bounds.hpp"
#include "reclite/core/checksum.hpp"
#include "reclite/core/config.hpp"
#include "reclite/core/mapped_file.hpp"
#include "reclite/core/result.hpp"
#include "reclite/core/span.hpp"
#include "reclite/format/index_generated.h"

RECLITE_BEGIN_NAMESPACE
namespace index {

inline constexpr std::uint16_t index_format_major = 1;
inline constexpr std::uint16_t index_format_minor = 0;
// Bounds a reader enforces beyond the schema's types (docs/index-format.md says why).
inline constexpr std::size_t max_index_dim = 65536;
inline constexpr std::size_t max_index_count = 0x7FFFFFFF;  // hnswlib reads neighbour ids as C int
inline constexpr std::size_t max_index_m = 10000;           // hnswlib caps M at 10000
inline constexpr int max_index_level = 64;
inline constexpr std::size_t hnsw_header_size = 96;

enum class IndexMetric : std::uint8_t { inner_product = 0 };

// What a validated .rlindex says, in plain types.
struct IndexDescription {
  std::string path;       // the .rlindex as opened
  std::string hnsw_path;  // folder of `path` + hnsw_file
  std::uint16_t format_major = 0;
  std::uint16_t format_minor = 0;
  std::string producer;
  IndexMetric metric = IndexMetric::inner_product;
  std::size_t dim = 0;
  std::size_t count = 0;
  std::size_t m = 0;
  std::size_t ef_construction = 0;
  std::size_t default_ef = 0;
  float recall_target = 0;
  float measured_recall = 0;
  std::size_t recall_queries = 0;
  std::string hnsw_file;
  std::uint64_t hnsw_file_size = 0;
  std::uint32_t hnsw_crc32 = 0;
  std::uint32_t catalogue_crc32 = 0;
  std::vector<std::int64_t> external_ids;
};

// hnswlib's graph as validated: header values and the level of every element.
struct HnswLayout {
  std::size_t element_bytes = 0;       // size_data_per_element
  std::size_t data_offset = 0;         // offsetData: the vector inside an element
  std::size_t label_offset = 0;        // the size_t label inside an element
  std::size_t max_m = 0;               // links per upper-level list
  std::size_t max_m0 = 0;              // links per level-0 list
  int max_level = 0;
  std::uint32_t enterpoint = 0;
  std::vector<std::uint8_t> levels;    // levels[internal id]: highest level of the element
};

// Both files, validated; the graph file stays mapped so a loader can compare what it read.
struct IndexFiles {
  IndexDescription description;
  MappedFile hnsw;
  HnswLayout layout;
};

// CRC-32 (zlib) of external ids as little-endian int64 bytes: the .rlindex's catalogue_crc32.
inline std::uint32_t catalogue_crc32(Span<const std::int64_t> external_ids) noexcept {
  std::uint8_t block[8 * 64];
  std::uint32_t crc = 0;
  std::size_t i = 0;
  while (i < external_ids.size()) {
    std::size_t n = std::min<std::size_t>(64, external_ids.size() - i);
    for (std::size_t j = 0; j < n; ++j) {
      auto value = static_cast<std::uint64_t>(external_ids[i + j]);
      for (int byte = 0; byte < 8; ++byte) block[8 * j + byte] = static_cast<std::uint8_t>(value >> (8 * byte));
    }
    crc = crc32(block, 8 * n, crc);
    i += n;
  }
  return crc;
}

namespace detail {

// "1.1 TB", "30 MB", "96 bytes": sizes in messages (decimal units).
inline std::string format_bytes(double bytes) {
  const char* units[] = {"bytes", "kB", "MB", "GB", "TB", "PB", "EB", "ZB"};
  int unit = 0;
  while (bytes >= 1000.0 && unit < 7) {
    bytes /= 1000.0;
    ++unit;
  }
  char text[48];
  if (unit == 0)
    std::snprintf(text, sizeof text, "%.0f bytes", bytes);
  else
    std::snprintf(text, sizeof text, bytes < 10 ? "%.1f %s" : "%.0f %s", bytes, units[unit]);
  return text;
}

template <class T>
T read_pod(const std::uint8_t* at) noexcept {
  T value;
  std::memcpy(&value, at, sizeof(T));
  return value;
}

inline Error index_error(ErrorCode code, const std::string& file, const std::string& field, const std::string& what) {
  return Error{code, file + ": field " + field + ": " + what};
}

// A file name with no folder part, so the .rlindex cannot point hnswlib anywhere but beside itself.
inline bool is_plain_file_name(const std::string& name) noexcept {
  if (name.empty() || name == "." || name == "..") return false;
  for (char c : name)
    if (c == '/' || c == '\\' || c == '\0') return false;
  return true;
}

inline std::string folder_of(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash + 1);
}

}  // namespace detail

// Checks a .rlindex held in memory (steps 1-4 of docs/index-format.md); `path` names it in messages and
// locates the graph file.
inline Result<IndexDescription> parse_index_description(const std::uint8_t* data, std::size_t size,
                                                        const std::string& path) {
  using detail::index_error;
  if (size < 8 || size >= FLATBUFFERS_MAX_BUFFER_SIZE)
    return fail(ErrorCode::not_an_index_file,
                path + ": " + std::to_string(size) + " bytes is no reclite index (identifier RLIX expected)");
  if (!fbs::ItemIndexBufferHasIdentifier(data)) {
    std::string found(reinterpret_cast<const char*>(data) + 4, 4);
    for (char& c : found)
      if (c < 32 || c > 126) c = '?';
    std::string hint = found == "RCLT" ? " (this is a reclite model file)" : "";
    return fail(ErrorCode::not_an_index_file,
                path + ": identifier '" + found + "', expected 'RLIX' (reclite item index)" + hint);
  }
  flatbuffers::Verifier verifier(data, size);
  if (!fbs::VerifyItemIndexBuffer(verifier))
    return fail(ErrorCode::corrupt_index, path + ": FlatBuffers verification failed (truncated or damaged file)");
  const fbs::ItemIndex* table = fbs::GetItemIndex(data);

  IndexDescription d;
  d.path = path;
  d.format_major = table->format_major();
  d.format_minor = table->format_minor();
  if (d.format_major != index_format_major)
    return fail(ErrorCode::unsupported_format_version,
                path + ": index format " + std::to_string(d.format_major) + "." + std::to_string(d.format_minor) +
                    (d.format_major > index_format_major ? " is newer than" : " is not supported by") +
                    " this reader's " + std::to_string(index_format_major) + "." +
                    std::to_string(index_format_minor));
  if (table->producer() != nullptr) d.producer = table->producer()->str();
  if (table->metric() != fbs::IndexMetric::inner_product)
    return index_error(ErrorCode::corrupt_index, path, "metric",
                       "unknown value " + std::to_string(static_cast<int>(table->metric())) +
                           ", expected 0 (inner_product)");
  d.dim = table->dim();
  d.count = table->count();
  d.m = table->m();
  d.ef_construction = table->ef_construction();
  d.default_ef = table->default_ef();
  d.recall_target = table->recall_target();
  d.measured_recall = table->measured_recall();
  d.recall_queries = table->recall_queries();
  d.hnsw_file = table->hnsw_file()->str();
  d.hnsw_file_size = table->hnsw_file_size();
  d.hnsw_crc32 = table->hnsw_crc32();
  d.catalogue_crc32 = table->catalogue_crc32();
  if (d.dim < 1 || d.dim > max_index_dim)
    return index_error(ErrorCode::corrupt_index, path, "dim",
                       std::to_string(d.dim) + ", expected 1 to " + std::to_string(max_index_dim));
  if (d.count < 1 || d.count > max_index_count)
    return index_error(ErrorCode::corrupt_index, path, "count",
                       std::to_string(d.count) + ", expected 1 to " + std::to_string(max_index_count));
  if (d.m < 2 || d.m > max_index_m)
    return index_error(ErrorCode::corrupt_index, path, "m",
                       std::to_string(d.m) + ", expected 2 to " + std::to_string(max_index_m));
  if (d.default_ef < 1)
    return index_error(ErrorCode::corrupt_index, path, "default_ef", "0, expected at least 1");
  if (!(d.recall_target >= 0.0f && d.recall_target <= 1.0f) ||
      !(d.measured_recall >= 0.0f && d.measured_recall <= 1.0f))
    return index_error(ErrorCode::corrupt_index, path, "recall_target/measured_recall",
                       "expected fractions between 0 and 1");
  if (!detail::is_plain_file_name(d.hnsw_file))
    return index_error(ErrorCode::corrupt_index, path, "hnsw_file",
                       "'" + d.hnsw_file + "', expected a file name without a folder");
  const auto* ids = table->external_ids();
  if (ids->size() != d.count)
    return index_error(ErrorCode::corrupt_index, path, "external_ids",
                       std::to_string(ids->size()) + " ids, expected count = " + std::to_string(d.count));
  d.external_ids.resize(d.count);
  for (std::size_t i = 0; i < d.count; ++i) d.external_ids[i] = ids->Get(static_cast<flatbuffers::uoffset_t>(i));
  std::vector<std::int64_t> sorted(d.external_ids);
  std::sort(sorted.begin(), sorted.end());
  auto duplicate = std::adjacent_find(sorted.begin(), sorted.end());
  if (duplicate != sorted.end())
    return index_error(ErrorCode::corrupt_index, path, "external_ids",
                       "id " + std::to_string(*duplicate) + " appears more than once, expected unique ids");
  std::uint32_t ids_crc = catalogue_crc32(d.external_ids);
  if (ids_crc != d.catalogue_crc32)
    return index_error(ErrorCode::checksum_mismatch, path, "catalogue_crc32",
                       "ids have CRC-32 " + std::to_string(ids_crc) + ", file says " +
                           std::to_string(d.catalogue_crc32));
  d.hnsw_path = detail::folder_of(path) + d.hnsw_file;
  return d;
}

// Maps and checks a .rlindex file.
inline Result<IndexDescription> read_index_description(const std::string& path) {
  auto file = MappedFile::open(path);
  if (!file) return std::move(file).error();
  return parse_index_description(file->data(), file->size(), path);
}

// Checks an hnswlib 0.6.2 graph file held in memory against its description (step 5 of
// docs/index-format.md); `name` names it in messages.
inline Result<HnswLayout> validate_hnsw_graph(const IndexDescription& d, const std::uint8_t* data, std::size_t size,
                                              const std::string& name) {
  using detail::format_bytes;
  using detail::index_error;
  using detail::read_pod;
  const ErrorCode corrupt = ErrorCode::corrupt_index;
  if (size != d.hnsw_file_size)
    return index_error(corrupt, name, "hnsw_file_size",
                       "file has " + std::to_string(size) + " bytes, " + d.path + " says " +
                           std::to_string(d.hnsw_file_size));
  std::uint32_t crc = crc32(data, size);
  if (crc != d.hnsw_crc32)
    return index_error(ErrorCode::checksum_mismatch, name, "hnsw_crc32",
                       "file has CRC-32 " + std::to_string(crc) + ", " + d.path + " says " +
                           std::to_string(d.hnsw_crc32));
  if (size < hnsw_header_size)
    return index_error(corrupt, name, "header", std::to_string(size) + " bytes, expected at least 96");

  const auto offset_level0 = read_pod<std::uint64_t>(data + 0);
  const auto max_elements = read_pod<std::uint64_t>(data + 8);
  const auto element_count = read_pod<std::uint64_t>(data + 16);
  const auto element_bytes = read_pod<std::uint64_t>(data + 24);
  const auto label_offset = read_pod<std::uint64_t>(data + 32);
  const auto data_offset = read_pod<std::uint64_t>(data + 40);
  const auto max_level = read_pod<std::int32_t>(data + 48);
  const auto enterpoint = read_pod<std::uint32_t>(data + 52);
  const auto max_m = read_pod<std::uint64_t>(data + 56);
  const auto max_m0 = read_pod<std::uint64_t>(data + 64);
  const auto m = read_pod<std::uint64_t>(data + 72);
  const auto mult = read_pod<double>(data + 80);
  const std::size_t count = d.count;
  const std::size_t dim = d.dim;

  if (offset_level0 != 0)
    return index_error(corrupt, name, "offsetLevel0", std::to_string(offset_level0) + ", expected 0");
  if (element_count != count)
    return index_error(corrupt, name, "cur_element_count",
                       std::to_string(element_count) + " elements, " + d.path + " has count " + std::to_string(count));
  if (m != d.m || max_m != m || max_m0 != 2 * m)
    return index_error(corrupt, name, "M/maxM/maxM0",
                       std::to_string(m) + "/" + std::to_string(max_m) + "/" + std::to_string(max_m0) +
                           ", expected " + std::to_string(d.m) + "/" + std::to_string(d.m) + "/" +
                           std::to_string(2 * d.m) + " (m of " + d.path + ")");
  // m <= 10000 and dim <= 65536 (checked with the description), so these sums cannot overflow.
  const std::size_t links0_bytes = 4 + 4 * max_m0;
  const std::size_t expected_element = links0_bytes + 4 * dim + 8;
  if (element_bytes != expected_element || data_offset != links0_bytes || label_offset != links0_bytes + 4 * dim)
    return index_error(corrupt, name, "size_data_per_element/offsetData/label_offset",
                       std::to_string(element_bytes) + "/" + std::to_string(data_offset) + "/" +
                           std::to_string(label_offset) + ", expected " + std::to_string(expected_element) + "/" +
                           std::to_string(links0_bytes) + "/" + std::to_string(links0_bytes + 4 * dim) +
                           " for dim " + std::to_string(dim) + " and maxM0 " + std::to_string(max_m0));
  std::size_t max_elements_bytes = 0;
  if (max_elements < element_count || !checked_multiply(max_elements, element_bytes, &max_elements_bytes) ||
      max_elements_bytes > size)
    return index_error(corrupt, name, "max_elements",
                       std::to_string(max_elements) + " elements of " + std::to_string(element_bytes) +
                           " bytes need " + format_bytes(double(max_elements) * double(element_bytes)) +
                           ", file has " + format_bytes(double(size)) +
                           (max_elements < element_count ? " (and fewer than cur_element_count)" : ""));
  if (max_level < 0 || max_level > max_index_level)
    return index_error(corrupt, name, "maxlevel",
                       std::to_string(max_level) + ", expected 0 to " + std::to_string(max_index_level));
  if (enterpoint >= count)
    return index_error(corrupt, name, "enterpoint_node",
                       std::to_string(enterpoint) + ", expected an element below " + std::to_string(count));
  if (!std::isfinite(mult) || mult <= 0)
    return index_error(corrupt, name, "mult", "expected a positive finite level multiplier");

  std::size_t level0_bytes = 0;
  if (!checked_multiply(count, element_bytes, &level0_bytes) || !fits(hnsw_header_size, level0_bytes, size))
    return index_error(corrupt, name, "level 0",
                       std::to_string(count) + " elements of " + std::to_string(element_bytes) + " bytes need " +
                           format_bytes(double(count) * double(element_bytes)) + " after the header, file has " +
                           format_bytes(double(size)));

  // Level 0: link counts, flags, neighbour ids, vectors, labels (each label once).
  std::vector<std::uint8_t> label_seen(count, 0);
  const std::uint8_t* level0 = data + hnsw_header_size;
  for (std::size_t i = 0; i < count; ++i) {
    const std::uint8_t* element = level0 + i * element_bytes;
    const auto links = read_pod<std::uint16_t>(element);
    const std::string where = " (element " + std::to_string(i) + ")";
    if (element[2] != 0)
      return index_error(corrupt, name, "level 0 flags",
                         std::to_string(element[2]) + where + ", expected 0 (reclite indexes hold no deletions)");
    if (links > max_m0)
      return index_error(corrupt, name, "level 0 link count",
                         std::to_string(links) + where + ", expected at most maxM0 = " + std::to_string(max_m0));
    for (std::size_t j = 0; j < links; ++j) {
      auto neighbour = read_pod<std::uint32_t>(element + 4 + 4 * j);
      if (neighbour >= count)
        return index_error(corrupt, name, "level 0 neighbour id",
                           std::to_string(neighbour) + where + ", expected below " + std::to_string(count));
    }
    for (std::size_t j = 0; j < dim; ++j) {
      auto value = read_pod<float>(element + data_offset + 4 * j);
      if (!std::isfinite(value))
        return index_error(corrupt, name, "vector", "element " + std::to_string(i) + " holds NaN or infinity");
    }
    auto label = read_pod<std::uint64_t>(element + label_offset);
    if (label >= count || label_seen[label])
      return index_error(corrupt, name, "label",
                         std::to_string(label) + where + ", expected each of 0 to " + std::to_string(count - 1) +
                             " once");
    label_seen[label] = 1;
  }

  // Upper levels, pass 1: the byte size of each element's lists fixes its level.
  HnswLayout layout;
  layout.element_bytes = element_bytes;
  layout.data_offset = data_offset;
  layout.label_offset = label_offset;
  layout.max_m = max_m;
  layout.max_m0 = max_m0;
  layout.max_level = max_level;
  layout.enterpoint = enterpoint;
  layout.levels.assign(count, 0);
  const std::size_t upper_start = hnsw_header_size + level0_bytes;
  const std::size_t list_bytes = 4 + 4 * max_m;
  std::size_t offset = upper_start;
  for (std::size_t i = 0; i < count; ++i) {
    if (!fits(offset, 4, size))
      return index_error(corrupt, name, "linkListSize",
                         "file ends at element " + std::to_string(i) + " of " + std::to_string(count));
    auto bytes = read_pod<std::uint32_t>(data + offset);
    offset += 4;
    if (bytes % list_bytes != 0 || bytes / list_bytes > static_cast<std::size_t>(max_level) || !fits(offset, bytes, size))
      return index_error(corrupt, name, "linkListSize",
                         std::to_string(bytes) + " (element " + std::to_string(i) + "), expected a multiple of " +
                             std::to_string(list_bytes) + " up to maxlevel " + std::to_string(max_level) +
                             " lists within the file");
    layout.levels[i] = static_cast<std::uint8_t>(bytes / list_bytes);
    offset += bytes;
  }
  if (offset != size)
    return index_error(corrupt, name, "file size",
                       std::to_string(size - offset) + " bytes after the last link list, expected none");
  if (layout.levels[enterpoint] != max_level)
    return index_error(corrupt, name, "enterpoint_node",
                       "element " + std::to_string(enterpoint) + " has level " +
                           std::to_string(layout.levels[enterpoint]) + ", expected maxlevel " +
                           std::to_string(max_level));

  // Pass 2: every upper-level neighbour exists at that level, so a descent never leaves allocated lists.
  offset = upper_start;
  for (std::size_t i = 0; i < count; ++i) {
    offset += 4;
    for (std::size_t level = 1; level <= layout.levels[i]; ++level) {
      const std::uint8_t* list = data + offset + (level - 1) * list_bytes;
      auto links = read_pod<std::uint32_t>(list);
      const std::string where = " (element " + std::to_string(i) + " level " + std::to_string(level) + ")";
      if ((links & 0xFFFFu) > max_m || (links >> 16) != 0)
        return index_error(corrupt, name, "link count",
                           std::to_string(links) + where + ", expected at most maxM = " + std::to_string(max_m));
      for (std::size_t j = 0; j < links; ++j) {
        auto neighbour = read_pod<std::uint32_t>(list + 4 + 4 * j);
        if (neighbour >= count || layout.levels[neighbour] < level)
          return index_error(corrupt, name, "neighbour id",
                             std::to_string(neighbour) + where + ", expected an element below " +
                                 std::to_string(count) + " present at level " + std::to_string(level));
      }
    }
    offset += layout.levels[i] * list_bytes;
  }
  return layout;
}

// Opens NAME.rlindex and the graph file beside it, checking both (docs/index-format.md).
// Errors: file_not_found, io_error, not_an_index_file, corrupt_index, unsupported_format_version,
// checksum_mismatch; each message names the file and the field.
inline Result<IndexFiles> open_index_files(const std::string& path) {
  auto description = read_index_description(path);
  if (!description) return std::move(description).error();
  auto hnsw = MappedFile::open(description->hnsw_path);
  if (!hnsw) {
    Error error = std::move(hnsw).error();
    error.message += " (graph file named by field hnsw_file of " + path + ")";
    return error;
  }
  auto layout = validate_hnsw_graph(*description, hnsw->data(), hnsw->size(), description->hnsw_path);
  if (!layout) return std::move(layout).error();
  return IndexFiles{std::move(*description), std::move(*hnsw), std::move(*layout)};
}

// Checks that an index was built for a model's catalogue: same ids in the same order, same vector size.
inline Result<void> check_index_catalogue(const IndexDescription& d, Span<const std::int64_t> external_ids,
                                          std::size_t dim) {
  if (dim != d.dim)
    return fail(ErrorCode::index_model_mismatch, d.path + ": field dim: index vectors have " + std::to_string(d.dim) +
                                                     " floats, the model's have " + std::to_string(dim));
  if (external_ids.size() != d.count || catalogue_crc32(external_ids) != d.catalogue_crc32 ||
      !std::equal(external_ids.begin(), external_ids.end(), d.external_ids.begin()))
    return fail(ErrorCode::index_model_mismatch,
                d.path + ": field external_ids: the index's " + std::to_string(d.count) +
                    " items differ from the model catalogue's " + std::to_string(external_ids.size()) +
                    " (build the index from this model)");
  return {};
}

}  // namespace index
RECLITE_END_NAMESPACE
