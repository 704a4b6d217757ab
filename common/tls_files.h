// The three PEM files every Ferry process is configured with, and the gRPC
// client credentials built from them. Servers build theirs in
// controlplane/server_credentials.h.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/security/credentials.h"

namespace ferry {

struct TlsFiles {
  // CA that signs every party's certificate.
  std::string ca_cert;
  // This process's certificate (SPIFFE URI SAN) and private key.
  std::string cert;
  std::string key;
};

// Reads a whole file. NOT_FOUND / PERMISSION_DENIED with the path on failure.
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

// Mutual-TLS channel credentials: verifies the server against ca_cert and
// presents cert/key. INVALID_ARGUMENT naming the missing flag when a path is
// empty; the read error when a file cannot be read.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const TlsFiles& files);

}  // namespace ferry
