#include "common/naming.h"

#include "absl/strings/str_cat.h"

namespace ferry {
namespace {

constexpr size_t kMaxLabelLength = 63;

const char* KindName(NameKind kind) {
  switch (kind) {
    case NameKind::kService:
      return "service";
    case NameKind::kTenant:
      return "tenant";
    case NameKind::kComponent:
      return "component";
  }
  return "name";
}

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

}  // namespace

absl::Status ValidateName(NameKind kind, absl::string_view name) {
  const std::string prefix = absl::StrCat(KindName(kind), " name \"", name, "\" ");
  const char* rule = " (names are DNS labels: a-z, 0-9 and '-', 1 to 63 characters)";
  if (name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(KindName(kind), " name is empty", rule));
  }
  if (name.size() > kMaxLabelLength) {
    return absl::InvalidArgumentError(
        absl::StrCat(prefix, "is ", name.size(), " characters long; at most 63", rule));
  }
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (c >= 'A' && c <= 'Z') {
      return absl::InvalidArgumentError(absl::StrCat(prefix, "has an upper-case letter '",
                                                     std::string(1, c), "' at position ", i + 1,
                                                     "; use lower case", rule));
    }
    if (!IsLowerAlnum(c) && c != '-') {
      const std::string shown = (c >= 0x21 && c < 0x7f)
                                    ? absl::StrCat("'", std::string(1, c), "'")
                                    : absl::StrCat("byte 0x", absl::Hex(static_cast<uint8_t>(c)));
      return absl::InvalidArgumentError(
          absl::StrCat(prefix, "has ", shown, " at position ", i + 1, rule));
    }
  }
  if (name.front() == '-' || name.back() == '-') {
    return absl::InvalidArgumentError(absl::StrCat(
        prefix, "starts or ends with '-'; it must start and end with a letter or digit", rule));
  }
  return absl::OkStatus();
}

bool IsValidName(absl::string_view name) { return ValidateName(NameKind::kService, name).ok(); }

}  // namespace ferry
