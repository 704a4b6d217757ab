#include "discovery/yaml_to_json.h"

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace ferry::discovery {
namespace {

constexpr absl::string_view kCoreTagPrefix = "tag:yaml.org,2002:";

bool AllOf(absl::string_view s, bool (*pred)(unsigned char)) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!pred(static_cast<unsigned char>(c))) return false;
  }
  return true;
}
bool IsDigit(unsigned char c) { return c >= '0' && c <= '9'; }
bool IsOctalDigit(unsigned char c) { return c >= '0' && c <= '7'; }
bool IsHexDigit(unsigned char c) { return absl::ascii_isxdigit(c); }

absl::string_view StripSign(absl::string_view s) {
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) s.remove_prefix(1);
  return s;
}

bool IsNullText(absl::string_view s) {
  return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

bool ParseBoolText(absl::string_view s, bool* value) {
  if (s == "true" || s == "True" || s == "TRUE") {
    *value = true;
    return true;
  }
  if (s == "false" || s == "False" || s == "FALSE") {
    *value = false;
    return true;
  }
  return false;
}

// YAML 1.2 core schema integers: [-+]?[0-9]+ | 0o[0-7]+ | 0x[0-9a-fA-F]+.
bool IsIntText(absl::string_view s) {
  if (absl::StartsWith(s, "0o")) return AllOf(s.substr(2), IsOctalDigit);
  if (absl::StartsWith(s, "0x")) return AllOf(s.substr(2), IsHexDigit);
  return AllOf(StripSign(s), IsDigit);
}

// [-+]?(\.inf|\.Inf|\.INF) | \.nan|\.NaN|\.NAN
bool IsSpecialFloatText(absl::string_view s) {
  if (s == ".nan" || s == ".NaN" || s == ".NAN") return true;
  s = StripSign(s);
  return s == ".inf" || s == ".Inf" || s == ".INF";
}

// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool IsFloatText(absl::string_view s) {
  if (IsSpecialFloatText(s)) return true;
  s = StripSign(s);
  size_t i = 0;
  size_t int_digits = 0;
  while (i < s.size() && IsDigit(s[i])) ++i, ++int_digits;
  size_t frac_digits = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && IsDigit(s[i])) ++i, ++frac_digits;
  }
  if (int_digits == 0 && frac_digits == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    const size_t exp_start = i;
    while (i < s.size() && IsDigit(s[i])) ++i;
    if (i == exp_start) return false;
  }
  return i == s.size();
}

// Integer text (IsIntText) as a JSON decimal; false when it does not fit in 64 bits.
bool IntToJson(absl::string_view s, std::string* json) {
  if (absl::StartsWith(s, "0o") || absl::StartsWith(s, "0x")) {
    const std::string digits(s.substr(2));
    errno = 0;
    char* end = nullptr;
    const unsigned long long value = std::strtoull(digits.c_str(), &end, s[1] == 'o' ? 8 : 16);
    if (errno == ERANGE || end != digits.c_str() + digits.size()) return false;
    *json = absl::StrCat(value);
    return true;
  }
  const bool negative = !s.empty() && s[0] == '-';
  if (negative) {
    int64_t value = 0;
    if (!absl::SimpleAtoi(s, &value)) return false;
    *json = absl::StrCat(value);
    return true;
  }
  uint64_t value = 0;
  if (!absl::SimpleAtoi(StripSign(s), &value)) return false;
  *json = absl::StrCat(value);
  return true;
}

// Float text (IsFloatText) as JSON: a number, or "Infinity"/"-Infinity"/"NaN" as proto JSON
// writes them. Uses the shortest of %.15g/%.17g that reads back as the same double.
std::string FloatToJson(absl::string_view s) {
  if (IsSpecialFloatText(s)) {
    if (absl::StrContains(s, "nan") || absl::StrContains(s, "NaN") || absl::StrContains(s, "NAN")) {
      return "\"NaN\"";
    }
    return s[0] == '-' ? "\"-Infinity\"" : "\"Infinity\"";
  }
  const std::string text(s);
  const double value = std::strtod(text.c_str(), nullptr);
  if (std::isinf(value)) return value < 0 ? "\"-Infinity\"" : "\"Infinity\"";
  std::string out = absl::StrFormat("%.15g", value);
  if (std::strtod(out.c_str(), nullptr) != value) out = absl::StrFormat("%.17g", value);
  return out;
}

void AppendJsonString(absl::string_view s, std::string* out) {
  out->push_back('"');
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (c < 0x20) {
          absl::StrAppendFormat(out, "\\u%04x", c);
        } else {
          out->push_back(ch);
        }
    }
  }
  out->push_back('"');
}

