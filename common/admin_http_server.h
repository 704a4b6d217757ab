// The admin HTTP port of every Ferry process: /metrics for Prometheus,
// /healthz and /readyz for supervisors and load balancers, and any small
// read-only status page a process wants to add.
//
// A deliberately small HTTP/1.1 server, so that a scraper, a port scanner or a
// slow client can never hurt the process it observes:
//  - GET and HEAD only (any other method gets 405); no request bodies;
//  - one request per connection: every response carries `Connection: close`,
//    and the server half-closes, discards what the client still sends (up to
//    64 KiB, for up to a second) so that no RST truncates the response, then
//    closes;
//  - the request line and headers are bounded (431 when larger), malformed
//    requests get 400, an HTTP version other than 1.x gets 505;
//  - a client has `read_timeout` in total to send its request (408 after
//    that, however slowly it trickles bytes) and `write_timeout` to read the
//    response;
//  - at most `max_connections` connections are open; further clients wait in
//    the kernel's listen backlog until one closes.
// No TLS: bind it to loopback or a management network.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "prometheus/registry.h"

namespace ferry {

// A request as handlers see it.
struct HttpRequest {
  // "GET" or "HEAD"; handlers never see other methods. A HEAD response is the
  // GET response without its body, so most handlers can ignore the method.
  std::string method;
  // The request target up to '?', exactly as sent (no percent-decoding, no
  // normalization), e.g. "/metrics".
  std::string path;
  // The query parameters, percent-decoded ('+' is a space). A parameter without
  // '=' maps to "". For a repeated name, the first value wins.
  std::map<std::string, std::string> query;
};

// A handler's answer. The server adds Content-Length and Connection: close.
struct HttpResponse {
  // Must be 200..599, else the client gets 500. 204 and 304 are sent without a
  // body.
  int status = 200;
  // Sent as Content-Type unless empty; must not contain control characters,
  // else the client gets 500.
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

class AdminHttpServer {
 public:
  // Called on the server thread, one request at a time, so it must not block
  // for long (a slow handler delays every other client) and must be safe to
  // call concurrently with the rest of the process. An exception thrown by a
  // handler becomes a 500 response.
  using Handler = std::function<HttpResponse(const HttpRequest&)>;

  struct Options {
    // Open connections at most; further clients wait in the listen backlog.
    int max_connections = 64;
    // Request line plus headers plus the blank line ending them, in bytes.
    size_t max_header_bytes = 8 * 1024;
    // Time from accept until the whole request head has arrived.
    absl::Duration read_timeout = absl::Seconds(5);
    // Time to send the whole response once it is ready.
    absl::Duration write_timeout = absl::Seconds(10);
  };

  // Does not bind or start anything yet. Crashes (a bug in the caller) when an
  // option is not positive or max_header_bytes is too small for a request line.
  AdminHttpServer();
  explicit AdminHttpServer(Options options);
  // Stops the server (see Stop).
  ~AdminHttpServer();

  AdminHttpServer(const AdminHttpServer&) = delete;
  AdminHttpServer& operator=(const AdminHttpServer&) = delete;

  // Registers `handler` for requests whose path is exactly `path` (which must
  // start with '/'). Requests to unregistered paths get 404. Call before
  // Start(), from the thread that owns the server: handlers are not locked.
  // Crashes (a bug in the caller) when called after Start(), when `path` does
  // not start with '/' or is already registered, or when `handler` is empty.
  void Handle(std::string path, Handler handler);

  // Registers /metrics, rendering `registry` in Prometheus text format 0.0.4
  // (Content-Type "text/plain; version=0.0.4; charset=utf-8") on each scrape.
  // The server shares ownership of `registry`, which must not be null. Same
  // rules as Handle().
  void ServeMetrics(std::shared_ptr<prometheus::Registry> registry);

  // Registers the standard probes: /healthz answers 200 "ok" whenever the
  // server runs (liveness); /readyz answers 200 "ready" when `ready()` returns
  // true, else 503 "not ready". `ready` runs on the server thread and must not
  // be empty. Same rules as Handle().
  void ServeHealth(std::function<bool()> ready);

  // Binds `listen_address` and starts serving on a new thread. The address is
  // "host:port" or "[ipv6]:port", where host is an IP address or a name
  // (resolved here; the first address that binds wins) and port is 0..65535,
  // 0 meaning any free port (see port()). Returns INVALID_ARGUMENT for a
  // malformed or unresolvable address or one that is not local, ALREADY_EXISTS
  // when another socket listens there, PERMISSION_DENIED for a privileged port
  // without the capability, FAILED_PRECONDITION after a successful Start() or
  // after Stop(): a server runs at most once (a failed Start may be retried).
  absl::Status Start(const std::string& listen_address);

  // The bound port once Start() succeeded (still after Stop()), else 0.
  // Thread-safe.
  int port() const { return port_.load(std::memory_order_acquire); }

  // Stops accepting, closes every connection (requests in progress are cut),
  // joins the server thread and closes the socket. Idempotent and thread-safe;
  // returns once the thread is gone. Must not be called from a handler.
  void Stop();

 private:
  enum class State { kNew, kRunning, kStopped };

  const Options options_;
  // Written only before Start(); the server thread reads it after.
  absl::flat_hash_map<std::string, Handler> handlers_;

  std::mutex mu_;  // Serializes Handle, Start and Stop.
  State state_ ABSL_GUARDED_BY(mu_) = State::kNew;
  int listen_fd_ ABSL_GUARDED_BY(mu_) = -1;
  int epoll_fd_ ABSL_GUARDED_BY(mu_) = -1;
  int wake_fd_ ABSL_GUARDED_BY(mu_) = -1;  // eventfd that tells the thread to stop.
  std::thread thread_ ABSL_GUARDED_BY(mu_);
  std::atomic<int> port_{0};
};

}  // namespace ferry
