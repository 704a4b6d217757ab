#include "discovery/backend_discovery.h"

#include <arpa/inet.h>

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/metrics.h"
#include "common/mutex_lock.h"
#include "glog/logging.h"

namespace ferry::discovery {
namespace {

constexpr absl::string_view kDnsScheme = "dns://";
constexpr absl::string_view kSrvScheme = "srv://";
constexpr absl::Duration kSmallestMinTtl = absl::Milliseconds(100);
constexpr size_t kMaxNameLength = 253;
constexpr size_t kMaxLabelLength = 63;

// Why `name` is not a DNS name (labels of letters, digits, '-' and '_'), or "" when it is one.
std::string DnsNameProblem(absl::string_view name) {
  if (name.empty()) return "the name is empty";
  if (absl::EndsWith(name, ".")) name.remove_suffix(1);
  if (name.empty() || name.size() > kMaxNameLength) {
    return absl::StrCat("the name must have 1..", kMaxNameLength, " characters");
  }
  for (absl::string_view label : absl::StrSplit(name, '.')) {
    if (label.empty() || label.size() > kMaxLabelLength) {
      return absl::StrCat("label \"", label, "\" must have 1..", kMaxLabelLength, " characters");
    }
    for (char c : label) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') {
        return absl::StrCat("label \"", label, "\" has '", std::string(1, c),
                            "'; use letters, digits, '-' and '_'");
      }
    }
  }
  in6_addr ip;
  if (inet_pton(AF_INET, std::string(name).c_str(), &ip) == 1) {
    return "it is an IP address; write a static \"ip:port\" backend for it";
  }
  return "";
}

absl::Status BadSource(absl::string_view source, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("backend \"", source, "\" is not a discovery source: ", why,
                   " (expected \"dns://name:port\" or \"srv://_service._proto.name\")"));
}

}  // namespace

bool IsDiscoverySource(absl::string_view address) {
  return absl::StartsWith(address, kDnsScheme) || absl::StartsWith(address, kSrvScheme);
}

absl::StatusOr<DiscoverySource> ParseDiscoverySource(absl::string_view source) {
  DiscoverySource out;
  if (absl::StartsWith(source, kDnsScheme)) {
    absl::string_view rest = source.substr(kDnsScheme.size());
    const size_t colon = rest.rfind(':');
    if (colon == absl::string_view::npos) {
      // No port: for ICMP backends, whose port is ignored (ServiceSpec validation allows it).
      if (std::string problem = DnsNameProblem(rest); !problem.empty()) {
        return BadSource(source, problem);
      }
      out.kind = DiscoverySource::Kind::kHost;
      out.name = std::string(rest);
      return out;
    }
    const absl::string_view digits = rest.substr(colon + 1);
    uint32_t port = 0;
    if (digits.empty() || digits.size() > 5 ||
        !std::all_of(digits.begin(), digits.end(),
                     [](char c) { return absl::ascii_isdigit(static_cast<unsigned char>(c)); }) ||
        !absl::SimpleAtoi(digits, &port) || port == 0 || port > 65535) {
      return BadSource(
          source, absl::StrCat("port \"", rest.substr(colon + 1), "\" is not a number 1..65535"));
    }
    const absl::string_view name = rest.substr(0, colon);
    if (std::string problem = DnsNameProblem(name); !problem.empty()) {
      return BadSource(source, problem);
    }
    out.kind = DiscoverySource::Kind::kHost;
    out.name = std::string(name);
    out.port = static_cast<uint16_t>(port);
    return out;
  }
  if (absl::StartsWith(source, kSrvScheme)) {
    const absl::string_view name = source.substr(kSrvScheme.size());
    if (absl::StrContains(name, ':')) {
      return BadSource(source, "an SRV source has no port (each SRV record carries one)");
    }
    if (std::string problem = DnsNameProblem(name); !problem.empty()) {
      return BadSource(source, problem);
    }
    std::vector<absl::string_view> labels = absl::StrSplit(name, '.', absl::SkipEmpty());
    if (labels.size() < 3 || !absl::StartsWith(labels[0], "_") ||
        !absl::StartsWith(labels[1], "_")) {
      return BadSource(source, "an SRV name looks like \"_service._proto.name\"");
    }
    out.kind = DiscoverySource::Kind::kSrv;
    out.name = std::string(name);
    return out;
  }
  return BadSource(source, "unknown scheme");
}

