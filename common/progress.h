// Progress reporting for long work: a redrawn bar with rate and ETA when
// stderr is a terminal, otherwise a plain log line every `log_interval_s`.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace ctrps {

class Progress {
 public:
  // total <= 0: unknown total (no percentage or ETA). unit: "rows", "samples".
  Progress(std::string label, int64_t total, std::string unit, double log_interval_s = 10.0);
  ~Progress();

  // Adds `n` finished units; `extra` (e.g. "loss 0.45") is shown beside the rate.
  void Add(int64_t n, const std::string& extra = "");
  // For an unknown total: the fraction of the work done, in [0, 1], when
  // the caller can estimate it (e.g. bytes read); enables percent and ETA.
  void SetFraction(double fraction) { fraction_ = fraction; }
  // Prints the final line (once).
  void Finish(const std::string& extra = "");
  double Rate() const;  // units per second since start
  int64_t done() const { return done_; }

 private:
  void Render(bool final_line, const std::string& extra);
  std::string label_, unit_;
  int64_t total_, done_ = 0;
  double fraction_ = -1;
  double log_interval_s_;
  bool tty_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_print_;
};

// "1.23M", "45.6k": compact human form of a count or rate.
std::string HumanCount(double v);
// "1h02m", "3m20s", "12s".
std::string HumanDuration(double seconds);

}  // namespace ctrps
