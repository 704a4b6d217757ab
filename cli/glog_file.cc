#include "cli/glog_file.h"

#include <dirent.h>
#include <errno.h>

#include <algorithm>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"

namespace ferry::cli {
namespace {

constexpr absl::string_view kCreatedHeader = "Log file created at: ";
constexpr absl::string_view kHeaderLines[] = {"Running on machine: ", "Running duration",
                                              "Log line format: "};

// `n` decimal digits at `s[pos]`, or -1.
int Digits(absl::string_view s, size_t pos, size_t n) {
  if (pos + n > s.size()) return -1;
  int value = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(s[i]))) return -1;
    value = value * 10 + (s[i] - '0');
  }
  return value;
}

// "yyyy/mm/dd hh:mm:ss" or "yyyymmdd-hhmmss" style fields at the given offsets.
std::optional<absl::Time> CivilToTime(int year, int month, int day, int hour, int minute,
                                      int second, absl::TimeZone tz) {
  if (year < 0 || month < 1 || month > 12 || day < 1 || day > 31 || hour < 0 || hour > 23 ||
      minute < 0 || minute > 59 || second < 0 || second > 60) {
    return std::nullopt;
  }
  return absl::FromCivil(absl::CivilSecond(year, month, day, hour, minute, second), tz);
}

}  // namespace

std::optional<absl::Time> ParseGlogLineTime(absl::string_view line, int year, int header_month,
                                            absl::TimeZone tz) {
  if (line.empty() || absl::string_view("IWEF").find(line[0]) == absl::string_view::npos)
    return std::nullopt;
  // The date has 4 (mmdd) or 8 (yyyymmdd) digits, then a space.
  size_t date_len = 0;
  while (1 + date_len < line.size() &&
         absl::ascii_isdigit(static_cast<unsigned char>(line[1 + date_len]))) {
    ++date_len;
  }
  if (date_len != 4 && date_len != 8) return std::nullopt;
  size_t pos = 1;
  if (date_len == 8) {
    year = Digits(line, pos, 4);
    pos += 4;
  }
  int month = Digits(line, pos, 2), day = Digits(line, pos + 2, 2);
  pos += 4;
  // " hh:mm:ss.uuuuuu"
  if (line.size() < pos + 16 || line[pos] != ' ' || line[pos + 3] != ':' || line[pos + 6] != ':' ||
      line[pos + 9] != '.') {
    return std::nullopt;
  }
  int hour = Digits(line, pos + 1, 2), minute = Digits(line, pos + 4, 2),
      second = Digits(line, pos + 7, 2), micros = Digits(line, pos + 10, 6);
  if (micros < 0) return std::nullopt;
  if (date_len == 4 && header_month != 0 && month < header_month) ++year;  // New Year's Eve.
  std::optional<absl::Time> time = CivilToTime(year, month, day, hour, minute, second, tz);
  if (!time.has_value()) return std::nullopt;
  return *time + absl::Microseconds(micros);
}

GlogLineParser::GlogLineParser(absl::TimeZone tz, int fallback_year)
    : tz_(tz), year_(fallback_year) {}

std::optional<GlogLine> GlogLineParser::Parse(absl::string_view line) {
  if (absl::StartsWith(line, kCreatedHeader)) {
    // "Log file created at: 2026/11/22 05:57:53"
    absl::string_view rest = line.substr(kCreatedHeader.size());
    int year = Digits(rest, 0, 4), month = Digits(rest, 5, 2), day = Digits(rest, 8, 2);
    int hour = Digits(rest, 11, 2), minute = Digits(rest, 14, 2), second = Digits(rest, 17, 2);
    if (std::optional<absl::Time> created =
            CivilToTime(year, month, day, hour, minute, second, tz_)) {
      year_ = year;
      header_month_ = month;
      last_time_ = *created;
      return std::nullopt;
    }
  }
  if (in_header_) {
    for (absl::string_view header : kHeaderLines) {
      if (absl::StartsWith(line, header)) return std::nullopt;
    }
  }
  if (std::optional<absl::Time> time = ParseGlogLineTime(line, year_, header_month_, tz_)) {
    last_time_ = *time;
    in_header_ = false;
  }
  return GlogLine{last_time_, std::string(line)};
}

absl::StatusOr<std::vector<GlogFile>> ListGlogFiles(const std::string& dir,
                                                    absl::string_view program, absl::TimeZone tz) {
  DIR* handle = opendir(dir.c_str());
  if (handle == nullptr) {
    std::string message = absl::StrCat("cannot read log directory ", dir, ": ", strerror(errno));
    return errno == ENOENT ? absl::NotFoundError(message) : absl::InternalError(message);
  }
  std::vector<GlogFile> files;
  const std::string prefix = absl::StrCat(program, ".");
  constexpr absl::string_view kInfo = ".log.INFO.";
  while (struct dirent* entry = readdir(handle)) {
    absl::string_view name = entry->d_name;
    if (!absl::StartsWith(name, prefix)) continue;
    size_t info = name.rfind(kInfo);
    if (info == absl::string_view::npos || info < prefix.size()) continue;
    // <yyyymmdd-hhmmss>.<pid>
    absl::string_view tail = name.substr(info + kInfo.size());
    if (tail.size() < 17 || tail[8] != '-' || tail[15] != '.') continue;
    int64_t pid = 0;
    if (!absl::SimpleAtoi(tail.substr(16), &pid)) continue;
    std::optional<absl::Time> started =
        CivilToTime(Digits(tail, 0, 4), Digits(tail, 4, 2), Digits(tail, 6, 2), Digits(tail, 9, 2),
                    Digits(tail, 11, 2), Digits(tail, 13, 2), tz);
    if (!started.has_value()) continue;
    files.push_back({absl::StrCat(dir, "/", name), *started, pid});
  }
  closedir(handle);
  std::sort(files.begin(), files.end(), [](const GlogFile& a, const GlogFile& b) {
    return a.started != b.started ? a.started < b.started : a.pid < b.pid;
  });
  return files;
}

}  // namespace ferry::cli
