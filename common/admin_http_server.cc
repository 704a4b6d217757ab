#include "common/admin_http_server.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <exception>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "common/listen_address.h"
#include "common/metrics.h"
#include "glog/logging.h"

namespace ferry {
namespace {

using Clock = std::chrono::steady_clock;

// epoll user data: connections get ids from kFirstConnectionId up, never
// reused, so an event for a connection closed earlier in the same batch finds
// nothing instead of a newer connection that got the same fd.
constexpr uint64_t kListenId = 0;
constexpr uint64_t kWakeId = 1;
constexpr uint64_t kFirstConnectionId = 2;

constexpr size_t kReadChunk = 4096;
// After the response, what the client still sends (a request body, the rest of
// oversize headers) is read and dropped so that closing does not send a RST,
// which could destroy the response before the client reads it. Bounded in
// bytes and time.
constexpr size_t kMaxDrainBytes = 64 * 1024;
constexpr Clock::duration kLingerTimeout = std::chrono::seconds(1);
// Pause after accept() fails for lack of fds or memory, instead of spinning.
constexpr Clock::duration kAcceptRetryDelay = std::chrono::milliseconds(100);

absl::string_view ReasonPhrase(int status) {
  static constexpr std::pair<int, const char*> kPhrases[] = {
      {200, "OK"},
      {201, "Created"},
      {202, "Accepted"},
      {204, "No Content"},
      {301, "Moved Permanently"},
      {302, "Found"},
      {304, "Not Modified"},
      {307, "Temporary Redirect"},
      {308, "Permanent Redirect"},
      {400, "Bad Request"},
      {401, "Unauthorized"},
      {403, "Forbidden"},
      {404, "Not Found"},
      {405, "Method Not Allowed"},
      {408, "Request Timeout"},
      {409, "Conflict"},
      {410, "Gone"},
      {412, "Precondition Failed"},
      {413, "Content Too Large"},
      {414, "URI Too Long"},
      {429, "Too Many Requests"},
      {431, "Request Header Fields Too Large"},
      {500, "Internal Server Error"},
      {501, "Not Implemented"},
      {502, "Bad Gateway"},
      {503, "Service Unavailable"},
      {504, "Gateway Timeout"},
      {505, "HTTP Version Not Supported"},
  };
  for (const auto& entry : kPhrases) {
    if (entry.first == status) return entry.second;
  }
  return "";  // The reason phrase is optional (RFC 9112 section 4).
}

// RFC 9110 tchar.
bool IsTokenChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         absl::string_view("!#$%&'*+-.^_`|~").find(c) != absl::string_view::npos;
}

bool IsToken(absl::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), IsTokenChar);
}

// Visible ASCII, as allowed in a request target.
bool IsVisible(absl::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

// A header value: no control characters other than tab.
bool IsFieldValue(absl::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); });
}

