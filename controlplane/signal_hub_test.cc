#include "controlplane/signal_hub.h"

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/mutex_lock.h"
#include "controlplane/testing/in_memory_state_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"

namespace ferry {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kTenant[] = "acme";
const absl::Time kStart = absl::FromUnixSeconds(1700000000);
constexpr uint64_t kSession = 0x1111;
constexpr uint64_t kOtherTenantSession = 0x2222;
constexpr uint64_t kExpiredSession = 0x3333;
constexpr uint64_t kEndedSession = 0x4444;
constexpr uint64_t kDetachedSession = 0x5555;
constexpr uint64_t kUnknownSession = 0x9999;

Peer As(const std::string& role, const std::string& name, const std::string& tenant = kTenant) {
  return Peer{SpiffeId{"ferry.local", tenant, role, name}, "ipv4:127.0.0.1:5000"};
}
const Peer kAgent = As("agent", "laptop");
const Peer kConnector = As("connector", "edge-1");

v1::SignalMessage Offer(uint64_t session, std::vector<std::string> candidates = {"10.0.0.1:5000"}) {
  v1::SignalMessage m;
  m.set_session_id(session);
  for (auto& c : candidates) m.mutable_offer()->add_candidates(std::move(c));
  return m;
}
v1::SignalMessage Answer(uint64_t session,
                         std::vector<std::string> candidates = {"10.0.0.2:6000"}) {
  v1::SignalMessage m;
  m.set_session_id(session);
  for (auto& c : candidates) m.mutable_answer()->add_candidates(std::move(c));
  return m;
}
v1::SignalMessage Candidate(uint64_t session, const std::string& address = "10.0.0.3:7000") {
  v1::SignalMessage m;
  m.set_session_id(session);
  m.mutable_candidate()->set_address(address);
  return m;
}

class RecordingLink : public ConnectorLink {
 public:
  void Send(v1::ConnectorCommand command) override {
    MutexLock lock(&mu_);
    sent_.push_back(std::move(command));
  }
  void Close(const absl::Status&) override {}
  std::vector<v1::ConnectorCommand> sent() {
    MutexLock lock(&mu_);
    return sent_;
  }

 private:
  absl::Mutex mu_;
  std::vector<v1::ConnectorCommand> sent_ ABSL_GUARDED_BY(mu_);
};

// Records wakes and the end; optionally takes messages as a stream would.
class RecordingWatcher : public SignalWatcher {
 public:
  void Wake() override {
    MutexLock lock(&mu_);
    ++wakes_;
  }
  void End(const absl::Status& status) override {
    MutexLock lock(&mu_);
    ended_.push_back(status);
  }
  int wakes() {
    MutexLock lock(&mu_);
    return wakes_;
  }
  std::vector<absl::Status> ended() {
    MutexLock lock(&mu_);
    return ended_;
  }

 private:
  absl::Mutex mu_;
  int wakes_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<absl::Status> ended_ ABSL_GUARDED_BY(mu_);
};

// The value of counter `name`{label=value} in `registry`; 0 when absent.
double CounterValue(prometheus::Registry& registry, const std::string& name,
                    const std::string& label, const std::string& value) {
  for (const prometheus::MetricFamily& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const prometheus::ClientMetric& metric : family.metric) {
      for (const prometheus::ClientMetric::Label& l : metric.label) {
        if (l.name == label && l.value == value) return metric.counter.value;
      }
    }
  }
  return 0;
}

class SignalHubTest : public ::testing::Test {
 protected:
  SignalHubTest() {
    sessions_[kSession] = Parties(kTenant, "laptop", "edge-1", kStart + absl::Hours(1));
    sessions_[kOtherTenantSession] = Parties("globex", "laptop", "edge-1", kStart + absl::Hours(1));
    sessions_[kExpiredSession] = Parties(kTenant, "laptop", "edge-1", kStart);
    sessions_[kEndedSession] = Parties(kTenant, "laptop", "edge-1", kStart + absl::Hours(1));
    sessions_[kEndedSession].ended = true;
    sessions_[kDetachedSession] = Parties(kTenant, "laptop", "edge-2", kStart + absl::Hours(1));
    links_["edge-1"] = link_;
    hub_ = MakeHub(64);
  }

