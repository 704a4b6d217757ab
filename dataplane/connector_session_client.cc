#include "dataplane/connector_session_client.h"

#include <utility>

#include "common/backoff.h"
#include "common/mutex_lock.h"
#include "glog/logging.h"
#include "google/protobuf/util/time_util.h"

namespace ferry {

ConnectorSessionClient::ConnectorSessionClient(std::shared_ptr<grpc::Channel> channel,
                                               std::string version, Callbacks callbacks)
    : channel_(std::move(channel)),
      version_(std::move(version)),
      callbacks_(std::move(callbacks)) {}

ConnectorSessionClient::~ConnectorSessionClient() { Stop(); }

void ConnectorSessionClient::Start() {
  thread_ = std::thread([this] { Run(); });
  // Keepalives go out on their own thread so a slow read never delays them.
  keepalive_thread_ = std::thread([this] {
    MutexLock lock(&mu_);
    auto stopping = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
    while (!AwaitWithTimeout(&mu_, absl::Condition(&stopping), keepalive_interval_)) {
      if (stream_ == nullptr) continue;
      v1::ConnectorMessage message;
      message.mutable_keepalive()->set_sent_unix_nanos(absl::GetCurrentTimeNanos());
      WriteLocked(message);
    }
  });
}

void ConnectorSessionClient::Stop() {
  {
    MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    if (context_ != nullptr) context_->TryCancel();
  }
  if (thread_.joinable()) thread_.join();
  if (keepalive_thread_.joinable()) keepalive_thread_.join();
}

std::string ConnectorSessionClient::last_error() {
  MutexLock lock(&mu_);
  return last_error_;
}

bool ConnectorSessionClient::WriteLocked(const v1::ConnectorMessage& message) {
  // The sync stream allows one writer at a time; mu_ serializes them.
  return stream_ != nullptr && stream_->Write(message);
}

void ConnectorSessionClient::SetServices(std::vector<v1::ServiceSpec> services) {
  MutexLock lock(&mu_);
  services_ = std::move(services);
  if (stream_ == nullptr) return;
  v1::ConnectorMessage hello;
  hello.mutable_hello()->set_version(version_);
  for (const v1::ServiceSpec& spec : services_) *hello.mutable_hello()->add_services() = spec;
  WriteLocked(hello);
}

void ConnectorSessionClient::ReportHealth(const v1::HealthReport& report) {
  MutexLock lock(&mu_);
  v1::ConnectorMessage message;
  *message.mutable_health() = report;
  WriteLocked(message);
}

void ConnectorSessionClient::SetConfigStatus(const v1::ConfigStatus& status) {
  MutexLock lock(&mu_);
  config_status_ = status;
  v1::ConnectorMessage message;
  *message.mutable_config_status() = status;
  WriteLocked(message);
}

void ConnectorSessionClient::Run() {
  Backoff backoff(absl::Milliseconds(200), absl::Seconds(10));
  for (;;) {
    if (SessionOnce()) backoff.Reset();
    connected_ = false;
    const absl::Duration delay = backoff.Next();
    MutexLock lock(&mu_);
    auto stopping = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
    if (AwaitWithTimeout(&mu_, absl::Condition(&stopping), delay)) return;
  }
}

bool ConnectorSessionClient::SessionOnce() {
  grpc::ClientContext context;
  std::unique_ptr<v1::Registry::Stub> stub = v1::Registry::NewStub(channel_);
  std::unique_ptr<grpc::ClientReaderWriter<v1::ConnectorMessage, v1::ConnectorCommand>> stream;
  {
    MutexLock lock(&mu_);
    if (stopping_) return false;
    context_ = &context;
    stream = stub->ConnectorSession(&context);
    stream_ = stream.get();
    v1::ConnectorMessage hello;
    hello.mutable_hello()->set_version(version_);
    for (const v1::ServiceSpec& spec : services_) *hello.mutable_hello()->add_services() = spec;
    WriteLocked(hello);
    if (!config_status_.error().empty()) {
      v1::ConnectorMessage message;
      *message.mutable_config_status() = config_status_;
      WriteLocked(message);
    }
  }
  bool welcomed = false;
  v1::ConnectorCommand command;
  while (stream->Read(&command)) {
    switch (command.kind_case()) {
      case v1::ConnectorCommand::kWelcome: {
        welcomed = true;
        connected_ = true;
        const int64_t nanos = google::protobuf::util::TimeUtil::DurationToNanoseconds(
            command.welcome().keepalive_interval());
        {
          MutexLock lock(&mu_);
          last_error_.clear();
          if (nanos > 0) keepalive_interval_ = absl::Nanoseconds(nanos);
        }
        LOG(INFO) << "Session with the Intermediate established; "
                  << command.welcome().services_size() << " services accepted";
        if (callbacks_.on_welcome) callbacks_.on_welcome(command.welcome());
        break;
      }
      case v1::ConnectorCommand::kApiServices: {
        if (!callbacks_.on_api_services) break;
        const absl::Status s = callbacks_.on_api_services(command.api_services());
        v1::ConnectorMessage result;
        result.mutable_command_result()->set_command_id(command.command_id());
        if (!s.ok()) result.mutable_command_result()->set_error(s.ToString());
        MutexLock lock(&mu_);
        WriteLocked(result);
        break;
      }
      default:
        break;
    }
  }
  grpc::Status status;
  {
    MutexLock lock(&mu_);
    stream_ = nullptr;
  }
  status = stream->Finish();
  MutexLock lock(&mu_);
  context_ = nullptr;
  if (stopping_) return welcomed;
  last_error_ = status.error_message();
  LOG(WARNING) << "Session with the Intermediate ended (" << status.error_code() << ": "
               << status.error_message() << "); reconnecting";
  return welcomed;
}

}  // namespace ferry
