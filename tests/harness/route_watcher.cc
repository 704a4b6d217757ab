#include "tests/harness/route_watcher.h"

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace ferry::harness {

const v1::RouteService* FindRoute(const v1::RouteSnapshot& snapshot, const std::string& name) {
  for (const v1::RouteService& service : snapshot.services()) {
    if (service.name() == name) return &service;
  }
  return nullptr;
}

RouteWatcher::RouteWatcher(std::shared_ptr<grpc::Channel> channel, std::string node,
                           absl::Duration stream_deadline)
    : node_(std::move(node)),
      stream_deadline_(stream_deadline),
      stub_(v1::Routes::NewStub(channel)) {}

RouteWatcher::~RouteWatcher() {
  context_.TryCancel();
  if (reader_.joinable()) reader_.join();
}

void RouteWatcher::SetDataAddresses(std::string udp_address, std::string stream_address) {
  udp_address_ = std::move(udp_address);
  stream_address_ = std::move(stream_address);
}

absl::Status RouteWatcher::Start() {
  if (stream_ != nullptr) return absl::FailedPreconditionError("the watcher was already started");
  context_.set_deadline(absl::ToChronoTime(absl::Now() + stream_deadline_));
  stream_ = stub_->WatchRoutes(&context_);
  v1::RouteAck subscribe;
  subscribe.set_node(node_);
  subscribe.set_udp_address(udp_address_);
  subscribe.set_stream_address(stream_address_);
  // Written before the reading thread starts: from then on only it writes.
  const bool sent = stream_->Write(subscribe);
  reader_ = std::thread([this] { ReadLoop(); });
  if (!sent) return absl::UnavailableError("the stream ended before the subscription was sent");
  return absl::OkStatus();
}

void RouteWatcher::SetVerdict(Verdict verdict) {
  std::lock_guard<std::mutex> lock(mu_);
  verdict_ = std::move(verdict);
}

void RouteWatcher::ReadLoop() {
  v1::RouteSnapshot snapshot;
  while (stream_->Read(&snapshot)) {
    Received received;
    received.received_at = absl::Now();
    std::string error;
    uint64_t kept_version = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (verdict_) error = verdict_(snapshot);
      kept_version = acked_version_;
    }
    v1::RouteAck answer;
    answer.set_response_nonce(snapshot.nonce());
    answer.set_node(node_);
    if (error.empty()) {
      answer.set_version(snapshot.version());
    } else {
      answer.set_version(kept_version);
      answer.set_error_detail(error);
    }
    const bool sent = stream_->Write(answer);
    received.answered_at = absl::Now();
    received.acked = sent && error.empty();
    received.snapshot = std::move(snapshot);
    snapshot.Clear();
    if (received.acked) {
      std::lock_guard<std::mutex> lock(mu_);
      acked_version_ = received.snapshot.version();
    }
    record_.Add(std::move(received));
  }
  record_.Finish(stream_->Finish());
}

absl::StatusOr<RouteWatcher::Received> RouteWatcher::WaitFor(
    const std::function<bool(const v1::RouteSnapshot&)>& match, absl::Duration timeout) {
  return record_.WaitFor([&match](const Received& r) { return match(r.snapshot); }, timeout, node_,
                         [](const Received& r) { return r.snapshot.ShortDebugString(); });
}

absl::StatusOr<RouteWatcher::Received> RouteWatcher::WaitForService(const std::string& name,
                                                                    absl::Duration timeout) {
  return WaitFor([&name](const v1::RouteSnapshot& s) { return FindRoute(s, name) != nullptr; },
                 timeout);
}

absl::StatusOr<RouteWatcher::Received> RouteWatcher::WaitForNoService(const std::string& name,
                                                                      absl::Duration timeout) {
  return WaitFor([&name](const v1::RouteSnapshot& s) { return FindRoute(s, name) == nullptr; },
                 timeout);
}

std::vector<RouteWatcher::Received> RouteWatcher::received() { return record_.items(); }

bool RouteWatcher::VersionsStrictlyIncrease() {
  const std::vector<Received> received = record_.items();
  for (size_t i = 1; i < received.size(); ++i) {
    if (received[i].snapshot.version() <= received[i - 1].snapshot.version()) return false;
  }
  return true;
}

std::string RouteWatcher::DescribeVersions() {
  std::string out;
  for (const Received& r : record_.items()) {
    absl::StrAppend(&out, out.empty() ? "" : " ", r.snapshot.version());
  }
  return out;
}

uint64_t RouteWatcher::acked_version() {
  std::lock_guard<std::mutex> lock(mu_);
  return acked_version_;
}

absl::StatusOr<grpc::Status> RouteWatcher::WaitFinished(absl::Duration timeout) {
  return record_.WaitFinished(timeout, node_);
}

void RouteWatcher::Cancel() { context_.TryCancel(); }

}  // namespace ferry::harness
