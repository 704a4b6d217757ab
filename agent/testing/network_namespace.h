// Puts a test's thread in a fresh network namespace (unshare(CLONE_NEWNET))
// with its loopback link up, so that tests of rtnetlink, VIP addresses and
// raw ICMP sockets never touch the host's interfaces. Only the calling thread
// moves: call it from the test's main thread before starting others.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace ferry::agent::testing {

// OK once the calling thread is in a new network namespace with lo up.
// FAILED_PRECONDITION (tests skip on it) when the kernel refuses the
// namespace (no CAP_SYS_ADMIN, or user namespaces closed); the rtnetlink
// error when lo cannot be set up.
absl::Status EnterNewNetworkNamespace();

// Whether link `link` has IPv4 address `address` (dotted quad), per getifaddrs.
bool LinkHasAddress(const std::string& link, const std::string& address);

}  // namespace ferry::agent::testing
