// `ferryctl leases`: the VIP leases of a tenant (Admin.ListLeases).
//
//   ferryctl leases [--tenant=T] [--output=table|json] [connection flags]
//
// Table columns: TENANT SERVICE VIP POOL PINNED. A released address cooling
// down before reuse is not listed (the API does not report it).
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace ferry::cli {

// Exit codes: 0 listed; 2 usage error; 3 Intermediate unreachable; 1 another
// RPC error (PERMISSION_DENIED for another tenant).
int RunLeasesCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace ferry::cli