absl::Duration RefreshDelay(absl::Duration ttl, absl::Duration min_ttl, absl::Duration max_ttl) {
  return std::clamp(ttl, min_ttl, max_ttl);
}

absl::StatusOr<std::unique_ptr<BackendDiscovery>> BackendDiscovery::Create(
    std::unique_ptr<DnsResolver> resolver, Options options, ChangeCallback on_change) {
  if (resolver == nullptr) return absl::InvalidArgumentError("BackendDiscovery needs a resolver");
  if (!on_change) return absl::InvalidArgumentError("BackendDiscovery needs an on_change callback");
  if (options.min_ttl < kSmallestMinTtl) {
    return absl::InvalidArgumentError(
        absl::StrCat("dns_min_ttl is ", absl::FormatDuration(options.min_ttl), "; use at least ",
                     absl::FormatDuration(kSmallestMinTtl)));
  }
  if (options.max_ttl < options.min_ttl) {
    return absl::InvalidArgumentError(
        absl::StrCat("dns_max_ttl (", absl::FormatDuration(options.max_ttl),
                     ") is below dns_min_ttl (", absl::FormatDuration(options.min_ttl), ")"));
  }
  if (!options.now) options.now = [] { return absl::Now(); };
  return std::unique_ptr<BackendDiscovery>(
      new BackendDiscovery(std::move(resolver), std::move(options), std::move(on_change)));
}

BackendDiscovery::BackendDiscovery(std::unique_ptr<DnsResolver> resolver, Options options,
                                   ChangeCallback on_change)
    : resolver_(std::move(resolver)),
      options_(std::move(options)),
      on_change_(std::move(on_change)) {
  if (options_.registry != nullptr) {
    auto& resolutions =
        AddCounterFamily(*options_.registry, "ferry_connector_dns_resolutions_total",
                         "DNS resolutions of dns:// and srv:// backends, by result");
    resolutions_ok_ = &resolutions.Add({{"result", "ok"}});
    resolutions_error_ = &resolutions.Add({{"result", "error"}});
    backends_family_ =
        &AddGaugeFamily(*options_.registry, "ferry_connector_dns_backends",
                        "Addresses in the current backend set of each dns:// or srv:// source");
  }
  scheduler_ = std::thread([this] { RunScheduler(); });
}

BackendDiscovery::~BackendDiscovery() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    wake_ = true;
  }
  scheduler_.join();
  // Joins the resolver thread: answers in flight come back CANCELLED and are ignored.
  resolver_.reset();
  if (backends_family_ != nullptr) {
    MutexLock lock(&mu_);
    for (auto& [source, state] : sources_) {
      if (state.backends != nullptr) backends_family_->Remove(state.backends);
    }
  }
}

absl::Status BackendDiscovery::SetSources(const std::vector<std::string>& sources) {
  std::map<std::string, DiscoverySource> parsed;
  for (const std::string& source : sources) {
    absl::StatusOr<DiscoverySource> one = ParseDiscoverySource(source);
    if (!one.ok()) return one.status();
    parsed.emplace(source, *std::move(one));
  }
  MutexLock delivery(&delivery_mu_);
  MutexLock lock(&mu_);
  for (auto it = sources_.begin(); it != sources_.end();) {
    if (parsed.count(it->first) != 0) {
      ++it;
      continue;
    }
    if (it->second.backends != nullptr) backends_family_->Remove(it->second.backends);
    it = sources_.erase(it);
  }
  for (auto& [source, one] : parsed) {
    if (sources_.count(source) != 0) continue;
    SourceState& state = sources_[source];
    state.parsed = std::move(one);
    state.generation = next_generation_++;
    if (backends_family_ != nullptr) state.backends = &backends_family_->Add({{"source", source}});
  }
  wake_ = true;
  return absl::OkStatus();
}

