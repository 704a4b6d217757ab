// HttpProbe: the http health check — GET over a non-blocking socket, optionally through TLS
// (OpenSSL with memory BIOs, so the loop does all socket I/O and no write can raise SIGPIPE).
//
// Healthy when the status code is in [expected_status_min, expected_status_max] and, if
// expected_body_substring is set, the body (read until EOF or 64 KiB) contains it. TLS sends SNI
// (when the host is a name, not an IP) and does not verify the certificate: the check is about
// liveness, not identity (see HealthCheck.Http.tls).

#ifndef FERRY_HEALTH_HTTP_PROBE_H_
#define FERRY_HEALTH_HTTP_PROBE_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "dataplane/event_loop.h"
#include "dataplane/socket_address.h"
#include "ferry/v1/common.pb.h"
#include "health/probe_core.h"

namespace ferry::health {

class HttpProbe final : public ProbeCore {
 public:
  // Most response bytes read (head and body together).
  static constexpr size_t kMaxResponseBytes = 64 * 1024;

  // Sends `GET <path> HTTP/1.1` with `Host: <http.host, else host, else the target's IP>` to
  // `target`. `http` should have its defaults applied (WithDefaults in check_defaults.h); an
  // empty path is sent as "/". Failure details: "connect: ...", "tls: ...", "http: connection
  // closed before the status line", "http: bad status line ...", "http status 503 not in
  // 200..399", "http body does not contain \"...\"", "timeout". Same rules as Probe::Start.
  static std::unique_ptr<HttpProbe> Start(dataplane::EventLoop& loop,
                                          const v1::HealthCheck::Http& http,
                                          const dataplane::SocketAddress& target,
                                          const std::string& host, absl::Duration timeout,
                                          Done done);
  ~HttpProbe() override;

  // The request sent for `http` with Host `host_header` (exposed for tests).
  static std::string Request(const v1::HealthCheck::Http& http, const std::string& host_header);

 private:
  struct Tls;
  HttpProbe(dataplane::EventLoop& loop, const v1::HealthCheck::Http& http, absl::Duration timeout,
            Done done);

  void OnSocketEvents(uint32_t epoll_events) override;
  // Connected: sets up TLS (when asked) and queues the request.
  bool OnConnected();
  // Moves bytes: socket -> TLS -> response_, request -> TLS -> out_ -> socket. False when the
  // probe finished.
  bool ReadSocket();
  bool DriveTls();
  bool FlushOut();
  // Judges response_ so far; finishes when a verdict is possible. False when finished.
  bool Evaluate();

  const v1::HealthCheck::Http http_;
  std::string sni_;
  std::string request_;
  bool connected_ = false;
  bool request_queued_ = false;
  bool peer_closed_ = false;
  std::string out_;       // bytes for the socket (plain request, or TLS records)
  std::string response_;  // plaintext response
  std::unique_ptr<Tls> tls_;
};

}  // namespace ferry::health

#endif  // FERRY_HEALTH_HTTP_PROBE_H_
