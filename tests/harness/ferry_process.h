// A real Ferry binary started by an integration test (Envoy's
// BaseIntegrationTest style): the binary comes from the test's Bazel runfiles,
// runs with its own --log_dir and --ready_file in a fresh directory under
// TEST_TMPDIR, and is stopped with SIGTERM (SIGKILL after a timeout) when the
// test is done. When the test has failed, the tail of the process's logs is
// printed so the failure can be read without digging through the sandbox.
//
// Only ever signals the PID it started itself.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace ferry::harness {

// Absolute path of a file in the test's runfiles, e.g.
// RunfilesPath("controlplane/ferry-intermediate"). Reads TEST_SRCDIR and
// TEST_WORKSPACE (set by `bazel test`); FAILED_PRECONDITION when they are
// missing, NOT_FOUND when the file is not there (add it to the test's `data`).
absl::StatusOr<std::string> RunfilesPath(absl::string_view workspace_relative);

// A fresh, empty directory under TEST_TMPDIR (or /tmp outside Bazel) whose
// name starts with `prefix`. FAILED_PRECONDITION/INTERNAL when it cannot be made.
absl::StatusOr<std::string> MakeTempDir(absl::string_view prefix);

// How a process ended.
struct ExitStatus {
  bool exited = false;  // true: exit(code); false: killed by `signal`
  int code = 0;
  int signal = 0;

  bool ok() const { return exited && code == 0; }
  // "exit 0", "exit 2", "signal 9".
  std::string ToString() const;
};

class FerryProcess {
 public:
  // `name` labels log output ("intermediate"); `binary` is an absolute path
  // (see RunfilesPath); `flags` are passed as they are, before the
  // --log_dir=<dir>/logs and --ready_file=<dir>/ready flags this class adds.
  FerryProcess(std::string name, std::string binary, std::vector<std::string> flags);
  // Stops the process if it still runs (SIGTERM, then SIGKILL) and prints
  // the tail of its logs when the current test has failed.
  ~FerryProcess();

  FerryProcess(const FerryProcess&) = delete;
  FerryProcess& operator=(const FerryProcess&) = delete;

  // Creates the work directory and forks/execs the binary with stdout and
  // stderr redirected to files in it. The child is in its own process group
  // and gets SIGKILL if the starting thread dies (PR_SET_PDEATHSIG), so call
  // Start from a thread that lives as long as the process should (the test's
  // main thread). FAILED_PRECONDITION when already started.
  absl::Status Start();

  // Polls the ready file until it exists, then parses its key=value lines.
  // DEADLINE_EXCEEDED on timeout; UNAVAILABLE (with the exit status and the
  // log tail) when the process exited before becoming ready.
  absl::StatusOr<std::map<std::string, std::string>> WaitReady(absl::Duration timeout);

  // Waits for the process to exit on its own (no signal sent).
  // DEADLINE_EXCEEDED when it still runs after `timeout`.
  absl::StatusOr<ExitStatus> WaitExit(absl::Duration timeout);

  // Sends SIGTERM and waits up to `timeout` for the exit, then sends SIGKILL
  // and waits for that. Returns how the process ended; a second call returns
  // the same status. FAILED_PRECONDITION when never started.
  absl::StatusOr<ExitStatus> Stop(absl::Duration timeout = absl::Seconds(10));

  // True while the process has not been reaped.
  bool running();

  pid_t pid() const { return pid_; }
  const std::string& name() const { return name_; }
  // The process's own directory (logs/, ready, stdout, stderr).
  const std::string& work_dir() const { return work_dir_; }

  // Everything the process logged so far: its glog files, then stdout and
  // stderr, each under a header line.
  std::string Logs() const;
  // The last `max_bytes` of Logs().
  std::string LogTail(size_t max_bytes = 8192) const;

 private:
  // waitpid(WNOHANG); records the exit status when the child is gone.
  bool ReapIfExited();

  const std::string name_;
  const std::string binary_;
  const std::vector<std::string> flags_;
  std::string work_dir_;
  pid_t pid_ = -1;
  bool reaped_ = false;
  ExitStatus exit_status_;
};

}  // namespace ferry::harness
