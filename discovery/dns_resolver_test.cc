#include "discovery/dns_resolver.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <future>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/unique_fd.h"
#include "discovery/testing/dnsmasq_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ferry::discovery {
namespace {

using testing::DnsmasqServer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

#define SKIP_WITHOUT_DNSMASQ()                                                     \
  if (!DnsmasqServer::Installed()) {                                               \
    GTEST_SKIP() << DnsmasqServer::kBinary << " is absent (package dnsmasq-base)"; \
  }

std::vector<std::string> Strings(const std::vector<dataplane::SocketAddress>& addresses) {
  std::vector<std::string> out;
  for (const auto& address : addresses) out.push_back(address.ToString());
  return out;
}

// Waits (bounded) for the one answer of a query started by `start`.
absl::StatusOr<DnsResolver::Answer> Wait(const std::function<void(DnsResolver::Callback)>& start) {
  auto promise = std::make_shared<std::promise<absl::StatusOr<DnsResolver::Answer>>>();
  auto future = promise->get_future();
  start([promise](absl::StatusOr<DnsResolver::Answer> answer) {
    promise->set_value(std::move(answer));
  });
  if (future.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
    return absl::DeadlineExceededError("no answer within 20s");
  }
  return future.get();
}

absl::StatusOr<DnsResolver::Answer> Host(DnsResolver& resolver, const std::string& name,
                                         uint16_t port) {
  return Wait([&](DnsResolver::Callback done) { resolver.ResolveHost(name, port, done); });
}

absl::StatusOr<DnsResolver::Answer> Srv(DnsResolver& resolver, const std::string& name) {
  return Wait([&](DnsResolver::Callback done) { resolver.ResolveSrv(name, done); });
}

// A UDP socket on 127.0.0.1 that reads nothing and answers nothing; `address` gets its
// "127.0.0.1:port". An empty UniqueFd when it cannot be made.
UniqueFd SilentServer(std::string* address) {
  UniqueFd fd(socket(AF_INET, SOCK_DGRAM, 0));
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (!fd || bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return UniqueFd();
  }
  *address = absl::StrCat("127.0.0.1:", ntohs(addr.sin_port));
  return fd;
}

class DnsResolverTest : public ::testing::Test {
 protected:
  void StartServer(DnsmasqServer::Options options) {
    auto server = DnsmasqServer::Start(std::move(options));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    auto resolver = DnsResolver::Create({{server_->address()}, absl::Seconds(1), 2});
    ASSERT_TRUE(resolver.ok()) << resolver.status();
    resolver_ = std::move(*resolver);
  }

  std::unique_ptr<DnsmasqServer> server_;
  std::unique_ptr<DnsResolver> resolver_;
};

TEST_F(DnsResolverTest, AnswersARecordsWithTtlAndPort) {
  SKIP_WITHOUT_DNSMASQ();
  DnsmasqServer::Options options;
  options.ttl_seconds = 7;
  options.hosts = {"10.0.0.2 a.test.internal", "10.0.0.1 a.test.internal",
                   "10.0.0.9 other.test.internal"};
  ASSERT_NO_FATAL_FAILURE(StartServer(options));

  auto answer = Host(*resolver_, "a.test.internal", 8080);
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_THAT(Strings(answer->addresses), ElementsAre("10.0.0.1:8080", "10.0.0.2:8080"));
  EXPECT_EQ(answer->ttl, absl::Seconds(7));

  // Port 0: ICMP backends, whose port is ignored.
  auto no_port = Host(*resolver_, "a.test.internal", 0);
  ASSERT_TRUE(no_port.ok()) << no_port.status();
  EXPECT_THAT(Strings(no_port->addresses), ElementsAre("10.0.0.1:0", "10.0.0.2:0"));
}

TEST_F(DnsResolverTest, AnswersAaaaRecordsAfterARecords) {
  SKIP_WITHOUT_DNSMASQ();
  DnsmasqServer::Options options;
  options.ttl_seconds = 3;
  options.hosts = {"fd00::2 v6.test.internal", "fd00::1 v6.test.internal",
                   "fd00::3 both.test.internal", "10.0.0.3 both.test.internal"};
  ASSERT_NO_FATAL_FAILURE(StartServer(options));

  auto v6 = Host(*resolver_, "v6.test.internal", 443);
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_THAT(Strings(v6->addresses), ElementsAre("[fd00::1]:443", "[fd00::2]:443"));
  EXPECT_EQ(v6->ttl, absl::Seconds(3));

  auto both = Host(*resolver_, "both.test.internal", 53);
  ASSERT_TRUE(both.ok()) << both.status();
  EXPECT_THAT(Strings(both->addresses), ElementsAre("10.0.0.3:53", "[fd00::3]:53"));
}

TEST_F(DnsResolverTest, NxdomainIsNotFound) {
  SKIP_WITHOUT_DNSMASQ();
  DnsmasqServer::Options options;
  options.hosts = {"10.0.0.1 a.test.internal"};
  ASSERT_NO_FATAL_FAILURE(StartServer(options));

  auto answer = Host(*resolver_, "missing.test.internal", 80);
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kNotFound) << answer.status();
  EXPECT_THAT(answer.status().message(), HasSubstr("missing.test.internal"));
}

