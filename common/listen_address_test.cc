#include "common/listen_address.h"

#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ferry {
namespace {

using ::testing::HasSubstr;

// --- ParseHostPort. ---

struct SplitCase {
  const char* address;
  PortRule rule;
  const char* host;  // Expected host, or nullptr when the address is refused.
  uint16_t port;
  const char* error;  // Expected message when refused.
};

TEST(ParseHostPortTest, SplitsOrSaysWhy) {
  const SplitCase cases[] = {
      {"127.0.0.1:80", PortRule::kNonZero, "127.0.0.1", 80, ""},
      {"example.com:65535", PortRule::kNonZero, "example.com", 65535, ""},
      {"[::1]:443", PortRule::kNonZero, "::1", 443, ""},
      {"[fe80::1%eth0]:1", PortRule::kNonZero, "fe80::1%eth0", 1, ""},
      {"0.0.0.0:0", PortRule::kAllowZero, "0.0.0.0", 0, ""},
      {"[::]:0", PortRule::kAllowZero, "::", 0, ""},
      {"host:00080", PortRule::kNonZero, "host", 80, ""},
      {"0.0.0.0:0", PortRule::kNonZero, nullptr, 0, "the port must be a number from 1 to 65535"},
      {"host:65536", PortRule::kAllowZero, nullptr, 0, "the port must be a number from 0 to 65535"},
      {"host:+80", PortRule::kNonZero, nullptr, 0, "the port must be a number from 1 to 65535"},
      {"host: 80", PortRule::kNonZero, nullptr, 0, "the port must be a number from 1 to 65535"},
      {"host:000080", PortRule::kNonZero, nullptr, 0, "the port must be a number from 1 to 65535"},
      {"host:", PortRule::kAllowZero, nullptr, 0, "the port must be a number from 0 to 65535"},
      {"host:http", PortRule::kAllowZero, nullptr, 0, "the port must be a number from 0 to 65535"},
      {"host", PortRule::kAllowZero, nullptr, 0, "missing :port"},
      {"", PortRule::kAllowZero, nullptr, 0, "missing :port"},
      {":80", PortRule::kAllowZero, nullptr, 0, "missing host"},
      {"[]:80", PortRule::kAllowZero, nullptr, 0, "missing host"},
      {"::1:80", PortRule::kAllowZero, nullptr, 0, "an IPv6 address must be in brackets"},
      {"[::1", PortRule::kAllowZero, nullptr, 0, "missing ']'"},
      {"[::1]", PortRule::kAllowZero, nullptr, 0, "missing :port after ']'"},
      {"[::1]80", PortRule::kAllowZero, nullptr, 0, "missing :port after ']'"},
  };
  for (const SplitCase& c : cases) {
    std::string host = "untouched";
    uint16_t port = 7;
    const absl::Status status = ParseHostPort(c.address, c.rule, &host, &port);
    if (c.host != nullptr) {
      ASSERT_TRUE(status.ok()) << c.address << ": " << status;
      EXPECT_EQ(host, c.host) << c.address;
      EXPECT_EQ(port, c.port) << c.address;
    } else {
      EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.address;
      EXPECT_EQ(status.message(), c.error) << c.address;
      EXPECT_EQ(host, "untouched") << c.address;
      EXPECT_EQ(port, 7) << c.address;
    }
  }
}

// --- ParseListenAddress. ---

TEST(ParseListenAddressTest, NumericHostsGiveOneCandidateWithThePort) {
  absl::StatusOr<ListenAddress> v4 = ParseListenAddress("127.0.0.1:0", HostForm::kNumeric, "x");
  ASSERT_TRUE(v4.ok()) << v4.status();
  ASSERT_EQ(v4->candidates.size(), 1u);
  EXPECT_EQ(v4->candidates[0].ss_family, AF_INET);
  const auto* in = reinterpret_cast<const sockaddr_in*>(&v4->candidates[0]);
  EXPECT_EQ(ntohl(in->sin_addr.s_addr), INADDR_LOOPBACK);
  EXPECT_EQ(v4->port(), 0);
  EXPECT_EQ(v4->text, "127.0.0.1:0");
  EXPECT_EQ(v4->owner, "x");

  absl::StatusOr<ListenAddress> v6 = ParseListenAddress("[::1]:8053", HostForm::kNumeric, "x");
  ASSERT_TRUE(v6.ok()) << v6.status();
  ASSERT_EQ(v6->candidates.size(), 1u);
  EXPECT_EQ(v6->candidates[0].ss_family, AF_INET6);
  const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&v6->candidates[0]);
  EXPECT_TRUE(IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr));
  EXPECT_EQ(v6->port(), 8053);
}

