#include "launch/flags.h"

#include <cerrno>
#include <cstdlib>

namespace ctrps::launch {

StatusOr<Flags> Flags::Parse(const std::vector<std::string>& args,
                             const std::vector<FlagSpec>& specs) {
  Flags out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      out.help_ = true;
      continue;
    }
    if (a.rfind("--", 0) != 0)
      return Status::InvalidArgument("unexpected argument '" + a + "' (flags start with --)");
    std::string name = a.substr(2), value;
    bool has_value = false;
    size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    const FlagSpec* spec = nullptr;
    for (const FlagSpec& s : specs)
      if (s.name == name) spec = &s;
    if (!spec) return Status::InvalidArgument("unknown flag --" + name + " (see --help)");
    if (spec->value_name.empty()) {
      if (has_value) return Status::InvalidArgument("flag --" + name + " takes no value");
      value = "true";
    } else if (!has_value) {
      if (i + 1 >= args.size())
        return Status::InvalidArgument("flag --" + name + " needs a value " + spec->value_name);
      value = args[++i];
    }
    auto& slot = out.values_[name];
    if (!slot.empty() && !spec->repeated)
      return Status::InvalidArgument("flag --" + name + " given more than once");
    slot.push_back(value);
  }
  return out;
}

std::string Flags::Get(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second.back();
}

std::vector<std::string> Flags::GetAll(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

StatusOr<int64_t> Flags::GetInt(const std::string& name, int64_t fallback) const {
  if (!Has(name)) return fallback;
  std::string v = Get(name);
  char* end = nullptr;
  errno = 0;
  long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || errno == ERANGE)
    return Status::InvalidArgument("flag --" + name + ": '" + v + "' is not an integer");
  return static_cast<int64_t>(x);
}

std::string FlagsUsage(const std::string& command, const std::string& summary,
                       const std::vector<FlagSpec>& specs) {
  std::string out = "Usage: ctrps " + command + " [flags]\n\n" + summary + "\n\nFlags:\n";
  for (const FlagSpec& s : specs) {
    std::string left = "  --" + s.name + (s.value_name.empty() ? "" : " " + s.value_name);
    if (left.size() < 28) left += std::string(28 - left.size(), ' ');
    out += left + " " + s.help + (s.repeated ? " (repeatable)" : "") + "\n";
  }
  out += "  --help                      this help\n";
  return out;
}

}  // namespace ctrps::launch
