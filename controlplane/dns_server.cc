#include "controlplane/dns_server.h"

// ldns/common.h defines bool, true and false as macros unless <stdbool.h> came first, and
// those macros break overload resolution in headers included later (gmock's matchers).
// clang-format off
#include <stdbool.h>
#include <ldns/ldns.h>
// clang-format on

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/listen_address.h"
#include "common/metrics.h"
#include "common/naming.h"
#include "glog/logging.h"

namespace ferry {
namespace {

using Clock = std::chrono::steady_clock;

// The UDP payload size the server advertises and never exceeds over UDP with EDNS: the size
// that avoids IP fragmentation on common paths (DNS Flag Day 2020).
constexpr uint16_t kEdnsUdpSize = 1232;
// The most a UDP response may carry without EDNS (RFC 1035 section 4.2.1).
constexpr size_t kClassicUdpSize = 512;
// The largest DNS message (the TCP length prefix is 16 bits).
constexpr size_t kMaxMessageSize = 65535;
// RCODE 16 (extended): the OPT record's version is not one the server speaks (RFC 6891).
constexpr uint16_t kRcodeBadVers = 16;
// SOA timers for secondaries, which the zone never has; plausible values for tools that read
// them. MINIMUM (the negative-caching TTL) comes from the options.
constexpr uint32_t kSoaSerial = 1;
constexpr uint32_t kSoaRefresh = 3600;
constexpr uint32_t kSoaRetry = 600;
constexpr uint32_t kSoaExpire = 86400;
constexpr int64_t kMaxTtlSeconds = 0x7fffffff;  // RFC 2181 section 8.

struct LdnsPktFree {
  void operator()(ldns_pkt* pkt) const { ldns_pkt_free(pkt); }
};
struct LdnsRrFree {
  void operator()(ldns_rr* rr) const { ldns_rr_free(rr); }
};
struct LdnsRdfFree {
  void operator()(ldns_rdf* rdf) const { ldns_rdf_deep_free(rdf); }
};
using PktPtr = std::unique_ptr<ldns_pkt, LdnsPktFree>;
using RrPtr = std::unique_ptr<ldns_rr, LdnsRrFree>;
using RdfPtr = std::unique_ptr<ldns_rdf, LdnsRdfFree>;

// What happened to one query: the `result` label of ferry_dns_queries_total.
enum Result : int {
  kAnswer,
  kNoData,
  kNxDomain,
  kRefusedOutOfZone,
  kRefusedClass,
  kRefusedZoneTransfer,
  kFormErrMalformed,
  kFormErrQuestionCount,
  kFormErrOversize,
  kNotImpOpcode,
  kBadVers,
  kServFailBadVip,
  kDroppedShort,
  kDroppedResponse,
  kDroppedInternalError,
  kNumResults,
};

constexpr std::array<const char*, kNumResults> kResultLabels = {
    "answer",
    "nodata",
    "nxdomain",
    "refused_out_of_zone",
    "refused_class",
    "refused_zone_transfer",
    "formerr_malformed",
    "formerr_question_count",
    "formerr_oversize",
    "notimp_opcode",
    "badvers",
    "servfail_bad_vip",
    "dropped_short",
    "dropped_response",
    "dropped_internal_error",
};

// Why a TCP connection was closed: the `reason` label of ferry_dns_tcp_connections_closed_total.
constexpr char kClosedByPeer[] = "peer_closed";
constexpr char kClosedIdle[] = "idle_timeout";
constexpr char kClosedError[] = "error";
constexpr char kClosedServerStopped[] = "server_stopped";

std::string WireToString(uint8_t* wire, size_t size) {
  std::string out(reinterpret_cast<const char*>(wire), size);
  std::free(wire);  // ldns allocates with malloc (LDNS_FREE is free).
  return out;
}

// Label `index` (0 = leftmost) of an uncompressed dname, as raw bytes.
std::string Label(const ldns_rdf* name, uint8_t index) {
  RdfPtr label(ldns_dname_label(name, index));
  if (label == nullptr || ldns_rdf_size(label.get()) == 0) return "";
  const uint8_t* data = ldns_rdf_data(label.get());
  const size_t length = std::min<size_t>(data[0], ldns_rdf_size(label.get()) - 1);
  return std::string(reinterpret_cast<const char*>(data + 1), length);
}

// Replaces `rr`'s owner with a copy of `owner` (ldns_rr_set_owner does not free the old one).
bool SetOwner(ldns_rr* rr, const ldns_rdf* owner) {
  ldns_rdf* copy = ldns_rdf_clone(owner);
  if (copy == nullptr) return false;
  ldns_rdf* old = ldns_rr_owner(rr);
  ldns_rr_set_owner(rr, copy);
  ldns_rdf_deep_free(old);
  return true;
}

absl::StatusOr<uint32_t> TtlSeconds(absl::Duration ttl, absl::string_view option) {
  const int64_t seconds = absl::ToInt64Seconds(ttl);
  if (ttl < absl::ZeroDuration() || seconds > kMaxTtlSeconds) {
    return absl::InvalidArgumentError(absl::StrCat("DnsServer::Options::", option, " is ",
                                                   absl::FormatDuration(ttl),
                                                   "; use 0s to 2147483647s"));
  }
  return static_cast<uint32_t>(seconds);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The answer logic.

class DnsServer::Responder {
 public:
  static absl::StatusOr<std::unique_ptr<Responder>> Create(const Options& options, Lookup lookup,
                                                           prometheus::Registry& registry) {
    absl::StatusOr<uint32_t> ttl = TtlSeconds(options.ttl, "ttl");
    if (!ttl.ok()) return ttl.status();
    absl::StatusOr<uint32_t> negative_ttl = TtlSeconds(options.negative_ttl, "negative_ttl");
    if (!negative_ttl.ok()) return negative_ttl.status();

    const auto bad_zone = [&](absl::string_view why) {
      return absl::InvalidArgumentError(
          absl::StrCat("DnsServer::Options::zone \"", options.zone, "\" ", why));
    };
    std::string zone_text = absl::AsciiStrToLower(options.zone);
    if (!zone_text.empty() && zone_text.back() == '.') zone_text.pop_back();
    if (zone_text.empty()) return bad_zone("is empty; use a name such as \"ferry.internal\"");
    RdfPtr zone(ldns_dname_new_frm_str(absl::StrCat(zone_text, ".").c_str()));
    if (zone == nullptr) return bad_zone("is not a DNS name");
    const uint8_t zone_labels = ldns_dname_label_count(zone.get());
    for (uint8_t i = 0; i < zone_labels; ++i) {
      const std::string label = Label(zone.get(), i);
      if (!IsValidName(label)) {
        return bad_zone(absl::StrCat(
            "has the label \"", label,
            "\"; each label must be 1-63 letters, digits and hyphens, not starting or ending "
            "with a hyphen"));
      }
    }

    // The SOA, built once from its presentation form and copied into each negative answer.
    const std::string soa_text = absl::StrCat(
        zone_text, ". ", *negative_ttl, " IN SOA ns.", zone_text, ". hostmaster.", zone_text, ". ",
        kSoaSerial, " ", kSoaRefresh, " ", kSoaRetry, " ", kSoaExpire, " ", *negative_ttl);
    ldns_rr* soa = nullptr;
    if (ldns_rr_new_frm_str(&soa, soa_text.c_str(), 0, nullptr, nullptr) != LDNS_STATUS_OK) {
      // The zone has at most 253 characters, so "hostmaster." pushes a long one over 255.
      return bad_zone("is too long to build the zone's SOA record (hostmaster.<zone>)");
    }
    return std::unique_ptr<Responder>(new Responder(options, std::move(lookup), std::move(zone),
                                                    zone_labels, RrPtr(soa), *ttl, registry));
  }

  std::optional<std::string> Handle(absl::string_view query, Transport transport) const {
    Reply reply = Respond(query, transport);
    const bool dropped = reply.result == kDroppedShort || reply.result == kDroppedResponse ||
                         reply.result == kDroppedInternalError;
    // An answer that could not be encoded (ldns out of memory) is not sent either.
    if (!dropped && !reply.wire.has_value()) reply.result = kDroppedInternalError;
    counters_[reply.result]->Increment();
    return std::move(reply.wire);
  }

  std::map<std::string, uint64_t> Counters() const {
    std::map<std::string, uint64_t> out;
    for (int i = 0; i < kNumResults; ++i) {
      out[kResultLabels[i]] = static_cast<uint64_t>(counters_[i]->Value());
    }
    return out;
  }

 private:
  // What to answer to a parsed query.
  struct Answer {
    uint16_t rcode = LDNS_RCODE_NOERROR;  // May be extended (> 15) when the query has EDNS.
    bool authoritative = false;
    std::vector<RrPtr> answer;
    std::vector<RrPtr> authority;
  };
  struct Reply {
    Result result;
    std::optional<std::string> wire;
  };

  Responder(const Options& options, Lookup lookup, RdfPtr zone, uint8_t zone_labels, RrPtr soa,
            uint32_t ttl, prometheus::Registry& registry)
      : lookup_(std::move(lookup)),
        zone_(std::move(zone)),
        zone_labels_(zone_labels),
        soa_(std::move(soa)),
        ttl_(ttl),
        max_query_bytes_(options.max_query_bytes) {
    auto& family = AddCounterFamily(registry, "ferry_dns_queries_total",
                                    "DNS queries handled by the Intermediate, by result.");
    for (int i = 0; i < kNumResults; ++i)
      counters_[i] = &family.Add({{"result", kResultLabels[i]}});
  }

  Reply Respond(absl::string_view query, Transport transport) const {
    if (query.size() < LDNS_HEADER_SIZE) return {kDroppedShort, std::nullopt};
    const auto* wire = reinterpret_cast<const uint8_t*>(query.data());
    // Answering a response could start a loop with another server (or a spoofed source).
    if (LDNS_QR_WIRE(wire)) return {kDroppedResponse, std::nullopt};
    if (LDNS_OPCODE_WIRE(wire) != LDNS_PACKET_QUERY) {
      return {kNotImpOpcode, HeaderOnly(wire, LDNS_RCODE_NOTIMPL)};
    }
    if (query.size() > max_query_bytes_) {
      return {kFormErrOversize, HeaderOnly(wire, LDNS_RCODE_FORMERR)};
    }
    ldns_pkt* raw = nullptr;
    if (ldns_wire2pkt(&raw, wire, query.size()) != LDNS_STATUS_OK) {
      return {kFormErrMalformed, HeaderOnly(wire, LDNS_RCODE_FORMERR)};
    }
    const PktPtr parsed(raw);
    const size_t limit = transport == Transport::kTcp ? kMaxMessageSize : UdpLimit(*parsed);
    Answer formerr;
    formerr.rcode = LDNS_RCODE_FORMERR;
    if (ldns_rr_list_rr_count(ldns_pkt_question(parsed.get())) != 1) {
      return {kFormErrQuestionCount, Encode(*parsed, formerr, limit)};
    }
    // ldns folds every OPT record into the packet's EDNS fields and leaves them out of the
    // additional section; a query may carry one at most (RFC 6891 section 6.1.1).
    const size_t opt_records =
        LDNS_ARCOUNT(wire) -
        std::min<size_t>(LDNS_ARCOUNT(wire),
                         ldns_rr_list_rr_count(ldns_pkt_additional(parsed.get())));
    if (opt_records > 1) return {kFormErrMalformed, Encode(*parsed, formerr, limit)};
    if (ldns_pkt_edns(parsed.get()) && ldns_pkt_edns_version(parsed.get()) != 0) {
      Answer badvers;
      badvers.rcode = kRcodeBadVers;
      return {kBadVers, Encode(*parsed, badvers, limit)};
    }
    Answer answer;
    const Result result = Decide(*ldns_rr_list_rr(ldns_pkt_question(parsed.get()), 0), &answer);
    if (result == kDroppedInternalError) return {result, std::nullopt};
    return {result, Encode(*parsed, answer, limit)};
  }

  // Fills `answer` for `question` (class, type and name already parsed by ldns).
  Result Decide(const ldns_rr& question, Answer* answer) const {
    const uint16_t qclass = static_cast<uint16_t>(ldns_rr_get_class(&question));
    const uint16_t qtype = static_cast<uint16_t>(ldns_rr_get_type(&question));
    const ldns_rdf* qname = ldns_rr_owner(&question);
    const RdfPtr name(ldns_rdf_clone(qname));
    if (name == nullptr) return kDroppedInternalError;
    ldns_dname2canonical(name.get());  // Lower-case: names compare case-insensitively.

    const bool apex = ldns_dname_compare(name.get(), zone_.get()) == 0;
    if (!apex && !ldns_dname_is_subdomain(name.get(), zone_.get())) {
      answer->rcode = LDNS_RCODE_REFUSED;
      return kRefusedOutOfZone;
    }
    if (qclass != LDNS_RR_CLASS_IN && qclass != LDNS_RR_CLASS_ANY) {
      answer->rcode = LDNS_RCODE_REFUSED;
      return kRefusedClass;
    }
    if (qtype == LDNS_RR_TYPE_AXFR || qtype == LDNS_RR_TYPE_IXFR) {
      answer->rcode = LDNS_RCODE_REFUSED;
      return kRefusedZoneTransfer;
    }
    answer->authoritative = true;
    const bool wants_any = qtype == LDNS_RR_TYPE_ANY;

    const int depth = ldns_dname_label_count(name.get()) - zone_labels_;
    if (depth == 0) {
      if (qtype != LDNS_RR_TYPE_SOA && !wants_any) return NoData(answer);
      RrPtr soa(ldns_rr_clone(soa_.get()));
      if (soa == nullptr || !SetOwner(soa.get(), qname)) return kDroppedInternalError;
      answer->answer.push_back(std::move(soa));
      return kAnswer;
    }
    if (depth == 1) {
      // <tenant>.<zone>: possibly the parent of services (see the header).
      return IsValidName(Label(name.get(), 0)) ? NoData(answer) : NxDomain(answer);
    }
    if (depth != 2) return NxDomain(answer);

    const std::string service = Label(name.get(), 0);
    const std::string tenant = Label(name.get(), 1);
    if (!IsValidName(service) || !IsValidName(tenant)) return NxDomain(answer);
    const std::optional<std::string> vip = lookup_(tenant, service);
    if (!vip.has_value()) return NxDomain(answer);
    if (qtype != LDNS_RR_TYPE_A && !wants_any) return NoData(answer);

    RdfPtr address(ldns_rdf_new_frm_str(LDNS_RDF_TYPE_A, vip->c_str()));
    if (address == nullptr) {
      LOG_EVERY_N(ERROR, 100) << "DNS: the lookup gave \"" << *vip << "\" as the VIP of " << service
                              << "." << tenant
                              << ", which is not an IPv4 address; answering SERVFAIL";
      answer->rcode = LDNS_RCODE_SERVFAIL;
      answer->authoritative = false;
      return kServFailBadVip;
    }
    RrPtr a(ldns_rr_new());
    if (a == nullptr || !SetOwner(a.get(), qname)) return kDroppedInternalError;
    ldns_rr_set_type(a.get(), LDNS_RR_TYPE_A);
    ldns_rr_set_class(a.get(), LDNS_RR_CLASS_IN);
    ldns_rr_set_ttl(a.get(), ttl_);
    if (!ldns_rr_push_rdf(a.get(), address.get())) return kDroppedInternalError;
    address.release();  // Now owned by `a`.
    answer->answer.push_back(std::move(a));
    return kAnswer;
  }

  Result NoData(Answer* answer) const { return AddSoa(answer) ? kNoData : kDroppedInternalError; }

  Result NxDomain(Answer* answer) const {
    answer->rcode = LDNS_RCODE_NXDOMAIN;
    return AddSoa(answer) ? kNxDomain : kDroppedInternalError;
  }

  bool AddSoa(Answer* answer) const {
    RrPtr soa(ldns_rr_clone(soa_.get()));
    if (soa == nullptr) return false;
    answer->authority.push_back(std::move(soa));
    return true;
  }

  // The largest UDP response `query`'s sender accepts (RFC 6891 section 6.2.5), capped at what
  // the server advertises.
  static size_t UdpLimit(const ldns_pkt& query) {
    if (!ldns_pkt_edns(&query)) return kClassicUdpSize;
    return std::max<size_t>(kClassicUdpSize,
                            std::min<size_t>(ldns_pkt_edns_udp_size(&query), kEdnsUdpSize));
  }

  // The response to a parsed query: its ID, RD and CD, its question, `answer`, an OPT record
  // when the query had one. When that exceeds `limit` bytes, the same without records and with
  // TC=1. Nullopt when ldns runs out of memory.
  static std::optional<std::string> Encode(const ldns_pkt& query, const Answer& answer,
                                           size_t limit) {
    std::optional<std::string> full = Build(query, answer, /*truncated=*/false);
    if (!full.has_value() || full->size() <= limit) return full;
    return Build(query, answer, /*truncated=*/true);
  }

  static std::optional<std::string> Build(const ldns_pkt& query, const Answer& answer,
                                          bool truncated) {
    const PktPtr pkt(ldns_pkt_new());
    if (pkt == nullptr) return std::nullopt;
    ldns_pkt_set_id(pkt.get(), ldns_pkt_id(&query));
    ldns_pkt_set_qr(pkt.get(), true);
    ldns_pkt_set_opcode(pkt.get(), LDNS_PACKET_QUERY);
    ldns_pkt_set_aa(pkt.get(), answer.authoritative);
    ldns_pkt_set_tc(pkt.get(), truncated);
    ldns_pkt_set_rd(pkt.get(), ldns_pkt_rd(&query));
    ldns_pkt_set_cd(pkt.get(), ldns_pkt_cd(&query));
    ldns_pkt_set_ra(pkt.get(), false);
    ldns_pkt_set_rcode(pkt.get(), static_cast<uint8_t>(answer.rcode & 0x0f));
    const auto push = [&](ldns_pkt_section section, const ldns_rr* rr) {
      ldns_rr* copy = ldns_rr_clone(rr);
      if (copy == nullptr) return false;
      ldns_pkt_push_rr(pkt.get(), section, copy);  // Takes ownership.
      return true;
    };
    const ldns_rr_list* question = ldns_pkt_question(&query);
    if (ldns_rr_list_rr_count(question) == 1 &&
        !push(LDNS_SECTION_QUESTION, ldns_rr_list_rr(question, 0))) {
      return std::nullopt;
    }
    if (!truncated) {
      for (const RrPtr& rr : answer.answer) {
        if (!push(LDNS_SECTION_ANSWER, rr.get())) return std::nullopt;
      }
      for (const RrPtr& rr : answer.authority) {
        if (!push(LDNS_SECTION_AUTHORITY, rr.get())) return std::nullopt;
      }
    }
    if (ldns_pkt_edns(&query)) {
      ldns_pkt_set_edns_udp_size(pkt.get(), kEdnsUdpSize);
      ldns_pkt_set_edns_version(pkt.get(), 0);
      ldns_pkt_set_edns_extended_rcode(pkt.get(), static_cast<uint8_t>(answer.rcode >> 4));
      ldns_pkt_set_edns_do(pkt.get(), ldns_pkt_edns_do(&query));
    }
    uint8_t* wire = nullptr;
    size_t size = 0;
    if (ldns_pkt2wire(&wire, pkt.get(), &size) != LDNS_STATUS_OK) return std::nullopt;
    return WireToString(wire, size);
  }

  // A response with only a header, for queries whose header is all that can be trusted: the
  // query's ID, opcode, RD and CD, and `rcode`.
  static std::optional<std::string> HeaderOnly(const uint8_t* query, uint8_t rcode) {
    const PktPtr pkt(ldns_pkt_new());
    if (pkt == nullptr) return std::nullopt;
    ldns_pkt_set_id(pkt.get(), LDNS_ID_WIRE(query));
    ldns_pkt_set_qr(pkt.get(), true);
    ldns_pkt_set_rd(pkt.get(), LDNS_RD_WIRE(query) != 0);
    ldns_pkt_set_cd(pkt.get(), LDNS_CD_WIRE(query) != 0);
    ldns_pkt_set_rcode(pkt.get(), rcode);
    uint8_t* wire = nullptr;
    size_t size = 0;
    if (ldns_pkt2wire(&wire, pkt.get(), &size) != LDNS_STATUS_OK) return std::nullopt;
    // The opcode is copied on the wire: ldns_pkt_opcode only names the assigned opcodes, and a
    // NOTIMP answer must echo the unassigned ones too.
    LDNS_OPCODE_SET(wire, LDNS_OPCODE_WIRE(query));
    return WireToString(wire, size);
  }

  const Lookup lookup_;
  const RdfPtr zone_;  // Canonical (lower-case), absolute.
  const uint8_t zone_labels_;
  const RrPtr soa_;
  const uint32_t ttl_;
  const size_t max_query_bytes_;
  std::array<prometheus::Counter*, kNumResults> counters_{};
};

// ---------------------------------------------------------------------------------------------
// Sockets.

namespace {

// epoll user data: connections get ids from kFirstConnectionId up, never reused, so that an
// event for a connection closed earlier in the same batch finds nothing.
constexpr uint64_t kWakeId = 0;
constexpr uint64_t kUdpId = 1;
constexpr uint64_t kListenId = 2;
constexpr uint64_t kFirstConnectionId = 3;

// Datagrams served per wake-up before TCP gets a turn.
constexpr int kUdpBatch = 64;
constexpr size_t kTcpReadChunk = 16 * 1024;
// Responses waiting for a TCP client that does not read: above this the server stops reading
// that connection's queries until the client catches up.
constexpr size_t kMaxPendingOutput = 64 * 1024;
// SO_SNDBUF and SO_RCVBUF of TCP connections (the kernel doubles them for its bookkeeping).
constexpr int kTcpSocketBuffer = 64 * 1024;
// Pause after accept() fails for lack of fds or memory, instead of spinning.
constexpr Clock::duration kAcceptRetryDelay = std::chrono::milliseconds(100);
// Tries to find a port free for both UDP and TCP when the caller asks for any port.
constexpr int kPortAttempts = 16;

// Socket options the DNS server needs before bind.
void SetUpSocket(SocketType type, int fd, int family) {
  const int one = 1;
  if (family == AF_INET6) {
    // "[::]:53" means IPv6; IPv4 clients use a 0.0.0.0 listener.
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  }
  if (type == SocketType::kTcp) {
    // Inherited by accepted connections. DNS messages are small: fixed buffers keep what the
    // connections can pin in the kernel to a few MB, where autotuning would let each grow
    // toward tcp_wmem/tcp_rmem's maxima (megabytes) for a client that pipelines and never
    // reads.
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &kTcpSocketBuffer, sizeof(kTcpSocketBuffer));
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kTcpSocketBuffer, sizeof(kTcpSocketBuffer));
  } else {
    // Replies leave from the address the query was sent to, even on a wildcard listener of a
    // host with several addresses (clients drop answers from another source).
    if (family == AF_INET) {
      setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
    } else {
      setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
    }
  }
}

absl::StatusOr<int> Bind(const ListenAddress& address, SocketType type) {
  return BindListenSocket(address, type,
                          [type](int fd, int family) { SetUpSocket(type, fd, family); });
}

// Binds UDP and TCP to the same port of `address`; with port 0, a port free for both.
absl::Status BindBoth(const ListenAddress& address, int* udp_fd, int* tcp_fd) {
  const bool any_port = address.port() == 0;
  for (int attempt = 1;; ++attempt) {
    absl::StatusOr<int> udp = Bind(address, SocketType::kUdp);
    if (!udp.ok()) return udp.status();
    ListenAddress tcp_address = address;
    if (any_port) {
      absl::StatusOr<int> udp_port = LocalPort(*udp);
      if (!udp_port.ok()) {
        close(*udp);
        return udp_port.status();
      }
      tcp_address = address.WithPort(*udp_port);
    }
    absl::StatusOr<int> tcp = Bind(tcp_address, SocketType::kTcp);
    if (!tcp.ok()) {
      close(*udp);
      // The kernel picked a UDP port whose TCP twin is taken: try another.
      if (any_port && absl::IsAlreadyExists(tcp.status()) && attempt < kPortAttempts) continue;
      return tcp.status();
    }
    *udp_fd = *udp;
    *tcp_fd = *tcp;
    return absl::OkStatus();
  }
}

}  // namespace

// The server thread's state. Everything here is touched by that thread only.
class DnsServer::EventLoop {
 public:
  EventLoop(const DnsServer& server, int udp_fd, int tcp_fd, int epoll_fd)
      : server_(server), udp_fd_(udp_fd), tcp_fd_(tcp_fd), epoll_fd_(epoll_fd) {}

