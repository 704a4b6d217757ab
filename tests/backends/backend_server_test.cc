// The test backends checked directly, with no Ferry process in the path: each
// mode of the real backend_server binary, driven by the same clients the
// end-to-end tests use through a tunnel.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/backends/backend_process.h"
#include "tests/backends/pattern.h"
#include "tests/backends/tcp_client.h"
#include "tests/backends/udp_flows.h"
#include "tests/harness/ferry_process.h"
#include "tests/harness/metrics_scrape.h"

namespace ferry::backends {
namespace {

constexpr uint64_t kMiB = 1 << 20;

class BackendServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    BackendOptions options;
    options.name = "web-1";
    options.udp_echo = options.tcp_echo = options.http = options.tcp_sha256 = options.tcp_source =
        true;
    absl::StatusOr<std::unique_ptr<BackendProcess>> started = BackendProcess::Start(options);
    ASSERT_TRUE(started.ok()) << started.status();
    backend_ = *std::move(started);
  }

  std::unique_ptr<BackendProcess> backend_;
};

TEST_F(BackendServerTest, ReadyFileNamesEveryModeOnLoopback) {
  for (const std::string* address :
       {&backend_->udp_echo(), &backend_->tcp_echo(), &backend_->http(), &backend_->tcp_sha256(),
        &backend_->tcp_source()}) {
    EXPECT_TRUE(absl::StartsWith(*address, "127.0.0.1:")) << *address;
    EXPECT_FALSE(absl::EndsWith(*address, ":0")) << *address;
  }
}

TEST_F(BackendServerTest, UdpEchoAnswersEachFlowWithItsOwnDatagrams) {
  std::vector<UdpFlowSpec> specs(50, UdpFlowSpec{backend_->udp_echo()});
  absl::StatusOr<std::unique_ptr<UdpFlowSet>> flows = UdpFlowSet::Open(specs);
  ASSERT_TRUE(flows.ok()) << flows.status();
  UdpExchangeOptions options;
  options.datagrams_per_flow = 10;
  options.padding = 1000;
  ASSERT_TRUE((*flows)->Exchange(options).ok());
  const UdpFlowStats total = (*flows)->Total();
  EXPECT_EQ(total.sent, 500u);
  EXPECT_EQ(total.answered, 500u);
  EXPECT_EQ(total.foreign, 0u);
  for (size_t i = 0; i < (*flows)->size(); ++i) EXPECT_EQ((*flows)->flow(i).answered, 10u) << i;
}

TEST(BackendServerPrefixTest, UdpEchoPrefixesItsReplies) {
  BackendOptions options;
  options.udp_echo = true;
  options.echo_prefix = "acme:";
  absl::StatusOr<std::unique_ptr<BackendProcess>> backend = BackendProcess::Start(options);
  ASSERT_TRUE(backend.ok()) << backend.status();
  // Flow 0 expects the prefix; flow 1 expects a plain echo and so must see
  // every reply as foreign.
  absl::StatusOr<std::unique_ptr<UdpFlowSet>> flows =
      UdpFlowSet::Open({{(*backend)->udp_echo(), {"acme:"}}, {(*backend)->udp_echo(), {""}}});
  ASSERT_TRUE(flows.ok()) << flows.status();
  UdpExchangeOptions exchange;
  exchange.datagrams_per_flow = 3;
  exchange.max_attempts = 2;
  exchange.retry_after = absl::Milliseconds(200);
  ASSERT_TRUE((*flows)->Exchange(exchange).ok());
  EXPECT_EQ((*flows)->flow(0).answered, 3u);
  EXPECT_EQ((*flows)->flow(0).answered_by_prefix.at("acme:"), 3u);
  EXPECT_EQ((*flows)->flow(1).answered, 0u);
  EXPECT_GE((*flows)->flow(1).foreign, 3u);
}

TEST_F(BackendServerTest, TcpEchoReturnsEveryByteThenClosesAfterTheClientsEof) {
  const TcpUpload upload = TcpUpload::Pattern(4 * kMiB, 12345);
  absl::StatusOr<TcpReply> reply = TcpExchange(backend_->tcp_echo(), upload);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->size, 4 * kMiB);
  EXPECT_EQ(reply->sha256_hex, Sha256Hex(PatternBytes(12345, 4 * kMiB)));

  // Nothing sent: the echo answers our FIN with its own.
  absl::StatusOr<TcpReply> empty = TcpExchange(backend_->tcp_echo(), TcpUpload::Of(""));
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->size, 0u);
}

