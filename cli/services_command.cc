#include "cli/services_command.h"

#include <iostream>
#include <iterator>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "cli/admin_client.h"
#include "cli/admin_format.h"
#include "cli/command_table.h"
#include "discovery/config_loader.h"
#include "google/protobuf/duration.pb.h"

namespace ferry::cli {
namespace {

using Kind = FlagSpec::Kind;

constexpr char kProgram[] = "ferryctl services";

std::vector<FlagSpec> WithConnectionFlags(std::vector<FlagSpec> specs) {
  for (FlagSpec& spec : ConnectionFlagSpecs()) specs.push_back(std::move(spec));
  return specs;
}

int UsageError(std::ostream& err, absl::string_view message) {
  err << kProgram << ": " << message << "\n";
  return kExitUsage;
}

// Parses the subcommand's flags; on --help or an error returns the exit code.
std::optional<int> Parse(const std::vector<std::string>& args, const std::vector<FlagSpec>& specs,
                         absl::string_view usage, ParsedArgs* parsed, std::ostream& out,
                         std::ostream& err) {
  return ParseCommandArgs(kProgram, args, specs, usage, parsed, out, err);
}

absl::StatusOr<v1::Protocol> ParseProtocol(absl::string_view name) {
  if (name == "tcp") return v1::PROTOCOL_TCP;
  if (name == "udp") return v1::PROTOCOL_UDP;
  if (name == "icmp") return v1::PROTOCOL_ICMP;
  return absl::InvalidArgumentError(
      absl::StrCat("--protocol must be tcp, udp or icmp, got '", name, "'"));
}

// --health=KIND[:ARG] into `*check`'s oneof.
absl::Status ParseHealth(absl::string_view value, v1::HealthCheck* check) {
  absl::string_view kind = value;
  absl::string_view arg;
  if (size_t colon = value.find(':'); colon != absl::string_view::npos) {
    kind = value.substr(0, colon);
    arg = value.substr(colon + 1);
  }
  if ((kind == "http" || kind == "https")) {
    if (!arg.empty() && !absl::StartsWith(arg, "/")) {
      return absl::InvalidArgumentError(
          absl::StrCat("--health=", kind, ":PATH wants a path starting with '/', got '", arg, "'"));
    }
    v1::HealthCheck::Http* http = check->mutable_http();
    if (!arg.empty()) http->set_path(std::string(arg));
    http->set_tls(kind == "https");
    return absl::OkStatus();
  }
  if (kind == "grpc") {
    check->mutable_grpc()->set_service(std::string(arg));
    return absl::OkStatus();
  }
  if (!arg.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--health=", kind, " takes no ':' argument, got '", value, "'"));
  }
  if (kind == "tcp") {
    check->mutable_tcp();
  } else if (kind == "udp") {
    check->mutable_udp();
  } else if (kind == "icmp") {
    check->mutable_icmp();
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "--health must be tcp, http[:/path], https[:/path], udp, grpc[:service] or icmp, got '",
        value, "'"));
  }
  return absl::OkStatus();
}

void PrintRegistered(const v1::Service& service, std::ostream& out) {
  out << "Registered service " << service.spec().name() << " (tenant " << service.spec().tenant()
      << ")\n"
      << "  id         " << service.id() << "\n"
      << "  vip        " << (service.vip().empty() ? "-" : service.vip()) << "\n"
      << "  dns name   " << (service.dns_name().empty() ? "-" : service.dns_name()) << "\n"
      << "  connector  " << service.spec().connector()
      << (service.connector().empty() ? " (not connected yet)" : " (connected)") << "\n"
      << "  health     " << HealthName(service.health()) << "\n"
      << "  backends   " << BackendsCell(service) << "\n";
}

int RunList(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  return RunListingCommand(
      kProgram,
      "Usage: ferryctl services list [flags]\n\n"
      "Services with protocol, port, VIP, health, serving connector, origin (config\n"
      "file or api) and backends. Exit: 0 ok, 1 RPC error, 2 usage, 3 unreachable.\n",
      args,
      [](AdminClient& client, const std::string& tenant,
         OutputFormat format) -> absl::StatusOr<std::string> {
        absl::StatusOr<v1::ListServicesResponse> services = client.ListServices(tenant);
        if (!services.ok()) return services.status();
        return format == OutputFormat::kJson ? MessageToJson(*services) : ServicesTable(*services);
      },
      out, err);
}