  // Serves until the wake eventfd fires, then closes every connection.
  void Run() {
    std::vector<epoll_event> events(64);
    bool stop = false;
    while (!stop) {
      const int n = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()),
                               TimeoutMs(Clock::now()));
      if (n < 0) {
        if (errno == EINTR) continue;
        PLOG(ERROR) << "DNS server: epoll_wait failed; stopping";
        break;
      }
      for (int i = 0; i < n; ++i) {
        const uint64_t id = events[i].data.u64;
        if (id == kWakeId) {
          stop = true;
        } else if (id == kUdpId) {
          ServeUdp();
        } else if (id == kListenId) {
          Accept();
        } else {
          ServeConnection(id, events[i].events);
        }
      }
      const Clock::time_point now = Clock::now();
      ExpireIdle(now);
      if (accept_retry_at_.has_value() && now >= *accept_retry_at_) {
        accept_retry_at_.reset();
        SetAccepting(true);
      }
    }
    while (!connections_.empty()) Close(connections_.begin()->first, kClosedServerStopped);
  }

 private:
  struct Connection {
    int fd = -1;
    std::string in;   // Received bytes not yet handled.
    std::string out;  // Responses not yet written, from out_offset on.
    size_t out_offset = 0;
    bool peer_closed = false;  // The client shut down its side: flush, then close.
    uint32_t interest = 0;     // The epoll events asked for.
    Clock::time_point last_activity;

    size_t pending() const { return out.size() - out_offset; }
  };

  // Milliseconds until the next idle deadline or accept retry; -1 (forever) when none.
  int TimeoutMs(Clock::time_point now) const {
    std::optional<Clock::time_point> next = accept_retry_at_;
    const auto idle = absl::ToChronoNanoseconds(server_.options_.tcp_idle_timeout);
    for (const auto& entry : connections_) {
      const Clock::time_point deadline = entry.second.last_activity + idle;
      if (!next.has_value() || deadline < *next) next = deadline;
    }
    if (!next.has_value()) return -1;
    if (*next <= now) return 0;
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(*next - now).count();
    return static_cast<int>(std::min<int64_t>(ms, 60 * 1000));
  }

  void ServeUdp() {
    for (int i = 0; i < kUdpBatch; ++i) {
      sockaddr_storage peer{};
      iovec iov{udp_buffer_.data(), udp_buffer_.size()};
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(in6_pktinfo))];
      msghdr message{};
      message.msg_name = &peer;
      message.msg_namelen = sizeof(peer);
      message.msg_iov = &iov;
      message.msg_iovlen = 1;
      message.msg_control = control;
      message.msg_controllen = sizeof(control);
      const ssize_t n = recvmsg(udp_fd_, &message, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
          // ICMP errors from earlier replies surface here (ECONNREFUSED); nothing to do.
          PLOG_EVERY_N(WARNING, 1000) << "DNS server: UDP receive failed";
        }
        return;
      }
      // The buffer holds the largest UDP payload, so nothing was cut (no MSG_TRUNC).
      std::optional<std::string> response =
          server_.HandleQuery(absl::string_view(reinterpret_cast<const char*>(udp_buffer_.data()),
                                                static_cast<size_t>(n)),
                              Transport::kUdp);
      if (!response.has_value()) continue;
      SendUdp(*response, peer, message);
    }
  }

  // Sends `response` to `peer` from the address `query` arrived at.
  void SendUdp(const std::string& response, const sockaddr_storage& peer, const msghdr& query) {
    iovec iov{const_cast<char*>(response.data()), response.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(in6_pktinfo))] = {};
    msghdr reply{};
    reply.msg_name = const_cast<sockaddr_storage*>(&peer);
    reply.msg_namelen = query.msg_namelen;
    reply.msg_iov = &iov;
    reply.msg_iovlen = 1;
    for (cmsghdr* in = CMSG_FIRSTHDR(&query); in != nullptr;
         in = CMSG_NXTHDR(const_cast<msghdr*>(&query), in)) {
      if (in->cmsg_level == IPPROTO_IP && in->cmsg_type == IP_PKTINFO) {
        in_pktinfo info;
        std::memcpy(&info, CMSG_DATA(in), sizeof(info));
        in_pktinfo out_info{};
        out_info.ipi_spec_dst = info.ipi_addr;  // The source address of the reply.
        reply.msg_control = control;
        reply.msg_controllen = CMSG_SPACE(sizeof(out_info));
        cmsghdr* out = CMSG_FIRSTHDR(&reply);
        out->cmsg_level = IPPROTO_IP;
        out->cmsg_type = IP_PKTINFO;
        out->cmsg_len = CMSG_LEN(sizeof(out_info));
        std::memcpy(CMSG_DATA(out), &out_info, sizeof(out_info));
        break;
      }
      if (in->cmsg_level == IPPROTO_IPV6 && in->cmsg_type == IPV6_PKTINFO) {
        in6_pktinfo info;
        std::memcpy(&info, CMSG_DATA(in), sizeof(info));  // Address and interface, as received.
        reply.msg_control = control;
        reply.msg_controllen = CMSG_SPACE(sizeof(info));
        cmsghdr* out = CMSG_FIRSTHDR(&reply);
        out->cmsg_level = IPPROTO_IPV6;
        out->cmsg_type = IPV6_PKTINFO;
        out->cmsg_len = CMSG_LEN(sizeof(info));
        std::memcpy(CMSG_DATA(out), &info, sizeof(info));
        break;
      }
    }
    while (sendmsg(udp_fd_, &reply, 0) < 0) {
      if (errno == EINTR) continue;
      // A full socket buffer or an unreachable client: UDP may lose it, the client retries.
      server_.udp_send_errors_.Increment();
      return;
    }
  }

  void Accept() {
    const int max_connections = server_.options_.max_tcp_connections;
    while (static_cast<int>(connections_.size()) < max_connections) {
      const int fd = accept4(tcp_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        const int error = errno;
        if (error == EAGAIN || error == EWOULDBLOCK) return;
        if (error == EINTR || error == ECONNABORTED || error == EPROTO) continue;
        // Out of fds or memory: level-triggered epoll would report the listener again at once.
        PLOG_EVERY_N(WARNING, 100) << "DNS server: accept failed; pausing TCP accepts";
        SetAccepting(false);
        accept_retry_at_ = Clock::now() + kAcceptRetryDelay;
        return;
      }
      const int one = 1;
      // Each response goes out in one write; no reason to let Nagle hold it back.
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      const uint64_t id = next_id_++;
      epoll_event event{};
      event.events = EPOLLIN;
      event.data.u64 = id;
      if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0) {
        PLOG(WARNING) << "DNS server: epoll_ctl(ADD) failed; dropping a TCP connection";
        close(fd);
        continue;
      }
      Connection& connection = connections_[id];
      connection.fd = fd;
      connection.interest = EPOLLIN;
      connection.last_activity = Clock::now();
      server_.tcp_open_.Increment();
    }
    // Full: further clients wait in the listen backlog until a connection closes.
    SetAccepting(false);
  }

  void SetAccepting(bool accepting) {
    if (accepting == accepting_) return;
    if (accepting && (accept_retry_at_.has_value() || static_cast<int>(connections_.size()) >=
                                                          server_.options_.max_tcp_connections)) {
      return;
    }
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = kListenId;
    if (epoll_ctl(epoll_fd_, accepting ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, tcp_fd_, &event) != 0) {
      PLOG(ERROR) << "DNS server: epoll_ctl on the TCP listener failed";
      return;
    }
    accepting_ = accepting;
  }

  void ServeConnection(uint64_t id, uint32_t events) {
    auto it = connections_.find(id);
    if (it == connections_.end()) return;  // Closed earlier in this batch.
    Connection& connection = it->second;
    if (events & EPOLLERR) {
      Close(id, kClosedError);
      return;
    }
    if (events & (EPOLLIN | EPOLLHUP)) {
      char chunk[kTcpReadChunk];
      const ssize_t n = read(connection.fd, chunk, sizeof(chunk));
      if (n > 0) {
        connection.in.append(chunk, static_cast<size_t>(n));
        connection.last_activity = Clock::now();
      } else if (n == 0) {
        connection.peer_closed = true;
      } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        Close(id, kClosedError);
        return;
      }
    }
    // Answer, write, and answer again what waited for the client to read: no event may come
    // for queries already buffered (the client may have sent its last bytes, or shut down).
    for (;;) {
      const size_t answered = HandleQueries(connection);
      if (!Flush(connection)) {
        Close(id, kClosedError);
        return;
      }
      if (answered == 0 || connection.pending() >= kMaxPendingOutput) break;
    }
    if (connection.peer_closed && connection.pending() == 0) {
      Close(id, kClosedByPeer);
      return;
    }
    UpdateInterest(id, connection);
  }

  // Answers every complete message in `connection.in`, in order, while the client keeps up.
  // Returns how many messages it took.
  size_t HandleQueries(Connection& connection) {
    size_t messages = 0;
    size_t consumed = 0;
    while (connection.pending() < kMaxPendingOutput) {
      const absl::string_view rest = absl::string_view(connection.in).substr(consumed);
      if (rest.size() < 2) break;
      const size_t length =
          (static_cast<size_t>(static_cast<uint8_t>(rest[0])) << 8) | static_cast<uint8_t>(rest[1]);
      if (rest.size() < 2 + length) break;
      std::optional<std::string> response =
          server_.HandleQuery(rest.substr(2, length), Transport::kTcp);
      consumed += 2 + length;
      ++messages;
      if (!response.has_value()) continue;
      // HandleQuery keeps TCP responses within kMaxMessageSize.
      const size_t size = response->size();
      connection.out.push_back(static_cast<char>(size >> 8));
      connection.out.push_back(static_cast<char>(size & 0xff));
      connection.out.append(*response);
    }
    connection.in.erase(0, consumed);
    return messages;
  }

  // Writes what the socket takes. False on a write error (the connection is dead).
  bool Flush(Connection& connection) {
    while (connection.pending() > 0) {
      const ssize_t n = send(connection.fd, connection.out.data() + connection.out_offset,
                             connection.pending(), MSG_NOSIGNAL);
      if (n > 0) {
        connection.out_offset += static_cast<size_t>(n);
        connection.last_activity = Clock::now();
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      return false;
    }
    if (connection.pending() == 0) {
      connection.out.clear();
      connection.out_offset = 0;
    }
    return true;
  }

  void UpdateInterest(uint64_t id, Connection& connection) {
    uint32_t want = 0;
    if (!connection.peer_closed && connection.pending() < kMaxPendingOutput) want |= EPOLLIN;
    if (connection.pending() > 0) want |= EPOLLOUT;
    if (want == connection.interest) return;
    epoll_event event{};
    event.events = want;
    event.data.u64 = id;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, connection.fd, &event) != 0) {
      PLOG(WARNING) << "DNS server: epoll_ctl(MOD) failed; closing a TCP connection";
      Close(id, kClosedError);
      return;
    }
    connection.interest = want;
  }

  void ExpireIdle(Clock::time_point now) {
    const auto idle = absl::ToChronoNanoseconds(server_.options_.tcp_idle_timeout);
    std::vector<uint64_t> expired;
    for (const auto& entry : connections_) {
      if (now - entry.second.last_activity >= idle) expired.push_back(entry.first);
    }
    for (uint64_t id : expired) Close(id, kClosedIdle);
  }

  void Close(uint64_t id, const char* reason) {
    auto it = connections_.find(id);
    if (it == connections_.end()) return;
    // Counted first, so that whoever sees the connection end also sees it counted.
    server_.tcp_closed_.Add({{"reason", reason}}).Increment();
    server_.tcp_open_.Decrement();
    close(it->second.fd);  // Also removes it from the epoll set.
    connections_.erase(it);
    SetAccepting(true);
  }

  const DnsServer& server_;
  const int udp_fd_;
  const int tcp_fd_;
  const int epoll_fd_;
  std::vector<uint8_t> udp_buffer_ = std::vector<uint8_t>(kMaxMessageSize + 1);
  std::unordered_map<uint64_t, Connection> connections_;
  uint64_t next_id_ = kFirstConnectionId;
  bool accepting_ = true;  // Start() registers the listener.
  std::optional<Clock::time_point> accept_retry_at_;
};