std::vector<dataplane::SocketAddress> BackendDiscovery::Current(const std::string& source) const {
  MutexLock lock(&mu_);
  auto it = sources_.find(source);
  return it == sources_.end() ? std::vector<dataplane::SocketAddress>{} : it->second.addresses;
}

int64_t BackendDiscovery::Failures(const std::string& source) const {
  MutexLock lock(&mu_);
  auto it = sources_.find(source);
  return it == sources_.end() ? 0 : it->second.failures;
}

absl::Status BackendDiscovery::LastError(const std::string& source) const {
  MutexLock lock(&mu_);
  auto it = sources_.find(source);
  return it == sources_.end() ? absl::OkStatus() : it->second.last_error;
}

void BackendDiscovery::RunScheduler() {
  MutexLock lock(&mu_);
  while (!stopping_) {
    wake_ = false;
    const absl::Time now = options_.now();
    absl::Time earliest = absl::InfiniteFuture();
    for (auto& [source, state] : sources_) {
      if (state.in_flight) continue;
      if (state.next_due <= now) {
        state.in_flight = true;
        StartQueryLocked(source, state);
      } else {
        earliest = std::min(earliest, state.next_due);
      }
    }
    // The wait is capped at min_ttl so that a test's fake clock, which moves without waking
    // anyone, is still looked at.
    const absl::Duration wait = std::min(earliest - now, options_.min_ttl);
    AwaitWithTimeout(&mu_, absl::Condition(&wake_), wait);
  }
}

void BackendDiscovery::StartQueryLocked(const std::string& source, const SourceState& state) {
  // The resolver only queues here (its lock is taken after ours, never the other way round):
  // answers arrive on its thread later.
  DnsResolver::Callback done =
      [this, source, generation = state.generation](absl::StatusOr<DnsResolver::Answer> answer) {
        OnAnswer(source, generation, std::move(answer));
      };
  if (state.parsed.kind == DiscoverySource::Kind::kHost) {
    resolver_->ResolveHost(state.parsed.name, state.parsed.port, std::move(done));
  } else {
    resolver_->ResolveSrv(state.parsed.name, std::move(done));
  }
}

void BackendDiscovery::OnAnswer(const std::string& source, uint64_t generation,
                                absl::StatusOr<DnsResolver::Answer> answer) {
  // CANCELLED only comes from the resolver's destruction, in ours.
  if (absl::IsCancelled(answer.status())) return;
  MutexLock delivery(&delivery_mu_);
  std::vector<dataplane::SocketAddress> changed;
  {
    MutexLock lock(&mu_);
    auto it = sources_.find(source);
    if (it == sources_.end() || it->second.generation != generation) return;  // Removed.
    SourceState& state = it->second;
    state.in_flight = false;
    wake_ = true;  // The scheduler recomputes its wait with the new due time.
    const absl::Time now = options_.now();
    if (!answer.ok()) {
      if (state.last_error.ok()) {
        LOG(WARNING) << "DNS discovery of " << source << " failed (keeping "
                     << state.addresses.size() << " known addresses, retrying every "
                     << absl::FormatDuration(options_.min_ttl) << "): " << answer.status();
      }
      ++state.failures;
      state.last_error = answer.status();
      state.next_due = now + options_.min_ttl;
      if (resolutions_error_ != nullptr) resolutions_error_->Increment();
      return;
    }
    if (!state.last_error.ok()) {
      LOG(INFO) << "DNS discovery of " << source << " resolves again";
    }
    state.last_error = absl::OkStatus();
    state.next_due = now + RefreshDelay(answer->ttl, options_.min_ttl, options_.max_ttl);
    if (resolutions_ok_ != nullptr) resolutions_ok_->Increment();
    if (answer->addresses == state.addresses) return;
    state.addresses = answer->addresses;
    if (state.backends != nullptr) state.backends->Set(static_cast<double>(state.addresses.size()));
    changed = std::move(answer->addresses);
  }
  on_change_(source, changed);
}

}  // namespace ferry::discovery