// What the server itself writes into a header: no control characters at all.
bool IsHeaderText(absl::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c != 0x7f; });
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes a query component ('+' is a space). Nullopt on a bad escape.
absl::optional<std::string> DecodeQueryComponent(absl::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out.push_back(' ');
    } else if (in[i] == '%') {
      if (i + 2 >= in.size()) return absl::nullopt;
      const int hi = HexValue(in[i + 1]);
      const int lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return absl::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

// A parsed request head, or the error status to answer with.
struct ParsedHead {
  int error_status = 0;  // 0 when `request` is valid.
  HttpRequest request;
};

ParsedHead Fail(int status) {
  ParsedHead head;
  head.error_status = status;
  return head;
}

// Parses the request line and header lines in `head` (which excludes the blank
// line that ends them). Lines end in LF, optionally preceded by CR (RFC 9112
// allows servers to accept a bare LF).
ParsedHead ParseHead(absl::string_view head) {
  std::vector<absl::string_view> lines = absl::StrSplit(head, '\n');
  for (absl::string_view& line : lines) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    // A bare CR inside a line is a smuggling vector (RFC 9112 section 2.2).
    if (line.find('\r') != absl::string_view::npos) return Fail(400);
  }

  // Request line: method SP request-target SP HTTP-version, single spaces.
  std::vector<absl::string_view> parts = absl::StrSplit(lines[0], ' ');
  if (parts.size() != 3) return Fail(400);
  const absl::string_view method = parts[0];
  const absl::string_view target = parts[1];
  const absl::string_view version = parts[2];
  if (!IsToken(method)) return Fail(400);
  if (target.empty() || target[0] != '/' || !IsVisible(target)) return Fail(400);
  if (version.size() != 8 || !absl::StartsWith(version, "HTTP/") ||
      !absl::ascii_isdigit(static_cast<unsigned char>(version[5])) || version[6] != '.' ||
      !absl::ascii_isdigit(static_cast<unsigned char>(version[7]))) {
    return Fail(400);
  }
  if (version[5] != '1') return Fail(505);
  const bool is_http11 = version[7] != '0';

  int host_headers = 0;
  for (size_t i = 1; i < lines.size(); ++i) {
    const absl::string_view line = lines[i];
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos) return Fail(400);
    // No whitespace before the colon, and no obsolete line folding (a line
    // starting with whitespace fails IsToken too).
    const absl::string_view name = line.substr(0, colon);
    const absl::string_view value = absl::StripAsciiWhitespace(line.substr(colon + 1));
    if (!IsToken(name) || !IsFieldValue(value)) return Fail(400);
    if (absl::EqualsIgnoreCase(name, "host")) ++host_headers;
  }
  // RFC 9112 section 3.2: exactly one Host in HTTP/1.1, at most one in 1.0.
  if (host_headers > 1 || (is_http11 && host_headers == 0)) return Fail(400);

  ParsedHead parsed;
  parsed.request.method = std::string(method);
  const size_t question = target.find('?');
  parsed.request.path = std::string(target.substr(0, question));
  if (question != absl::string_view::npos) {
    for (absl::string_view pair :
         absl::StrSplit(target.substr(question + 1), '&', absl::SkipEmpty())) {
      const size_t equals = pair.find('=');
      absl::optional<std::string> key = DecodeQueryComponent(pair.substr(0, equals));
      absl::optional<std::string> value =
          DecodeQueryComponent(equals == absl::string_view::npos ? "" : pair.substr(equals + 1));
      if (!key || !value) return Fail(400);
      parsed.request.query.emplace(std::move(*key), std::move(*value));
    }
  }
  return parsed;
}

// Where the request head is in `in`: [begin, end), without the empty line that
// ends it, or nullopt while that empty line has not arrived. Empty lines before
// the request line are skipped (RFC 9112 section 2.2).
struct HeadBounds {
  size_t begin;
  size_t end;
};
absl::optional<HeadBounds> FindHead(absl::string_view in) {
  size_t begin = 0;
  while (begin < in.size() && (in[begin] == '\r' || in[begin] == '\n')) ++begin;
  for (size_t i = in.find('\n', begin); i != absl::string_view::npos; i = in.find('\n', i + 1)) {
    if (i + 1 < in.size() && in[i + 1] == '\n') return HeadBounds{begin, i};
    if (i + 2 < in.size() && in[i + 1] == '\r' && in[i + 2] == '\n') {
      return HeadBounds{begin, i};
    }
  }
  return absl::nullopt;
}

std::string RenderResponse(const HttpResponse& response, bool include_body,
                           absl::string_view extra_headers = "") {
  std::string out =
      absl::StrCat("HTTP/1.1 ", response.status, " ", ReasonPhrase(response.status), "\r\n");
  if (!response.content_type.empty()) {
    absl::StrAppend(&out, "Content-Type: ", response.content_type, "\r\n");
  }
  const bool has_body = response.status != 204 && response.status != 304;
  if (has_body) absl::StrAppend(&out, "Content-Length: ", response.body.size(), "\r\n");
  absl::StrAppend(&out, extra_headers, "Connection: close\r\n\r\n");
  if (has_body && include_body) out += response.body;
  return out;
}

