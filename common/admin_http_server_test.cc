#include "common/admin_http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "common/metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/counter.h"
#include "prometheus/registry.h"

namespace ferry {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// --- A raw HTTP client: exactly the bytes we choose, nothing more. ---

// A guard against a hung server: the test fails instead of hanging. Not a
// speed assertion.
constexpr int kSocketTimeoutSeconds = 30;

void SetReceiveTimeout(int fd) {
  timeval tv{};
  tv.tv_sec = kSocketTimeoutSeconds;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

// A connected blocking socket to the loopback address of `family` (AF_INET or
// AF_INET6) at `port`, or -1. A non-zero `receive_buffer` sets SO_RCVBUF.
int Connect(int port, int family = AF_INET, int receive_buffer = 0) {
  const int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  SetReceiveTimeout(fd);
  if (receive_buffer > 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof(receive_buffer));
  }
  sockaddr_storage storage{};
  socklen_t length = 0;
  if (family == AF_INET) {
    auto* address = reinterpret_cast<sockaddr_in*>(&storage);
    address->sin_family = AF_INET;
    address->sin_port = htons(static_cast<uint16_t>(port));
    address->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    length = sizeof(sockaddr_in);
  } else {
    auto* address = reinterpret_cast<sockaddr_in6*>(&storage);
    address->sin6_family = AF_INET6;
    address->sin6_port = htons(static_cast<uint16_t>(port));
    address->sin6_addr = in6addr_loopback;
    length = sizeof(sockaddr_in6);
  }
  if (connect(fd, reinterpret_cast<const sockaddr*>(&storage), length) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool SendAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Reads until the server closes (or an error). Returns what arrived.
std::string ReadAll(int fd) {
  std::string out;
  char buffer[4096];
  for (;;) {
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return out;
    out.append(buffer, static_cast<size_t>(n));
  }
}

// True when `fd` has data (or EOF) within `timeout_ms`.
bool ReadableWithin(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, timeout_ms) == 1;
}

// Sends `request` on the connected socket `fd` (-1 when connect failed), reads
// until the server closes, and closes `fd`.
std::string ExchangeOn(int fd, absl::string_view request) {
  if (fd < 0) return "connect failed";
  SendAll(fd, request);
  std::string response = ReadAll(fd);
  close(fd);
  return response;
}

std::string Exchange(int port, absl::string_view request) {
  return ExchangeOn(Connect(port), request);
}

struct Response {
  int status = 0;
  std::map<std::string, std::string> headers;  // Lower-case names.
  std::string body;

  // The value of header `name` (lower-case), or "" when absent.
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

// Parses a complete HTTP/1.1 response; status 0 when it is not one.
Response Parse(absl::string_view raw) {
  Response response;
  const size_t end = raw.find("\r\n\r\n");
  if (end == absl::string_view::npos) return response;
  std::vector<absl::string_view> lines = absl::StrSplit(raw.substr(0, end), "\r\n");
  std::vector<absl::string_view> status_line = absl::StrSplit(lines[0], absl::MaxSplits(' ', 2));
  if (status_line.size() < 2 || status_line[0] != "HTTP/1.1" ||
      !absl::SimpleAtoi(status_line[1], &response.status)) {
    return Response();
  }
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t colon = lines[i].find(':');
    if (colon == absl::string_view::npos) return Response();
    response.headers[absl::AsciiStrToLower(lines[i].substr(0, colon))] =
        std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
  }
  response.body = std::string(raw.substr(end + 4));
  return response;
}

std::string Get(absl::string_view target) {
  return absl::StrCat("GET ", target, " HTTP/1.1\r\nHost: localhost\r\n\r\n");
}

HttpResponse Hello(const HttpRequest&) { return HttpResponse{200, "text/plain", "hello\n"}; }

// --- Basic requests. ---

class AdminHttpServerTest : public ::testing::Test {
 protected:
  void StartServer(AdminHttpServer::Options options = AdminHttpServer::Options()) {
    server_ = std::make_unique<AdminHttpServer>(options);
    server_->Handle("/hello", Hello);
    server_->Handle("/echo", [](const HttpRequest& request) {
      std::string body = absl::StrCat(request.method, " ", request.path, "\n");
      for (const auto& entry : request.query) {
        absl::StrAppend(&body, entry.first, "=", entry.second, "\n");
      }
      return HttpResponse{200, "text/plain", body};
    });
    ASSERT_TRUE(server_->Start("127.0.0.1:0").ok());
    ASSERT_GT(server_->port(), 0);
  }

  int port() const { return server_->port(); }

  std::unique_ptr<AdminHttpServer> server_;
};

TEST_F(AdminHttpServerTest, GetReturnsTheHandlersResponseAndCloses) {
  StartServer();
  const std::string raw = Exchange(port(), Get("/hello"));
  const Response response = Parse(raw);
  EXPECT_EQ(response.status, 200) << raw;
  EXPECT_THAT(raw, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_EQ(response.header("content-type"), "text/plain");
  EXPECT_EQ(response.header("content-length"), "6");
  EXPECT_EQ(response.header("connection"), "close");
  EXPECT_EQ(response.body, "hello\n");
}

TEST_F(AdminHttpServerTest, HeadReturnsTheGetHeadersWithoutTheBody) {
  StartServer();
  const std::string raw = Exchange(port(), "HEAD /hello HTTP/1.1\r\nHost: localhost\r\n\r\n");
  const Response response = Parse(raw);
  EXPECT_EQ(response.status, 200) << raw;
  EXPECT_EQ(response.header("content-length"), "6");
  EXPECT_EQ(response.body, "");
}

TEST_F(AdminHttpServerTest, HandlerSeesMethodPathAndDecodedQuery) {
  StartServer();
  const Response response =
      Parse(Exchange(port(), Get("/echo?b=x%20y&c=d+e&a=1&a=2&flag&&%2Fk=%2f")));
  EXPECT_EQ(response.status, 200);
  // std::map order; the first "a" wins; "flag" has no value.
  EXPECT_EQ(response.body, "GET /echo\n/k=/\na=1\nb=x y\nc=d e\nflag=\n");
}

TEST_F(AdminHttpServerTest, UnknownPathIs404) {
  StartServer();
  for (absl::string_view target : {"/", "/nope", "/hello/", "/HELLO", "/hello%2F"}) {
    EXPECT_EQ(Parse(Exchange(port(), Get(target))).status, 404) << target;
  }
}

TEST_F(AdminHttpServerTest, OtherMethodsAre405WithAllow) {
  StartServer();
  for (absl::string_view method : {"POST", "PUT", "DELETE", "OPTIONS", "PATCH", "BREW"}) {
    const Response response = Parse(
        Exchange(port(), absl::StrCat(method, " /hello HTTP/1.1\r\nHost: localhost\r\n\r\n")));
    EXPECT_EQ(response.status, 405) << method;
    EXPECT_EQ(response.header("allow"), "GET, HEAD") << method;
  }
}

TEST_F(AdminHttpServerTest, PostWithUnreadBodyStillGetsThe405) {
  StartServer();
  // The server never reads the body; its lingering close must keep the
  // response from being destroyed by a RST.
  const std::string body(100 * 1024, 'x');
  const int fd = Connect(port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd, absl::StrCat("POST /hello HTTP/1.1\r\nHost: localhost\r\n"
                                       "Content-Length: ",
                                       body.size(), "\r\n\r\n")));
  std::thread writer([fd, &body] { SendAll(fd, body); });
  const std::string raw = ReadAll(fd);
  writer.join();
  close(fd);
  EXPECT_EQ(Parse(raw).status, 405) << raw;
}

struct BadRequestCase {
  std::string name;
  std::string request;
  int status;
};

TEST_F(AdminHttpServerTest, RequestHeadsAreValidated) {
  StartServer();
  const std::vector<BadRequestCase> cases = {
      {"garbage", "GARBAGE\r\n\r\n", 400},
      {"no version", "GET /hello\r\nHost: x\r\n\r\n", 400},
      {"double space", "GET  /hello HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"bad method char", "G(T /hello HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"absolute target", "GET http://x/hello HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"no slash", "GET hello HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"bad version", "GET /hello HTTX/1.1\r\nHost: x\r\n\r\n", 400},
      {"lower-case version", "GET /hello http/1.1\r\nHost: x\r\n\r\n", 400},
      {"http2", "GET /hello HTTP/2.0\r\nHost: x\r\n\r\n", 505},
      {"http1.1 without host", "GET /hello HTTP/1.1\r\n\r\n", 400},
      {"two hosts", "GET /hello HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400},
      {"space before colon", "GET /hello HTTP/1.1\r\nHost : x\r\n\r\n", 400},
      {"no colon", "GET /hello HTTP/1.1\r\nHost: x\r\nJunk\r\n\r\n", 400},
      {"obs-fold", "GET /hello HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  2\r\n\r\n", 400},
      {"bare CR", "GET /hello HTTP/1.1\rX: y\r\nHost: x\r\n\r\n", 400},
      {"NUL in value", std::string("GET /hello HTTP/1.1\r\nHost: x\r\nX: a") + '\0' + "b\r\n\r\n",
       400},
      {"bad percent escape", "GET /echo?a=%zz HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"truncated percent escape", "GET /echo?a=%2 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"http1.0 without host", "GET /hello HTTP/1.0\r\n\r\n", 200},
      {"bare LF line ends", "GET /hello HTTP/1.1\nHost: x\n\n", 200},
      {"leading blank line", "\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n", 200},
      {"case-insensitive host, tab in value", "GET /hello HTTP/1.1\r\nhOsT:\tx\r\n\r\n", 200},
  };
  for (const BadRequestCase& c : cases) {
    const std::string raw = Exchange(port(), c.request);
    EXPECT_EQ(Parse(raw).status, c.status) << c.name << ":\n" << raw;
  }
}

TEST_F(AdminHttpServerTest, HeadUpToTheLimitIsServedOneByteMoreIs431) {
  AdminHttpServer::Options options;
  options.max_header_bytes = 8 * 1024;
  StartServer(options);
  const std::string prefix = "GET /hello HTTP/1.1\r\nHost: x\r\nX-Pad: ";
  const std::string suffix = "\r\n\r\n";
  const std::string fits =
      prefix + std::string(options.max_header_bytes - prefix.size() - suffix.size(), 'a') + suffix;
  ASSERT_EQ(fits.size(), options.max_header_bytes);
  EXPECT_EQ(Parse(Exchange(port(), fits)).status, 200);

  const std::string too_big =
      prefix + std::string(options.max_header_bytes - prefix.size() - suffix.size() + 1, 'a') +
      suffix;
  const std::string raw = Exchange(port(), too_big);
  EXPECT_EQ(Parse(raw).status, 431) << raw;
}

TEST_F(AdminHttpServerTest, HugeHeadersAre431) {
  StartServer();
  const std::string request = absl::StrCat(
      "GET /hello HTTP/1.1\r\nHost: x\r\nX-Pad: ", std::string(256 * 1024, 'a'), "\r\n\r\n");
  const int fd = Connect(port());
  ASSERT_GE(fd, 0);
  // The server answers after 8 KiB and may stop reading, so send from another
  // thread and read here.
  std::thread writer([fd, &request] { SendAll(fd, request); });
  const std::string raw = ReadAll(fd);
  shutdown(fd, SHUT_RDWR);  // Unblocks the writer if the server stopped reading.
  writer.join();
  close(fd);
  EXPECT_EQ(Parse(raw).status, 431) << raw.substr(0, 200);
}

TEST_F(AdminHttpServerTest, IncompleteRequestGets408AfterTheReadTimeout) {
  AdminHttpServer::Options options;
  options.read_timeout = absl::Milliseconds(200);
  StartServer(options);
  // No blank line: the request never completes. Returns once the server closes.
  const std::string raw = Exchange(port(), "GET /hello HTTP/1.1\r\nHost: x\r\n");
  EXPECT_EQ(Parse(raw).status, 408) << raw;
}

TEST_F(AdminHttpServerTest, TricklingClientCannotExtendTheReadTimeout) {
  AdminHttpServer::Options options;
  options.read_timeout = absl::Milliseconds(300);
  StartServer(options);
  const int fd = Connect(port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd, "GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: "));
  // One byte every 20 ms, never finishing: a per-read idle timer would never
  // fire. Give up after 10 s (far beyond the 300 ms budget).
  bool answered = false;
  for (int i = 0; i < 500 && !answered; ++i) {
    if (!SendAll(fd, "a")) break;
    answered = ReadableWithin(fd, 20);
  }
  EXPECT_TRUE(answered) << "the server waited for the client to stop trickling";
  const std::string raw = ReadAll(fd);
  close(fd);
  EXPECT_EQ(Parse(raw).status, 408) << raw;
}

TEST_F(AdminHttpServerTest, UnreadClientBytesDoNotTruncateALargeResponse) {
  // Closing a socket with unread input sends a RST, which discards whatever
  // the kernel has not yet delivered. The server must half-close and drain.
  const std::string big(4 * 1024 * 1024, 'b');
  server_ = std::make_unique<AdminHttpServer>();
  server_->Handle("/big", [&big](const HttpRequest&) { return HttpResponse{200, "", big}; });
  ASSERT_TRUE(server_->Start("127.0.0.1:0").ok());

  // A small receive buffer keeps most of the response queued in the server.
  const int client = Connect(port(), AF_INET, /*receive_buffer=*/64 * 1024);
  ASSERT_GE(client, 0);
  // Bytes after the request that the server never needs to read.
  ASSERT_TRUE(SendAll(client, absl::StrCat(Get("/big"), std::string(32 * 1024, 'x'))));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const std::string raw = ReadAll(client);
  close(client);
  const Response response = Parse(raw);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body.size(), big.size());
}

TEST_F(AdminHttpServerTest, ClientsBeyondTheConnectionLimitWaitForAFreeSlot) {
  AdminHttpServer::Options options;
  options.max_connections = 2;
  options.read_timeout = absl::Seconds(60);  // Idle clients hold their slots.
  StartServer(options);
  const int idle1 = Connect(port());
  const int idle2 = Connect(port());
  const int waiting = Connect(port());  // Completes in the kernel's backlog.
  ASSERT_GE(idle1, 0);
  ASSERT_GE(idle2, 0);
  ASSERT_GE(waiting, 0);
  ASSERT_TRUE(SendAll(waiting, Get("/hello")));
  // Both slots are taken, so the server must not even read this request.
  EXPECT_FALSE(ReadableWithin(waiting, 300));

  close(idle1);  // Frees a slot.
  const std::string raw = ReadAll(waiting);
  EXPECT_EQ(Parse(raw).status, 200) << raw;
  close(waiting);
  close(idle2);
}

TEST_F(AdminHttpServerTest, ManyConcurrentClientsAreAllServed) {
  AdminHttpServer::Options options;
  options.max_connections = 8;  // Fewer slots than clients: some wait.
  StartServer(options);
  constexpr int kClients = 40;
  constexpr int kRequestsEach = 10;
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([this, &ok] {
      for (int j = 0; j < kRequestsEach; ++j) {
        const Response response = Parse(Exchange(port(), Get("/hello")));
        if (response.status == 200 && response.body == "hello\n") ++ok;
      }
    });
  }
  for (std::thread& client : clients) client.join();
  EXPECT_EQ(ok.load(), kClients * kRequestsEach);
}

TEST_F(AdminHttpServerTest, StopClosesOpenConnectionsAndRefusesNewOnes) {
  StartServer();
  const int idle = Connect(port());
  const int partial = Connect(port());
  ASSERT_GE(idle, 0);
  ASSERT_GE(partial, 0);
  ASSERT_TRUE(SendAll(partial, "GET /hel"));
  // Make sure the server is serving before stopping it.
  EXPECT_EQ(Parse(Exchange(port(), Get("/hello"))).status, 200);
  const int bound_port = port();

  server_->Stop();
  EXPECT_EQ(ReadAll(idle), "");  // Closed without a response.
  EXPECT_EQ(ReadAll(partial), "");
  close(idle);
  close(partial);
  EXPECT_EQ(Connect(bound_port), -1);
  server_->Stop();  // Idempotent.
}

// --- Handler contract. ---

TEST(AdminHttpServerHandlerTest, HandlerFailuresBecome500) {
  AdminHttpServer server;
  server.Handle("/throws",
                [](const HttpRequest&) -> HttpResponse { throw std::runtime_error("boom"); });
  server.Handle("/bad-status", [](const HttpRequest&) {
    return HttpResponse{42, "text/plain", ""};
  });
  server.Handle("/injects", [](const HttpRequest&) {
    return HttpResponse{200, "text/plain\r\nSet-Cookie: a=b", "x"};
  });
  ASSERT_TRUE(server.Start("127.0.0.1:0").ok());
  for (absl::string_view path : {"/throws", "/bad-status", "/injects"}) {
    const std::string raw = Exchange(server.port(), Get(path));
    EXPECT_EQ(Parse(raw).status, 500) << path;
    EXPECT_THAT(raw, Not(HasSubstr("Set-Cookie"))) << path;
  }
}

TEST(AdminHttpServerHandlerTest, NoContentHasNoBodyOrLength) {
  AdminHttpServer server;
  server.Handle("/empty", [](const HttpRequest&) { return HttpResponse{204, "", "ignored"}; });
  ASSERT_TRUE(server.Start("127.0.0.1:0").ok());
  const std::string raw = Exchange(server.port(), Get("/empty"));
  EXPECT_EQ(raw, "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
}

// --- Metrics and probes. ---

TEST(AdminHttpServerMetricsTest, MetricsRendersTheRegistry) {
  auto registry = std::make_shared<prometheus::Registry>();
  auto& family = AddCounterFamily(*registry, "ferry_test_requests_total", "Requests.");
  prometheus::Counter& counter = family.Add({{"kind", "test"}});
  counter.Increment(41);

  AdminHttpServer server;
  server.ServeMetrics(registry);
  ASSERT_TRUE(server.Start("127.0.0.1:0").ok());

  Response response = Parse(Exchange(server.port(), Get("/metrics")));
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_THAT(response.body, HasSubstr("# TYPE ferry_test_requests_total counter\n"));
  EXPECT_THAT(response.body, HasSubstr("ferry_test_requests_total{kind=\"test\"} 41\n"));

  counter.Increment();  // Each scrape renders the current value.
  response = Parse(Exchange(server.port(), Get("/metrics")));
  EXPECT_THAT(response.body, HasSubstr("ferry_test_requests_total{kind=\"test\"} 42\n"));

  const Response head = Parse(Exchange(server.port(), "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.header("content-length"), std::to_string(response.body.size()));
  EXPECT_EQ(head.body, "");
}

TEST(AdminHttpServerHealthTest, ProbesFollowTheReadinessCallback) {
  std::atomic<bool> ready{false};
  AdminHttpServer server;
  server.ServeHealth([&ready] { return ready.load(); });
  ASSERT_TRUE(server.Start("127.0.0.1:0").ok());

  Response healthz = Parse(Exchange(server.port(), Get("/healthz")));
  EXPECT_EQ(healthz.status, 200);
  EXPECT_EQ(healthz.body, "ok");
  Response readyz = Parse(Exchange(server.port(), Get("/readyz")));
  EXPECT_EQ(readyz.status, 503);
  EXPECT_EQ(readyz.body, "not ready");

  ready = true;
  readyz = Parse(Exchange(server.port(), Get("/readyz")));
  EXPECT_EQ(readyz.status, 200);
  EXPECT_EQ(readyz.body, "ready");
  healthz = Parse(Exchange(server.port(), Get("/healthz")));
  EXPECT_EQ(healthz.status, 200);
}

// --- Start and Stop. ---

TEST(AdminHttpServerStartTest, BadAddressesAreInvalidArgument) {
  for (const std::string address :
       {"", "127.0.0.1", "127.0.0.1:", ":9090", "127.0.0.1:http", "127.0.0.1:-1", "127.0.0.1:65536",
        "127.0.0.1:000000009090", "::1:9090", "[::1", "[::1]", "[::1]9090", "[]:9090",
        "300.1.1.1:80:80"}) {
    AdminHttpServer server;
    const absl::Status status = server.Start(address);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << "\"" << address << "\"";
    EXPECT_THAT(std::string(status.message()), HasSubstr("\"" + address + "\"")) << address;
    EXPECT_EQ(server.port(), 0);
  }
}

TEST(AdminHttpServerStartTest, AddressInUseIsAlreadyExistsAndSaysSo) {
  AdminHttpServer first;
  ASSERT_TRUE(first.Start("127.0.0.1:0").ok());
  AdminHttpServer second;
  const absl::Status status = second.Start(absl::StrCat("127.0.0.1:", first.port()));
  EXPECT_EQ(status.code(), absl::StatusCode::kAlreadyExists) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("in use")) << status;

  // A failed Start may be retried with another address.
  EXPECT_TRUE(second.Start("127.0.0.1:0").ok());
  EXPECT_NE(second.port(), first.port());
}

TEST(AdminHttpServerStartTest, StartsOnceOnly) {
  AdminHttpServer server;
  ASSERT_TRUE(server.Start("127.0.0.1:0").ok());
  EXPECT_EQ(server.Start("127.0.0.1:0").code(), absl::StatusCode::kFailedPrecondition);
  server.Stop();
  EXPECT_EQ(server.Start("127.0.0.1:0").code(), absl::StatusCode::kFailedPrecondition);
}

TEST(AdminHttpServerStartTest, StopWithoutStartIsHarmless) {
  AdminHttpServer server;
  server.Stop();
  server.Stop();
  EXPECT_EQ(server.port(), 0);
}

bool HasIpv6Loopback() {
  const int probe = socket(AF_INET6, SOCK_STREAM, 0);
  if (probe < 0) return false;
  sockaddr_in6 loopback{};
  loopback.sin6_family = AF_INET6;
  loopback.sin6_addr = in6addr_loopback;
  const bool bound = bind(probe, reinterpret_cast<sockaddr*>(&loopback), sizeof(loopback)) == 0;
  close(probe);
  return bound;
}

TEST(AdminHttpServerStartTest, ServesOnIpv6Loopback) {
  if (!HasIpv6Loopback()) GTEST_SKIP() << "no IPv6 loopback in this sandbox";
  AdminHttpServer server;
  server.Handle("/hello", Hello);
  ASSERT_TRUE(server.Start("[::1]:0").ok());
  const std::string raw = ExchangeOn(Connect(server.port(), AF_INET6), Get("/hello"));
  EXPECT_EQ(Parse(raw).status, 200) << raw;
}

TEST(AdminHttpServerStartTest, ServesOnLocalhostByName) {
  AdminHttpServer server;
  server.Handle("/hello", Hello);
  ASSERT_TRUE(server.Start("localhost:0").ok());
  // localhost resolves to 127.0.0.1 or ::1 first, depending on the host.
  int fd = Connect(server.port(), AF_INET);
  if (fd < 0) fd = Connect(server.port(), AF_INET6);
  const std::string raw = ExchangeOn(fd, Get("/hello"));
  EXPECT_EQ(Parse(raw).status, 200) << raw;
}

// --- Misuse is a bug in the caller: crash with a message. ---

TEST(AdminHttpServerDeathTest, HandleAfterStartCrashes) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  AdminHttpServer server;
  ASSERT_TRUE(server.Start("127.0.0.1:0").ok());
  EXPECT_DEATH(server.Handle("/late", Hello), "called after Start");
}

TEST(AdminHttpServerDeathTest, DuplicatePathCrashes) {
  AdminHttpServer server;
  server.Handle("/hello", Hello);
  EXPECT_DEATH(server.Handle("/hello", Hello), "already registered");
}

TEST(AdminHttpServerDeathTest, PathWithoutLeadingSlashCrashes) {
  AdminHttpServer server;
  EXPECT_DEATH(server.Handle("metrics", Hello), "must start with '/'");
}

}  // namespace
}  // namespace ferry
