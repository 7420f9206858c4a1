// Error codes and the Error value every fallible reclite call returns (inside a Result).
// Numbers are stable and never reused: docs/errors.md gives each its cause and remedy.
#pragma once

#include <cstdint>
#include <string>

#include "reclite/core/config.hpp"

RECLITE_BEGIN_NAMESPACE

enum class ErrorCode : std::uint16_t {
  // Files
  file_not_found = 1,
  io_error = 2,
  not_a_model_file = 3,
  corrupt_file = 4,
  unsupported_format_version = 5,
  wrong_architecture = 6,
  checksum_mismatch = 7,
  // Meaning of a verified model file
  missing_tensor = 20,
  tensor_shape = 21,
  tensor_dtype = 22,
  tensor_size = 23,
  invalid_config = 24,
  invalid_item_catalogue = 25,
  self_test_mismatch = 26,
  // Requests
  invalid_argument = 40,
  feature_out_of_vocabulary = 41,
  non_finite_input = 42,
  output_size = 43,
  unknown_field = 44,
  empty_history = 45,
  // Item index
  not_an_index_file = 60,
  corrupt_index = 61,
  index_model_mismatch = 62,
  index_library_error = 63,
  // Sequence state (SASRec incremental updates, models/sequence_state.hpp)
  corrupt_state = 80,
  unsupported_state_version = 81,
  state_model_mismatch = 82,
};

// Stable snake_case name of a code, as in docs/errors.md.
constexpr const char* error_code_name(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::file_not_found: return "file_not_found";
    case ErrorCode::io_error: return "io_error";
    case ErrorCode::not_a_model_file: return "not_a_model_file";
    case ErrorCode::corrupt_file: return "corrupt_file";
    case ErrorCode::unsupported_format_version: return "unsupported_format_version";
    case ErrorCode::wrong_architecture: return "wrong_architecture";
    case ErrorCode::checksum_mismatch: return "checksum_mismatch";
    case ErrorCode::missing_tensor: return "missing_tensor";
    case ErrorCode::tensor_shape: return "tensor_shape";
    case ErrorCode::tensor_dtype: return "tensor_dtype";
    case ErrorCode::tensor_size: return "tensor_size";
    case ErrorCode::invalid_config: return "invalid_config";
    case ErrorCode::invalid_item_catalogue: return "invalid_item_catalogue";
    case ErrorCode::self_test_mismatch: return "self_test_mismatch";
    case ErrorCode::invalid_argument: return "invalid_argument";
    case ErrorCode::feature_out_of_vocabulary: return "feature_out_of_vocabulary";
    case ErrorCode::non_finite_input: return "non_finite_input";
    case ErrorCode::output_size: return "output_size";
    case ErrorCode::unknown_field: return "unknown_field";
    case ErrorCode::empty_history: return "empty_history";
    case ErrorCode::not_an_index_file: return "not_an_index_file";
    case ErrorCode::corrupt_index: return "corrupt_index";
    case ErrorCode::index_model_mismatch: return "index_model_mismatch";
    case ErrorCode::index_library_error: return "index_library_error";
    case ErrorCode::corrupt_state: return "corrupt_state";
    case ErrorCode::unsupported_state_version: return "unsupported_state_version";
    case ErrorCode::state_model_mismatch: return "state_model_mismatch";
  }
  return "unknown_error";
}

struct Error {
  ErrorCode code;
  std::string message;  // names the file, the field and what was expected

  // "corrupt_file: dssm.reclite: ..." — for logs and command-line tools.
  std::string describe() const { return std::string(error_code_name(code)) + ": " + message; }
};

RECLITE_END_NAMESPACE
