// ferryctl: the operator's command line for Ferry.
//
//   ferryctl <command> [args...]
//
// Commands are rows of kCommands below; add a command by adding a row whose
// handler has the CommandHandler signature (cli/command_table.h). Results go
// to stdout, errors and glog messages to stderr, so output can be piped.
#include <openssl/crypto.h>

#include <iostream>
#include <string>
#include <vector>

#include "cli/backup_command.h"
#include "cli/command_table.h"
#include "cli/leases_command.h"
#include "cli/logs_command.h"
#include "cli/pki_command.h"
#include "cli/services_command.h"
#include "cli/sessions_command.h"
#include "cli/status_command.h"
#include "cli/version.h"
#include "glog/logging.h"

namespace ferry::cli {
namespace {

int RunVersion(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) {
    out << "Usage: ferryctl version\n\nPrints ferryctl's version and the OpenSSL it runs on.\n";
    return kExitOk;
  }
  if (!args.empty()) {
    err << "ferryctl version: unexpected argument '" << args[0] << "'\n";
    return kExitUsage;
  }
  out << "ferryctl " << kFerryVersion << "\n"
      << "built with " << OPENSSL_VERSION_TEXT << ", running " << OpenSSL_version(OPENSSL_VERSION)
      << "\n";
  return kExitOk;
}

constexpr Command kCommands[] = {
    {"pki", "dev PKI: a local CA and identity certificates (init, issue, list, rotate)",
     &RunPkiCommand},
    {"status", "dashboard: Intermediate, connectors (config errors), relays, services, sessions",
     &RunStatusCommand},
    {"services", "list, add (register) and rm (deregister) services", &RunServicesCommand},
    {"leases", "list VIP leases", &RunLeasesCommand},
    {"sessions", "list data-plane sessions", &RunSessionsCommand},
    {"logs", "the components' logs merged by time ([component] [-f] [--since] [--lines])",
     &RunLogsCommand},
    {"backup", "back up config, certificates and state into one tar; verify and restore it",
     &RunBackupCommand},
    {"version", "print the version", &RunVersion},
};

}  // namespace
}  // namespace ferry::cli

int main(int argc, char** argv) {
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  std::vector<std::string> args(argv + 1, argv + argc);
  int code =
      ferry::cli::RunCommandLine("ferryctl", ferry::cli::kCommands, args, std::cout, std::cerr);
  std::cout.flush();
  return code;
}
