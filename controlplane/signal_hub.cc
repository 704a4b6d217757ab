#include "controlplane/signal_hub.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/mutex_lock.h"
#include "glog/logging.h"

namespace ferry {
namespace {

constexpr char kAgent[] = "agent";
constexpr char kConnector[] = "connector";

// The label of ferry_signaling_messages_total for a message kind.
const char* KindLabel(v1::SignalMessage::KindCase kind) {
  switch (kind) {
    case v1::SignalMessage::kOffer:
      return "offer";
    case v1::SignalMessage::kAnswer:
      return "answer";
    case v1::SignalMessage::kCandidate:
      return "candidate";
    case v1::SignalMessage::KIND_NOT_SET:
      break;
  }
  return "none";
}

std::string SessionName(uint64_t session_id) { return absl::StrFormat("%016x", session_id); }

// INVALID_ARGUMENT naming the field for a bad list of "ip:port" candidates.
absl::Status ValidateCandidates(absl::string_view field,
                                const google::protobuf::RepeatedPtrField<std::string>& list) {
  if (list.size() > SignalHub::kMaxCandidates) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": ", list.size(), " candidates; send at most ", SignalHub::kMaxCandidates));
  }
  for (int i = 0; i < list.size(); ++i) {
    const std::string path = absl::StrCat(field, "[", i, "]");
    if (list[i].empty()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": is empty; send \"ip:port\""));
    }
    if (absl::Status s = controlplane::ValidateDataAddress(path, list[i]); !s.ok()) return s;
  }
  return absl::OkStatus();
}

// INVALID_ARGUMENT for a message that no party may send.
absl::Status ValidateMessage(const v1::SignalMessage& message) {
  if (message.session_id() == 0) {
    return absl::InvalidArgumentError(
        "session_id: is 0; send the agent hop's session id from Sessions.OpenSession");
  }
  switch (message.kind_case()) {
    case v1::SignalMessage::kOffer:
      return ValidateCandidates("offer.candidates", message.offer().candidates());
    case v1::SignalMessage::kAnswer:
      return ValidateCandidates("answer.candidates", message.answer().candidates());
    case v1::SignalMessage::kCandidate: {
      const std::string& address = message.candidate().address();
      if (address.empty()) {
        return absl::InvalidArgumentError("candidate.address: is empty; send \"ip:port\"");
      }
      return controlplane::ValidateDataAddress("candidate.address", address);
    }
    case v1::SignalMessage::KIND_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError(
      "the SignalMessage carries no offer, answer or candidate; set one");
}

}  // namespace

SignalHub::SignalHub(Options options, IntermediateMetrics* metrics)
    : options_([&options] {
        if (!options.now) options.now = [] { return absl::Now(); };
        return std::move(options);
      }()),
      metrics_(metrics),
      mailbox_drops_(prometheus::BuildCounter()
                         .Name("ferry_signaling_dropped_total")
                         .Help("Signaling messages for agents dropped undelivered, by reason.")
                         .Register(*metrics->registry())
                         .Add({{"reason", "mailbox_full"}})) {
  CHECK(options_.find_session) << "SignalHub needs Options::find_session";
  CHECK_GE(options_.mailbox_capacity, 1u) << "SignalHub needs a mailbox_capacity of at least 1";
  CHECK_GE(options_.max_agent_signals_per_second, 1)
      << "SignalHub needs a max_agent_signals_per_second of at least 1";
}

SignalHub::SignalHub(ServiceRegistry* registry, IntermediateMetrics* metrics,
                     std::function<absl::Time()> now)
    : SignalHub(Options{[registry](uint64_t session_id, std::shared_ptr<ConnectorLink>* link) {
                          return registry->FindSessionParties(session_id, link);
                        },
                        std::move(now), Options().mailbox_capacity,
                        Options().max_agent_signals_per_second},
                metrics) {
  registry_ = registry;
  subscription_ = registry->Subscribe([this] { Sweep(); });
}

SignalHub::~SignalHub() {
  // Waits for a Sweep running on another thread.
  if (registry_ != nullptr) registry_->Unsubscribe(subscription_);
}

absl::Status SignalHub::Refuse(const Peer& caller, absl::string_view what, absl::string_view reason,
                               absl::Status status) {
  metrics_->CountSignalingDenial(reason);
  LOG(WARNING) << "Refused " << what << " from " << caller.address << " as " << caller.id.ToUri()
               << " (" << reason << "): " << status.message();
  return status;
}

