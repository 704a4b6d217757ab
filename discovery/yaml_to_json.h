// YAML text to JSON text, keeping types right, for configs that are proto messages.
//
// Config files are YAML, but protobuf parses JSON (google::protobuf::util::JsonStringToMessage,
// the route Envoy's MessageUtil::loadFromYaml takes). This file does the YAML half: parse one
// document, decide what each scalar is, and write JSON. Scalars follow the YAML 1.2 core schema:
// an unquoted 8080 is a number, a quoted "8080" a string, unquoted true/false (also True, TRUE)
// booleans, null/~/nothing null; "yes", "on", "1_000" (YAML 1.1 forms) are plain strings.
// Explicit core tags (!!str, !!int, !!float, !!bool, !!null) are honoured.
//
// One Ferry-specific tag: a list item or a mapping value tagged `!disabled` is left out, as if
// it were not in the file. It lets an example carry a ready-made stanza that is switched on by
// deleting the single line that holds the tag (see config/examples/connector.yaml).
//
// Every function here is pure and thread-compatible; errors are INVALID_ARGUMENT worded by
// config_error.h, naming the source and the line and column of the node.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "discovery/config_error.h"
#include "yaml-cpp/yaml.h"

namespace ferry::discovery {

// The tag that leaves a list item or mapping value out of the loaded config.
inline constexpr absl::string_view kDisabledTag = "!disabled";

// Nesting deeper than this is refused (also stops alias cycles such as `a: &x [*x]`).
inline constexpr int kMaxYamlDepth = 64;
// Most nodes one walk may visit; stops alias bombs ("billion laughs"). A file without aliases
// needs at least two bytes a node, so no file within config_loader.h's 1 MiB bound gets here
// without aliases.
inline constexpr int kMaxYamlNodes = 1 << 19;

// Bounds one walk over a YAML tree: its depth and the nodes it visits. Aliases make a small
// file a huge (or cyclic) tree, and every walker (the JSON writer, the schema check) spends
// from one of these per walk. Not thread-safe.
class YamlWalkBudget {
 public:
  // OK, or the error (at `node`, `path`) for a walk that went deeper than kMaxYamlDepth or
  // past kMaxYamlNodes nodes. Call once per node visited.
  absl::Status Visit(const YAML::Node& node, absl::string_view source, absl::string_view path,
                     int depth);

 private:
  int visited_ = 0;
};

// Parses `text` as one YAML document. An empty document (nothing, or only comments) is a null
// node. Errors: a syntax error ("<source>:<line>:<column>: YAML syntax error: <what>"), or more
// than one document in the stream.
absl::StatusOr<YAML::Node> ParseYamlDocument(absl::string_view text, absl::string_view source);

// Where `node` starts in its file; unknown (line 0) for a node with no mark.
ConfigLocation LocationOf(const YAML::Node& node);

// True when `node` carries the `!disabled` tag.
bool IsDisabled(const YAML::Node& node);

// What a scalar node means.
enum class YamlScalarKind { kNull, kBool, kInt, kFloat, kString };

struct YamlScalar {
  YamlScalarKind kind = YamlScalarKind::kNull;
  // The value as JSON text: null, true, 8080, -3, 1.5, "Infinity", "some \"text\"".
  // Integers are plain decimals (hex 0x1F and octal 0o17 are converted).
  std::string json;
};

// Resolves a scalar (or null) node. Errors, at `path` in `source`: a tag other than the core
// ones, an integer beyond 64 bits, an explicit !!int/!!float/!!bool/!!null whose text is not
// one. `node` must not be a mapping or sequence.
absl::StatusOr<YamlScalar> ResolveYamlScalar(const YAML::Node& node, absl::string_view source,
                                             absl::string_view path);

// Human words for a resolved scalar in error messages: `the number 8080`, `the string "x"`,
// `the boolean true`, `null`.
std::string DescribeScalar(const YamlScalar& scalar, const YAML::Node& node);

// The whole tree as compact JSON: mappings become objects (keys as strings), sequences arrays,
// scalars as ResolveYamlScalar says, `!disabled` nodes are dropped. A null or empty document
// gives "{}" only when `null_as_empty_object` is set (the top of a config file), else "null".
// Errors: those of ResolveYamlScalar, a non-scalar mapping key, too deep, too many nodes.
absl::StatusOr<std::string> YamlToJson(const YAML::Node& node, absl::string_view source,
                                       bool null_as_empty_object = false);

}  // namespace ferry::discovery
