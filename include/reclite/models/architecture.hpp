// ArchitectureModel: what every architecture offers the front door (Model, Session). One virtual call per
// request is noise next to the evaluation, and it keeps each architecture in a header of its own.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "reclite/core/config.hpp"
#include "reclite/core/result.hpp"
#include "reclite/core/span.hpp"
#include "reclite/format/model_config.hpp"
#include "reclite/models/request.hpp"
#include "reclite/models/workspace.hpp"

RECLITE_BEGIN_NAMESPACE
namespace models {

class ArchitectureModel {
 public:
  virtual ~ArchitectureModel() = default;

  virtual format::Architecture architecture() const noexcept = 0;
  // The fields a user request carries, in request order.
  virtual const std::vector<const format::InputFieldConfig*>& user_fields() const noexcept = 0;
  // Width of one user vector, and how many a user gets (several for multi-interest models).
  virtual std::size_t user_dim() const noexcept = 0;
  virtual std::size_t user_vector_count() const noexcept { return 1; }
  virtual std::size_t item_dim() const noexcept = 0;
  virtual WorkspaceSize workspace_size() const noexcept = 0;

  // Checks a request once (field count, ids in range, finite values); evaluation below trusts it.
  virtual Result<void> check_user(Span<const FieldInput> inputs) const = 0;
  // Writes user_vector_count() x user_dim() floats. Allocates nothing.
  virtual void encode_user(Span<const FieldInput> inputs, float* output, Workspace& workspace,
                           EncodeStats* stats) const noexcept = 0;
  // Computes the vector of catalogue entry `entry` from the model (not from precomputed vectors).
  virtual void encode_item_entry(std::size_t entry, float* output, Workspace& workspace) const noexcept = 0;
  // Multi-interest models: the user vector for a known target item vector (label-aware attention) from the
  // user_vector_count() interests encode_user wrote and the active count it reported. Others return false.
  virtual bool label_aware_vector(const float* /*interests*/, std::size_t /*active*/, const float* /*target*/,
                                  float* /*output*/, Workspace& /*workspace*/) const noexcept {
    return false;
  }
};

// Pointers to a tower's field configs, the form user_fields() returns.
template <class Fields>
std::vector<const format::InputFieldConfig*> field_pointers(const Fields& fields) {
  std::vector<const format::InputFieldConfig*> pointers;
  for (const auto& field : fields) pointers.push_back(&field);
  return pointers;
}

}  // namespace models
RECLITE_END_NAMESPACE
