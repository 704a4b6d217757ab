// ferry-loadgen: frames per second through one ferry-relay, with the relay
// measured alone. The loadgen plays both ends of the relay itself:
//
//  - the connector end: with a connector certificate it opens a
//    ConnectorSession (Hello with one UDP service, --service, whose backend is
//    never contacted), watches its routes announcing its own UDP sink as its
//    data-plane address, and learns the connector hop keys of sessions from
//    its route snapshots;
//  - the agent end: with an agent certificate of the same tenant it opens
//    --sessions sessions to that service (Sessions.OpenSession), probes the
//    relay until it answers on each, and opens --flows flows.
//
// Then --senders threads send DATA frames of --payload bytes round-robin over
// the flows to the relay for --duration (open loop, --rate frames/s or as fast
// as possible), and the sink counts the frames that authenticate under the
// connector hop keys. It prints one human line (and with --json a JSON line):
// frames sent and delivered per second, loss, Gbit/s of payload, drops at the
// sink and (--relay_metrics) at the relay, the kernel's UDP receive-buffer
// drops, and CPU used (--relay_pid for the relay's).
//
// Exit status: 0 after a run that delivered frames; 1 when setup failed or
// nothing was delivered; 2 for bad flags.
#include <sys/resource.h>
#include <sys/time.h>

#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/loadgen_report.h"
#include "bench/loadgen_traffic.h"
#include "common/intermediate_channel.h"
#include "common/mutex_lock.h"
#include "dataplane/connector_session_client.h"
#include "dataplane/drop_reason.h"
#include "dataplane/route_watcher.h"
#include "dataplane/socket_address.h"
#include "ferry/v1/sessions.grpc.pb.h"
#include "glog/logging.h"

ABSL_FLAG(std::string, intermediate, "127.0.0.1:7443", "Intermediate gRPC address.");
ABSL_FLAG(std::string, ca_cert, "", "PEM CA certificate of the fabric.");
ABSL_FLAG(std::string, agent_cert, "", "PEM certificate of the agent end (role agent).");
ABSL_FLAG(std::string, agent_key, "", "PEM private key of the agent end.");
ABSL_FLAG(std::string, connector_cert, "",
          "PEM certificate of the connector end (role connector, the agent's tenant).");
ABSL_FLAG(std::string, connector_key, "", "PEM private key of the connector end.");
ABSL_FLAG(std::string, service, "loadgen-sink",
          "Name of the UDP service the connector end announces and the agent end opens.");
ABSL_FLAG(std::string, sink_listen, "127.0.0.1:0",
          "UDP address of the connector end's sink (announced to the Intermediate).");
ABSL_FLAG(uint32_t, payload, 64, "Payload bytes per frame (at least 12: the flow/sequence stamp).");
ABSL_FLAG(uint32_t, flows, 256, "Flows, spread over the sessions and the sender threads.");
ABSL_FLAG(uint32_t, sessions, 1, "Sessions to open (at most 64, the Intermediate's default cap).");
ABSL_FLAG(uint32_t, senders, 1, "Sender threads, each with its own UDP socket.");
ABSL_FLAG(uint32_t, sink_threads, 1, "Sink threads, each with its own (reuseport) UDP socket.");
ABSL_FLAG(uint32_t, batch, 64, "Frames per sendmmsg.");
ABSL_FLAG(double, rate, 0, "Frames per second over all senders; 0 sends as fast as possible.");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(5), "How long to send (at most 60s).");
ABSL_FLAG(absl::Duration, setup_timeout, absl::Seconds(30),
          "Bound on setup: registration, sessions, relay probes and opening the flows.");
ABSL_FLAG(bool, json, false, "Also print the result as one JSON line.");
ABSL_FLAG(std::string, relay_metrics, "",
          "The relay's metrics URL, e.g. http://127.0.0.1:7481/metrics, to report its drops "
          "by reason during the run (optional).");
ABSL_FLAG(int32_t, relay_pid, 0, "The relay's PID, to report the CPU it used (optional).");

