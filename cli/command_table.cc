#include "cli/command_table.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace ferry::cli {
namespace {

const Command* FindCommand(absl::Span<const Command> commands, absl::string_view name) {
  for (const Command& command : commands) {
    if (command.name == name) return &command;
  }
  return nullptr;
}

}  // namespace

std::string CommandLineUsage(absl::string_view program, absl::Span<const Command> commands) {
  size_t width = std::string_view("help").size();
  for (const Command& command : commands) width = std::max(width, command.name.size());
  std::string usage = absl::StrCat("Usage: ", program, " <command> [args...]\n\nCommands:\n");
  for (const Command& command : commands) {
    absl::StrAppendFormat(&usage, "  %-*s  %s\n", static_cast<int>(width), command.name,
                          command.summary);
  }
  absl::StrAppendFormat(&usage, "  %-*s  %s\n", static_cast<int>(width), "help",
                        "show this list, or `help <command>` for a command's flags");
  absl::StrAppend(&usage, "\nRun '", program, " <command> --help' for a command's flags.\n");
  return usage;
}

int RunCommandLine(absl::string_view program, absl::Span<const Command> commands,
                   const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (args.empty()) {
    err << CommandLineUsage(program, commands);
    return kExitUsage;
  }
  const std::string& name = args[0];
  if (name == "help" || name == "--help" || name == "-h") {
    if (name == "help" && args.size() > 1) {
      const Command* command = FindCommand(commands, args[1]);
      if (command == nullptr) {
        err << program << ": unknown command '" << args[1] << "'\n\n"
            << CommandLineUsage(program, commands);
        return kExitUsage;
      }
      return command->run({"--help"}, out, err);
    }
    out << CommandLineUsage(program, commands);
    return kExitOk;
  }
  const Command* command = FindCommand(commands, name);
  if (command == nullptr) {
    err << program << ": unknown command '" << name << "'\n\n"
        << CommandLineUsage(program, commands);
    return kExitUsage;
  }
  return command->run(std::vector<std::string>(args.begin() + 1, args.end()), out, err);
}

std::optional<int> ParseCommandArgs(absl::string_view program, const std::vector<std::string>& args,
                                    const std::vector<FlagSpec>& specs, absl::string_view usage,
                                    ParsedArgs* parsed, std::ostream& out, std::ostream& err) {
  std::string help = absl::StrCat(usage, "\nFlags:\n", FormatFlagHelp(specs));
  absl::StatusOr<ParsedArgs> result = ParseArgs(args, specs);
  if (!result.ok()) {
    err << program << ": " << result.status().message() << "\n\n" << help;
    return kExitUsage;
  }
  if (result->help_requested()) {
    out << help;
    return kExitOk;
  }
  *parsed = *std::move(result);
  return std::nullopt;
}

}  // namespace ferry::cli
