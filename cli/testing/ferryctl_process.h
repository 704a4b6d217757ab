// Runs a built ferryctl binary as a child process, as an operator would, for tests that check
// what the real binary prints and returns. Test-only.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace ferry::cli::testing {

struct FerryctlRun {
  int exit_code = -1;  // -1 when the child did not exit normally (crash, signal).
  std::string out;     // Everything it wrote to stdout.
  std::string err;     // Everything it wrote to stderr.
};

// The path of //cli:ferryctl in a test's runfiles (the test must list it in `data`), from
// TEST_SRCDIR and TEST_WORKSPACE; empty when they are not set.
std::string FerryctlBinaryPath();

// Environment changes for the child only.
struct FerryctlEnv {
  std::vector<std::string> unset;                        // removed first
  std::vector<std::pair<std::string, std::string>> set;  // then set
};

// Runs `binary args...` with `workdir` as its working directory, stdin from /dev/null and `env`
// applied, and waits for it. stdout and stderr go through the files workdir/.stdout and
// workdir/.stderr (overwritten). Blocks; not safe to call from two threads with the same
// workdir.
FerryctlRun RunFerryctl(const std::string& binary, const std::string& workdir,
                        const std::vector<std::string>& args, const FerryctlEnv& env = {});

}  // namespace ferry::cli::testing
