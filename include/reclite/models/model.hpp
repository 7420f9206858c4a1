// Model: a loaded, verified, immutable model, shared by every thread (all methods const, no lazy caches; weights
// are viewed in the mapped file). Per-thread state lives in a Session (models/session.hpp).
//
//   auto loaded = reclite::Model::load("dssm.reclite");   // Result<Model>
//   if (!loaded) return report(loaded.error());
//   auto model = std::make_shared<const reclite::Model>(std::move(*loaded));
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "reclite/core/config.hpp"
#include "reclite/core/result.hpp"
#include "reclite/core/span.hpp"
#include "reclite/format/model_file.hpp"
#include "reclite/models/architecture.hpp"
#include "reclite/models/catalogue.hpp"
#include "reclite/models/dssm.hpp"
#include "reclite/models/fm_two_tower.hpp"
#include "reclite/models/mind.hpp"
#include "reclite/models/request.hpp"
#include "reclite/models/sasrec.hpp"
#include "reclite/models/sdm.hpp"
#include "reclite/models/workspace.hpp"
#include "reclite/models/youtube_dnn.hpp"

RECLITE_BEGIN_NAMESPACE

using format::Architecture;
using models::EncodeStats;
using models::FieldInput;

struct LoadOptions {
  // Check every tensor's CRC-32 at load (a few ms per 100k x 64 table).
  bool verify_checksums = true;
  // Recompute the self-test samples the converter embedded and fail with self_test_mismatch if one differs.
  bool run_self_test = false;
  // Fail with wrong_architecture unless the file holds this architecture (unknown: accept any).
  Architecture expected_architecture = Architecture::unknown;
};

struct SelfTestReport {
  std::size_t samples = 0;
  double max_error = 0.0;      // largest |ours - PyTorch's| over all samples
  std::size_t worst_sample = 0;
  bool passed = true;          // every sample within its tolerance
};

class Model {
 public:
  static Result<Model> load(const std::string& path, const LoadOptions& options = {}) {
    format::FileOptions file_options;
    file_options.verify_checksums = options.verify_checksums;
    auto file = format::ModelFile::open(path, file_options);
    RECLITE_TRY(file);
    return build(std::move(*file), options);
  }

  // A model in a caller-owned buffer (8-byte aligned) that must outlive the Model.
  static Result<Model> from_buffer(const void* data, std::size_t size, const std::string& name,
                                   const LoadOptions& options = {}) {
    format::FileOptions file_options;
    file_options.verify_checksums = options.verify_checksums;
    auto file = format::ModelFile::from_buffer(data, size, name, file_options);
    RECLITE_TRY(file);
    return build(std::move(*file), options);
  }

  Architecture architecture() const noexcept { return state_->architecture->architecture(); }
  const format::ModelFile& file() const noexcept { return state_->file; }
  const std::string& name() const noexcept { return state_->file.name(); }

  // The fields of a user request, in request order.
  const std::vector<const format::InputFieldConfig*>& user_fields() const noexcept {
    return state_->architecture->user_fields();
  }
  // Position of the user field called `name` in a request (unknown_field if there is none).
  Result<std::size_t> user_field_index(const std::string& name) const {
    const auto& fields = user_fields();
    for (std::size_t i = 0; i < fields.size(); ++i)
      if (fields[i]->name == name) return i;
    return fail(ErrorCode::unknown_field, this->name() + ": no user field named '" + name + "'");
  }
  std::size_t user_dim() const noexcept { return state_->architecture->user_dim(); }
  std::size_t user_vector_count() const noexcept { return state_->architecture->user_vector_count(); }
  std::size_t item_dim() const noexcept { return state_->architecture->item_dim(); }

  const models::Catalogue& catalogue() const noexcept { return state_->catalogue; }
  // Item vectors the converter precomputed, [catalogue().size(), item_dim()] row-major; for SASRec without them,
  // the item table viewed in place when catalogue entries are consecutive rows; null otherwise.
  const float* item_vectors() const noexcept { return state_->item_vectors; }

