// Criteo reader throughput: writes a Criteo-shaped file (plain and gzip),
// then times, in one run, a raw read of the bytes (fread; gzread for gzip)
// beside the pipeline reading the same file: the background DataReader and
// the synchronous stream (parsing on the calling thread). Prints rows/s,
// MB/s (uncompressed) and the ratio to the raw read.
//
//   reader_bench [--rows=1000000] [--dir=/tmp/ctrps_reader_bench] [--repeat=2] [--keep]
#include <zlib.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "common/hash.h"
#include "common/logging.h"
#include "worker/data/data_reader.h"

namespace ctrps::worker {
namespace {

struct Flags {
  int64_t rows = 1000000;
  std::string dir = "/tmp/ctrps_reader_bench";
  int repeat = 2;
  bool keep = false;
};

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--rows=", 0) == 0) {
      f.rows = std::atoll(a.c_str() + 7);
    } else if (a.rfind("--dir=", 0) == 0) {
      f.dir = a.substr(6);
    } else if (a.rfind("--repeat=", 0) == 0) {
      f.repeat = std::max(1, std::atoi(a.c_str() + 9));
    } else if (a == "--keep") {
      f.keep = true;
    } else {
      std::fprintf(stderr, "usage: reader_bench [--rows=N] [--dir=PATH] [--repeat=N] [--keep]\n");
      std::exit(2);
    }
  }
  return f;
}

// Missing rates and log-normal parameters loosely after the Criteo Kaggle
// data: I1..I13 counts (I2 may be negative), C1..C26 tokens with
// vocabularies from tens to millions.
constexpr double kIntMissing[13] = {0.45, 0.0, 0.21, 0.22, 0.026, 0.22, 0.04, 0.0005, 0.04, 0.45, 0.04, 0.76, 0.22};
constexpr double kIntLogMean[13] = {0.8, 2.5, 2.0, 1.5, 7.5, 3.5, 1.5, 2.5, 3.5, 0.3, 1.0, 0.3, 1.5};
constexpr double kCatMissing[26] = {0,    0,    0.034, 0.034, 0,    0.12, 0,    0,    0, 0.034, 0,    0.034, 0,
                                    0,    0,    0.034, 0,    0,    0.44, 0.44, 0.034, 0.76, 0,    0.034, 0.44, 0.44};
constexpr double kCatVocab[26] = {1.5e3, 600,  1e7, 2e6,  300, 25,  1.2e4, 600, 3,  9e4, 5e3, 8e6, 3e3,
                                  27,    1e4,  5e6, 10,   5e3, 2e3, 4,     6e6, 18,  15, 2e5, 100, 1e5};

std::string GenerateCriteo(int64_t rows) {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::string out;
  out.reserve(static_cast<size_t>(rows) * 240);
  char buf[32];
  for (int64_t r = 0; r < rows; ++r) {
    out += uniform(rng) < 0.256 ? '1' : '0';
    for (int i = 0; i < 13; ++i) {
      out += '\t';
      if (uniform(rng) < kIntMissing[i]) continue;
      int64_t v = static_cast<int64_t>(std::exp(kIntLogMean[i] + 1.5 * normal(rng)));
      if (i == 1 && uniform(rng) < 0.05) v = -1 - static_cast<int64_t>(rng() % 3);
      out += std::to_string(v);
    }
    for (int c = 0; c < 26; ++c) {
      out += '\t';
      if (uniform(rng) < kCatMissing[c]) continue;
      double u = uniform(rng);
      uint64_t id = static_cast<uint64_t>(std::exp(u * u * std::log(kCatVocab[c])));  // heavy head
      std::snprintf(buf, sizeof(buf), "%08x", static_cast<unsigned>(Mix64(id * 26 + c)));
      out += buf;
    }
    out += '\n';
  }
  return out;
}

double Seconds(const std::function<void()>& fn) {
  auto start = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Best (shortest) time of `repeat` runs.
double Best(int repeat, const std::function<void()>& fn) {
  double best = 1e300;
  for (int i = 0; i < repeat; ++i) best = std::min(best, Seconds(fn));
  return best;
}

uint64_t RawFread(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) std::abort();
  std::vector<char> buf(1 << 20);
  uint64_t total = 0, newlines = 0;
  while (size_t n = std::fread(buf.data(), 1, buf.size(), f)) {
    total += n;
    newlines += static_cast<uint64_t>(std::count(buf.data(), buf.data() + n, '\n'));  // touch the bytes
  }
  std::fclose(f);
  return total + (newlines & 0);
}

uint64_t RawGzread(const std::string& path) {
  gzFile gz = gzopen(path.c_str(), "rb");
  if (gz == nullptr) std::abort();
  gzbuffer(gz, 256 << 10);
  std::vector<char> buf(1 << 20);
  uint64_t total = 0;
  int n;
  while ((n = gzread(gz, buf.data(), static_cast<unsigned>(buf.size()))) > 0) total += static_cast<uint64_t>(n);
  gzclose(gz);
  return total;
}