TEST_F(DnsResolverTest, ServerDownIsUnavailableWithTheCaresError) {
  SKIP_WITHOUT_DNSMASQ();
  DnsmasqServer::Options options;
  options.hosts = {"10.0.0.1 a.test.internal"};
  ASSERT_NO_FATAL_FAILURE(StartServer(options));
  ASSERT_TRUE(server_->Stop().ok());

  auto answer = Host(*resolver_, "a.test.internal", 80);
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kUnavailable) << answer.status();
  EXPECT_THAT(answer.status().message(), HasSubstr("query for a.test.internal: "));

  auto srv = Srv(*resolver_, "_http._tcp.svc.test.internal");
  EXPECT_EQ(srv.status().code(), absl::StatusCode::kUnavailable) << srv.status();
}

TEST_F(DnsResolverTest, SilentServerTimesOutAsUnavailable) {
  // A UDP socket that never answers: the query must time out, not hang.
  std::string address;
  UniqueFd silent = SilentServer(&address);
  ASSERT_TRUE(silent);
  auto resolver = DnsResolver::Create({{address}, absl::Milliseconds(100), 1});
  ASSERT_TRUE(resolver.ok()) << resolver.status();

  auto answer = Host(**resolver, "a.test.internal", 80);
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kUnavailable) << answer.status();
  EXPECT_THAT(answer.status().message(), HasSubstr("Timeout"));
}

TEST_F(DnsResolverTest, SrvFollowsEachTargetWithItsPort) {
  SKIP_WITHOUT_DNSMASQ();
  DnsmasqServer::Options options;
  options.ttl_seconds = 4;
  options.hosts = {"10.0.0.1 a.test.internal", "10.0.0.2 a.test.internal",
                   "fd00::3 b.test.internal"};
  options.srv_hosts = {"_http._tcp.svc.test.internal,a.test.internal,8080,0,0",
                       "_http._tcp.svc.test.internal,b.test.internal,9090,1,0",
                       // A target without addresses is left out.
                       "_http._tcp.svc.test.internal,gone.test.internal,7070,0,0"};
  ASSERT_NO_FATAL_FAILURE(StartServer(options));

  auto answer = Srv(*resolver_, "_http._tcp.svc.test.internal");
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_THAT(Strings(answer->addresses),
              ElementsAre("10.0.0.1:8080", "10.0.0.2:8080", "[fd00::3]:9090"));
  EXPECT_EQ(answer->ttl, absl::Seconds(4));
}

TEST_F(DnsResolverTest, SrvWithoutRecordsOrAddressesIsNotFound) {
  SKIP_WITHOUT_DNSMASQ();
  DnsmasqServer::Options options;
  options.hosts = {"10.0.0.1 a.test.internal"};
  options.srv_hosts = {"_http._tcp.empty.test.internal,gone.test.internal,80"};
  ASSERT_NO_FATAL_FAILURE(StartServer(options));

  auto missing = Srv(*resolver_, "_http._tcp.missing.test.internal");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound) << missing.status();
  auto empty = Srv(*resolver_, "_http._tcp.empty.test.internal");
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kNotFound) << empty.status();
  EXPECT_THAT(empty.status().message(), HasSubstr("no SRV target"));
}

TEST(DnsResolverCreateTest, ServersMustBeIpLiteralsWithOptionalPorts) {
  struct Case {
    std::string server;
    bool ok;
  };
  const Case cases[] = {
      {"10.0.0.1", true},
      {"10.0.0.1:5353", true},
      {"::1", true},
      {"[::1]:53", true},
      {"dns.example:53", false},
      {"10.0.0.1:0", false},
      {"10.0.0.1:65536", false},
      {"", false},
      {"10.0.0.1:", false},
  };
  for (const Case& c : cases) {
    auto resolver = DnsResolver::Create({{c.server}, absl::Seconds(1), 1});
    if (c.ok) {
      EXPECT_TRUE(resolver.ok()) << c.server << ": " << resolver.status();
    } else {
      EXPECT_EQ(resolver.status().code(), absl::StatusCode::kInvalidArgument) << c.server;
    }
  }
}

TEST(DnsResolverCreateTest, RejectsZeroTimeoutAndTries) {
  EXPECT_EQ(DnsResolver::Create({{"127.0.0.1"}, absl::ZeroDuration(), 1}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DnsResolver::Create({{"127.0.0.1"}, absl::Seconds(1), 0}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(DnsResolverRequestTest, EmptyNameIsInvalid) {
  auto resolver = DnsResolver::Create({{"127.0.0.1"}, absl::Seconds(1), 1});
  ASSERT_TRUE(resolver.ok()) << resolver.status();
  EXPECT_EQ(Host(**resolver, "", 80).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Srv(**resolver, "").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(DnsResolverShutdownTest, DestructorCancelsPendingQueries) {
  // A silent server keeps both queries pending until the resolver goes away.
  std::string address;
  UniqueFd silent = SilentServer(&address);
  ASSERT_TRUE(silent);
  auto resolver = DnsResolver::Create({{address}, absl::Seconds(30), 1});
  ASSERT_TRUE(resolver.ok()) << resolver.status();

  std::vector<absl::Status> results;  // Written on the resolver thread, read after the join.
  (*resolver)->ResolveHost("a.test.internal", 80, [&](absl::StatusOr<DnsResolver::Answer> a) {
    results.push_back(a.status());
  });
  (*resolver)->ResolveSrv("_x._tcp.test.internal", [&](absl::StatusOr<DnsResolver::Answer> a) {
    results.push_back(a.status());
  });
  resolver->reset();
  ASSERT_EQ(results.size(), 2u);
  for (const absl::Status& status : results) {
    EXPECT_EQ(status.code(), absl::StatusCode::kCancelled) << status;
  }
}

}  // namespace
}  // namespace ferry::discovery
