// ferry.v1.Admin: the operator's API (role admin). Each call authorizes the
// caller, scopes it to the caller's tenant (an operator-tenant admin may name
// any tenant), and maps registry errors one-to-one onto gRPC codes.
#pragma once

#include "absl/time/time.h"
#include "controlplane/peer_authenticator.h"
#include "controlplane/routes_service.h"
#include "controlplane/service_registry.h"
#include "ferry/v1/admin.grpc.pb.h"

namespace ferry {

class AdminService final : public v1::Admin::CallbackService {
 public:
  // All must outlive the service.
  AdminService(ServiceRegistry* registry, RoutesService* routes, const PeerAuthenticator* auth,
               std::string trust_domain)
      : registry_(registry),
        routes_(routes),
        auth_(auth),
        trust_domain_(std::move(trust_domain)),
        started_(absl::Now()) {}

  grpc::ServerUnaryReactor* RegisterService(grpc::CallbackServerContext* context,
                                            const v1::RegisterServiceRequest* request,
                                            v1::RegisterServiceResponse* response) override;
  grpc::ServerUnaryReactor* DeregisterService(grpc::CallbackServerContext* context,
                                              const v1::DeregisterServiceRequest* request,
                                              v1::DeregisterServiceResponse* response) override;
  grpc::ServerUnaryReactor* ListServices(grpc::CallbackServerContext* context,
                                         const v1::ListServicesRequest* request,
                                         v1::ListServicesResponse* response) override;
  grpc::ServerUnaryReactor* GetStatus(grpc::CallbackServerContext* context,
                                      const v1::GetStatusRequest* request,
                                      v1::GetStatusResponse* response) override;
  grpc::ServerUnaryReactor* ListLeases(grpc::CallbackServerContext* context,
                                       const v1::ListLeasesRequest* request,
                                       v1::ListLeasesResponse* response) override;
  grpc::ServerUnaryReactor* ListSessions(grpc::CallbackServerContext* context,
                                         const v1::ListSessionsRequest* request,
                                         v1::ListSessionsResponse* response) override;

 private:
  // The tenant a request acts on: `requested` or, when empty, the caller's.
  // PERMISSION_DENIED for another tenant unless the caller is an operator.
  absl::StatusOr<std::string> ScopeTenant(const Peer& peer, const std::string& requested,
                                          absl::string_view what) const;

  ServiceRegistry* const registry_;
  RoutesService* const routes_;
  const PeerAuthenticator* const auth_;
  const std::string trust_domain_;
  const absl::Time started_;
};

}  // namespace ferry