absl::StatusOr<controlplane::SessionParties> SignalHub::CheckOwner(
    const Peer& caller, uint64_t session_id, absl::string_view what,
    std::shared_ptr<ConnectorLink>* connector_link) {
  const bool agent = caller.id.role == kAgent;
  std::optional<controlplane::SessionParties> parties =
      options_.find_session(session_id, connector_link);
  if (!parties.has_value() || parties->tenant != caller.id.tenant) {
    // One answer for an unknown session and another tenant's, so that no
    // caller can probe which ids exist elsewhere.
    if (parties.has_value()) metrics_->CountAuthFailure("other_tenant");
    return Refuse(caller, what, parties.has_value() ? "other_tenant" : "unknown_session",
                  absl::PermissionDeniedError(absl::StrCat(
                      caller.id.role, " \"", caller.id.name, "\" of tenant \"", caller.id.tenant,
                      "\" has no session ", SessionName(session_id),
                      " (unknown, ended long ago, or lost in an Intermediate restart); ",
                      agent ? "open one with Sessions.OpenSession"
                            : "signal only for sessions of your services")));
  }
  const std::string& owner = agent ? parties->agent : parties->connector;
  if (owner != caller.id.name) {
    return Refuse(caller, what, agent ? "not_session_agent" : "not_session_connector",
                  absl::PermissionDeniedError(absl::StrCat(
                      "session ", SessionName(session_id), " of tenant \"", caller.id.tenant,
                      "\" is not yours: ",
                      agent ? "only the agent that opened it may signal for it or watch it"
                            : "only the connector serving its service may signal for it")));
  }
  const absl::Time now = options_.now();
  if (parties->ended || parties->expires_at <= now) {
    const bool expired = parties->expires_at <= now;
    connector_link->reset();
    return Refuse(caller, what, expired ? "expired" : "ended",
                  absl::FailedPreconditionError(absl::StrCat(
                      "session ", SessionName(session_id),
                      expired ? absl::StrCat(" expired at ", absl::FormatTime(parties->expires_at))
                              : std::string(" ended: its service left the routes"),
                      agent ? "; open a new session with Sessions.OpenSession"
                            : "; the agent opens a new session")));
  }
  return *std::move(parties);
}

absl::Status SignalHub::Signal(const Peer& caller, const v1::SignalMessage& message) {
  const bool agent = caller.id.role == kAgent;
  if (!agent && caller.id.role != kConnector) {
    return Refuse(caller, "signal", "wrong_role",
                  absl::PermissionDeniedError(
                      absl::StrCat("role \"", caller.id.role,
                                   "\" may not signal; only a session's agent and connector may")));
  }
  if (absl::Status s = ValidateMessage(message); !s.ok()) {
    return Refuse(caller, "signal", "malformed", std::move(s));
  }
  const v1::SignalMessage::KindCase kind = message.kind_case();
  if ((agent && kind == v1::SignalMessage::kAnswer) ||
      (!agent && kind == v1::SignalMessage::kOffer)) {
    return Refuse(
        caller, "signal", "wrong_kind",
        absl::PermissionDeniedError(absl::StrCat(
            agent ? "an agent may not send an Answer" : "a connector may not send an Offer",
            ": the agent sends Offer and Candidate, the connector Answer and Candidate")));
  }
  const std::string what =
      absl::StrCat(KindLabel(kind), " for session ", SessionName(message.session_id()));
  std::shared_ptr<ConnectorLink> link;
  absl::StatusOr<controlplane::SessionParties> parties =
      CheckOwner(caller, message.session_id(), what, &link);
  if (!parties.ok()) return parties.status();
  if (agent) {
    if (link == nullptr) {
      return Refuse(caller, what, "connector_unavailable",
                    absl::UnavailableError(absl::StrCat(
                        "connector \"", parties->connector,
                        "\" serving the session has no open Registry.ConnectorSession stream; "
                        "retry when it is back")));
    }
    if (!AdmitAgentSignal(message.session_id(), options_.now())) {
      return Refuse(caller, what, "rate_limited",
                    absl::ResourceExhaustedError(
                        absl::StrCat("session ", SessionName(message.session_id()),
                                     " sent more than ", options_.max_agent_signals_per_second,
                                     " signaling messages to its connector in the last second; "
                                     "send fewer candidates, or batch them in the Offer")));
    }
    v1::ConnectorCommand command;
    *command.mutable_signal() = message;
    link->Send(std::move(command));
  } else {
    Deliver(message);
  }
  metrics_->CountSignalingMessage(KindLabel(kind));
  return absl::OkStatus();
}

bool SignalHub::AdmitAgentSignal(uint64_t session_id, absl::Time now) {
  MutexLock lock(&mu_);
  Mailbox& mailbox = mailboxes_[session_id];
  if (now - mailbox.window_start >= absl::Seconds(1)) {
    mailbox.window_start = now;
    mailbox.window_count = 0;
  }
  if (mailbox.window_count >= options_.max_agent_signals_per_second) return false;
  ++mailbox.window_count;
  return true;
}

