// The connector's side of Registry.ConnectorSession: a thread that keeps the
// session stream to the Intermediate open (the stream is the connector's
// lease), says Hello with the configured services, sends keepalives at the
// interval the Welcome asks for and health reports as they happen, and hands
// API-registered services to the owner. Reconnects with jittered backoff; each
// new stream says Hello again, so an Intermediate restart converges by itself.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "ferry/v1/registry.grpc.pb.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"

namespace ferry {

class ConnectorSessionClient {
 public:
  struct Callbacks {
    // The Intermediate accepted the Hello (services with ids and VIPs).
    std::function<void(const v1::Welcome&)> on_welcome;
    // The full set of API-registered services this connector is to serve.
    // The status is sent back as the command's CommandResult (its message
    // is the error the Intermediate logs).
    std::function<absl::Status(const v1::ApiServices&)> on_api_services;
  };

  ConnectorSessionClient(std::shared_ptr<grpc::Channel> channel, std::string version,
                         Callbacks callbacks);
  ~ConnectorSessionClient();  // Stops.

  // Sets the services announced in Hello; when a stream is open, sends a new
  // Hello at once (config reload). Thread-safe.
  void SetServices(std::vector<v1::ServiceSpec> services);
  // Queues a health report (dropped while disconnected: the next Hello starts
  // from a clean slate and the health checker re-reports). Thread-safe.
  void ReportHealth(const v1::HealthReport& report);
  // Records the last config reload's outcome and sends it; a refused reload
  // is sent again on every new stream, so the Intermediate always shows it.
  // Thread-safe.
  void SetConfigStatus(const v1::ConfigStatus& status);

  void Start();
  // Ends the stream (the Intermediate then starts its grace period) and joins.
  void Stop();

  bool connected() const { return connected_.load(); }
  // The Intermediate's last error on a refused stream ("" if none).
  std::string last_error();

 private:
  void Run();
  // One stream's life; returns true if the Intermediate welcomed it.
  bool SessionOnce();
  bool WriteLocked(const v1::ConnectorMessage& message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::shared_ptr<grpc::Channel> channel_;
  const std::string version_;
  const Callbacks callbacks_;
  std::thread thread_;
  std::thread keepalive_thread_;
  std::atomic<bool> connected_{false};

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<v1::ServiceSpec> services_ ABSL_GUARDED_BY(mu_);
  v1::ConfigStatus config_status_ ABSL_GUARDED_BY(mu_);
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
  grpc::ClientReaderWriter<v1::ConnectorMessage, v1::ConnectorCommand>* stream_
      ABSL_GUARDED_BY(mu_) = nullptr;
  absl::Duration keepalive_interval_ ABSL_GUARDED_BY(mu_) = absl::Seconds(5);
  std::string last_error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ferry
