// Validation of a ServiceSpec, shared by the admin API and config loading so
// that both refuse the same things with the same words. Errors name the field
// path ("services[2].backends[0].address") and say what to fix.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/listen_address.h"
#include "ferry/v1/common.pb.h"

namespace ferry {

// OK or INVALID_ARGUMENT "<path>.<field>: <reason>". `path` prefixes every
// field name ("service" for the API, "services[3]" for a config file).
// Checks: name and tenant are DNS labels (tenant may be empty: filled by the
// caller), protocol is set, 1..64 backends each with a valid address form,
// port within 1-65535 when set, health-check timing (interval >= 100ms,
// timeout <= interval), pinned_vip an IPv4 literal when set.
absl::Status ValidateServiceSpec(const v1::ServiceSpec& spec, absl::string_view path);

// Parses "host:port" / "[v6]:port" into its parts (brackets removed); false when
// malformed or the port is not 1-65535 (0-65535 under PortRule::kAllowZero, for
// listen addresses). For the reason why not, call ParseHostPort
// (common/listen_address.h), which this wraps.
bool SplitHostPort(absl::string_view address, std::string* host, uint16_t* port,
                   PortRule rule = PortRule::kNonZero);

}  // namespace ferry
