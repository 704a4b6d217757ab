#include "cli/logs_command.h"

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ferry::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const absl::TimeZone kUtc = absl::UTCTimeZone();
const absl::Time kNow = absl::FromCivil(absl::CivilSecond(2026, 11, 22, 6, 0, 0), kUtc);

constexpr char kHeader[] =
    "Log file created at: 2026/11/22 05:57:53\n"
    "Running on machine: vm\n"
    "Running duration (h:mm:ss): 0:00:00\n"
    "Log line format: [IWEF]mmdd hh:mm:ss.uuuuuu threadid file:line] msg\n";

struct Result {
  int code = -1;
  std::string out;
  std::string err;
};

class LogsCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(std::getenv("TEST_TMPDIR"), "/",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_EQ(mkdir(dir_.c_str(), 0755), 0);
    // Two starts of the intermediate, one relay, one agent (glog 0.7's yyyymmdd lines).
    Write("ferry-intermediate.vm.root.log.INFO.20261122-050000.10",
          absl::StrCat(kHeader, "I1122 05:00:01.000000 10 a.cc:1] old run\n"));
    Write("ferry-intermediate.vm.root.log.INFO.20261122-055753.20",
          absl::StrCat(kHeader, "I1122 05:57:53.100000 20 a.cc:1] intermediate up\n",
                       "W1122 05:57:55.000000 20 a.cc:2] two-line warning\n", "  its second line\n",
                       "I1122 05:58:00.000000 20 a.cc:3] stopped\n"));
    Write("ferry-relay.vm.root.log.INFO.20261122-055753.21",
          absl::StrCat(kHeader, "I1122 05:57:54.000000 21 r.cc:1] relay up\n",
                       "E1122 05:57:59.000000 21 r.cc:2] relay error\n"));
    Write("ferry-agent.vm.root.log.INFO.20261122-055754.22",
          absl::StrCat(kHeader, "I20261122 05:57:55.000000 22 g.cc:1] agent up\n"));
    Write("ferry-agent.WARNING", "not a log file\n");
  }

  void Write(const std::string& name, const std::string& data, bool append = false) {
    std::ofstream(dir_ + "/" + name, append ? std::ios::app : std::ios::trunc) << data;
  }

  Result Run(std::vector<std::string> args) {
    args.push_back("--dir=" + dir_);
    std::ostringstream out, err;
    Result result;
    result.code = RunLogsCommand(args, out, err, kNow, kUtc);
    result.out = out.str();
    result.err = err.str();
    return result;
  }

  static std::vector<std::string> Lines(const std::string& out) {
    return absl::StrSplit(out, '\n', absl::SkipEmpty());
  }

  std::string dir_;
};

TEST_F(LogsCommandTest, AllComponentsMergedByTime) {
  Result result = Run({});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_THAT(Lines(result.out),
              ElementsAre("intermediate | I1122 05:00:01.000000 10 a.cc:1] old run",
                          "intermediate | I1122 05:57:53.100000 20 a.cc:1] intermediate up",
                          "relay        | I1122 05:57:54.000000 21 r.cc:1] relay up",
                          "intermediate | W1122 05:57:55.000000 20 a.cc:2] two-line warning",
                          "intermediate |   its second line",
                          "agent        | I20261122 05:57:55.000000 22 g.cc:1] agent up",
                          "relay        | E1122 05:57:59.000000 21 r.cc:2] relay error",
                          "intermediate | I1122 05:58:00.000000 20 a.cc:3] stopped"));
}

