// A real DNS server for discovery tests: dnsmasq (Debian's dnsmasq-base) as a child process on
// 127.0.0.1 and a free port, authoritative for one test domain.
//
// A records come from a hosts file in TEST_TMPDIR (SetHosts rewrites it and sends SIGHUP, which
// makes dnsmasq re-read it), SRV records from --srv-host flags (Restart replaces them). Names in
// the domain that have no record are NXDOMAIN (--local=/domain/), nothing is forwarded
// (--no-resolv), and /etc/hosts is not read (--no-hosts). Stop() and Resume() take the server
// away and bring it back on the same port, to test resolution failures.
//
// Only ever signals the PID it started. Not thread-safe: use from the test's main thread (the
// child gets SIGKILL when the thread that started it exits).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ferry::discovery::testing {

class DnsmasqServer {
 public:
  static constexpr char kBinary[] = "/usr/sbin/dnsmasq";

  struct Options {
    // The domain dnsmasq answers for; other names are refused.
    std::string domain = "test.internal";
    // TTL in seconds of every answer (--local-ttl).
    int ttl_seconds = 1;
    // Lines of the hosts file: "10.0.0.1 a.test.internal", "fd00::1 a.test.internal".
    std::vector<std::string> hosts;
    // --srv-host values: "_http._tcp.svc.test.internal,a.test.internal,8080[,priority,weight]".
    std::vector<std::string> srv_hosts;
  };

  // Whether kBinary exists and is executable (tests skip without it).
  static bool Installed();

  // Writes the hosts file, starts dnsmasq on a free port and waits (up to 10 s) until it
  // answers a query. Retries with other ports when the port was taken. FAILED_PRECONDITION when
  // dnsmasq is not installed; UNAVAILABLE (with dnsmasq's log) when it never answers.
  static absl::StatusOr<std::unique_ptr<DnsmasqServer>> Start(Options options);

  // Stops dnsmasq (SIGTERM, SIGKILL after 5 s) if it runs.
  ~DnsmasqServer();

  DnsmasqServer(const DnsmasqServer&) = delete;
  DnsmasqServer& operator=(const DnsmasqServer&) = delete;

  // Rewrites the hosts file and, when dnsmasq runs, sends SIGHUP; dnsmasq re-reads it
  // (asynchronously, within milliseconds). A stopped server reads it when resumed.
  absl::Status SetHosts(const std::vector<std::string>& lines);

  // Restarts dnsmasq on the same port with these SRV records (and the current hosts file).
  absl::Status Restart(std::vector<std::string> srv_hosts);

  // Stops dnsmasq; the port then answers nothing (queries time out or are refused).
  absl::Status Stop();

  // Starts dnsmasq again on the same port with the current hosts and SRV records.
  // FAILED_PRECONDITION when running.
  absl::Status Resume();

  // "127.0.0.1:<port>", for DnsResolver::Options::servers.
  std::string address() const;
  uint16_t port() const { return port_; }
  bool running() const { return pid_ > 0; }
  // dnsmasq's output so far (its log goes to stderr, redirected to a file).
  std::string Log() const;

 private:
  DnsmasqServer(Options options, std::string dir);

  // Starts dnsmasq on port_ and waits until it answers; UNAVAILABLE when it exits or does not
  // answer within `timeout_seconds` (the child is stopped then).
  absl::Status Launch(double timeout_seconds);
  absl::Status WriteHosts();
  // True once a query to port_ got any answer.
  bool Answers() const;

  Options options_;
  const std::string dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace ferry::discovery::testing
