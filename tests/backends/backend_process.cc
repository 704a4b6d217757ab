#include "tests/backends/backend_process.h"

#include <signal.h>

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace ferry::backends {

namespace {

struct ModeSlot {
  const char* key;
  bool wanted;
  std::string* address;
};

}  // namespace

absl::StatusOr<std::unique_ptr<BackendProcess>> BackendProcess::Start(
    const BackendOptions& options, absl::Duration ready_timeout) {
  std::unique_ptr<BackendProcess> backend(new BackendProcess());
  backend->options_ = options;
  backend->name_ = options.name;
  if (absl::Status s = backend->Launch({}, ready_timeout); !s.ok()) return s;
  return backend;
}

absl::Status BackendProcess::Launch(std::vector<std::string> flags, absl::Duration ready_timeout) {
  absl::StatusOr<std::string> binary = harness::RunfilesPath("tests/backends/backend_server");
  if (!binary.ok()) return binary.status();
  const ModeSlot modes[] = {
      {"udp_echo", options_.udp_echo, &udp_echo_},
      {"tcp_echo", options_.tcp_echo, &tcp_echo_},
      {"http", options_.http, &http_},
      {"tcp_sha256", options_.tcp_sha256, &tcp_sha256_},
      {"tcp_source", options_.tcp_source, &tcp_source_},
      {"grpc_health", options_.grpc_health, &grpc_health_},
  };
  flags.push_back("--name=" + options_.name);
  if (!options_.echo_prefix.empty()) flags.push_back("--echo_prefix=" + options_.echo_prefix);
  bool any_mode = false;
  for (const ModeSlot& mode : modes) {
    if (!mode.wanted) continue;
    // A restart listens where the first run did.
    auto configured = options_.listen.find(mode.key);
    const std::string listen = !mode.address->empty()                ? *mode.address
                               : configured != options_.listen.end() ? configured->second
                                                                     : "127.0.0.1:0";
    flags.push_back(absl::StrCat("--", mode.key, "=", listen));
    any_mode = true;
  }
  if (!any_mode) return absl::InvalidArgumentError("BackendOptions asks for no mode");
  process_ = std::make_unique<harness::FerryProcess>(
      absl::StrCat("backend-", options_.name, launches_ == 0 ? "" : absl::StrCat("-", launches_)),
      *binary, std::move(flags));
  ++launches_;
  if (absl::Status s = process_->Start(); !s.ok()) return s;
  absl::StatusOr<std::map<std::string, std::string>> ready = process_->WaitReady(ready_timeout);
  if (!ready.ok()) return ready.status();
  for (const ModeSlot& mode : modes) {
    if (!mode.wanted) continue;
    auto it = ready->find(mode.key);
    if (it == ready->end() || it->second.empty()) {
      return absl::InternalError(
          absl::StrCat("the backend's ready file lacks ", mode.key, ":\n", process_->LogTail()));
    }
    *mode.address = it->second;
  }
  return absl::OkStatus();
}

absl::Status BackendProcess::Kill() {
  if (process_ == nullptr || !process_->running()) {
    return absl::FailedPreconditionError("the backend is not running");
  }
  if (kill(process_->pid(), SIGKILL) != 0) return absl::InternalError("kill(SIGKILL) failed");
  return process_->Stop().status();  // Reaps it.
}

absl::Status BackendProcess::Restart(absl::Duration ready_timeout) {
  if (process_ != nullptr && process_->running()) {
    if (absl::Status s = process_->Stop().status(); !s.ok()) return s;
  }
  return Launch({}, ready_timeout);
}

}  // namespace ferry::backends
