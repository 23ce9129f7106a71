#include "common/status.h"

namespace ctrps {

const char* CodeName(Status::Code code) {
  switch (code) {
    case Status::Code::kOk: return "OK";
    case Status::Code::kInvalidArgument: return "Invalid argument";
    case Status::Code::kNotFound: return "Not found";
    case Status::Code::kIOError: return "IO error";
    case Status::Code::kCorruption: return "Corruption";
    case Status::Code::kUnavailable: return "Unavailable";
    case Status::Code::kFailedPrecondition: return "Failed precondition";
    case Status::Code::kInternal: return "Internal";
    case Status::Code::kOutOfRange: return "Out of range";
    case Status::Code::kUnimplemented: return "Unimplemented";
    case Status::Code::kResourceExhausted: return "Resource exhausted";
  }
  return "Unknown";
}

const std::string& Status::message() const {
  static const std::string kEmpty;
  return state_ ? state_->message : kEmpty;
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  return std::string(CodeName(state_->code)) + ": " + state_->message;
}

Status Status::WithContext(const std::string& context) const {
  if (ok()) return *this;
  return Status(state_->code, context + ": " + state_->message);
}

}  // namespace ctrps
