#include "launch/config_loader.h"

#include <filesystem>
#include <algorithm>
#include <fstream>
#include <sstream>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

namespace ctrps::launch {

namespace pb = google::protobuf;

struct LoadedConfig::Impl {
  pb::TextFormat::ParseInfoTree tree;
  std::set<std::string> overridden;
};

LoadedConfig::LoadedConfig() : impl_(std::make_unique<Impl>()) {}
LoadedConfig::~LoadedConfig() = default;
LoadedConfig::LoadedConfig(LoadedConfig&&) noexcept = default;
LoadedConfig& LoadedConfig::operator=(LoadedConfig&&) noexcept = default;

namespace {

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) out.push_back(cur);
  if (!s.empty() && s.back() == sep) out.push_back("");
  return out;
}

class CollectErrors : public pb::io::ErrorCollector {
 public:
  explicit CollectErrors(std::string name) : name_(std::move(name)) {}
  void AddError(int line, pb::io::ColumnNumber column, const std::string& message) override {
    if (!first_.empty()) return;
    first_ = name_ + ":" + std::to_string(line + 1) + ":" + std::to_string(column + 1) + ": " +
             message;
  }
  const std::string& first() const { return first_; }

 private:
  std::string name_, first_;
};

// Parses one --set value into field f, silently: the message that says
// what is wrong is ours (the protobuf parser's default is to log a raw
// "[libprotobuf ERROR ...]" line, e.g. for an int32 out of range).
bool ParseValue(const std::string& text, const pb::FieldDescriptor* f, pb::Message* msg) {
  CollectErrors quiet("--set");
  pb::TextFormat::Parser parser;
  parser.RecordErrorsTo(&quiet);
  return parser.ParseFieldValueFromString(text, f, msg);
}

// "an int32" range hint for numeric fields, for the error message.
std::string RangeHint(const pb::FieldDescriptor* f) {
  switch (f->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_INT32: return " (at most 2147483647)";
    case pb::FieldDescriptor::CPPTYPE_UINT32: return " (at most 4294967295)";
    default: return "";
  }
}

// Applies one "a.b.c=value" override to `job`.
Status ApplyOverride(const std::string& assignment, config::JobConfig* job) {
  size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    return Status::InvalidArgument("--set " + assignment + ": expected field.path=value");
  std::string path = assignment.substr(0, eq), value = assignment.substr(eq + 1);
  pb::Message* msg = job;
  std::vector<std::string> parts = Split(path, '.');
  for (size_t i = 0; i < parts.size(); ++i) {
    const pb::Descriptor* d = msg->GetDescriptor();
    // "stages[2]": element 2 of a repeated message field (which must exist).
    std::string name = parts[i];
    int index = -1;
    const size_t bracket = name.find('[');
    if (bracket != std::string::npos) {
      const std::string digits = name.substr(bracket + 1, name.size() - bracket - 2);
      if (name.back() != ']' || digits.empty() || digits.size() > 6 ||
          digits.find_first_not_of("0123456789") != std::string::npos)
        return Status::InvalidArgument("--set " + path + ": '" + name +
                                       "' is not a field or field[index]");
      index = std::stoi(digits);
      name = name.substr(0, bracket);
    }
    const pb::FieldDescriptor* f = d->FindFieldByName(name);
    if (f == nullptr)
      return Status::InvalidArgument("--set " + path + ": " + d->name() + " has no field '" +
                                     name + "'");
    const pb::Reflection* r = msg->GetReflection();
    bool last = i + 1 == parts.size();
    if (index >= 0) {
      if (last || f->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE || !f->is_repeated())
        return Status::InvalidArgument("--set " + path + ": '" + name +
                                       "' is not a repeated message field to index");
      const int size = r->FieldSize(*msg, f);
      if (index >= size)
        return Status::InvalidArgument("--set " + path + ": '" + name + "' has " +
                                       std::to_string(size) + " entries, no [" +
                                       std::to_string(index) + "]");
      msg = r->MutableRepeatedMessage(msg, f, index);
      continue;
    }
    if (!last) {
      if (f->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE || f->is_repeated())
        return Status::InvalidArgument("--set " + path + ": '" + parts[i] +
                                       "' is not a message field" +
                                       (f->is_repeated() ? " (index it: " + name + "[0])" : ""));
      msg = r->MutableMessage(msg, f);
      continue;
    }
    if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE)
      return Status::InvalidArgument("--set " + path +
                                     ": a message field cannot be set from the command line; "
                                     "set its fields, or use the config file");
    if (f->is_repeated()) {
      r->ClearField(msg, f);
      if (value.empty()) return Status::OK();
      for (const std::string& item : Split(value, ',')) {
        if (!ParseValue(item, f, msg))
          return Status::InvalidArgument("--set " + path + ": '" + item +
                                         "' is not a valid " + f->cpp_type_name() +
                                         " value" + RangeHint(f));
      }
      return Status::OK();
    }
    std::string v = value;
    if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_STRING) {
      // Accept bare strings: quote them for the text-format value parser.
      std::string q = "\"";
      for (char c : v) {
        if (c == '"' || c == '\\') q += '\\';
        q += c;
      }
      v = q + "\"";
    }
    if (!ParseValue(v, f, msg)) {
      std::string expected = f->cpp_type_name() + RangeHint(f);
      if (f->enum_type()) {
        expected = "one of";
        for (int k = 0; k < f->enum_type()->value_count(); ++k)
          expected += " " + f->enum_type()->value(k)->name();
      }
      return Status::InvalidArgument("--set " + path + ": '" + value + "' is not valid; expected " +
                                     expected);
    }
  }
  return Status::OK();
}

}  // namespace