  static controlplane::SessionParties Parties(const std::string& tenant, const std::string& agent,
                                              const std::string& connector, absl::Time expires) {
    return controlplane::SessionParties{tenant, agent, connector, expires, false};
  }

  std::unique_ptr<SignalHub> MakeHub(size_t capacity, int max_agent_signals_per_second = 1000) {
    SignalHub::Options options;
    options.find_session = [this](uint64_t id, std::shared_ptr<ConnectorLink>* link) {
      MutexLock lock(&mu_);
      link->reset();
      auto it = sessions_.find(id);
      if (it == sessions_.end()) return std::optional<controlplane::SessionParties>();
      if (auto l = links_.find(it->second.connector); l != links_.end() && !it->second.ended) {
        *link = l->second;
      }
      return std::optional<controlplane::SessionParties>(it->second);
    };
    options.now = [this] {
      MutexLock lock(&mu_);
      return now_;
    };
    options.mailbox_capacity = capacity;
    options.max_agent_signals_per_second = max_agent_signals_per_second;
    return std::make_unique<SignalHub>(std::move(options), &metrics_);
  }

  double Denials(const std::string& reason) {
    return CounterValue(*registry_, "ferry_signaling_denials_total", "reason", reason);
  }
  double Relayed(const std::string& kind) {
    return CounterValue(*registry_, "ferry_signaling_messages_total", "kind", kind);
  }
  double Dropped() {
    return CounterValue(*registry_, "ferry_signaling_dropped_total", "reason", "mailbox_full");
  }

  uint64_t MustWatch(std::shared_ptr<SignalWatcher> watcher, uint64_t session = kSession) {
    absl::StatusOr<uint64_t> id = hub_->Watch(kAgent, session, std::move(watcher));
    EXPECT_TRUE(id.ok()) << id.status();
    return id.value_or(0);
  }

  std::vector<v1::SignalMessage> TakeAll(uint64_t watch_id, uint64_t session = kSession) {
    std::vector<v1::SignalMessage> taken;
    while (std::optional<v1::SignalMessage> m = hub_->Take(session, watch_id)) {
      taken.push_back(*std::move(m));
    }
    return taken;
  }

  void Advance(absl::Duration d) {
    MutexLock lock(&mu_);
    now_ += d;
  }

  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
  IntermediateMetrics metrics_{registry_};
  std::shared_ptr<RecordingLink> link_ = std::make_shared<RecordingLink>();
  absl::Mutex mu_;
  std::map<uint64_t, controlplane::SessionParties> sessions_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<ConnectorLink>> links_ ABSL_GUARDED_BY(mu_);
  absl::Time now_ ABSL_GUARDED_BY(mu_) = kStart + absl::Minutes(1);
  std::unique_ptr<SignalHub> hub_;
};

TEST_F(SignalHubTest, AgentOfferAndCandidateReachTheConnectorStream) {
  ASSERT_TRUE(hub_->Signal(kAgent, Offer(kSession)).ok());
  ASSERT_TRUE(hub_->Signal(kAgent, Candidate(kSession)).ok());
  std::vector<v1::ConnectorCommand> sent = link_->sent();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].signal().session_id(), kSession);
  EXPECT_THAT(sent[0].signal().offer().candidates(), ElementsAre("10.0.0.1:5000"));
  EXPECT_EQ(sent[1].signal().candidate().address(), "10.0.0.3:7000");
  EXPECT_EQ(Relayed("offer"), 1);
  EXPECT_EQ(Relayed("candidate"), 1);
  EXPECT_EQ(hub_->Take(kSession, MustWatch(std::make_shared<RecordingWatcher>())), std::nullopt)
      << "agent messages never wait in the agent's mailbox";
}

