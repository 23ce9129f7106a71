// Resuming deep inside a gzip input: writes a Criteo-shaped gzip file of
// --mb uncompressed megabytes (level 1, as `gzip -1`), reads a reader
// partition to --at of it, takes the position as a checkpoint does, and
// times a fresh reader's Seek to it two ways: without a restart point
// (what every resume did before: decompress from the file's start and
// skip lines) and with the saved restart point. Prints both and the ratio.
//
//   gzip_resume_bench [--mb=2048] [--at=0.9] [--dir=/tmp/ctrps_gzip_resume_bench] [--keep]
#include <zlib.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>

#include "worker/data/gzip_restart.h"
#include "worker/data/partition_reader.h"

namespace ctrps::worker {
namespace {

double Seconds(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

int Main(int argc, char** argv) {
  uint64_t mb = 2048;
  double at = 0.9;
  std::string dir = "/tmp/ctrps_gzip_resume_bench";
  bool keep = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--mb=", 0) == 0) mb = std::strtoull(a.c_str() + 5, nullptr, 10);
    else if (a.rfind("--at=", 0) == 0) at = std::atof(a.c_str() + 5);
    else if (a.rfind("--dir=", 0) == 0) dir = a.substr(6);
    else if (a == "--keep") keep = true;
    else {
      std::fprintf(stderr, "unknown flag %s\n", a.c_str());
      return 2;
    }
  }
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/train_" + std::to_string(mb) + "mb.txt.gz";
  if (!std::filesystem::exists(path)) {
    const auto t = std::chrono::steady_clock::now();
    gzFile gz = gzopen(path.c_str(), "wb1");
    std::mt19937_64 rng(7);
    std::string line;
    uint64_t written = 0;
    while (written < mb << 20) {
      line = std::to_string(rng() % 2);
      for (int f = 0; f < 13; ++f) line += "\t" + std::to_string(rng() % 1000);
      for (int f = 0; f < 26; ++f) {
        char hex[16];
        std::snprintf(hex, sizeof(hex), "\t%08x", static_cast<unsigned>(rng() % 50000));
        line += hex;
      }
      line += "\n";
      gzwrite(gz, line.data(), static_cast<unsigned>(line.size()));
      written += line.size();
    }
    gzclose(gz);
    std::printf("wrote %s: %llu MB uncompressed, %.0f MB compressed, in %.1f s\n", path.c_str(),
                static_cast<unsigned long long>(written >> 20),
                std::filesystem::file_size(path) / 1048576.0, Seconds(t));
  }
  std::vector<InputFile> files = {{path, std::filesystem::file_size(path), true}};
  PartitionReaderOptions options;
  auto reader = std::move(PartitionReader::Open(files, options)).value();
  InputLine line;
  const auto t_read = std::chrono::steady_clock::now();
  const uint64_t target = static_cast<uint64_t>(at * static_cast<double>(mb << 20));
  while (reader->Position().byte_offset < target) {
    auto more = reader->Next(&line);
    if (!more.ok() || !*more) break;
  }
  const double read_s = Seconds(t_read);
  ReadPosition pos = reader->Position();
  const std::string restart = reader->RestartPointBefore(pos);
  std::printf("position: line %llu, uncompressed byte %llu (first read: %.2f s); restart point: %s\n",
              static_cast<unsigned long long>(pos.line_in_file),
              static_cast<unsigned long long>(pos.byte_offset), read_s,
              restart.empty() ? "none" : (std::to_string(restart.size()) + " bytes").c_str());

  double secs[2];
  for (int with = 0; with < 2; ++with) {
    ReadPosition p = pos;
    p.gzip_restart = with ? restart : "";
    auto fresh = std::move(PartitionReader::Open(files, options)).value();
    const auto t = std::chrono::steady_clock::now();
    Status s = fresh->Seek(p);
    auto more = fresh->Next(&line);  // the first line after the position
    secs[with] = Seconds(t);
    if (!s.ok() || !more.ok() || !*more) {
      std::fprintf(stderr, "seek failed: %s\n", s.ok() ? more.status().ToString().c_str() : s.ToString().c_str());
      return 1;
    }
  }
  std::printf("\n%-44s %10s\n", "resume (Seek + first line)", "seconds");
  std::printf("%-44s %10.3f\n", "from the file's start (no restart point)", secs[0]);
  std::printf("%-44s %10.3f\n", "from the saved restart point", secs[1]);
  std::printf("ratio: %.0fx faster\n", secs[0] / std::max(secs[1], 1e-9));
  if (!keep) std::filesystem::remove(path);
  return 0;
}

}  // namespace
}  // namespace ctrps::worker

int main(int argc, char** argv) { return ctrps::worker::Main(argc, argv); }
