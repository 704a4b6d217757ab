#include "discovery/config_validation.h"

#include <arpa/inet.h>
#include <net/if.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/naming.h"
#include "common/service_spec_validation.h"

namespace ferry::discovery {
namespace {

constexpr int kMinPoolPrefix = 8;
constexpr int kMaxPoolPrefix = 30;
constexpr size_t kMaxDnsNameLength = 253;
constexpr size_t kMaxDnsLabelLength = 63;

// ConnectorConfig's documented defaults for unset DNS TTL bounds.
constexpr int64_t kDefaultDnsMinTtlSeconds = 5;
constexpr int64_t kDefaultDnsMaxTtlSeconds = 300;

absl::Status FieldError(absl::string_view path, absl::string_view reason) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", reason));
}

std::string Quoted(absl::string_view s) { return absl::StrCat("\"", s, "\""); }

int64_t Nanos(const google::protobuf::Duration& d) { return d.seconds() * 1000000000 + d.nanos(); }

// Proto-JSON form: "5s", "0.250s", "-1s".
std::string FormatDuration(const google::protobuf::Duration& d) {
  const int64_t nanos = Nanos(d);
  const int64_t whole = nanos / 1000000000;
  int64_t fraction = std::abs(nanos % 1000000000);
  std::string out = absl::StrCat(nanos < 0 && whole == 0 ? "-" : "", whole);
  if (fraction != 0) {
    std::string digits = absl::StrCat(fraction + 1000000000).substr(1);  // 9 digits, zero-padded.
    while (digits.back() == '0') digits.pop_back();
    absl::StrAppend(&out, ".", digits);
  }
  return absl::StrCat(out, "s");
}

absl::Status ValidatePositive(bool has, const google::protobuf::Duration& d,
                              absl::string_view path) {
  if (has && Nanos(d) <= 0) {
    return FieldError(path, absl::StrCat("must be positive, got ", FormatDuration(d),
                                         "; leave it out for the default"));
  }
  return absl::OkStatus();
}

// "" when `name` is a valid host or DNS name, else why not.
std::string DnsNameProblem(absl::string_view name, bool allow_upper_case) {
  if (name.empty()) return "is empty";
  absl::string_view body = name;
  absl::ConsumeSuffix(&body, ".");
  if (body.size() > kMaxDnsNameLength) {
    return absl::StrCat("is ", body.size(), " characters long; a DNS name has at most 253");
  }
  const std::vector<absl::string_view> labels = absl::StrSplit(body, '.');
  for (absl::string_view label : labels) {
    if (label.empty()) return "has an empty label (two dots in a row, or a leading dot)";
    if (label.size() > kMaxDnsLabelLength) {
      return absl::StrCat("has the label ", Quoted(label), " of ", label.size(),
                          " characters; at most 63");
    }
    for (char c : label) {
      const bool lower_or_digit = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
      const bool upper = c >= 'A' && c <= 'Z';
      if (lower_or_digit || (upper && allow_upper_case)) continue;
      if (upper)
        return absl::StrCat("has an upper-case letter '", std::string(1, c), "'; use lower case");
      return absl::StrCat("has the character ", Quoted(std::string(1, c)),
                          "; DNS names hold a-z, 0-9, '-' and dots");
    }
    if (label.front() == '-' || label.back() == '-') {
      return absl::StrCat("has the label ", Quoted(label), " that starts or ends with '-'");
    }
  }
  // A name whose last label is all digits reads as a (broken) IP address, not a host name.
  const absl::string_view last = labels.back();
  if (std::all_of(last.begin(), last.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return "is neither an IP address nor a host name (its last label is a number)";
  }
  return "";
}

// Shared by listen and dial addresses; only a listen address may use port 0 (the kernel picks a
// free port; tests bind that way).
absl::Status ValidateHostPort(absl::string_view address, absl::string_view path,
                              bool allow_port_zero) {
  const absl::string_view form = allow_port_zero ? "host:port with a port from 0 to 65535 (e.g. "
                                                   "127.0.0.1:7443, [::1]:7443, 0.0.0.0:0)"
                                                 : "host:port with a port from 1 to 65535 (e.g. "
                                                   "intermediate.example.com:7443, 10.0.0.5:7443)";
  if (address.empty()) return FieldError(path, absl::StrCat("is empty; give ", form));
  std::string host;
  uint16_t port = 0;
  if (!SplitHostPort(address, &host, &port,
                     allow_port_zero ? PortRule::kAllowZero : PortRule::kNonZero)) {
    return FieldError(path, absl::StrCat(Quoted(address), " is not ", form));
  }
  in_addr v4;
  in6_addr v6;
  if (absl::StartsWith(address, "[")) {
    if (inet_pton(AF_INET6, host.c_str(), &v6) != 1) {
      return FieldError(path, absl::StrCat(Quoted(address), ": ", Quoted(host),
                                           " in brackets is not an IPv6 address"));
    }
    return absl::OkStatus();
  }
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return absl::OkStatus();
  if (const std::string problem = DnsNameProblem(host, /*allow_upper_case=*/true);
      !problem.empty()) {
    return FieldError(path,
                      absl::StrCat(Quoted(address), ": the host ", Quoted(host), " ", problem));
  }
  return absl::OkStatus();
}

absl::Status ValidateIntermediates(const google::protobuf::RepeatedPtrField<std::string>& list) {
  if (list.empty()) {
    return FieldError("intermediates",
                      "needs at least one Intermediate address, e.g. "
                      "[\"intermediate.example.com:7443\"]");
  }
  for (int i = 0; i < list.size(); ++i) {
    if (absl::Status s = ValidateDialAddress(list[i], absl::StrCat("intermediates[", i, "]"));
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateTls(const v1::TlsConfig& tls) {
  const std::pair<absl::string_view, const std::string*> files[] = {
      {"ca_cert", &tls.ca_cert()}, {"cert", &tls.cert()}, {"key", &tls.key()}};
  absl::string_view set_one;
  for (const auto& [name, value] : files) {
    if (!value->empty()) set_one = name;
  }
  if (set_one.empty()) return absl::OkStatus();  // No files: the flags must give them.
  for (const auto& [name, value] : files) {
    if (value->empty()) {
      return FieldError(absl::StrCat("tls.", name),
                        absl::StrCat("is empty, but tls.", set_one,
                                     " is set; give ca_cert, cert and key together"));
    }
  }
  return absl::OkStatus();
}

// The listen addresses of one process (an empty one means its default): each valid, and no two
// the same (port 0 is always a fresh port).
absl::Status ValidateOptionalListeners(
    const std::vector<std::pair<std::string, const std::string*>>& listeners) {
  absl::flat_hash_map<std::string, absl::string_view> used;
  for (const auto& [path, address] : listeners) {
    if (address->empty()) continue;
    if (absl::Status s = ValidateListenAddress(*address, path); !s.ok()) return s;
    if (absl::EndsWith(*address, ":0")) continue;
    auto [it, inserted] = used.emplace(*address, path);
    if (!inserted) {
      return FieldError(path, absl::StrCat(Quoted(*address), " is also ", it->second,
                                           "; each listener needs its own port"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateTrustDomain(absl::string_view trust_domain) {
  if (trust_domain.empty()) return absl::OkStatus();
  for (char c : trust_domain) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
    if (!ok) {
      return FieldError("trust_domain",
                        absl::StrCat(Quoted(trust_domain),
                                     " may hold only a-z, 0-9, '-', '.' and '_' (a SPIFFE trust "
                                     "domain, e.g. \"ferry.local\")"));
    }
  }
  return absl::OkStatus();
}

std::string Ipv4ToString(uint32_t address) {
  return absl::StrCat(address >> 24, ".", (address >> 16) & 0xff, ".", (address >> 8) & 0xff, ".",
                      address & 0xff);
}

absl::Status ValidateVipPools(const v1::IntermediateConfig& config) {
  struct Pool {
    uint32_t network;
    int prefix;
  };
  std::vector<Pool> pools;
  for (int i = 0; i < config.vip_pools_size(); ++i) {
    const v1::VipPool& pool = config.vip_pools(i);
    const std::string path = absl::StrCat("vip_pools[", i, "]");
    Pool parsed;
    if (absl::Status s = ParseVipPoolCidr(pool.cidr(), absl::StrCat(path, ".cidr"), &parsed.network,
                                          &parsed.prefix);
        !s.ok()) {
      return s;
    }
    for (size_t j = 0; j < pools.size(); ++j) {
      const int shorter = std::min(parsed.prefix, pools[j].prefix);
      const uint32_t mask = ~uint32_t{0} << (32 - shorter);
      if ((parsed.network & mask) == (pools[j].network & mask)) {
        return FieldError(
            absl::StrCat(path, ".cidr"),
            absl::StrCat(pool.cidr(), " overlaps vip_pools[", j, "].cidr ",
                         config.vip_pools(j).cidr(), "; pools must not share addresses"));
      }
    }
    pools.push_back(parsed);
    for (int t = 0; t < pool.tenants_size(); ++t) {
      if (absl::Status s = ValidateName(NameKind::kTenant, pool.tenants(t)); !s.ok()) {
        return FieldError(absl::StrCat(path, ".tenants[", t, "]"), s.message());
      }
    }
  }
  return absl::OkStatus();
}

// What the relay and the connector configs share: where the Intermediate is, the certificates,
// the data-plane and admin listeners.
template <typename Config>
absl::Status ValidateDataPlaneProcess(const Config& config) {
  if (absl::Status s = ValidateIntermediates(config.intermediates()); !s.ok()) return s;
  if (absl::Status s = ValidateTls(config.tls()); !s.ok()) return s;
  return ValidateOptionalListeners(
      {{"listen", &config.listen()}, {"admin_listen", &config.admin_listen()}});
}

}  // namespace

absl::Status ValidateListenAddress(absl::string_view address, absl::string_view path) {
  return ValidateHostPort(address, path, /*allow_port_zero=*/true);
}

absl::Status ValidateDialAddress(absl::string_view address, absl::string_view path) {
  return ValidateHostPort(address, path, /*allow_port_zero=*/false);
}

absl::Status ValidateDnsName(absl::string_view name, absl::string_view path) {
  if (const std::string problem = DnsNameProblem(name, /*allow_upper_case=*/false);
      !problem.empty()) {
    return FieldError(path, name.empty() ? absl::StrCat(problem,
                                                        "; give a DNS name such as "
                                                        "\"ferry.internal\"")
                                         : absl::StrCat(Quoted(name), " ", problem));
  }
  return absl::OkStatus();
}

absl::Status ParseVipPoolCidr(absl::string_view cidr, absl::string_view path, uint32_t* network,
                              int* prefix_length) {
  const std::string example = "write it as address/prefix, e.g. \"10.100.0.0/24\"";
  if (cidr.empty()) return FieldError(path, absl::StrCat("is empty; ", example));
  const size_t slash = cidr.find('/');
  if (slash == absl::string_view::npos) {
    return FieldError(path, absl::StrCat(Quoted(cidr), " has no /prefix; ", example));
  }
  const std::string address(cidr.substr(0, slash));
  const absl::string_view prefix_text = cidr.substr(slash + 1);
  in_addr addr;
  if (inet_pton(AF_INET, address.c_str(), &addr) != 1) {
    return FieldError(path, absl::StrCat(Quoted(cidr), ": ", Quoted(address),
                                         " is not an IPv4 address; ", example));
  }
  int prefix = 0;
  const bool digits_only = !prefix_text.empty() && prefix_text.size() <= 2 &&
                           std::all_of(prefix_text.begin(), prefix_text.end(),
                                       [](char c) { return c >= '0' && c <= '9'; });
  if (!digits_only || !absl::SimpleAtoi(prefix_text, &prefix)) {
    return FieldError(path, absl::StrCat(Quoted(cidr), ": the prefix ", Quoted(prefix_text),
                                         " is not a number; ", example));
  }
  if (prefix < kMinPoolPrefix || prefix > kMaxPoolPrefix) {
    return FieldError(path, absl::StrCat(Quoted(cidr), ": the prefix /", prefix,
                                         " is outside /8 to /30 (a pool needs a network, a "
                                         "gateway, hosts and a broadcast address)"));
  }
  const uint32_t host_order = ntohl(addr.s_addr);
  const uint32_t mask = ~uint32_t{0} << (32 - prefix);
  if ((host_order & ~mask) != 0) {
    return FieldError(path, absl::StrCat(Quoted(cidr), " has host bits set; the network is ",
                                         Ipv4ToString(host_order & mask), "/", prefix));
  }
  *network = host_order;
  *prefix_length = prefix;
  return absl::OkStatus();
}

absl::Status ValidateConfig(const v1::IntermediateConfig& config) {
  if (absl::Status s = ValidateOptionalListeners({{"listen", &config.listen()},
                                                  {"admin_listen", &config.admin_listen()},
                                                  {"dns_listen", &config.dns_listen()}});
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ValidateTls(config.tls()); !s.ok()) return s;
  if (absl::Status s = ValidateTrustDomain(config.trust_domain()); !s.ok()) return s;
  if (absl::Status s = ValidateVipPools(config); !s.ok()) return s;
  if (!config.dns_zone().empty()) {
    if (absl::Status s = ValidateDnsName(config.dns_zone(), "dns_zone"); !s.ok()) return s;
  }
  if (absl::Status s = ValidatePositive(config.has_dns_ttl(), config.dns_ttl(), "dns_ttl");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ValidatePositive(config.has_connector_grace(), config.connector_grace(),
                                        "connector_grace");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ValidatePositive(config.has_keepalive_interval(),
                                        config.keepalive_interval(), "keepalive_interval");
      !s.ok()) {
    return s;
  }
  if (!config.operator_tenant().empty()) {
    if (absl::Status s = ValidateName(NameKind::kTenant, config.operator_tenant()); !s.ok()) {
      return FieldError("operator_tenant", s.message());
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateConfig(const v1::RelayConfig& config) {
  if (absl::Status s = ValidateDataPlaneProcess(config); !s.ok()) return s;
  if (config.workers() > kMaxWorkers) {
    return FieldError("workers", absl::StrCat(config.workers(), " is more than ", kMaxWorkers,
                                              "; 0 (the default) means one per core"));
  }
  return ValidatePositive(config.has_flow_idle_timeout(), config.flow_idle_timeout(),
                          "flow_idle_timeout");
}

absl::Status ValidateConfig(const v1::ConnectorConfig& config) {
  if (absl::Status s = ValidateDataPlaneProcess(config); !s.ok()) return s;
  absl::flat_hash_map<std::string, int> index_by_name;
  int tenant_index = -1;  // The first service that names its tenant.
  for (int i = 0; i < config.services_size(); ++i) {
    const v1::ServiceSpec& spec = config.services(i);
    const std::string path = absl::StrCat("services[", i, "]");
    if (absl::Status s = ValidateServiceSpec(spec, path); !s.ok()) return s;
    auto [it, inserted] = index_by_name.emplace(spec.name(), i);
    if (!inserted) {
      return FieldError(absl::StrCat(path, ".name"),
                        absl::StrCat(Quoted(spec.name()), " is already services[", it->second,
                                     "].name; service names are unique per tenant"));
    }
    if (spec.tenant().empty()) continue;
    if (tenant_index < 0) {
      tenant_index = i;
    } else if (spec.tenant() != config.services(tenant_index).tenant()) {
      return FieldError(absl::StrCat(path, ".tenant"),
                        absl::StrCat(Quoted(spec.tenant()), " differs from services[", tenant_index,
                                     "].tenant ", Quoted(config.services(tenant_index).tenant()),
                                     "; a connector serves its own tenant only (leave tenant "
                                     "out to use it)"));
    }
  }
  if (absl::Status s =
          ValidatePositive(config.has_dns_min_ttl(), config.dns_min_ttl(), "dns_min_ttl");
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          ValidatePositive(config.has_dns_max_ttl(), config.dns_max_ttl(), "dns_max_ttl");
      !s.ok()) {
    return s;
  }
  google::protobuf::Duration min_ttl = config.dns_min_ttl();
  google::protobuf::Duration max_ttl = config.dns_max_ttl();
  if (!config.has_dns_min_ttl()) min_ttl.set_seconds(kDefaultDnsMinTtlSeconds);
  if (!config.has_dns_max_ttl()) max_ttl.set_seconds(kDefaultDnsMaxTtlSeconds);
  if (Nanos(min_ttl) > Nanos(max_ttl)) {
    const auto shown = [](const google::protobuf::Duration& d, bool set) {
      return absl::StrCat(FormatDuration(d), set ? "" : " (the default)");
    };
    if (config.has_dns_max_ttl()) {
      return FieldError("dns_max_ttl",
                        absl::StrCat(shown(max_ttl, true), " is less than dns_min_ttl ",
                                     shown(min_ttl, config.has_dns_min_ttl()),
                                     "; the minimum must not exceed the maximum"));
    }
    return FieldError(
        "dns_min_ttl",
        absl::StrCat(shown(min_ttl, true), " is more than dns_max_ttl ", shown(max_ttl, false),
                     "; the minimum must not exceed the maximum"));
  }
  for (int i = 0; i < config.dns_servers_size(); ++i) {
    const std::string& server = config.dns_servers(i);
    const std::string path = absl::StrCat("dns_servers[", i, "]");
    in_addr v4;
    in6_addr v6;
    if (inet_pton(AF_INET, server.c_str(), &v4) == 1 ||
        inet_pton(AF_INET6, server.c_str(), &v6) == 1) {
      continue;
    }
    std::string host;
    uint16_t port = 0;
    if (!SplitHostPort(server, &host, &port, PortRule::kNonZero) ||
        (inet_pton(AF_INET, host.c_str(), &v4) != 1 &&
         inet_pton(AF_INET6, host.c_str(), &v6) != 1)) {
      return FieldError(path, absl::StrCat(Quoted(server),
                                           " is not an IP address, with or without a port "
                                           "(e.g. 127.0.0.1, 127.0.0.1:5353, [::1]:53)"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateConfig(const v1::AgentConfig& config) {
  if (absl::Status s = ValidateIntermediates(config.intermediates()); !s.ok()) return s;
  if (absl::Status s = ValidateTls(config.tls()); !s.ok()) return s;
  std::vector<std::pair<std::string, const std::string*>> listeners;
  for (int i = 0; i < config.exposures_size(); ++i) {
    const v1::Exposure& exposure = config.exposures(i);
    const std::string path = absl::StrCat("exposures[", i, "]");
    if (absl::Status s = ValidateName(NameKind::kService, exposure.service()); !s.ok()) {
      return FieldError(absl::StrCat(path, ".service"), s.message());
    }
    listeners.emplace_back(absl::StrCat(path, ".listen"), &exposure.listen());
  }
  if (!config.intercept_interface().empty()) {
    if (!config.intercept()) {
      return FieldError("intercept_interface",
                        "is set but intercept is false; set intercept: true or remove it");
    }
    if (config.intercept_interface().size() >= IF_NAMESIZE ||
        config.intercept_interface().find_first_of("/ \t:") != std::string::npos) {
      return FieldError(
          "intercept_interface",
          absl::StrCat(Quoted(config.intercept_interface()), " is not an interface name (1 to ",
                       IF_NAMESIZE - 1, " characters, no '/', ':' or spaces)"));
    }
  }
  return ValidateOptionalListeners(listeners);
}

}  // namespace ferry::discovery