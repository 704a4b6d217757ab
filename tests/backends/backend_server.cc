// backend_server: the services Ferry's end-to-end tests tunnel to, in one
// process. Each mode listens on its own address (port 0 picks a free port) and
// the bound addresses are published in the ready file (--ready_file, key=value
// lines, written atomically once every listener is bound):
//
//   --udp_echo=HOST:PORT    key udp_echo: every datagram goes back to its
//                           sender, with --echo_prefix in front of it.
//   --tcp_echo=HOST:PORT    key tcp_echo: echoes the bytes of a connection until
//                           the client's EOF, then sends its own FIN.
//   --http=HOST:PORT        key http: HTTP/1.1, one request per connection:
//                           GET / -> "hello from <--name>\n"; GET /bytes/N -> N
//                           pattern bytes; POST /sha256 -> hex SHA-256 of the body.
//   --tcp_sha256=HOST:PORT  key tcp_sha256: reads to EOF, answers the 64 hex
//                           digits of the SHA-256 of what it read, closes.
//   --tcp_source=HOST:PORT  key tcp_source: reads a decimal byte count and '\n',
//                           sends that many pattern bytes, closes.
//   --grpc_health=HOST:PORT key grpc_health: a gRPC server (plaintext) whose only
//                           service is grpc.health.v1.Health, answering SERVING.
//
// Pattern bytes: byte i is (i * 131 + 7) & 0xff (tests/backends/pattern.h).
// Every TCP connection has its own thread (blocking I/O, 60 s timeouts); up to
// 4096 at once. SIGTERM or SIGINT stops the process (exit 0): listeners close,
// open connections are shut down and their threads joined.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/listen_address.h"
#include "common/mutex_lock.h"
#include "common/process.h"
#include "glog/logging.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "tests/backends/pattern.h"

ABSL_FLAG(std::string, udp_echo, "", "UDP echo listen address (host:port; port 0: any).");
ABSL_FLAG(std::string, tcp_echo, "", "TCP echo listen address (half-close aware).");
ABSL_FLAG(std::string, http, "", "HTTP/1.1 listen address: GET /, GET /bytes/N, POST /sha256.");
ABSL_FLAG(std::string, tcp_sha256, "", "Listen address of the read-to-EOF, answer-SHA-256 mode.");
ABSL_FLAG(std::string, tcp_source, "", "Listen address of the 'N\\n' -> N pattern bytes mode.");
ABSL_FLAG(std::string, grpc_health, "",
          "gRPC listen address serving only grpc.health.v1.Health (SERVING).");
ABSL_FLAG(std::string, name, "backend", "Name in the HTTP greeting \"hello from <name>\".");
ABSL_FLAG(std::string, echo_prefix, "", "Prepended to every UDP echo reply.");

