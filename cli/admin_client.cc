#include "cli/admin_client.h"

#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "cli/command_table.h"
#include "common/grpc_status.h"
#include "common/intermediate_channel.h"
#include "grpcpp/client_context.h"

namespace ferry::cli {
namespace {

using Kind = FlagSpec::Kind;

// The flag, or else the variable, or else `fallback`.
std::string FlagOrEnv(const ParsedArgs& parsed, const EnvLookup& env, absl::string_view flag,
                      absl::string_view variable, absl::string_view fallback) {
  if (std::optional<std::string> value = parsed.Get(flag); value.has_value()) return *value;
  if (std::optional<std::string> value = env(variable); value.has_value()) return *value;
  return std::string(fallback);
}

// One unary call with a deadline `timeout` from now: `rpc(context, &response)` is the stub
// call; its status comes back as an absl::Status with the same code and message.
template <typename Response, typename Rpc>
absl::StatusOr<Response> Call(absl::Duration timeout, const Rpc& rpc) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  Response response;
  grpc::Status status = rpc(&context, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

}  // namespace

std::vector<FlagSpec> ConnectionFlagSpecs() {
  return {
      {"intermediate", Kind::kString, "HOST:PORT",
       absl::StrCat("the Intermediate's gRPC address (env FERRY_INTERMEDIATE; default ",
                    kDefaultIntermediate, ")")},
      {"ca_cert", Kind::kString, "FILE", "CA certificate of the fabric (env FERRY_CA_CERT)"},
      {"cert", Kind::kString, "FILE",
       "admin certificate, spiffe://<td>/tenant/<t>/admin/<name> (env FERRY_CERT)"},
      {"key", Kind::kString, "FILE", "private key of --cert (env FERRY_KEY)"},
      {"timeout", Kind::kString, "DURATION", "deadline of each RPC (default 10s)"},
  };
}

std::optional<std::string> ProcessEnv(absl::string_view name) {
  const char* value = std::getenv(std::string(name).c_str());
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string(value);
}

absl::StatusOr<AdminConnection> ResolveConnection(const ParsedArgs& parsed, const EnvLookup& env) {
  AdminConnection connection;
  connection.address =
      FlagOrEnv(parsed, env, "intermediate", "FERRY_INTERMEDIATE", kDefaultIntermediate);
  if (connection.address.empty()) {
    return absl::InvalidArgumentError("--intermediate is empty; give HOST:PORT");
  }
  struct PathFlag {
    const char* flag;
    const char* variable;
    std::string* path;
  };
  for (const PathFlag& p : {PathFlag{"ca_cert", "FERRY_CA_CERT", &connection.tls.ca_cert},
                            PathFlag{"cert", "FERRY_CERT", &connection.tls.cert},
                            PathFlag{"key", "FERRY_KEY", &connection.tls.key}}) {
    *p.path = FlagOrEnv(parsed, env, p.flag, p.variable, "");
    if (p.path->empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", p.flag, " is not set (nor ", p.variable,
                       "): admin commands need the fabric's CA and an admin certificate and key "
                       "(ferryctl pki issue --role admin ...)"));
    }
  }
  if (std::optional<std::string> timeout = parsed.Get("timeout"); timeout.has_value()) {
    if (!absl::ParseDuration(*timeout, &connection.timeout) ||
        connection.timeout <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--timeout wants a positive duration such as 5s or 500ms, got '", *timeout, "'"));
    }
  }
  return connection;
}

absl::StatusOr<std::unique_ptr<AdminClient>> AdminClient::Dial(const AdminConnection& connection) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      DialIntermediate(connection.address, connection.tls);
  if (!channel.ok()) return channel.status();
  return std::unique_ptr<AdminClient>(new AdminClient(connection, v1::Admin::NewStub(*channel)));
}

absl::StatusOr<v1::GetStatusResponse> AdminClient::GetStatus() {
  return Call<v1::GetStatusResponse>(
      connection_.timeout, [this](grpc::ClientContext* context, v1::GetStatusResponse* response) {
        return stub_->GetStatus(context, v1::GetStatusRequest(), response);
      });
}

absl::StatusOr<v1::ListServicesResponse> AdminClient::ListServices(const std::string& tenant) {
  v1::ListServicesRequest request;
  request.set_tenant(tenant);
  return Call<v1::ListServicesResponse>(
      connection_.timeout,
      [this, &request](grpc::ClientContext* context, v1::ListServicesResponse* response) {
        return stub_->ListServices(context, request, response);
      });
}

absl::StatusOr<v1::ListLeasesResponse> AdminClient::ListLeases(const std::string& tenant) {
  v1::ListLeasesRequest request;
  request.set_tenant(tenant);
  return Call<v1::ListLeasesResponse>(
      connection_.timeout,
      [this, &request](grpc::ClientContext* context, v1::ListLeasesResponse* response) {
        return stub_->ListLeases(context, request, response);
      });
}

