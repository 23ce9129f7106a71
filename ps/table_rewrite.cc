#include "ps/table_rewrite.h"

#include <cstdint>
#include <cstring>

namespace ctrps::ps {

Status RowBasisChange::Validate(int old_width, int new_width) const {
  auto bad = [&](const std::string& m) { return Status::InvalidArgument("row basis change: " + m); };
  if (keep_prefix < 0 || in_dim < 1 || out_dim < 1 || in_dim > (1 << 16) || out_dim > (1 << 16))
    return bad("keep " + std::to_string(keep_prefix) + ", in " + std::to_string(in_dim) +
               ", out " + std::to_string(out_dim));
  if (keep_prefix + in_dim != old_width)
    return bad("maps " + std::to_string(keep_prefix + in_dim) + " floats, the rows hold " +
               std::to_string(old_width));
  if (keep_prefix + out_dim != new_width)
    return bad("makes " + std::to_string(keep_prefix + out_dim) + " floats, the new rows hold " +
               std::to_string(new_width));
  if (mean.size() != static_cast<size_t>(in_dim) ||
      basis.size() != static_cast<size_t>(in_dim) * out_dim)
    return bad("mean/basis sizes " + std::to_string(mean.size()) + "/" +
               std::to_string(basis.size()));
  return Status::OK();
}

void RowBasisChange::Apply(const float* old_row, float* new_row) const {
  for (int i = 0; i < keep_prefix; ++i) new_row[i] = old_row[i];
  double centred[1024];
  std::vector<double> big;
  double* c = centred;
  if (in_dim > 1024) {
    big.resize(in_dim);
    c = big.data();
  }
  for (int i = 0; i < in_dim; ++i) c[i] = static_cast<double>(old_row[keep_prefix + i]) - mean[i];
  for (int j = 0; j < out_dim; ++j) {
    const double* u = basis.data() + static_cast<size_t>(j) * in_dim;
    double s = 0;
    for (int i = 0; i < in_dim; ++i) s += c[i] * u[i];
    new_row[keep_prefix + j] = static_cast<float>(s);
  }
}

namespace {
struct RewriteHeader {
  int32_t keep_prefix, in_dim, out_dim, scratch_bytes;
};
}  // namespace

std::string EncodeRewrite(const TableConfig& config, const RowBasisChange& change,
                          const std::string& scratch_dir) {
  RewriteHeader h{change.keep_prefix, change.in_dim, change.out_dim,
                  static_cast<int32_t>(scratch_dir.size())};
  std::string blob(sizeof(TableConfig) + sizeof(h), '\0');
  std::memcpy(&blob[0], &config, sizeof(TableConfig));
  std::memcpy(&blob[sizeof(TableConfig)], &h, sizeof(h));
  blob.append(reinterpret_cast<const char*>(change.mean.data()), change.mean.size() * 8);
  blob.append(reinterpret_cast<const char*>(change.basis.data()), change.basis.size() * 8);
  blob += scratch_dir;
  return blob;
}

Status DecodeRewrite(const char* blob, size_t bytes, TableConfig* config, RowBasisChange* change,
                     std::string* scratch_dir) {
  RewriteHeader h;
  if (bytes < sizeof(TableConfig) + sizeof(h))
    return Status::Corruption("rewrite request of " + std::to_string(bytes) + " bytes is too short");
  std::memcpy(config, blob, sizeof(TableConfig));
  std::memcpy(&h, blob + sizeof(TableConfig), sizeof(h));
  if (h.in_dim < 1 || h.out_dim < 1 || h.in_dim > (1 << 16) || h.out_dim > (1 << 16) ||
      h.keep_prefix < 0 || h.keep_prefix > (1 << 16) || h.scratch_bytes < 0)
    return Status::Corruption("rewrite request: bad sizes");
  const uint64_t doubles = static_cast<uint64_t>(h.in_dim) * (1 + static_cast<uint64_t>(h.out_dim));
  const uint64_t want = sizeof(TableConfig) + sizeof(h) + doubles * 8 + h.scratch_bytes;
  if (want != bytes)
    return Status::Corruption("rewrite request of " + std::to_string(bytes) +
                              " bytes, its sizes say " + std::to_string(want));
  change->keep_prefix = h.keep_prefix;
  change->in_dim = h.in_dim;
  change->out_dim = h.out_dim;
  const char* p = blob + sizeof(TableConfig) + sizeof(h);
  change->mean.resize(h.in_dim);
  std::memcpy(change->mean.data(), p, h.in_dim * 8);
  p += h.in_dim * 8;
  change->basis.resize(static_cast<size_t>(h.in_dim) * h.out_dim);
  std::memcpy(change->basis.data(), p, change->basis.size() * 8);
  p += change->basis.size() * 8;
  scratch_dir->assign(p, h.scratch_bytes);
  return Status::OK();
}

}  // namespace ctrps::ps