int RunAdd(const std::vector<std::string>& args, std::istream& in, std::ostream& out,
           std::ostream& err) {
  std::vector<FlagSpec> specs = ServiceSpecFlagSpecs();
  specs.push_back({"spec", Kind::kString, "FILE",
                   "a ServiceSpec in YAML or JSON ('-': standard input) instead of the flags"});
  specs.push_back(OutputFlagSpec());
  ParsedArgs parsed;
  if (std::optional<int> code =
          Parse(args, WithConnectionFlags(std::move(specs)),
                "Usage: ferryctl services add --name=N --protocol=P --backend=HOST:PORT "
                "--connector=C [flags]\n"
                "       ferryctl services add --spec=FILE|- [flags]\n",
                &parsed, out, err)) {
    return *code;
  }
  if (!parsed.positional().empty()) {
    return UsageError(err, absl::StrCat("unexpected argument '", parsed.positional()[0], "'"));
  }
  absl::StatusOr<OutputFormat> format = ParseOutputFormat(parsed);
  if (!format.ok()) return UsageError(err, format.status().message());

  absl::StatusOr<v1::ServiceSpec> spec;
  if (std::optional<std::string> file = parsed.Get("spec"); file.has_value()) {
    for (const FlagSpec& flag : ServiceSpecFlagSpecs()) {
      if (parsed.Has(flag.name)) {
        return UsageError(err, absl::StrCat("--spec and --", flag.name,
                                            " do not go together; put the field in the spec"));
      }
    }
    absl::StatusOr<std::string> text;
    if (*file == "-") {
      text = std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    } else {
      text = discovery::ReadConfigFile(*file);
    }
    if (!text.ok()) return UsageError(err, text.status().message());
    spec = ServiceSpecFromText(*text, *file == "-" ? "<stdin>" : *file);
  } else {
    spec = ServiceSpecFromFlags(parsed);
  }
  if (!spec.ok()) return UsageError(err, spec.status().message());

  int code = kExitOk;
  std::unique_ptr<AdminClient> client = ConnectFromFlags(kProgram, parsed, err, &code);
  if (client == nullptr) return code;
  absl::StatusOr<v1::RegisterServiceResponse> response = client->RegisterService(*spec);
  if (!response.ok()) return ReportRpcError(kProgram, client->connection(), response.status(), err);
  if (*format == OutputFormat::kJson) {
    out << MessageToJson(response->service());
  } else {
    PrintRegistered(response->service(), out);
  }
  return kExitOk;
}

int RunRemove(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  ParsedArgs parsed;
  if (std::optional<int> code =
          Parse(args,
                WithConnectionFlags({{"tenant", Kind::kString, "TENANT",
                                      "tenant of the service (default: the admin's own)"}}),
                "Usage: ferryctl services rm NAME [flags]\n\n"
                "Deregisters a service registered through the API (one from a connector's\n"
                "config file is refused: edit that file instead).\n",
                &parsed, out, err)) {
    return *code;
  }
  if (parsed.positional().size() != 1) {
    return UsageError(err, parsed.positional().empty()
                               ? "name the service to remove: ferryctl services rm NAME"
                               : "services rm takes one NAME");
  }
  const std::string& name = parsed.positional()[0];
  int code = kExitOk;
  std::unique_ptr<AdminClient> client = ConnectFromFlags(kProgram, parsed, err, &code);
  if (client == nullptr) return code;
  absl::Status status = client->DeregisterService(parsed.GetOr("tenant", ""), name);
  if (!status.ok()) return ReportRpcError(kProgram, client->connection(), status, err);
  out << "Deregistered service " << name << "\n";
  return kExitOk;
}

constexpr char kServicesUsage[] =
    "Usage: ferryctl services <list|add|rm> [flags]\n\n"
    "  list   services with VIP, health, connector and backends\n"
    "  add    register a service for a connector (flags or --spec)\n"
    "  rm     deregister an API-registered service\n\n"
    "Run 'ferryctl services <subcommand> --help' for its flags.\n"
    "Exit: 0 ok, 1 the Intermediate refused, 2 usage, 3 unreachable.\n";

}  // namespace

