#include "tests/harness/ferry_process.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"

namespace ferry::harness {
namespace {

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

ExitStatus FromWaitStatus(int status) {
  ExitStatus result;
  if (WIFEXITED(status)) {
    result.exited = true;
    result.code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
  }
  return result;
}

}  // namespace

absl::StatusOr<std::string> RunfilesPath(absl::string_view workspace_relative) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  if (srcdir == nullptr || workspace == nullptr) {
    return absl::FailedPreconditionError(
        "TEST_SRCDIR/TEST_WORKSPACE are not set; run the test with `bazel test`");
  }
  std::string path = absl::StrCat(srcdir, "/", workspace, "/", workspace_relative);
  if (access(path.c_str(), F_OK) != 0) {
    return absl::NotFoundError(
        absl::StrCat(path, " is not in the runfiles; add its target to the test's data"));
  }
  return path;
}

absl::StatusOr<std::string> MakeTempDir(absl::string_view prefix) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string pattern = absl::StrCat(base != nullptr ? base : "/tmp", "/", prefix, "-XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp ", pattern, ": ", std::strerror(errno)));
  }
  return pattern;
}

std::string ExitStatus::ToString() const {
  return exited ? absl::StrCat("exit ", code) : absl::StrCat("signal ", signal);
}

FerryProcess::FerryProcess(std::string name, std::string binary, std::vector<std::string> flags)
    : name_(std::move(name)), binary_(std::move(binary)), flags_(std::move(flags)) {}

FerryProcess::~FerryProcess() {
  if (pid_ > 0 && !reaped_) {
    absl::StatusOr<ExitStatus> status = Stop();
    if (status.ok() && !status->ok()) {
      std::cerr << "[" << name_ << "] pid " << pid_ << " ended with " << status->ToString()
                << " on SIGTERM\n";
    }
  }
  if (pid_ > 0 && ::testing::Test::HasFailure()) {
    std::cerr << "===== tail of " << name_ << " (pid " << pid_ << ", " << work_dir_ << ") =====\n"
              << LogTail() << "\n===== end of " << name_ << " =====\n";
  }
}

absl::Status FerryProcess::Start() {
  if (pid_ > 0) return absl::FailedPreconditionError(absl::StrCat(name_, " was already started"));
  absl::StatusOr<std::string> dir = MakeTempDir(name_);
  if (!dir.ok()) return dir.status();
  work_dir_ = *dir;
  const std::string log_dir = work_dir_ + "/logs";
  if (mkdir(log_dir.c_str(), 0755) != 0) {
    return absl::InternalError(absl::StrCat("mkdir ", log_dir, ": ", std::strerror(errno)));
  }

  // Everything the child needs is prepared before fork: after it, only
  // async-signal-safe calls are allowed (the test process has threads).
  std::vector<std::string> args = {binary_};
  args.insert(args.end(), flags_.begin(), flags_.end());
  args.push_back("--log_dir=" + log_dir);
  args.push_back("--ready_file=" + work_dir_ + "/ready");
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const int out_fd =
      open((work_dir_ + "/stdout").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const int err_fd =
      open((work_dir_ + "/stderr").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out_fd < 0 || err_fd < 0) {
    if (out_fd >= 0) close(out_fd);
    if (err_fd >= 0) close(err_fd);
    return absl::InternalError(absl::StrCat("cannot create the output files in ", work_dir_));
  }
  const long max_fd = std::min<long>(sysconf(_SC_OPEN_MAX), 65536);
  const pid_t parent = getpid();

  const pid_t pid = fork();
  if (pid < 0) {
    close(out_fd);
    close(err_fd);
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  }
  if (pid == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // The parent died before prctl.
    dup2(out_fd, STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
    const int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
    for (long fd = 3; fd < max_fd; ++fd) close(static_cast<int>(fd));
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD}) signal(sig, SIG_DFL);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out_fd);
  close(err_fd);
  pid_ = pid;
  return absl::OkStatus();
}

