#include "dataplane/connector_backends.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/mutex_lock.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace ferry::dataplane {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// A TCP listener on 127.0.0.1 that the test can close (a backend that dies).
class Listener {
 public:
  // On `port` (0: any free one).
  explicit Listener(int port = 0) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    const int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons(static_cast<uint16_t>(port));
    bind(fd_, reinterpret_cast<sockaddr*>(&sin), sizeof(sin));
    listen(fd_, 64);
    socklen_t len = sizeof(sin);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&sin), &len);
    port_ = ntohs(sin.sin_port);
  }
  ~Listener() { Close(); }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// Records every report; waits for one that satisfies a predicate.
class Reports {
 public:
  void Add(const std::vector<v1::HealthReport>& reports) {
    MutexLock lock(&mu_);
    for (const v1::HealthReport& report : reports) all_.push_back(report);
  }
  // The latest report of `service` whose backends' health is `healths`, in order.
  bool WaitFor(const std::string& service, std::vector<v1::HealthState> healths,
               absl::Duration timeout = absl::Seconds(10)) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      {
        MutexLock lock(&mu_);
        for (auto it = all_.rbegin(); it != all_.rend(); ++it) {
          if (it->service() != service) continue;
          std::vector<v1::HealthState> got;
          for (const v1::BackendStatus& b : it->backends()) got.push_back(b.health());
          if (got == healths) return true;
          break;
        }
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  }

 private:
  absl::Mutex mu_;
  std::vector<v1::HealthReport> all_ ABSL_GUARDED_BY(mu_);
};

v1::ServiceSpec Spec(const std::string& text) {
  v1::ServiceSpec spec;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &spec)) << text;
  return spec;
}

std::unique_ptr<ConnectorBackends> Start(Reports* reports) {
  absl::StatusOr<std::unique_ptr<ConnectorBackends>> backends = ConnectorBackends::Start(
      ConnectorBackends::Options{},
      [reports](const std::vector<v1::HealthReport>& r) { reports->Add(r); });
  EXPECT_TRUE(backends.ok()) << backends.status();
  return backends.ok() ? *std::move(backends) : nullptr;
}

v1::RouteSnapshot SnapshotWith(const std::string& name) {
  v1::RouteSnapshot snapshot;
  v1::RouteService* route = snapshot.add_services();
  route->set_name(name);
  route->add_backends("192.0.2.1:1");  // The Intermediate's view, replaced.
  return snapshot;
}