// ---------------------------------------------------------------------------------------------
// DnsServer.

absl::StatusOr<std::unique_ptr<DnsServer>> DnsServer::Create(
    Options options, Lookup lookup, std::shared_ptr<prometheus::Registry> registry) {
  CHECK(lookup) << "DnsServer::Create: empty lookup function";
  if (options.max_query_bytes < kClassicUdpSize || options.max_query_bytes > kMaxMessageSize) {
    return absl::InvalidArgumentError(absl::StrCat("DnsServer::Options::max_query_bytes is ",
                                                   options.max_query_bytes, "; use 512 to 65535"));
  }
  if (options.max_tcp_connections < 1) {
    return absl::InvalidArgumentError(absl::StrCat("DnsServer::Options::max_tcp_connections is ",
                                                   options.max_tcp_connections,
                                                   "; use at least 1"));
  }
  if (options.tcp_idle_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat("DnsServer::Options::tcp_idle_timeout is ",
                                                   absl::FormatDuration(options.tcp_idle_timeout),
                                                   "; use a positive duration"));
  }
  if (registry == nullptr) registry = std::make_shared<prometheus::Registry>();
  absl::StatusOr<std::unique_ptr<Responder>> responder =
      Responder::Create(options, std::move(lookup), *registry);
  if (!responder.ok()) return responder.status();
  return std::unique_ptr<DnsServer>(
      new DnsServer(std::move(options), *std::move(responder), std::move(registry)));
}

