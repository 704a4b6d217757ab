// `ferryctl services`: list, register and deregister services through the
// admin API (Admin.ListServices, RegisterService, DeregisterService).
//
//   ferryctl services list [--tenant=T] [--output=table|json]
//   ferryctl services add  --name=N --protocol=tcp|udp|icmp --backend=HOST:PORT...
//                          --connector=C [--port=N] [--tenant=T]
//                          [--health=tcp|http[:/path]|https[:/path]|udp|grpc|icmp]
//                          [--interval=5s] [--pin_vip=IP] [--output=table|json]
//   ferryctl services add  --spec=FILE|- [--output=table|json]
//   ferryctl services rm   NAME [--tenant=T]
// Every subcommand also takes the connection flags of cli/admin_client.h.
#pragma once

#include <istream>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "cli/args.h"
#include "ferry/v1/common.pb.h"

namespace ferry::cli {

// The flags of `services add` that describe the service (not --spec, not the
// connection or output flags).
std::vector<FlagSpec> ServiceSpecFlagSpecs();

// The ServiceSpec the flags of `services add` describe. INVALID_ARGUMENT
// naming the flag for a missing --name, --protocol, --backend or --connector,
// an unknown protocol or health kind, a port outside 1..65535 or an interval
// that is not a positive duration. Only the shape is checked here; the
// Intermediate validates the rest (name rules, pool membership of --pin_vip).
absl::StatusOr<v1::ServiceSpec> ServiceSpecFromFlags(const ParsedArgs& parsed);

// A ServiceSpec from YAML or JSON text (the same field names as a
// connector's `services:` entry, plus `connector`), through the project's
// config loader: INVALID_ARGUMENT "<source>:<line>:<col>: <field>: <reason>"
// for unknown fields, wrong types and bad enum names.
absl::StatusOr<v1::ServiceSpec> ServiceSpecFromText(absl::string_view text,
                                                    absl::string_view source_name);

// Runs `ferryctl services <args...>`; `in` is read for `--spec=-`. Exit
// codes: 0 done; 2 usage error (nothing was sent); 3 Intermediate
// unreachable; 1 the Intermediate refused (the gRPC code and message are
// printed: ALREADY_EXISTS, NOT_FOUND, INVALID_ARGUMENT naming the field, ...).
int RunServicesCommand(const std::vector<std::string>& args, std::istream& in, std::ostream& out,
                       std::ostream& err);

// The same with std::cin (the CommandHandler form).
int RunServicesCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace ferry::cli
