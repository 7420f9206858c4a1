// What every benchmark program shares: the sample requests and .npy files written by bench/make_bench_models.py
// and bench/make_multi_interest_models.py, per-call latency samples (median and p99 over every timed call of every
// repetition), resident memory, the results file scripts/bench turns into one table, and the helpers of our
// programs (die, take, timed_loop). Benchmark support code, not part of the library.
#pragma once

#include <algorithm>
#include <cerrno>  // program_invocation_short_name (glibc; the benchmarks read /proc and run on Linux)
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace bench {

// requests.bin: magic "RLBENCH1", uint32 count, fields, history, candidates, then per request int64
// categorical[fields], history external ids[history] (most recent last), candidate external ids[candidates].
struct Requests {
  std::size_t count = 0, fields = 0, history = 0, candidates = 0;
  std::vector<std::int64_t> records;
  std::size_t stride() const { return fields + history + candidates; }
  const std::int64_t* categorical(std::size_t i) const { return records.data() + i * stride(); }
  const std::int64_t* history_ids(std::size_t i) const { return categorical(i) + fields; }
  const std::int64_t* candidate_ids(std::size_t i) const { return history_ids(i) + history; }
};

inline bool read_requests(const std::string& path, Requests& out) {
  std::ifstream stream(path, std::ios::binary);
  char magic[8];
  std::uint32_t header[4];
  if (!stream.read(magic, 8) || std::memcmp(magic, "RLBENCH1", 8) != 0) return false;
  if (!stream.read(reinterpret_cast<char*>(header), sizeof header)) return false;
  out.count = header[0];
  out.fields = header[1];
  out.history = header[2];
  out.candidates = header[3];
  out.records.resize(out.count * out.stride());
  return static_cast<bool>(stream.read(reinterpret_cast<char*>(out.records.data()),
                                       static_cast<std::streamsize>(out.records.size() * sizeof(std::int64_t))));
}

// multi_interest_requests.bin (bench/make_multi_interest_models.py): magic "RLBENCH2", uint32 count, uint32
// columns; per column uint32 width and a 32-byte NUL-padded name; then per request the int64 values of every
// column in that order. Named columns let one request carry several histories (items, their categories).
struct ColumnRequests {
  struct Column {
    std::size_t offset = 0, width = 0;  // width 0: no such column
  };
  std::size_t count = 0, stride = 0;
  std::map<std::string, Column> columns;
  std::vector<std::int64_t> records;
  Column column(const std::string& name) const {
    auto found = columns.find(name);
    return found == columns.end() ? Column{} : found->second;
  }
  // The values of `column` in request i, `skip` values in.
  const std::int64_t* values(std::size_t i, const Column& column, std::size_t skip = 0) const {
    return records.data() + i * stride + column.offset + skip;
  }
};

inline bool read_column_requests(const std::string& path, ColumnRequests& out) {
  std::ifstream stream(path, std::ios::binary);
  char magic[8];
  std::uint32_t header[2];
  if (!stream.read(magic, 8) || std::memcmp(magic, "RLBENCH2", 8) != 0) return false;
  if (!stream.read(reinterpret_cast<char*>(header), sizeof header)) return false;
  out.count = header[0];
  out.stride = 0;
  out.columns.clear();
  for (std::uint32_t c = 0; c < header[1]; ++c) {
    std::uint32_t width = 0;
    char name[33] = {};
    if (!stream.read(reinterpret_cast<char*>(&width), 4) || !stream.read(name, 32)) return false;
    out.columns[name] = ColumnRequests::Column{out.stride, width};
    out.stride += width;
  }
  // Our own files, but a wrong one should fail here rather than ask for gigabytes.
  if (out.count > (1u << 24) || out.stride > (1u << 16)) return false;
  out.records.resize(out.count * out.stride);
  return static_cast<bool>(stream.read(reinterpret_cast<char*>(out.records.data()),
                                       static_cast<std::streamsize>(out.records.size() * sizeof(std::int64_t))));
}

// A C-order little-endian .npy of float32 ('<f4') or int64 ('<i8'), as numpy.save writes it.
template <class T>
struct Npy {
  std::vector<std::size_t> shape;
  std::vector<T> data;
  std::size_t rows() const { return shape.empty() ? 0 : shape[0]; }
  std::size_t columns() const { return shape.size() < 2 ? 1 : shape[1]; }
};

template <class T>
bool read_npy(const std::string& path, Npy<T>& out) {
  std::ifstream stream(path, std::ios::binary);
  char preamble[10];
  if (!stream.read(preamble, 10) || std::memcmp(preamble, "\x93NUMPY", 6) != 0) return false;
  std::size_t header_length = static_cast<unsigned char>(preamble[8]) | (static_cast<unsigned char>(preamble[9]) << 8);
  if (preamble[6] != 1) {  // version 2 and 3: 4-byte length
    char more[2];
    if (!stream.read(more, 2)) return false;
    header_length |= (static_cast<std::size_t>(static_cast<unsigned char>(more[0])) << 16) |
                     (static_cast<std::size_t>(static_cast<unsigned char>(more[1])) << 24);
  }
  std::string header(header_length, '\0');
  if (!stream.read(&header[0], static_cast<std::streamsize>(header_length))) return false;
  const char* want = sizeof(T) == 4 ? "'<f4'" : "'<i8'";
  if (header.find(want) == std::string::npos || header.find("'fortran_order': False") == std::string::npos)
    return false;
  auto open = header.find('(', header.find("'shape'"));
  auto close = header.find(')', open);
  out.shape.clear();
  std::size_t total = 1;
  for (std::size_t at = open + 1; at < close;) {
    std::size_t next = std::min(header.find(',', at), close);
    std::string number = header.substr(at, next - at);
    if (number.find_first_of("0123456789") != std::string::npos) {
      out.shape.push_back(std::stoull(number));
      total *= out.shape.back();
    }
    at = next + 1;
  }
  out.data.resize(total);
  return static_cast<bool>(stream.read(reinterpret_cast<char*>(out.data.data()),
                                       static_cast<std::streamsize>(total * sizeof(T))));
}

// Per-call latencies (microseconds), pooled over every repetition of one benchmark.
inline std::map<std::string, std::vector<double>>& samples() {
  static std::map<std::string, std::vector<double>> all;
  return all;
}

struct Timer {
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  double microseconds() const {
    return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
  }
};

inline double quantile(std::vector<double> values, double q) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  std::size_t at = static_cast<std::size_t>(q * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(at, values.size() - 1)];
}

