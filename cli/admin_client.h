// The connection every admin-API command of ferryctl (status, services,
// leases, sessions) shares: the flags that say where the Intermediate is and
// which admin certificate to present, their environment-variable defaults,
// and a small client for ferry.v1.Admin that puts a deadline on every call.
//
//   --intermediate=HOST:PORT  env FERRY_INTERMEDIATE, default 127.0.0.1:7443
//   --ca_cert=FILE            env FERRY_CA_CERT  (required one way or the other)
//   --cert=FILE               env FERRY_CERT     (spiffe://<td>/tenant/<t>/admin/<name>)
//   --key=FILE                env FERRY_KEY
//   --timeout=DURATION        deadline of each RPC, default 10s
// A flag wins over its environment variable.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "cli/args.h"
#include "common/tls_files.h"
#include "ferry/v1/admin.grpc.pb.h"

namespace ferry::cli {

// Exit code of an admin command that could not reach the Intermediate at all
// (gRPC UNAVAILABLE or DEADLINE_EXCEEDED: not listening, a firewall, or a TLS
// handshake the server refused). Other RPC errors exit kExitFailure (1).
inline constexpr int kExitUnreachable = 3;

inline constexpr char kDefaultIntermediate[] = "127.0.0.1:7443";
inline constexpr absl::Duration kDefaultRpcTimeout = absl::Seconds(10);

// Where the admin commands connect and as whom.
struct AdminConnection {
  std::string address;  // "host:port"
  TlsFiles tls;         // CA, admin certificate and key paths
  absl::Duration timeout = kDefaultRpcTimeout;
};

// The flags of AdminConnection, for a command's FlagSpec list (append them to
// the command's own flags).
std::vector<FlagSpec> ConnectionFlagSpecs();

// Reads an environment variable; nullopt when unset or empty.
using EnvLookup = std::function<std::optional<std::string>(absl::string_view name)>;

// std::getenv, as an EnvLookup.
std::optional<std::string> ProcessEnv(absl::string_view name);

// The connection from parsed flags, falling back to `env`. INVALID_ARGUMENT
// naming the flag and its variable when a certificate path is missing
// ("--cert is not set (nor FERRY_CERT): ..."), or when --timeout is not a
// positive duration such as "5s". Reads no files.
absl::StatusOr<AdminConnection> ResolveConnection(const ParsedArgs& parsed,
                                                  const EnvLookup& env = ProcessEnv);

// A ferry.v1.Admin client over mutual TLS (common/intermediate_channel.h).
// Each call waits at most the connection's timeout and returns the RPC's
// status as an absl::Status with the same code and message. Calls may be made
// from any thread.
class AdminClient {
 public:
  // Builds the channel; the TLS files' read errors (NOT_FOUND with the path).
  // Does not connect yet: connection problems show up on the first call.
  static absl::StatusOr<std::unique_ptr<AdminClient>> Dial(const AdminConnection& connection);

  absl::StatusOr<v1::GetStatusResponse> GetStatus();
  absl::StatusOr<v1::ListServicesResponse> ListServices(const std::string& tenant);
  absl::StatusOr<v1::ListLeasesResponse> ListLeases(const std::string& tenant);
  absl::StatusOr<v1::ListSessionsResponse> ListSessions(const std::string& tenant);
  absl::StatusOr<v1::RegisterServiceResponse> RegisterService(const v1::ServiceSpec& spec);
  absl::Status DeregisterService(const std::string& tenant, const std::string& name);

  const AdminConnection& connection() const { return connection_; }

 private:
  AdminClient(AdminConnection connection, std::unique_ptr<v1::Admin::Stub> stub)
      : connection_(std::move(connection)), stub_(std::move(stub)) {}

  AdminConnection connection_;
  std::unique_ptr<v1::Admin::Stub> stub_;
};

// --output=table|json of the listing commands.
enum class OutputFormat { kTable, kJson };
FlagSpec OutputFlagSpec();
// kTable when absent; INVALID_ARGUMENT for anything but "table" or "json".
absl::StatusOr<OutputFormat> ParseOutputFormat(const ParsedArgs& parsed);

// Resolves the connection from `parsed` and dials it. On error prints
// "<program>: <reason>" to `err`, sets `*exit_code` (kExitUsage for a missing
// or bad flag, kExitFailure for an unreadable file) and returns null.
std::unique_ptr<AdminClient> ConnectFromFlags(absl::string_view program, const ParsedArgs& parsed,
                                              std::ostream& err, int* exit_code);

// Prints a failed RPC to `err` and returns the exit code for it:
//   UNAVAILABLE, DEADLINE_EXCEEDED   "<program>: could not reach the Intermediate at
//                                    <address>: <CODE>: <message>" and a hint; kExitUnreachable
//   anything else                    "<program>: <CODE>: <message>"; kExitFailure
int ReportRpcError(absl::string_view program, const AdminConnection& connection,
                   const absl::Status& status, std::ostream& err);

// The shape every listing command shares (`services list`, `leases`,
// `sessions`): flags --tenant and --output plus the connection flags, no
// positional arguments. Parses `args` (answering --help with `usage` and the
// flag list), connects, calls `list` with the client, the --tenant value ("" when
// absent) and the format, and prints what it returns to `out`. Returns
// kExitOk, kExitUsage, or ReportRpcError's code for an error `list` returns.
using ListingFn = std::function<absl::StatusOr<std::string>(
    AdminClient& client, const std::string& tenant, OutputFormat format)>;
int RunListingCommand(absl::string_view program, absl::string_view usage,
                      const std::vector<std::string>& args, const ListingFn& list,
                      std::ostream& out, std::ostream& err);

}  // namespace ferry::cli