TEST_F(SignalHubTest, ConnectorAnswerWaitsForTheAgentsWatchInOrder) {
  ASSERT_TRUE(hub_->Signal(kConnector, Answer(kSession)).ok());
  ASSERT_TRUE(hub_->Signal(kConnector, Candidate(kSession)).ok());
  EXPECT_EQ(Relayed("answer"), 1);
  EXPECT_EQ(Relayed("candidate"), 1);
  EXPECT_THAT(link_->sent(), IsEmpty());

  auto watcher = std::make_shared<RecordingWatcher>();
  const uint64_t watch = MustWatch(watcher);
  std::vector<v1::SignalMessage> taken = TakeAll(watch);
  ASSERT_EQ(taken.size(), 2u);
  EXPECT_THAT(taken[0].answer().candidates(), ElementsAre("10.0.0.2:6000"));
  EXPECT_EQ(taken[1].candidate().address(), "10.0.0.3:7000");

  // A message for a watched session wakes the watcher.
  EXPECT_EQ(watcher->wakes(), 0);
  ASSERT_TRUE(hub_->Signal(kConnector, Candidate(kSession, "10.0.0.4:7000")).ok());
  EXPECT_EQ(watcher->wakes(), 1);
  taken = TakeAll(watch);
  ASSERT_EQ(taken.size(), 1u);
  EXPECT_EQ(taken[0].candidate().address(), "10.0.0.4:7000");
  EXPECT_THAT(watcher->ended(), IsEmpty());
}

TEST_F(SignalHubTest, EveryRefusalHasItsCodeAndReasonAndDeliversNothing) {
  struct Case {
    const char* name;
    Peer caller;
    v1::SignalMessage message;
    absl::StatusCode code;
    const char* reason;
    const char* says;
  };
  v1::SignalMessage empty;
  empty.set_session_id(kSession);
  std::vector<std::string> too_many(SignalHub::kMaxCandidates + 1, "10.0.0.1:1");
  const std::vector<Case> cases = {
      {"answer from the agent", kAgent, Answer(kSession), absl::StatusCode::kPermissionDenied,
       "wrong_kind", "may not send an Answer"},
      {"offer from the connector", kConnector, Offer(kSession), absl::StatusCode::kPermissionDenied,
       "wrong_kind", "may not send an Offer"},
      {"a relay", As("relay", "relay-1"), Candidate(kSession), absl::StatusCode::kPermissionDenied,
       "wrong_role", "role \"relay\""},
      {"no kind", kAgent, empty, absl::StatusCode::kInvalidArgument, "malformed",
       "no offer, answer or candidate"},
      {"session 0", kAgent, Offer(0), absl::StatusCode::kInvalidArgument, "malformed",
       "session_id"},
      {"bad candidate", kAgent, Candidate(kSession, "300.1.1.1:5"),
       absl::StatusCode::kInvalidArgument, "malformed", "candidate.address"},
      {"empty offer candidate", kAgent, Offer(kSession, {""}), absl::StatusCode::kInvalidArgument,
       "malformed", "offer.candidates[0]"},
      {"too many candidates", kConnector, Answer(kSession, too_many),
       absl::StatusCode::kInvalidArgument, "malformed", "at most 32"},
      {"unknown session", kAgent, Offer(kUnknownSession), absl::StatusCode::kPermissionDenied,
       "unknown_session", "has no session"},
      {"another tenant's session", kAgent, Offer(kOtherTenantSession),
       absl::StatusCode::kPermissionDenied, "other_tenant", "has no session"},
      {"another agent of the tenant", As("agent", "phone"), Candidate(kSession),
       absl::StatusCode::kPermissionDenied, "not_session_agent", "only the agent that opened it"},
      {"a connector not serving it", As("connector", "edge-9"), Answer(kSession),
       absl::StatusCode::kPermissionDenied, "not_session_connector", "only the connector serving"},
      {"another tenant's connector", As("connector", "edge-1", "globex"), Answer(kSession),
       absl::StatusCode::kPermissionDenied, "other_tenant", "has no session"},
      {"expired session (agent)", kAgent, Offer(kExpiredSession),
       absl::StatusCode::kFailedPrecondition, "expired", "expired at"},
      {"expired session (connector)", kConnector, Answer(kExpiredSession),
       absl::StatusCode::kFailedPrecondition, "expired", "expired at"},
      {"ended session", kAgent, Candidate(kEndedSession), absl::StatusCode::kFailedPrecondition,
       "ended", "left the routes"},
      {"connector detached", kAgent, Offer(kDetachedSession), absl::StatusCode::kUnavailable,
       "connector_unavailable", "edge-2"},
  };
  for (const Case& c : cases) {
    const double before = Denials(c.reason);
    absl::Status s = hub_->Signal(c.caller, c.message);
    EXPECT_EQ(s.code(), c.code) << c.name << ": " << s;
    EXPECT_THAT(s.message(), HasSubstr(c.says)) << c.name;
    EXPECT_EQ(Denials(c.reason), before + 1) << c.name;
  }
  EXPECT_THAT(link_->sent(), IsEmpty());
  EXPECT_EQ(hub_->mailboxes(), 0u);
  for (const char* kind : {"offer", "answer", "candidate"}) EXPECT_EQ(Relayed(kind), 0) << kind;
}

