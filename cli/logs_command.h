// `ferryctl logs`: the components' glog files in one log directory, read as one stream.
//
//   ferryctl logs [component] [-f|--follow] [--since=10m|RFC3339] [--dir=.ferry/logs]
//                 [--lines=N] [--follow_for=DURATION]
//
// component is intermediate, relay, connector, agent (the programs ferry-intermediate, ...) or
// all (the default). Lines of all files (every start of the program, oldest first; see
// cli/glog_file.h) are merged by their timestamps, each file keeping its own order; with more
// than one component each line is prefixed by its component's name.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace ferry::cli {

inline constexpr char kDefaultLogDir[] = ".ferry/logs";

// A component name as the user types it, and the program whose logs it means.
struct LogComponent {
  const char* name;     // "intermediate"
  const char* program;  // "ferry-intermediate"
};

// intermediate, relay, connector, agent, in that order.
const std::vector<LogComponent>& LogComponents();

struct LogsOptions {
  std::string dir = kDefaultLogDir;
  std::vector<LogComponent> components;  // At least one; a prefix is printed when more than one.
  std::optional<absl::Time> since;       // Lines before it are left out.
  int64_t lines = 0;                     // Only the last N lines of what exists (0: all).
  bool follow = false;                   // Then keep printing lines as they are written.
  absl::Duration follow_for = absl::InfiniteDuration();  // How long -f follows.
  absl::Duration poll_interval = absl::Milliseconds(200);
  absl::TimeZone tz = absl::LocalTimeZone();  // The zone the log times are written in.
  absl::Time now = absl::Now();               // Dates "mmdd" lines of headerless files.
};

// Prints the merged log lines to `out`. Without follow, returns NOT_FOUND when `dir` does not
// exist or holds no log file of the components. With follow, the directory is re-read every
// poll_interval, so files of restarted components are picked up, and lines are printed (merged
// per poll) until follow_for has passed; a half-written last line waits for its newline. Reads
// only; blocks the calling thread while following.
absl::Status ShowLogs(const LogsOptions& options, std::ostream& out);

// Runs `ferryctl logs <args...>` (`args` excludes "logs"); `-f` is accepted for --follow.
// Exit codes: 0 printed; 1 no such directory or no log files; 2 usage error (unknown component,
// bad --since, --lines or --follow_for). `now` resolves --since=DURATION; `tz` is the log files'
// zone.
int RunLogsCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                   absl::Time now, absl::TimeZone tz);

// The same with the current time and the local zone (the CommandHandler for ferryctl).
int RunLogsCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace ferry::cli