std::vector<FlagSpec> ServiceSpecFlagSpecs() {
  return {
      {"name", Kind::kString, "NAME", "service name, a DNS label (required)"},
      {"tenant", Kind::kString, "TENANT", "tenant of the service (default: the admin's own)"},
      {"protocol", Kind::kString, "PROTO", "tcp, udp or icmp (required)"},
      {"backend", Kind::kString, "HOST:PORT",
       "a backend (repeatable or comma-separated; dns://name:port and srv://... too; required)"},
      {"connector", Kind::kString, "NAME", "the connector that is to serve it (required)"},
      {"port", Kind::kString, "N", "port agents expose it on (default: the first backend's)"},
      {"health", Kind::kString, "KIND",
       "health check: tcp, http[:/path], https[:/path], udp, grpc[:service] or icmp "
       "(default: none)"},
      {"interval", Kind::kString, "DURATION", "with --health: time between checks (default 5s)"},
      {"pin_vip", Kind::kString, "IP",
       "pin the VIP to this address of the pool (default: "
       "allocated)"},
  };
}

absl::StatusOr<v1::ServiceSpec> ServiceSpecFromFlags(const ParsedArgs& parsed) {
  for (const char* required : {"name", "protocol", "backend", "connector"}) {
    if (parsed.GetOr(required, "").empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("missing --", required, " (or give the whole service with --spec)"));
    }
  }
  v1::ServiceSpec spec;
  spec.set_name(*parsed.Get("name"));
  spec.set_tenant(parsed.GetOr("tenant", ""));
  absl::StatusOr<v1::Protocol> protocol = ParseProtocol(*parsed.Get("protocol"));
  if (!protocol.ok()) return protocol.status();
  spec.set_protocol(*protocol);
  for (const std::string& backend : parsed.GetList("backend")) {
    spec.add_backends()->set_address(backend);
  }
  spec.set_connector(*parsed.Get("connector"));
  absl::StatusOr<std::optional<int64_t>> port = parsed.GetInt("port");
  if (!port.ok()) return port.status();
  if (port->has_value()) {
    if (**port < 1 || **port > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("--port must be between 1 and 65535, got ", **port));
    }
    spec.set_port(static_cast<uint32_t>(**port));
  }
  if (std::optional<std::string> health = parsed.Get("health"); health.has_value()) {
    if (absl::Status status = ParseHealth(*health, spec.mutable_health_check()); !status.ok()) {
      return status;
    }
  }
  if (std::optional<std::string> interval = parsed.Get("interval"); interval.has_value()) {
    if (!spec.has_health_check()) {
      return absl::InvalidArgumentError("--interval needs --health (the kind of check)");
    }
    absl::Duration d;
    if (!absl::ParseDuration(*interval, &d) || d <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--interval wants a positive duration such as 5s or 500ms, got '", *interval, "'"));
    }
    google::protobuf::Duration* proto = spec.mutable_health_check()->mutable_interval();
    proto->set_seconds(absl::IDivDuration(d, absl::Seconds(1), &d));
    proto->set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(d)));
  }
  spec.set_pinned_vip(parsed.GetOr("pin_vip", ""));
  return spec;
}

absl::StatusOr<v1::ServiceSpec> ServiceSpecFromText(absl::string_view text,
                                                    absl::string_view source_name) {
  v1::ServiceSpec spec;
  if (absl::Status status = discovery::ParseConfigText(text, source_name, &spec); !status.ok()) {
    return status;
  }
  return spec;
}

int RunServicesCommand(const std::vector<std::string>& args, std::istream& in, std::ostream& out,
                       std::ostream& err) {
  if (args.empty()) {
    err << kServicesUsage;
    return kExitUsage;
  }
  const std::string& sub = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (sub == "--help" || sub == "-h" || sub == "help") {
    out << kServicesUsage;
    return kExitOk;
  }
  if (sub == "list" || sub == "ls") return RunList(rest, out, err);
  if (sub == "add") return RunAdd(rest, in, out, err);
  if (sub == "rm" || sub == "remove") return RunRemove(rest, out, err);
  err << kProgram << ": unknown subcommand '" << sub << "'\n\n" << kServicesUsage;
  return kExitUsage;
}

int RunServicesCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  return RunServicesCommand(args, std::cin, out, err);
}

}  // namespace ferry::cli
