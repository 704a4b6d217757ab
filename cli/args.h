// A tiny command-line parser for ferryctl subcommands.
//
// ferryctl dispatches `ferryctl <command> <args...>` itself, so each command
// parses its own argument vector with this parser instead of global absl
// flags: a command declares the flags it accepts (FlagSpec), and ParseArgs
// splits the vector into flag values and positional arguments. Accepted forms:
//   --key=value   --key value   --flag (boolean)   --flag=true|false
//   --            (everything after it is positional)
// `--help` and `-h` are always accepted and set ParsedArgs::help_requested().
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ferry::cli {

// One flag a command accepts.
struct FlagSpec {
  enum class Kind {
    kString,  // Takes a value: `--key=value` or `--key value`.
    kBool,    // No value (`--flag`), or an explicit `--flag=true|false`.
  };
  std::string name;  // Without the leading dashes, e.g. "trust_domain".
  Kind kind = Kind::kString;
  std::string value_name;  // Shown in usage, e.g. "DIR"; defaults to "VALUE".
  std::string help;        // One line; mention the default here.
};

// The result of ParseArgs. Values are kept in command-line order; a flag given
// twice keeps both values (Get returns the last, GetList all of them).
class ParsedArgs {
 public:
  // True when --help or -h appeared anywhere before `--`.
  bool help_requested() const { return help_requested_; }

  // Positional arguments in order.
  const std::vector<std::string>& positional() const { return positional_; }

  // True when the flag appeared at least once (for a bool flag: even as
  // `--flag=false`; use GetBool for its value).
  bool Has(absl::string_view name) const;

  // The last value given for a string flag; nullopt when it was not given.
  std::optional<std::string> Get(absl::string_view name) const;

  // The last value, or `fallback` when the flag was not given.
  std::string GetOr(absl::string_view name, absl::string_view fallback) const;

  // Value of a bool flag: false when absent.
  bool GetBool(absl::string_view name) const;

  // All values of a string flag, each split on commas, empty items dropped:
  // `--dns a,b --dns c` gives {"a", "b", "c"}.
  std::vector<std::string> GetList(absl::string_view name) const;

  // The last value parsed as a base-10 integer; nullopt when absent;
  // INVALID_ARGUMENT naming the flag when the value is not an integer.
  absl::StatusOr<std::optional<int64_t>> GetInt(absl::string_view name) const;

 private:
  friend absl::StatusOr<ParsedArgs> ParseArgs(const std::vector<std::string>& args,
                                              const std::vector<FlagSpec>& specs);
  bool help_requested_ = false;
  std::vector<std::string> positional_;
  std::map<std::string, std::vector<std::string>, std::less<>> values_;
};

// Parses `args` (the arguments after the command name) against `specs`.
// Returns INVALID_ARGUMENT with a message such as "unknown flag --x",
// "flag --dir needs a value" or "flag --force takes no value other than true
// or false". Never reads global state; safe to call from any thread.
absl::StatusOr<ParsedArgs> ParseArgs(const std::vector<std::string>& args,
                                     const std::vector<FlagSpec>& specs);

// Formats the flag list for a --help text, one flag a line:
//   "  --dir=DIR            where the CA lives (default .ferry/pki)\n"
std::string FormatFlagHelp(const std::vector<FlagSpec>& specs);

}  // namespace ferry::cli