namespace ferry::backends {
namespace {

// A connection that stalls this long in one read or write is dropped.
constexpr int kIoTimeoutSeconds = 60;
constexpr size_t kMaxConnections = 4096;
constexpr size_t kMaxHttpHeaderBytes = 16 * 1024;
// Largest count tcp_source and GET /bytes/N accept.
constexpr uint64_t kMaxSourceBytes = uint64_t{1} << 36;
constexpr size_t kChunk = 64 * 1024;
// After its answer a server drains what the client still sends (at most this
// much) before closing, so that the close is a FIN and not a reset that could
// destroy the answer in flight.
constexpr size_t kMaxDrainBytes = 1 << 20;

// Live connection sockets, so that shutdown can unblock the threads serving them.
class ConnectionSet {
 public:
  // False (the caller closes `fd`) when full or stopping.
  bool Add(int fd) {
    MutexLock lock(&mu_);
    if (stopping_ || fds_.size() >= kMaxConnections) return false;
    fds_.insert(fd);
    return true;
  }
  // Call before closing `fd`, so ShutdownAll never touches a reused number.
  void Remove(int fd) {
    MutexLock lock(&mu_);
    fds_.erase(fd);
  }
  // Refuses new connections and shuts every live one down (blocked reads and
  // writes return), so that their threads end.
  void ShutdownAll() {
    MutexLock lock(&mu_);
    stopping_ = true;
    for (int fd : fds_) shutdown(fd, SHUT_RDWR);
  }
  // True once every connection thread has removed its socket.
  bool WaitEmpty(absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      {
        MutexLock lock(&mu_);
        if (fds_.empty()) return true;
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
    return false;
  }

 private:
  absl::Mutex mu_;
  absl::flat_hash_set<int> fds_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

// read(2) retrying EINTR: > 0 bytes, 0 at EOF, < 0 on error or timeout.
ssize_t ReadSome(int fd, void* buffer, size_t size) {
  while (true) {
    const ssize_t n = read(fd, buffer, size);
    if (n >= 0 || errno != EINTR) return n;
  }
}

bool WriteAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Sends pattern bytes [0, count).
bool WritePattern(int fd, uint64_t count) {
  std::vector<uint8_t> chunk(kChunk);
  for (uint64_t offset = 0; offset < count; offset += chunk.size()) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(chunk.size(), count - offset));
    FillPattern(offset, absl::MakeSpan(chunk.data(), n));
    if (!WriteAll(fd, absl::string_view(reinterpret_cast<const char*>(chunk.data()), n))) {
      return false;
    }
  }
  return true;
}

// Sends FIN, then reads (and discards) until the client's EOF, an error, or
// kMaxDrainBytes.
void FinishAndDrain(int fd) {
  shutdown(fd, SHUT_WR);
  char buffer[4096];
  size_t drained = 0;
  while (drained < kMaxDrainBytes) {
    const ssize_t n = ReadSome(fd, buffer, sizeof(buffer));
    if (n <= 0) return;
    drained += static_cast<size_t>(n);
  }
}

// --- TCP modes: each serves one connection on its own thread -----------------

void ServeTcpEcho(int fd) {
  std::vector<char> buffer(kChunk);
  while (true) {
    const ssize_t n = ReadSome(fd, buffer.data(), buffer.size());
    if (n < 0) return;
    if (n == 0) {
      shutdown(fd, SHUT_WR);  // The client's EOF: everything is echoed, send ours.
      return;
    }
    if (!WriteAll(fd, absl::string_view(buffer.data(), static_cast<size_t>(n)))) return;
  }
}

void ServeTcpSha256(int fd) {
  Sha256 sha;
  std::vector<uint8_t> buffer(kChunk);
  while (true) {
    const ssize_t n = ReadSome(fd, buffer.data(), buffer.size());
    if (n < 0) return;
    if (n == 0) break;
    sha.Update(absl::MakeConstSpan(buffer.data(), static_cast<size_t>(n)));
  }
  if (WriteAll(fd, sha.HexDigest())) shutdown(fd, SHUT_WR);
}

void ServeTcpSource(int fd) {
  std::string line;
  char c = 0;
  while (line.size() <= 20) {
    if (ReadSome(fd, &c, 1) != 1) return;
    if (c == '\n') break;
    line += c;
  }
  uint64_t count = 0;
  if (c != '\n' || !absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &count) ||
      count > kMaxSourceBytes) {
    LOG(WARNING) << "tcp_source: \"" << absl::CEscape(line)
                 << "\" is not a byte count and '\\n'; closing";
    return;
  }
  if (WritePattern(fd, count)) FinishAndDrain(fd);
}

struct HttpRequest {
  std::string method;
  std::string path;
  std::optional<uint64_t> content_length;
  bool chunked = false;
  std::string body_start;  // body bytes read along with the header
};

// Reads and parses the request line and headers; false for a malformed or
// oversized request (or a closed connection).
bool ReadHttpRequest(int fd, HttpRequest* request) {
  std::string data;
  size_t end = std::string::npos;
  char buffer[4096];
  while ((end = data.find("\r\n\r\n")) == std::string::npos) {
    if (data.size() > kMaxHttpHeaderBytes) return false;
    const ssize_t n = ReadSome(fd, buffer, sizeof(buffer));
    if (n <= 0) return false;
    data.append(buffer, static_cast<size_t>(n));
  }
  request->body_start = data.substr(end + 4);
  std::vector<absl::string_view> lines =
      absl::StrSplit(absl::string_view(data).substr(0, end), "\r\n");
  std::vector<absl::string_view> parts = absl::StrSplit(lines[0], ' ');
  if (parts.size() != 3 || !absl::StartsWith(parts[2], "HTTP/1.")) return false;
  request->method = std::string(parts[0]);
  request->path = std::string(parts[1]);
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t colon = lines[i].find(':');
    if (colon == absl::string_view::npos) return false;
    const std::string name = absl::AsciiStrToLower(lines[i].substr(0, colon));
    const absl::string_view value = absl::StripAsciiWhitespace(lines[i].substr(colon + 1));
    if (name == "content-length") {
      uint64_t length = 0;
      if (!absl::SimpleAtoi(value, &length)) return false;
      request->content_length = length;
    } else if (name == "transfer-encoding") {
      request->chunked = true;
    }
  }
  return true;
}