std::string ErrorResponse(int status, absl::string_view extra_headers = "") {
  HttpResponse response;
  response.status = status;
  response.body = absl::StrCat(status, " ", ReasonPhrase(status), "\n");
  return RenderResponse(response, /*include_body=*/true, extra_headers);
}

// The server thread's state. Everything here is touched by that thread only.
class ServerLoop {
 public:
  ServerLoop(const AdminHttpServer::Options& options,
             const absl::flat_hash_map<std::string, AdminHttpServer::Handler>& handlers,
             int listen_fd, int epoll_fd)
      : options_(options),
        handlers_(handlers),
        listen_fd_(listen_fd),
        epoll_fd_(epoll_fd),
        read_timeout_(std::chrono::duration_cast<Clock::duration>(
            absl::ToChronoNanoseconds(options.read_timeout))),
        write_timeout_(std::chrono::duration_cast<Clock::duration>(
            absl::ToChronoNanoseconds(options.write_timeout))) {}

  ~ServerLoop() {
    for (auto& entry : connections_) close(entry.second.fd);
  }

  // Serves until the wake fd becomes readable.
  void Run() {
    std::vector<epoll_event> events(64);
    for (;;) {
      const int n = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()),
                               TimeoutMs(Clock::now()));
      if (n < 0) {
        if (errno == EINTR) continue;
        PLOG(ERROR) << "admin HTTP server: epoll_wait failed; stopping";
        return;
      }
      for (int i = 0; i < n; ++i) {
        const uint64_t id = events[i].data.u64;
        if (id == kWakeId) return;
        if (id == kListenId) {
          AcceptAll();
          continue;
        }
        auto it = connections_.find(id);
        if (it != connections_.end()) OnEvent(id, it->second, events[i].events);
      }
      ExpireDeadlines(Clock::now());
      UpdateAccepting(Clock::now());
    }
  }

 private:
  enum class Phase { kReading, kWriting, kDraining };

  struct Connection {
    int fd = -1;
    Phase phase = Phase::kReading;
    Clock::time_point deadline;
    std::string in;   // The request head so far.
    std::string out;  // The response.
    size_t written = 0;
    size_t drained = 0;
  };

  // Milliseconds until the nearest deadline, rounded up; -1 when none.
  int TimeoutMs(Clock::time_point now) const {
    absl::optional<Clock::time_point> next;
    for (const auto& entry : connections_) {
      if (!next || entry.second.deadline < *next) next = entry.second.deadline;
    }
    if (!accepting_ && accept_resume_at_ > now &&
        static_cast<int>(connections_.size()) < options_.max_connections) {
      if (!next || accept_resume_at_ < *next) next = accept_resume_at_;
    }
    if (!next) return -1;
    if (*next <= now) return 0;
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(*next - now).count();
    return static_cast<int>(std::min<int64_t>(ms, 60 * 1000));
  }

  void AcceptAll() {
    while (static_cast<int>(connections_.size()) < options_.max_connections) {
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        // The connection died in the backlog, or the kernel reports a network
        // error early (accept(2)): try the next one.
        if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO || errno == ENETDOWN ||
            errno == ENOPROTOOPT || errno == EHOSTDOWN || errno == ENONET ||
            errno == EHOSTUNREACH || errno == EOPNOTSUPP || errno == ENETUNREACH) {
          continue;
        }
        // Out of fds or memory: level-triggered epoll would report the
        // listener again at once, so wait a little.
        PLOG(WARNING) << "admin HTTP server: accept failed; pausing accepts";
        accept_resume_at_ = Clock::now() + kAcceptRetryDelay;
        break;
      }
      const uint64_t id = next_id_++;
      epoll_event event{};
      event.events = EPOLLIN;
      event.data.u64 = id;
      if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0) {
        PLOG(WARNING) << "admin HTTP server: epoll_ctl(ADD) failed; dropping a connection";
        close(fd);
        continue;
      }
      Connection& connection = connections_[id];
      connection.fd = fd;
      connection.deadline = Clock::now() + read_timeout_;
    }
    UpdateAccepting(Clock::now());
  }

  // Watches the listener only while a connection slot is free and no accept
  // error pause is in effect; otherwise clients wait in the backlog.
  void UpdateAccepting(Clock::time_point now) {
    const bool want = static_cast<int>(connections_.size()) < options_.max_connections &&
                      now >= accept_resume_at_;
    if (want == accepting_) return;
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = kListenId;
    if (epoll_ctl(epoll_fd_, want ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, listen_fd_, &event) != 0) {
      PLOG(ERROR) << "admin HTTP server: epoll_ctl on the listener failed";
      return;
    }
    accepting_ = want;
  }

  void OnEvent(uint64_t id, Connection& connection, uint32_t events) {
    if (events & EPOLLERR) {
      Close(id);
      return;
    }
    switch (connection.phase) {
      case Phase::kReading:
        // EPOLLHUP without data shows up as a 0-byte read.
        if (events & (EPOLLIN | EPOLLHUP)) OnReadable(id, connection);
        return;
      case Phase::kWriting:
        if (events & (EPOLLOUT | EPOLLHUP)) OnWritable(id, connection);
        return;
      case Phase::kDraining:
        if (events & (EPOLLIN | EPOLLHUP)) Drain(id, connection);
        return;
    }
  }

  void OnReadable(uint64_t id, Connection& connection) {
    char buffer[kReadChunk];
    for (;;) {
      // Never hold more than max_header_bytes: a head that does not fit is
      // answered with 431 without reading the rest.
      const size_t room = options_.max_header_bytes - connection.in.size();
      const ssize_t n = recv(connection.fd, buffer, std::min(room, sizeof(buffer)), 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) Close(id);
        return;
      }
      if (n == 0) {  // The client left before finishing its request.
        Close(id);
        return;
      }
      connection.in.append(buffer, static_cast<size_t>(n));
      const absl::optional<HeadBounds> bounds = FindHead(connection.in);
      if (bounds) {
        Respond(id, connection,
                Answer(absl::string_view(connection.in)
                           .substr(bounds->begin, bounds->end - bounds->begin)));
        return;
      }
      if (connection.in.size() >= options_.max_header_bytes) {
        Respond(id, connection, ErrorResponse(431));
        return;
      }
    }
  }

  std::string Answer(absl::string_view head) {
    ParsedHead parsed = ParseHead(head);
    if (parsed.error_status != 0) return ErrorResponse(parsed.error_status);
    const HttpRequest& request = parsed.request;
    if (request.method != "GET" && request.method != "HEAD") {
      return ErrorResponse(405, "Allow: GET, HEAD\r\n");
    }
    auto it = handlers_.find(request.path);
    if (it == handlers_.end()) return ErrorResponse(404);

    HttpResponse response;
    try {
      response = it->second(request);
    } catch (const std::exception& e) {
      LOG(ERROR) << "admin HTTP server: handler for " << request.path << " threw: " << e.what();
      return ErrorResponse(500);
    } catch (...) {
      LOG(ERROR) << "admin HTTP server: handler for " << request.path << " threw";
      return ErrorResponse(500);
    }
    if (response.status < 200 || response.status > 599) {
      LOG(ERROR) << "admin HTTP server: handler for " << request.path << " returned status "
                 << response.status << ", which is not a final HTTP status";
      return ErrorResponse(500);
    }
    // CR or LF here would let a handler inject headers.
    if (!IsHeaderText(response.content_type)) {
      LOG(ERROR) << "admin HTTP server: handler for " << request.path
                 << " returned a Content-Type with control characters";
      return ErrorResponse(500);
    }
    return RenderResponse(response, /*include_body=*/request.method != "HEAD");
  }

  void Respond(uint64_t id, Connection& connection, std::string response) {
    connection.phase = Phase::kWriting;
    connection.in.clear();
    connection.in.shrink_to_fit();
    connection.out = std::move(response);
    connection.written = 0;
    connection.deadline = Clock::now() + write_timeout_;
    OnWritable(id, connection);  // Usually sends it all at once.
  }

  void OnWritable(uint64_t id, Connection& connection) {
    while (connection.written < connection.out.size()) {
      const ssize_t n = send(connection.fd, connection.out.data() + connection.written,
                             connection.out.size() - connection.written, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        // A full socket buffer: wait for room.
        const bool wait = (errno == EAGAIN || errno == EWOULDBLOCK);
        if (!wait || !Watch(id, connection, EPOLLOUT)) Close(id);
        return;
      }
      connection.written += static_cast<size_t>(n);
    }
    // All sent: half-close so the client sees the end, then drain.
    connection.out.clear();
    connection.out.shrink_to_fit();
    shutdown(connection.fd, SHUT_WR);
    connection.phase = Phase::kDraining;
    connection.deadline = Clock::now() + std::min(kLingerTimeout, read_timeout_);
    if (!Watch(id, connection, EPOLLIN)) {
      Close(id);
      return;
    }
    Drain(id, connection);
  }

  void Drain(uint64_t id, Connection& connection) {
    char buffer[kReadChunk];
    for (;;) {
      const ssize_t n = recv(connection.fd, buffer, sizeof(buffer), 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) Close(id);
        return;
      }
      connection.drained += static_cast<size_t>(n);
      if (n == 0 || connection.drained > kMaxDrainBytes) {
        Close(id);
        return;
      }
    }
  }

  void ExpireDeadlines(Clock::time_point now) {
    std::vector<uint64_t> expired;
    for (const auto& entry : connections_) {
      if (entry.second.deadline <= now) expired.push_back(entry.first);
    }
    for (uint64_t id : expired) {
      auto it = connections_.find(id);
      if (it == connections_.end()) continue;
      if (it->second.phase == Phase::kReading) {
        Respond(id, it->second, ErrorResponse(408));  // Best effort, then close.
      } else {
        Close(id);
      }
    }
  }

  bool Watch(uint64_t id, const Connection& connection, uint32_t events) {
    epoll_event event{};
    event.events = events;
    event.data.u64 = id;
    return epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, connection.fd, &event) == 0;
  }

  void Close(uint64_t id) {
    auto it = connections_.find(id);
    if (it == connections_.end()) return;
    close(it->second.fd);  // Also removes it from the epoll set.
    connections_.erase(it);
  }

  const AdminHttpServer::Options& options_;
  const absl::flat_hash_map<std::string, AdminHttpServer::Handler>& handlers_;
  const int listen_fd_;
  const int epoll_fd_;
  const Clock::duration read_timeout_;
  const Clock::duration write_timeout_;
  std::unordered_map<uint64_t, Connection> connections_;
  uint64_t next_id_ = kFirstConnectionId;
  bool accepting_ = true;  // Start() registers the listener.
  Clock::time_point accept_resume_at_;
};

}  // namespace