  // Recomputes the embedded self-test samples; `passed` tells whether all are within tolerance.
  Result<SelfTestReport> run_self_test() const;

  const models::ArchitectureModel& architecture_model() const noexcept { return *state_->architecture; }

 private:
  struct State {
    format::ModelFile file;
    models::Catalogue catalogue;
    std::unique_ptr<models::ArchitectureModel> architecture;
    const float* item_vectors = nullptr;
  };

  static Result<Model> build(format::ModelFile file, const LoadOptions& options) {
    if (options.expected_architecture != Architecture::unknown && file.architecture() != options.expected_architecture)
      return fail(ErrorCode::wrong_architecture, file.name() + ": holds a '" + format::architecture_name(file.architecture()) +
                                                     "' model, expected '" +
                                                     format::architecture_name(options.expected_architecture) + "'");
    Model model;
    model.state_ = std::make_unique<State>(State{std::move(file), models::Catalogue(), nullptr, nullptr});
    State& state = *model.state_;
    state.catalogue = models::Catalogue(state.file.catalogue());
    switch (state.file.architecture()) {
      case Architecture::dssm: {
        auto built = models::DssmModel::build(state.file, state.catalogue);
        RECLITE_TRY(built);
        state.architecture = std::move(*built);
        break;
      }
      case Architecture::youtube_dnn: {
        auto built = models::YoutubeDnnModel::build(state.file, state.catalogue);
        RECLITE_TRY(built);
        state.architecture = std::move(*built);
        break;
      }
      case Architecture::fm_two_tower: {
        auto built = models::FmTwoTowerModel::build(state.file, state.catalogue);
        RECLITE_TRY(built);
        state.architecture = std::move(*built);
        break;
      }
      case Architecture::sasrec: {
        auto built = models::SasRecModel::build(state.file, state.catalogue);
        RECLITE_TRY(built);
        // Without precomputed vectors, the item table itself serves when catalogue entries are consecutive rows.
        state.item_vectors = (*built)->item_vectors();
        state.architecture = std::move(*built);
        break;
      }
      case Architecture::mind: {
        auto built = models::MindModel::build(state.file, state.catalogue);
        RECLITE_TRY(built);
        state.architecture = std::move(*built);
        break;
      }
      case Architecture::sdm: {
        auto built = models::SdmModel::build(state.file, state.catalogue);
        RECLITE_TRY(built);
        state.architecture = std::move(*built);
        break;
      }
      default:
        return fail(ErrorCode::invalid_config, state.file.name() + ": architecture '" +
                                                   format::architecture_name(state.file.architecture()) +
                                                   "' is not supported by this version of reclite");
    }
    const std::string& vectors = state.file.catalogue().item_vectors;
    if (!vectors.empty()) {
      auto tensor = state.file.tensor(vectors, "catalogue.item_vectors", format::DType::f32,
                                      {static_cast<std::int64_t>(state.catalogue.size()),
                                       static_cast<std::int64_t>(state.architecture->item_dim())});
      RECLITE_TRY(tensor);
      state.item_vectors = (*tensor)->f32();
    }
    if (options.run_self_test) {
      auto report = model.run_self_test();
      RECLITE_TRY(report);
      if (!report->passed)
        return fail(ErrorCode::self_test_mismatch,
                    state.file.name() + ": self-test sample " + std::to_string(report->worst_sample) +
                        " differs from PyTorch by " + std::to_string(report->max_error) + ", above its tolerance");
    }
    return model;
  }

  std::unique_ptr<State> state_;
};

RECLITE_END_NAMESPACE

// Model::run_self_test needs a Session, which needs a complete Model: its definition lives in session.hpp,
// included here so that every user of Model links.
#include "reclite/models/session.hpp"  // IWYU pragma: keep
