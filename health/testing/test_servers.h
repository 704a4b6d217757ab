// Loopback backends for the health checker tests: a TCP acceptor, an HTTP(S) server and a UDP
// responder, each on 127.0.0.1 (or ::1), port 0, served by a thread of its own with blocking I/O
// (so they share nothing with the EventLoop under test). Stop() makes the port dead — connects
// refused, datagrams answered with ICMP port unreachable — without forgetting the address.

#ifndef FERRY_HEALTH_TESTING_TEST_SERVERS_H_
#define FERRY_HEALTH_TESTING_TEST_SERVERS_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/unique_fd.h"
#include "dataplane/socket_address.h"

namespace ferry::health::testing {

// The port of `address`.
uint16_t PortOf(const dataplane::SocketAddress& address);

// Shared base: a bound socket, a serving thread, and a stop pipe the thread polls with it.
class LoopbackServer {
 public:
  virtual ~LoopbackServer();
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;

  // Where it listens (kept after Stop, so the same address can be probed as dead).
  const dataplane::SocketAddress& address() const { return address_; }
  // Stops serving, joins the thread and closes the socket. Idempotent. Test thread.
  void Stop();

 protected:
  // Binds `type` (SOCK_STREAM listens too) on `ip`:`port` (0: any free port); CHECK-fails when it
  // cannot.
  LoopbackServer(int type, const std::string& ip, uint16_t port);
  // Starts the thread running Serve(); call at the end of the derived constructor.
  void StartThread();
  // Returns when `fd_` is readable (true) or Stop was called (false).
  bool WaitReadable(int fd);
  virtual void Serve() = 0;

  UniqueFd fd_;

 private:
  dataplane::SocketAddress address_;
  UniqueFd stop_read_, stop_write_;
  std::thread thread_;
};

// Accepts connections and closes them at once.
class TcpTestServer final : public LoopbackServer {
 public:
  // `port` 0: a free one; else that port (to bring a stopped server back on its address).
  explicit TcpTestServer(const std::string& ip = "127.0.0.1", uint16_t port = 0);
  ~TcpTestServer() override { Stop(); }
  // Connections accepted so far. Any thread.
  int accepted() const { return accepted_.load(); }

 private:
  void Serve() override;
  std::atomic<int> accepted_{0};
};

// Answers every request with the configured status and body, then closes (HTTP/1.0 style),
// recording each request's head. With `tls`, serves HTTPS with a self-signed certificate made
// at construction (OpenSSL APIs, no files).
class HttpTestServer final : public LoopbackServer {
 public:
  explicit HttpTestServer(bool tls = false, uint16_t port = 0);
  ~HttpTestServer() override;

  // What the next responses carry. Any thread.
  void SetResponse(int status, std::string body) ABSL_LOCKS_EXCLUDED(mu_);
  // The request heads received so far ("GET / HTTP/1.1\r\nHost: ...\r\n\r\n"). Any thread.
  std::vector<std::string> requests() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Serve() override;
  void HandleConnection(int fd);

  void* ssl_ctx_ = nullptr;  // SSL_CTX*, when tls
  mutable absl::Mutex mu_;
  int status_ ABSL_GUARDED_BY(mu_) = 200;
  std::string body_ ABSL_GUARDED_BY(mu_) = "ok";
  std::vector<std::string> requests_ ABSL_GUARDED_BY(mu_);
};

// Answers every datagram with the configured reply (empty: echoes the datagram back).
class UdpTestServer final : public LoopbackServer {
 public:
  explicit UdpTestServer(std::string reply = "", const std::string& ip = "127.0.0.1",
                         uint16_t port = 0);
  ~UdpTestServer() override { Stop(); }
  // Datagrams received so far. Any thread.
  int received() const { return received_.load(); }

 private:
  void Serve() override;
  const std::string reply_;
  std::atomic<int> received_{0};
};

}  // namespace ferry::health::testing

#endif  // FERRY_HEALTH_TESTING_TEST_SERVERS_H_