AdminHttpServer::AdminHttpServer() : AdminHttpServer(Options()) {}

AdminHttpServer::AdminHttpServer(Options options) : options_(std::move(options)) {
  CHECK_GT(options_.max_connections, 0) << "AdminHttpServer::Options::max_connections";
  CHECK_GT(options_.max_header_bytes, 16u) << "AdminHttpServer::Options::max_header_bytes";
  CHECK_GT(options_.read_timeout, absl::ZeroDuration()) << "AdminHttpServer::Options::read_timeout";
  CHECK_GT(options_.write_timeout, absl::ZeroDuration())
      << "AdminHttpServer::Options::write_timeout";
}

AdminHttpServer::~AdminHttpServer() { Stop(); }

void AdminHttpServer::Handle(std::string path, Handler handler) {
  std::lock_guard<std::mutex> lock(mu_);
  CHECK(state_ == State::kNew) << "AdminHttpServer::Handle(\"" << path
                               << "\") called after Start(); register handlers first";
  CHECK(!path.empty() && path[0] == '/')
      << "AdminHttpServer::Handle: path \"" << path << "\" must start with '/'";
  CHECK(handler) << "AdminHttpServer::Handle(\"" << path << "\"): empty handler";
  const bool inserted = handlers_.emplace(path, std::move(handler)).second;
  CHECK(inserted) << "AdminHttpServer::Handle: \"" << path << "\" is already registered";
}

