// `ferryctl sessions`: the data-plane sessions of a tenant (Admin.ListSessions).
//
//   ferryctl sessions [--tenant=T] [--output=table|json] [connection flags]
//
// Table columns: SESSION TENANT SERVICE AGENT CONNECTOR RELAY PATH EXPIRES IN.
// Keys are never shown (the API does not return them).
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace ferry::cli {

// Exit codes: 0 listed; 2 usage error; 3 Intermediate unreachable; 1 another
// RPC error (PERMISSION_DENIED for another tenant).
int RunSessionsCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace ferry::cli
