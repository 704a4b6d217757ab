#include "health/http_probe.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace ferry::health {
namespace {

// One client context for every probe of the process: no verification, any TLS version the
// library allows. SSL_CTX is safe to share between threads once set up.
SSL_CTX* ClientContext() {
  static SSL_CTX* ctx = [] {
    SSL_CTX* c = SSL_CTX_new(TLS_client_method());
    if (c != nullptr) SSL_CTX_set_verify(c, SSL_VERIFY_NONE, nullptr);
    return c;
  }();
  return ctx;
}

// The first OpenSSL error on this thread's queue as text (and the queue cleared).
std::string TlsError(absl::string_view what) {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return absl::StrCat("tls: ", what);
  char text[256];
  ERR_error_string_n(code, text, sizeof(text));
  return absl::StrCat("tls: ", what, ": ", text);
}

bool IsIpLiteral(const std::string& host) {
  unsigned char buffer[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buffer) == 1 ||
         inet_pton(AF_INET6, host.c_str(), buffer) == 1;
}

}  // namespace

struct HttpProbe::Tls {
  SSL* ssl = nullptr;
  BIO* in = nullptr;   // socket -> SSL (owned by ssl)
  BIO* out = nullptr;  // SSL -> socket (owned by ssl)
  bool handshake_done = false;
  ~Tls() {
    if (ssl != nullptr) SSL_free(ssl);
  }
};

HttpProbe::HttpProbe(dataplane::EventLoop& loop, const v1::HealthCheck::Http& http,
                     absl::Duration timeout, Done done)
    : ProbeCore(loop, timeout, std::move(done)), http_(http) {}

HttpProbe::~HttpProbe() = default;

std::string HttpProbe::Request(const v1::HealthCheck::Http& http, const std::string& host_header) {
  return absl::StrCat("GET ", http.path().empty() ? "/" : http.path(),
                      " HTTP/1.1\r\nHost: ", host_header,
                      "\r\nConnection: close\r\nUser-Agent: ferry-health/1\r\n\r\n");
}

std::unique_ptr<HttpProbe> HttpProbe::Start(dataplane::EventLoop& loop,
                                            const v1::HealthCheck::Http& http,
                                            const dataplane::SocketAddress& target,
                                            const std::string& host, absl::Duration timeout,
                                            Done done) {
  std::unique_ptr<HttpProbe> probe(new HttpProbe(loop, http, timeout, std::move(done)));
  if (probe->finished()) return probe;
  std::string host_header = http.host();
  if (host_header.empty()) host_header = host;
  if (host_header.empty()) {
    host_header = target.family() == AF_INET6 ? absl::StrCat("[", AddressHost(target), "]")
                                              : AddressHost(target);
  }
  probe->request_ = Request(http, host_header);
  probe->sni_ = host.empty() ? http.host() : host;
  if (IsIpLiteral(probe->sni_)) probe->sni_.clear();  // SNI carries names only (RFC 6066)
  bool connected = false;
  absl::StatusOr<UniqueFd> fd = ConnectNonBlocking(target, SOCK_STREAM, 0, &connected);
  if (!fd.ok()) {
    probe->FinishSoon(false, std::string(fd.status().message()));
    return probe;
  }
  // Writable = connected (or failed); the first OnSocketEvents sorts it out either way.
  probe->Watch(*std::move(fd), EPOLLOUT);
  return probe;
}

