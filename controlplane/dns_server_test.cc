#include "controlplane/dns_server.h"

// ldns/common.h defines bool, true and false as macros unless <stdbool.h> came first, and
// those macros break overload resolution in headers included later (gmock's matchers).
// clang-format off
#include <stdbool.h>
#include <ldns/ldns.h>
// clang-format on

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"

namespace ferry {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;

struct PktFree {
  void operator()(ldns_pkt* pkt) const { ldns_pkt_free(pkt); }
};
using PktPtr = std::unique_ptr<ldns_pkt, PktFree>;

// ---------------------------------------------------------------------------------------------
// Building queries and reading responses.

// Well-formed queries, encoded by ldns: QueryBuilder("web.acme.ferry.internal").Type(...).Build().
class QueryBuilder {
 public:
  explicit QueryBuilder(std::string name) : name_(std::move(name)) {}
  QueryBuilder& Id(uint16_t id) {
    id_ = id;
    return *this;
  }
  QueryBuilder& Type(ldns_rr_type type) {
    type_ = type;
    return *this;
  }
  QueryBuilder& Class(ldns_rr_class rr_class) {
    class_ = rr_class;
    return *this;
  }
  QueryBuilder& NoRecursion() {
    rd_ = false;
    return *this;
  }
  QueryBuilder& CheckingDisabled() {
    cd_ = true;
    return *this;
  }
  QueryBuilder& Edns(uint16_t udp_size, uint8_t version = 0, bool dnssec_ok = false) {
    edns_udp_size_ = udp_size;
    edns_version_ = version;
    dnssec_ok_ = dnssec_ok;
    return *this;
  }
  std::string Build() const {
    ldns_rdf* name = ldns_dname_new_frm_str(name_.c_str());
    EXPECT_NE(name, nullptr) << name_;
    PktPtr pkt(ldns_pkt_query_new(name, type_, class_, 0));
    ldns_pkt_set_id(pkt.get(), id_);
    ldns_pkt_set_rd(pkt.get(), rd_);
    ldns_pkt_set_cd(pkt.get(), cd_);
    if (edns_udp_size_.has_value()) {
      ldns_pkt_set_edns_udp_size(pkt.get(), *edns_udp_size_);
      ldns_pkt_set_edns_version(pkt.get(), edns_version_);
      ldns_pkt_set_edns_do(pkt.get(), dnssec_ok_);
    }
    uint8_t* wire = nullptr;
    size_t size = 0;
    EXPECT_EQ(ldns_pkt2wire(&wire, pkt.get(), &size), LDNS_STATUS_OK);
    std::string out(reinterpret_cast<char*>(wire), size);
    free(wire);
    return out;
  }

 private:
  std::string name_;
  uint16_t id_ = 0x1234;
  ldns_rr_type type_ = LDNS_RR_TYPE_A;
  ldns_rr_class class_ = LDNS_RR_CLASS_IN;
  bool rd_ = true;
  bool cd_ = false;
  std::optional<uint16_t> edns_udp_size_;
  uint8_t edns_version_ = 0;
  bool dnssec_ok_ = false;
};

std::string Query(const std::string& name, ldns_rr_type type = LDNS_RR_TYPE_A) {
  return QueryBuilder(name).Type(type).Build();
}

// Hand-made bytes for queries ldns would refuse to build.
std::string Bytes(std::initializer_list<int> bytes) {
  std::string out;
  for (int b : bytes) out.push_back(static_cast<char>(b));
  return out;
}

// A header: ID 0xBEEF, the given flag bytes and counts.
std::string Header(int flags_high, int flags_low, int qdcount, int arcount = 0) {
  return Bytes({0xbe, 0xef, flags_high, flags_low, 0, qdcount, 0, 0, 0, 0, 0, arcount});
}

// "web.acme.ferry.internal" in uncompressed wire form.
std::string WireName() {
  return Bytes({3,   'w', 'e', 'b', 4,   'a', 'c', 'm', 'e', 5,   'f', 'e', 'r',
                'r', 'y', 8,   'i', 'n', 't', 'e', 'r', 'n', 'a', 'l', 0});
}

const std::string kTypeAClassIn = Bytes({0, 1, 0, 1});
const std::string kOptRecord = Bytes({0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0});

PktPtr Parse(const std::string& wire) {
  ldns_pkt* pkt = nullptr;
  const ldns_status status =
      ldns_wire2pkt(&pkt, reinterpret_cast<const uint8_t*>(wire.data()), wire.size());
  EXPECT_EQ(status, LDNS_STATUS_OK) << ldns_get_errorstr_by_id(status);
  return PktPtr(pkt);
}

std::string ToString(const ldns_rdf* rdf) {
  char* text = ldns_rdf2str(rdf);
  std::string out = text == nullptr ? "" : text;
  free(text);
  return out;
}

// The records of a section as "owner ttl type rdata..." lines.
std::vector<std::string> Records(const ldns_rr_list* list) {
  std::vector<std::string> out;
  for (size_t i = 0; i < ldns_rr_list_rr_count(list); ++i) {
    const ldns_rr* rr = ldns_rr_list_rr(list, i);
    char* type = ldns_rr_type2str(ldns_rr_get_type(rr));
    std::string line = absl::StrCat(ToString(ldns_rr_owner(rr)), " ", ldns_rr_ttl(rr), " ", type);
    free(type);
    for (size_t j = 0; j < ldns_rr_rd_count(rr); ++j) {
      absl::StrAppend(&line, " ", ToString(ldns_rr_rdf(rr, j)));
    }
    out.push_back(line);
  }
  return out;
}

// The question section as "name type" lines (questions have no TTL or rdata).
std::vector<std::string> Questions(const ldns_pkt& pkt) {
  std::vector<std::string> out;
  const ldns_rr_list* list = ldns_pkt_question(&pkt);
  for (size_t i = 0; i < ldns_rr_list_rr_count(list); ++i) {
    const ldns_rr* rr = ldns_rr_list_rr(list, i);
    char* type = ldns_rr_type2str(ldns_rr_get_type(rr));
    out.push_back(absl::StrCat(ToString(ldns_rr_owner(rr)), " ", type));
    free(type);
  }
  return out;
}

int Rcode(const ldns_pkt& pkt) {
  return ldns_pkt_get_rcode(&pkt) | (static_cast<int>(ldns_pkt_edns_extended_rcode(&pkt)) << 4);
}

constexpr char kSoa[] =
    "ferry.internal. 5 SOA ns.ferry.internal. hostmaster.ferry.internal. 1 3600 600 86400 5";

// ---------------------------------------------------------------------------------------------
// Network clients.

// Waits up to `timeout` for `fd` to become readable.
bool WaitReadable(int fd, absl::Duration timeout) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) == 1;
}