TEST_F(SignalHubTest, AnotherTenantsSessionLooksExactlyLikeAnUnknownOne) {
  {
    MutexLock lock(&mu_);
    sessions_[kUnknownSession] = Parties("globex", "x", "y", kStart + absl::Hours(1));
  }
  absl::Status foreign = hub_->Signal(kAgent, Offer(kUnknownSession));
  {
    MutexLock lock(&mu_);
    sessions_.erase(kUnknownSession);
  }
  absl::Status unknown = hub_->Signal(kAgent, Offer(kUnknownSession));
  EXPECT_EQ(foreign, unknown);
  EXPECT_TRUE(absl::IsPermissionDenied(unknown)) << unknown;
  // Even an expired session of another tenant: ownership is checked first.
  {
    MutexLock lock(&mu_);
    sessions_[kUnknownSession] = Parties("globex", "laptop", "edge-1", kStart);
  }
  EXPECT_EQ(hub_->Signal(kAgent, Offer(kUnknownSession)), unknown);
  EXPECT_EQ(CounterValue(*registry_, "ferry_auth_failures_total", "reason", "other_tenant"), 2);
}

TEST_F(SignalHubTest, WatchIsForTheSessionsAgentOnly) {
  struct Case {
    Peer caller;
    uint64_t session;
    absl::StatusCode code;
    const char* reason;
  };
  for (const Case& c : std::vector<Case>{
           {kConnector, kSession, absl::StatusCode::kPermissionDenied, "wrong_role"},
           {As("agent", "phone"), kSession, absl::StatusCode::kPermissionDenied,
            "not_session_agent"},
           {As("agent", "laptop", "globex"), kSession, absl::StatusCode::kPermissionDenied,
            "other_tenant"},
           {kAgent, kUnknownSession, absl::StatusCode::kPermissionDenied, "unknown_session"},
           {kAgent, kExpiredSession, absl::StatusCode::kFailedPrecondition, "expired"},
           {kAgent, kEndedSession, absl::StatusCode::kFailedPrecondition, "ended"},
       }) {
    const double before = Denials(c.reason);
    absl::StatusOr<uint64_t> id =
        hub_->Watch(c.caller, c.session, std::make_shared<RecordingWatcher>());
    EXPECT_EQ(id.status().code(), c.code) << c.caller.id.ToUri() << " " << c.session;
    EXPECT_EQ(Denials(c.reason), before + 1) << c.reason;
  }
  EXPECT_EQ(hub_->mailboxes(), 0u);
}