TEST(ParseListenAddressTest, NamesResolveToEveryAddressWithThePort) {
  absl::StatusOr<ListenAddress> address =
      ParseListenAddress("localhost:9090", HostForm::kNumericOrName, "x");
  ASSERT_TRUE(address.ok()) << address.status();
  ASSERT_FALSE(address->candidates.empty());
  for (const sockaddr_storage& candidate : address->candidates) {
    EXPECT_TRUE(candidate.ss_family == AF_INET || candidate.ss_family == AF_INET6);
  }
  EXPECT_EQ(address->port(), 9090);
}

TEST(ParseListenAddressTest, RefusalsAreInvalidArgumentNamingAddressAndOwner) {
  struct Case {
    const char* address;
    HostForm form;
    const char* why;
  } cases[] = {
      {"127.0.0.1", HostForm::kNumericOrName, "missing :port"},
      {"127.0.0.1:65536", HostForm::kNumeric, "from 0 to 65535"},
      {"::1:53", HostForm::kNumeric, "must be in brackets"},
      {"localhost:53", HostForm::kNumeric, "numeric IPv4 address"},
      {"127.1:53", HostForm::kNumeric, "numeric IPv4 address"},
      {"10.0.0.0.1:53", HostForm::kNumeric, "numeric IPv4 address"},
      {"[127.0.0.1]:53", HostForm::kNumeric, "numeric IPv6 address"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<ListenAddress> address = ParseListenAddress(c.address, c.form, "test server");
    ASSERT_FALSE(address.ok()) << c.address;
    EXPECT_EQ(address.status().code(), absl::StatusCode::kInvalidArgument) << c.address;
    const std::string message(address.status().message());
    EXPECT_THAT(message, HasSubstr(absl::StrCat("\"", c.address, "\" for the test server: ")));
    EXPECT_THAT(message, HasSubstr(c.why)) << c.address;
    EXPECT_THAT(message, HasSubstr("port 0 picks a free port")) << c.address;
  }
}

TEST(ParseListenAddressTest, WithPortChangesEveryCandidateAndNothingElse) {
  absl::StatusOr<ListenAddress> address =
      ParseListenAddress("localhost:0", HostForm::kNumericOrName, "x");
  ASSERT_TRUE(address.ok()) << address.status();
  const ListenAddress moved = address->WithPort(4321);
  EXPECT_EQ(moved.port(), 4321);
  EXPECT_EQ(moved.text, "localhost:0");
  ASSERT_EQ(moved.candidates.size(), address->candidates.size());
  for (size_t i = 0; i < moved.candidates.size(); ++i) {
    const sockaddr_storage& candidate = moved.candidates[i];
    EXPECT_EQ(candidate.ss_family, address->candidates[i].ss_family);
    const uint16_t network_port =
        candidate.ss_family == AF_INET
            ? reinterpret_cast<const sockaddr_in*>(&candidate)->sin_port
            : reinterpret_cast<const sockaddr_in6*>(&candidate)->sin6_port;
    EXPECT_EQ(ntohs(network_port), 4321) << i;
  }
  EXPECT_EQ(address->port(), 0);  // The original is untouched.
}

// --- BindListenSocket. ---

ListenAddress Parse(const std::string& text) {
  absl::StatusOr<ListenAddress> address = ParseListenAddress(text, HostForm::kNumeric, "test");
  EXPECT_TRUE(address.ok()) << address.status();
  return address.ok() ? *address : ListenAddress();
}

constexpr uid_t kNobody = 65534;

int IntOption(int fd, int level, int name) {
  int value = -1;
  socklen_t length = sizeof(value);
  EXPECT_EQ(getsockopt(fd, level, name, &value, &length), 0);
  return value;
}

TEST(BindListenSocketTest, BindsNonBlockingCloseOnExecOnAFreePortReuseAddrForTcpOnly) {
  struct Case {
    SocketType type;
    int so_type;
    bool reuse_address;
  } cases[] = {{SocketType::kTcp, SOCK_STREAM, true}, {SocketType::kUdp, SOCK_DGRAM, false}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.so_type == SOCK_STREAM ? "TCP" : "UDP");
    absl::StatusOr<int> fd = BindListenSocket(Parse("127.0.0.1:0"), c.type);
    ASSERT_TRUE(fd.ok()) << fd.status();
    EXPECT_EQ(IntOption(*fd, SOL_SOCKET, SO_TYPE), c.so_type);
    EXPECT_EQ(IntOption(*fd, SOL_SOCKET, SO_REUSEADDR) != 0, c.reuse_address);
    EXPECT_TRUE(fcntl(*fd, F_GETFL) & O_NONBLOCK);
    EXPECT_TRUE(fcntl(*fd, F_GETFD) & FD_CLOEXEC);
    absl::StatusOr<int> port = LocalPort(*fd);
    ASSERT_TRUE(port.ok()) << port.status();
    EXPECT_GT(*port, 0);
    close(*fd);
  }
}