bool FerryProcess::ReapIfExited() {
  if (reaped_) return true;
  if (pid_ <= 0) return false;
  int status = 0;
  const pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_status_ = FromWaitStatus(status);
    reaped_ = true;
  } else if (r < 0 && errno == ECHILD) {
    reaped_ = true;  // Not ours to wait for any more; status unknown.
  }
  return reaped_;
}

bool FerryProcess::running() { return pid_ > 0 && !ReapIfExited(); }

absl::StatusOr<std::map<std::string, std::string>> FerryProcess::WaitReady(absl::Duration timeout) {
  if (pid_ <= 0) return absl::FailedPreconditionError(absl::StrCat(name_, " was not started"));
  const std::string path = work_dir_ + "/ready";
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    // The file is written atomically (temp + rename): existing means complete.
    if (access(path.c_str(), F_OK) == 0) {
      std::map<std::string, std::string> entries;
      for (absl::string_view line : absl::StrSplit(ReadWholeFile(path), '\n')) {
        line = absl::StripAsciiWhitespace(line);
        const size_t eq = line.find('=');
        if (line.empty() || eq == absl::string_view::npos) continue;
        entries[std::string(line.substr(0, eq))] = std::string(line.substr(eq + 1));
      }
      return entries;
    }
    if (ReapIfExited()) {
      return absl::UnavailableError(absl::StrCat(name_, " exited (", exit_status_.ToString(),
                                                 ") before it was ready:\n", LogTail()));
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          name_, " was not ready after ", absl::FormatDuration(timeout), ":\n", LogTail()));
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
}

absl::StatusOr<ExitStatus> FerryProcess::WaitExit(absl::Duration timeout) {
  if (pid_ <= 0) return absl::FailedPreconditionError(absl::StrCat(name_, " was not started"));
  const absl::Time deadline = absl::Now() + timeout;
  while (!ReapIfExited()) {
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat(name_, " still runs after ", absl::FormatDuration(timeout)));
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return exit_status_;
}

absl::StatusOr<ExitStatus> FerryProcess::Stop(absl::Duration timeout) {
  if (pid_ <= 0) return absl::FailedPreconditionError(absl::StrCat(name_, " was not started"));
  if (ReapIfExited()) return exit_status_;
  kill(pid_, SIGTERM);
  if (absl::StatusOr<ExitStatus> status = WaitExit(timeout); status.ok()) return status;
  std::cerr << "[" << name_ << "] pid " << pid_ << " ignored SIGTERM for "
            << absl::FormatDuration(timeout) << "; sending SIGKILL\n";
  kill(pid_, SIGKILL);
  int status = 0;
  if (waitpid(pid_, &status, 0) == pid_) exit_status_ = FromWaitStatus(status);
  reaped_ = true;
  return exit_status_;
}

std::string FerryProcess::Logs() const {
  if (work_dir_.empty()) return "";
  std::vector<std::string> files;
  const std::string log_dir = work_dir_ + "/logs";
  if (DIR* dir = opendir(log_dir.c_str())) {
    while (dirent* entry = readdir(dir)) {
      const std::string path = log_dir + "/" + entry->d_name;
      struct stat st;
      // glog adds <program>.INFO-style symlinks to its files, and its INFO file
      // already holds every WARNING and ERROR line: read each line once.
      const absl::string_view base = entry->d_name;
      if (absl::StrContains(base, ".log.WARNING.") || absl::StrContains(base, ".log.ERROR.") ||
          absl::StrContains(base, ".log.FATAL.")) {
        continue;
      }
      if (lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) files.push_back(path);
    }
    closedir(dir);
  }
  std::sort(files.begin(), files.end());
  files.push_back(work_dir_ + "/stdout");
  files.push_back(work_dir_ + "/stderr");
  std::string out;
  for (const std::string& path : files) {
    const std::string content = ReadWholeFile(path);
    if (content.empty()) continue;
    absl::StrAppend(&out, "--- ", path, " ---\n", content);
    if (content.back() != '\n') out += '\n';
  }
  return out;
}

std::string FerryProcess::LogTail(size_t max_bytes) const {
  std::string logs = Logs();
  if (logs.size() <= max_bytes) return logs;
  return absl::StrCat("...", logs.substr(logs.size() - max_bytes));
}

}  // namespace ferry::harness
