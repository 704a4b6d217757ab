// Names in Ferry: services, tenants and components are DNS labels, so that
// `<service>.<tenant>.<zone>` is always a valid DNS name.
//
// The rule is `[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?`: 1 to 63 characters,
// lower-case letters, digits and hyphens, starting and ending with a letter or
// digit. The recommended service form is `<app>-<purpose>` ("ollama-api").
#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ferry {

// What a name is used for; only changes the wording of error messages.
enum class NameKind { kService, kTenant, kComponent };

// Returns OK when `name` is a valid DNS label, else INVALID_ARGUMENT with a
// message naming the kind, the name and the exact reason (empty, too long,
// upper-case letter at position N, bad character, leading/trailing hyphen).
absl::Status ValidateName(NameKind kind, absl::string_view name);

// True when ValidateName would return OK.
bool IsValidName(absl::string_view name);

}  // namespace ferry
