// A fault injector for the disk stores: it sits in front of every RocksDB
// shard write (RocksDbOptions::write_fault_for_test) and fails the k-th
// write after Arm(k), once, as a full disk or a dying device would. Used to
// check that a failing batch call is reported and never half-applied.
#pragma once

#include <atomic>
#include <memory>

#include "storage/store_options.h"

namespace ctrps::storage::testing {

class WriteFaultInjector {
 public:
  // Installs the injector into opt (the injector must outlive the store).
  void Install(RocksDbOptions* opt) {
    opt->write_fault_for_test = [this](uint32_t shard) -> Status {
      ++writes_;
      if (countdown_.load() < 0) return Status::OK();
      if (countdown_.fetch_sub(1) != 0) return Status::OK();
      ++injected_;
      return Status::IOError("injected write fault on shard " + std::to_string(shard));
    };
  }
  void Arm(int kth_write) { countdown_ = kth_write; }
  void Disarm() { countdown_ = -1; }
  int injected() const { return injected_; }
  int writes() const { return writes_; }

 private:
  std::atomic<int> countdown_{-1};
  std::atomic<int> injected_{0}, writes_{0};
};

}  // namespace ctrps::storage::testing
