// The data plane's side of Routes.WatchRoutes: a thread that keeps one stream
// to the Intermediate open, hands each snapshot to the owner, and answers ACK
// (applied) or NACK (refused, with the reason; the owner keeps its last good
// snapshot). Reconnects with jittered exponential backoff after any failure,
// so an Intermediate restart only delays updates. Every (re)subscription
// announces the owner's data-plane addresses (SetDataAddresses), which the
// Intermediate keeps for the life of the stream.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "ferry/v1/routes.grpc.pb.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"

namespace ferry {

class RouteWatcher {
 public:
  // Applies a snapshot; OK means ACK, an error means NACK with its message.
  // Called on the watcher's thread, one snapshot at a time.
  using ApplyFn = std::function<absl::Status(const v1::RouteSnapshot&)>;

  // `node` is a display name sent with each ACK.
  RouteWatcher(std::shared_ptr<grpc::Channel> channel, std::string node, ApplyFn apply);
  ~RouteWatcher();  // Stops.

  // The data-plane addresses sent in every subscription, "host:port" each
  // (empty for none): where agents (for a relay) or relays (for a connector)
  // send UDP frames and open stream transports. A relay that announces no
  // UDP address is never given sessions. Call before Start (not thread-safe
  // with the watcher's thread). A bad address makes the Intermediate end
  // each stream INVALID_ARGUMENT (logged; the watcher retries with backoff).
  void SetDataAddresses(std::string udp_address, std::string stream_address);

  void Start();
  // Cancels the stream and joins the thread. Idempotent.
  void Stop();

  // Version of the last snapshot applied (0 before the first).
  uint64_t applied_version() const { return applied_version_.load(); }
  // True while a stream is open and has delivered a snapshot.
  bool connected() const { return connected_.load(); }

 private:
  void Run();
  // One stream's life; returns when it ends.
  void WatchOnce();

  const std::shared_ptr<grpc::Channel> channel_;
  const std::string node_;
  const ApplyFn apply_;
  // Set before Start, read by the watcher's thread.
  std::string udp_address_;
  std::string stream_address_;
  std::thread thread_;
  std::atomic<uint64_t> applied_version_{0};
  std::atomic<bool> connected_{false};

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace ferry