namespace ferry::bench {
namespace {

constexpr absl::Duration kMaxDuration = absl::Seconds(60);
constexpr uint32_t kMaxSessions = 64;
constexpr uint32_t kMaxThreads = 64;
constexpr uint32_t kMaxBatch = 1024;
// Once the senders stop, how long frames still in flight may take to arrive.
constexpr absl::Duration kMaxDrain = absl::Seconds(2);
constexpr absl::Duration kQuietForDrain = absl::Milliseconds(150);

// What the connector end learns from the Intermediate, written by the
// session client's and the route watcher's threads.
class ConnectorView {
 public:
  void OnWelcome(const v1::Welcome& welcome, const std::string& service) {
    MutexLock lock(&mu_);
    for (const v1::Service& s : welcome.services()) {
      if (s.spec().name() == service) service_id_ = s.id();
    }
    welcomed_ = true;
  }

  absl::Status OnSnapshot(const v1::RouteSnapshot& snapshot) {
    MutexLock lock(&mu_);
    hops_.clear();
    for (const v1::RouteSession& session : snapshot.sessions()) {
      Hop& hop = hops_[session.connector_hop().session_id()];
      hop.service_id = session.service_id();
      hop.key = session.connector_hop().key();
    }
    return absl::OkStatus();
  }

  // 0 until the Intermediate welcomed the connector end with the service.
  uint32_t service_id() {
    MutexLock lock(&mu_);
    return welcomed_ ? service_id_ : 0;
  }

  // Connector hop ids of `service_id`'s sessions in the latest snapshot.
  std::set<uint64_t> HopIds(uint32_t service_id) {
    MutexLock lock(&mu_);
    std::set<uint64_t> ids;
    for (const auto& [id, hop] : hops_) {
      if (hop.service_id == service_id) ids.insert(id);
    }
    return ids;
  }

  // The hops of `service_id` that are not in `old`.
  std::vector<ConnectorHop> NewHops(uint32_t service_id, const std::set<uint64_t>& old) {
    MutexLock lock(&mu_);
    std::vector<ConnectorHop> hops;
    for (const auto& [id, hop] : hops_) {
      if (hop.service_id == service_id && old.count(id) == 0) hops.push_back({id, hop.key});
    }
    return hops;
  }

