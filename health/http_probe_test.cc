#include "health/http_probe.h"

#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "dataplane/testing/loop_thread.h"
#include "gtest/gtest.h"
#include "health/probe_test_util.h"
#include "health/testing/test_servers.h"

namespace ferry::health {
namespace {

using dataplane::EventLoop;
using dataplane::test::LoopThread;
using test::RunProbe;

ProbeResult ProbeHttp(LoopThread& loop_thread, const v1::HealthCheck::Http& http,
                      const dataplane::SocketAddress& address, const std::string& host = "") {
  return RunProbe(loop_thread, [&](EventLoop& loop, ProbeCore::Done done) {
    return HttpProbe::Start(loop, http, address, host, absl::Seconds(10), std::move(done));
  });
}

struct Case {
  const char* name;
  int status;
  std::string body;
  uint32_t min, max;  // 0: default
  std::string substring;
  bool ok;
  std::string detail;
};

class HttpProbeTest : public ::testing::TestWithParam<bool> {};  // param: tls

TEST_P(HttpProbeTest, StatusRangeAndBodySubstring) {
  const Case cases[] = {
      {"200 in default range", 200, "fine", 0, 0, "", true, "ok"},
      {"302 in default range", 302, "", 0, 0, "", true, "ok"},
      {"503 outside default", 503, "down", 0, 0, "", false, "http status 503 not in 200..399"},
      {"404 outside default", 404, "", 0, 0, "", false, "http status 404 not in 200..399"},
      {"custom range admits 404", 404, "", 404, 404, "", true, "ok"},
      {"custom range refuses 200", 200, "", 500, 599, "", false, "http status 200 not in 500..599"},
      {"body has substring", 200, "status: ready\n", 0, 0, "ready", true, "ok"},
      {"body lacks substring", 200, "status: starting\n", 0, 0, "ready", false,
       "http body does not contain \"ready\""},
      {"large body with substring at the end", 200, std::string(40000, 'x') + "MARK", 0, 0, "MARK",
       true, "ok"},
  };
  LoopThread loop_thread;
  testing::HttpTestServer server(GetParam());
  for (const Case& c : cases) {
    server.SetResponse(c.status, c.body);
    v1::HealthCheck::Http http;
    http.set_tls(GetParam());
    http.set_expected_status_min(c.min);
    http.set_expected_status_max(c.max);
    http.set_expected_body_substring(c.substring);
    const ProbeResult result = ProbeHttp(loop_thread, http, server.address());
    EXPECT_EQ(result.ok, c.ok) << c.name << ": " << result.detail;
    EXPECT_EQ(result.detail, c.detail) << c.name;
  }
}

TEST_P(HttpProbeTest, SendsPathAndHostHeader) {
  LoopThread loop_thread;
  testing::HttpTestServer server(GetParam());
  v1::HealthCheck::Http http;
  http.set_tls(GetParam());
  http.set_path("/healthz?deep=1");
  ASSERT_TRUE(ProbeHttp(loop_thread, http, server.address(), "backend.example").ok);
  http.set_host("override.example");
  ASSERT_TRUE(ProbeHttp(loop_thread, http, server.address(), "backend.example").ok);
  http.clear_host();
  ASSERT_TRUE(ProbeHttp(loop_thread, http, server.address(), "").ok);
  const std::vector<std::string> requests = server.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0],
            "GET /healthz?deep=1 HTTP/1.1\r\nHost: backend.example\r\nConnection: close\r\n"
            "User-Agent: ferry-health/1\r\n\r\n");
  EXPECT_TRUE(absl::StrContains(requests[1], "\r\nHost: override.example\r\n")) << requests[1];
  EXPECT_TRUE(absl::StrContains(requests[2], "\r\nHost: 127.0.0.1\r\n")) << requests[2];
}

TEST_P(HttpProbeTest, StoppedServerFailsAndRestartedOneRecovers) {
  LoopThread loop_thread;
  v1::HealthCheck::Http http;
  http.set_tls(GetParam());
  auto server = std::make_unique<testing::HttpTestServer>(GetParam());
  EXPECT_TRUE(ProbeHttp(loop_thread, http, server->address()).ok);
  const dataplane::SocketAddress address = server->address();
  server->Stop();
  const ProbeResult dead = ProbeHttp(loop_thread, http, address);
  EXPECT_FALSE(dead.ok);
  EXPECT_EQ(dead.detail, "connect: Connection refused");
}

INSTANTIATE_TEST_SUITE_P(PlainAndTls, HttpProbeTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Https" : "Http";
                         });

TEST(HttpProbeTlsTest, PlainServerFailsATlsCheck) {
  LoopThread loop_thread;
  testing::HttpTestServer server(/*tls=*/false);
  v1::HealthCheck::Http http;
  http.set_tls(true);
  const ProbeResult result = ProbeHttp(loop_thread, http, server.address());
  EXPECT_FALSE(result.ok);
  EXPECT_TRUE(absl::StartsWith(result.detail, "tls: ")) << result.detail;
}

TEST(HttpProbeRequestTest, EmptyPathIsRoot) {
  EXPECT_EQ(HttpProbe::Request(v1::HealthCheck::Http(), "h"),
            "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\nUser-Agent: ferry-health/1\r\n\r\n");
}

}  // namespace
}  // namespace ferry::health