void SignalHub::Deliver(const v1::SignalMessage& message) {
  std::shared_ptr<SignalWatcher> watcher;
  {
    MutexLock lock(&mu_);
    Mailbox& mailbox = mailboxes_[message.session_id()];
    mailbox.messages.push_back(message);
    if (mailbox.messages.size() > options_.mailbox_capacity) {
      mailbox.messages.pop_front();
      mailbox_drops_.Increment();
    }
    watcher = mailbox.watcher;
  }
  if (watcher != nullptr) watcher->Wake();
}

absl::StatusOr<uint64_t> SignalHub::Watch(const Peer& caller, uint64_t session_id,
                                          std::shared_ptr<SignalWatcher> watcher) {
  const std::string what = absl::StrCat("WatchSignals for session ", SessionName(session_id));
  if (caller.id.role != kAgent) {
    return Refuse(
        caller, what, "wrong_role",
        absl::PermissionDeniedError(absl::StrCat(
            "role \"", caller.id.role, "\" may not watch signals; only the session's agent may")));
  }
  std::shared_ptr<ConnectorLink> unused;
  absl::StatusOr<controlplane::SessionParties> parties =
      CheckOwner(caller, session_id, what, &unused);
  if (!parties.ok()) return parties.status();
  std::shared_ptr<SignalWatcher> replaced;
  uint64_t watch_id = 0;
  {
    MutexLock lock(&mu_);
    Mailbox& mailbox = mailboxes_[session_id];
    replaced = std::exchange(mailbox.watcher, std::move(watcher));
    watch_id = mailbox.watch_id = next_watch_id_++;
  }
  if (replaced != nullptr) {
    replaced->End(absl::AbortedError(absl::StrCat("a newer WatchSignals call for session ",
                                                  SessionName(session_id), " replaced this one")));
  }
  return watch_id;
}

std::optional<v1::SignalMessage> SignalHub::Take(uint64_t session_id, uint64_t watch_id) {
  MutexLock lock(&mu_);
  auto it = mailboxes_.find(session_id);
  if (it == mailboxes_.end() || it->second.watch_id != watch_id || watch_id == 0 ||
      it->second.messages.empty()) {
    return std::nullopt;
  }
  v1::SignalMessage message = std::move(it->second.messages.front());
  it->second.messages.pop_front();
  return message;
}

void SignalHub::Unwatch(uint64_t session_id, uint64_t watch_id) {
  std::shared_ptr<SignalWatcher> released;
  {
    MutexLock lock(&mu_);
    auto it = mailboxes_.find(session_id);
    if (it == mailboxes_.end() || it->second.watch_id != watch_id || watch_id == 0) return;
    released = std::move(it->second.watcher);
    it->second.watch_id = 0;
    // Messages stay for the agent's next watch.
    if (it->second.messages.empty()) mailboxes_.erase(it);
  }
}

void SignalHub::Sweep() {
  std::vector<uint64_t> ids;
  {
    MutexLock lock(&mu_);
    ids.reserve(mailboxes_.size());
    for (const auto& [id, mailbox] : mailboxes_) ids.push_back(id);
  }
  const absl::Time now = options_.now();
  std::vector<std::pair<uint64_t, std::string>> dead;
  for (uint64_t id : ids) {
    std::shared_ptr<ConnectorLink> unused;
    std::optional<controlplane::SessionParties> parties = options_.find_session(id, &unused);
    if (!parties.has_value()) {
      dead.emplace_back(id, "is gone");
    } else if (parties->expires_at <= now) {
      dead.emplace_back(id, absl::StrCat("expired at ", absl::FormatTime(parties->expires_at)));
    } else if (parties->ended) {
      dead.emplace_back(id, "ended: its service left the routes");
    }
  }
  std::vector<std::pair<std::shared_ptr<SignalWatcher>, absl::Status>> to_end;
  {
    MutexLock lock(&mu_);
    for (const auto& [id, why] : dead) {
      auto it = mailboxes_.find(id);
      if (it == mailboxes_.end()) continue;
      if (it->second.watcher != nullptr) {
        to_end.emplace_back(std::move(it->second.watcher),
                            absl::FailedPreconditionError(
                                absl::StrCat("session ", SessionName(id), " ", why,
                                             "; open a new session with Sessions.OpenSession")));
      }
      mailboxes_.erase(it);
    }
  }
  for (auto& [watcher, status] : to_end) watcher->End(status);
}

size_t SignalHub::mailboxes() {
  MutexLock lock(&mu_);
  return mailboxes_.size();
}

}  // namespace ferry