 private:
  struct Hop {
    uint32_t service_id = 0;
    std::string key;
  };
  absl::Mutex mu_;
  bool welcomed_ ABSL_GUARDED_BY(mu_) = false;
  uint32_t service_id_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<uint64_t, Hop> hops_ ABSL_GUARDED_BY(mu_);
};

// Polls `done` every 20 ms until it is true (OK) or `deadline` passes
// (DEADLINE_EXCEEDED "<what>: <detail()>").
template <typename Done, typename Detail>
absl::Status WaitUntil(absl::Time deadline, const std::string& what, Done done, Detail detail) {
  while (!done()) {
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("timed out waiting for ", what, ": ", detail()));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::OkStatus();
}

absl::Status ValidateFlags() {
  const uint32_t payload = absl::GetFlag(FLAGS_payload);
  if (payload < kMinPayloadSize || payload > kMaxPayloadSize) {
    return absl::InvalidArgumentError(absl::StrCat("--payload must be ", kMinPayloadSize, " to ",
                                                   kMaxPayloadSize, " bytes, not ", payload));
  }
  if (absl::GetFlag(FLAGS_flows) < 1 || absl::GetFlag(FLAGS_flows) > (1u << 20)) {
    return absl::InvalidArgumentError("--flows must be 1 to 1048576");
  }
  const uint32_t sessions = absl::GetFlag(FLAGS_sessions);
  if (sessions < 1 || sessions > kMaxSessions) {
    return absl::InvalidArgumentError(absl::StrCat("--sessions must be 1 to ", kMaxSessions));
  }
  if (absl::GetFlag(FLAGS_flows) < sessions) {
    return absl::InvalidArgumentError("--flows must be at least --sessions (a flow per session)");
  }
  for (const auto* flag : {&FLAGS_senders, &FLAGS_sink_threads}) {
    const uint32_t n = absl::GetFlag(*flag);
    if (n < 1 || n > kMaxThreads) {
      return absl::InvalidArgumentError(
          absl::StrCat("--senders and --sink_threads must be 1 to ", kMaxThreads, ", not ", n));
    }
  }
  if (absl::GetFlag(FLAGS_batch) < 1 || absl::GetFlag(FLAGS_batch) > kMaxBatch) {
    return absl::InvalidArgumentError(absl::StrCat("--batch must be 1 to ", kMaxBatch));
  }
  if (!(absl::GetFlag(FLAGS_rate) >= 0)) {
    return absl::InvalidArgumentError("--rate must be 0 (as fast as possible) or positive");
  }
  const absl::Duration duration = absl::GetFlag(FLAGS_duration);
  if (duration <= absl::ZeroDuration() || duration > kMaxDuration) {
    return absl::InvalidArgumentError(absl::StrCat("--duration must be more than 0 and at most ",
                                                   absl::FormatDuration(kMaxDuration)));
  }
  if (absl::GetFlag(FLAGS_setup_timeout) <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--setup_timeout must be positive");
  }
  for (const auto* flag : {&FLAGS_ca_cert, &FLAGS_agent_cert, &FLAGS_agent_key,
                           &FLAGS_connector_cert, &FLAGS_connector_key}) {
    if (absl::GetFlag(*flag).empty()) {
      return absl::InvalidArgumentError(
          "--ca_cert, --agent_cert, --agent_key, --connector_cert and --connector_key are all "
          "required (e.g. from `ferryctl pki issue`)");
    }
  }
  const std::string metrics = absl::GetFlag(FLAGS_relay_metrics);
  if (!metrics.empty() && !absl::StartsWith(metrics, "http://")) {
    return absl::InvalidArgumentError(
        "--relay_metrics must be an http:// URL, e.g. http://127.0.0.1:7481/metrics");
  }
  return absl::OkStatus();
}

// The relay's ferry_relay_drops_total by reason (non-zero only) from `url`.
absl::StatusOr<ReasonCounts> ScrapeRelayDrops(const std::string& url) {
  absl::StatusOr<std::string> text = HttpGetBody(url, absl::Seconds(5));
  if (!text.ok()) return text.status();
  return ParseCountsByReason(*text, "ferry_relay_drops_total");
}

double OwnCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// Kernel and relay counters read at the start and at the end of the run.
struct Observations {
  std::optional<ReasonCounts> relay_drops;
  std::optional<uint64_t> udp_rcvbuf_errors;
  std::optional<double> relay_cpu_seconds;
  double loadgen_cpu_seconds = 0;

