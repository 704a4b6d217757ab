// The test backend server (//tests/backends:backend_server, which the test
// must list in its `data`) started as a process for one test: the modes it is
// asked for, each on a kernel-picked port of 127.0.0.1, and their addresses
// read from its ready file. Stopped (SIGTERM) when destroyed.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/harness/ferry_process.h"

namespace ferry::backends {

// Which modes to serve (see backend_server.cc for what each does).
struct BackendOptions {
  // Labels the process in logs and names it in the HTTP greeting.
  std::string name = "backend";
  bool udp_echo = false;
  bool tcp_echo = false;
  bool http = false;
  bool tcp_sha256 = false;
  bool tcp_source = false;
  bool grpc_health = false;
  // Prepended to every UDP echo reply.
  std::string echo_prefix;
  // Listen address per mode key ("udp_echo", "http", ...); a mode not named
  // here listens on 127.0.0.1:0.
  std::map<std::string, std::string> listen;
};

class BackendProcess {
 public:
  // Starts the server and waits up to `ready_timeout` for its ready file.
  // INVALID_ARGUMENT when no mode is asked for; the errors of
  // FerryProcess::Start/WaitReady; INTERNAL when the ready file lacks an
  // address for a mode that was asked for.
  static absl::StatusOr<std::unique_ptr<BackendProcess>> Start(
      const BackendOptions& options, absl::Duration ready_timeout = absl::Seconds(10));

  // "127.0.0.1:<port>" of each mode; empty for a mode not asked for.
  const std::string& udp_echo() const { return udp_echo_; }
  const std::string& tcp_echo() const { return tcp_echo_; }
  const std::string& http() const { return http_; }
  const std::string& tcp_sha256() const { return tcp_sha256_; }
  const std::string& tcp_source() const { return tcp_source_; }
  const std::string& grpc_health() const { return grpc_health_; }

  // Stops the server (SIGKILL: a backend that dies) and waits for it.
  // FAILED_PRECONDITION when it is not running.
  absl::Status Kill();
  // Starts the server again on the same addresses (a recovered backend) and
  // waits for its ready file. The errors of Start.
  absl::Status Restart(absl::Duration ready_timeout = absl::Seconds(10));

  const std::string& name() const { return name_; }
  harness::FerryProcess& process() { return *process_; }

 private:
  BackendProcess() = default;
  // Starts the process with `flags` and reads the modes' addresses.
  absl::Status Launch(std::vector<std::string> flags, absl::Duration ready_timeout);

  BackendOptions options_;
  int launches_ = 0;
  std::unique_ptr<harness::FerryProcess> process_;
  std::string name_;
  std::string udp_echo_;
  std::string tcp_echo_;
  std::string http_;
  std::string tcp_sha256_;
  std::string tcp_source_;
  std::string grpc_health_;
};

}  // namespace ferry::backends