std::string HttpHead(int status, absl::string_view reason, absl::string_view content_type,
                     uint64_t content_length) {
  return absl::StrCat("HTTP/1.1 ", status, " ", reason, "\r\nContent-Type: ", content_type,
                      "\r\nContent-Length: ", content_length, "\r\nConnection: close\r\n\r\n");
}

bool HttpText(int fd, int status, absl::string_view reason, absl::string_view body) {
  return WriteAll(fd, absl::StrCat(HttpHead(status, reason, "text/plain", body.size()), body));
}

void ServeHttp(int fd, const std::string& name) {
  HttpRequest request;
  if (!ReadHttpRequest(fd, &request)) {
    if (HttpText(fd, 400, "Bad Request", "malformed request\n")) FinishAndDrain(fd);
    return;
  }
  bool ok = false;
  uint64_t count = 0;
  if (request.method == "GET" && request.path == "/") {
    ok = HttpText(fd, 200, "OK", absl::StrCat("hello from ", name, "\n"));
  } else if (request.method == "GET" && absl::StartsWith(request.path, "/bytes/")) {
    if (absl::SimpleAtoi(absl::string_view(request.path).substr(7), &count) &&
        count <= kMaxSourceBytes) {
      ok = WriteAll(fd, HttpHead(200, "OK", "application/octet-stream", count)) &&
           WritePattern(fd, count);
    } else {
      ok = HttpText(fd, 400, "Bad Request",
                    absl::StrCat("/bytes/N takes N from 0 to ", kMaxSourceBytes, "\n"));
    }
  } else if (request.method == "POST" && request.path == "/sha256") {
    if (request.chunked || !request.content_length.has_value()) {
      ok = HttpText(fd, 411, "Length Required", "POST /sha256 needs a Content-Length\n");
    } else if (request.body_start.size() > *request.content_length) {
      ok = HttpText(fd, 400, "Bad Request", "more body bytes than the Content-Length\n");
    } else {
      Sha256 sha;
      sha.Update(request.body_start);
      uint64_t remaining = *request.content_length - request.body_start.size();
      std::vector<uint8_t> buffer(kChunk);
      while (remaining > 0) {
        const ssize_t n =
            ReadSome(fd, buffer.data(), static_cast<size_t>(std::min<uint64_t>(remaining, kChunk)));
        if (n <= 0) return;  // The client went away before its body was complete.
        sha.Update(absl::MakeConstSpan(buffer.data(), static_cast<size_t>(n)));
        remaining -= static_cast<uint64_t>(n);
      }
      ok = HttpText(fd, 200, "OK", sha.HexDigest());
    }
  } else {
    ok = HttpText(fd, 404, "Not Found",
                  absl::StrCat(request.method, " ", request.path,
                               " is not served (GET /, GET /bytes/N, POST /sha256)\n"));
  }
  if (ok) FinishAndDrain(fd);
}

