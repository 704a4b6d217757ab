#include "discovery/yaml_schema_check.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "discovery/yaml_to_json.h"

namespace ferry::discovery {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumDescriptor;
using google::protobuf::FieldDescriptor;

// Proto JSON's Duration range: +-10000 years.
constexpr int64_t kMaxDurationSeconds = 315576000000;

std::string FieldPath(absl::string_view parent, absl::string_view field) {
  return parent.empty() ? std::string(field) : absl::StrCat(parent, ".", field);
}

// Lower-case, without '_' and '-': "Health-Check", "healthCheck" and "health_check" all agree.
std::string Normalized(absl::string_view name) {
  std::string out;
  for (char c : name) {
    if (c != '_' && c != '-') out.push_back(absl::ascii_tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

size_t EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The candidate closest to `given`, when it is close enough to be a likely typo; else "".
std::string ClosestName(absl::string_view given, const std::vector<std::string>& candidates) {
  const std::string wanted = Normalized(given);
  std::string best;
  size_t best_distance = std::max<size_t>(2, wanted.size() / 3) + 1;
  for (const std::string& candidate : candidates) {
    const size_t distance = EditDistance(wanted, Normalized(candidate));
    if (distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

const FieldDescriptor* FindField(const Descriptor& descriptor, absl::string_view key) {
  if (const FieldDescriptor* f = descriptor.FindFieldByName(std::string(key))) return f;
  for (int i = 0; i < descriptor.field_count(); ++i) {
    if (descriptor.field(i)->json_name() == key) return descriptor.field(i);
  }
  return nullptr;
}

std::vector<std::string> FieldNames(const Descriptor& descriptor) {
  std::vector<std::string> names;
  for (int i = 0; i < descriptor.field_count(); ++i) names.push_back(descriptor.field(i)->name());
  return names;
}

// Enum value names an operator may write: every value but the *_UNSPECIFIED zero.
std::vector<std::string> EnumNames(const EnumDescriptor& e) {
  std::vector<std::string> names;
  for (int i = 0; i < e.value_count(); ++i) {
    if (!absl::EndsWith(e.value(i)->name(), "_UNSPECIFIED")) names.push_back(e.value(i)->name());
  }
  return names;
}

// Proto JSON duration text: -?[0-9]+(\.[0-9]{1,9})?s within +-10000 years.
bool IsDurationText(absl::string_view s) {
  if (!absl::ConsumeSuffix(&s, "s")) return false;
  absl::ConsumePrefix(&s, "-");
  absl::string_view whole = s;
  absl::string_view fraction;
  if (const size_t dot = s.find('.'); dot != absl::string_view::npos) {
    whole = s.substr(0, dot);
    fraction = s.substr(dot + 1);
    if (fraction.empty() || fraction.size() > 9) return false;
  }
  auto all_digits = [](absl::string_view d) {
    return !d.empty() &&
           std::all_of(d.begin(), d.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (!all_digits(whole) || (!fraction.empty() && !all_digits(fraction))) return false;
  int64_t seconds = 0;
  return whole.size() <= 12 && absl::SimpleAtoi(whole, &seconds) && seconds <= kMaxDurationSeconds;
}

const char* NodeShape(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    default:
      return "a value";
  }
}

class SchemaChecker {
 public:
  SchemaChecker(absl::string_view source, ConfigLocations* locations)
      : source_(source), locations_(locations) {}

  absl::Status CheckMessage(const YAML::Node& node, const Descriptor& descriptor,
                            const std::string& path, int depth) {
    if (node.IsNull()) return absl::OkStatus();
    if (!node.IsMap()) {
      return Error(node, path,
                   absl::StrCat("expected a mapping of ", descriptor.name(), " fields, got ",
                                Describe(node, path)));
    }
    // Field number -> the key node that set it; oneof index -> the member set.
    absl::flat_hash_map<int, YAML::Node> seen;
    absl::flat_hash_map<int, const FieldDescriptor*> oneof_member;
    for (auto it = node.begin(); it != node.end(); ++it) {
      const YAML::Node key = it->first;  // A copy: `it->` is a proxy that dies here.
      const YAML::Node value = it->second;
      if (!key.IsScalar()) {
        return Error(key, path, "a field name must be a plain word, not a list or mapping");
      }
      const FieldDescriptor* field = FindField(descriptor, key.Scalar());
      if (field == nullptr) return UnknownField(key, descriptor, path);
      const std::string field_path = FieldPath(path, field->name());
      if (auto earlier = seen.find(field->number()); earlier != seen.end()) {
        return Error(
            key, field_path,
            absl::StrCat("is given twice (first at line ", LocationOf(earlier->second).line,
                         " as \"", earlier->second.Scalar(), "\"); keep one"));
      }
      seen.emplace(field->number(), key);
      if (IsDisabled(value)) continue;
      if (const auto* oneof = field->real_containing_oneof(); oneof != nullptr && !value.IsNull()) {
        auto [other, inserted] = oneof_member.emplace(oneof->index(), field);
        if (!inserted) {
          std::vector<std::string> members;
          for (int i = 0; i < oneof->field_count(); ++i) members.push_back(oneof->field(i)->name());
          return Error(
              key, field_path,
              absl::StrCat("only one of ", absl::StrJoin(members, ", "), " may be set, and ",
                           other->second->name(), " already is; keep one"));
        }
      }
      if (locations_ != nullptr) locations_->Record(field_path, LocationOf(key));
      if (absl::Status s = CheckField(value, *field, field_path, depth); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

 private:
  absl::Status CheckField(const YAML::Node& value, const FieldDescriptor& field,
                          const std::string& path, int depth) {
    if (value.IsNull()) {
      // null leaves a field unset, as in proto JSON; but a tagged empty value is not null.
      return value.Tag().empty() || value.Tag() == "?" ? absl::OkStatus()
                                                       : CheckSingular(value, field, path, depth);
    }
    if (field.is_map()) {
      if (!value.IsMap()) {
        return Error(value, path, absl::StrCat("expected a mapping, got ", Describe(value, path)));
      }
      const FieldDescriptor& value_field = *field.message_type()->map_value();
      for (auto it = value.begin(); it != value.end(); ++it) {
        if (!it->first.IsScalar()) return Error(it->first, path, "a map key must be a scalar");
        if (IsDisabled(it->second)) continue;
        const std::string entry_path = absl::StrCat(path, "[\"", it->first.Scalar(), "\"]");
        if (locations_ != nullptr) locations_->Record(entry_path, LocationOf(it->first));
        if (absl::Status s = CheckSingular(it->second, value_field, entry_path, depth + 1);
            !s.ok()) {
          return s;
        }
      }
      return absl::OkStatus();
    }
    if (field.is_repeated()) {
      if (!value.IsSequence()) {
        return Error(value, path,
                     absl::StrCat("expected a list, got ", Describe(value, path),
                                  "; write one \"- item\" line per entry, or [a, b]"));
      }
      int index = 0;
      for (auto it = value.begin(); it != value.end(); ++it) {
        const YAML::Node item = *it;
        if (IsDisabled(item)) continue;
        const std::string item_path = absl::StrCat(path, "[", index++, "]");
        if (item.IsNull() && (item.Tag().empty() || item.Tag() == "?")) {
          return Error(item, item_path, "is an empty list item; fill it in or remove its \"-\"");
        }
        if (locations_ != nullptr) locations_->Record(item_path, LocationOf(item));
        if (absl::Status s = CheckSingular(item, field, item_path, depth + 1); !s.ok()) return s;
      }
      return absl::OkStatus();
    }
    return CheckSingular(value, field, path, depth);
  }

  // One value of `field`'s type (an element, for repeated fields).
  absl::Status CheckSingular(const YAML::Node& value, const FieldDescriptor& field,
                             const std::string& path, int depth) {
    if (absl::Status s = budget_.Visit(value, source_, path, depth); !s.ok()) return s;
    if (field.cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      const Descriptor& type = *field.message_type();
      if (type.full_name() == "google.protobuf.Duration") return CheckDuration(value, path);
      // Other well-known types have special JSON forms; JsonStringToMessage judges them.
      if (absl::StartsWith(type.full_name(), "google.protobuf.")) return absl::OkStatus();
      return CheckMessage(value, type, path, depth + 1);
    }
    if (!value.IsScalar() && !value.IsNull()) {
      return Error(value, path,
                   absl::StrCat("expected ", Expected(field), ", got ", NodeShape(value)));
    }
    absl::StatusOr<YamlScalar> scalar = ResolveYamlScalar(value, source_, path);
    if (!scalar.ok()) return scalar.status();
    const std::string got = DescribeScalar(*scalar, value);
    switch (field.cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING:
        if (scalar->kind == YamlScalarKind::kString) return absl::OkStatus();
        if (scalar->kind == YamlScalarKind::kNull) {
          return Error(value, path, absl::StrCat("expected a string, got ", got));
        }
        return Error(
            value, path,
            absl::StrCat("expected a string, got ", got, "; quote it: \"", value.Scalar(), "\""));
      case FieldDescriptor::CPPTYPE_BOOL:
        if (scalar->kind == YamlScalarKind::kBool) return absl::OkStatus();
        return Error(value, path, absl::StrCat("expected true or false, got ", got));
      case FieldDescriptor::CPPTYPE_ENUM:
        return CheckEnum(value, *scalar, *field.enum_type(), path);
      case FieldDescriptor::CPPTYPE_FLOAT:
      case FieldDescriptor::CPPTYPE_DOUBLE:
        if (scalar->kind == YamlScalarKind::kInt || scalar->kind == YamlScalarKind::kFloat) {
          return absl::OkStatus();
        }
        return Error(value, path, absl::StrCat("expected a number, got ", got));
      default:
        return CheckInteger(value, *scalar, field, path);
    }
  }

  absl::Status CheckInteger(const YAML::Node& value, const YamlScalar& scalar,
                            const FieldDescriptor& field, const std::string& path) {
    int64_t min = 0;
    uint64_t max = 0;
    switch (field.cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
        min = std::numeric_limits<int32_t>::min();
        max = std::numeric_limits<int32_t>::max();
        break;
      case FieldDescriptor::CPPTYPE_UINT32:
        max = std::numeric_limits<uint32_t>::max();
        break;
      case FieldDescriptor::CPPTYPE_INT64:
        min = std::numeric_limits<int64_t>::min();
        max = std::numeric_limits<int64_t>::max();
        break;
      default:  // CPPTYPE_UINT64
        max = std::numeric_limits<uint64_t>::max();
        break;
    }
    const std::string range = absl::StrCat("an integer from ", min, " to ", max);
    if (scalar.kind != YamlScalarKind::kInt) {
      std::string hint;
      if (scalar.kind == YamlScalarKind::kString && IsIntegerString(value.Scalar())) {
        hint = "; drop the quotes";
      }
      return Error(value, path,
                   absl::StrCat("expected ", range, ", got ", DescribeScalar(scalar, value), hint));
    }
    bool in_range;
    if (!scalar.json.empty() && scalar.json[0] == '-') {
      int64_t v = 0;
      in_range = absl::SimpleAtoi(scalar.json, &v) && v >= min;
    } else {
      uint64_t v = 0;
      in_range = absl::SimpleAtoi(scalar.json, &v) && v <= max;
    }
    if (!in_range) {
      return Error(value, path, absl::StrCat("expected ", range, ", got ", value.Scalar()));
    }
    return absl::OkStatus();
  }

  absl::Status CheckEnum(const YAML::Node& value, const YamlScalar& scalar,
                         const EnumDescriptor& type, const std::string& path) {
    const std::vector<std::string> names = EnumNames(type);
    const std::string choices = absl::StrJoin(names, ", ");
    if (scalar.kind != YamlScalarKind::kString) {
      return Error(value, path,
                   absl::StrCat("expected a ", type.name(), " name (one of ", choices, "), got ",
                                DescribeScalar(scalar, value)));
    }
    const std::string& text = value.Scalar();
    if (type.FindValueByName(text) != nullptr) return absl::OkStatus();
    // Suggest PROTOCOL_TCP for "TCP" or "tcp", else the closest spelling.
    std::string suggestion;
    for (const std::string& name : names) {
      if (absl::EndsWith(name, absl::StrCat("_", absl::AsciiStrToUpper(text)))) suggestion = name;
    }
    if (suggestion.empty()) suggestion = ClosestName(text, names);
    return Error(
        value, path,
        absl::StrCat("\"", text, "\" is not a ", type.name(), "; use one of ", choices,
                     suggestion.empty() ? "" : absl::StrCat(" (did you mean ", suggestion, "?)")));
  }

  absl::Status CheckDuration(const YAML::Node& value, const std::string& path) {
    constexpr absl::string_view kForm = "a duration such as \"5s\", \"0.25s\" or \"300s\"";
    if (!value.IsScalar() && !value.IsNull()) {
      return Error(value, path, absl::StrCat("expected ", kForm, ", got ", NodeShape(value)));
    }
    absl::StatusOr<YamlScalar> scalar = ResolveYamlScalar(value, source_, path);
    if (!scalar.ok()) return scalar.status();
    if (scalar->kind != YamlScalarKind::kString) {
      return Error(value, path,
                   absl::StrCat("expected ", kForm, ", got ", DescribeScalar(*scalar, value),
                                scalar->kind == YamlScalarKind::kInt ||
                                        scalar->kind == YamlScalarKind::kFloat
                                    ? absl::StrCat("; add the unit: \"", value.Scalar(), "s\"")
                                    : ""));
    }
    if (!IsDurationText(value.Scalar())) {
      return Error(value, path,
                   absl::StrCat("\"", value.Scalar(),
                                "\" is not a duration; write seconds with an \"s\" suffix, "
                                "e.g. \"5s\", \"0.25s\", \"300s\" (at most 9 decimals)"));
    }
    return absl::OkStatus();
  }

  absl::Status UnknownField(const YAML::Node& key, const Descriptor& descriptor,
                            const std::string& path) {
    const std::vector<std::string> names = FieldNames(descriptor);
    const std::string closest = ClosestName(key.Scalar(), names);
    return Error(
        key, path,
        absl::StrCat("unknown field \"", key.Scalar(), "\"",
                     closest.empty() ? "" : absl::StrCat(" (did you mean \"", closest, "\"?)"),
                     "; ", descriptor.name(), " fields are ", absl::StrJoin(names, ", ")));
  }

  static bool IsIntegerString(absl::string_view s) {
    int64_t ignored;
    return absl::SimpleAtoi(s, &ignored);
  }

  std::string Expected(const FieldDescriptor& field) {
    switch (field.cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING:
        return "a string";
      case FieldDescriptor::CPPTYPE_BOOL:
        return "true or false";
      case FieldDescriptor::CPPTYPE_ENUM:
        return absl::StrCat("a ", field.enum_type()->name(), " name");
      case FieldDescriptor::CPPTYPE_FLOAT:
      case FieldDescriptor::CPPTYPE_DOUBLE:
        return "a number";
      default:
        return "an integer";
    }
  }

  std::string Describe(const YAML::Node& node, const std::string& path) {
    if (!node.IsScalar()) return NodeShape(node);
    absl::StatusOr<YamlScalar> scalar = ResolveYamlScalar(node, source_, path);
    return scalar.ok() ? DescribeScalar(*scalar, node) : "a value";
  }

  absl::Status Error(const YAML::Node& node, absl::string_view path, absl::string_view reason) {
    return ConfigError(source_, LocationOf(node), path, reason);
  }

  absl::string_view source_;
  ConfigLocations* locations_;
  YamlWalkBudget budget_;
};

}  // namespace

absl::Status CheckYamlAgainstSchema(const YAML::Node& root, const Descriptor& descriptor,
                                    absl::string_view source, ConfigLocations* locations) {
  if (IsDisabled(root)) {
    return ConfigError(source, LocationOf(root), "",
                       "!disabled only marks a list item or the value of a field");
  }
  if (!root.IsNull() && !root.IsMap()) {
    return ConfigError(source, LocationOf(root), "",
                       absl::StrCat("the top level must be a mapping of ", descriptor.name(),
                                    " fields, not ", NodeShape(root)));
  }
  SchemaChecker checker(source, locations);
  return checker.CheckMessage(root, descriptor, "", 0);
}

}  // namespace ferry::discovery
