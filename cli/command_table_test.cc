#include "cli/command_table.h"

#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ferry::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Handlers are plain function pointers, so the fake records into statics.
std::vector<std::string>* last_args = nullptr;

int RecordAndReturn7(const std::vector<std::string>& args, std::ostream& out, std::ostream&) {
  *last_args = args;
  out << "ran";
  return 7;
}

int Help(const std::vector<std::string>& args, std::ostream& out, std::ostream&) {
  out << "flags of frob, got " << args.at(0);
  return kExitOk;
}

constexpr Command kCommands[] = {
    {"frob", "frobnicates the fabric", &RecordAndReturn7},
    {"documented", "has help", &Help},
};

class RunCommandLineTest : public ::testing::Test {
 protected:
  void SetUp() override { last_args = &args_; }
  int Run(std::vector<std::string> argv) {
    out_.str("");
    err_.str("");
    return RunCommandLine("ferryctl", kCommands, argv, out_, err_);
  }
  std::vector<std::string> args_;
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(RunCommandLineTest, DispatchesTheRestOfTheArgumentsAndReturnsTheHandlersCode) {
  EXPECT_EQ(Run({"frob", "--x=1", "y"}), 7);
  EXPECT_THAT(args_, ElementsAre("--x=1", "y"));
  EXPECT_EQ(out_.str(), "ran");
  EXPECT_EQ(err_.str(), "");

  EXPECT_EQ(Run({"frob"}), 7);
  EXPECT_THAT(args_, IsEmpty());
}

TEST_F(RunCommandLineTest, NoCommandIsAUsageError) {
  EXPECT_EQ(Run({}), kExitUsage);
  EXPECT_EQ(out_.str(), "");
  EXPECT_THAT(err_.str(), HasSubstr("Usage: ferryctl <command>"));
}

TEST_F(RunCommandLineTest, UnknownCommandPrintsUsageAndExits2) {
  EXPECT_EQ(Run({"bogus", "frob"}), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("unknown command 'bogus'"));
  EXPECT_THAT(err_.str(), HasSubstr("frobnicates the fabric"));
  EXPECT_EQ(out_.str(), "");
  EXPECT_THAT(args_, IsEmpty()) << "no handler ran";
}

TEST_F(RunCommandLineTest, HelpListsEveryCommandOnStdout) {
  for (const char* help : {"help", "--help", "-h"}) {
    EXPECT_EQ(Run({help}), kExitOk) << help;
    EXPECT_EQ(out_.str(),
              "Usage: ferryctl <command> [args...]\n\n"
              "Commands:\n"
              "  frob        frobnicates the fabric\n"
              "  documented  has help\n"
              "  help        show this list, or `help <command>` for a command's flags\n\n"
              "Run 'ferryctl <command> --help' for a command's flags.\n");
    EXPECT_EQ(err_.str(), "");
  }
}

TEST_F(RunCommandLineTest, HelpForACommandRunsItsHelp) {
  EXPECT_EQ(Run({"help", "documented"}), kExitOk);
  EXPECT_EQ(out_.str(), "flags of frob, got --help");
  EXPECT_EQ(Run({"help", "nope"}), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("unknown command 'nope'"));
}

TEST(ParseCommandArgsTest, HelpParseErrorAndSuccess) {
  const std::vector<FlagSpec> specs = {{"dir", FlagSpec::Kind::kString, "DIR", "where"}};
  const std::string help = "Usage: x [flags]\n\nFlags:\n  --dir=DIR  where\n";
  std::ostringstream out, err;
  ParsedArgs parsed;

  EXPECT_EQ(ParseCommandArgs("x", {"--help"}, specs, "Usage: x [flags]\n", &parsed, out, err),
            kExitOk);
  EXPECT_EQ(out.str(), help);
  EXPECT_EQ(err.str(), "");

  out.str("");
  EXPECT_EQ(ParseCommandArgs("x", {"--nope"}, specs, "Usage: x [flags]\n", &parsed, out, err),
            kExitUsage);
  EXPECT_EQ(err.str(), "x: unknown flag --nope\n\n" + help);
  EXPECT_EQ(out.str(), "");

  err.str("");
  EXPECT_EQ(ParseCommandArgs("x", {"--dir=d", "p"}, specs, "", &parsed, out, err), std::nullopt);
  EXPECT_EQ(parsed.Get("dir"), "d");
  EXPECT_THAT(parsed.positional(), ElementsAre("p"));
  EXPECT_EQ(out.str() + err.str(), "");
}

}  // namespace
}  // namespace ferry::cli
