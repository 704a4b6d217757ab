// A scriptable connector for integration tests: speaks Registry.ConnectorSession
// to the real Intermediate (Hello, keepalives, health reports, command results)
// and records every command it receives, so a test can wait for a Welcome or an
// ApiServices push and then assert on it.
//
// ReconnectingConnector wraps it the way a real connector behaves: it keeps a
// session open, and when the stream ends (the Intermediate restarted, or
// replaced the session) it opens a new one after an exponential backoff.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ferry/v1/registry.grpc.pb.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/sync_stream.h"
#include "tests/harness/stream_record.h"

namespace ferry::harness {

// A ServiceSpec with `backends` ("ip:port"), protocol TCP, the first
// backend's port as its port; tenant and connector left empty.
v1::ServiceSpec MakeServiceSpec(const std::string& name, const std::vector<std::string>& backends);

// One ConnectorSession stream. Thread-safe: the test thread sends and waits
// while an internal thread reads. (Locks are std::mutex: see stream_record.h.)
class TestConnector {
 public:
  // `channel` carries the connector's identity (see channels.h). The stream
  // gets a deadline of now + `stream_deadline` when opened.
  explicit TestConnector(std::shared_ptr<grpc::Channel> channel,
                         absl::Duration stream_deadline = absl::Seconds(120));
  // Cancels a stream that is still open and joins the internal threads.
  ~TestConnector();

  TestConnector(const TestConnector&) = delete;
  TestConnector& operator=(const TestConnector&) = delete;

  // Opens the stream (with wait_for_ready when asked, so a connect waits for
  // the server instead of failing at once) and sends `hello`.
  // UNAVAILABLE when the first write fails (the call ended; see WaitFinished).
  // FAILED_PRECONDITION when already opened.
  absl::Status Open(const v1::Hello& hello, bool wait_for_ready = false);

  // Sends a message; false when the stream is done.
  bool Send(const v1::ConnectorMessage& message);
  bool SendKeepalive();
  // A HealthReport for `service` with these backends and states.
  bool SendHealth(const std::string& service,
                  const std::vector<std::pair<std::string, v1::HealthState>>& backends);
  // Sends a Keepalive every `interval` from an internal thread until the
  // stream ends (or the object is destroyed).
  void StartKeepalives(absl::Duration interval);

  // The first command received after the one the previous Wait* returned that
  // satisfies `match` (earlier non-matching ones are skipped). UNAVAILABLE
  // with the call's status when the stream ended without one;
  // DEADLINE_EXCEEDED after `timeout`.
  absl::StatusOr<v1::ConnectorCommand> WaitForCommand(
      const std::function<bool(const v1::ConnectorCommand&)>& match, absl::Duration timeout);
  absl::StatusOr<v1::Welcome> WaitForWelcome(absl::Duration timeout = absl::Seconds(10));
  absl::StatusOr<v1::ApiServices> WaitForApiServices(absl::Duration timeout = absl::Seconds(10));

  // Every command received so far.
  std::vector<v1::ConnectorCommand> commands();

  // The call's final status once the server ended it. DEADLINE_EXCEEDED when
  // it is still open after `timeout`.
  absl::StatusOr<grpc::Status> WaitFinished(absl::Duration timeout);
  // Half-closes the stream (the connector goes away cleanly) and waits for
  // the server's status.
  absl::StatusOr<grpc::Status> CloseAndWait(absl::Duration timeout = absl::Seconds(10));
  // Cancels the call (as a crashed connector's TCP reset would end it).
  void Cancel();
  bool finished();

 private:
  void ReadLoop();

  const std::shared_ptr<grpc::Channel> channel_;
  const absl::Duration stream_deadline_;
  std::unique_ptr<v1::Registry::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::ConnectorMessage, v1::ConnectorCommand>> stream_;
  std::thread reader_;
  std::thread keepalive_;
  StreamRecord<v1::ConnectorCommand> record_;

  // Serializes writes with each other and with Finish.
  std::mutex write_mu_;
  bool writes_done_ = false;  // guarded by write_mu_

  std::mutex keepalive_mu_;
  std::condition_variable stop_keepalives_cv_;
  bool stop_keepalives_ = false;  // guarded by keepalive_mu_
};

// A connector that keeps a session open across Intermediate restarts.
// Thread-safe.
class ReconnectingConnector {
 public:
  // Backoff doubles from `initial_backoff` up to `max_backoff` after each
  // failed attempt and resets after a session got its Welcome.
  ReconnectingConnector(std::shared_ptr<grpc::Channel> channel, v1::Hello hello,
                        absl::Duration initial_backoff = absl::Milliseconds(50),
                        absl::Duration max_backoff = absl::Seconds(1));
  ~ReconnectingConnector();  // Stop()

  void Start();
  // Ends the current session and stops reconnecting. Idempotent.
  void Stop();

  // Sessions that got a Welcome so far, and connection attempts made.
  int sessions();
  int attempts();
  // Waits until at least `n` sessions got a Welcome; returns the latest one.
  // DEADLINE_EXCEEDED after `timeout`.
  absl::StatusOr<v1::Welcome> WaitForSessions(int n, absl::Duration timeout);

 private:
  void Run();

  const std::shared_ptr<grpc::Channel> channel_;
  const v1::Hello hello_;
  const absl::Duration initial_backoff_;
  const absl::Duration max_backoff_;
  std::thread thread_;

  std::mutex mu_;
  std::condition_variable changed_;
  // Guarded by mu_:
  bool stop_ = false;
  TestConnector* current_ = nullptr;
  int sessions_ = 0;
  int attempts_ = 0;
  v1::Welcome last_welcome_;
};

}  // namespace ferry::harness
