#include "health/testing/test_servers.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/mutex_lock.h"
#include "glog/logging.h"

namespace ferry::health::testing {

uint16_t PortOf(const dataplane::SocketAddress& address) {
  return ntohs(address.family() == AF_INET
                   ? reinterpret_cast<const sockaddr_in*>(address.get())->sin_port
                   : reinterpret_cast<const sockaddr_in6*>(address.get())->sin6_port);
}

LoopbackServer::LoopbackServer(int type, const std::string& ip, uint16_t port) {
  absl::StatusOr<dataplane::SocketAddress> any = dataplane::ParseSocketAddress(
      ip.find(':') != std::string::npos ? absl::StrCat("[", ip, "]:1") : ip + ":1");
  CHECK(any.ok()) << any.status();
  dataplane::SocketAddress bind_address = *any;
  if (bind_address.family() == AF_INET) {
    reinterpret_cast<sockaddr_in*>(bind_address.get())->sin_port = htons(port);
  } else {
    reinterpret_cast<sockaddr_in6*>(bind_address.get())->sin6_port = htons(port);
  }
  fd_.reset(socket(bind_address.family(), type | SOCK_CLOEXEC, 0));
  PCHECK(fd_) << "socket";
  const int one = 1;
  setsockopt(fd_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  PCHECK(bind(fd_.get(), bind_address.get(), bind_address.length) == 0) << "bind";
  if (type == SOCK_STREAM) PCHECK(listen(fd_.get(), 4096) == 0) << "listen";
  sockaddr_storage bound = {};
  socklen_t length = sizeof(bound);
  PCHECK(getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&bound), &length) == 0);
  address_ = dataplane::SocketAddress::From(reinterpret_cast<sockaddr*>(&bound), length);
  int pipe_fds[2];
  PCHECK(pipe2(pipe_fds, O_CLOEXEC) == 0);
  stop_read_.reset(pipe_fds[0]);
  stop_write_.reset(pipe_fds[1]);
}

LoopbackServer::~LoopbackServer() { Stop(); }

void LoopbackServer::StartThread() {
  thread_ = std::thread([this] { Serve(); });
}

void LoopbackServer::Stop() {
  if (!stop_write_) return;
  stop_write_.reset();  // the read end sees EOF: readable
  if (thread_.joinable()) thread_.join();
  fd_.reset();
}

bool LoopbackServer::WaitReadable(int fd) {
  pollfd fds[2] = {{fd, POLLIN, 0}, {stop_read_.get(), POLLIN, 0}};
  while (true) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (fds[1].revents != 0) return false;
    if (fds[0].revents != 0) return true;
  }
}

TcpTestServer::TcpTestServer(const std::string& ip, uint16_t port)
    : LoopbackServer(SOCK_STREAM, ip, port) {
  StartThread();
}

void TcpTestServer::Serve() {
  while (WaitReadable(fd_.get())) {
    const int conn = accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) continue;
    ++accepted_;
    close(conn);
  }
}

namespace {

// A self-signed P-256 certificate for CN=localhost, valid for a day.
SSL_CTX* NewSelfSignedServerContext() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  CHECK(key != nullptr) << "EVP_EC_gen";
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 24 * 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  CHECK(X509_sign(cert, key, EVP_sha256()) > 0) << "X509_sign";
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  CHECK(ctx != nullptr);
  CHECK(SSL_CTX_use_certificate(ctx, cert) == 1);
  CHECK(SSL_CTX_use_PrivateKey(ctx, key) == 1);
  X509_free(cert);
  EVP_PKEY_free(key);
  return ctx;
}

}  // namespace

HttpTestServer::HttpTestServer(bool tls, uint16_t port)
    : LoopbackServer(SOCK_STREAM, "127.0.0.1", port) {
  if (tls) ssl_ctx_ = NewSelfSignedServerContext();
  StartThread();
}

HttpTestServer::~HttpTestServer() {
  Stop();
  if (ssl_ctx_ != nullptr) SSL_CTX_free(static_cast<SSL_CTX*>(ssl_ctx_));
}

void HttpTestServer::SetResponse(int status, std::string body) {
  MutexLock lock(&mu_);
  status_ = status;
  body_ = std::move(body);
}

std::vector<std::string> HttpTestServer::requests() const {
  MutexLock lock(&mu_);
  return requests_;
}

void HttpTestServer::Serve() {
  while (WaitReadable(fd_.get())) {
    const int conn = accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) continue;
    // A client that stalls must not wedge the server (or Stop) for long.
    timeval limit = {2, 0};
    setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
    setsockopt(conn, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit));
    HandleConnection(conn);
    close(conn);
  }
}

void HttpTestServer::HandleConnection(int fd) {
  SSL* ssl = nullptr;
  if (ssl_ctx_ != nullptr) {
    ssl = SSL_new(static_cast<SSL_CTX*>(ssl_ctx_));
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) != 1) {
      ERR_clear_error();
      SSL_free(ssl);
      return;
    }
  }
  auto read_some = [&](char* buffer, int size) {
    return ssl != nullptr ? SSL_read(ssl, buffer, size)
                          : static_cast<int>(recv(fd, buffer, size, 0));
  };
  auto write_all = [&](const std::string& data) {
    size_t sent = 0;
    while (sent < data.size()) {
      const int n =
          ssl != nullptr
              ? SSL_write(ssl, data.data() + sent, static_cast<int>(data.size() - sent))
              : static_cast<int>(send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL));
      if (n <= 0) return;
      sent += n;
    }
  };
  std::string head;
  char buffer[4096];
  while (head.find("\r\n\r\n") == std::string::npos && head.size() < 65536) {
    const int n = read_some(buffer, sizeof(buffer));
    if (n <= 0) break;
    head.append(buffer, n);
  }
  int status;
  std::string body;
  {
    MutexLock lock(&mu_);
    requests_.push_back(head);
    status = status_;
    body = body_;
  }
  write_all(absl::StrCat("HTTP/1.1 ", status, " Test\r\nContent-Length: ", body.size(),
                         "\r\nConnection: close\r\n\r\n", body));
  if (ssl != nullptr) {
    SSL_shutdown(ssl);
    SSL_free(ssl);
    ERR_clear_error();
  }
}

UdpTestServer::UdpTestServer(std::string reply, const std::string& ip, uint16_t port)
    : LoopbackServer(SOCK_DGRAM, ip, port), reply_(std::move(reply)) {
  StartThread();
}

void UdpTestServer::Serve() {
  char buffer[2048];
  while (WaitReadable(fd_.get())) {
    sockaddr_storage peer = {};
    socklen_t length = sizeof(peer);
    const ssize_t n = recvfrom(fd_.get(), buffer, sizeof(buffer), MSG_DONTWAIT,
                               reinterpret_cast<sockaddr*>(&peer), &length);
    if (n < 0) continue;
    ++received_;
    const std::string reply = reply_.empty() ? std::string(buffer, n) : reply_;
    sendto(fd_.get(), reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&peer), length);
  }
}

}  // namespace ferry::health::testing