void AdminHttpServer::ServeMetrics(std::shared_ptr<prometheus::Registry> registry) {
  CHECK(registry != nullptr) << "AdminHttpServer::ServeMetrics: null registry";
  Handle("/metrics", [registry = std::move(registry)](const HttpRequest&) {
    return HttpResponse{200, kPrometheusTextContentType, SerializeText(*registry)};
  });
}

void AdminHttpServer::ServeHealth(std::function<bool()> ready) {
  CHECK(ready) << "AdminHttpServer::ServeHealth: empty readiness callback";
  Handle("/healthz", [](const HttpRequest&) { return HttpResponse{200, "text/plain", "ok"}; });
  Handle("/readyz", [ready = std::move(ready)](const HttpRequest&) {
    return ready() ? HttpResponse{200, "text/plain", "ready"}
                   : HttpResponse{503, "text/plain", "not ready"};
  });
}

absl::Status AdminHttpServer::Start(const std::string& listen_address) {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ != State::kNew) {
    return absl::FailedPreconditionError(
        "AdminHttpServer::Start called twice or after Stop; create a new server instead");
  }
  absl::StatusOr<ListenAddress> address =
      ParseListenAddress(listen_address, HostForm::kNumericOrName, "admin HTTP server");
  if (!address.ok()) return address.status();
  absl::StatusOr<int> listened = BindListenSocket(*address, SocketType::kTcp);
  if (!listened.ok()) return listened.status();
  const int listen_fd = *listened;

  const int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  const int wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  epoll_event listen_event{};
  listen_event.events = EPOLLIN;
  listen_event.data.u64 = kListenId;
  epoll_event wake_event{};
  wake_event.events = EPOLLIN;
  wake_event.data.u64 = kWakeId;
  if (epoll_fd < 0 || wake_fd < 0 ||
      epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listen_fd, &listen_event) != 0 ||
      epoll_ctl(epoll_fd, EPOLL_CTL_ADD, wake_fd, &wake_event) != 0) {
    const int error = errno;
    close(listen_fd);
    if (epoll_fd >= 0) close(epoll_fd);
    if (wake_fd >= 0) close(wake_fd);
    return absl::ErrnoToStatus(error, "cannot set up the admin HTTP server's event loop");
  }

  listen_fd_ = listen_fd;
  epoll_fd_ = epoll_fd;
  wake_fd_ = wake_fd;
  port_.store(LocalPort(listen_fd).value_or(0), std::memory_order_release);
  state_ = State::kRunning;
  thread_ = std::thread(
      [this, listen_fd, epoll_fd] { ServerLoop(options_, handlers_, listen_fd, epoll_fd).Run(); });
  return absl::OkStatus();
}

void AdminHttpServer::Stop() {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ == State::kRunning) {
    const uint64_t one = 1;
    // Cannot fail short of a bug: the counter of a fresh eventfd cannot overflow.
    PCHECK(write(wake_fd_, &one, sizeof(one)) == sizeof(one)) << "waking the admin HTTP server";
    thread_.join();
    close(listen_fd_);
    close(epoll_fd_);
    close(wake_fd_);
    listen_fd_ = epoll_fd_ = wake_fd_ = -1;
  }
  state_ = State::kStopped;
}

}  // namespace ferry
