// A server interceptor that counts every finished RPC by method and status
// code and observes its duration (ferry_rpcs_total,
// ferry_rpc_duration_seconds), so no handler has to remember to.
#pragma once

#include <memory>

#include "controlplane/intermediate_metrics.h"
#include "grpcpp/support/server_interceptor.h"

namespace ferry {

// `metrics` must outlive the server the factory is installed in.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MakeRpcMetricsInterceptorFactory(IntermediateMetrics* metrics);

// "OK", "PERMISSION_DENIED", ... for a gRPC status code.
const char* StatusCodeName(grpc::StatusCode code);

}  // namespace ferry
