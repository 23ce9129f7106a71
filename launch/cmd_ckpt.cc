// ctrps ckpt list DIR | inspect CKPT [--config] | verify CKPT|DIR
#include <cstdio>
#include <ctime>
#include <filesystem>

#include "launch/commands.h"
#include "worker/train/checkpoint.h"

namespace ctrps::launch {
namespace {
namespace fs = std::filesystem;

const char kUsage[] =
    "Usage: ctrps ckpt <list|inspect|verify> PATH\n"
    "\n"
    "  list DIR            the checkpoints under a checkpoint directory: step, full or\n"
    "                      incremental (and its base), whole or unfinished, size, rows\n"
    "  inspect CKPT        one checkpoint: step, model, shards, workers, tables (dims,\n"
    "                      optimizer floats, rows), dense parameters, files with sizes\n"
    "                      and checksums; --config also prints the job config\n"
    "  verify CKPT|DIR     checks every file (sizes, crc32, shard structure) of a\n"
    "                      checkpoint and the chain it builds on, or of every checkpoint\n"
    "                      under a directory, and names the one a resume would use.\n"
    "                      Exit code 1 if a checked checkpoint is damaged.\n";

std::string Human(uint64_t bytes) {
  char buf[32];
  if (bytes >= (uint64_t{1} << 30)) std::snprintf(buf, sizeof(buf), "%.2f GiB", bytes / 1073741824.0);
  else if (bytes >= (1u << 20)) std::snprintf(buf, sizeof(buf), "%.1f MiB", bytes / 1048576.0);
  else std::snprintf(buf, sizeof(buf), "%.1f KiB", bytes / 1024.0);
  return buf;
}

std::string When(int64_t unix_ms) {
  const std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  char buf[32];
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

void Totals(const ckpt::CheckpointManifest& m, uint64_t* bytes, uint64_t* rows) {
  *bytes = *rows = 0;
  for (const auto& f : m.files()) {
    *bytes += f.bytes();
    *rows += f.rows();
  }
}

int List(const std::string& root) {
  auto all = worker::ListCheckpoints(root);
  if (!all.ok()) {
    std::fprintf(stderr, "ctrps ckpt list: %s\n", all.status().ToString().c_str());
    return 1;
  }
  if (all->empty()) {
    std::printf("no checkpoints under %s\n", root.c_str());
    return 0;
  }
  std::printf("%-20s %10s  %-28s %10s %12s  %s\n", "checkpoint", "step", "kind", "size", "rows",
              "written");
  for (const auto& l : *all) {
    if (!l.whole) {
      std::printf("%-20s %10lld  %-28s %10s %12s  %s\n", l.name.c_str(),
                  static_cast<long long>(l.step),
                  l.unfinished ? "UNFINISHED (ignored)" : "DAMAGED (manifest)", "-", "-", "-");
      continue;
    }
    auto m = worker::ReadCheckpointManifest(l.path);
    if (!m.ok()) continue;
    uint64_t bytes, rows;
    Totals(*m, &bytes, &rows);
    const std::string kind = m->incremental() ? "incremental on " + m->base() : "full";
    std::printf("%-20s %10lld  %-28s %10s %12llu  %s\n", l.name.c_str(),
                static_cast<long long>(l.step), kind.c_str(), Human(bytes).c_str(),
                static_cast<unsigned long long>(rows), When(m->created_unix_ms()).c_str());
  }
  std::printf("(not verified: `ctrps ckpt verify %s` reads every file)\n", root.c_str());
  return 0;
}

int Inspect(const std::string& dir, bool config) {
  auto m = worker::ReadCheckpointManifest(dir);
  if (!m.ok()) {
    std::fprintf(stderr, "ctrps ckpt inspect: %s\n", m.status().ToString().c_str());
    return 1;
  }
  uint64_t bytes, rows;
  Totals(*m, &bytes, &rows);
  std::printf("checkpoint      %s\n", dir.c_str());
  std::printf("step            %lld (epoch %d)\n", static_cast<long long>(m->step()), m->epoch() + 1);
  std::printf("written         %s\n", When(m->created_unix_ms()).c_str());
  std::printf("model           %s\n", m->model_type().c_str());
  std::printf("kind            %s\n",
              m->incremental()
                  ? ("incremental: rows updated after step " + std::to_string(m->since_step()) +
                     ", builds on " + m->base() + " (chain of " +
                     std::to_string(m->chain_length()) + ")").c_str()
                  : "full");
  if (m->num_servers() > 0)
    std::printf("layout          %u virtual shards, written by %d worker(s) and %d server(s)\n",
                m->virtual_shards(), m->num_workers(), m->num_servers());
  else
    std::printf("layout          %u virtual shards, written by one process (no servers)\n",
                m->virtual_shards());
  std::printf("size            %s in %d files, %llu rows\n", Human(bytes).c_str(), m->files_size(),
              static_cast<unsigned long long>(rows));
  std::printf("\ntables          id   dim  optimizer floats  rows\n");
  for (const auto& t : m->tables())
    std::printf("                %3d  %4d  %16d  %llu\n", t.table_id(), t.dim(), t.slot_floats(),
                static_cast<unsigned long long>(t.rows()));
  std::printf("\ndense params    %d (optimizer steps %lld)\n", m->dense_params_size(),
              static_cast<long long>(m->dense_optimizer_steps()));
  for (const auto& p : m->dense_params())
    std::printf("                %-28s %6d x %-6d at %llu\n", p.name().c_str(), p.rows(), p.cols(),
                static_cast<unsigned long long>(p.offset()));
  std::printf("dense arrays   ");
  for (const auto& a : m->dense_arrays())
    std::printf(" %s[%llu]", a.name().c_str(), static_cast<unsigned long long>(a.floats()));
  std::printf("\n\nfiles           %-22s %12s  %-8s  %s\n", "name", "bytes", "crc32", "rows");
  for (const auto& f : m->files())
    std::printf("                %-22s %12llu  %08x  %llu\n", f.path().c_str(),
                static_cast<unsigned long long>(f.bytes()), f.crc32(),
                static_cast<unsigned long long>(f.rows()));
  if (config) std::printf("\nconfig:\n%s", m->config_text().c_str());
  return 0;
}

int Verify(const std::string& path) {
  std::error_code ec;
  // One checkpoint: it has a manifest, or is named like one (a committed
  // checkpoint whose manifest is missing is damaged, not a directory of
  // checkpoints).
  const std::string name = fs::path(path).lexically_normal().filename().string();
  if (fs::exists(fs::path(path) / worker::kCheckpointManifestName, ec) ||
      (worker::CheckpointStep(name) >= 0 && fs::is_directory(path, ec))) {
    Status s = worker::VerifyCheckpoint(path);
    if (!s.ok()) {
      std::printf("DAMAGED  %s\n", s.message().c_str());
      return 1;
    }
    auto chain = worker::CheckpointChain(path);
    std::printf("OK       %s (%zu checkpoint%s checked)\n", path.c_str(),
                chain.ok() ? chain->size() : 1, chain.ok() && chain->size() > 1 ? "s" : "");
    return 0;
  }
  auto all = worker::ListCheckpoints(path);
  if (!all.ok() || all->empty()) {
    std::fprintf(stderr, "ctrps ckpt verify: %s is neither a checkpoint nor a directory of them\n",
                 path.c_str());
    return 1;
  }
  int bad = 0;
  std::string resume;
  for (auto it = all->rbegin(); it != all->rend(); ++it) {
    if (it->unfinished) {
      std::printf("SKIPPED  %s: unfinished, never committed (a resume ignores it)\n",
                  it->name.c_str());
      continue;
    }
    Status s = worker::VerifyCheckpoint(it->path);
    if (s.ok()) {
      std::printf("OK       %s\n", it->name.c_str());
      if (resume.empty()) resume = it->name;
    } else {
      ++bad;
      std::printf("DAMAGED  %s\n", s.message().c_str());
    }
  }
  std::printf(resume.empty() ? "no usable checkpoint: a resume starts from scratch\n"
                             : "a resume would use %s\n",
              resume.c_str());
  return bad > 0 ? 1 : 0;
}

}  // namespace

int RunCkpt(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::fputs(kUsage, args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  const std::string sub = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  bool config = false;
  std::vector<std::string> paths;
  for (const auto& a : rest) {
    if (a == "--config" && sub == "inspect") config = true;
    else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "ctrps ckpt %s: unknown flag %s\n\n%s", sub.c_str(), a.c_str(), kUsage);
      return 2;
    } else {
      paths.push_back(a);
    }
  }
  if (paths.size() != 1 || (sub != "list" && sub != "inspect" && sub != "verify")) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  if (sub == "list") return List(paths[0]);
  if (sub == "inspect") return Inspect(paths[0], config);
  return Verify(paths[0]);
}

}  // namespace ctrps::launch