DnsServer::DnsServer(Options options, std::unique_ptr<Responder> responder,
                     std::shared_ptr<prometheus::Registry> registry)
    : options_(std::move(options)),
      responder_(std::move(responder)),
      registry_(std::move(registry)),
      tcp_closed_(AddCounterFamily(*registry_, "ferry_dns_tcp_connections_closed_total",
                                   "DNS-over-TCP connections closed, by reason.")),
      tcp_open_(
          AddGaugeFamily(*registry_, "ferry_dns_tcp_connections", "Open DNS-over-TCP connections.")
              .Add({})),
      udp_send_errors_(AddCounterFamily(*registry_, "ferry_dns_udp_send_errors_total",
                                        "DNS responses over UDP that the kernel refused to send.")
                           .Add({})) {
  for (const char* reason : {kClosedByPeer, kClosedIdle, kClosedError, kClosedServerStopped}) {
    tcp_closed_.Add({{"reason", reason}});
  }
}

DnsServer::~DnsServer() { Stop(); }

std::optional<std::string> DnsServer::HandleQuery(absl::string_view query,
                                                  Transport transport) const {
  return responder_->Handle(query, transport);
}

std::map<std::string, uint64_t> DnsServer::Counters() const { return responder_->Counters(); }

absl::Status DnsServer::Start(const std::string& listen_address) {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ != State::kNew) {
    return absl::FailedPreconditionError(
        "DnsServer::Start called twice or after Stop; create a new server instead");
  }
  absl::StatusOr<ListenAddress> address =
      ParseListenAddress(listen_address, HostForm::kNumeric, "DNS server");
  if (!address.ok()) return address.status();
  int udp_fd = -1;
  int tcp_fd = -1;
  absl::Status bound = BindBoth(*address, &udp_fd, &tcp_fd);
  if (!bound.ok()) return bound;

  const int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  const int wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  const auto add = [&](int fd, uint64_t id) {
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = id;
    return epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) == 0;
  };
  if (epoll_fd < 0 || wake_fd < 0 || !add(wake_fd, kWakeId) || !add(udp_fd, kUdpId) ||
      !add(tcp_fd, kListenId)) {
    const int error = errno;
    for (int fd : {udp_fd, tcp_fd, epoll_fd, wake_fd}) {
      if (fd >= 0) close(fd);
    }
    return absl::ErrnoToStatus(error, "cannot set up the DNS server's event loop");
  }
  udp_fd_ = udp_fd;
  tcp_fd_ = tcp_fd;
  epoll_fd_ = epoll_fd;
  wake_fd_ = wake_fd;
  port_.store(LocalPort(tcp_fd).value_or(0), std::memory_order_release);
  state_ = State::kRunning;
  thread_ = std::thread(
      [this, udp_fd, tcp_fd, epoll_fd] { EventLoop(*this, udp_fd, tcp_fd, epoll_fd).Run(); });
  return absl::OkStatus();
}

void DnsServer::Stop() {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ == State::kRunning) {
    const uint64_t one = 1;
    // Cannot fail short of a bug: the counter of a fresh eventfd cannot overflow.
    PCHECK(write(wake_fd_, &one, sizeof(one)) == sizeof(one)) << "waking the DNS server";
    thread_.join();
    for (int fd : {udp_fd_, tcp_fd_, epoll_fd_, wake_fd_}) close(fd);
    udp_fd_ = tcp_fd_ = epoll_fd_ = wake_fd_ = -1;
  }
  state_ = State::kStopped;
}

}  // namespace ferry