// --- Listeners ---------------------------------------------------------------

// Accepts connections on `listen_fd` until `stop`, serving each with `serve`
// on a thread of its own.
void AcceptLoop(int listen_fd, const std::atomic<bool>& stop, ConnectionSet& connections,
                const std::function<void(int)>& serve, const std::string& mode) {
  while (!stop.load()) {
    pollfd p{listen_fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);  // blocking I/O
    if (fd < 0) {
      if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
        PLOG(WARNING) << mode << ": accept";
        absl::SleepFor(absl::Milliseconds(10));  // e.g. EMFILE: do not spin
      }
      continue;
    }
    const timeval timeout{kIoTimeoutSeconds, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (!connections.Add(fd)) {
      LOG(WARNING) << mode << ": " << kMaxConnections << " connections open; refusing one";
      close(fd);
      continue;
    }
    std::thread([fd, &serve, &connections] {
      serve(fd);
      connections.Remove(fd);
      close(fd);
    }).detach();
  }
}

void UdpEchoLoop(int fd, const std::atomic<bool>& stop, const std::string& prefix) {
  std::vector<char> buffer(prefix.size() + 65536);
  std::copy(prefix.begin(), prefix.end(), buffer.begin());
  char* const payload = buffer.data() + prefix.size();
  uint64_t echoed = 0;
  while (!stop.load()) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    while (true) {
      sockaddr_storage peer;
      socklen_t peer_size = sizeof(peer);
      const ssize_t n = recvfrom(fd, payload, 65536, MSG_DONTWAIT,
                                 reinterpret_cast<sockaddr*>(&peer), &peer_size);
      if (n < 0) break;  // EAGAIN: drained; anything else: try again after poll
      // A full socket buffer drops the echo, as UDP may.
      sendto(fd, buffer.data(), prefix.size() + static_cast<size_t>(n), MSG_DONTWAIT,
             reinterpret_cast<sockaddr*>(&peer), peer_size);
      ++echoed;
    }
  }
  LOG(INFO) << "udp_echo: " << echoed << " datagrams echoed";
}

struct Mode {
  std::string key;  // flag name and ready-file key
  std::string listen;
  std::function<void(int)> serve;  // null for udp_echo
};

// grpc.health.v1.Health answering SERVING for every service name.
class ServingHealth final : public grpc::health::v1::Health::Service {
  grpc::Status Check(grpc::ServerContext*, const grpc::health::v1::HealthCheckRequest*,
                     grpc::health::v1::HealthCheckResponse* response) override {
    response->set_status(grpc::health::v1::HealthCheckResponse::SERVING);
    return grpc::Status::OK;
  }
};

