#include "common/process.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/process_flags.h"
#include "glog/logging.h"

namespace ferry {
namespace {

sigset_t ShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  return set;
}

}  // namespace

std::vector<char*> InitProcess(int argc, char** argv, absl::string_view usage) {
  absl::FlagsUsageConfig config;
  // Show the project's own flags on --help, not only those of the main file.
  config.contains_help_flags = [](absl::string_view path) {
    return !absl::StrContains(path, "absl/");
  };
  config.version_string = [] { return absl::StrCat("Ferry ", FerryVersion(), "\n"); };
  absl::SetFlagsUsageConfig(config);
  absl::SetProgramUsageMessage(usage);
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);

  const std::string log_dir = LogDirFlag();
  if (log_dir.empty()) {
    fLB::FLAGS_logtostderr = true;
  } else {
    fLS::FLAGS_log_dir = log_dir;
  }
  google::InitGoogleLogging(argv[0]);

  const sigset_t set = ShutdownSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return args;
}

int WaitForShutdownSignal(const std::function<void()>& on_reload) {
  const sigset_t set = ShutdownSignals();
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (sig == SIGHUP) {
      LOG(INFO) << "SIGHUP received";
      if (on_reload) on_reload();
      continue;
    }
    LOG(INFO) << "Signal " << strsignal(sig) << " received; shutting down";
    return sig;
  }
}

absl::Status WriteReadyFile(const std::map<std::string, std::string>& entries) {
  const std::string path = ReadyFileFlag();
  if (path.empty()) return absl::OkStatus();
  std::string content;
  for (const auto& [key, value] : entries) absl::StrAppend(&content, key, "=", value, "\n");
  const std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) {
    return absl::InternalError(
        absl::StrCat("cannot write ready file ", tmp, ": ", std::strerror(errno)));
  }
  const bool written = std::fwrite(content.data(), 1, content.size(), f) == content.size();
  const bool closed = std::fclose(f) == 0;
  if (!written || !closed || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return absl::InternalError(absl::StrCat("cannot write ready file ", path));
  }
  return absl::OkStatus();
}

absl::string_view FerryVersion() { return "0.1.0"; }

}  // namespace ferry