sockaddr_in Loopback(int port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

// Sends one datagram, returns the reply or nullopt when none comes within `timeout`.
std::optional<std::string> UdpExchange(int port, const std::string& query,
                                       absl::Duration timeout = absl::Seconds(5)) {
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  EXPECT_GE(fd, 0);
  const sockaddr_in address = Loopback(port);
  EXPECT_EQ(sendto(fd, query.data(), query.size(), 0, reinterpret_cast<const sockaddr*>(&address),
                   sizeof(address)),
            static_cast<ssize_t>(query.size()));
  std::optional<std::string> reply;
  if (WaitReadable(fd, timeout)) {
    std::string buffer(65536, '\0');
    const ssize_t n = recv(fd, buffer.data(), buffer.size(), 0);
    if (n >= 0) reply = buffer.substr(0, static_cast<size_t>(n));
  }
  close(fd);
  return reply;
}

std::string WithLengthPrefix(const std::string& message) {
  return absl::StrCat(
      Bytes({static_cast<int>(message.size() >> 8), static_cast<int>(message.size() & 0xff)}),
      message);
}

class TcpClient {
 public:
  // `receive_buffer` > 0 shrinks the socket's receive buffer (and so the window the server
  // sees) to about that many bytes.
  explicit TcpClient(int port, int receive_buffer = 0)
      : fd_(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    if (receive_buffer > 0) {
      setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof(receive_buffer));
    }
    const sockaddr_in address = Loopback(port);
    connected_ = connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0;
  }
  ~TcpClient() { close(fd_); }
  TcpClient(const TcpClient&) = delete;
  TcpClient& operator=(const TcpClient&) = delete;

  bool connected() const { return connected_; }

  bool Send(const std::string& bytes) {
    size_t sent = 0;
    while (sent < bytes.size()) {
      const ssize_t n = send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }

  void ShutdownWrite() { shutdown(fd_, SHUT_WR); }

  // One length-prefixed message, or nullopt on EOF, error or `timeout`.
  std::optional<std::string> ReadMessage(absl::Duration timeout = absl::Seconds(5)) {
    std::optional<std::string> prefix = ReadExactly(2, timeout);
    if (!prefix.has_value()) return std::nullopt;
    const size_t length = (static_cast<size_t>(static_cast<uint8_t>((*prefix)[0])) << 8) |
                          static_cast<uint8_t>((*prefix)[1]);
    return ReadExactly(length, timeout);
  }

  // True when the server closes the connection within `timeout` (nothing else arrives).
  bool WaitForClose(absl::Duration timeout) {
    if (!WaitReadable(fd_, timeout)) return false;
    char byte;
    return recv(fd_, &byte, 1, 0) == 0;
  }

 private:
  std::optional<std::string> ReadExactly(size_t size, absl::Duration timeout) {
    std::string out;
    while (out.size() < size) {
      if (!WaitReadable(fd_, timeout)) return std::nullopt;
      char buffer[4096];
      const ssize_t n = recv(fd_, buffer, std::min(sizeof(buffer), size - out.size()), 0);
      if (n <= 0) return std::nullopt;
      out.append(buffer, static_cast<size_t>(n));
    }
    return out;
  }

  const int fd_;
  bool connected_ = false;
};

// The parts of dig's output the tests look at.
struct DigResult {
  std::string status;                  // "NOERROR", "NXDOMAIN", ...
  std::string flags;                   // "qr aa rd"
  std::vector<std::string> answers;    // "web.acme.ferry.internal. 30 IN A 10.100.0.7"
  std::vector<std::string> authority;  // Same form.
  std::string output;                  // Everything, for failure messages.
};

// Runs Debian's dig (bind9-dnsutils) against 127.0.0.1:port.
DigResult Dig(int port, const std::string& arguments) {
  const std::string command =
      absl::StrCat("dig @127.0.0.1 -p ", port, " ", arguments, " +tries=1 +time=2 2>&1");
  DigResult result;
  FILE* pipe = popen(command.c_str(), "r");
  EXPECT_NE(pipe, nullptr) << command;
  if (pipe == nullptr) return result;
  char buffer[4096];
  while (fgets(buffer, sizeof(buffer), pipe) != nullptr) result.output += buffer;
  pclose(pipe);

  std::vector<std::string>* section = nullptr;
  for (absl::string_view line : absl::StrSplit(result.output, '\n')) {
    if (line.empty()) {
      section = nullptr;
      continue;
    }
    if (const size_t at = line.find("status: "); at != absl::string_view::npos) {
      const absl::string_view rest = line.substr(at + 8);
      result.status = std::string(rest.substr(0, rest.find(',')));
    } else if (absl::StartsWith(line, ";; flags: ")) {
      const absl::string_view rest = line.substr(10);
      result.flags = std::string(rest.substr(0, rest.find(';')));
    } else if (line == ";; ANSWER SECTION:") {
      section = &result.answers;
    } else if (line == ";; AUTHORITY SECTION:") {
      section = &result.authority;
    } else if (line[0] == ';') {
      section = nullptr;
    } else if (section != nullptr) {
      section->push_back(
          absl::StrJoin(absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty()), " "));
    }
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Fixture: a server with three services.

class DnsServerTest : public ::testing::Test {
 protected:
  void SetUp() override { server_ = MakeServer(DnsServer::Options()); }

  std::unique_ptr<DnsServer> MakeServer(DnsServer::Options options) {
    absl::StatusOr<std::unique_ptr<DnsServer>> server = DnsServer::Create(
        std::move(options),
        [this](absl::string_view tenant, absl::string_view service) {
          return Lookup(tenant, service);
        },
        registry_);
    EXPECT_TRUE(server.ok()) << server.status();
    return server.ok() ? *std::move(server) : nullptr;
  }

  std::optional<std::string> Lookup(absl::string_view tenant, absl::string_view service) {
    std::lock_guard<std::mutex> lock(mu_);
    lookups_.emplace_back(std::string(tenant), std::string(service));
    auto it = vips_.find({std::string(tenant), std::string(service)});
    if (it == vips_.end()) return std::nullopt;
    return it->second;
  }

  std::vector<std::pair<std::string, std::string>> lookups() {
    std::lock_guard<std::mutex> lock(mu_);
    return lookups_;
  }

  void SetVip(const std::string& tenant, const std::string& service, const std::string& vip) {
    std::lock_guard<std::mutex> lock(mu_);
    vips_[{tenant, service}] = vip;
  }

  PktPtr Ask(const std::string& query) {
    std::optional<std::string> response = server_->HandleQuery(query, DnsServer::Transport::kUdp);
    EXPECT_TRUE(response.has_value());
    return response.has_value() ? Parse(*response) : nullptr;
  }

  void StartServer(DnsServer& server) {
    const absl::Status started = server.Start("127.0.0.1:0");
    ASSERT_TRUE(started.ok()) << started;
    ASSERT_GT(server.port(), 0);
  }

  // Asserts that the server at `port` still answers an A query correctly over UDP.
  void ExpectStillAnswers(int port) {
    std::optional<std::string> reply = UdpExchange(port, Query("web.acme.ferry.internal"));
    ASSERT_TRUE(reply.has_value());
    PktPtr pkt = Parse(*reply);
    ASSERT_NE(pkt, nullptr);
    EXPECT_THAT(Records(ldns_pkt_answer(pkt.get())),
                ElementsAre("web.acme.ferry.internal. 30 A 10.100.0.7"));
  }

  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
  std::mutex mu_;
  std::map<std::pair<std::string, std::string>, std::string> vips_ = {
      {{"acme", "web"}, "10.100.0.7"},
      {{"acme", "db"}, "10.100.0.8"},
      {{"beta", "web"}, "10.100.1.2"},
  };
  std::vector<std::pair<std::string, std::string>> lookups_;
  std::unique_ptr<DnsServer> server_;
};

// ---------------------------------------------------------------------------------------------
// Answers (HandleQuery, no sockets).

TEST_F(DnsServerTest, AnswersAQueryWithTheVipAndTtl) {
  PktPtr pkt = Ask(Query("web.acme.ferry.internal"));
  ASSERT_NE(pkt, nullptr);
  EXPECT_EQ(Rcode(*pkt), LDNS_RCODE_NOERROR);
  EXPECT_TRUE(ldns_pkt_qr(pkt.get()));
  EXPECT_TRUE(ldns_pkt_aa(pkt.get()));
  EXPECT_FALSE(ldns_pkt_tc(pkt.get()));
  EXPECT_THAT(Records(ldns_pkt_answer(pkt.get())),
              ElementsAre("web.acme.ferry.internal. 30 A 10.100.0.7"));
  EXPECT_THAT(Records(ldns_pkt_authority(pkt.get())), IsEmpty());
  EXPECT_THAT(lookups(), ElementsAre(Pair("acme", "web")));

  PktPtr other = Ask(Query("web.beta.ferry.internal"));
  ASSERT_NE(other, nullptr);
  EXPECT_THAT(Records(ldns_pkt_answer(other.get())),
              ElementsAre("web.beta.ferry.internal. 30 A 10.100.1.2"));
}

TEST_F(DnsServerTest, EchoesIdQuestionRdAndCdAndNeverSetsRa) {
  for (bool recursion : {true, false}) {
    QueryBuilder builder("db.acme.ferry.internal");
    builder.Id(0xA55A).CheckingDisabled();
    if (!recursion) builder.NoRecursion();
    PktPtr pkt = Ask(builder.Build());
    ASSERT_NE(pkt, nullptr);
    EXPECT_EQ(ldns_pkt_id(pkt.get()), 0xA55A);
    EXPECT_EQ(ldns_pkt_get_opcode(pkt.get()), LDNS_PACKET_QUERY);
    EXPECT_EQ(ldns_pkt_rd(pkt.get()), recursion);
    EXPECT_TRUE(ldns_pkt_cd(pkt.get()));
    EXPECT_FALSE(ldns_pkt_ra(pkt.get()));
    EXPECT_FALSE(ldns_pkt_ad(pkt.get()));
    EXPECT_THAT(Questions(*pkt), ElementsAre("db.acme.ferry.internal. A"));
  }
}

TEST_F(DnsServerTest, NamesAreCaseInsensitiveAndTheQuestionKeepsItsCase) {
  PktPtr pkt = Ask(Query("WEB.Acme.FERRY.internal"));
  ASSERT_NE(pkt, nullptr);
  EXPECT_EQ(Rcode(*pkt), LDNS_RCODE_NOERROR);
  // Resolvers that randomise case (DNS 0x20) compare the echoed question and owner with theirs.
  EXPECT_THAT(Questions(*pkt), ElementsAre("WEB.Acme.FERRY.internal. A"));
  EXPECT_THAT(Records(ldns_pkt_answer(pkt.get())),
              ElementsAre("WEB.Acme.FERRY.internal. 30 A 10.100.0.7"));
  EXPECT_THAT(lookups(), ElementsAre(Pair("acme", "web")));  // The lookup sees lower case.
}

TEST_F(DnsServerTest, OtherTypesForAKnownNameGetNoDataWithTheSoa) {
  for (ldns_rr_type type : {LDNS_RR_TYPE_AAAA, LDNS_RR_TYPE_MX, LDNS_RR_TYPE_TXT, LDNS_RR_TYPE_SOA,
                            LDNS_RR_TYPE_NS, LDNS_RR_TYPE_CNAME}) {
    SCOPED_TRACE(type);
    PktPtr pkt = Ask(Query("web.acme.ferry.internal", type));
    ASSERT_NE(pkt, nullptr);
    EXPECT_EQ(Rcode(*pkt), LDNS_RCODE_NOERROR);
    EXPECT_TRUE(ldns_pkt_aa(pkt.get()));
    EXPECT_THAT(Records(ldns_pkt_answer(pkt.get())), IsEmpty());
    EXPECT_THAT(Records(ldns_pkt_authority(pkt.get())), ElementsAre(kSoa));
  }
  EXPECT_EQ(server_->Counters().at("nodata"), 6u);
}

TEST_F(DnsServerTest, UnknownNamesInTheZoneGetNxDomainWithTheSoa) {
  const std::vector<std::string> names = {
      "cache.acme.ferry.internal",    // Unknown service.
      "web.gamma.ferry.internal",     // Unknown tenant.
      "www.web.acme.ferry.internal",  // Nothing lives below a service.
      "a.b.c.d.ferry.internal",       //
      "we_b.acme.ferry.internal",     // Not a valid Ferry name: never looked up.
      "-web.acme.ferry.internal",     //
      "web.ac\\.me.ferry.internal",   // A dot inside a label.
      "x_y.ferry.internal",           // Not a valid tenant name.
  };
  for (const std::string& name : names) {
    SCOPED_TRACE(name);
    PktPtr pkt = Ask(Query(name));
    ASSERT_NE(pkt, nullptr);
    EXPECT_EQ(Rcode(*pkt), LDNS_RCODE_NXDOMAIN);
    EXPECT_TRUE(ldns_pkt_aa(pkt.get()));
    EXPECT_THAT(Records(ldns_pkt_answer(pkt.get())), IsEmpty());
    EXPECT_THAT(Records(ldns_pkt_authority(pkt.get())), ElementsAre(kSoa));
  }
  EXPECT_THAT(lookups(), ElementsAre(Pair("acme", "cache"), Pair("gamma", "web")));
  EXPECT_EQ(server_->Counters().at("nxdomain"), names.size());
}

TEST_F(DnsServerTest, ZoneApexAnswersSoaAndNoDataForOtherTypes) {
  PktPtr soa = Ask(Query("Ferry.Internal", LDNS_RR_TYPE_SOA));
  ASSERT_NE(soa, nullptr);
  EXPECT_EQ(Rcode(*soa), LDNS_RCODE_NOERROR);
  EXPECT_TRUE(ldns_pkt_aa(soa.get()));
  EXPECT_THAT(Records(ldns_pkt_answer(soa.get())),
              // ldns compresses the SOA's names against the question's (same name, any case).
              ElementsAre("Ferry.Internal. 5 SOA ns.Ferry.Internal. hostmaster.Ferry.Internal. "
                          "1 3600 600 86400 5"));

  for (ldns_rr_type type : {LDNS_RR_TYPE_A, LDNS_RR_TYPE_NS, LDNS_RR_TYPE_AAAA}) {
    PktPtr pkt = Ask(Query("ferry.internal", type));
    ASSERT_NE(pkt, nullptr);
    EXPECT_EQ(Rcode(*pkt), LDNS_RCODE_NOERROR);
    EXPECT_THAT(Records(ldns_pkt_answer(pkt.get())), IsEmpty());
    EXPECT_THAT(Records(ldns_pkt_authority(pkt.get())), ElementsAre(kSoa));
  }
  EXPECT_THAT(lookups(), IsEmpty());
}

// <tenant>.<zone> may be the parent of services: NXDOMAIN there would deny the names below it
// to resolvers that follow RFC 8020, so it is NODATA.
TEST_F(DnsServerTest, TenantLevelNamesGetNoData) {
  for (const std::string name : {"acme.ferry.internal", "nobody.ferry.internal"}) {
    PktPtr pkt = Ask(Query(name));
    ASSERT_NE(pkt, nullptr);
    EXPECT_EQ(Rcode(*pkt), LDNS_RCODE_NOERROR) << name;
    EXPECT_THAT(Records(ldns_pkt_answer(pkt.get())), IsEmpty());
    EXPECT_THAT(Records(ldns_pkt_authority(pkt.get())), ElementsAre(kSoa));
  }
}

TEST_F(DnsServerTest, NamesOutsideTheZoneAreRefused) {
  for (const std::string name :
       {"example.com", "xferry.internal", "internal", "web.acme.ferry.internal.example.com", "."}) {
    SCOPED_TRACE(name);
    PktPtr pkt = Ask(Query(name));
    ASSERT_NE(pkt, nullptr);
    EXPECT_EQ(Rcode(*pkt), LDNS_RCODE_REFUSED);
    EXPECT_FALSE(ldns_pkt_aa(pkt.get()));
    EXPECT_THAT(Records(ldns_pkt_answer(pkt.get())), IsEmpty());
    EXPECT_THAT(Records(ldns_pkt_authority(pkt.get())), IsEmpty());
    EXPECT_EQ(ldns_rr_list_rr_count(ldns_pkt_question(pkt.get())), 1u);
  }
  EXPECT_EQ(server_->Counters().at("refused_out_of_zone"), 5u);
}

TEST_F(DnsServerTest, OtherClassesAndZoneTransfersAreRefused) {
  PktPtr chaos = Ask(QueryBuilder("web.acme.ferry.internal").Class(LDNS_RR_CLASS_CH).Build());
  ASSERT_NE(chaos, nullptr);
  EXPECT_EQ(Rcode(*chaos), LDNS_RCODE_REFUSED);
  PktPtr axfr = Ask(Query("ferry.internal", LDNS_RR_TYPE_AXFR));
  ASSERT_NE(axfr, nullptr);
  EXPECT_EQ(Rcode(*axfr), LDNS_RCODE_REFUSED);
  PktPtr ixfr = Ask(Query("ferry.internal", LDNS_RR_TYPE_IXFR));
  ASSERT_NE(ixfr, nullptr);
  EXPECT_EQ(Rcode(*ixfr), LDNS_RCODE_REFUSED);
  EXPECT_EQ(server_->Counters().at("refused_class"), 1u);
  EXPECT_EQ(server_->Counters().at("refused_zone_transfer"), 2u);
}

TEST_F(DnsServerTest, AnyTypeAndAnyClassGetTheARecord) {
  PktPtr pkt = Ask(QueryBuilder("web.acme.ferry.internal")
                       .Type(LDNS_RR_TYPE_ANY)
                       .Class(LDNS_RR_CLASS_ANY)
                       .Build());
  ASSERT_NE(pkt, nullptr);
  EXPECT_EQ(Rcode(*pkt), LDNS_RCODE_NOERROR);
  EXPECT_THAT(Records(ldns_pkt_answer(pkt.get())),
              ElementsAre("web.acme.ferry.internal. 30 A 10.100.0.7"));
}

TEST_F(DnsServerTest, EdnsQueriesGetAnOptRecordBack) {
  PktPtr pkt = Ask(QueryBuilder("web.acme.ferry.internal").Edns(4096, 0, true).Build());
  ASSERT_NE(pkt, nullptr);
  EXPECT_EQ(Rcode(*pkt), LDNS_RCODE_NOERROR);
  EXPECT_TRUE(ldns_pkt_edns(pkt.get()));
  EXPECT_EQ(ldns_pkt_edns_udp_size(pkt.get()), 1232);
  EXPECT_EQ(ldns_pkt_edns_version(pkt.get()), 0);
  EXPECT_TRUE(ldns_pkt_edns_do(pkt.get()));
  EXPECT_EQ(ldns_rr_list_rr_count(ldns_pkt_answer(pkt.get())), 1u);

  PktPtr plain = Ask(Query("web.acme.ferry.internal"));
  ASSERT_NE(plain, nullptr);
  EXPECT_FALSE(ldns_pkt_edns(plain.get()));
}

TEST_F(DnsServerTest, EdnsVersionOtherThanZeroGetsBadVers) {
  PktPtr pkt = Ask(QueryBuilder("web.acme.ferry.internal").Edns(1232, 1).Build());
  ASSERT_NE(pkt, nullptr);
  EXPECT_EQ(Rcode(*pkt), 16);  // BADVERS.
  EXPECT_EQ(ldns_pkt_edns_version(pkt.get()), 0);
  EXPECT_THAT(Records(ldns_pkt_answer(pkt.get())), IsEmpty());
  EXPECT_EQ(server_->Counters().at("badvers"), 1u);
}

TEST_F(DnsServerTest, AVipThatIsNotIpv4GetsServFail) {
  SetVip("acme", "broken", "10.100.0.300");
  PktPtr pkt = Ask(Query("broken.acme.ferry.internal"));
  ASSERT_NE(pkt, nullptr);
  EXPECT_EQ(Rcode(*pkt), LDNS_RCODE_SERVFAIL);
  EXPECT_THAT(Records(ldns_pkt_answer(pkt.get())), IsEmpty());
  EXPECT_EQ(server_->Counters().at("servfail_bad_vip"), 1u);
}

TEST_F(DnsServerTest, ZoneTtlAndNegativeTtlAreConfigurable) {
  DnsServer::Options options;
  options.zone = "Corp.Example.";  // Case and the trailing dot do not matter.
  options.ttl = absl::Seconds(300);
  options.negative_ttl = absl::Seconds(60);
  std::unique_ptr<DnsServer> server = MakeServer(options);
  ASSERT_NE(server, nullptr);

  std::optional<std::string> answer =
      server->HandleQuery(Query("web.acme.corp.example"), DnsServer::Transport::kUdp);
  ASSERT_TRUE(answer.has_value());
  EXPECT_THAT(Records(ldns_pkt_answer(Parse(*answer).get())),
              ElementsAre("web.acme.corp.example. 300 A 10.100.0.7"));

  std::optional<std::string> missing =
      server->HandleQuery(Query("nope.acme.corp.example"), DnsServer::Transport::kUdp);
  ASSERT_TRUE(missing.has_value());
  PktPtr nxdomain = Parse(*missing);
  EXPECT_EQ(Rcode(*nxdomain), LDNS_RCODE_NXDOMAIN);
  EXPECT_THAT(Records(ldns_pkt_authority(nxdomain.get())),
              ElementsAre("corp.example. 60 SOA ns.corp.example. hostmaster.corp.example. 1 "
                          "3600 600 86400 60"));

  std::optional<std::string> old_zone =
      server->HandleQuery(Query("web.acme.ferry.internal"), DnsServer::Transport::kUdp);
  ASSERT_TRUE(old_zone.has_value());
  EXPECT_EQ(Rcode(*Parse(*old_zone)), LDNS_RCODE_REFUSED);
}

TEST_F(DnsServerTest, CreateRefusesBadOptions) {
  struct Case {
    const char* what;
    void (*change)(DnsServer::Options&);
    const char* message;
  };
  const Case cases[] = {
      {"empty zone", [](DnsServer::Options& o) { o.zone = ""; }, "zone"},
      {"root zone", [](DnsServer::Options& o) { o.zone = "."; }, "zone"},
      {"empty label", [](DnsServer::Options& o) { o.zone = "ferry..internal"; }, "zone"},
      {"underscore", [](DnsServer::Options& o) { o.zone = "ferry_dns.internal"; }, "ferry_dns"},
      {"long label", [](DnsServer::Options& o) { o.zone = std::string(64, 'a') + ".x"; }, "zone"},
      {"negative ttl", [](DnsServer::Options& o) { o.ttl = absl::Seconds(-1); }, "ttl"},
      {"huge ttl", [](DnsServer::Options& o) { o.ttl = absl::Hours(1000000); }, "ttl"},
      {"negative negative_ttl", [](DnsServer::Options& o) { o.negative_ttl = absl::Seconds(-5); },
       "negative_ttl"},
      {"tiny max_query_bytes", [](DnsServer::Options& o) { o.max_query_bytes = 100; },
       "max_query_bytes"},
      {"zero connections", [](DnsServer::Options& o) { o.max_tcp_connections = 0; },
       "max_tcp_connections"},
      {"zero idle timeout",
       [](DnsServer::Options& o) { o.tcp_idle_timeout = absl::ZeroDuration(); },
       "tcp_idle_timeout"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    DnsServer::Options options;
    c.change(options);
    absl::StatusOr<std::unique_ptr<DnsServer>> server = DnsServer::Create(
        options, [](absl::string_view, absl::string_view) { return std::nullopt; }, nullptr);
    ASSERT_FALSE(server.ok());
    EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(server.status().message()), HasSubstr(c.message));
  }
}

TEST_F(DnsServerTest, CountersAreExportedToTheRegistry) {
  Ask(Query("web.acme.ferry.internal"));
  Ask(Query("web.acme.ferry.internal"));
  Ask(Query("example.com"));
  const std::string text = SerializeText(*registry_);
  EXPECT_THAT(text, HasSubstr("ferry_dns_queries_total{result=\"answer\"} 2"));
  EXPECT_THAT(text, HasSubstr("ferry_dns_queries_total{result=\"refused_out_of_zone\"} 1"));
  EXPECT_THAT(text, HasSubstr("ferry_dns_queries_total{result=\"formerr_malformed\"} 0"));
  EXPECT_THAT(text, HasSubstr("ferry_dns_tcp_connections 0"));
  const std::map<std::string, uint64_t> counters = server_->Counters();
  EXPECT_EQ(counters.at("answer"), 2u);
  EXPECT_EQ(counters.at("refused_out_of_zone"), 1u);
  EXPECT_EQ(counters.size(), 15u);
}

// ---------------------------------------------------------------------------------------------
// Malformed input.

struct MalformedCase {
  const char* name;
  std::string bytes;
  std::optional<int> rcode;  // nullopt: dropped, no response.
  const char* counter;
};

std::vector<MalformedCase> MalformedCases() {
  const std::string question = WireName() + kTypeAClassIn;
  return {
      {"empty", "", std::nullopt, "dropped_short"},
      {"header cut at 11 bytes", Header(0x01, 0x00, 1).substr(0, 11), std::nullopt,
       "dropped_short"},
      {"header only, qdcount 1", Header(0x01, 0x00, 1), LDNS_RCODE_FORMERR, "formerr_malformed"},
      {"question without type and class", Header(0x01, 0x00, 1) + WireName(), LDNS_RCODE_FORMERR,
       "formerr_malformed"},
      {"question cut inside the class", Header(0x01, 0x00, 1) + WireName() + Bytes({0, 1, 0}),
       LDNS_RCODE_FORMERR, "formerr_malformed"},
      {"label length 64",
       Header(0x01, 0x00, 1) + Bytes({64}) + std::string(64, 'a') + Bytes({0}) + kTypeAClassIn,
       LDNS_RCODE_FORMERR, "formerr_malformed"},
      {"label running past the end", Header(0x01, 0x00, 1) + Bytes({40, 'a', 'b', 'c'}),
       LDNS_RCODE_FORMERR, "formerr_malformed"},
      {"name longer than 255",
       Header(0x01, 0x00, 1) +
           [] {
             std::string name;
             for (int i = 0; i < 5; ++i) name += Bytes({60}) + std::string(60, 'a');
             return name + Bytes({0});
           }() +
           kTypeAClassIn,
       LDNS_RCODE_FORMERR, "formerr_malformed"},
      {"compression pointer to itself", Header(0x01, 0x00, 1) + Bytes({0xc0, 12}) + kTypeAClassIn,
       LDNS_RCODE_FORMERR, "formerr_malformed"},
      {"compression pointers in a loop",
       Header(0x01, 0x00, 1) + Bytes({1, 'a', 0xc0, 16, 1, 'b', 0xc0, 12}) + kTypeAClassIn,
       LDNS_RCODE_FORMERR, "formerr_malformed"},
      {"compression pointer past the end",
       Header(0x01, 0x00, 1) + Bytes({0xc3, 0xff}) + kTypeAClassIn, LDNS_RCODE_FORMERR,
       "formerr_malformed"},
      {"reserved label type 0x40", Header(0x01, 0x00, 1) + Bytes({0x41, 'a', 0}) + kTypeAClassIn,
       LDNS_RCODE_FORMERR, "formerr_malformed"},
      {"qdcount 0", Header(0x01, 0x00, 0), LDNS_RCODE_FORMERR, "formerr_question_count"},
      {"qdcount 2", Header(0x01, 0x00, 2) + question + question, LDNS_RCODE_FORMERR,
       "formerr_question_count"},
      {"two OPT records", Header(0x01, 0x00, 1, 2) + question + kOptRecord + kOptRecord,
       LDNS_RCODE_FORMERR, "formerr_malformed"},
      {"a response (QR=1)", Header(0x81, 0x00, 1) + question, std::nullopt, "dropped_response"},
      {"a response that is malformed too", Header(0x80, 0x00, 7), std::nullopt, "dropped_response"},
      {"opcode STATUS", Header(0x10, 0x00, 1) + question, LDNS_RCODE_NOTIMPL, "notimp_opcode"},
      {"opcode NOTIFY", Header(0x20, 0x00, 1) + question, LDNS_RCODE_NOTIMPL, "notimp_opcode"},
      {"opcode 15, garbage after the header", Header(0x78, 0x00, 9) + Bytes({0xff, 0xff}),
       LDNS_RCODE_NOTIMPL, "notimp_opcode"},
      {"larger than max_query_bytes", Header(0x01, 0x00, 1) + question + std::string(5000, '\0'),
       LDNS_RCODE_FORMERR, "formerr_oversize"},
  };
}

TEST_F(DnsServerTest, MalformedQueriesGetFormErrNotImpOrAreDropped) {
  std::map<std::string, uint64_t> expected = server_->Counters();
  for (const MalformedCase& c : MalformedCases()) {
    SCOPED_TRACE(c.name);
    std::optional<std::string> response = server_->HandleQuery(c.bytes, DnsServer::Transport::kUdp);
    ++expected[c.counter];
    EXPECT_EQ(server_->Counters(), expected);
    if (!c.rcode.has_value()) {
      EXPECT_FALSE(response.has_value());
      continue;
    }
    ASSERT_TRUE(response.has_value());
    ASSERT_GE(response->size(), 12u);
    PktPtr pkt = Parse(*response);
    ASSERT_NE(pkt, nullptr);
    EXPECT_EQ(ldns_pkt_id(pkt.get()), 0xBEEF);
    EXPECT_TRUE(ldns_pkt_qr(pkt.get()));
    EXPECT_EQ(Rcode(*pkt), *c.rcode);
    EXPECT_FALSE(ldns_pkt_aa(pkt.get()));
    EXPECT_THAT(Records(ldns_pkt_answer(pkt.get())), IsEmpty());
    // The opcode is echoed, even the unassigned ones (read from the wire: ldns has no names
    // for them).
    EXPECT_EQ((static_cast<uint8_t>((*response)[2]) >> 3) & 0x0f,
              (static_cast<uint8_t>(c.bytes[2]) >> 3) & 0x0f);
  }
}

// A small in-process fuzz run: random bytes and mutations of real queries, under ASan/UBSan in
// --config=asan. Whatever comes back must be a well-formed response to the same ID.
TEST_F(DnsServerTest, RandomAndMutatedInputsNeverCrash) {
  std::mt19937 random(20240605);  // Fixed seed: the run is reproducible.
  const std::vector<std::string> seeds = {
      Query("web.acme.ferry.internal"),
      QueryBuilder("web.acme.ferry.internal").Edns(1232, 0, true).Build(),
      Query("nope.acme.ferry.internal", LDNS_RR_TYPE_AAAA),
      Query("example.com"),
      Header(0x01, 0x00, 1, 1) + WireName() + kTypeAClassIn + kOptRecord,
  };
  int answered = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string input;
    if (i % 4 == 0) {
      input.resize(random() % 64);
      for (char& c : input) c = static_cast<char>(random());
    } else {
      input = seeds[random() % seeds.size()];
      const int mutations = 1 + random() % 4;
      for (int m = 0; m < mutations; ++m) {
        switch (random() % 4) {
          case 0:  // Flip a byte.
            if (!input.empty()) input[random() % input.size()] = static_cast<char>(random());
            break;
          case 1:  // Truncate.
            input.resize(random() % (input.size() + 1));
            break;
          case 2:  // Insert a byte.
            input.insert(input.begin() + random() % (input.size() + 1),
                         static_cast<char>(random()));
            break;
          case 3:  // Clear QR and set a small opcode, so more inputs get past the header.
            if (input.size() > 2) input[2] = static_cast<char>(input[2] & 0x0f);
            break;
        }
      }
    }
    const DnsServer::Transport transport =
        i % 2 == 0 ? DnsServer::Transport::kUdp : DnsServer::Transport::kTcp;
    std::optional<std::string> response = server_->HandleQuery(input, transport);
    if (!response.has_value()) continue;
    ++answered;
    ASSERT_GE(input.size(), 12u);
    ldns_pkt* pkt = nullptr;
    ASSERT_EQ(
        ldns_wire2pkt(&pkt, reinterpret_cast<const uint8_t*>(response->data()), response->size()),
        LDNS_STATUS_OK);
    EXPECT_TRUE(ldns_pkt_qr(pkt));
    EXPECT_EQ(response->substr(0, 2), input.substr(0, 2));  // The ID.
    if (transport == DnsServer::Transport::kUdp) {
      EXPECT_LE(response->size(), 1232u);
    }
    ldns_pkt_free(pkt);
  }
  EXPECT_GT(answered, 1000);  // The run reached past the header checks.
  uint64_t total = 0;
  for (const auto& entry : server_->Counters()) total += entry.second;
  EXPECT_EQ(total, 20000u);
}

// ---------------------------------------------------------------------------------------------
// UDP and TCP.

TEST_F(DnsServerTest, UdpAnswersAndSurvivesMalformedDatagrams) {
  StartServer(*server_);
  ExpectStillAnswers(server_->port());
  for (const MalformedCase& c : MalformedCases()) {
    if (c.bytes.empty()) continue;  // An empty datagram is tested below.
    SCOPED_TRACE(c.name);
    std::optional<std::string> reply = UdpExchange(
        server_->port(), c.bytes, c.rcode.has_value() ? absl::Seconds(5) : absl::Milliseconds(200));
    if (!c.rcode.has_value()) {
      EXPECT_FALSE(reply.has_value());
      continue;
    }
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(Rcode(*Parse(*reply)), *c.rcode);
  }
  EXPECT_FALSE(UdpExchange(server_->port(), "", absl::Milliseconds(200)).has_value());
  ExpectStillAnswers(server_->port());
  EXPECT_EQ(server_->Counters().at("dropped_short"), 2u);
  EXPECT_EQ(server_->Counters().at("answer"), 2u);
}

TEST_F(DnsServerTest, TcpAnswersSeveralQueriesOnOneConnectionInOrder) {
  StartServer(*server_);
  TcpClient client(server_->port());
  ASSERT_TRUE(client.connected());
  // Three queries in one write.
  ASSERT_TRUE(client.Send(WithLengthPrefix(QueryBuilder("web.acme.ferry.internal").Id(1).Build()) +
                          WithLengthPrefix(QueryBuilder("nope.acme.ferry.internal").Id(2).Build()) +
                          WithLengthPrefix(QueryBuilder("db.acme.ferry.internal").Id(3).Build())));
  const std::vector<std::pair<int, int>> expected = {
      {1, LDNS_RCODE_NOERROR}, {2, LDNS_RCODE_NXDOMAIN}, {3, LDNS_RCODE_NOERROR}};
  for (const auto& [id, rcode] : expected) {
    std::optional<std::string> message = client.ReadMessage();
    ASSERT_TRUE(message.has_value()) << id;
    PktPtr pkt = Parse(*message);
    EXPECT_EQ(ldns_pkt_id(pkt.get()), id);
    EXPECT_EQ(Rcode(*pkt), rcode);
  }
  // One query sent a byte at a time.
  const std::string trickled =
      WithLengthPrefix(QueryBuilder("web.beta.ferry.internal").Id(4).Build());
  for (char c : trickled) ASSERT_TRUE(client.Send(std::string(1, c)));
  std::optional<std::string> message = client.ReadMessage();
  ASSERT_TRUE(message.has_value());
  EXPECT_THAT(Records(ldns_pkt_answer(Parse(*message).get())),
              ElementsAre("web.beta.ferry.internal. 30 A 10.100.1.2"));
}

TEST_F(DnsServerTest, TcpAnswersWhatWasAskedBeforeTheClientShutsDown) {
  StartServer(*server_);
  TcpClient client(server_->port());
  ASSERT_TRUE(client.Send(WithLengthPrefix(Query("web.acme.ferry.internal"))));
  client.ShutdownWrite();
  std::optional<std::string> message = client.ReadMessage();
  ASSERT_TRUE(message.has_value());
  EXPECT_EQ(Rcode(*Parse(*message)), LDNS_RCODE_NOERROR);
  EXPECT_TRUE(client.WaitForClose(absl::Seconds(5)));
}

TEST_F(DnsServerTest, TcpSurvivesZeroLengthAndLargestMessages) {
  StartServer(*server_);
  TcpClient client(server_->port());
  // A zero-length message is dropped; the connection stays usable.
  ASSERT_TRUE(client.Send(Bytes({0, 0}) +
                          WithLengthPrefix(QueryBuilder("web.acme.ferry.internal").Id(7).Build())));
  std::optional<std::string> after_empty = client.ReadMessage();
  ASSERT_TRUE(after_empty.has_value());
  EXPECT_EQ(ldns_pkt_id(Parse(*after_empty).get()), 7);

  // The largest message a length prefix can announce (65535 bytes, then 4 KiB more garbage
  // that reads as further messages): FORMERR for the first, whatever the rest parses as.
  std::string huge = Header(0x01, 0x00, 1) + WireName() + kTypeAClassIn;
  huge.resize(65535, '\x5a');
  ASSERT_TRUE(client.Send(WithLengthPrefix(huge)));
  std::optional<std::string> formerr = client.ReadMessage();
  ASSERT_TRUE(formerr.has_value());
  EXPECT_EQ(ldns_pkt_id(Parse(*formerr).get()), 0xBEEF);
  EXPECT_EQ(Rcode(*Parse(*formerr)), LDNS_RCODE_FORMERR);

  // More than 64 KiB of garbage on a second connection: the server neither crashes nor stops.
  TcpClient garbage(server_->port());
  ASSERT_TRUE(garbage.Send(std::string(70 * 1024, '\xff')));
  ExpectStillAnswers(server_->port());

  ASSERT_TRUE(client.Send(WithLengthPrefix(QueryBuilder("db.acme.ferry.internal").Id(8).Build())));
  std::optional<std::string> after_huge = client.ReadMessage();
  ASSERT_TRUE(after_huge.has_value());
  EXPECT_EQ(ldns_pkt_id(Parse(*after_huge).get()), 8);
  EXPECT_EQ(server_->Counters().at("formerr_oversize"), 1u);
  EXPECT_EQ(server_->Counters().at("dropped_short"), 1u);
}

TEST_F(DnsServerTest, TcpMalformedMessagesGetTheSameAnswersAsUdp) {
  StartServer(*server_);
  TcpClient client(server_->port());
  std::string stream;
  std::vector<int> expected_rcodes;
  for (const MalformedCase& c : MalformedCases()) {
    stream += WithLengthPrefix(c.bytes);
    if (c.rcode.has_value()) expected_rcodes.push_back(*c.rcode);
  }
  stream += WithLengthPrefix(QueryBuilder("web.acme.ferry.internal").Id(99).Build());
  ASSERT_TRUE(client.Send(stream));
  for (int rcode : expected_rcodes) {
    std::optional<std::string> message = client.ReadMessage();
    ASSERT_TRUE(message.has_value());
    EXPECT_EQ(Rcode(*Parse(*message)), rcode);
  }
  std::optional<std::string> last = client.ReadMessage();
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(ldns_pkt_id(Parse(*last).get()), 99);
}

// A client that pipelines far more than the server buffers for it, reads nothing until it has
// sent everything and then shuts down its side: the server stops reading while the client does
// not read, and still answers every query, in order, before it closes.
TEST_F(DnsServerTest, TcpAnswersEveryPipelinedQueryOfASlowReader) {
  StartServer(*server_);
  TcpClient client(server_->port(), /*receive_buffer=*/4096);
  ASSERT_TRUE(client.connected());
  constexpr int kQueries = 20000;  // About 1 MB of responses.
  std::string stream;
  for (int i = 0; i < kQueries; ++i) {
    stream += WithLengthPrefix(QueryBuilder("web.acme.ferry.internal").Id(i).Build());
  }
  std::thread sender([&] {
    EXPECT_TRUE(client.Send(stream));
    client.ShutdownWrite();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // Lets the buffers fill up.
  int received = 0;
  for (; received < kQueries; ++received) {
    std::optional<std::string> message = client.ReadMessage();
    if (!message.has_value()) break;
    ASSERT_EQ(ldns_pkt_id(Parse(*message).get()), received);
  }
  sender.join();
  EXPECT_EQ(received, kQueries);
  EXPECT_TRUE(client.WaitForClose(absl::Seconds(5)));
}

TEST_F(DnsServerTest, TcpClosesIdleConnections) {
  DnsServer::Options options;
  options.tcp_idle_timeout = absl::Milliseconds(200);
  std::unique_ptr<DnsServer> server = MakeServer(options);
  ASSERT_NE(server, nullptr);
  StartServer(*server);
  TcpClient client(server->port());
  ASSERT_TRUE(client.Send(WithLengthPrefix(Query("web.acme.ferry.internal"))));
  ASSERT_TRUE(client.ReadMessage().has_value());
  EXPECT_TRUE(client.WaitForClose(absl::Seconds(10)));
  EXPECT_THAT(SerializeText(*registry_),
              HasSubstr("ferry_dns_tcp_connections_closed_total{reason=\"idle_timeout\"} 1"));
}

TEST_F(DnsServerTest, TcpClientsBeyondTheLimitWaitUntilAConnectionCloses) {
  DnsServer::Options options;
  options.max_tcp_connections = 2;
  std::unique_ptr<DnsServer> server = MakeServer(options);
  ASSERT_NE(server, nullptr);
  StartServer(*server);
  const std::string query = WithLengthPrefix(Query("web.acme.ferry.internal"));
  auto first = std::make_unique<TcpClient>(server->port());
  TcpClient second(server->port());
  for (TcpClient* client : {first.get(), &second}) {
    ASSERT_TRUE(client->Send(query));
    ASSERT_TRUE(client->ReadMessage().has_value());
  }
  // The kernel completes the third handshake, but the server does not take the connection.
  TcpClient third(server->port());
  ASSERT_TRUE(third.connected());
  ASSERT_TRUE(third.Send(query));
  EXPECT_FALSE(third.ReadMessage(absl::Milliseconds(300)).has_value());
  first.reset();  // Frees a slot.
  EXPECT_TRUE(third.ReadMessage(absl::Seconds(5)).has_value());
}

// Several clients at once on both transports, while another thread reads the counters (for
// --config=tsan).
TEST_F(DnsServerTest, ConcurrentClientsAllGetAnswers) {
  StartServer(*server_);
  const int port = server_->port();
  constexpr int kThreads = 4;
  constexpr int kQueriesPerThread = 25;
  std::vector<std::thread> threads;
  std::vector<int> answered(2 * kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kQueriesPerThread; ++i) {
        std::optional<std::string> reply = UdpExchange(port, Query("db.acme.ferry.internal"));
        if (reply.has_value() && Rcode(*Parse(*reply)) == LDNS_RCODE_NOERROR) ++answered[t];
      }
    });
    threads.emplace_back([&, t] {
      TcpClient client(port);
      for (int i = 0; i < kQueriesPerThread; ++i) {
        if (!client.Send(WithLengthPrefix(Query("web.beta.ferry.internal")))) return;
        std::optional<std::string> reply = client.ReadMessage();
        if (reply.has_value() && Rcode(*Parse(*reply)) == LDNS_RCODE_NOERROR) {
          ++answered[kThreads + t];
        }
      }
    });
  }
  std::atomic<bool> clients_done{false};
  std::thread reader([&] {
    uint64_t seen = 0;
    while (!clients_done.load()) {
      const uint64_t now = server_->Counters().at("answer");
      EXPECT_GE(now, seen);  // Counters only grow.
      seen = now;
      std::this_thread::yield();
    }
  });
  for (std::thread& thread : threads) thread.join();
  clients_done.store(true);
  reader.join();
  for (int i = 0; i < 2 * kThreads; ++i) EXPECT_EQ(answered[i], kQueriesPerThread) << i;
  EXPECT_EQ(server_->Counters().at("answer"), 2u * kThreads * kQueriesPerThread);
}

