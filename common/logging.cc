#include "common/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace ctrps {

void InitLogging(const std::string& level, int rank) {
  auto logger = spdlog::stderr_color_mt("ctrps");
  std::string pattern = rank >= 0 ? "[%H:%M:%S.%e] [rank " + std::to_string(rank) + "] [%^%l%$] %v"
                                  : "[%H:%M:%S.%e] [%^%l%$] %v";
  logger->set_pattern(pattern);
  logger->set_level(spdlog::level::from_str(level));
  spdlog::set_default_logger(logger);
}

}  // namespace ctrps
