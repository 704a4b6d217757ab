#include "agent/rtnetlink.h"

#include <arpa/inet.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/unique_fd.h"

namespace ferry::agent {
namespace {

constexpr size_t kRequestSize = 512;

// A netlink request built in place: the header, one fixed message struct,
// then attributes (nested ones by Begin/EndNest).
class Request {
 public:
  Request(uint16_t type, uint16_t flags) {
    std::memset(buffer_, 0, sizeof(buffer_));
    header()->nlmsg_len = NLMSG_LENGTH(0);
    header()->nlmsg_type = type;
    header()->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
    header()->nlmsg_seq = 1;
  }
  nlmsghdr* header() { return reinterpret_cast<nlmsghdr*>(buffer_); }
  template <typename T>
  T* Body() {
    header()->nlmsg_len = NLMSG_LENGTH(sizeof(T));
    return reinterpret_cast<T*>(NLMSG_DATA(header()));
  }
  rtattr* Attribute(uint16_t type, const void* data, size_t size) {
    const size_t at = NLMSG_ALIGN(header()->nlmsg_len);
    const size_t length = RTA_LENGTH(size);
    // Sizes are fixed by the callers in this file; overflowing is our bug.
    if (at + RTA_ALIGN(length) > sizeof(buffer_)) abort();
    rtattr* attribute = reinterpret_cast<rtattr*>(buffer_ + at);
    attribute->rta_type = type;
    attribute->rta_len = static_cast<uint16_t>(length);
    if (size > 0) std::memcpy(RTA_DATA(attribute), data, size);
    header()->nlmsg_len = static_cast<uint32_t>(at + RTA_ALIGN(length));
    return attribute;
  }
  rtattr* BeginNest(uint16_t type) { return Attribute(type, nullptr, 0); }
  void EndNest(rtattr* nest) {
    nest->rta_len =
        static_cast<uint16_t>(buffer_ + header()->nlmsg_len - reinterpret_cast<uint8_t*>(nest));
  }

 private:
  alignas(nlmsghdr) uint8_t buffer_[kRequestSize];
};

absl::Status ErrnoStatus(int error, const std::string& what) {
  const std::string message = absl::StrCat(what, ": ", strerror(error));
  switch (error) {
    case EPERM:
    case EACCES:
      return absl::PermissionDeniedError(
          absl::StrCat(message, " (needs CAP_NET_ADMIN in this network namespace)"));
    case EEXIST:
      return absl::AlreadyExistsError(message);
    case ENODEV:
    case EADDRNOTAVAIL:
      return absl::NotFoundError(message);
    case EOPNOTSUPP:
      return absl::UnimplementedError(message);
    case EINVAL:
      return absl::InvalidArgumentError(message);
    default:
      return absl::InternalError(message);
  }
}

// Sends `request` and waits for its NLMSG_ERROR acknowledgement.
absl::Status Transact(Request& request, const std::string& what) {
  UniqueFd fd(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!fd) return ErrnoStatus(errno, absl::StrCat(what, ": socket(NETLINK_ROUTE)"));
  sockaddr_nl kernel = {};
  kernel.nl_family = AF_NETLINK;
  nlmsghdr* header = request.header();
  if (sendto(fd.get(), header, header->nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel),
             sizeof(kernel)) < 0) {
    return ErrnoStatus(errno, what);
  }
  alignas(nlmsghdr) uint8_t answer[8192];
  for (;;) {
    ssize_t n = recv(fd.get(), answer, sizeof(answer), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, what);
    }
    size_t left = static_cast<size_t>(n);
    for (nlmsghdr* reply = reinterpret_cast<nlmsghdr*>(answer); NLMSG_OK(reply, left);
         reply = NLMSG_NEXT(reply, left)) {
      if (reply->nlmsg_seq != header->nlmsg_seq || reply->nlmsg_type != NLMSG_ERROR) continue;
      if (reply->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) {
        return absl::InternalError(absl::StrCat(what, ": truncated netlink acknowledgement"));
      }
      const nlmsgerr* error = reinterpret_cast<const nlmsgerr*>(NLMSG_DATA(reply));
      if (error->error == 0) return absl::OkStatus();
      return ErrnoStatus(-error->error, what);
    }
  }
}

