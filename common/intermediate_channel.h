// The gRPC channel every Ferry client (relay, connector, agent, ferryctl)
// opens to the Intermediate: mutual TLS with the process's own certificate,
// verifying the server against the fabric's CA.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/tls_files.h"
#include "grpcpp/channel.h"

namespace ferry {

// A channel to `address` ("host:port"). The server certificate must carry a
// DNS or IP SAN matching the host (the dev PKI gives the Intermediate
// "localhost", 127.0.0.1 and ::1). Errors come from reading the TLS files.
absl::StatusOr<std::shared_ptr<grpc::Channel>> DialIntermediate(const std::string& address,
                                                                const TlsFiles& files);

}  // namespace ferry