// One line per task: {"task", "impl", "median_us", "p99_us", "calls"} (JSON lines), plus free-form extras.
inline void write_results(const std::string& path, const std::string& impl,
                          const std::map<std::string, std::string>& extra = {}) {
  std::FILE* file = path.empty() ? stdout : std::fopen(path.c_str(), "a");
  if (file == nullptr) return;
  for (const auto& entry : samples())
    std::fprintf(file, "{\"task\": \"%s\", \"impl\": \"%s\", \"median_us\": %.3f, \"p99_us\": %.3f, \"calls\": %zu}\n",
                 entry.first.c_str(), impl.c_str(), quantile(entry.second, 0.5), quantile(entry.second, 0.99),
                 entry.second.size());
  for (const auto& entry : extra)
    std::fprintf(file, "{\"task\": \"%s\", \"impl\": \"%s\", \"value\": %s}\n", entry.first.c_str(), impl.c_str(),
                 entry.second.c_str());
  if (file != stdout) std::fclose(file);
}

// Prints "PROGRAM: message" and exits: a benchmark cannot continue without its files.
[[noreturn]] inline void die(const std::string& message) {
  std::fprintf(stderr, "%s: %s\n", program_invocation_short_name, message.c_str());
  std::exit(1);
}

// The value of a reclite::Result, or die naming `what` and the error. Templates over the Result template, so
// that this header needs no reclite include: the peers (libtorch, faiss) include it without the engine.
template <template <class> class Result, class T>
T take(Result<T> result, const std::string& what) {
  if (!result) die(what + ": " + result.error().describe());
  return std::move(*result);
}

