#include "tests/backends/backend_process.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace ferry::backends {

absl::StatusOr<std::unique_ptr<BackendProcess>> BackendProcess::Start(
    const BackendOptions& options, absl::Duration ready_timeout) {
  absl::StatusOr<std::string> binary = harness::RunfilesPath("tests/backends/backend_server");
  if (!binary.ok()) return binary.status();
  std::unique_ptr<BackendProcess> backend(new BackendProcess());
  backend->name_ = options.name;
  struct ModeSlot {
    const char* key;
    bool wanted;
    std::string* address;
  };
  const ModeSlot modes[] = {
      {"udp_echo", options.udp_echo, &backend->udp_echo_},
      {"tcp_echo", options.tcp_echo, &backend->tcp_echo_},
      {"http", options.http, &backend->http_},
      {"tcp_sha256", options.tcp_sha256, &backend->tcp_sha256_},
      {"tcp_source", options.tcp_source, &backend->tcp_source_},
  };
  std::vector<std::string> flags = {"--name=" + options.name};
  if (!options.echo_prefix.empty()) flags.push_back("--echo_prefix=" + options.echo_prefix);
  bool any_mode = false;
  for (const ModeSlot& mode : modes) {
    if (!mode.wanted) continue;
    flags.push_back(absl::StrCat("--", mode.key, "=127.0.0.1:0"));
    any_mode = true;
  }
  if (!any_mode) return absl::InvalidArgumentError("BackendOptions asks for no mode");
  backend->process_ = std::make_unique<harness::FerryProcess>(
      absl::StrCat("backend-", options.name), *binary, std::move(flags));
  if (absl::Status s = backend->process_->Start(); !s.ok()) return s;
  absl::StatusOr<std::map<std::string, std::string>> ready =
      backend->process_->WaitReady(ready_timeout);
  if (!ready.ok()) return ready.status();
  for (const ModeSlot& mode : modes) {
    if (!mode.wanted) continue;
    auto it = ready->find(mode.key);
    if (it == ready->end() || it->second.empty()) {
      return absl::InternalError(absl::StrCat("the backend's ready file lacks ", mode.key, ":\n",
                                              backend->process_->LogTail()));
    }
    *mode.address = it->second;
  }
  return backend;
}

}  // namespace ferry::backends
