#include "cli/logs_command.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <queue>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "cli/args.h"
#include "cli/command_table.h"
#include "cli/glog_file.h"

namespace ferry::cli {
namespace {

using Kind = FlagSpec::Kind;
constexpr char kProgram[] = "ferryctl logs";

// One log file being read: where reading stopped and the parser's state there.
struct Source {
  size_t component = 0;  // Index into LogsOptions::components.
  std::string path;
  uint64_t offset = 0;  // Bytes consumed: always just after a newline.
  GlogLineParser parser;
};

struct Entry {
  absl::Time time;
  size_t component;
  std::string text;
};

// Reads `source` from its offset to the last complete line; appends those lines to `entries`.
absl::Status ReadNewLines(Source& source, std::vector<Entry>* entries) {
  int fd = open(source.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return absl::OkStatus();  // Rotated away meanwhile.
    return absl::InternalError(absl::StrCat("open ", source.path, ": ", strerror(errno)));
  }
  struct stat st;
  if (fstat(fd, &st) == 0 && static_cast<uint64_t>(st.st_size) < source.offset) {
    source.offset = 0;  // Truncated: read it again from the start.
  }
  std::string data;
  char buffer[1 << 16];
  uint64_t at = source.offset;
  while (true) {
    ssize_t n = pread(fd, buffer, sizeof(buffer), static_cast<off_t>(at));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    data.append(buffer, static_cast<size_t>(n));
    at += static_cast<uint64_t>(n);
  }
  close(fd);
  size_t start = 0;
  for (size_t newline = data.find('\n'); newline != std::string::npos;
       newline = data.find('\n', start)) {
    absl::string_view line(data.data() + start, newline - start);
    if (std::optional<GlogLine> parsed = source.parser.Parse(line)) {
      entries->push_back({parsed->time, source.component, std::move(parsed->text)});
    }
    start = newline + 1;
  }
  source.offset += start;
  return absl::OkStatus();
}

// Merges per-source lists (each already in its file's order) by time; ties go to the earlier
// source, so a continuation line stays behind the line it continues.
std::vector<Entry> Merge(std::vector<std::vector<Entry>> lists) {
  using Head = std::pair<size_t, size_t>;  // (list, index)
  auto later = [&](const Head& a, const Head& b) {
    const absl::Time ta = lists[a.first][a.second].time, tb = lists[b.first][b.second].time;
    return ta != tb ? ta > tb : a.first > b.first;
  };
  std::priority_queue<Head, std::vector<Head>, decltype(later)> heads(later);
  for (size_t i = 0; i < lists.size(); ++i) {
    if (!lists[i].empty()) heads.push({i, 0});
  }
  std::vector<Entry> merged;
  while (!heads.empty()) {
    auto [list, index] = heads.top();
    heads.pop();
    merged.push_back(std::move(lists[list][index]));
    if (index + 1 < lists[list].size()) heads.push({list, index + 1});
  }
  return merged;
}

class LogPrinter {
 public:
  LogPrinter(const LogsOptions& options, std::ostream& out) : options_(options), out_(out) {
    for (const LogComponent& component : options.components) {
      width_ = std::max(width_, strlen(component.name));
    }
  }

  // Opens the files of every component not seen before (from their start).
  absl::Status Discover() {
    for (size_t c = 0; c < options_.components.size(); ++c) {
      absl::StatusOr<std::vector<GlogFile>> files =
          ListGlogFiles(options_.dir, options_.components[c].program, options_.tz);
      if (!files.ok()) return files.status();
      for (const GlogFile& file : *files) {
        if (known_.count(file.path) != 0) continue;
        known_[file.path] = sources_.size();
        sources_.push_back(
            {c, file.path, 0,
             GlogLineParser(options_.tz, absl::ToCivilYear(options_.now, options_.tz).year())});
      }
    }
    return absl::OkStatus();
  }

  bool empty() const { return sources_.empty(); }

  // Reads what is new in every source and prints it; `tail` > 0 keeps only the last lines.
  absl::Status PrintNew(int64_t tail) {
    std::vector<std::vector<Entry>> lists(sources_.size());
    for (size_t i = 0; i < sources_.size(); ++i) {
      if (absl::Status status = ReadNewLines(sources_[i], &lists[i]); !status.ok()) return status;
    }
    std::vector<Entry> merged = Merge(std::move(lists));
    if (options_.since.has_value()) {
      merged.erase(std::remove_if(merged.begin(), merged.end(),
                                  [&](const Entry& e) { return e.time < *options_.since; }),
                   merged.end());
    }
    size_t first = 0;
    if (tail > 0 && merged.size() > static_cast<size_t>(tail)) {
      first = merged.size() - static_cast<size_t>(tail);
    }
    for (size_t i = first; i < merged.size(); ++i) {
      if (options_.components.size() > 1) {
        out_ << absl::StrFormat("%-*s | ", static_cast<int>(width_),
                                options_.components[merged[i].component].name);
      }
      out_ << merged[i].text << "\n";
    }
    out_.flush();
    return absl::OkStatus();
  }

