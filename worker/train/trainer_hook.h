// What a compression method running inside training implements
// (COMPRESSION.md: DeepLight's gradual pruning, UMEC's constrained
// training). Every worker's trainer calls its hook at the same points of
// the same steps, so a hook may use collectives among the workers.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "worker/nn/model.h"

namespace ctrps::worker {

class TrainerHook {
 public:
  virtual ~TrainerHook() = default;
  // After Backward, before the push: may change the batch's sparse
  // gradients (e.g. masks). Not called for a worker's empty batches.
  virtual void BeforePush(SparseBatch* /*batch*/) {}
  // After each step's dense optimizer step (and, in BSP, with the step's
  // push applied everywhere); `step` counts the steps done.
  [[nodiscard]] virtual Status AfterStep(int64_t /*step*/) { return Status::OK(); }
  // After the last step of each epoch, before its evaluation.
  [[nodiscard]] virtual Status AfterEpoch(int64_t /*step*/) { return Status::OK(); }
  // State that checkpoints keep (in each worker's state) and a resume
  // gives back before the first step, so a resumed run takes the same
  // decisions. Empty: none.
  virtual std::string SaveState() const { return {}; }
  [[nodiscard]] virtual Status RestoreState(const std::string& /*state*/) { return Status::OK(); }
};

}  // namespace ctrps::worker
