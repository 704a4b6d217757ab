// The real ferry-intermediate (//controlplane:ferry-intermediate, which the
// test must list in its `data`) started for one test: gRPC, admin HTTP and DNS
// on port 0 of 127.0.0.1, mTLS with a server certificate from the test's DevPki,
// and a fresh --state_dir unless the test passes one (restart tests).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/harness/dev_pki_fixture.h"
#include "tests/harness/ferry_process.h"

namespace ferry::harness {

struct IntermediateOptions {
  // Directory of the durable state; empty: a fresh one under TEST_TMPDIR.
  std::string state_dir;
  // gRPC listen address. A restart test passes the old process's address
  // so that clients reconnecting with backoff find the new one.
  std::string listen = "127.0.0.1:0";
  std::string operator_tenant;
  // Passed as --connector_grace / --keepalive_interval when non-zero.
  absl::Duration connector_grace = absl::ZeroDuration();
  absl::Duration keepalive_interval = absl::ZeroDuration();
  // Plaintext on loopback (--insecure_dev_mode), no certificates.
  bool insecure_dev_mode = false;
  // Appended last (they win over the flags above).
  std::vector<std::string> extra_flags;
};

class IntermediateProcess {
 public:
  // Issues the server certificate from `pki` (unless insecure), starts the
  // binary and waits up to `ready_timeout` for its ready file. The errors of
  // FerryProcess::Start/WaitReady (the latter with the log tail), or
  // INTERNAL when the ready file lacks an address.
  static absl::StatusOr<std::unique_ptr<IntermediateProcess>> Start(
      DevPki& pki, const IntermediateOptions& options = {},
      absl::Duration ready_timeout = absl::Seconds(30));

  // The process with these flags, not started: for tests that expect it to
  // refuse to start. Flags are built as Start builds them.
  static absl::StatusOr<std::unique_ptr<FerryProcess>> Prepare(DevPki& pki,
                                                               const IntermediateOptions& options,
                                                               std::string* state_dir);

  // "127.0.0.1:<port>" of the gRPC server and of the admin HTTP server.
  const std::string& grpc_address() const { return grpc_address_; }
  const std::string& admin_address() const { return admin_address_; }
  // "127.0.0.1:<port>" of the DNS server (UDP and TCP); empty when the
  // binary does not report one.
  const std::string& dns_address() const { return dns_address_; }
  const std::string& state_dir() const { return state_dir_; }
  FerryProcess& process() { return *process_; }

  // SIGTERM and wait (see FerryProcess::Stop).
  absl::StatusOr<ExitStatus> Stop(absl::Duration timeout = absl::Seconds(10)) {
    return process_->Stop(timeout);
  }

 private:
  IntermediateProcess() = default;

  std::unique_ptr<FerryProcess> process_;
  std::string grpc_address_;
  std::string admin_address_;
  std::string dns_address_;
  std::string state_dir_;
};

}  // namespace ferry::harness
