#include "tests/harness/test_connector.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace ferry::harness {

v1::ServiceSpec MakeServiceSpec(const std::string& name, const std::vector<std::string>& backends) {
  v1::ServiceSpec spec;
  spec.set_name(name);
  spec.set_protocol(v1::PROTOCOL_TCP);
  for (const std::string& address : backends) spec.add_backends()->set_address(address);
  if (!backends.empty()) {
    uint32_t port = 0;
    if (absl::SimpleAtoi(backends[0].substr(backends[0].rfind(':') + 1), &port)) {
      spec.set_port(port);
    }
  }
  return spec;
}

TestConnector::TestConnector(std::shared_ptr<grpc::Channel> channel, absl::Duration stream_deadline)
    : channel_(std::move(channel)),
      stream_deadline_(stream_deadline),
      stub_(v1::Registry::NewStub(channel_)) {}

TestConnector::~TestConnector() {
  {
    std::lock_guard<std::mutex> lock(keepalive_mu_);
    stop_keepalives_ = true;
  }
  stop_keepalives_cv_.notify_all();
  context_.TryCancel();
  if (reader_.joinable()) reader_.join();
  if (keepalive_.joinable()) keepalive_.join();
}

absl::Status TestConnector::Open(const v1::Hello& hello, bool wait_for_ready) {
  if (stream_ != nullptr) return absl::FailedPreconditionError("the stream was already opened");
  context_.set_deadline(absl::ToChronoTime(absl::Now() + stream_deadline_));
  context_.set_wait_for_ready(wait_for_ready);
  stream_ = stub_->ConnectorSession(&context_);
  reader_ = std::thread([this] { ReadLoop(); });
  v1::ConnectorMessage message;
  *message.mutable_hello() = hello;
  if (!Send(message)) return absl::UnavailableError("the stream ended before the Hello was sent");
  return absl::OkStatus();
}

void TestConnector::ReadLoop() {
  v1::ConnectorCommand command;
  while (stream_->Read(&command)) record_.Add(command);
  grpc::Status status;
  {
    std::lock_guard<std::mutex> write_lock(write_mu_);
    status = stream_->Finish();
  }
  record_.Finish(status);
}

bool TestConnector::Send(const v1::ConnectorMessage& message) {
  if (stream_ == nullptr) return false;
  std::lock_guard<std::mutex> lock(write_mu_);
  if (writes_done_ || finished()) return false;
  return stream_->Write(message);
}

bool TestConnector::SendKeepalive() {
  v1::ConnectorMessage message;
  message.mutable_keepalive()->set_sent_unix_nanos(absl::ToUnixNanos(absl::Now()));
  return Send(message);
}

bool TestConnector::SendHealth(
    const std::string& service,
    const std::vector<std::pair<std::string, v1::HealthState>>& backends) {
  v1::ConnectorMessage message;
  v1::HealthReport* report = message.mutable_health();
  report->set_service(service);
  for (const auto& [address, health] : backends) {
    v1::BackendStatus* status = report->add_backends();
    status->set_address(address);
    status->set_source(address);
    status->set_health(health);
  }
  return Send(message);
}

void TestConnector::StartKeepalives(absl::Duration interval) {
  if (keepalive_.joinable()) return;
  keepalive_ = std::thread([this, interval] {
    while (true) {
      {
        std::unique_lock<std::mutex> lock(keepalive_mu_);
        if (stop_keepalives_cv_.wait_for(lock, absl::ToChronoNanoseconds(interval),
                                         [this] { return stop_keepalives_; })) {
          return;
        }
      }
      if (!SendKeepalive()) return;  // The stream ended.
    }
  });
}

absl::StatusOr<v1::ConnectorCommand> TestConnector::WaitForCommand(
    const std::function<bool(const v1::ConnectorCommand&)>& match, absl::Duration timeout) {
  return record_.WaitFor(match, timeout, "connector stream",
                         [](const v1::ConnectorCommand& c) { return c.ShortDebugString(); });
}

absl::StatusOr<v1::Welcome> TestConnector::WaitForWelcome(absl::Duration timeout) {
  absl::StatusOr<v1::ConnectorCommand> command =
      WaitForCommand([](const v1::ConnectorCommand& c) { return c.has_welcome(); }, timeout);
  if (!command.ok()) return command.status();
  return command->welcome();
}