int Run() {
  const std::string name = absl::GetFlag(FLAGS_name);
  std::vector<Mode> modes;
  auto add = [&modes](std::string key, std::string listen, std::function<void(int)> serve) {
    if (!listen.empty()) modes.push_back({std::move(key), std::move(listen), std::move(serve)});
  };
  add("udp_echo", absl::GetFlag(FLAGS_udp_echo), nullptr);
  add("tcp_echo", absl::GetFlag(FLAGS_tcp_echo), ServeTcpEcho);
  add("http", absl::GetFlag(FLAGS_http), [name](int fd) { ServeHttp(fd, name); });
  add("tcp_sha256", absl::GetFlag(FLAGS_tcp_sha256), ServeTcpSha256);
  add("tcp_source", absl::GetFlag(FLAGS_tcp_source), ServeTcpSource);
  const std::string grpc_listen = absl::GetFlag(FLAGS_grpc_health);
  if (modes.empty() && grpc_listen.empty()) {
    LOG(ERROR) << "No mode: give at least one of --udp_echo, --tcp_echo, --http, --tcp_sha256, "
                  "--tcp_source, --grpc_health (each a listen address such as 127.0.0.1:0)";
    return 2;
  }

  std::vector<int> fds;
  std::map<std::string, std::string> ready;
  for (const Mode& mode : modes) {
    absl::StatusOr<ListenAddress> address =
        ParseListenAddress(mode.listen, HostForm::kNumeric, mode.key);
    if (!address.ok()) {
      LOG(ERROR) << "--" << mode.key << ": " << address.status().message();
      return 2;
    }
    absl::StatusOr<int> fd =
        BindListenSocket(*address, mode.serve ? SocketType::kTcp : SocketType::kUdp);
    if (!fd.ok()) {
      LOG(ERROR) << "--" << mode.key << ": " << fd.status().message();
      return 1;
    }
    fds.push_back(*fd);
    absl::StatusOr<int> port = LocalPort(*fd);
    if (!port.ok()) {
      LOG(ERROR) << port.status();
      return 1;
    }
    ready[mode.key] = BoundAddress(mode.listen, *port);
  }
  std::unique_ptr<grpc::Server> grpc_server;
  if (!grpc_listen.empty()) {
    static ServingHealth& health = *new ServingHealth;
    grpc::ServerBuilder builder;
    builder.RegisterService(&health);
    int grpc_port = 0;
    builder.AddListeningPort(grpc_listen, grpc::InsecureServerCredentials(), &grpc_port);
    grpc_server = builder.BuildAndStart();
    if (grpc_server == nullptr || grpc_port == 0) {
      LOG(ERROR) << "--grpc_health: cannot listen on " << grpc_listen;
      return 1;
    }
    ready["grpc_health"] = BoundAddress(grpc_listen, grpc_port);
  }

  std::atomic<bool> stop{false};
  // Never freed: a connection thread may still be leaving Remove() when the
  // set becomes empty.
  static ConnectionSet& connections = *new ConnectionSet;
  const std::string prefix = absl::GetFlag(FLAGS_echo_prefix);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < modes.size(); ++i) {
    const Mode& mode = modes[i];
    const int fd = fds[i];
    if (mode.serve) {
      threads.emplace_back(
          [fd, &stop, &mode] { AcceptLoop(fd, stop, connections, mode.serve, mode.key); });
    } else {
      threads.emplace_back([fd, &stop, &prefix] { UdpEchoLoop(fd, stop, prefix); });
    }
  }
  for (const auto& [key, address] : ready) LOG(INFO) << key << " on " << address;
  if (absl::Status s = WriteReadyFile(ready); !s.ok()) LOG(ERROR) << s;

  WaitForShutdownSignal();
  if (grpc_server != nullptr) grpc_server->Shutdown(absl::ToChronoTime(absl::Now()));
  stop.store(true);
  for (std::thread& thread : threads) thread.join();
  for (int fd : fds) close(fd);
  connections.ShutdownAll();
  if (!connections.WaitEmpty(absl::Seconds(5))) {
    // A thread still inside serve() uses `modes`: leave without unwinding them.
    LOG(ERROR) << "Connections still open 5 s after shutdown; exiting anyway";
    google::FlushLogFiles(google::GLOG_INFO);
    _exit(1);
  }
  LOG(INFO) << "backend_server stopped";
  return 0;
}

}  // namespace
}  // namespace ferry::backends

int main(int argc, char** argv) {
  ferry::InitProcess(argc, argv,
                     "backend_server: UDP/TCP echo, HTTP, SHA-256 and byte-source test backends.\n"
                     "  backend_server --udp_echo=127.0.0.1:0 --http=127.0.0.1:0 "
                     "--ready_file=ready");
  return ferry::backends::Run();
}
