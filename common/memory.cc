#include "common/memory.h"

#include <cstdio>
#include <cstring>

namespace ctrps {

int64_t PeakRssBytes() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  int64_t kib = -1;
  while (std::fgets(line, sizeof(line), f)) {
    long long v = 0;
    if (std::strncmp(line, "VmHWM:", 6) == 0 && std::sscanf(line + 6, "%lld", &v) == 1) {
      kib = v;
      break;
    }
  }
  std::fclose(f);
  return kib < 0 ? -1 : kib * 1024;
}

std::string HumanBytes(int64_t bytes) {
  char buf[32];
  if (bytes < 0) return "?";
  if (bytes >= (int64_t{1} << 30))
    std::snprintf(buf, sizeof(buf), "%.2f GiB", bytes / 1073741824.0);
  else if (bytes >= (int64_t{1} << 20))
    std::snprintf(buf, sizeof(buf), "%.0f MiB", bytes / 1048576.0);
  else
    std::snprintf(buf, sizeof(buf), "%.0f KiB", bytes / 1024.0);
  return buf;
}

}  // namespace ctrps