absl::Status ChangeAddressV4(uint16_t type, uint16_t flags, int link_index, in_addr address,
                             int prefix_length) {
  char text[INET_ADDRSTRLEN] = "?";
  inet_ntop(AF_INET, &address, text, sizeof(text));
  const std::string what =
      absl::StrCat(type == RTM_NEWADDR ? "adding " : "deleting ", text, "/", prefix_length,
                   type == RTM_NEWADDR ? " to" : " from", " link #", link_index);
  if (prefix_length < 0 || prefix_length > 32) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": prefix length must be 0..32"));
  }
  Request request(type, flags);
  ifaddrmsg* body = request.Body<ifaddrmsg>();
  body->ifa_family = AF_INET;
  body->ifa_prefixlen = static_cast<uint8_t>(prefix_length);
  body->ifa_index = static_cast<uint32_t>(link_index);
  char name[IF_NAMESIZE] = "";
  const bool loopback =
      if_indextoname(static_cast<unsigned>(link_index), name) != nullptr && strcmp(name, "lo") == 0;
  body->ifa_scope = loopback ? RT_SCOPE_HOST : RT_SCOPE_UNIVERSE;
  request.Attribute(IFA_LOCAL, &address, sizeof(address));
  request.Attribute(IFA_ADDRESS, &address, sizeof(address));
  return Transact(request, what);
}

}  // namespace

absl::StatusOr<int> LinkIndex(const std::string& name) {
  unsigned index = if_nametoindex(name.c_str());
  if (index == 0) {
    return absl::NotFoundError(
        absl::StrCat("no network interface named \"", name, "\" in this network namespace"));
  }
  return static_cast<int>(index);
}

absl::Status AddAddressV4(int link_index, in_addr address, int prefix_length) {
  return ChangeAddressV4(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, link_index, address,
                         prefix_length);
}

absl::Status DeleteAddressV4(int link_index, in_addr address, int prefix_length) {
  return ChangeAddressV4(RTM_DELADDR, 0, link_index, address, prefix_length);
}

absl::StatusOr<int> CreateDummyLink(const std::string& name) {
  const std::string what = absl::StrCat("creating dummy link \"", name, "\"");
  if (name.empty() || name.size() >= IFNAMSIZ) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": a link name has 1 to ", IFNAMSIZ - 1, " characters"));
  }
  Request request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  ifinfomsg* body = request.Body<ifinfomsg>();
  body->ifi_family = AF_UNSPEC;
  body->ifi_flags = IFF_UP;
  body->ifi_change = IFF_UP;
  request.Attribute(IFLA_IFNAME, name.c_str(), name.size() + 1);
  rtattr* info = request.BeginNest(IFLA_LINKINFO);
  static constexpr char kKind[] = "dummy";
  request.Attribute(IFLA_INFO_KIND, kKind, sizeof(kKind) - 1);
  request.EndNest(info);
  if (absl::Status s = Transact(request, what); !s.ok()) {
    if (absl::IsUnimplemented(s)) {
      // EOPNOTSUPP: no driver for the kind, and no module to load for it.
      return absl::UnimplementedError(
          absl::StrCat(s.message(), " (this kernel has no dummy link driver)"));
    }
    return s;
  }
  return LinkIndex(name);
}

absl::Status SetLinkUp(int link_index) {
  Request request(RTM_NEWLINK, 0);
  ifinfomsg* body = request.Body<ifinfomsg>();
  body->ifi_family = AF_UNSPEC;
  body->ifi_index = link_index;
  body->ifi_flags = IFF_UP;
  body->ifi_change = IFF_UP;
  return Transact(request, absl::StrCat("setting link #", link_index, " up"));
}

absl::Status DeleteLink(int link_index) {
  Request request(RTM_DELLINK, 0);
  ifinfomsg* body = request.Body<ifinfomsg>();
  body->ifi_family = AF_UNSPEC;
  body->ifi_index = link_index;
  return Transact(request, absl::StrCat("deleting link #", link_index));
}

}  // namespace ferry::agent
