// The process's own memory use, for reports (Linux: /proc/self/status).
#pragma once

#include <cstdint>
#include <string>

namespace ctrps {

// Peak resident set size (VmHWM) in bytes; -1 where unknown.
int64_t PeakRssBytes();

// "418 MiB", "1.50 GiB", "612 KiB".
std::string HumanBytes(int64_t bytes);

}  // namespace ctrps
