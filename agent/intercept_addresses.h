// The VIP addresses the agent's intercept mode puts on a local interface, and
// the rules for picking that interface:
//
//   - "lo" (the default) exists everywhere; a /32 on lo is local to this
//     network namespace only, which is what intercept mode wants (VIP traffic
//     never leaves the namespace).
//   - "ferry0" is created as a dummy link when it does not exist; when the
//     kernel has no dummy driver the addresses go on lo instead (logged).
//   - any other name must exist.
//
// The object owns what it added: the destructor deletes every address it
// added (not those that were already there) and the ferry0 link if it
// created it. Everything needs CAP_NET_ADMIN in the caller's network
// namespace (see RequireCapability). Not thread-safe: one owner thread.
#pragma once

#include <netinet/in.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ferry::agent {

// The interface intercept mode uses by default.
inline constexpr char kDefaultInterceptInterface[] = "lo";
// The one name intercept mode creates (as a dummy link) when it is missing.
inline constexpr char kInterceptDummyInterface[] = "ferry0";

// OK when the calling thread has capability `cap` (CAP_NET_ADMIN, CAP_NET_RAW
// ...) in its effective set; else PERMISSION_DENIED saying that `feature`
// needs `cap_name` and how to grant it. INTERNAL when capget fails.
absl::Status RequireCapability(int cap, absl::string_view cap_name, absl::string_view feature);

class InterceptAddresses {
 public:
  // Picks the interface for `name` as the file comment says. NOT_FOUND for a
  // missing interface other than ferry0; the rtnetlink errors of creating
  // ferry0 other than "no dummy driver" (e.g. PERMISSION_DENIED).
  static absl::StatusOr<std::unique_ptr<InterceptAddresses>> Open(const std::string& name);

  // Deletes the added addresses and the created link; failures are logged.
  ~InterceptAddresses();
  InterceptAddresses(const InterceptAddresses&) = delete;
  InterceptAddresses& operator=(const InterceptAddresses&) = delete;

  // Puts `address`/32 on the interface. OK when this object added it before;
  // OK (and not owned: left in place at the end) when the interface already
  // had it; the rtnetlink errors.
  absl::Status Add(in_addr address);

  // The interface in use (after the ferry0 fallback) and its index.
  const std::string& interface() const { return interface_; }
  int link_index() const { return link_index_; }
  // Whether Open created the ferry0 link.
  bool created_link() const { return created_link_; }
  // The addresses this object added and will delete.
  const std::vector<in_addr>& added() const { return added_; }

 private:
  InterceptAddresses(std::string interface, int link_index, bool created_link)
      : interface_(std::move(interface)), link_index_(link_index), created_link_(created_link) {}

  std::string interface_;
  int link_index_;
  bool created_link_;
  std::vector<in_addr> added_;
};

}  // namespace ferry::agent