  static Observations Take(bool with_drops) {
    Observations o;
    const std::string url = absl::GetFlag(FLAGS_relay_metrics);
    if (with_drops && !url.empty()) {
      absl::StatusOr<ReasonCounts> drops = ScrapeRelayDrops(url);
      if (drops.ok()) {
        o.relay_drops = *std::move(drops);
      } else {
        LOG(WARNING) << "Cannot read the relay's drops from " << url << ": " << drops.status();
      }
    }
    if (absl::StatusOr<uint64_t> errors = ReadUdpRcvbufErrors(); errors.ok()) {
      o.udp_rcvbuf_errors = *errors;
    }
    if (const int pid = absl::GetFlag(FLAGS_relay_pid); pid > 0) {
      absl::StatusOr<double> cpu = ReadProcessCpuSeconds(pid);
      if (cpu.ok()) {
        o.relay_cpu_seconds = *cpu;
      } else {
        LOG(WARNING) << "Cannot read the CPU time of --relay_pid " << pid << ": " << cpu.status();
      }
    }
    o.loadgen_cpu_seconds = OwnCpuSeconds();
    return o;
  }
};

// Opens one session as the agent end, retrying while the service is not
// routed yet (NOT_FOUND) or no relay or connector address is known
// (UNAVAILABLE).
absl::StatusOr<v1::OpenSessionResponse> OpenOneSession(v1::Sessions::Stub& stub,
                                                       const std::string& service,
                                                       absl::Time deadline) {
  v1::OpenSessionRequest request;
  request.set_service(service);
  for (;;) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(std::min(deadline, absl::Now() + absl::Seconds(10))));
    v1::OpenSessionResponse response;
    const grpc::Status status = stub.OpenSession(&context, request, &response);
    if (status.ok()) return response;
    const bool retry = status.error_code() == grpc::StatusCode::UNAVAILABLE ||
                       status.error_code() == grpc::StatusCode::NOT_FOUND;
    if (!retry || absl::Now() >= deadline) {
      return absl::Status(
          static_cast<absl::StatusCode>(status.error_code()),
          absl::StrCat("Sessions.OpenSession(\"", service, "\"): ", status.error_message()));
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
}

absl::StatusOr<LoadgenReport> Run() {
  const std::string service = absl::GetFlag(FLAGS_service);
  const size_t payload = absl::GetFlag(FLAGS_payload);
  const uint32_t flows = absl::GetFlag(FLAGS_flows);
  const uint32_t session_count = absl::GetFlag(FLAGS_sessions);
  const uint32_t sender_count = absl::GetFlag(FLAGS_senders);
  const double rate = absl::GetFlag(FLAGS_rate);
  const absl::Time setup_deadline = absl::Now() + absl::GetFlag(FLAGS_setup_timeout);

  // The connector end: a sink, a ConnectorSession and a route watcher.
  absl::StatusOr<std::unique_ptr<FrameSink>> sink =
      FrameSink::Create(absl::GetFlag(FLAGS_sink_listen),
                        static_cast<int>(absl::GetFlag(FLAGS_sink_threads)), flows, payload);
  if (!sink.ok()) return sink.status();
  const std::string intermediate = absl::GetFlag(FLAGS_intermediate);
  absl::StatusOr<std::shared_ptr<grpc::Channel>> connector_channel = DialIntermediate(
      intermediate, TlsFiles{absl::GetFlag(FLAGS_ca_cert), absl::GetFlag(FLAGS_connector_cert),
                             absl::GetFlag(FLAGS_connector_key)});
  if (!connector_channel.ok()) return connector_channel.status();
  ConnectorView view;
  ConnectorSessionClient::Callbacks callbacks;
  callbacks.on_welcome = [&view, service](const v1::Welcome& welcome) {
    view.OnWelcome(welcome, service);
  };
  ConnectorSessionClient session_client(*connector_channel, "ferry-loadgen", callbacks);
  v1::ServiceSpec spec;
  spec.set_name(service);
  spec.set_protocol(v1::PROTOCOL_UDP);
  spec.add_backends()->set_address("127.0.0.1:9");  // discard; the sink stands in for it
  session_client.SetServices({spec});
  RouteWatcher watcher(
      *connector_channel, "ferry-loadgen",
      [&view](const v1::RouteSnapshot& snapshot) { return view.OnSnapshot(snapshot); });
  watcher.SetDataAddresses((*sink)->address(), "");
  session_client.Start();
  watcher.Start();

  absl::Status status = WaitUntil(
      setup_deadline,
      absl::StrCat("the Intermediate (", intermediate, ") to welcome service \"", service,
                   "\" and send the connector end its routes"),
      [&] { return view.service_id() != 0 && watcher.applied_version() > 0; },
      [&] {
        const std::string error = session_client.last_error();
        return error.empty() ? std::string("no answer yet") : error;
      });
  if (!status.ok()) return status;
  const uint32_t service_id = view.service_id();
  const std::set<uint64_t> old_hops = view.HopIds(service_id);

  // The agent end: sessions.
  absl::StatusOr<std::shared_ptr<grpc::Channel>> agent_channel = DialIntermediate(
      intermediate, TlsFiles{absl::GetFlag(FLAGS_ca_cert), absl::GetFlag(FLAGS_agent_cert),
                             absl::GetFlag(FLAGS_agent_key)});
  if (!agent_channel.ok()) return agent_channel.status();
  std::unique_ptr<v1::Sessions::Stub> sessions_stub = v1::Sessions::NewStub(*agent_channel);
  std::vector<AgentSession> sessions;
  for (uint32_t i = 0; i < session_count; ++i) {
    absl::StatusOr<v1::OpenSessionResponse> opened =
        OpenOneSession(*sessions_stub, service, setup_deadline);
    if (!opened.ok()) return opened.status();
    absl::StatusOr<dataplane::SocketAddress> relay =
        dataplane::ParseSocketAddress(opened->relay_address(), /*resolve=*/true);
    if (!relay.ok()) return relay.status();
    AgentSession session;
    session.session_id = opened->agent_hop().session_id();
    session.service_id = opened->service_id();
    session.key = opened->agent_hop().key();
    session.relay = *relay;
    sessions.push_back(std::move(session));
  }
  const std::string relay_address = sessions[0].relay.ToString();
  if (sessions[0].service_id != service_id) {
    return absl::InternalError(absl::StrCat("the Welcome gave service \"", service, "\" id ",
                                            service_id, " but OpenSession gave ",
                                            sessions[0].service_id));
  }

  // The connector end learns the sessions' connector hops from its routes.
  std::vector<ConnectorHop> hops;
  status = WaitUntil(
      setup_deadline, "the connector end's routes to hold the new sessions",
      [&] {
        hops = view.NewHops(service_id, old_hops);
        return hops.size() >= session_count;
      },
      [&] { return absl::StrCat(hops.size(), " of ", session_count, " sessions arrived"); });
  if (!status.ok()) return status;
  if (status = (*sink)->Start(hops); !status.ok()) return status;

  // Senders, each owning every sender_count-th flow.
  std::vector<std::unique_ptr<FlowSender>> senders;
  for (uint32_t s = 0; s < sender_count; ++s) {
    std::vector<uint32_t> owned;
    for (uint32_t f = s; f < flows; f += sender_count) owned.push_back(f);
    absl::StatusOr<std::unique_ptr<FlowSender>> sender =
        FlowSender::Create(sessions, std::move(owned), payload, absl::GetFlag(FLAGS_batch));
    if (!sender.ok()) return sender.status();
    senders.push_back(*std::move(sender));
  }

  // The relay holds the sessions once it answers their probes.
  FlowSender& prober = *senders[0];
  absl::Time next_probe = absl::InfinitePast();
  status = WaitUntil(
      setup_deadline, absl::StrCat("the relay at ", relay_address, " to answer probes"),
      [&] {
        prober.ReceiveReturns();
        size_t answered = 0;
        for (size_t i = 0; i < sessions.size(); ++i) answered += prober.probe_answered(i);
        if (answered == sessions.size()) return true;
        if (absl::Now() >= next_probe) {
          prober.SendProbes();
          next_probe = absl::Now() + absl::Milliseconds(100);
        }
        return false;
      },
      [] { return std::string("no PROBE_ACK on some session"); });
  if (!status.ok()) return status;

  // Open every flow: a DATA frame with kFlagOpen, again on each flow that has
  // not reached the sink after a while.
  FrameSink& frame_sink = **sink;
  absl::Time next_open = absl::InfinitePast();
  status = WaitUntil(
      setup_deadline, "every flow to reach the sink through the relay",
      [&] {
        for (auto& sender : senders) sender->ReceiveReturns();
        if (frame_sink.delivered_flows() == flows) return true;
        if (absl::Now() >= next_open) {
          for (auto& sender : senders) {
            sender->SendOpens([&](uint32_t index) { return frame_sink.delivered(index); });
          }
          next_open = absl::Now() + absl::Milliseconds(250);
        }
        return false;
      },
      [&] {
        return absl::StrCat(frame_sink.delivered_flows(), " of ", flows,
                            " flows delivered (see the relay's drops)");
      });
  if (!status.ok()) return status;

  // The run.
  const Observations before = Observations::Take(/*with_drops=*/true);
  const SinkTotals sink_before = frame_sink.Totals();
  const absl::Time start = absl::Now();
  const absl::Time until = start + absl::GetFlag(FLAGS_duration);
  std::vector<SendTotals> totals(senders.size());
  std::vector<std::thread> threads;
  for (size_t s = 0; s < senders.size(); ++s) {
    threads.emplace_back([&, s] {
      totals[s] = senders[s]->Blast(until, rate / static_cast<double>(senders.size()));
    });
  }
  for (std::thread& thread : threads) thread.join();
  const absl::Time end = absl::Now();
  const Observations at_end = Observations::Take(/*with_drops=*/false);

  // Frames still in flight: wait until the sink has been quiet for a moment.
  uint64_t last = frame_sink.Totals().delivered;
  absl::Time quiet_since = absl::Now();
  const absl::Time drain_deadline = end + kMaxDrain;
  while (absl::Now() < drain_deadline && absl::Now() - quiet_since < kQuietForDrain) {
    absl::SleepFor(absl::Milliseconds(25));
    const uint64_t now_delivered = frame_sink.Totals().delivered;
    if (now_delivered != last) {
      last = now_delivered;
      quiet_since = absl::Now();
    }
  }
  const SinkTotals sink_after = frame_sink.Totals();
  const Observations after = Observations::Take(/*with_drops=*/true);
  frame_sink.Stop();
  watcher.Stop();
  session_client.Stop();

  LoadgenReport report;
  report.payload_size = payload;
  report.flows = flows;
  report.sessions = sessions.size();
  report.senders = static_cast<int>(senders.size());
  report.rate_limit = rate;
  report.seconds = absl::ToDoubleSeconds(end - start);
  for (const SendTotals& t : totals) {
    report.sent += t.sent;
    report.send_failed += t.send_failed;
    report.closes += t.closes;
    report.reopened += t.reopened;
  }
  report.delivered = sink_after.delivered - sink_before.delivered;
  report.payload_bytes = sink_after.payload_bytes - sink_before.payload_bytes;
  for (dataplane::DropReason reason : dataplane::AllDropReasons()) {
    const size_t i = static_cast<size_t>(reason);
    if (sink_after.drops[i] > sink_before.drops[i]) {
      report.sink_drops[std::string(dataplane::DropReasonName(reason))] =
          sink_after.drops[i] - sink_before.drops[i];
    }
  }
  if (before.relay_drops && after.relay_drops) {
    report.relay_drops = CountsDelta(*before.relay_drops, *after.relay_drops);
  }
  if (before.udp_rcvbuf_errors && after.udp_rcvbuf_errors) {
    report.udp_rcvbuf_errors = *after.udp_rcvbuf_errors - *before.udp_rcvbuf_errors;
  }
  if (before.relay_cpu_seconds && at_end.relay_cpu_seconds) {
    report.relay_cpu_seconds = *at_end.relay_cpu_seconds - *before.relay_cpu_seconds;
  }
  report.loadgen_cpu_seconds = at_end.loadgen_cpu_seconds - before.loadgen_cpu_seconds;
  return report;
}

}  // namespace
}  // namespace ferry::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "ferry-loadgen: frames per second through a ferry-relay, playing both the agent and the "
      "connector end.\n"
      "  ferry-loadgen --intermediate 127.0.0.1:7443 --ca_cert ca.crt --agent_cert a.crt "
      "--agent_key a.key --connector_cert c.crt --connector_key c.key --payload 1400 --json");
  absl::ParseCommandLine(argc, argv);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  if (absl::Status s = ferry::bench::ValidateFlags(); !s.ok()) {
    std::fprintf(stderr, "ferry-loadgen: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  absl::StatusOr<ferry::bench::LoadgenReport> report = ferry::bench::Run();
  if (!report.ok()) {
    std::fprintf(stderr, "ferry-loadgen: %s\n", report.status().ToString().c_str());
    return 1;
  }
  std::printf("%s\n", ferry::bench::HumanLine(*report).c_str());
  if (absl::GetFlag(FLAGS_json)) std::printf("%s\n", ferry::bench::JsonLine(*report).c_str());
  std::fflush(stdout);
  if (report->delivered == 0) {
    std::fprintf(stderr, "ferry-loadgen: no frame reached the sink during the run\n");
    return 1;
  }
  return 0;
}
