// How configuration errors are worded, and where in a file a field sits.
//
// Every error about a config file reads
//   "<source>:<line>:<column>: <field path>: <reason>"
// e.g. `connector.yaml:14:18: services[2].backends[0].address: "x" is not host:port ...`,
// dropping the location when it is not known (a field that is missing) and the path when the
// problem is the file as a whole (a YAML syntax error). Lines and columns are 1-based, as
// editors count them. Field paths use proto field names and 0-based list indices.
#pragma once

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ferry::discovery {

// A place in a config file; line 0 means "unknown".
struct ConfigLocation {
  int line = 0;    // 1-based.
  int column = 0;  // 1-based.
};

// INVALID_ARGUMENT with the message format above. `path` and `where` may be empty/unknown.
absl::Status ConfigError(absl::string_view source, ConfigLocation where, absl::string_view path,
                         absl::string_view reason);

// Field path -> where that field (or list item) is written in the file, filled while the YAML
// tree is checked against the schema, and used to place errors found later, by validation, on
// the proto. Not thread-safe; one per load.
class ConfigLocations {
 public:
  // Remembers `where` for `path` ("services[2].backends[0]"); the first record of a path wins.
  void Record(const std::string& path, ConfigLocation where);

  // Where `path` is written, or, when it is not (a missing field), where its closest written
  // parent is ("services[2].port" -> "services[2]"). Unknown when nothing on the way is.
  ConfigLocation Find(absl::string_view path) const;

 private:
  absl::flat_hash_map<std::string, ConfigLocation> by_path_;
};

}  // namespace ferry::discovery
