#include "agent/testing/network_namespace.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <sched.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "agent/rtnetlink.h"

namespace ferry::agent::testing {

absl::Status EnterNewNetworkNamespace() {
  if (unshare(CLONE_NEWNET) != 0) {
    return absl::FailedPreconditionError(absl::StrCat("unshare(CLONE_NEWNET): ", strerror(errno),
                                                      " (needs CAP_SYS_ADMIN; run as root)"));
  }
  absl::StatusOr<int> lo = LinkIndex("lo");
  if (!lo.ok()) return lo.status();
  return SetLinkUp(*lo);
}

bool LinkHasAddress(const std::string& link, const std::string& address) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return false;
  bool found = false;
  for (ifaddrs* entry = list; entry != nullptr && !found; entry = entry->ifa_next) {
    if (entry->ifa_addr == nullptr || entry->ifa_addr->sa_family != AF_INET) continue;
    char text[INET_ADDRSTRLEN] = "";
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(entry->ifa_addr)->sin_addr, text,
              sizeof(text));
    found = link == entry->ifa_name && address == text;
  }
  freeifaddrs(list);
  return found;
}

in_addr V4(const char* text) {
  in_addr address{};
  inet_pton(AF_INET, text, &address);
  return address;
}

void NetworkNamespaceTest::SetUp() {
  const absl::Status s = EnterNewNetworkNamespace();
  if (absl::IsFailedPrecondition(s)) GTEST_SKIP() << s;
  ASSERT_TRUE(s.ok()) << s;
}

}  // namespace ferry::agent::testing
