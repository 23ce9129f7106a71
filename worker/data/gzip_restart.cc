#include "worker/data/gzip_restart.h"

#include <algorithm>
#include <cstring>

namespace ctrps::worker {
namespace {

constexpr char kMagic[8] = {'C', 'T', 'R', 'P', 'G', 'Z', 'R', '1'};
constexpr size_t kMaxWindow = 32768;
constexpr size_t kFixedBytes = 8 + 8 + 4 + 4 + 8 + 4 + 8 + 4;

template <typename T>
void Put(std::string* s, T v) {
  s->append(reinterpret_cast<const char*>(&v), sizeof(T));
}
template <typename T>
T Get(const std::string& s, size_t* pos) {
  T v;
  std::memcpy(&v, s.data() + *pos, sizeof(T));
  *pos += sizeof(T);
  return v;
}

}  // namespace

std::string EncodeGzipRestartPoint(const GzipRestartPoint& p) {
  std::string s(kMagic, 8);
  Put<uint64_t>(&s, p.compressed_offset);
  Put<uint32_t>(&s, static_cast<uint32_t>(p.bits));
  Put<uint32_t>(&s, p.member_start ? 1 : 0);
  Put<uint64_t>(&s, p.uncompressed_offset);
  Put<uint32_t>(&s, p.member_crc);
  Put<uint64_t>(&s, p.member_bytes);
  Put<uint32_t>(&s, static_cast<uint32_t>(p.window.size()));
  s += p.window;
  return s;
}

StatusOr<GzipRestartPoint> DecodeGzipRestartPoint(const std::string& b) {
  auto bad = [](const std::string& why) {
    return Status::Corruption("gzip restart point: " + why);
  };
  if (b.size() < kFixedBytes || std::memcmp(b.data(), kMagic, 8) != 0)
    return bad("not one (" + std::to_string(b.size()) + " bytes)");
  size_t pos = 8;
  GzipRestartPoint p;
  p.compressed_offset = Get<uint64_t>(b, &pos);
  const uint32_t bits = Get<uint32_t>(b, &pos);
  const uint32_t start = Get<uint32_t>(b, &pos);
  p.uncompressed_offset = Get<uint64_t>(b, &pos);
  p.member_crc = Get<uint32_t>(b, &pos);
  p.member_bytes = Get<uint64_t>(b, &pos);
  const uint32_t window = Get<uint32_t>(b, &pos);
  if (bits > 7 || start > 1) return bad("bad bits or flags");
  // The window is checked against the bytes that are there before any copy.
  if (window > kMaxWindow || window != b.size() - pos)
    return bad("window of " + std::to_string(window) + " bytes with " +
               std::to_string(b.size() - pos) + " left");
  if (start == 1 && (window != 0 || bits != 0)) return bad("a member start with a window");
  if (p.compressed_offset == 0 && bits != 0) return bad("bits before the first byte");
  p.bits = static_cast<int>(bits);
  p.member_start = start == 1;
  p.window = b.substr(pos);
  return p;
}

void GzipRestartIndex::Add(GzipRestartPoint p) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!points_.empty() && p.uncompressed_offset <= points_.back().uncompressed_offset) return;
  points_.push_back(std::move(p));
}

std::optional<GzipRestartPoint> GzipRestartIndex::Before(uint64_t uncompressed_offset) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = std::upper_bound(points_.begin(), points_.end(), uncompressed_offset,
                             [](uint64_t off, const GzipRestartPoint& p) {
                               return off < p.uncompressed_offset;
                             });
  if (it == points_.begin()) return std::nullopt;
  return *(it - 1);
}

size_t GzipRestartIndex::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return points_.size();
}

}  // namespace ctrps::worker
