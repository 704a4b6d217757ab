#include "cli/glog_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ferry::cli {
namespace {

const absl::TimeZone kUtc = absl::UTCTimeZone();

absl::Time At(int y, int mo, int d, int h, int mi, int s, int us = 0) {
  return absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, s), kUtc) + absl::Microseconds(us);
}

TEST(GlogFileTest, LineTimes) {
  struct Case {
    const char* line;
    int year;
    int header_month;
    std::optional<absl::Time> want;
  };
  const Case cases[] = {
      {"I1122 05:57:53.761831 32449 x.cc:1] hi", 2026, 11, At(2026, 11, 22, 5, 57, 53, 761831)},
      {"W20261122 05:57:53.000001 1 x.cc:1] hi", 1999, 0, At(2026, 11, 22, 5, 57, 53, 1)},
      {"E0101 00:00:01.000000 1 x.cc:1] after new year", 2026, 12, At(2027, 1, 1, 0, 0, 1)},
      {"F1231 23:59:59.999999 1 x.cc:1] same year", 2026, 12, At(2026, 12, 31, 23, 59, 59, 999999)},
      {"E0101 00:00:01.000000 1 x.cc:1] no header", 2026, 0, At(2026, 1, 1, 0, 0, 1)},
      {"X1122 05:57:53.761831 1 x.cc:1] bad level", 2026, 0, std::nullopt},
      {"I112 05:57:53.761831 1 x.cc:1] short date", 2026, 0, std::nullopt},
      {"I1122 05:57:53 1 x.cc:1] no micros", 2026, 0, std::nullopt},
      {"I1322 05:57:53.761831 1 x.cc:1] month 13", 2026, 0, std::nullopt},
      {"  continuation of a message", 2026, 0, std::nullopt},
      {"", 2026, 0, std::nullopt},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(ParseGlogLineTime(c.line, c.year, c.header_month, kUtc), c.want) << c.line;
  }
}

TEST(GlogFileTest, ParserDropsHeaderDatesContinuations) {
  GlogLineParser parser(kUtc, 1970);
  const std::vector<std::string> lines = {
      "Log file created at: 2026/12/31 23:59:58",
      "Running on machine: vm",
      "Running duration (h:mm:ss): 0:00:00",
      "Log line format: [IWEF]mmdd hh:mm:ss.uuuuuu threadid file:line] msg",
      "I1231 23:59:59.000000 7 a.cc:1] first",
      "  second line of the same message",
      "I0101 00:00:00.500000 7 a.cc:2] next year",
  };
  std::vector<GlogLine> parsed;
  for (const std::string& line : lines) {
    if (std::optional<GlogLine> out = parser.Parse(line)) parsed.push_back(*out);
  }
  ASSERT_EQ(parsed.size(), 3u);
  EXPECT_EQ(parsed[0].time, At(2026, 12, 31, 23, 59, 59));
  EXPECT_EQ(parsed[1].text, "  second line of the same message");
  EXPECT_EQ(parsed[1].time, parsed[0].time);
  EXPECT_EQ(parsed[2].time, At(2027, 1, 1, 0, 0, 0, 500000));
}

TEST(GlogFileTest, ListsInfoFilesOldestFirst) {
  std::string dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/list");
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
  for (const char* name : {
           "ferry-relay.vm.root.log.INFO.20261122-055753.32469",
           "ferry-relay.vm.root.log.INFO.20261122-023156.9799",
           "ferry-relay.vm.root.log.WARNING.20261122-044252.28754",          // a subset of INFO
           "ferry-relay.my.host.example.root.log.INFO.20261122-044127.100",  // dotted host
           "ferry-relay-canary.vm.root.log.INFO.20261122-044127.5",          // another program
           "ferry-relay.vm.root.log.INFO.garbage",
           "relay.out",
       }) {
    std::ofstream(dir + "/" + name) << "x\n";
  }
  ASSERT_EQ(symlink("ferry-relay.vm.root.log.INFO.20261122-055753.32469",
                    (dir + "/ferry-relay.INFO").c_str()),
            0);
  absl::StatusOr<std::vector<GlogFile>> files = ListGlogFiles(dir, "ferry-relay", kUtc);
  ASSERT_TRUE(files.ok()) << files.status();
  std::vector<std::string> names;
  for (const GlogFile& file : *files) names.push_back(file.path.substr(dir.size() + 1));
  EXPECT_EQ(names, (std::vector<std::string>{
                       "ferry-relay.vm.root.log.INFO.20261122-023156.9799",
                       "ferry-relay.my.host.example.root.log.INFO.20261122-044127.100",
                       "ferry-relay.vm.root.log.INFO.20261122-055753.32469",
                   }));
  EXPECT_EQ((*files)[0].started, At(2026, 11, 22, 2, 31, 56));
  EXPECT_EQ((*files)[0].pid, 9799);
  EXPECT_EQ(ListGlogFiles(dir + "/missing", "ferry-relay", kUtc).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ferry::cli