DataReaderOptions ReaderOptions(const std::string& path) {
  DataReaderOptions options;
  options.input = path;
  options.batching.batch_size_rows = 4096;
  options.prefetch_batches = 8;
  return options;
}

int64_t ReadWithDataReader(const std::string& path) {
  auto reader = DataReader::Open(ReaderOptions(path));
  if (!reader.ok()) {
    std::fprintf(stderr, "%s\n", reader.status().ToString().c_str());
    std::exit(1);
  }
  Batch batch;
  int64_t rows = 0;
  while (true) {
    StatusOr<bool> more = (*reader)->Next(&batch);
    if (!more.ok()) {
      std::fprintf(stderr, "%s\n", more.status().ToString().c_str());
      std::exit(1);
    }
    if (!*more) break;
    rows += batch.size();
  }
  return rows;
}

int64_t ReadWithStream(const std::string& path) {
  auto stream = OpenBatchStream(ReaderOptions(path));
  if (!stream.ok()) std::exit(1);
  Batch batch;
  int64_t rows = 0;
  while (true) {
    StatusOr<bool> more = (*stream)->Next(&batch);
    if (!more.ok() || !*more) break;
    rows += batch.size();
  }
  return rows;
}

void WriteGzipFile(const std::string& path, const std::string& data) {
  gzFile gz = gzopen(path.c_str(), "wb6");
  for (size_t off = 0; off < data.size(); off += 1 << 24) {
    unsigned len = static_cast<unsigned>(std::min<size_t>(1 << 24, data.size() - off));
    if (gzwrite(gz, data.data() + off, len) != static_cast<int>(len)) std::abort();
  }
  gzclose(gz);
}

}  // namespace
}  // namespace ctrps::worker

int main(int argc, char** argv) {
  ctrps::InitLogging("info");  // log lines to stderr, the tables to stdout
  using namespace ctrps::worker;
  Flags flags = ParseFlags(argc, argv);
  std::filesystem::create_directories(flags.dir);
  const std::string plain = flags.dir + "/criteo_bench.txt";
  const std::string gz = flags.dir + "/criteo_bench.txt.gz";
  std::printf("generating %lld Criteo rows in %s ...\n", static_cast<long long>(flags.rows), flags.dir.c_str());
  {
    std::string data = GenerateCriteo(flags.rows);
    std::FILE* f = std::fopen(plain.c_str(), "wb");
    std::fwrite(data.data(), 1, data.size(), f);
    std::fclose(f);
    WriteGzipFile(gz, data);
  }
  const double mb = static_cast<double>(std::filesystem::file_size(plain)) / 1e6;
  const double gz_mb = static_cast<double>(std::filesystem::file_size(gz)) / 1e6;
  std::printf("file: %.1f MB plain (%.0f bytes/row), %.1f MB gzip; best of %d runs each\n\n", mb,
              mb * 1e6 / flags.rows, gz_mb, flags.repeat);

  struct Row {
    const char* name;
    double seconds;
    int64_t rows;
    double raw_seconds;
  };
  std::vector<Row> table;
  int64_t rows = 0;
  double raw = Best(flags.repeat, [&] { RawFread(plain); });
  table.push_back({"plain  raw fread", raw, 0, raw});
  table.push_back({"plain  DataReader (bg thread)", Best(flags.repeat, [&] { rows = ReadWithDataReader(plain); }), rows, raw});
  table.push_back({"plain  BatchStream (this thread)", Best(flags.repeat, [&] { rows = ReadWithStream(plain); }), rows, raw});
  double raw_gz = Best(flags.repeat, [&] { RawGzread(gz); });
  table.push_back({"gzip   raw gzread", raw_gz, 0, raw_gz});
  table.push_back({"gzip   DataReader (bg thread)", Best(flags.repeat, [&] { rows = ReadWithDataReader(gz); }), rows, raw_gz});
  table.push_back({"gzip   BatchStream (this thread)", Best(flags.repeat, [&] { rows = ReadWithStream(gz); }), rows, raw_gz});

  std::printf("%-34s %9s %12s %10s %16s\n", "case", "seconds", "rows/s", "MB/s", "reader/raw (MB/s)");
  for (const Row& r : table) {
    char rows_per_s[32] = "-";
    if (r.rows > 0) std::snprintf(rows_per_s, sizeof(rows_per_s), "%.0f", r.rows / r.seconds);
    std::printf("%-34s %9.3f %12s %10.1f %16.3f\n", r.name, r.seconds, rows_per_s, mb / r.seconds,
                r.raw_seconds / r.seconds);
    if (r.rows > 0 && r.rows != flags.rows) {
      std::fprintf(stderr, "error: read %lld rows, wrote %lld\n", static_cast<long long>(r.rows),
                   static_cast<long long>(flags.rows));
      return 1;
    }
  }
  if (!flags.keep) {
    std::filesystem::remove(plain);
    std::filesystem::remove(gz);
  }
  return 0;
}
