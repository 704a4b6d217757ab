#include "cli/args.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace ferry::cli {
namespace {

const FlagSpec* FindSpec(const std::vector<FlagSpec>& specs, absl::string_view name) {
  for (const FlagSpec& spec : specs) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

}  // namespace

bool ParsedArgs::Has(absl::string_view name) const { return values_.find(name) != values_.end(); }

std::optional<std::string> ParsedArgs::Get(absl::string_view name) const {
  auto it = values_.find(name);
  if (it == values_.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

std::string ParsedArgs::GetOr(absl::string_view name, absl::string_view fallback) const {
  std::optional<std::string> value = Get(name);
  return value.has_value() ? *value : std::string(fallback);
}

bool ParsedArgs::GetBool(absl::string_view name) const {
  std::optional<std::string> value = Get(name);
  return value.has_value() && *value == "true";
}

std::vector<std::string> ParsedArgs::GetList(absl::string_view name) const {
  std::vector<std::string> out;
  auto it = values_.find(name);
  if (it == values_.end()) return out;
  for (const std::string& value : it->second) {
    for (absl::string_view item : absl::StrSplit(value, ',', absl::SkipEmpty())) {
      out.emplace_back(item);
    }
  }
  return out;
}

absl::StatusOr<std::optional<int64_t>> ParsedArgs::GetInt(absl::string_view name) const {
  std::optional<std::string> value = Get(name);
  if (!value.has_value()) return std::optional<int64_t>();
  int64_t parsed = 0;
  if (!absl::SimpleAtoi(*value, &parsed)) {
    return absl::InvalidArgumentError(
        absl::StrCat("flag --", name, " wants an integer, got '", *value, "'"));
  }
  return std::optional<int64_t>(parsed);
}

absl::StatusOr<ParsedArgs> ParseArgs(const std::vector<std::string>& args,
                                     const std::vector<FlagSpec>& specs) {
  ParsedArgs parsed;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      parsed.positional_.insert(parsed.positional_.end(), args.begin() + i + 1, args.end());
      break;
    }
    if (arg == "--help" || arg == "-h") {
      parsed.help_requested_ = true;
      continue;
    }
    if (arg.size() < 2 || arg[0] != '-') {  // "-" alone is positional (stdin by convention).
      parsed.positional_.push_back(arg);
      continue;
    }
    if (arg[1] != '-') {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag ", arg, " (flags are spelled --name)"));
    }
    absl::string_view body = absl::string_view(arg).substr(2);
    std::optional<std::string> inline_value;
    if (size_t eq = body.find('='); eq != absl::string_view::npos) {
      inline_value = std::string(body.substr(eq + 1));
      body = body.substr(0, eq);
    }
    const FlagSpec* spec = FindSpec(specs, body);
    if (spec == nullptr) return absl::InvalidArgumentError(absl::StrCat("unknown flag --", body));
    std::vector<std::string>& values = parsed.values_[spec->name];
    if (spec->kind == FlagSpec::Kind::kBool) {
      if (!inline_value.has_value()) {
        values.push_back("true");
      } else if (*inline_value == "true" || *inline_value == "false") {
        values.push_back(*inline_value);
      } else {
        return absl::InvalidArgumentError(absl::StrCat("flag --", body,
                                                       " takes no value other than true or false, "
                                                       "got '",
                                                       *inline_value, "'"));
      }
      continue;
    }
    if (inline_value.has_value()) {
      values.push_back(*inline_value);
    } else if (i + 1 < args.size() && !absl::StartsWith(args[i + 1], "--")) {
      // A following "--name" is another flag, not this one's value: "--dir --force" is a
      // missing value, not a directory called "--force".
      values.push_back(args[++i]);
    } else {
      return absl::InvalidArgumentError(absl::StrCat("flag --", body, " needs a value"));
    }
  }
  return parsed;
}

std::string FormatFlagHelp(const std::vector<FlagSpec>& specs) {
  std::vector<std::string> left;
  size_t width = 0;
  for (const FlagSpec& spec : specs) {
    std::string text = absl::StrCat("--", spec.name);
    if (spec.kind == FlagSpec::Kind::kString) {
      absl::StrAppend(&text, "=", spec.value_name.empty() ? "VALUE" : spec.value_name);
    }
    width = std::max(width, text.size());
    left.push_back(std::move(text));
  }
  std::string out;
  for (size_t i = 0; i < specs.size(); ++i) {
    absl::StrAppendFormat(&out, "  %-*s  %s\n", static_cast<int>(width), left[i], specs[i].help);
  }
  return out;
}

}  // namespace ferry::cli