std::string JsonString(absl::string_view s) {
  std::string out;
  AppendJsonString(s, &out);
  return out;
}

absl::Status ScalarError(const YAML::Node& node, absl::string_view source, absl::string_view path,
                         absl::string_view reason) {
  return ConfigError(source, LocationOf(node), path, reason);
}

YamlScalar Scalar(YamlScalarKind kind, std::string json) {
  YamlScalar scalar;
  scalar.kind = kind;
  scalar.json = std::move(json);
  return scalar;
}

// Writes JSON for a tree, bounding depth and the number of nodes visited.
class JsonWriter {
 public:
  explicit JsonWriter(absl::string_view source) : source_(source) {}

  absl::Status Write(const YAML::Node& node, const std::string& path, int depth, std::string* out) {
    if (absl::Status s = budget_.Visit(node, source_, path, depth); !s.ok()) return s;
    switch (node.Type()) {
      case YAML::NodeType::Map:
        return WriteMap(node, path, depth, out);
      case YAML::NodeType::Sequence:
        return WriteSequence(node, path, depth, out);
      default: {
        absl::StatusOr<YamlScalar> scalar = ResolveYamlScalar(node, source_, path);
        if (!scalar.ok()) return scalar.status();
        out->append(scalar->json);
        return absl::OkStatus();
      }
    }
  }

 private:
  absl::Status WriteMap(const YAML::Node& node, const std::string& path, int depth,
                        std::string* out) {
    out->push_back('{');
    bool first = true;
    for (auto it = node.begin(); it != node.end(); ++it) {
      const YAML::Node key = it->first;  // A copy: `it->` is a proxy that dies here.
      if (!key.IsScalar()) {
        return ScalarError(key, source_, path, "a mapping key must be a plain word");
      }
      if (IsDisabled(it->second)) continue;
      const std::string child = path.empty() ? key.Scalar() : absl::StrCat(path, ".", key.Scalar());
      if (!first) out->push_back(',');
      first = false;
      AppendJsonString(key.Scalar(), out);
      out->push_back(':');
      if (absl::Status s = Write(it->second, child, depth + 1, out); !s.ok()) return s;
    }
    out->push_back('}');
    return absl::OkStatus();
  }

  absl::Status WriteSequence(const YAML::Node& node, const std::string& path, int depth,
                             std::string* out) {
    out->push_back('[');
    int index = 0;
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (IsDisabled(*it)) continue;
      if (index > 0) out->push_back(',');
      if (absl::Status s = Write(*it, absl::StrCat(path, "[", index, "]"), depth + 1, out);
          !s.ok()) {
        return s;
      }
      ++index;
    }
    out->push_back(']');
    return absl::OkStatus();
  }

  absl::string_view source_;
  YamlWalkBudget budget_;
};

}  // namespace

