#include "cli/status_command.h"

#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cli/admin_client.h"
#include "cli/admin_format.h"
#include "cli/args.h"
#include "cli/command_table.h"

namespace ferry::cli {
namespace {

using Kind = FlagSpec::Kind;

constexpr char kProgram[] = "ferryctl status";
constexpr char kClearScreen[] = "\033[H\033[2J";

std::vector<FlagSpec> StatusFlagSpecs() {
  std::vector<FlagSpec> specs = {
      {"tenant", Kind::kString, "TENANT",
       "services and sessions of this tenant (default: the admin's own)"},
      OutputFlagSpec(),
      {"watch", Kind::kString, "INTERVAL",
       "redraw every INTERVAL until interrupted (--watch alone: 2s)"},
      {"watch_count", Kind::kString, "N", "with --watch: stop after N frames (default: never)"},
  };
  for (FlagSpec& spec : ConnectionFlagSpecs()) specs.push_back(std::move(spec));
  return specs;
}

absl::StatusOr<StatusOptions> ParseStatusOptions(const ParsedArgs& parsed) {
  StatusOptions options;
  if (std::optional<std::string> watch = parsed.Get("watch"); watch.has_value()) {
    options.watch = true;
    if (!absl::ParseDuration(*watch, &options.interval) ||
        options.interval < absl::Milliseconds(100)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--watch wants an interval of at least 100ms such as 2s, got '", *watch, "'"));
    }
  }
  absl::StatusOr<std::optional<int64_t>> count = parsed.GetInt("watch_count");
  if (!count.ok()) return count.status();
  if (count->has_value()) {
    if (!options.watch) return absl::InvalidArgumentError("--watch_count needs --watch");
    if (**count <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--watch_count must be at least 1, got ", **count));
    }
    options.watch_count = **count;
  }
  return options;
}

// One frame: the dashboard (or JSON) to `out`, or the error to `err`. Returns the exit code.
int DrawOnce(AdminClient& client, const std::string& tenant, OutputFormat format, std::ostream& out,
             std::ostream& err) {
  absl::StatusOr<v1::GetStatusResponse> status = client.GetStatus();
  if (!status.ok()) return ReportRpcError(kProgram, client.connection(), status.status(), err);
  absl::StatusOr<v1::ListServicesResponse> services = client.ListServices(tenant);
  if (!services.ok()) return ReportRpcError(kProgram, client.connection(), services.status(), err);
  absl::StatusOr<v1::ListSessionsResponse> sessions = client.ListSessions(tenant);
  if (!sessions.ok()) return ReportRpcError(kProgram, client.connection(), sessions.status(), err);
  if (format == OutputFormat::kJson) {
    out << StatusJson(*status, *services, *sessions);
  } else {
    out << StatusText(*status, *services, *sessions, absl::Now());
  }
  return kExitOk;
}

}  // namespace

std::vector<std::string> NormalizeWatchFlag(const std::vector<std::string>& args) {
  std::vector<std::string> normalized;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--") {
      normalized.insert(normalized.end(), args.begin() + i, args.end());
      break;
    }
    absl::Duration unused;
    bool next_is_interval = i + 1 < args.size() && !absl::StartsWith(args[i + 1], "-") &&
                            absl::ParseDuration(args[i + 1], &unused);
    if (args[i] == "--watch" && !next_is_interval) {
      normalized.push_back(absl::StrCat("--watch=", absl::FormatDuration(kDefaultWatchInterval)));
    } else {
      normalized.push_back(args[i]);
    }
  }
  return normalized;
}

int RunStatusCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  ParsedArgs parsed;
  if (std::optional<int> code = ParseCommandArgs(
          kProgram, NormalizeWatchFlag(args), StatusFlagSpecs(),
          "Usage: ferryctl status [flags]\n\n"
          "Shows the Intermediate, its connectors (with any CONFIG ERROR), relays,\n"
          "services and sessions. Exit: 0 ok, 1 RPC error, 2 usage, 3 unreachable.\n",
          &parsed, out, err)) {
    return *code;
  }
  if (!parsed.positional().empty()) {
    err << kProgram << ": unexpected argument '" << parsed.positional().front() << "'\n";
    return kExitUsage;
  }
  absl::StatusOr<StatusOptions> options = ParseStatusOptions(parsed);
  absl::StatusOr<OutputFormat> format = ParseOutputFormat(parsed);
  for (const absl::Status& status : {options.status(), format.status()}) {
    if (!status.ok()) {
      err << kProgram << ": " << status.message() << "\n";
      return kExitUsage;
    }
  }
  int code = kExitOk;
  std::unique_ptr<AdminClient> client = ConnectFromFlags(kProgram, parsed, err, &code);
  if (client == nullptr) return code;
  const std::string tenant = parsed.GetOr("tenant", "");

  if (!options->watch) return DrawOnce(*client, tenant, *format, out, err);
  for (int64_t frame = 1;; ++frame) {
    if (*format == OutputFormat::kTable) {
      out << kClearScreen << "Every " << absl::FormatDuration(options->interval)
          << ": ferryctl status    "
          << absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::Now(), absl::LocalTimeZone()) << "\n\n";
    }
    // In a watch the error belongs in the frame, where the operator looks.
    code = DrawOnce(*client, tenant, *format, out, *format == OutputFormat::kTable ? out : err);
    out.flush();
    if (options->watch_count > 0 && frame >= options->watch_count) return code;
    absl::SleepFor(options->interval);
  }
}

}  // namespace ferry::cli