StatusOr<LoadedConfig> ParseConfigText(const std::string& text, const std::string& name,
                                       const std::vector<std::string>& overrides) {
  LoadedConfig out;
  out.path = name;
  pb::TextFormat::Parser parser;
  CollectErrors errors(name);
  parser.RecordErrorsTo(&errors);
  parser.WriteLocationsTo(&out.impl_->tree);
  if (!parser.ParseFromString(text, &out.job)) {
    return Status::InvalidArgument(errors.first().empty() ? name + ": cannot parse config"
                                                          : errors.first());
  }
  for (const std::string& o : overrides) {
    RETURN_IF_ERROR(ApplyOverride(o, &out.job));
    out.impl_->overridden.insert(o.substr(0, o.find('=')));
  }
  return out;
}

StatusOr<LoadedConfig> LoadConfig(const std::string& path,
                                  const std::vector<std::string>& overrides) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    return Status::InvalidArgument("config file " + path + " is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("config file " + path + " cannot be opened");
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseConfigText(ss.str(), path, overrides);
}

std::string LoadedConfig::Where(const std::string& field_path) const {
  if (impl_->overridden.count(field_path)) return "--set " + field_path;
  const pb::Descriptor* d = config::JobConfig::descriptor();
  const pb::TextFormat::ParseInfoTree* tree = &impl_->tree;
  std::vector<std::string> parts = Split(field_path, '.');
  for (size_t i = 0; i < parts.size() && tree && d; ++i) {
    // "stages[2]": element 2 of a repeated field.
    std::string name = parts[i];
    int index = -1;
    const size_t bracket = name.find('[');
    if (bracket != std::string::npos && name.back() == ']') {
      index = std::atoi(name.c_str() + bracket + 1);
      name = name.substr(0, bracket);
    }
    const pb::FieldDescriptor* f = d->FindFieldByName(name);
    if (!f) break;
    if (i + 1 == parts.size()) {
      auto loc = tree->GetLocation(f, f->is_repeated() ? std::max(index, 0) : -1);
      if (loc.line >= 0)
        return path + ":" + std::to_string(loc.line + 1) + ":" + std::to_string(loc.column + 1) +
               " (" + field_path + ")";
      break;
    }
    tree = tree->GetTreeForNested(f, f->is_repeated() ? std::max(index, 0) : -1);
    d = f->message_type();
  }
  return field_path + (path.empty() ? " (default)" : " (default; not set in " + path + ")");
}

std::string ConfigToText(const config::JobConfig& job) {
  std::string out;
  pb::TextFormat::Printer printer;
  printer.PrintToString(job, &out);
  return out;
}

}  // namespace ctrps::launch