absl::StatusOr<v1::ListSessionsResponse> AdminClient::ListSessions(const std::string& tenant) {
  v1::ListSessionsRequest request;
  request.set_tenant(tenant);
  return Call<v1::ListSessionsResponse>(
      connection_.timeout,
      [this, &request](grpc::ClientContext* context, v1::ListSessionsResponse* response) {
        return stub_->ListSessions(context, request, response);
      });
}

absl::StatusOr<v1::RegisterServiceResponse> AdminClient::RegisterService(
    const v1::ServiceSpec& spec) {
  v1::RegisterServiceRequest request;
  *request.mutable_service() = spec;
  return Call<v1::RegisterServiceResponse>(
      connection_.timeout,
      [this, &request](grpc::ClientContext* context, v1::RegisterServiceResponse* response) {
        return stub_->RegisterService(context, request, response);
      });
}

absl::Status AdminClient::DeregisterService(const std::string& tenant, const std::string& name) {
  v1::DeregisterServiceRequest request;
  request.set_tenant(tenant);
  request.set_name(name);
  return Call<v1::DeregisterServiceResponse>(
             connection_.timeout,
             [this, &request](grpc::ClientContext* context,
                              v1::DeregisterServiceResponse* response) {
               return stub_->DeregisterService(context, request, response);
             })
      .status();
}

FlagSpec OutputFlagSpec() {
  return {"output", Kind::kString, "FORMAT", "table or json (default table)"};
}

absl::StatusOr<OutputFormat> ParseOutputFormat(const ParsedArgs& parsed) {
  std::string value = parsed.GetOr("output", "table");
  if (value == "table") return OutputFormat::kTable;
  if (value == "json") return OutputFormat::kJson;
  return absl::InvalidArgumentError(
      absl::StrCat("--output must be table or json, got '", value, "'"));
}

std::unique_ptr<AdminClient> ConnectFromFlags(absl::string_view program, const ParsedArgs& parsed,
                                              std::ostream& err, int* exit_code) {
  absl::StatusOr<AdminConnection> connection = ResolveConnection(parsed);
  if (!connection.ok()) {
    err << program << ": " << connection.status().message() << "\n";
    *exit_code = kExitUsage;
    return nullptr;
  }
  absl::StatusOr<std::unique_ptr<AdminClient>> client = AdminClient::Dial(*connection);
  if (!client.ok()) {
    err << program << ": " << client.status().message() << "\n";
    *exit_code =
        client.status().code() == absl::StatusCode::kInvalidArgument ? kExitUsage : kExitFailure;
    return nullptr;
  }
  return *std::move(client);
}

int ReportRpcError(absl::string_view program, const AdminConnection& connection,
                   const absl::Status& status, std::ostream& err) {
  std::string code = absl::StatusCodeToString(status.code());
  if (status.code() == absl::StatusCode::kUnavailable ||
      status.code() == absl::StatusCode::kDeadlineExceeded) {
    err << program << ": could not reach the Intermediate at " << connection.address << ": " << code
        << ": " << status.message() << "\n"
        << "  (is it running and listening there? check --intermediate or FERRY_INTERMEDIATE; a "
           "certificate the Intermediate refuses also ends here: check --ca_cert, --cert, --key)\n";
    return kExitUnreachable;
  }
  err << program << ": " << code << ": " << status.message() << "\n";
  return kExitFailure;
}

int RunListingCommand(absl::string_view program, absl::string_view usage,
                      const std::vector<std::string>& args, const ListingFn& list,
                      std::ostream& out, std::ostream& err) {
  std::vector<FlagSpec> specs = {
      {"tenant", Kind::kString, "TENANT",
       "this tenant (default: the admin's own; an operator admin may name any)"},
      OutputFlagSpec()};
  for (FlagSpec& spec : ConnectionFlagSpecs()) specs.push_back(std::move(spec));
  ParsedArgs parsed;
  if (std::optional<int> code = ParseCommandArgs(program, args, specs, usage, &parsed, out, err)) {
    return *code;
  }
  if (!parsed.positional().empty()) {
    err << program << ": unexpected argument '" << parsed.positional().front() << "'\n";
    return kExitUsage;
  }
  absl::StatusOr<OutputFormat> format = ParseOutputFormat(parsed);
  if (!format.ok()) {
    err << program << ": " << format.status().message() << "\n";
    return kExitUsage;
  }
  int code = kExitOk;
  std::unique_ptr<AdminClient> client = ConnectFromFlags(program, parsed, err, &code);
  if (client == nullptr) return code;
  absl::StatusOr<std::string> text = list(*client, parsed.GetOr("tenant", ""), *format);
  if (!text.ok()) return ReportRpcError(program, client->connection(), text.status(), err);
  out << *text;
  return kExitOk;
}

}  // namespace ferry::cli