template <template <class> class Result>
void take(Result<void> result, const std::string& what) {
  if (!result) die(what + ": " + result.error().describe());
}

// Runs a Google Benchmark loop, timing each call of body(call number) on its own into samples()[name].
template <class State, class Body>
void timed_loop(State& state, const std::string& name, Body body) {
  auto& pooled = samples()[name];
  std::size_t call = 0;
  for (auto _ : state) {
    Timer timer;
    body(call++);
    pooled.push_back(timer.microseconds());
  }
}

// Prints every task's pooled median and p99 (what write_results records), for the console.
inline void print_samples() {
  std::printf("per call, pooled over repetitions (microseconds):\n");
  for (const auto& entry : samples())
    std::printf("  %-24s median %9.2f  p99 %9.2f  (%zu calls)\n", entry.first.c_str(), quantile(entry.second, 0.5),
                quantile(entry.second, 0.99), entry.second.size());
}

// Resident set size of this process in kB (VmRSS), or -1.
inline long resident_kb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

// Removes "--name=value" from argv and returns value (or fallback): our flags next to Google Benchmark's.
inline std::string take_flag(int& argc, char** argv, const std::string& name, const std::string& fallback = "") {
  std::string result = fallback;
  const std::string prefix = "--" + name + "=";
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    std::string argument = argv[i];
    if (argument.rfind(prefix, 0) == 0)
      result = argument.substr(prefix.size());
    else
      argv[kept++] = argv[i];
  }
  argc = kept;
  return result;
}

// recall@k of `found` (entries, k per query) against `truth` (entries, truth_k per query, first k used).
inline double recall_at_k(const std::vector<std::int64_t>& found, const std::vector<std::int64_t>& truth,
                          std::size_t truth_k, std::size_t queries, std::size_t k) {
  std::size_t hits = 0;
  for (std::size_t q = 0; q < queries; ++q) {
    std::vector<std::int64_t> want(truth.begin() + q * truth_k, truth.begin() + q * truth_k + k);
    std::sort(want.begin(), want.end());
    for (std::size_t i = 0; i < k; ++i)
      if (std::binary_search(want.begin(), want.end(), found[q * k + i])) ++hits;
  }
  return static_cast<double>(hits) / static_cast<double>(queries * k);
}


// recall@k of index.search_top_k(k) at `ef` over every row of `queries` against the exact entries in `truth`
// (truth_k per query). Hit is the index's result type (reclite::index::SearchHit: this header includes no reclite).
template <class Hit, class Index>
double index_recall_at_k(Index& index, const Npy<float>& queries, const Npy<std::int64_t>& truth, std::size_t ef,
                         std::size_t k) {
  index.set_ef(ef);
  std::vector<std::int64_t> found(queries.rows() * k);
  std::vector<Hit> hits(k);
  for (std::size_t q = 0; q < queries.rows(); ++q) {
    take(index.search_top_k(&queries.data[q * queries.columns()], k, {}, hits), "search_top_k");
    for (std::size_t i = 0; i < k; ++i) found[q * k + i] = hits[i].entry;
  }
  return recall_at_k(found, truth.data, truth.columns(), queries.rows(), k);
}

}  // namespace bench

namespace bench {

// A number from manifest.json: models -> MODEL -> KEY (a flat search; keys are unique within a model entry).
inline double manifest_number(const std::string& directory, const std::string& model, const std::string& key) {
  std::ifstream stream(directory + "/manifest.json");
  std::string text((std::istreambuf_iterator<char>(stream)), std::istreambuf_iterator<char>());
  auto at = text.find("\"" + model + "\": {");
  if (at == std::string::npos) return -1;
  at = text.find("\"" + key + "\":", at);
  if (at == std::string::npos) return -1;
  return std::strtod(text.c_str() + text.find(':', at) + 1, nullptr);
}

}  // namespace bench