TEST(BindListenSocketTest, TcpListens) {
  absl::StatusOr<int> fd = BindListenSocket(Parse("127.0.0.1:0"), SocketType::kTcp);
  ASSERT_TRUE(fd.ok()) << fd.status();
  EXPECT_EQ(IntOption(*fd, SOL_SOCKET, SO_ACCEPTCONN), 1);
  absl::StatusOr<int> port = LocalPort(*fd);
  ASSERT_TRUE(port.ok()) << port.status();
  const int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(client, 0);
  sockaddr_in server{};
  server.sin_family = AF_INET;
  server.sin_port = htons(static_cast<uint16_t>(*port));
  server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(client, reinterpret_cast<sockaddr*>(&server), sizeof(server)), 0);
  close(client);
  close(*fd);
}

TEST(BindListenSocketTest, PortInUseIsAlreadyExistsForTcpAndUdp) {
  for (SocketType type : {SocketType::kTcp, SocketType::kUdp}) {
    absl::StatusOr<int> first = BindListenSocket(Parse("127.0.0.1:0"), type);
    ASSERT_TRUE(first.ok()) << first.status();
    absl::StatusOr<int> port = LocalPort(*first);
    ASSERT_TRUE(port.ok()) << port.status();
    const std::string taken = absl::StrCat("127.0.0.1:", *port);
    absl::StatusOr<int> second = BindListenSocket(Parse(taken), type);
    EXPECT_EQ(second.status().code(), absl::StatusCode::kAlreadyExists) << second.status();
    EXPECT_THAT(std::string(second.status().message()), HasSubstr("in use"));
    EXPECT_THAT(std::string(second.status().message()),
                HasSubstr(absl::StrCat("the test (", type == SocketType::kTcp ? "TCP" : "UDP",
                                       ") to \"", taken, "\"")));
    if (second.ok()) close(*second);
    close(*first);
  }
}

TEST(BindListenSocketTest, AddressOfAnotherHostIsInvalidArgument) {
  // 192.0.2.0/24 is TEST-NET-1: never an address of this host.
  absl::StatusOr<int> fd = BindListenSocket(Parse("192.0.2.1:0"), SocketType::kTcp);
  EXPECT_EQ(fd.status().code(), absl::StatusCode::kInvalidArgument) << fd.status();
  EXPECT_THAT(std::string(fd.status().message()), HasSubstr("not an address of this host"));
  if (fd.ok()) close(*fd);
}