TEST_F(SignalHubTest, AgentSignalsBeyondTheRateAreResourceExhaustedUntilTheNextSecond) {
  hub_ = MakeHub(64, /*max_agent_signals_per_second=*/3);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(hub_->Signal(kAgent, Candidate(kSession)).ok()) << i;
  absl::Status limited = hub_->Signal(kAgent, Offer(kSession));
  EXPECT_TRUE(absl::IsResourceExhausted(limited)) << limited;
  EXPECT_EQ(Denials("rate_limited"), 1);
  // The connector's own messages are not limited by the agent's rate.
  EXPECT_TRUE(hub_->Signal(kConnector, Answer(kSession)).ok());
  Advance(absl::Milliseconds(999));
  EXPECT_TRUE(absl::IsResourceExhausted(hub_->Signal(kAgent, Offer(kSession))));
  Advance(absl::Milliseconds(1));
  EXPECT_TRUE(hub_->Signal(kAgent, Offer(kSession)).ok());
  EXPECT_EQ(link_->sent().size(), 4u);
}

TEST_F(SignalHubTest, FullMailboxDropsTheOldestAndCountsIt) {
  hub_ = MakeHub(3);
  for (int i = 1; i <= 5; ++i) {
    ASSERT_TRUE(
        hub_->Signal(kConnector, Candidate(kSession, absl::StrCat("10.0.0.", i, ":1"))).ok());
  }
  EXPECT_EQ(Dropped(), 2);
  EXPECT_EQ(Relayed("candidate"), 5);
  std::vector<v1::SignalMessage> taken = TakeAll(MustWatch(std::make_shared<RecordingWatcher>()));
  ASSERT_EQ(taken.size(), 3u);
  EXPECT_EQ(taken[0].candidate().address(), "10.0.0.3:1");
  EXPECT_EQ(taken[2].candidate().address(), "10.0.0.5:1");
}

TEST_F(SignalHubTest, NewerWatchReplacesTheOlderOne) {
  auto first = std::make_shared<RecordingWatcher>();
  const uint64_t first_id = MustWatch(first);
  auto second = std::make_shared<RecordingWatcher>();
  const uint64_t second_id = MustWatch(second);
  ASSERT_EQ(first->ended().size(), 1u);
  EXPECT_TRUE(absl::IsAborted(first->ended()[0])) << first->ended()[0];
  ASSERT_TRUE(hub_->Signal(kConnector, Answer(kSession)).ok());
  EXPECT_EQ(first->wakes(), 0);
  EXPECT_EQ(second->wakes(), 1);
  EXPECT_EQ(hub_->Take(kSession, first_id), std::nullopt);
  // The old stream's Unwatch does not remove the newer watch.
  hub_->Unwatch(kSession, first_id);
  EXPECT_EQ(TakeAll(second_id).size(), 1u);
  EXPECT_THAT(second->ended(), IsEmpty());
}

TEST_F(SignalHubTest, MessagesSentBetweenWatchesWaitForTheNextOne) {
  const uint64_t first = MustWatch(std::make_shared<RecordingWatcher>());
  hub_->Unwatch(kSession, first);
  EXPECT_EQ(hub_->mailboxes(), 0u) << "an empty, unwatched mailbox is dropped";
  ASSERT_TRUE(hub_->Signal(kConnector, Answer(kSession)).ok());
  EXPECT_EQ(hub_->Take(kSession, first), std::nullopt);
  EXPECT_EQ(TakeAll(MustWatch(std::make_shared<RecordingWatcher>())).size(), 1u);
}

