#include "common/progress.h"

#include <unistd.h>

#include <cstdio>

#include <spdlog/spdlog.h>

namespace ctrps {

std::string HumanCount(double v) {
  char buf[32];
  if (v >= 1e9) std::snprintf(buf, sizeof(buf), "%.2fG", v / 1e9);
  else if (v >= 1e6) std::snprintf(buf, sizeof(buf), "%.2fM", v / 1e6);
  else if (v >= 1e3) std::snprintf(buf, sizeof(buf), "%.1fk", v / 1e3);
  else std::snprintf(buf, sizeof(buf), "%.0f", v);
  return buf;
}

std::string HumanDuration(double s) {
  char buf[32];
  if (s < 0 || s > 1e7) return "--";
  long t = static_cast<long>(s + 0.5);
  if (t >= 3600) std::snprintf(buf, sizeof(buf), "%ldh%02ldm", t / 3600, (t % 3600) / 60);
  else if (t >= 60) std::snprintf(buf, sizeof(buf), "%ldm%02lds", t / 60, t % 60);
  else std::snprintf(buf, sizeof(buf), "%lds", t);
  return buf;
}

Progress::Progress(std::string label, int64_t total, std::string unit, double log_interval_s)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total),
      log_interval_s_(log_interval_s), tty_(isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()), last_print_(start_) {}

Progress::~Progress() {
  if (tty_ && !finished_ && done_ > 0) std::fputc('\n', stderr);
}

double Progress::Rate() const {
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  return s > 0 ? done_ / s : 0.0;
}

void Progress::Add(int64_t n, const std::string& extra) {
  done_ += n;
  auto now = std::chrono::steady_clock::now();
  double since = std::chrono::duration<double>(now - last_print_).count();
  if (since >= (tty_ ? 0.2 : log_interval_s_)) {
    last_print_ = now;
    Render(false, extra);
  }
}

void Progress::Finish(const std::string& extra) {
  if (finished_) return;
  finished_ = true;
  Render(true, extra);
}

void Progress::Render(bool final_line, const std::string& extra) {
  double rate = Rate();
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::string msg = label_ + " ";
  if (total_ > 0 || fraction_ >= 0) {
    double frac = total_ > 0 ? std::min(1.0, static_cast<double>(done_) / total_)
                             : std::min(1.0, fraction_);
    if (tty_) {
      const int width = 30;
      int filled = static_cast<int>(frac * width);
      msg += "[" + std::string(filled, '#') + std::string(width - filled, '.') + "] ";
    }
    char pct[16];
    std::snprintf(pct, sizeof(pct), "%5.1f%% ", 100 * frac);
    msg += pct;
    msg += total_ > 0 ? HumanCount(done_) + "/" + HumanCount(total_) + " " + unit_
                      : HumanCount(done_) + " " + unit_;
    double eta = total_ > 0 ? (rate > 0 ? (total_ - done_) / rate : -1)
                            : (frac > 0 ? elapsed * (1 - frac) / frac : -1);
    msg += "  " + HumanCount(rate) + " " + unit_ + "/s";
    msg += final_line ? "  took " + HumanDuration(elapsed) : "  ETA " + HumanDuration(eta);
  } else {
    msg += HumanCount(done_) + " " + unit_ + "  " + HumanCount(rate) + " " + unit_ + "/s  " +
           HumanDuration(elapsed);
  }
  if (!extra.empty()) msg += "  " + extra;
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s%s", msg.c_str(), final_line ? "\n" : "");
    std::fflush(stderr);
  } else {
    spdlog::info("{}", msg);
  }
}

}  // namespace ctrps
