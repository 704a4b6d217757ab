// A scriptable data-plane route client for integration tests: speaks
// Routes.WatchRoutes to the real Intermediate as a relay or connector would,
// answers every snapshot at once from its reading thread (ACK by default, or
// a NACK when the test's verdict says so), and records each snapshot with the
// time it arrived and the time its answer was sent, so tests can assert on
// route contents, on version order, and measure change-to-ACK latency.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ferry/v1/routes.grpc.pb.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/sync_stream.h"
#include "tests/harness/stream_record.h"

namespace ferry::harness {

// The service named `name` in `snapshot`, or null.
const v1::RouteService* FindRoute(const v1::RouteSnapshot& snapshot, const std::string& name);

class RouteWatcher {
 public:
  struct Received {
    v1::RouteSnapshot snapshot;
    absl::Time received_at;  // when Read returned it
    absl::Time answered_at;  // when the ACK/NACK write returned
    bool acked = false;      // false: NACKed (or the answer could not be sent)
  };
  // For each snapshot: "" to ACK it, or the error to NACK it with.
  using Verdict = std::function<std::string(const v1::RouteSnapshot&)>;

  // `channel` carries the watcher's identity (a relay or connector
  // certificate); `node` is the display name sent in the subscription.
  RouteWatcher(std::shared_ptr<grpc::Channel> channel, std::string node,
               absl::Duration stream_deadline = absl::Seconds(120));
  // Cancels the stream and joins the reading thread.
  ~RouteWatcher();

  RouteWatcher(const RouteWatcher&) = delete;
  RouteWatcher& operator=(const RouteWatcher&) = delete;

  // Data-plane addresses ("host:port", or anything else to test refusals)
  // to announce in the subscription. Call before Start. Default: none.
  void SetDataAddresses(std::string udp_address, std::string stream_address);

  // Opens the stream and sends the subscription (version 0, no nonce, the
  // data-plane addresses).
  // UNAVAILABLE when the write fails; FAILED_PRECONDITION when already started.
  absl::Status Start();

  // Replaces the verdict (default: ACK everything). Thread-safe.
  void SetVerdict(Verdict verdict);

  // The first snapshot received after the one the previous WaitFor returned
  // that satisfies `match`. UNAVAILABLE with the call's status when the
  // stream ended without one; DEADLINE_EXCEEDED after `timeout`.
  absl::StatusOr<Received> WaitFor(const std::function<bool(const v1::RouteSnapshot&)>& match,
                                   absl::Duration timeout = absl::Seconds(10));
  // WaitFor a snapshot holding (or not holding) service `name`.
  absl::StatusOr<Received> WaitForService(const std::string& name,
                                          absl::Duration timeout = absl::Seconds(10));
  absl::StatusOr<Received> WaitForNoService(const std::string& name,
                                            absl::Duration timeout = absl::Seconds(10));

  // Everything received so far, in order.
  std::vector<Received> received();
  // True when every received version is above the one before it.
  bool VersionsStrictlyIncrease();
  // The received versions in order, e.g. "1 2 4 4 5", for failure messages.
  std::string DescribeVersions();
  // The version of the last ACKed snapshot (0 before the first).
  uint64_t acked_version();

  // The call's final status once it ended; DEADLINE_EXCEEDED after `timeout`.
  absl::StatusOr<grpc::Status> WaitFinished(absl::Duration timeout);
  // Cancels the call. Thread-safe.
  void Cancel();

 private:
  void ReadLoop();

  const std::string node_;
  const absl::Duration stream_deadline_;
  std::string udp_address_;
  std::string stream_address_;
  std::unique_ptr<v1::Routes::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::RouteAck, v1::RouteSnapshot>> stream_;
  std::thread reader_;

  StreamRecord<Received> record_;

  // std::mutex, not absl::Mutex: see stream_record.h.
  std::mutex mu_;
  // Guarded by mu_:
  Verdict verdict_;
  uint64_t acked_version_ = 0;
};

}  // namespace ferry::harness