absl::Status YamlWalkBudget::Visit(const YAML::Node& node, absl::string_view source,
                                   absl::string_view path, int depth) {
  if (depth > kMaxYamlDepth) {
    return ScalarError(node, source, path,
                       absl::StrCat("nesting is deeper than ", kMaxYamlDepth,
                                    " levels (an alias that contains itself?)"));
  }
  if (++visited_ > kMaxYamlNodes) {
    return ScalarError(node, source, path,
                       absl::StrCat("the document expands to more than ", kMaxYamlNodes,
                                    " nodes (aliases repeated too often?)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<YAML::Node> ParseYamlDocument(absl::string_view text, absl::string_view source) {
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(std::string(text));
  } catch (const YAML::Exception& e) {
    ConfigLocation where;
    if (e.mark.line >= 0) where = {e.mark.line + 1, e.mark.column + 1};
    return ConfigError(source, where, "", absl::StrCat("YAML syntax error: ", e.msg));
  }
  if (documents.size() > 1) {
    return ConfigError(source, LocationOf(documents[1]), "",
                       absl::StrCat("holds ", documents.size(),
                                    " YAML documents (separated by ---); a config file is one"));
  }
  if (documents.empty()) return YAML::Node(YAML::NodeType::Null);
  return documents[0];
}

ConfigLocation LocationOf(const YAML::Node& node) {
  const YAML::Mark mark = node.Mark();
  if (mark.is_null() || mark.line < 0) return ConfigLocation{};
  return ConfigLocation{mark.line + 1, mark.column + 1};
}

bool IsDisabled(const YAML::Node& node) { return node.Tag() == kDisabledTag; }

absl::StatusOr<YamlScalar> ResolveYamlScalar(const YAML::Node& node, absl::string_view source,
                                             absl::string_view path) {
  const std::string& tag = node.Tag();
  if (IsDisabled(node)) {
    return ScalarError(node, source, path,
                       "!disabled only marks a list item or the value of a field");
  }
  if (node.IsNull() && (tag.empty() || tag == "?" || tag == absl::StrCat(kCoreTagPrefix, "null"))) {
    return Scalar(YamlScalarKind::kNull, "null");
  }
  const std::string& text = node.Scalar();  // "" for a tagged empty node (`!!str`).
  YamlScalarKind kind;
  if (tag == "!") {
    kind = YamlScalarKind::kString;  // Quoted, block (| >) or the non-specific tag.
  } else if (tag == "?" || tag.empty()) {
    bool ignored;
    if (IsNullText(text)) {
      kind = YamlScalarKind::kNull;
    } else if (ParseBoolText(text, &ignored)) {
      kind = YamlScalarKind::kBool;
    } else if (IsIntText(text)) {
      kind = YamlScalarKind::kInt;
    } else if (IsFloatText(text)) {
      kind = YamlScalarKind::kFloat;
    } else {
      kind = YamlScalarKind::kString;
    }
  } else if (absl::StartsWith(tag, kCoreTagPrefix)) {
    const absl::string_view name = absl::string_view(tag).substr(kCoreTagPrefix.size());
    bool ignored;
    if (name == "str") {
      kind = YamlScalarKind::kString;
    } else if (name == "int" && IsIntText(text)) {
      kind = YamlScalarKind::kInt;
    } else if (name == "float" && (IsFloatText(text) || IsIntText(text))) {
      kind = IsFloatText(text) ? YamlScalarKind::kFloat : YamlScalarKind::kInt;
    } else if (name == "bool" && ParseBoolText(text, &ignored)) {
      kind = YamlScalarKind::kBool;
    } else if (name == "null" && IsNullText(text)) {
      kind = YamlScalarKind::kNull;
    } else if (name == "int" || name == "float" || name == "bool" || name == "null") {
      return ScalarError(node, source, path,
                         absl::StrCat("\"", text, "\" is not a valid !!", name));
    } else {
      return ScalarError(node, source, path,
                         absl::StrCat("the tag !!", name,
                                      " is not supported; use plain YAML scalars, maps and lists"));
    }
  } else {
    return ScalarError(
        node, source, path,
        absl::StrCat("the tag ", tag, " is not supported; the only tag Ferry knows is !disabled"));
  }

  switch (kind) {
    case YamlScalarKind::kNull:
      return Scalar(kind, "null");
    case YamlScalarKind::kBool: {
      bool value = false;
      ParseBoolText(text, &value);
      return Scalar(kind, value ? "true" : "false");
    }
    case YamlScalarKind::kInt: {
      std::string json;
      if (!IntToJson(text, &json)) {
        return ScalarError(node, source, path,
                           absl::StrCat("the number ", text, " does not fit in 64 bits"));
      }
      return Scalar(kind, std::move(json));
    }
    case YamlScalarKind::kFloat:
      return Scalar(kind, FloatToJson(text));
    case YamlScalarKind::kString:
      // yaml-cpp hands out UTF-8 (it decodes the stream and replaces bad bytes with U+FFFD).
      return Scalar(kind, JsonString(text));
  }
  return Scalar(YamlScalarKind::kNull, "null");
}

std::string DescribeScalar(const YamlScalar& scalar, const YAML::Node& node) {
  constexpr size_t kShown = 40;
  switch (scalar.kind) {
    case YamlScalarKind::kNull:
      return "null";
    case YamlScalarKind::kBool:
      return absl::StrCat("the boolean ", scalar.json);
    case YamlScalarKind::kInt:
    case YamlScalarKind::kFloat:
      return absl::StrCat("the number ", node.Scalar());
    case YamlScalarKind::kString: {
      const std::string& text = node.Scalar();
      if (text.size() <= kShown) return absl::StrCat("the string ", JsonString(text));
      return absl::StrCat("the string ", JsonString(text.substr(0, kShown)), "...");
    }
  }
  return "a value";
}

absl::StatusOr<std::string> YamlToJson(const YAML::Node& node, absl::string_view source,
                                       bool null_as_empty_object) {
  if (null_as_empty_object && node.IsNull() && !IsDisabled(node)) return std::string("{}");
  std::string out;
  JsonWriter writer(source);
  if (absl::Status s = writer.Write(node, "", 0, &out); !s.ok()) return s;
  return out;
}

}  // namespace ferry::discovery
