// A small JSON reader and writer for the command-line tools (requests in, results out). Not part of the library:
// the engine's API takes spans, not JSON. Parses objects, arrays, numbers, strings, true/false/null; depth-limited.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace tool {

struct Json {
  enum class Type { null, boolean, number, string, array, object } type = Type::null;
  bool boolean = false;
  double number = 0;
  std::string text;
  std::vector<Json> items;
  std::vector<std::pair<std::string, Json>> members;  // in file order

  const Json* find(const std::string& key) const {
    for (const auto& member : members)
      if (member.first == key) return &member.second;
    return nullptr;
  }
  bool is_number() const { return type == Type::number; }
  bool is_array() const { return type == Type::array; }
  bool is_object() const { return type == Type::object; }
};

class JsonParser {
 public:
  explicit JsonParser(const std::string& text) : text_(text) {}

  // Parses the whole text; on failure returns false and sets error().
  bool parse(Json& out) {
    skip_space();
    if (!value(out, 0)) return false;
    skip_space();
    if (position_ != text_.size()) return failed("unexpected text after the JSON value");
    return true;
  }
  const std::string& error() const { return error_; }

 private:
  bool failed(const std::string& what) {
    if (error_.empty()) error_ = what + " at byte " + std::to_string(position_);
    return false;
  }
  void skip_space() {
    while (position_ < text_.size() && (text_[position_] == ' ' || text_[position_] == '\n' || text_[position_] == '\r' ||
                                        text_[position_] == '\t'))
      ++position_;
  }
  bool literal(const char* word) {
    const std::string expected(word);
    if (text_.compare(position_, expected.size(), expected) != 0) return failed("invalid literal");
    position_ += expected.size();
    return true;
  }
  bool string(std::string& out) {
    ++position_;  // opening quote
    while (position_ < text_.size() && text_[position_] != '"') {
      char c = text_[position_++];
      if (c == '\\') {
        if (position_ >= text_.size()) return failed("unterminated escape");
        char escaped = text_[position_++];
        switch (escaped) {
          case 'n': out += '\n'; break;
          case 't': out += '\t'; break;
          case 'r': out += '\r'; break;
          case 'b': out += '\b'; break;
          case 'f': out += '\f'; break;
          case 'u': {
            if (position_ + 4 > text_.size()) return failed("short \\u escape");
            unsigned code = static_cast<unsigned>(std::strtoul(text_.substr(position_, 4).c_str(), nullptr, 16));
            position_ += 4;
            if (code < 0x80) {
              out += static_cast<char>(code);
            } else if (code < 0x800) {
              out += static_cast<char>(0xC0 | (code >> 6));
              out += static_cast<char>(0x80 | (code & 0x3F));
            } else {
              out += static_cast<char>(0xE0 | (code >> 12));
              out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
              out += static_cast<char>(0x80 | (code & 0x3F));
            }
            break;
          }
          default: out += escaped;
        }
      } else {
        out += c;
      }
    }
    if (position_ >= text_.size()) return failed("unterminated string");
    ++position_;
    return true;
  }
  bool value(Json& out, int depth) {
    if (depth > 64) return failed("nesting deeper than 64");
    if (position_ >= text_.size()) return failed("unexpected end");
    const char c = text_[position_];
    if (c == '{') {
      out.type = Json::Type::object;
      ++position_;
      skip_space();
      if (position_ < text_.size() && text_[position_] == '}') return ++position_, true;
      while (true) {
        skip_space();
        if (position_ >= text_.size() || text_[position_] != '"') return failed("expected a key");
        std::string key;
        if (!string(key)) return false;
        skip_space();
        if (position_ >= text_.size() || text_[position_] != ':') return failed("expected ':'");
        ++position_;
        skip_space();
        Json member;
        if (!value(member, depth + 1)) return false;
        out.members.emplace_back(std::move(key), std::move(member));
        skip_space();
        if (position_ < text_.size() && text_[position_] == ',') { ++position_; continue; }
        if (position_ < text_.size() && text_[position_] == '}') return ++position_, true;
        return failed("expected ',' or '}'");
      }
    }
    if (c == '[') {
      out.type = Json::Type::array;
      ++position_;
      skip_space();
      if (position_ < text_.size() && text_[position_] == ']') return ++position_, true;
      while (true) {
        skip_space();
        Json item;
        if (!value(item, depth + 1)) return false;
        out.items.push_back(std::move(item));
        skip_space();
        if (position_ < text_.size() && text_[position_] == ',') { ++position_; continue; }
        if (position_ < text_.size() && text_[position_] == ']') return ++position_, true;
        return failed("expected ',' or ']'");
      }
    }
    if (c == '"') {
      out.type = Json::Type::string;
      return string(out.text);
    }
    if (c == 't') { out.type = Json::Type::boolean; out.boolean = true; return literal("true"); }
    if (c == 'f') { out.type = Json::Type::boolean; out.boolean = false; return literal("false"); }
    if (c == 'n') { out.type = Json::Type::null; return literal("null"); }
    const char* start = text_.c_str() + position_;
    char* end = nullptr;
    out.number = std::strtod(start, &end);
    if (end == start) return failed("invalid value");
    out.type = Json::Type::number;
    position_ += static_cast<std::size_t>(end - start);
    return true;
  }

  const std::string& text_;
  std::size_t position_ = 0;
  std::string error_;
};

inline bool read_text_file(const std::string& path, std::string& out) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return false;
  char buffer[65536];
  std::size_t got = 0;
  while ((got = std::fread(buffer, 1, sizeof buffer, file)) > 0) out.append(buffer, got);
  std::fclose(file);
  return true;
}

// Shortest text that reads back as the same float (for exact comparisons in tests and the demo).
inline std::string format_float(float value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "Infinity" : "-Infinity";
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.9g", static_cast<double>(value));
  return buffer;
}

}  // namespace tool
