// Reading the log files glog writes, for `ferryctl logs`.
//
// glog writes, per program and severity,
// `<program>.<host>.<user>.log.<LEVEL>.<yyyymmdd-hhmmss>.<pid>` (a new file per process start) and
// points the symlink `<program>.<LEVEL>` at the newest. The INFO file holds every line of every
// severity, so it is the one to read. A file starts with a header ("Log file created at: 2026/11/22
// 05:57:53", "Running on machine: ...", "Running duration ...", "Log line format: ..."), then lines
// prefixed
//   [IWEF]mmdd hh:mm:ss.uuuuuu threadid file:line] msg        (glog before 0.7)
//   [IWEF]yyyymmdd hh:mm:ss.uuuuuu threadid file:line] msg    (glog 0.7 and later)
// in the machine's local time zone (unless the program ran with --log_utc_time). A message with
// newlines continues on lines without the prefix.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace ferry::cli {

// One physical line of a log file and the time it belongs to: its own prefix's time, or for a
// continuation line the time of the line it continues.
struct GlogLine {
  absl::Time time;
  std::string text;  // Without the newline.
};

// Turns the lines of one glog file, fed in order, into GlogLines. Not thread-safe; one per file.
class GlogLineParser {
 public:
  // `tz`: the zone the file's times are written in. `fallback_year`: the year of "mmdd" lines
  // when the file has no "Log file created at:" header.
  GlogLineParser(absl::TimeZone tz, int fallback_year);

  // One line without its newline. nullopt for the file header's lines; never fails: a line that
  // is not a glog line is a continuation line.
  std::optional<GlogLine> Parse(absl::string_view line);

 private:
  absl::TimeZone tz_;
  int year_;
  int header_month_ = 0;  // 0 until the header is seen
  absl::Time last_time_ = absl::InfinitePast();
  bool in_header_ = true;  // no glog line seen yet: header lines are dropped
};

// The time in a glog line's prefix, or nullopt if `line` does not start with one. `year` and
// `header_month` date "mmdd" lines: a month before header_month means the file crossed into the
// next year (header_month 0: use `year` as is).
std::optional<absl::Time> ParseGlogLineTime(absl::string_view line, int year, int header_month,
                                            absl::TimeZone tz);

// One INFO log file of a program.
struct GlogFile {
  std::string path;
  absl::Time started;  // From the file name, in `tz`.
  int64_t pid = 0;
};

// The INFO files of `program` in `dir` (not the `<program>.INFO` symlink), oldest first (by the
// start time in their names, then pid). An empty list when there are none. NOT_FOUND when `dir`
// does not exist; the errno's code for other failures.
absl::StatusOr<std::vector<GlogFile>> ListGlogFiles(const std::string& dir,
                                                    absl::string_view program, absl::TimeZone tz);

}  // namespace ferry::cli
