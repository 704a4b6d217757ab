// TcpExchange's failure modes against in-process sockets (its success path is
// exercised against the real backends in backend_server_test), and the HTTP
// response splitter.
#include "tests/backends/tcp_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace ferry::backends {
namespace {

// A TCP socket bound to 127.0.0.1:0; listening when `listen_backlog` >= 0.
int BoundSocket(std::string* address, int listen_backlog) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)), 0);
  socklen_t size = sizeof(sin);
  getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &size);
  *address = absl::StrCat("127.0.0.1:", ntohs(sin.sin_port));
  if (listen_backlog >= 0) {
    EXPECT_EQ(listen(fd, listen_backlog), 0);
  }
  return fd;
}

TEST(TcpExchangeTest, RefusedConnectionIsUnavailable) {
  std::string address;
  close(BoundSocket(&address, -1));  // Bound, never listening: nobody is there.
  absl::StatusOr<TcpReply> reply = TcpExchange(address, TcpUpload::Of("x"));
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kUnavailable) << reply.status();
}

TEST(TcpExchangeTest, PeerThatNeverClosesIsDeadlineExceeded) {
  std::string address;
  const int listener = BoundSocket(&address, 8);  // The kernel completes the handshake.
  TcpExchangeOptions options;
  options.timeout = absl::Milliseconds(300);
  absl::StatusOr<TcpReply> reply = TcpExchange(address, TcpUpload::Of("hello"), options);
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kDeadlineExceeded) << reply.status();
  close(listener);
}

TEST(TcpExchangeTest, ResetConnectionIsDataLoss) {
  std::string address;
  const int listener = BoundSocket(&address, 8);
  std::thread server([listener] {
    const int fd = accept(listener, nullptr, nullptr);
    const linger abort_on_close{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof(abort_on_close));
    close(fd);  // RST
  });
  TcpExchangeOptions options;
  options.timeout = absl::Seconds(10);
  // Large enough that the client is still sending when the reset arrives.
  absl::StatusOr<TcpReply> reply = TcpExchange(address, TcpUpload::Pattern(64 << 20), options);
  server.join();
  close(listener);
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kDataLoss) << reply.status();
}

TEST(TcpExchangeTest, MalformedAddressIsInvalidArgument) {
  for (const char* address : {"127.0.0.1", "127.0.0.1:0", "localhost:80", "1.2.3.4:99999"}) {
    EXPECT_EQ(TcpExchange(address, TcpUpload::Of("")).status().code(),
              absl::StatusCode::kInvalidArgument)
        << address;
  }
}

TEST(TcpUploadTest, PatternUploadsDifferByOffset) {
  const TcpUpload a = TcpUpload::Pattern(16, 0);
  const TcpUpload b = TcpUpload::Pattern(16, 1);
  uint8_t x[16];
  uint8_t y[16];
  a.fill(0, absl::MakeSpan(x));
  b.fill(0, absl::MakeSpan(y));
  EXPECT_NE(std::string(x, x + 16), std::string(y, y + 16));
  a.fill(1, absl::MakeSpan(x, 15));
  EXPECT_EQ(std::string(x, x + 15), std::string(y, y + 15));
}

TEST(ParseHttpResponseTest, SplitsStatusHeadersAndBody) {
  absl::StatusOr<HttpResponse> response =
      ParseHttpResponse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b \r\n\r\nhello");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->headers["content-length"], "5");
  EXPECT_EQ(response->headers["x-a"], "b");
  EXPECT_EQ(response->body, "hello");
}

TEST(ParseHttpResponseTest, RefusesWhatIsNotAWholeResponse) {
  for (const char* raw : {"", "HTTP/1.1 200 OK\r\n", "SSH-2.0\r\n\r\n", "HTTP/1.1 abc\r\n\r\n",
                          "HTTP/1.1 200 OK\r\nbad header\r\n\r\n",
                          "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort"}) {
    EXPECT_EQ(ParseHttpResponse(raw).status().code(), absl::StatusCode::kDataLoss) << raw;
  }
}

}  // namespace
}  // namespace ferry::backends