absl::StatusOr<v1::ApiServices> TestConnector::WaitForApiServices(absl::Duration timeout) {
  absl::StatusOr<v1::ConnectorCommand> command =
      WaitForCommand([](const v1::ConnectorCommand& c) { return c.has_api_services(); }, timeout);
  if (!command.ok()) return command.status();
  return command->api_services();
}

std::vector<v1::ConnectorCommand> TestConnector::commands() { return record_.items(); }

absl::StatusOr<grpc::Status> TestConnector::WaitFinished(absl::Duration timeout) {
  return record_.WaitFinished(timeout, "connector stream");
}

absl::StatusOr<grpc::Status> TestConnector::CloseAndWait(absl::Duration timeout) {
  if (stream_ == nullptr) return absl::FailedPreconditionError("the stream was never opened");
  {
    std::lock_guard<std::mutex> lock(write_mu_);
    if (!writes_done_ && !finished()) stream_->WritesDone();
    writes_done_ = true;
  }
  return WaitFinished(timeout);
}

void TestConnector::Cancel() {
  // Safe before Open too: gRPC cancels the call as soon as it starts.
  context_.TryCancel();
}

bool TestConnector::finished() { return record_.finished(); }

ReconnectingConnector::ReconnectingConnector(std::shared_ptr<grpc::Channel> channel,
                                             v1::Hello hello, absl::Duration initial_backoff,
                                             absl::Duration max_backoff)
    : channel_(std::move(channel)),
      hello_(std::move(hello)),
      initial_backoff_(initial_backoff),
      max_backoff_(max_backoff) {}

ReconnectingConnector::~ReconnectingConnector() { Stop(); }

void ReconnectingConnector::Start() {
  if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
}

void ReconnectingConnector::Stop() {
  {
    std::unique_lock<std::mutex> lock(mu_);
    stop_ = true;
    if (current_ != nullptr) current_->Cancel();
    changed_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

int ReconnectingConnector::sessions() {
  std::lock_guard<std::mutex> lock(mu_);
  return sessions_;
}

int ReconnectingConnector::attempts() {
  std::lock_guard<std::mutex> lock(mu_);
  return attempts_;
}

absl::StatusOr<v1::Welcome> ReconnectingConnector::WaitForSessions(int n, absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  auto enough = [this, n] { return sessions_ >= n; };
  if (!changed_.wait_for(lock, absl::ToChronoNanoseconds(timeout), enough)) {
    return absl::DeadlineExceededError(absl::StrCat("only ", sessions_, " of ", n,
                                                    " sessions after ", attempts_, " attempts in ",
                                                    absl::FormatDuration(timeout)));
  }
  return last_welcome_;
}

void ReconnectingConnector::Run() {
  absl::Duration backoff = initial_backoff_;
  while (true) {
    TestConnector connector(channel_);
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (stop_) return;
      current_ = &connector;
      ++attempts_;
    }
    bool welcomed = false;
    if (connector.Open(hello_).ok()) {
      absl::StatusOr<v1::Welcome> welcome = connector.WaitForWelcome(absl::Seconds(10));
      if (welcome.ok()) {
        welcomed = true;
        absl::Duration interval = absl::Seconds(welcome->keepalive_interval().seconds()) +
                                  absl::Nanoseconds(welcome->keepalive_interval().nanos());
        connector.StartKeepalives(std::max(interval / 2, absl::Milliseconds(100)));
        std::lock_guard<std::mutex> lock(mu_);
        ++sessions_;
        last_welcome_ = *welcome;
        changed_.notify_all();
      }
      // Parks here while the session lives; Stop() cancels it.
      while (!connector.WaitFinished(absl::Seconds(1)).ok()) {
      }
    }
    backoff = welcomed ? initial_backoff_ : std::min(backoff * 2, max_backoff_);
    std::unique_lock<std::mutex> lock(mu_);
    current_ = nullptr;
    if (changed_.wait_for(lock, absl::ToChronoNanoseconds(backoff), [this] { return stop_; })) {
      return;
    }
  }
}

}  // namespace ferry::harness