void HttpProbe::OnSocketEvents(uint32_t epoll_events) {
  if (!connected_) {
    if (std::string error = PendingSocketError(fd()); !error.empty()) {
      Finish(false, std::move(error));
      return;
    }
    connected_ = true;
    if (!OnConnected()) return;
  } else if ((epoll_events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) {
    if (!ReadSocket()) return;
  }
  if (tls_ != nullptr && !DriveTls()) return;
  if (!FlushOut()) return;
  if (!Evaluate()) return;
  WatchEvents(EPOLLIN | (out_.empty() ? 0u : static_cast<uint32_t>(EPOLLOUT)));
}

bool HttpProbe::OnConnected() {
  if (!http_.tls()) {
    out_ = request_;
    request_queued_ = true;
    return true;
  }
  SSL_CTX* ctx = ClientContext();
  tls_ = std::make_unique<Tls>();
  if (ctx == nullptr || (tls_->ssl = SSL_new(ctx)) == nullptr) {
    Finish(false, TlsError("cannot create a TLS client"));
    return false;
  }
  tls_->in = BIO_new(BIO_s_mem());
  tls_->out = BIO_new(BIO_s_mem());
  if (tls_->in == nullptr || tls_->out == nullptr) {
    BIO_free(tls_->in);
    BIO_free(tls_->out);
    Finish(false, TlsError("cannot create memory BIOs"));
    return false;
  }
  // An empty input BIO means "no data yet" (retry), not EOF.
  BIO_set_mem_eof_return(tls_->in, -1);
  SSL_set_bio(tls_->ssl, tls_->in, tls_->out);
  SSL_set_connect_state(tls_->ssl);
  if (!sni_.empty()) SSL_set_tlsext_host_name(tls_->ssl, sni_.c_str());
  return true;
}

bool HttpProbe::ReadSocket() {
  char buffer[16 * 1024];
  while (response_.size() < kMaxResponseBytes) {
    const ssize_t n = recv(fd(), buffer, sizeof(buffer), 0);
    if (n > 0) {
      if (tls_ != nullptr) {
        BIO_write(tls_->in, buffer, static_cast<int>(n));
      } else {
        response_.append(buffer, std::min<size_t>(n, kMaxResponseBytes - response_.size()));
      }
      continue;
    }
    if (n == 0) {
      peer_closed_ = true;
      if (tls_ != nullptr) BIO_set_mem_eof_return(tls_->in, 0);
      return true;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
    if (errno == EINTR) continue;
    if (errno == ECONNRESET) {
      // Some servers reset after answering; judge what arrived.
      peer_closed_ = true;
      if (tls_ != nullptr) BIO_set_mem_eof_return(tls_->in, 0);
      return true;
    }
    Finish(false, absl::StrCat("recv: ", strerror(errno)));
    return false;
  }
  return true;
}

bool HttpProbe::DriveTls() {
  ERR_clear_error();
  if (!tls_->handshake_done) {
    const int r = SSL_do_handshake(tls_->ssl);
    if (r == 1) {
      tls_->handshake_done = true;
    } else {
      const int error = SSL_get_error(tls_->ssl, r);
      if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) {
        Finish(false, peer_closed_ ? "tls: connection closed during the handshake"
                                   : TlsError("handshake failed"));
        return false;
      }
    }
  }
  if (tls_->handshake_done && !request_queued_) {
    // A memory BIO takes the whole record at once.
    if (SSL_write(tls_->ssl, request_.data(), static_cast<int>(request_.size())) <= 0) {
      Finish(false, TlsError("write failed"));
      return false;
    }
    request_queued_ = true;
  }
  if (tls_->handshake_done) {
    char buffer[16 * 1024];
    while (response_.size() < kMaxResponseBytes) {
      const int n = SSL_read(tls_->ssl, buffer, sizeof(buffer));
      if (n > 0) {
        response_.append(buffer, std::min<size_t>(n, kMaxResponseBytes - response_.size()));
        continue;
      }
      const int error = SSL_get_error(tls_->ssl, n);
      if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) break;
      // Close notify, or the peer closed without one (common for HTTP/1.0-style servers): EOF.
      if (error == SSL_ERROR_ZERO_RETURN || error == SSL_ERROR_SYSCALL || peer_closed_) {
        ERR_clear_error();
        peer_closed_ = true;
        break;
      }
      Finish(false, TlsError("read failed"));
      return false;
    }
  }
  // Records the library produced (handshake, request) go out through out_.
  char buffer[16 * 1024];
  int n;
  while ((n = BIO_read(tls_->out, buffer, sizeof(buffer))) > 0) out_.append(buffer, n);
  return true;
}

bool HttpProbe::FlushOut() {
  while (!out_.empty()) {
    const ssize_t n = send(fd(), out_.data(), out_.size(), MSG_NOSIGNAL);
    if (n > 0) {
      out_.erase(0, n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (n < 0 && errno == EINTR) continue;
    Finish(false, absl::StrCat("send: ", strerror(errno)));
    return false;
  }
  return true;
}

bool HttpProbe::Evaluate() {
  const size_t line_end = response_.find("\r\n");
  if (line_end == std::string::npos) {
    if (peer_closed_ || response_.size() >= kMaxResponseBytes) {
      Finish(false, response_.empty() ? "http: connection closed before the status line"
                                      : "http: no status line");
      return false;
    }
    return true;
  }
  // "HTTP/1.1 200 OK"
  const absl::string_view line(response_.data(), line_end);
  const size_t space = line.find(' ');
  int status = 0;
  if (!absl::StartsWith(line, "HTTP/") || space == absl::string_view::npos ||
      !absl::SimpleAtoi(line.substr(space + 1, 3), &status)) {
    Finish(false,
           absl::StrCat("http: bad status line \"", absl::CHexEscape(line.substr(0, 64)), "\""));
    return false;
  }
  const uint32_t min = http_.expected_status_min() != 0 ? http_.expected_status_min() : 200;
  const uint32_t max = http_.expected_status_max() != 0 ? http_.expected_status_max() : 399;
  if (status < 0 || static_cast<uint32_t>(status) < min || static_cast<uint32_t>(status) > max) {
    Finish(false, absl::StrCat("http status ", status, " not in ", min, "..", max));
    return false;
  }
  const std::string& want = http_.expected_body_substring();
  if (want.empty()) {
    Finish(true, "ok");
    return false;
  }
  const size_t head_end = response_.find("\r\n\r\n");
  if (head_end != std::string::npos && response_.find(want, head_end + 4) != std::string::npos) {
    Finish(true, "ok");
    return false;
  }
  if (peer_closed_ || response_.size() >= kMaxResponseBytes) {
    Finish(false, absl::StrCat("http body does not contain \"", absl::CHexEscape(want), "\""));
    return false;
  }
  return true;
}

}  // namespace ferry::health
