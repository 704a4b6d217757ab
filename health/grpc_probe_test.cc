#include "health/grpc_probe.h"

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "dataplane/testing/loop_thread.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "health/probe_test_util.h"

namespace ferry::health {
namespace {

using dataplane::EventLoop;
using dataplane::test::LoopThread;
using test::RunProbe;

// A real gRPC server with the default health service, on 127.0.0.1 port 0.
class HealthServer {
 public:
  HealthServer() {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    // A server with no service of its own has no polled completion queue and refuses to start;
    // the generic callback service (UNIMPLEMENTED for every method) gives it one.
    builder.RegisterCallbackGenericService(&generic_);
    server_ = builder.BuildAndStart();
    EXPECT_NE(server_, nullptr);
    address_ = *dataplane::ParseSocketAddress(absl::StrCat("127.0.0.1:", port));
  }
  ~HealthServer() { Shutdown(); }
  void SetServing(const std::string& service, bool serving) {
    server_->GetHealthCheckService()->SetServingStatus(service, serving);
  }
  void Shutdown() {
    if (server_ == nullptr) return;
    server_->Shutdown(std::chrono::system_clock::now());
    server_->Wait();
    server_.reset();
  }
  const dataplane::SocketAddress& address() const { return address_; }

 private:
  grpc::CallbackGenericService generic_;
  std::unique_ptr<grpc::Server> server_;
  dataplane::SocketAddress address_;
};

ProbeResult CheckGrpc(LoopThread& loop_thread, const dataplane::SocketAddress& address,
                      const std::string& service = "", absl::Duration timeout = absl::Seconds(5)) {
  v1::HealthCheck::Grpc grpc;
  grpc.set_service(service);
  return RunProbe(loop_thread, [&](EventLoop& loop, ProbeCore::Done done) {
    return GrpcProbe::Start(loop, grpc, address, "", timeout, std::move(done));
  });
}

TEST(GrpcProbeTest, ServingNotServingAndBackAgain) {
  LoopThread loop_thread;
  HealthServer server;
  const auto channel = GrpcProbe::ChannelFor(server.address(), "");
  const ProbeResult up = CheckGrpc(loop_thread, server.address());
  EXPECT_TRUE(up.ok) << up.detail;

  server.SetServing("", false);
  const ProbeResult down = CheckGrpc(loop_thread, server.address());
  EXPECT_FALSE(down.ok);
  EXPECT_EQ(down.detail, "grpc status NOT_SERVING");

  server.SetServing("", true);
  EXPECT_TRUE(CheckGrpc(loop_thread, server.address()).ok);
}

TEST(GrpcProbeTest, NamedServiceUnknownThenServing) {
  LoopThread loop_thread;
  HealthServer server;
  const ProbeResult unknown = CheckGrpc(loop_thread, server.address(), "acme.Orders");
  EXPECT_FALSE(unknown.ok);
  EXPECT_TRUE(absl::StartsWith(unknown.detail, "grpc: NOT_FOUND")) << unknown.detail;
  server.SetServing("acme.Orders", true);
  EXPECT_TRUE(CheckGrpc(loop_thread, server.address(), "acme.Orders").ok);
}

TEST(GrpcProbeTest, ShutDownServerFails) {
  LoopThread loop_thread;
  HealthServer server;
  const dataplane::SocketAddress address = server.address();
  ASSERT_TRUE(CheckGrpc(loop_thread, address).ok);
  server.Shutdown();
  const ProbeResult dead = CheckGrpc(loop_thread, address, "", absl::Seconds(2));
  EXPECT_FALSE(dead.ok);
  EXPECT_FALSE(dead.detail.empty());
}

TEST(GrpcProbeTest, ChannelIsSharedWhileHeld) {
  const dataplane::SocketAddress address = *dataplane::ParseSocketAddress("127.0.0.1:9");
  const auto a = GrpcProbe::ChannelFor(address, "");
  const auto b = GrpcProbe::ChannelFor(address, "");
  const auto other_authority = GrpcProbe::ChannelFor(address, "svc.example");
  EXPECT_EQ(a, b);
  EXPECT_NE(a, other_authority);
}

TEST(GrpcProbeTest, DestroyingAProbeMidCallCancelsIt) {
  LoopThread loop_thread;
  HealthServer server;
  bool called = false;
  loop_thread.RunSync([&] {
    auto probe = GrpcProbe::Start(*loop_thread.loop(), v1::HealthCheck::Grpc(), server.address(),
                                  "", absl::Seconds(5), [&](ProbeResult) { called = true; });
    probe.reset();  // returns once gRPC has finished the call
  });
  loop_thread.WaitForRound();
  loop_thread.RunSync([&] { EXPECT_FALSE(called); });
}

}  // namespace
}  // namespace ferry::health
