#include "agent/intercept_addresses.h"

#include <arpa/inet.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "agent/rtnetlink.h"
#include "glog/logging.h"

namespace ferry::agent {
namespace {

std::string AddressText(in_addr address) {
  char text[INET_ADDRSTRLEN] = "?";
  inet_ntop(AF_INET, &address, text, sizeof(text));
  return text;
}

}  // namespace

absl::Status RequireCapability(int cap, absl::string_view cap_name, absl::string_view feature) {
  __user_cap_header_struct header = {};
  header.version = _LINUX_CAPABILITY_VERSION_3;
  header.pid = 0;
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capget, &header, data) != 0) {
    return absl::InternalError(absl::StrCat("capget: ", strerror(errno)));
  }
  const int word = cap / 32;
  const uint32_t bit = 1u << (cap % 32);
  if (word < _LINUX_CAPABILITY_U32S_3 && (data[word].effective & bit) != 0) {
    return absl::OkStatus();
  }
  return absl::PermissionDeniedError(
      absl::StrCat(feature, " needs ", cap_name,
                   " (run the agent as root in its network namespace, or grant it with `setcap ",
                   absl::AsciiStrToLower(cap_name),
                   "+ep ferry-agent`); without it, leave intercept mode "
                   "off and use loopback ports"));
}

absl::StatusOr<std::unique_ptr<InterceptAddresses>> InterceptAddresses::Open(
    const std::string& name) {
  absl::StatusOr<int> index = LinkIndex(name);
  if (index.ok()) {
    if (absl::Status s = SetLinkUp(*index); !s.ok()) return s;
    return std::unique_ptr<InterceptAddresses>(new InterceptAddresses(name, *index, false));
  }
  if (name != kInterceptDummyInterface) {
    return absl::NotFoundError(absl::StrCat(
        "intercept interface \"", name, "\" does not exist in this network namespace (use \"",
        kDefaultInterceptInterface, "\", \"", kInterceptDummyInterface,
        "\" to have the agent create a dummy link, or an existing interface)"));
  }
  absl::StatusOr<int> created = CreateDummyLink(name);
  if (created.ok()) {
    LOG(INFO) << "Intercept: created dummy link " << name;
    return std::unique_ptr<InterceptAddresses>(new InterceptAddresses(name, *created, true));
  }
  if (!absl::IsUnimplemented(created.status())) return created.status();
  LOG(WARNING) << "Intercept: cannot create " << name << " (" << created.status().message()
               << "); putting the VIPs on " << kDefaultInterceptInterface << " instead";
  absl::StatusOr<int> lo = LinkIndex(kDefaultInterceptInterface);
  if (!lo.ok()) return lo.status();
  if (absl::Status s = SetLinkUp(*lo); !s.ok()) return s;
  return std::unique_ptr<InterceptAddresses>(
      new InterceptAddresses(kDefaultInterceptInterface, *lo, false));
}

InterceptAddresses::~InterceptAddresses() {
  for (in_addr address : added_) {
    if (absl::Status s = DeleteAddressV4(link_index_, address, 32); !s.ok()) {
      LOG(WARNING) << "Intercept: cannot remove " << AddressText(address) << " from " << interface_
                   << ": " << s;
    }
  }
  if (created_link_) {
    if (absl::Status s = DeleteLink(link_index_); !s.ok()) {
      LOG(WARNING) << "Intercept: cannot delete link " << interface_ << ": " << s;
    }
  }
}

absl::Status InterceptAddresses::Add(in_addr address) {
  for (const in_addr& mine : added_) {
    if (mine.s_addr == address.s_addr) return absl::OkStatus();  // a retried exposure
  }
  absl::Status s = AddAddressV4(link_index_, address, 32);
  if (absl::IsAlreadyExists(s)) {
    LOG(INFO) << "Intercept: " << AddressText(address) << " is already on " << interface_
              << "; leaving it there at exit";
    return absl::OkStatus();
  }
  if (!s.ok()) return s;
  added_.push_back(address);
  return absl::OkStatus();
}

}  // namespace ferry::agent
