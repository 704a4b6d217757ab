#include "tests/harness/channels.h"

#include "absl/time/clock.h"
#include "grpc/grpc_security_constants.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "gtest/gtest.h"

namespace ferry::harness {
namespace {

grpc::ChannelArguments IsolatedArguments() {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  // gRPC's default reconnect backoff (1 s growing to 120 s) would let a
  // channel sleep through a restarted server for many seconds. (Not
  // GRPC_ARG_MIN_RECONNECT_BACKOFF_MS: gRPC also takes it as the connect
  // timeout, and a TLS handshake under a sanitizer can take longer.)
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  return args;
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::Channel>> MtlsChannel(const std::string& address,
                                                           const TlsFiles& files) {
  grpc::SslCredentialsOptions options;
  absl::StatusOr<std::string> ca = ReadFileToString(files.ca_cert);
  if (!ca.ok()) return ca.status();
  options.pem_root_certs = *std::move(ca);
  if (!files.cert.empty() || !files.key.empty()) {
    absl::StatusOr<std::string> cert = ReadFileToString(files.cert);
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadFileToString(files.key);
    if (!key.ok()) return key.status();
    options.pem_cert_chain = *std::move(cert);
    options.pem_private_key = *std::move(key);
  }
  grpc::ChannelArguments args = IsolatedArguments();
  args.SetSslTargetNameOverride("localhost");
  return grpc::CreateCustomChannel(address, grpc::SslCredentials(options), args);
}

std::shared_ptr<grpc::Channel> TestChannel(const std::string& address,
                                           const absl::StatusOr<TlsFiles>& files) {
  if (!files.ok()) {
    ADD_FAILURE() << "certificates: " << files.status();
    return nullptr;
  }
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = MtlsChannel(address, *files);
  if (!channel.ok()) {
    ADD_FAILURE() << "channel to " << address << ": " << channel.status();
    return nullptr;
  }
  return *channel;
}

std::shared_ptr<grpc::Channel> PlaintextChannel(const std::string& address) {
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(),
                                   IsolatedArguments());
}

std::unique_ptr<grpc::ClientContext> ContextWithDeadline(absl::Duration timeout) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return context;
}

}  // namespace ferry::harness