TEST_F(LogsCommandTest, Filters) {
  struct Case {
    std::vector<std::string> args;
    std::vector<std::string> want;
  };
  const Case cases[] = {
      {{"relay"},
       {"I1122 05:57:54.000000 21 r.cc:1] relay up",
        "E1122 05:57:59.000000 21 r.cc:2] relay error"}},
      {{"ferry-relay", "--lines=1"}, {"E1122 05:57:59.000000 21 r.cc:2] relay error"}},
      // 05:57:55 is 2m05s before kNow: --since keeps lines at or after it.
      {{"intermediate", "--since=125s"},
       {"W1122 05:57:55.000000 20 a.cc:2] two-line warning", "  its second line",
        "I1122 05:58:00.000000 20 a.cc:3] stopped"}},
      {{"intermediate", "--since=2026-11-22T05:57:56Z"},
       {"I1122 05:58:00.000000 20 a.cc:3] stopped"}},
      {{"all", "--since=2026-11-22T05:57:58Z", "--lines=5"},
       {"relay        | E1122 05:57:59.000000 21 r.cc:2] relay error",
        "intermediate | I1122 05:58:00.000000 20 a.cc:3] stopped"}},
      {{"agent", "--since=1h"}, {"I20261122 05:57:55.000000 22 g.cc:1] agent up"}},
      {{"connector"}, {}},
  };
  for (const Case& c : cases) {
    Result result = Run(c.args);
    if (c.want.empty()) {
      EXPECT_EQ(result.code, 1) << c.args[0];
      EXPECT_THAT(result.err, HasSubstr("no log files of ferry-connector"));
      continue;
    }
    EXPECT_EQ(result.code, 0) << c.args[0] << ": " << result.err;
    EXPECT_EQ(Lines(result.out), c.want) << c.args[0] << " " << c.args.back();
  }
}

TEST_F(LogsCommandTest, UsageErrors) {
  struct Case {
    std::vector<std::string> args;
    const char* err;
  };
  const Case cases[] = {
      {{"dataplane"},
       "unknown component 'dataplane'; known: intermediate, relay, connector, agent, all"},
      {{"relay", "agent"}, "at most one component"},
      {{"--since=yesterday"}, "--since wants a duration"},
      {{"--lines=-3"}, "--lines wants"},
      {{"--lines=many"}, "--lines wants"},
      {{"-f", "--follow_for=soon"}, "--follow_for wants a duration"},
      {{"-x"}, "unknown flag -x"},
  };
  for (const Case& c : cases) {
    Result result = Run(c.args);
    EXPECT_EQ(result.code, 2) << c.args[0];
    EXPECT_THAT(result.err, HasSubstr(c.err)) << c.args[0];
  }
  std::ostringstream out, err;
  EXPECT_EQ(RunLogsCommand({"--dir=/nonexistent/logs"}, out, err, kNow, kUtc), 1);
  EXPECT_THAT(err.str(), HasSubstr("/nonexistent/logs"));
  std::ostringstream help_out, help_err;
  EXPECT_EQ(RunLogsCommand({"--help"}, help_out, help_err, kNow, kUtc), 0);
  EXPECT_THAT(help_out.str(), HasSubstr("--follow_for=DURATION"));
}

// -f prints what is appended, and what a restarted component writes to its new file, then stops
// when --follow_for is over. A half-written line waits for its newline.
TEST_F(LogsCommandTest, FollowIsBoundedAndPicksUpNewLinesAndFiles) {
  LogsOptions options;
  options.dir = dir_;
  options.components = {LogComponents()[1]};  // relay
  options.follow = true;
  options.follow_for = absl::Seconds(3);
  options.poll_interval = absl::Milliseconds(20);
  options.tz = kUtc;
  options.now = kNow;
  std::ostringstream out;
  absl::Status status;
  absl::Time started = absl::Now();
  std::thread follower([&] { status = ShowLogs(options, out); });
  absl::SleepFor(absl::Milliseconds(300));
  Write("ferry-relay.vm.root.log.INFO.20261122-055753.21",
        "I1122 05:58:01.000000 21 r.cc:3] appended\nI1122 05:58:02.000000 21 r.cc:4] half", true);
  absl::SleepFor(absl::Milliseconds(300));
  Write("ferry-relay.vm.root.log.INFO.20261122-055753.21", " done\n", true);
  Write("ferry-relay.vm.root.log.INFO.20261122-060000.30",
        absl::StrCat(kHeader, "I1122 06:00:00.000000 30 r.cc:1] relay restarted\n"));
  follower.join();
  EXPECT_GE(absl::Now() - started, absl::Seconds(3)) << "followed for --follow_for";
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_THAT(Lines(out.str()), ElementsAre("I1122 05:57:54.000000 21 r.cc:1] relay up",
                                            "E1122 05:57:59.000000 21 r.cc:2] relay error",
                                            "I1122 05:58:01.000000 21 r.cc:3] appended",
                                            "I1122 05:58:02.000000 21 r.cc:4] half done",
                                            "I1122 06:00:00.000000 30 r.cc:1] relay restarted"));
}

}  // namespace
}  // namespace ferry::cli