 private:
  const LogsOptions& options_;
  std::ostream& out_;
  size_t width_ = 0;
  std::vector<Source> sources_;
  std::map<std::string, size_t> known_;
};

}  // namespace

const std::vector<LogComponent>& LogComponents() {
  static const std::vector<LogComponent> kComponents = {
      {"intermediate", "ferry-intermediate"},
      {"relay", "ferry-relay"},
      {"connector", "ferry-connector"},
      {"agent", "ferry-agent"},
  };
  return kComponents;
}

absl::Status ShowLogs(const LogsOptions& options, std::ostream& out) {
  LogPrinter printer(options, out);
  if (absl::Status status = printer.Discover(); !status.ok()) return status;
  if (printer.empty() && !options.follow) {
    std::vector<std::string> programs;
    for (const LogComponent& component : options.components) programs.push_back(component.program);
    return absl::NotFoundError(absl::StrCat("no log files of ", absl::StrJoin(programs, ", "),
                                            " in ", options.dir,
                                            " (is the fabric started with --log_dir there?)"));
  }
  if (absl::Status status = printer.PrintNew(options.lines); !status.ok()) return status;
  if (!options.follow) return absl::OkStatus();
  const absl::Time deadline = absl::Now() + options.follow_for;
  while (true) {
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return absl::OkStatus();
    absl::SleepFor(std::min(left, options.poll_interval));
    if (absl::Status status = printer.Discover(); !status.ok()) return status;
    if (absl::Status status = printer.PrintNew(0); !status.ok()) return status;
  }
}

int RunLogsCommand(const std::vector<std::string>& args_in, std::ostream& out, std::ostream& err,
                   absl::Time now, absl::TimeZone tz) {
  std::vector<std::string> args;
  bool positional_only = false;
  for (const std::string& arg : args_in) {
    positional_only = positional_only || arg == "--";
    args.push_back(!positional_only && arg == "-f" ? "--follow" : arg);
  }
  std::vector<std::string> names;
  for (const LogComponent& component : LogComponents()) names.push_back(component.name);
  const std::vector<FlagSpec> specs = {
      {"follow", Kind::kBool, "", "keep printing new lines (also -f); see --follow_for"},
      {"since", Kind::kString, "WHEN",
       "only lines at or after WHEN: a duration back from now (10m, 1h30m) or an RFC 3339 time"},
      {"dir", Kind::kString, "DIR",
       absl::StrCat("the log directory (default ", kDefaultLogDir, ")")},
      {"lines", Kind::kString, "N", "only the last N lines (default: all); -f then follows"},
      {"follow_for", Kind::kString, "DURATION", "stop following after DURATION (default: never)"},
  };
  ParsedArgs parsed;
  if (std::optional<int> code = ParseCommandArgs(
          kProgram, args, specs,
          absl::StrCat(
              "Usage: ferryctl logs [component] [flags]\n\ncomponent: ", absl::StrJoin(names, ", "),
              " or all (default: all, merged by time, each line prefixed by its "
              "component).\nExit codes: 0 printed, 1 no log directory or files, 2 "
              "usage error.\n"),
          &parsed, out, err)) {
    return *code;
  }
  LogsOptions options;
  options.tz = tz;
  options.now = now;
  if (parsed.positional().size() > 1) {
    err << kProgram << ": at most one component, got " << parsed.positional().size() << "\n";
    return kExitUsage;
  }
  std::string wanted = parsed.positional().empty() ? "all" : parsed.positional().front();
  for (const LogComponent& component : LogComponents()) {
    if (wanted == "all" || wanted == component.name || wanted == component.program) {
      options.components.push_back(component);
    }
  }
  if (options.components.empty()) {
    err << kProgram << ": unknown component '" << wanted
        << "'; known: " << absl::StrJoin(names, ", ") << ", all\n";
    return kExitUsage;
  }
  options.dir = parsed.GetOr("dir", kDefaultLogDir);
  options.follow = parsed.GetBool("follow");
  if (std::optional<std::string> since = parsed.Get("since")) {
    absl::Duration back;
    absl::Time at;
    std::string error;
    if (absl::ParseDuration(*since, &back) && back >= absl::ZeroDuration()) {
      options.since = now - back;
    } else if (absl::ParseTime(absl::RFC3339_full, *since, &at, &error)) {
      options.since = at;
    } else {
      err << kProgram << ": --since wants a duration (10m, 2h) or an RFC 3339 time "
          << "(2026-11-22T05:57:00Z), got '" << *since << "'\n";
      return kExitUsage;
    }
  }
  absl::StatusOr<std::optional<int64_t>> lines = parsed.GetInt("lines");
  if (!lines.ok() || (lines->has_value() && **lines < 0)) {
    err << kProgram << ": --lines wants a number of lines >= 0\n";
    return kExitUsage;
  }
  options.lines = lines->value_or(0);
  if (std::optional<std::string> follow_for = parsed.Get("follow_for")) {
    if (!absl::ParseDuration(*follow_for, &options.follow_for) ||
        options.follow_for < absl::ZeroDuration()) {
      err << kProgram << ": --follow_for wants a duration (30s, 5m), got '" << *follow_for << "'\n";
      return kExitUsage;
    }
  }
  if (absl::Status status = ShowLogs(options, out); !status.ok()) {
    err << kProgram << ": " << status.message() << "\n";
    return kExitFailure;
  }
  return kExitOk;
}

int RunLogsCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  return RunLogsCommand(args, out, err, absl::Now(), absl::LocalTimeZone());
}

}  // namespace ferry::cli