TEST_F(SignalHubTest, SweepEndsWatchesOfExpiredAndRemovedSessionsOnly) {
  {
    MutexLock lock(&mu_);
    sessions_[0x6666] = Parties(kTenant, "laptop", "edge-1", kStart + absl::Minutes(5));
    sessions_[0x7777] = Parties(kTenant, "laptop", "edge-1", kStart + absl::Hours(1));
  }
  auto live = std::make_shared<RecordingWatcher>();
  auto expiring = std::make_shared<RecordingWatcher>();
  auto removed = std::make_shared<RecordingWatcher>();
  MustWatch(live, kSession);
  MustWatch(expiring, 0x6666);
  MustWatch(removed, 0x7777);
  ASSERT_TRUE(hub_->Signal(kConnector, Answer(0x6666)).ok());

  hub_->Sweep();
  EXPECT_THAT(expiring->ended(), IsEmpty());
  Advance(absl::Minutes(4));  // 0x6666 expires now.
  {
    MutexLock lock(&mu_);
    sessions_.erase(0x7777);
  }
  hub_->Sweep();
  ASSERT_EQ(expiring->ended().size(), 1u);
  EXPECT_TRUE(absl::IsFailedPrecondition(expiring->ended()[0])) << expiring->ended()[0];
  EXPECT_THAT(expiring->ended()[0].message(), HasSubstr("expired at"));
  ASSERT_EQ(removed->ended().size(), 1u);
  EXPECT_TRUE(absl::IsFailedPrecondition(removed->ended()[0])) << removed->ended()[0];
  EXPECT_THAT(live->ended(), IsEmpty());
  EXPECT_EQ(hub_->mailboxes(), 1u);
  EXPECT_TRUE(absl::IsFailedPrecondition(hub_->Signal(kConnector, Answer(0x6666))));
}

// A watcher that takes messages from inside Wake, as the WatchSignals stream
// does, counting what it received.
class TakingWatcher : public SignalWatcher {
 public:
  void Bind(SignalHub* hub, uint64_t watch_id) {
    hub_ = hub;
    watch_id_.store(watch_id);
  }
  void Wake() override {
    while (hub_->Take(kSession, watch_id_.load()).has_value()) received_.fetch_add(1);
  }
  void End(const absl::Status&) override {}
  int received() const { return received_.load(); }

 private:
  SignalHub* hub_ = nullptr;
  std::atomic<uint64_t> watch_id_{0};
  std::atomic<int> received_{0};
};

TEST_F(SignalHubTest, ConcurrentSendersNeitherLoseNorDuplicateMessages) {
  hub_ = MakeHub(8);
  auto watcher = std::make_shared<TakingWatcher>();
  watcher->Bind(hub_.get(), 0);
  watcher->Bind(hub_.get(), MustWatch(watcher));
  constexpr int kThreads = 4;
  constexpr int kPerThread = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this] {
      for (int i = 0; i < kPerThread; ++i) {
        EXPECT_TRUE(hub_->Signal(kConnector, Candidate(kSession)).ok());
      }
    });
  }
  std::thread agent([this] {
    for (int i = 0; i < kPerThread; ++i) EXPECT_TRUE(hub_->Signal(kAgent, Offer(kSession)).ok());
  });
  for (std::thread& t : threads) t.join();
  agent.join();
  watcher->Wake();  // Whatever arrived after the last wake's Take loop.
  EXPECT_EQ(watcher->received() + Dropped(), kThreads * kPerThread);
  EXPECT_EQ(link_->sent().size(), static_cast<size_t>(kPerThread));
}