TEST_F(BackendServerTest, TcpEchoServesAHundredConnectionsAtOnce) {
  constexpr int kConnections = 120;
  constexpr uint64_t kBytes = 256 * 1024;
  std::vector<absl::Status> results(kConnections);
  std::vector<std::thread> threads;
  for (int i = 0; i < kConnections; ++i) {
    threads.emplace_back([&, i] {
      const uint64_t offset = static_cast<uint64_t>(i) * 7919;
      absl::StatusOr<TcpReply> reply =
          TcpExchange(backend_->tcp_echo(), TcpUpload::Pattern(kBytes, offset));
      if (!reply.ok()) {
        results[i] = reply.status();
      } else if (reply->size != kBytes) {
        results[i] = absl::DataLossError(
            absl::StrCat("the echo ended (EOF) after ", reply->size, " of ", kBytes, " bytes"));
      } else if (reply->sha256_hex != Sha256Hex(PatternBytes(offset, kBytes))) {
        results[i] = absl::DataLossError("the echo's SHA-256 differs from what was sent");
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int i = 0; i < kConnections; ++i) EXPECT_TRUE(results[i].ok()) << i << ": " << results[i];
}

TEST_F(BackendServerTest, HttpGetRootGreetsWithTheName) {
  absl::StatusOr<harness::HttpGetResult> got = harness::HttpGet(backend_->http(), "/");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->status, 200);
  EXPECT_EQ(got->body, "hello from web-1\n");
}

TEST_F(BackendServerTest, HttpServesPatternBytesAndHashesPostedBodies) {
  absl::StatusOr<TcpReply> bytes =
      TcpExchange(backend_->http(), TcpUpload::Of("GET /bytes/100000 HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  absl::StatusOr<HttpResponse> response = ParseHttpResponse(bytes->head);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->headers["content-length"], "100000");
  EXPECT_EQ(response->body, PatternBytes(0, 100000));

  const std::string body = PatternBytes(99, 3 * kMiB);
  absl::StatusOr<TcpReply> posted = TcpExchange(
      backend_->http(),
      TcpUpload::Of(absl::StrCat(
          "POST /sha256 HTTP/1.1\r\nHost: x\r\nContent-Length: ", body.size(), "\r\n\r\n", body)));
  ASSERT_TRUE(posted.ok()) << posted.status();
  response = ParseHttpResponse(posted->head);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, Sha256Hex(body));
}

TEST_F(BackendServerTest, HttpRefusesWhatItDoesNotServe) {
  struct Case {
    std::string request;
    int status;
  };
  const Case cases[] = {
      {"GET /nope HTTP/1.1\r\n\r\n", 404},
      {"GET /bytes/many HTTP/1.1\r\n\r\n", 400},
      {"POST /sha256 HTTP/1.1\r\n\r\n", 411},
      {"NONSENSE\r\n\r\n", 400},
  };
  for (const Case& c : cases) {
    absl::StatusOr<TcpReply> reply = TcpExchange(backend_->http(), TcpUpload::Of(c.request));
    ASSERT_TRUE(reply.ok()) << reply.status();
    absl::StatusOr<HttpResponse> response = ParseHttpResponse(reply->head);
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status, c.status) << c.request;
  }
}

TEST_F(BackendServerTest, TcpSha256AnswersTheDigestOfTheUpload) {
  constexpr uint64_t kBytes = 8 * kMiB;
  absl::StatusOr<TcpReply> reply = TcpExchange(backend_->tcp_sha256(), TcpUpload::Pattern(kBytes));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->head, PatternSha256Hex(kBytes));
  EXPECT_EQ(reply->size, 64u);
}

TEST_F(BackendServerTest, TcpSourceSendsTheCountOfPatternBytes) {
  constexpr uint64_t kBytes = 3 * kMiB + 17;
  absl::StatusOr<TcpReply> reply =
      TcpExchange(backend_->tcp_source(), TcpUpload::Of(absl::StrCat(kBytes, "\n")));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->size, kBytes);
  EXPECT_EQ(reply->sha256_hex, PatternSha256Hex(kBytes));

  // Not a count: closed without a byte.
  absl::StatusOr<TcpReply> junk = TcpExchange(backend_->tcp_source(), TcpUpload::Of("lots\n"));
  ASSERT_TRUE(junk.ok()) << junk.status();
  EXPECT_EQ(junk->size, 0u);
}

TEST_F(BackendServerTest, ExitsZeroOnSigtermWithAnIdleConnectionOpen) {
  // A connection that never sends must not hold the shutdown up.
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  const std::vector<std::string> host_port = absl::StrSplit(backend_->tcp_echo(), ':');
  ASSERT_EQ(host_port.size(), 2u);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(static_cast<uint16_t>(std::stoi(host_port[1])));
  inet_pton(AF_INET, host_port[0].c_str(), &sin.sin_addr);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)), 0);
  absl::SleepFor(absl::Milliseconds(200));  // Let the server accept it.
  absl::StatusOr<harness::ExitStatus> exit = backend_->process().Stop(absl::Seconds(10));
  close(fd);
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_TRUE(exit->ok()) << exit->ToString();
}

TEST(BackendServerFlagsTest, RefusesToStartWithoutAMode) {
  absl::StatusOr<std::string> binary = harness::RunfilesPath("tests/backends/backend_server");
  ASSERT_TRUE(binary.ok()) << binary.status();
  harness::FerryProcess process("backend-no-mode", *binary, {});
  ASSERT_TRUE(process.Start().ok());
  absl::StatusOr<harness::ExitStatus> exit = process.WaitExit(absl::Seconds(10));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_TRUE(exit->exited);
  EXPECT_EQ(exit->code, 2);
}

}  // namespace
}  // namespace ferry::backends
