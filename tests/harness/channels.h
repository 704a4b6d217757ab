// gRPC channels from a test to the Intermediate, as a given identity.
//
// Every channel uses its own subchannel pool, so two channels never share a
// TCP connection (and a TLS handshake): each one is a separate peer, as
// separate processes would be. Reconnect backoff is 100 ms growing to 1 s, so
// a channel finds a restarted server within about a second.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/tls_files.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"

namespace ferry::harness {

// An mTLS channel to `address` ("127.0.0.1:port"): verifies the server
// against files.ca_cert (the Intermediate's certificate carries IP SAN
// 127.0.0.1 and DNS SAN localhost; the target name is overridden to
// "localhost" so either address form works) and presents files.cert/key.
// An empty files.cert and files.key make a channel with no client
// certificate. Errors: the read error of a file.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MtlsChannel(const std::string& address,
                                                           const TlsFiles& files);

// MtlsChannel for certificates a DevPki just issued: the channel, or null
// with a gtest failure naming the error (of the issue or of the channel).
std::shared_ptr<grpc::Channel> TestChannel(const std::string& address,
                                           const absl::StatusOr<TlsFiles>& files);

// A plaintext channel (for an Intermediate in --insecure_dev_mode).
std::shared_ptr<grpc::Channel> PlaintextChannel(const std::string& address);

// A context whose deadline is now + `timeout` (every test RPC has one).
std::unique_ptr<grpc::ClientContext> ContextWithDeadline(
    absl::Duration timeout = absl::Seconds(10));

}  // namespace ferry::harness
