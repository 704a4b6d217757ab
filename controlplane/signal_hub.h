// Signaling between a session's agent and its connector (Offer, Answer,
// Candidate), with ownership checks: a message is accepted only from the
// identity the session names for the message's direction, never from what the
// message says.
//
//   agent -> connector  Offer, Candidate   from the session's agent; sent at
//                                          once on the connector's stream
//                                          (UNAVAILABLE when it is detached)
//   connector -> agent  Answer, Candidate  from the session's connector; kept
//                                          in the session's mailbox until the
//                                          agent's WatchSignals stream takes it
//
// Refusals, in the order they are checked:
//   INVALID_ARGUMENT     no kind, session id 0, a bad candidate address, too
//                        many candidates
//   PERMISSION_DENIED    a kind the caller's role never sends (an Answer from
//                        an agent, an Offer from a connector); a session that
//                        is unknown or of another tenant (one answer for both,
//                        so a caller learns nothing about other tenants'
//                        sessions); a session of the caller's tenant that
//                        names another agent or connector
//   FAILED_PRECONDITION  the session expired, or ended (its service left the
//                        routes)
//   UNAVAILABLE          agent -> connector while the connector is detached
//   RESOURCE_EXHAUSTED   agent -> connector beyond
//                        max_agent_signals_per_second for the session
// Each refusal is counted in ferry_signaling_denials_total{reason} and logged
// with the caller's identity and address; each accepted message in
// ferry_signaling_messages_total{kind}. A mailbox holds at most
// mailbox_capacity messages; beyond that the oldest is dropped and counted in
// ferry_signaling_dropped_total{reason="mailbox_full"}.
//
// One watcher per session: a newer Watch replaces the older one, which ends
// with ABORTED. Watches end with FAILED_PRECONDITION when their session
// expires or ends (Sweep notices; the Intermediate calls it after every
// registry change, which includes the periodic expiry of sessions).
//
// Thread-safety: every method is thread-safe. Callbacks (SignalWatcher,
// ConnectorLink, find_session) are called without the hub's lock held; a
// SignalWatcher may call Take from its Wake.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "controlplane/intermediate_metrics.h"
#include "controlplane/peer_authenticator.h"
#include "controlplane/service_registry.h"
#include "controlplane/session_table.h"
#include "ferry/v1/sessions.pb.h"
#include "prometheus/counter.h"

namespace ferry {

// The hub's handle on one WatchSignals stream.
class SignalWatcher {
 public:
  virtual ~SignalWatcher() = default;
  // Messages wait in the mailbox: take them with SignalHub::Take. Called
  // without the hub's lock; must not block.
  virtual void Wake() = 0;
  // The watch is over; end the stream with `status`. Called at most once,
  // without the hub's lock; must not block. Take returns nothing afterwards.
  virtual void End(const absl::Status& status) = 0;
};

class SignalHub {
 public:
  // Who session `session_id` names (SessionTable::FindParties), nullopt for
  // an unknown one; sets `*connector_link` to the command link of its
  // connector's stream, null when the connector is detached.
  using FindSession = std::function<std::optional<controlplane::SessionParties>(
      uint64_t session_id, std::shared_ptr<ConnectorLink>* connector_link)>;

  struct Options {
    // Required.
    FindSession find_session;
    // Time source for expiry. Default: absl::Now.
    std::function<absl::Time()> now;
    // Messages kept per session for its agent; at least 1.
    size_t mailbox_capacity = 64;
    // Agent -> connector messages one session may send per second; more are
    // RESOURCE_EXHAUSTED. Bounds what one agent can push onto a connector's
    // stream, whose command queue ends the stream (the connector's lease)
    // when it overflows. At least 1.
    int max_agent_signals_per_second = 50;
  };

  // Most candidates one Offer or Answer may carry.
  static constexpr int kMaxCandidates = 32;

  // `metrics` must outlive the hub. CHECK-fails without find_session or with
  // a mailbox_capacity of 0 (a bug of the caller, not bad input).
  SignalHub(Options options, IntermediateMetrics* metrics);
  // The Intermediate's hub: sessions from `registry`, swept after every
  // registry change (it subscribes, and unsubscribes in its destructor).
  // `registry` and `metrics` must outlive the hub; `now` must be the
  // registry's clock.
  SignalHub(
      ServiceRegistry* registry, IntermediateMetrics* metrics,
      std::function<absl::Time()> now = [] { return absl::Now(); });
  ~SignalHub();

  SignalHub(const SignalHub&) = delete;
  SignalHub& operator=(const SignalHub&) = delete;

  // One message from `caller` (role "agent" or "connector"; others are
  // PERMISSION_DENIED). OK once it is on the connector's stream (from the
  // agent) or in the agent's mailbox (from the connector); otherwise the
  // refusal listed at the top of this file.
  absl::Status Signal(const Peer& caller, const v1::SignalMessage& message);

  // Starts watching the mailbox of `session_id` for `caller` (its agent).
  // Returns the watch's id for Take and Unwatch; the refusals of Signal
  // otherwise (PERMISSION_DENIED, FAILED_PRECONDITION). A previous watcher
  // of the session gets End(ABORTED). The hub keeps `watcher` until the
  // watch ends or Unwatch; Wake is not called for messages already waiting
  // (call Take after Watch returns).
  absl::StatusOr<uint64_t> Watch(const Peer& caller, uint64_t session_id,
                                 std::shared_ptr<SignalWatcher> watcher);
  // The oldest waiting message for watch `watch_id` of `session_id`, removed
  // from the mailbox; nullopt when none waits or the watch is not current.
  std::optional<v1::SignalMessage> Take(uint64_t session_id, uint64_t watch_id);
  // Forgets watch `watch_id` (its stream is done). Stale ids are ignored.
  void Unwatch(uint64_t session_id, uint64_t watch_id);

  // Ends the watches and drops the mailboxes of sessions that expired,
  // ended or are unknown now.
  void Sweep();

  // Sessions with a mailbox or a watcher (for tests).
  size_t mailboxes();

 private:
  struct Mailbox {
    std::deque<v1::SignalMessage> messages;
    std::shared_ptr<SignalWatcher> watcher;
    // Id of `watcher`'s watch; 0 while none watches.
    uint64_t watch_id = 0;
    // The agent's messages to the connector in the second from window_start.
    absl::Time window_start = absl::InfinitePast();
    int window_count = 0;
  };

  // Checks `caller` against session `session_id`: OK with the parties (and
  // the connector's link) when the session names the caller for `role`,
  // the counted and logged refusal otherwise. `what` names the call in logs.
  absl::StatusOr<controlplane::SessionParties> CheckOwner(
      const Peer& caller, uint64_t session_id, absl::string_view what,
      std::shared_ptr<ConnectorLink>* connector_link);
  // Counts and logs a refusal; returns `status`.
  absl::Status Refuse(const Peer& caller, absl::string_view what, absl::string_view reason,
                      absl::Status status);
  // Whether the session's agent may send one more message to the connector
  // now (and counts it).
  bool AdmitAgentSignal(uint64_t session_id, absl::Time now);
  // Puts `message` in the session's mailbox; wakes its watcher.
  void Deliver(const v1::SignalMessage& message);

  const Options options_;
  IntermediateMetrics* const metrics_;
  prometheus::Counter& mailbox_drops_;
  // Set by the registry constructor only.
  ServiceRegistry* registry_ = nullptr;
  uint64_t subscription_ = 0;

  absl::Mutex mu_;
  std::map<uint64_t, Mailbox> mailboxes_ ABSL_GUARDED_BY(mu_);
  uint64_t next_watch_id_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace ferry