TEST(ConnectorBackendsTest, UncheckedServiceIsReportedUnknownAndRouted) {
  Reports reports;
  std::unique_ptr<ConnectorBackends> backends = Start(&reports);
  ASSERT_NE(backends, nullptr);
  backends->SetConfigServices({Spec(R"pb(name: "web"
                                         protocol: PROTOCOL_TCP
                                         backends { address: "127.0.0.1:8080" }
                                         backends { address: "127.0.0.1:8081" })pb")});
  ASSERT_TRUE(reports.WaitFor("web", {v1::HEALTH_STATE_UNKNOWN, v1::HEALTH_STATE_UNKNOWN}));
  v1::RouteSnapshot snapshot = SnapshotWith("web");
  backends->ApplyTo(&snapshot);
  EXPECT_THAT(snapshot.services(0).backends(), ElementsAre("127.0.0.1:8080", "127.0.0.1:8081"));
  // A service this object does not know keeps the snapshot's backends.
  v1::RouteSnapshot other = SnapshotWith("other");
  backends->ApplyTo(&other);
  EXPECT_THAT(other.services(0).backends(), ElementsAre("192.0.2.1:1"));
}

TEST(ConnectorBackendsTest, DeadBackendLeavesRoutingAndComesBack) {
  Listener alive;
  auto dead = std::make_unique<Listener>();
  const std::string dead_address = dead->address();
  Reports reports;
  std::unique_ptr<ConnectorBackends> backends = Start(&reports);
  ASSERT_NE(backends, nullptr);
  const v1::ServiceSpec spec = Spec(absl::StrCat(R"pb(name: "web"
                                                      protocol: PROTOCOL_TCP
                                                      health_check {
                                                        interval { nanos: 100000000 }
                                                        timeout { nanos: 50000000 }
                                                        unhealthy_threshold: 2
                                                        healthy_threshold: 1
                                                        tcp {}
                                                      }
                                                      backends { address: ")pb",
                                                 alive.address(), R"pb(" }
                                                                       backends { address: ")pb",
                                                 dead_address, R"pb(" })pb"));
  backends->SetConfigServices({spec});
  ASSERT_TRUE(reports.WaitFor("web", {v1::HEALTH_STATE_HEALTHY, v1::HEALTH_STATE_HEALTHY}));

  dead->Close();
  ASSERT_TRUE(reports.WaitFor("web", {v1::HEALTH_STATE_HEALTHY, v1::HEALTH_STATE_UNHEALTHY}));
  v1::RouteSnapshot snapshot = SnapshotWith("web");
  backends->ApplyTo(&snapshot);
  EXPECT_THAT(snapshot.services(0).backends(), ElementsAre(alive.address()));
  const auto view = backends->View();
  ASSERT_EQ(view.at("web").size(), 2u);
  EXPECT_EQ(view.at("web")[1].source(), dead_address);

  // The same port listening again: back in.
  const int port = dead->port();
  dead.reset();
  Listener again(port);
  ASSERT_EQ(again.address(), dead_address);
  EXPECT_TRUE(reports.WaitFor("web", {v1::HEALTH_STATE_HEALTHY, v1::HEALTH_STATE_HEALTHY}));
}

TEST(ConnectorBackendsTest, ApiServicesAreKeptApartFromConfigServices) {
  Reports reports;
  std::unique_ptr<ConnectorBackends> backends = Start(&reports);
  ASSERT_NE(backends, nullptr);
  backends->SetConfigServices({Spec(R"pb(name: "from-file"
                                         protocol: PROTOCOL_UDP
                                         backends { address: "127.0.0.1:9000" })pb")});
  backends->SetApiServices({Spec(R"pb(name: "from-api"
                                      protocol: PROTOCOL_UDP
                                      backends { address: "127.0.0.1:9001" })pb")});
  ASSERT_TRUE(reports.WaitFor("from-api", {v1::HEALTH_STATE_UNKNOWN}));
  // A config reload does not drop the API services, and vice versa.
  backends->SetConfigServices({});
  for (absl::Time deadline = absl::Now() + absl::Seconds(5);
       backends->View().count("from-file") != 0 && absl::Now() < deadline;) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(backends->View().count("from-file"), 0u);
  EXPECT_EQ(backends->View().count("from-api"), 1u);
}

TEST(ConnectorBackendsTest, IcmpBackendsAreBareAddressesAndUnresolvableNamesAreLeftOut) {
  Reports reports;
  std::unique_ptr<ConnectorBackends> backends = Start(&reports);
  ASSERT_NE(backends, nullptr);
  backends->SetConfigServices({Spec(R"pb(name: "pinged"
                                         protocol: PROTOCOL_ICMP
                                         backends { address: "127.0.0.1" })pb"),
                               Spec(R"pb(name: "nowhere"
                                         protocol: PROTOCOL_TCP
                                         backends { address: "no-such-host.invalid:80" })pb")});
  ASSERT_TRUE(reports.WaitFor("pinged", {v1::HEALTH_STATE_UNKNOWN}));
  ASSERT_TRUE(reports.WaitFor("nowhere", {}));
  const auto view = backends->View();
  EXPECT_EQ(view.at("pinged")[0].address(), "127.0.0.1");
  EXPECT_THAT(view.at("nowhere"), IsEmpty());
}

TEST(ConnectorBackendsTest, ReportAllResendsUnchangedServices) {
  Reports reports;
  int calls = 0;
  absl::Mutex mu;
  absl::StatusOr<std::unique_ptr<ConnectorBackends>> backends = ConnectorBackends::Start(
      ConnectorBackends::Options{}, [&](const std::vector<v1::HealthReport>& r) {
        MutexLock lock(&mu);
        ++calls;
        reports.Add(r);
      });
  ASSERT_TRUE(backends.ok());
  (*backends)->SetConfigServices({Spec(R"pb(name: "web"
                                            protocol: PROTOCOL_TCP
                                            backends { address: "127.0.0.1:8080" })pb")});
  ASSERT_TRUE(reports.WaitFor("web", {v1::HEALTH_STATE_UNKNOWN}));
  int before = 0;
  {
    MutexLock lock(&mu);
    before = calls;
  }
  (*backends)->ReportAll();
  bool again = false;
  for (absl::Time deadline = absl::Now() + absl::Seconds(5); !again && absl::Now() < deadline;
       absl::SleepFor(absl::Milliseconds(20))) {
    MutexLock lock(&mu);
    again = calls > before;
  }
  EXPECT_TRUE(again);
}

}  // namespace
}  // namespace ferry::dataplane
