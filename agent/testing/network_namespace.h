// Puts a test's thread in a fresh network namespace (unshare(CLONE_NEWNET))
// with its loopback link up, so that tests of rtnetlink, VIP addresses and
// raw ICMP sockets never touch the host's interfaces. Only the calling thread
// moves: call it from the test's main thread before starting others.
#pragma once

#include <netinet/in.h>

#include <string>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace ferry::agent::testing {

// OK once the calling thread is in a new network namespace with lo up.
// FAILED_PRECONDITION (tests skip on it) when the kernel refuses the
// namespace (no CAP_SYS_ADMIN, or user namespaces closed); the rtnetlink
// error when lo cannot be set up.
absl::Status EnterNewNetworkNamespace();

// Whether link `link` has IPv4 address `address` (dotted quad), per getifaddrs.
bool LinkHasAddress(const std::string& link, const std::string& address);

// The IPv4 address `text` (a dotted quad the test wrote; 0.0.0.0 if it is not one).
in_addr V4(const char* text);

// A fixture whose every test runs in a network namespace of its own: SetUp
// enters one, or skips the test when the kernel refuses. A derived SetUp
// calls this one first and returns when IsSkipped() or on a fatal failure.
class NetworkNamespaceTest : public ::testing::Test {
 protected:
  void SetUp() override;
};

}  // namespace ferry::agent::testing
