#include "discovery/config_error.h"

#include "absl/strings/str_cat.h"

namespace ferry::discovery {

absl::Status ConfigError(absl::string_view source, ConfigLocation where, absl::string_view path,
                         absl::string_view reason) {
  std::string message(source);
  if (where.line > 0) absl::StrAppend(&message, ":", where.line, ":", where.column);
  absl::StrAppend(&message, ": ");
  if (!path.empty()) absl::StrAppend(&message, path, ": ");
  absl::StrAppend(&message, reason);
  return absl::InvalidArgumentError(message);
}

void ConfigLocations::Record(const std::string& path, ConfigLocation where) {
  by_path_.emplace(path, where);
}

ConfigLocation ConfigLocations::Find(absl::string_view path) const {
  while (!path.empty()) {
    if (auto it = by_path_.find(path); it != by_path_.end()) return it->second;
    // Drop the last step: ".field" or "[index]".
    const size_t cut = path.find_last_of(".[");
    if (cut == absl::string_view::npos) break;
    path = path.substr(0, cut);
  }
  return ConfigLocation{};
}

}  // namespace ferry::discovery
