// The few rtnetlink (NETLINK_ROUTE) requests the agent's intercept mode needs:
// add and delete an IPv4 address on a link, create a dummy link, set a link
// up, delete a link. Each call opens its own netlink socket, sends one request
// with NLM_F_ACK and waits for the kernel's answer, so the caller learns the
// kernel's errno as a status. No `ip` binary is run.
//
// All of them act on the network namespace of the calling thread and need
// CAP_NET_ADMIN in it (PERMISSION_DENIED otherwise, naming the capability).
// Thread-safe: no shared state.
#pragma once

#include <netinet/in.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ferry::agent {

// The index of link `name` (if_nametoindex). NOT_FOUND when there is no such
// link in this namespace.
absl::StatusOr<int> LinkIndex(const std::string& name);

// RTM_NEWADDR: `address`/`prefix_length` on link `link_index` (scope host on
// the loopback link, else global; IFA_F_NODAD does not apply to IPv4).
// ALREADY_EXISTS when the link already has it; INVALID_ARGUMENT for a prefix
// length over 32; NOT_FOUND for an unknown link; PERMISSION_DENIED without
// CAP_NET_ADMIN; else INTERNAL with the errno text.
absl::Status AddAddressV4(int link_index, in_addr address, int prefix_length);

// RTM_DELADDR of the same. NOT_FOUND when the link does not have it (the
// kernel's EADDRNOTAVAIL); other errors as AddAddressV4.
absl::Status DeleteAddressV4(int link_index, in_addr address, int prefix_length);

// RTM_NEWLINK of kind "dummy" named `name`, then up. ALREADY_EXISTS when the
// name is taken; UNIMPLEMENTED when the kernel has no dummy driver (the
// kernel's EOPNOTSUPP, as on kernels without the dummy module);
// PERMISSION_DENIED; else INTERNAL. Returns the new link's index.
absl::StatusOr<int> CreateDummyLink(const std::string& name);

// Sets IFF_UP on link `link_index`. Errors as AddAddressV4.
absl::Status SetLinkUp(int link_index);

// RTM_DELLINK. NOT_FOUND for an unknown link; errors as AddAddressV4.
absl::Status DeleteLink(int link_index);

}  // namespace ferry::agent