TEST(BindListenSocketDeathTest, PrivilegedPortWithoutTheCapabilityIsPermissionDenied) {
  std::ifstream start_file("/proc/sys/net/ipv4/ip_unprivileged_port_start");
  int unprivileged_start = 1024;
  if (start_file >> unprivileged_start && unprivileged_start <= 1) {
    GTEST_SKIP() << "this host lets every process bind port 1";
  }
  const ListenAddress address = Parse("127.0.0.1:1");
  // In a child process, which as root first becomes "nobody": root holds CAP_NET_BIND_SERVICE,
  // another uid holds no capability.
  EXPECT_EXIT(
      {
        if (geteuid() == 0 &&
            (setgroups(0, nullptr) != 0 || setgid(kNobody) != 0 || setuid(kNobody) != 0)) {
          std::fprintf(stderr, "cannot drop root: %s\n", std::strerror(errno));
          _exit(2);
        }
        absl::StatusOr<int> fd = BindListenSocket(address, SocketType::kTcp);
        std::fprintf(stderr, "%s\n", fd.status().ToString().c_str());
        _exit(absl::IsPermissionDenied(fd.status()) ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "PERMISSION_DENIED.*CAP_NET_BIND_SERVICE");
}

TEST(BindListenSocketTest, SetupRunsOnTheUnboundSocketOfEachCandidate) {
  ListenAddress address = Parse("192.0.2.1:0");  // Fails to bind: the next candidate is tried.
  address.candidates.push_back(Parse("127.0.0.1:0").candidates[0]);
  std::vector<int> ports_seen;
  std::vector<int> families_seen;
  absl::StatusOr<int> fd =
      BindListenSocket(address, SocketType::kUdp, [&](int socket_fd, int family) {
        absl::StatusOr<int> port = LocalPort(socket_fd);
        ports_seen.push_back(port.ok() ? *port : -1);
        families_seen.push_back(family);
        const int buffer = 32 * 1024;
        setsockopt(socket_fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof(buffer));
      });
  ASSERT_TRUE(fd.ok()) << fd.status();
  EXPECT_EQ(ports_seen, (std::vector<int>{0, 0}));  // Not bound yet.
  EXPECT_EQ(families_seen, (std::vector<int>{AF_INET, AF_INET}));
  // What setup set stays (Linux reports twice the size asked for).
  EXPECT_EQ(IntOption(*fd, SOL_SOCKET, SO_RCVBUF), 2 * 32 * 1024);
  absl::StatusOr<int> port = LocalPort(*fd);
  ASSERT_TRUE(port.ok());
  EXPECT_GT(*port, 0);
  close(*fd);
}

TEST(BindListenSocketTest, ReturnsTheLastCandidatesError) {
  absl::StatusOr<int> held = BindListenSocket(Parse("127.0.0.1:0"), SocketType::kTcp);
  ASSERT_TRUE(held.ok()) << held.status();
  absl::StatusOr<int> port = LocalPort(*held);
  ASSERT_TRUE(port.ok());
  ListenAddress address = Parse(absl::StrCat("192.0.2.1:", *port));
  address.candidates.push_back(Parse(absl::StrCat("127.0.0.1:", *port)).candidates[0]);
  absl::StatusOr<int> fd = BindListenSocket(address, SocketType::kTcp);
  EXPECT_EQ(fd.status().code(), absl::StatusCode::kAlreadyExists) << fd.status();
  if (fd.ok()) close(*fd);
  close(*held);
}

TEST(LocalPortTest, FailsOnAnFdThatIsNotASocket) {
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  EXPECT_FALSE(LocalPort(pipe_fds[0]).ok());
  close(pipe_fds[0]);
  close(pipe_fds[1]);
}

TEST(BoundAddressTest, KeepsTheHostAndTakesTheBoundPort) {
  EXPECT_EQ(BoundAddress("127.0.0.1:0", 41234), "127.0.0.1:41234");
  EXPECT_EQ(BoundAddress("[::1]:0", 80), "[::1]:80");
  EXPECT_EQ(BoundAddress("localhost:7444", 7444), "localhost:7444");
}

}  // namespace
}  // namespace ferry