TEST_F(DnsServerTest, StartAndStopFollowTheirContract) {
  EXPECT_EQ(server_->port(), 0);
  for (const std::string bad : {"127.0.0.1", "localhost:53", "127.0.0.1:65536", "127.0.0.1:x",
                                "::1:53", "[::1:53", ":53", "10.0.0.0.1:53"}) {
    const absl::Status status = server_->Start(bad);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad << ": " << status;
  }
  StartServer(*server_);
  const int port = server_->port();

  std::unique_ptr<DnsServer> other = MakeServer(DnsServer::Options());
  ASSERT_NE(other, nullptr);
  EXPECT_EQ(other->Start(absl::StrCat("127.0.0.1:", port)).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(other->Start("192.0.2.1:0").code(), absl::StatusCode::kInvalidArgument);

  EXPECT_EQ(server_->Start("127.0.0.1:0").code(), absl::StatusCode::kFailedPrecondition);
  server_->Stop();
  server_->Stop();
  EXPECT_EQ(server_->port(), port);
  EXPECT_EQ(server_->Start("127.0.0.1:0").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(
      UdpExchange(port, Query("web.acme.ferry.internal"), absl::Milliseconds(200)).has_value());
  // The port is free again, for UDP and TCP alike.
  EXPECT_TRUE(other->Start(absl::StrCat("127.0.0.1:", port)).ok());
  ExpectStillAnswers(other->port());
}

TEST_F(DnsServerTest, ServesIpv6) {
  const absl::Status started = server_->Start("[::1]:0");
  if (absl::IsInvalidArgument(started)) GTEST_SKIP() << "no IPv6 loopback here: " << started;
  ASSERT_TRUE(started.ok()) << started;
  const int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in6 address{};
  address.sin6_family = AF_INET6;
  address.sin6_port = htons(static_cast<uint16_t>(server_->port()));
  address.sin6_addr = in6addr_loopback;
  const std::string query = Query("web.acme.ferry.internal");
  ASSERT_EQ(sendto(fd, query.data(), query.size(), 0, reinterpret_cast<sockaddr*>(&address),
                   sizeof(address)),
            static_cast<ssize_t>(query.size()));
  ASSERT_TRUE(WaitReadable(fd, absl::Seconds(5)));
  char buffer[1500];
  const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
  close(fd);
  ASSERT_GT(n, 0);
  EXPECT_THAT(Records(ldns_pkt_answer(Parse(std::string(buffer, n)).get())),
              ElementsAre("web.acme.ferry.internal. 30 A 10.100.0.7"));
}

// ---------------------------------------------------------------------------------------------
// With dig, as an operator or a resolver would ask.

class DigTest : public DnsServerTest {
 protected:
  void SetUp() override {
    DnsServerTest::SetUp();
    StartServer(*server_);
  }
};

TEST_F(DigTest, AnswersAOverUdpAndTcp) {
  for (const std::string transport : {"+notcp", "+tcp"}) {
    SCOPED_TRACE(transport);
    const DigResult result = Dig(server_->port(), "web.acme.ferry.internal A " + transport);
    EXPECT_EQ(result.status, "NOERROR") << result.output;
    EXPECT_EQ(result.flags, "qr aa rd") << result.output;  // No "ra".
    EXPECT_THAT(result.answers, ElementsAre("web.acme.ferry.internal. 30 IN A 10.100.0.7"))
        << result.output;
  }
}

TEST_F(DigTest, NxDomainCarriesTheSoa) {
  const DigResult result = Dig(server_->port(), "nope.acme.ferry.internal A");
  EXPECT_EQ(result.status, "NXDOMAIN") << result.output;
  EXPECT_THAT(result.answers, IsEmpty());
  EXPECT_THAT(result.authority,
              ElementsAre("ferry.internal. 5 IN SOA ns.ferry.internal. hostmaster.ferry.internal. "
                          "1 3600 600 86400 5"))
      << result.output;
}

TEST_F(DigTest, RefusesNamesOutsideTheZone) {
  for (const std::string transport : {"+notcp", "+tcp"}) {
    const DigResult result = Dig(server_->port(), "www.example.com A " + transport);
    EXPECT_EQ(result.status, "REFUSED") << result.output;
  }
}

TEST_F(DigTest, AaaaForAKnownNameIsNoData) {
  const DigResult result = Dig(server_->port(), "web.acme.ferry.internal AAAA");
  EXPECT_EQ(result.status, "NOERROR") << result.output;
  EXPECT_THAT(result.answers, IsEmpty()) << result.output;
  EXPECT_EQ(result.authority.size(), 1u) << result.output;
}

TEST_F(DigTest, NamesAreCaseInsensitiveWithOrWithoutTheTrailingDot) {
  for (const std::string name : {"Web.ACME.Ferry.Internal", "web.acme.ferry.internal."}) {
    const DigResult result = Dig(server_->port(), name + " A");
    EXPECT_EQ(result.status, "NOERROR") << result.output;
    ASSERT_EQ(result.answers.size(), 1u) << result.output;
    EXPECT_THAT(result.answers[0], testing::EndsWith(" 30 IN A 10.100.0.7"));
  }
}

TEST_F(DigTest, SeveralQueriesOnOneTcpConnection) {
  const DigResult result = Dig(server_->port(),
                               "+tcp +keepopen web.acme.ferry.internal A db.acme.ferry.internal A "
                               "web.beta.ferry.internal A");
  EXPECT_THAT(result.answers, ElementsAre("web.acme.ferry.internal. 30 IN A 10.100.0.7",
                                          "db.acme.ferry.internal. 30 IN A 10.100.0.8",
                                          "web.beta.ferry.internal. 30 IN A 10.100.1.2"))
      << result.output;
  EXPECT_THAT(SerializeText(*registry_),
              HasSubstr("ferry_dns_tcp_connections_closed_total{reason=\"peer_closed\"} 1"));
}

TEST_F(DigTest, OddQueriesGetFormErrNotImpOrBadVers) {
  struct Case {
    const char* arguments;
    const char* status;
  };
  const Case cases[] = {
      {"+header-only", "FORMERR"},
      {"+opcode=status web.acme.ferry.internal A", "NOTIMP"},
      {"+edns=1 +noednsnegotiation web.acme.ferry.internal A", "BADVERS"},
      {"-c CH web.acme.ferry.internal A", "REFUSED"},
  };
  for (const Case& c : cases) {
    const DigResult result = Dig(server_->port(), c.arguments);
    EXPECT_EQ(result.status, c.status) << c.arguments << "\n" << result.output;
  }
  const DigResult after = Dig(server_->port(), "web.acme.ferry.internal A");
  EXPECT_THAT(after.answers, ElementsAre("web.acme.ferry.internal. 30 IN A 10.100.0.7"));
}

}  // namespace
}  // namespace ferry
