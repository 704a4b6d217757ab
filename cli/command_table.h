// The command table of ferryctl: `ferryctl <command> [args...]`.
//
// Each command is one entry (name, one-line summary, handler); the dispatcher
// picks the entry, hands it the remaining arguments and returns its exit code.
// Adding a command (status, services, leases, logs, backup, up/down) means
// adding one entry to the table in ferryctl_main.cc. The dispatcher also
// answers `help`, `help <command>`, `--help` and `-h` itself.
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "cli/args.h"

namespace ferry::cli {

// Process exit codes every ferryctl command uses.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // The command ran and failed.
inline constexpr int kExitUsage = 2;    // Bad command line; nothing was done.

// Runs a command with the arguments after its name. Normal output goes to
// `out`, errors and usage complaints to `err`; returns a kExit* code. A
// handler answers `--help` itself (to `out`, kExitOk).
using CommandHandler = int (*)(const std::vector<std::string>& args, std::ostream& out,
                               std::ostream& err);

struct Command {
  absl::string_view name;     // What the user types: "pki".
  absl::string_view summary;  // One line for `ferryctl help`.
  CommandHandler run;
};

// The top-level usage text: how to call `program` and one line per command.
std::string CommandLineUsage(absl::string_view program, absl::Span<const Command> commands);

// Dispatches `args` (argv without the program name) to the matching command.
//   (no arguments)            usage to `err`, kExitUsage
//   help | --help | -h        usage to `out`, kExitOk
//   help <command>            that command's --help
//   <command> args...         the command's own exit code
//   anything else             "unknown command" and usage to `err`, kExitUsage
// "help", "--help" and "-h" are reserved: a table entry with such a name is
// never reached.
int RunCommandLine(absl::string_view program, absl::Span<const Command> commands,
                   const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

// The first step of most handlers: parses `args` against `specs`.
//   --help given    prints `usage`, a blank line and the flag list to `out`;
//                   returns kExitOk
//   parse error     prints "<program>: <reason>" and the same help to `err`;
//                   returns kExitUsage
//   otherwise       stores the result in `*parsed`; returns nullopt (carry on)
// `usage` is the handler's synopsis, e.g. "Usage: ferryctl pki init [flags]\n".
std::optional<int> ParseCommandArgs(absl::string_view program, const std::vector<std::string>& args,
                                    const std::vector<FlagSpec>& specs, absl::string_view usage,
                                    ParsedArgs* parsed, std::ostream& out, std::ostream& err);

}  // namespace ferry::cli