// The Intermediate's wiring: sessions from a real ServiceRegistry, swept on its changes.
class RegistrySignalHubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServiceRegistry::Options options;
    options.now = [this] { return Now(); };
    options.session_ttl = absl::Minutes(10);
    absl::StatusOr<std::unique_ptr<ServiceRegistry>> registry =
        ServiceRegistry::Create(&store_, &metrics_, options);
    ASSERT_TRUE(registry.ok()) << registry.status();
    registry_ = *std::move(registry);
    hub_ = std::make_unique<SignalHub>(registry_.get(), &metrics_, [this] { return Now(); });

    const SpiffeId connector{"ferry.local", kTenant, "connector", "edge-1"};
    v1::Hello hello;
    v1::ServiceSpec* spec = hello.add_services();
    spec->set_name("echo");
    spec->set_protocol(v1::PROTOCOL_UDP);
    spec->set_port(9000);
    spec->add_backends()->set_address("127.0.0.1:9000");
    absl::StatusOr<uint64_t> serial =
        registry_->AttachConnector(connector, "ipv4:127.0.0.1:1", hello, link_);
    ASSERT_TRUE(serial.ok()) << serial.status();
    serial_ = *serial;
    ASSERT_TRUE(registry_->SetWatcherAddresses(connector, 1, "127.0.0.1:7000", "").ok());
    ASSERT_TRUE(registry_
                    ->SetWatcherAddresses(SpiffeId{"ferry.local", "ops", "relay", "relay-1"}, 2,
                                          "127.0.0.1:6000", "")
                    .ok());
    absl::StatusOr<v1::OpenSessionResponse> opened = registry_->OpenSession(kAgent.id, "echo");
    ASSERT_TRUE(opened.ok()) << opened.status();
    session_ = opened->agent_hop().session_id();
  }

  absl::Time Now() const { return absl::FromUnixNanos(now_nanos_.load()); }

  std::atomic<int64_t> now_nanos_{absl::ToUnixNanos(kStart)};
  uint64_t serial_ = 0;
  controlplane::InMemoryStateStore store_;
  IntermediateMetrics metrics_{std::make_shared<prometheus::Registry>()};
  std::shared_ptr<RecordingLink> link_ = std::make_shared<RecordingLink>();
  std::unique_ptr<ServiceRegistry> registry_;
  std::unique_ptr<SignalHub> hub_;
  uint64_t session_ = 0;
};

TEST_F(RegistrySignalHubTest, RelaysForRealSessionsAndEndsWatchesWhenTheyExpire) {
  ASSERT_TRUE(hub_->Signal(kAgent, Offer(session_)).ok());
  std::vector<v1::ConnectorCommand> sent = link_->sent();
  ASSERT_FALSE(sent.empty());
  EXPECT_EQ(sent.back().signal().session_id(), session_);
  ASSERT_TRUE(hub_->Signal(kConnector, Answer(session_)).ok());
  auto watcher = std::make_shared<RecordingWatcher>();
  absl::StatusOr<uint64_t> watch = hub_->Watch(kAgent, session_, watcher);
  ASSERT_TRUE(watch.ok()) << watch.status();
  EXPECT_TRUE(hub_->Take(session_, *watch).has_value());
  EXPECT_TRUE(absl::IsPermissionDenied(hub_->Signal(As("agent", "phone"), Offer(session_))));

  now_nanos_.store(absl::ToUnixNanos(kStart + absl::Minutes(10)));
  registry_->Tick();  // Removes the session; the hub's subscription sweeps.
  ASSERT_EQ(watcher->ended().size(), 1u);
  EXPECT_TRUE(absl::IsFailedPrecondition(watcher->ended()[0])) << watcher->ended()[0];
  // Removed from the registry, the session is still known to have expired.
  absl::Status late = hub_->Signal(kAgent, Candidate(session_));
  EXPECT_TRUE(absl::IsFailedPrecondition(late)) << late;
  EXPECT_THAT(late.message(), HasSubstr("expired at"));
}

TEST_F(RegistrySignalHubTest, AgentSignalIsUnavailableWhileTheConnectorIsDetached) {
  registry_->DetachConnector(SpiffeId{"ferry.local", kTenant, "connector", "edge-1"}, serial_);
  absl::Status s = hub_->Signal(kAgent, Offer(session_));
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
}

}  // namespace
}  // namespace ferry
