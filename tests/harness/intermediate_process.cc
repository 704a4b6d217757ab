#include "tests/harness/intermediate_process.h"

#include "absl/strings/str_cat.h"

namespace ferry::harness {

absl::StatusOr<std::unique_ptr<FerryProcess>> IntermediateProcess::Prepare(
    DevPki& pki, const IntermediateOptions& options, std::string* state_dir) {
  absl::StatusOr<std::string> binary = RunfilesPath("controlplane/ferry-intermediate");
  if (!binary.ok()) return binary.status();
  *state_dir = options.state_dir;
  if (state_dir->empty()) {
    absl::StatusOr<std::string> dir = MakeTempDir("state");
    if (!dir.ok()) return dir.status();
    *state_dir = *dir;
  }
  std::vector<std::string> flags = {
      "--listen=" + options.listen,
      "--admin_listen=127.0.0.1:0",
      // Port 0 for the DNS server too; --undefok keeps the harness working
      // with a binary built before the flag existed.
      "--dns_listen=127.0.0.1:0",
      "--undefok=dns_listen",
      "--state_dir=" + *state_dir,
      "--trust_domain=" + pki.trust_domain(),
  };
  if (options.insecure_dev_mode) {
    flags.push_back("--insecure_dev_mode");
  } else {
    absl::StatusOr<TlsFiles> server = pki.IssueIntermediate();
    if (!server.ok()) return server.status();
    flags.push_back("--ca_cert=" + server->ca_cert);
    flags.push_back("--cert=" + server->cert);
    flags.push_back("--key=" + server->key);
  }
  if (!options.operator_tenant.empty()) {
    flags.push_back("--operator_tenant=" + options.operator_tenant);
  }
  if (options.connector_grace != absl::ZeroDuration()) {
    flags.push_back("--connector_grace=" + absl::FormatDuration(options.connector_grace));
  }
  if (options.keepalive_interval != absl::ZeroDuration()) {
    flags.push_back("--keepalive_interval=" + absl::FormatDuration(options.keepalive_interval));
  }
  flags.insert(flags.end(), options.extra_flags.begin(), options.extra_flags.end());
  return std::make_unique<FerryProcess>("intermediate", *binary, std::move(flags));
}

absl::StatusOr<std::unique_ptr<IntermediateProcess>> IntermediateProcess::Start(
    DevPki& pki, const IntermediateOptions& options, absl::Duration ready_timeout) {
  std::unique_ptr<IntermediateProcess> result(new IntermediateProcess());
  absl::StatusOr<std::unique_ptr<FerryProcess>> process =
      Prepare(pki, options, &result->state_dir_);
  if (!process.ok()) return process.status();
  result->process_ = *std::move(process);
  if (absl::Status s = result->process_->Start(); !s.ok()) return s;
  absl::StatusOr<std::map<std::string, std::string>> ready =
      result->process_->WaitReady(ready_timeout);
  if (!ready.ok()) return ready.status();
  result->grpc_address_ = (*ready)["grpc_address"];
  result->admin_address_ = (*ready)["admin_address"];
  result->dns_address_ = (*ready)["dns_address"];
  if (result->grpc_address_.empty() || result->admin_address_.empty()) {
    return absl::InternalError(absl::StrCat("the ready file lacks grpc_address or admin_address:\n",
                                            result->process_->LogTail()));
  }
  return result;
}

}  // namespace ferry::harness
