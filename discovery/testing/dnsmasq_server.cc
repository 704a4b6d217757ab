#include "discovery/testing/dnsmasq_server.h"

// ldns/common.h defines bool, true and false as macros unless <stdbool.h> came first.
// clang-format off
#include <stdbool.h>
#include <ldns/ldns.h>
// clang-format on

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/unique_fd.h"

namespace ferry::discovery::testing {
namespace {

// A port that is free for both UDP and TCP on 127.0.0.1 right now (dnsmasq binds both).
absl::StatusOr<uint16_t> PickFreePort() {
  for (int attempt = 0; attempt < 20; ++attempt) {
    UniqueFd tcp(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    UniqueFd udp(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!tcp || !udp) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
    sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(tcp.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) continue;
    socklen_t len = sizeof(addr);
    if (getsockname(tcp.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) continue;
    if (bind(udp.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) continue;
    return ntohs(addr.sin_port);
  }
  return absl::UnavailableError("no port free for both UDP and TCP on 127.0.0.1");
}

absl::StatusOr<std::string> MakeDir() {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string pattern = absl::StrCat(base != nullptr ? base : "/tmp", "/dnsmasq.XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp ", pattern, ": ", std::strerror(errno)));
  }
  return pattern;
}

}  // namespace

bool DnsmasqServer::Installed() { return access(kBinary, X_OK) == 0; }

absl::StatusOr<std::unique_ptr<DnsmasqServer>> DnsmasqServer::Start(Options options) {
  if (!Installed()) {
    return absl::FailedPreconditionError(
        absl::StrCat(kBinary, " is not installed (Debian package dnsmasq-base)"));
  }
  absl::StatusOr<std::string> dir = MakeDir();
  if (!dir.ok()) return dir.status();
  std::unique_ptr<DnsmasqServer> server(new DnsmasqServer(std::move(options), *dir));
  if (absl::Status written = server->WriteHosts(); !written.ok()) return written;
  absl::Status last;
  for (int attempt = 0; attempt < 3; ++attempt) {
    absl::StatusOr<uint16_t> port = PickFreePort();
    if (!port.ok()) return port.status();
    server->port_ = *port;
    last = server->Launch(10);
    if (last.ok()) return server;
  }
  return last;
}

DnsmasqServer::DnsmasqServer(Options options, std::string dir)
    : options_(std::move(options)), dir_(std::move(dir)) {}

DnsmasqServer::~DnsmasqServer() { (void)Stop(); }

std::string DnsmasqServer::address() const { return absl::StrCat("127.0.0.1:", port_); }

std::string DnsmasqServer::Log() const {
  std::ifstream in(dir_ + "/dnsmasq.log");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

absl::Status DnsmasqServer::WriteHosts() {
  const std::string path = dir_ + "/hosts";
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::trunc);
    for (const std::string& line : options_.hosts) out << line << "\n";
    out.flush();
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", temp));
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("rename ", temp, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status DnsmasqServer::SetHosts(const std::vector<std::string>& lines) {
  options_.hosts = lines;
  if (absl::Status written = WriteHosts(); !written.ok()) return written;
  if (pid_ <= 0) return absl::OkStatus();  // Read at the next Resume().
  if (kill(pid_, SIGHUP) != 0) {
    return absl::InternalError(absl::StrCat("SIGHUP to dnsmasq: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status DnsmasqServer::Restart(std::vector<std::string> srv_hosts) {
  if (absl::Status stopped = Stop(); !stopped.ok()) return stopped;
  options_.srv_hosts = std::move(srv_hosts);
  return Launch(10);
}

absl::Status DnsmasqServer::Resume() {
  if (pid_ > 0) return absl::FailedPreconditionError("dnsmasq is already running");
  return Launch(10);
}

absl::Status DnsmasqServer::Stop() {
  if (pid_ <= 0) return absl::OkStatus();
  const pid_t pid = pid_;
  pid_ = -1;
  kill(pid, SIGTERM);
  for (int i = 0; i < 500; ++i) {
    int status = 0;
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid || (done < 0 && errno == ECHILD)) return absl::OkStatus();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  return absl::OkStatus();
}

absl::Status DnsmasqServer::Launch(double timeout_seconds) {
  std::vector<std::string> args = {
      kBinary,
      "--keep-in-foreground",
      "--no-resolv",
      "--no-hosts",
      "--bind-interfaces",
      "--listen-address=127.0.0.1",
      absl::StrCat("--port=", port_),
      absl::StrCat("--addn-hosts=", dir_, "/hosts"),
      absl::StrCat("--local-ttl=", options_.ttl_seconds),
      absl::StrCat("--local=/", options_.domain, "/"),
      "--log-facility=-",
      "--log-queries",
      "--pid-file=",  // No pid file: the default is in /run.
  };
  // As root, dnsmasq drops to "nobody", which may not read the hosts file again on SIGHUP
  // (TEST_TMPDIR is often private to root): stay root.
  if (geteuid() == 0) args.push_back("--user=root");
  for (const std::string& srv : options_.srv_hosts) args.push_back("--srv-host=" + srv);

  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const std::string log_path = dir_ + "/dnsmasq.log";
  UniqueFd log(open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!log) return absl::InternalError(absl::StrCat("open ", log_path, ": ", std::strerror(errno)));
  UniqueFd null_in(open("/dev/null", O_RDONLY | O_CLOEXEC));

  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  if (pid == 0) {
    // Only async-signal-safe calls until exec.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    dup2(null_in.get(), 0);
    dup2(log.get(), 1);
    dup2(log.get(), 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  pid_ = pid;

  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::UnavailableError(
          absl::StrCat("dnsmasq on port ", port_, " exited at start; log:\n", Log()));
    }
    if (Answers()) return absl::OkStatus();
  }
  (void)Stop();
  return absl::UnavailableError(
      absl::StrCat("dnsmasq on port ", port_, " did not answer; log:\n", Log()));
}

bool DnsmasqServer::Answers() const {
  ldns_pkt* query = nullptr;
  const std::string name = absl::StrCat("ready-check.", options_.domain, ".");
  if (ldns_pkt_query_new_frm_str(&query, name.c_str(), LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, LDNS_RD) !=
      LDNS_STATUS_OK) {
    return false;
  }
  uint8_t* wire = nullptr;
  size_t size = 0;
  const ldns_status status = ldns_pkt2wire(&wire, query, &size);
  ldns_pkt_free(query);
  if (status != LDNS_STATUS_OK) return false;
  std::string packet(reinterpret_cast<const char*>(wire), size);
  std::free(wire);  // ldns allocates with malloc.

  UniqueFd udp(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port_);
  if (!udp || connect(udp.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      send(udp.get(), packet.data(), packet.size(), 0) < 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return false;
  }
  pollfd pfd = {udp.get(), POLLIN, 0};
  if (poll(&pfd, 1, 100) != 1) return false;
  char reply[512];
  if (recv(udp.get(), reply, sizeof(reply), 0) > 0) return true;
  // Refused (nothing bound yet): do not spin.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  return false;
}

}  // namespace ferry::discovery::testing
