// One-to-one mapping between absl::Status and grpc::Status: the code and the
// message pass through unchanged, so a control-plane error reaches the client
// with the code that describes it (never collapsed into one generic code).
#pragma once

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace ferry {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace ferry
