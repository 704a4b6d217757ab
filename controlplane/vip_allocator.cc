#include "controlplane/vip_allocator.h"

#include <arpa/inet.h>

#include <algorithm>
#include <tuple>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/naming.h"
#include "glog/logging.h"

namespace ferry::controlplane {
namespace {

constexpr char kLeasesPrefix[] = "/vip/leases/";
constexpr char kByServicePrefix[] = "/vip/by_service/";
constexpr char kCooldownPrefix[] = "/vip/cooldown/";
constexpr char kPinnedSuffix[] = " pinned";
constexpr char kUntil[] = " until ";
constexpr int kMinPrefix = 8;
constexpr int kMaxPrefix = 30;
// Rounds of read-claim-bind before Allocate gives up on a service whose lease other writers keep
// changing. Each round only repeats when another writer changed this very service's keys.
constexpr int kMaxAllocateRounds = 16;
// Attempts at one address whose lease key vanishes between a failed create and the read after it.
constexpr int kMaxClaimAttempts = 4;

// Parses a dotted quad (exactly four decimal parts, as inet_pton accepts it) into host order.
bool ParseIpv4(absl::string_view text, uint32_t* ip) {
  if (text.empty() || text.size() > 15) return false;
  const std::string copy(text);
  in_addr addr{};
  if (inet_pton(AF_INET, copy.c_str(), &addr) != 1) return false;
  *ip = ntohl(addr.s_addr);
  return true;
}

std::string FormatIpv4(uint32_t ip) {
  return absl::StrCat(ip >> 24, ".", (ip >> 16) & 0xff, ".", (ip >> 8) & 0xff, ".", ip & 0xff);
}

// FNV-1a, 64 bits: the slot a name prefers must not change between builds, platforms or
// standard libraries (std::hash may), or a restart with an empty store would move every VIP.
uint64_t Fnv1a64(absl::string_view data) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (unsigned char c : data) {
    hash ^= c;
    hash *= 0x100000001b3ull;
  }
  return hash;
}

std::string Holder(absl::string_view tenant, absl::string_view service) {
  return absl::StrCat(tenant, "/", service);
}

std::string LeaseKey(uint32_t ip) { return absl::StrCat(kLeasesPrefix, FormatIpv4(ip)); }
std::string CooldownKey(uint32_t ip) { return absl::StrCat(kCooldownPrefix, FormatIpv4(ip)); }
std::string ByServiceKey(absl::string_view tenant, absl::string_view service) {
  return absl::StrCat(kByServicePrefix, tenant, "/", service);
}

std::string LeaseValue(const std::string& holder, bool pinned) {
  return pinned ? absl::StrCat(holder, kPinnedSuffix) : holder;
}

// "<tenant>/<service>[ pinned]" -> holder and pinned flag.
absl::string_view HolderOf(absl::string_view value, bool* pinned = nullptr) {
  const bool is_pinned = absl::ConsumeSuffix(&value, kPinnedSuffix);
  if (pinned != nullptr) *pinned = is_pinned;
  return value;
}

// The address named by a key under `prefix`, or false for a key that names none.
bool AddressOfKey(absl::string_view key, absl::string_view prefix, uint32_t* ip) {
  return absl::ConsumePrefix(&key, prefix) && ParseIpv4(key, ip);
}

struct Cooldown {
  std::string holder;
  absl::Time until;
};

std::string EncodeCooldown(const std::string& holder, absl::Time until) {
  return absl::StrCat(holder, kUntil,
                      absl::FormatTime(absl::RFC3339_full, until, absl::UTCTimeZone()));
}

bool DecodeCooldown(absl::string_view value, Cooldown* out) {
  const size_t at = value.find(kUntil);
  if (at == absl::string_view::npos) return false;
  out->holder = std::string(value.substr(0, at));
  std::string error;
  return absl::ParseTime(absl::RFC3339_full, value.substr(at + strlen(kUntil)), &out->until,
                         &error);
}

std::string FormatUtc(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

}  // namespace

absl::StatusOr<std::vector<v1::VipPool>> VipPoolsFromCidrList(absl::string_view list) {
  std::vector<v1::VipPool> pools;
  if (absl::StripAsciiWhitespace(list).empty()) return pools;
  int index = 0;
  for (absl::string_view entry : absl::StrSplit(list, ',')) {
    ++index;
    entry = absl::StripAsciiWhitespace(entry);
    if (entry.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "VIP pool list \"", list, "\": entry ", index,
          " is empty; give comma-separated CIDRs such as 10.100.0.0/24,10.101.0.0/24"));
    }
    v1::VipPool pool;
    pool.set_cidr(std::string(entry));
    pools.push_back(std::move(pool));
  }
  return pools;
}

v1::Lease VipAllocator::Lease::ToProto() const {
  v1::Lease lease;
  lease.set_tenant(tenant);
  lease.set_service(service);
  lease.set_vip(vip);
  lease.set_pool(pool);
  lease.set_pinned(pinned);
  return lease;
}

bool VipAllocator::Pool::Serves(absl::string_view tenant) const {
  return tenants.empty() || std::find(tenants.begin(), tenants.end(), tenant) != tenants.end();
}

VipAllocator::VipAllocator(StateStore* store, Options options, std::vector<Pool> pools,
                           std::vector<v1::VipPool> configured_pools)
    : store_(store),
      options_(std::move(options)),
      pools_(std::move(pools)),
      configured_pools_(std::move(configured_pools)) {}

absl::StatusOr<std::unique_ptr<VipAllocator>> VipAllocator::Create(StateStore* store,
                                                                   Options options) {
  if (options.cooldown < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("VIP cooldown must be >= 0 (keep it at least the DNS TTL), got ",
                     absl::FormatDuration(options.cooldown)));
  }
  std::vector<v1::VipPool> configured = options.pools;
  if (configured.empty()) {
    v1::VipPool pool;
    pool.set_cidr(kDefaultVipPool);
    configured.push_back(std::move(pool));
  }
  std::vector<Pool> pools;
  for (size_t i = 0; i < configured.size(); ++i) {
    const std::string& cidr = configured[i].cidr();
    const std::string name = absl::StrCat("vip_pools[", i, "] \"", cidr, "\"");
    auto invalid = [&name](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": ", why));
    };
    const size_t slash = cidr.find('/');
    if (slash == std::string::npos) {
      return invalid("expected an IPv4 CIDR \"a.b.c.d/n\", e.g. 10.100.0.0/24");
    }
    const absl::string_view address = absl::string_view(cidr).substr(0, slash);
    const absl::string_view length = absl::string_view(cidr).substr(slash + 1);
    if (absl::StrContains(address, ':')) {
      return invalid("IPv6 pools are not supported; give an IPv4 CIDR such as 10.100.0.0/24");
    }
    uint32_t network = 0;
    if (!ParseIpv4(address, &network)) {
      return invalid(absl::StrCat("\"", address, "\" is not an IPv4 address"));
    }
    int prefix = 0;
    if (length.empty() || length.size() > 2 ||
        !std::all_of(length.begin(), length.end(), absl::ascii_isdigit) ||
        !absl::SimpleAtoi(length, &prefix)) {
      return invalid(absl::StrCat("prefix length \"", length, "\" is not a number"));
    }
    if (prefix < kMinPrefix || prefix > kMaxPrefix) {
      return invalid(absl::StrCat("prefix /", prefix, " is outside /", kMinPrefix, "../",
                                  kMaxPrefix,
                                  " (a /31 or /32 has no address left once the "
                                  "network, gateway and broadcast are set aside)"));
    }
    const uint32_t host_mask = (uint32_t{1} << (32 - prefix)) - 1;
    if ((network & host_mask) != 0) {
      return invalid(absl::StrCat("host bits are set; the network is ",
                                  FormatIpv4(network & ~host_mask), "/", prefix));
    }
    Pool pool;
    pool.cidr = cidr;
    pool.network = network;
    pool.broadcast = network | host_mask;
    pool.size = uint64_t{host_mask} + 1 - 3;
    for (int t = 0; t < configured[i].tenants_size(); ++t) {
      const std::string& tenant = configured[i].tenants(t);
      if (absl::Status s = ValidateName(NameKind::kTenant, tenant); !s.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(name, ": tenants[", t, "]: ", s.message()));
      }
      pool.tenants.push_back(tenant);
    }
    for (size_t j = 0; j < pools.size(); ++j) {
      if (pool.network <= pools[j].broadcast && pools[j].network <= pool.broadcast) {
        return invalid(absl::StrCat("overlaps vip_pools[", j, "] \"", pools[j].cidr,
                                    "\"; pools must not share addresses"));
      }
    }
    pools.push_back(std::move(pool));
  }
  return std::unique_ptr<VipAllocator>(
      new VipAllocator(store, std::move(options), std::move(pools), std::move(configured)));
}

std::vector<const VipAllocator::Pool*> VipAllocator::PoolsFor(absl::string_view tenant) const {
  std::vector<const Pool*> out;
  for (const Pool& pool : pools_) {
    if (pool.Serves(tenant)) out.push_back(&pool);
  }
  return out;
}

const VipAllocator::Pool* VipAllocator::PoolHolding(uint32_t ip) const {
  for (const Pool& pool : pools_) {
    if (pool.Contains(ip)) return &pool;
  }
  return nullptr;
}

absl::Status VipAllocator::ValidateNames(absl::string_view tenant,
                                         absl::string_view service) const {
  if (absl::Status s = ValidateName(NameKind::kTenant, tenant); !s.ok()) return s;
  return ValidateName(NameKind::kService, service);
}

absl::StatusOr<uint32_t> VipAllocator::CheckPin(absl::string_view tenant,
                                                absl::string_view pinned_vip,
                                                const std::vector<const Pool*>& pools) const {
  uint32_t ip = 0;
  if (!ParseIpv4(pinned_vip, &ip)) {
    return absl::InvalidArgumentError(
        absl::StrCat("pinned VIP \"", pinned_vip, "\" is not an IPv4 address"));
  }
  for (const Pool* pool : pools) {
    if (!pool->Contains(ip)) continue;
    const char* reserved = ip == pool->network     ? "network"
                           : ip == pool->gateway() ? "reserved gateway"
                           : ip == pool->broadcast ? "broadcast"
                                                   : nullptr;
    if (reserved != nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("pinned VIP ", pinned_vip, " is the ",
                                                     reserved, " address of VIP pool ", pool->cidr,
                                                     "; pick a host address"));
    }
    return ip;
  }
  std::vector<std::string> cidrs;
  for (const Pool* pool : pools) cidrs.push_back(pool->cidr);
  return absl::InvalidArgumentError(absl::StrCat("pinned VIP ", pinned_vip,
                                                 " is outside the VIP pools of tenant \"", tenant,
                                                 "\" (", absl::StrJoin(cidrs, ", "), ")"));
}

absl::StatusOr<std::optional<VipAllocator::Claim>> VipAllocator::TryClaim(uint32_t ip,
                                                                          const std::string& holder,
                                                                          const std::string& value,
                                                                          absl::Status* refusal) {
  const std::string key = LeaseKey(ip);
  for (int attempt = 0; attempt < kMaxClaimAttempts; ++attempt) {
    absl::StatusOr<bool> created = store_->CompareAndSwap(key, std::nullopt, value);
    if (!created.ok()) return created.status();
    if (!*created) {
      absl::StatusOr<std::optional<std::string>> current = store_->Get(key);
      if (!current.ok()) return current.status();
      if (!current->has_value()) continue;  // Released meanwhile: try to create it again.
      if (HolderOf(**current) != holder) {
        *refusal = absl::AlreadyExistsError(
            absl::StrCat("VIP ", FormatIpv4(ip), " is already leased to ", HolderOf(**current),
                         "; pick another address or deregister ", HolderOf(**current), " first"));
        return std::nullopt;
      }
      // An earlier lease of this very service (one whose by_service record was lost, or one
      // another allocator is binding right now): take it over.
      absl::StatusOr<bool> adopted = store_->CompareAndSwap(key, **current, value);
      if (!adopted.ok()) return adopted.status();
      if (*adopted) return Claim{ip, /*fresh=*/false};
      continue;
    }
    // The lease key is ours. A release writes its cooldown record before deleting the lease key,
    // so any cooldown of this address is visible now.
    const std::string cooldown_key = CooldownKey(ip);
    absl::StatusOr<std::optional<std::string>> record = store_->Get(cooldown_key);
    if (!record.ok()) return record.status();
    if (record->has_value()) {
      Cooldown cooldown;
      if (!DecodeCooldown(**record, &cooldown)) {
        LOG(WARNING) << "Ignoring unreadable VIP cooldown record " << cooldown_key << " = \""
                     << **record << "\"";
      } else if (cooldown.holder != holder && options_.now() < cooldown.until) {
        absl::StatusOr<bool> undone = store_->CompareAndSwap(key, value, std::nullopt);
        if (!undone.ok()) return undone.status();
        *refusal = absl::UnavailableError(absl::StrCat(
            "VIP ", FormatIpv4(ip), " was released by ", cooldown.holder, " and cools down until ",
            FormatUtc(cooldown.until),
            " so that cached DNS answers expire; pin it after that or pick another address"));
        return std::nullopt;
      }
      absl::StatusOr<bool> cleared = store_->CompareAndSwap(cooldown_key, **record, std::nullopt);
      if (!cleared.ok()) return cleared.status();
    }
    return Claim{ip, /*fresh=*/true};
  }
  return absl::AbortedError(
      absl::StrCat("VIP ", FormatIpv4(ip), " kept changing hands while claiming it; retry"));
}

absl::StatusOr<VipAllocator::Claim> VipAllocator::ClaimPinned(uint32_t ip,
                                                              const std::string& holder,
                                                              const std::string& value) {
  absl::Status refusal;
  absl::StatusOr<std::optional<Claim>> claim = TryClaim(ip, holder, value, &refusal);
  if (!claim.ok()) return claim.status();
  if (!claim->has_value()) return refusal;
  return **claim;
}

absl::StatusOr<VipAllocator::Claim> VipAllocator::ClaimFree(absl::string_view tenant,
                                                            const std::string& holder,
                                                            const std::string& value,
                                                            const std::vector<const Pool*>& pools) {
  absl::StatusOr<std::vector<KeyValue>> leases = store_->List(kLeasesPrefix);
  if (!leases.ok()) return leases.status();
  absl::StatusOr<std::vector<KeyValue>> cooldowns = store_->List(kCooldownPrefix);
  if (!cooldowns.ok()) return cooldowns.status();
  auto usable = [&pools](uint32_t ip) {
    return std::any_of(pools.begin(), pools.end(), [ip](const Pool* p) { return p->Usable(ip); });
  };
  const absl::Time now = options_.now();
  absl::Status refusal;

  // 1. A lease this service still holds without a by_service record (a crash between the two
  //    writes): take it over.
  absl::flat_hash_set<uint32_t> leased;
  for (const KeyValue& kv : *leases) {
    uint32_t ip = 0;
    if (!AddressOfKey(kv.key, kLeasesPrefix, &ip)) continue;
    leased.insert(ip);
    if (HolderOf(kv.value) != holder || !usable(ip)) continue;
    absl::StatusOr<std::optional<Claim>> claim = TryClaim(ip, holder, value, &refusal);
    if (!claim.ok()) return claim.status();
    if (claim->has_value()) return **claim;
  }
  // 2. The address this service released last, while nobody else took it.
  absl::flat_hash_set<uint32_t> cooling;
  for (const KeyValue& kv : *cooldowns) {
    uint32_t ip = 0;
    Cooldown cooldown;
    if (!AddressOfKey(kv.key, kCooldownPrefix, &ip) || !DecodeCooldown(kv.value, &cooldown)) {
      continue;
    }
    if (leased.contains(ip) || !usable(ip)) continue;
    if (cooldown.holder != holder) {
      if (now < cooldown.until) cooling.insert(ip);
      continue;
    }
    absl::StatusOr<std::optional<Claim>> claim = TryClaim(ip, holder, value, &refusal);
    if (!claim.ok()) return claim.status();
    if (claim->has_value()) return **claim;
  }
  // 3. The slot the name hashes to, or the next free one after it across the tenant's pools.
  uint64_t total = 0;
  for (const Pool* pool : pools) total += pool->size;
  uint64_t unavailable = 0;
  for (uint32_t ip : leased) unavailable += usable(ip);
  unavailable += cooling.size();  // Only usable, unleased addresses were added.
  auto exhausted = [&]() {
    std::vector<std::string> names;
    for (const Pool* pool : pools) {
      names.push_back(absl::StrCat(pool->cidr, " (", pool->size, " addresses)"));
    }
    return absl::ResourceExhaustedError(absl::StrCat(
        names.size() == 1 ? "VIP pool " : "VIP pools ", absl::StrJoin(names, " and "),
        names.size() == 1 ? " is" : " are", " exhausted for tenant \"", tenant, "\" (",
        cooling.size(), " released addresses still cooling down for ",
        absl::FormatDuration(options_.cooldown), "); deregister services, or add a pool"));
  };
  if (unavailable >= total) return exhausted();
  const uint64_t start = Fnv1a64(holder) % total;
  for (uint64_t step = 0; step < total; ++step) {
    uint64_t slot = (start + step) % total;
    const Pool* pool = nullptr;
    for (const Pool* p : pools) {
      if (slot < p->size) {
        pool = p;
        break;
      }
      slot -= p->size;
    }
    const uint32_t ip = pool->first_host() + static_cast<uint32_t>(slot);
    if (leased.contains(ip) || cooling.contains(ip)) continue;
    absl::StatusOr<std::optional<Claim>> claim = TryClaim(ip, holder, value, &refusal);
    if (!claim.ok()) return claim.status();
    if (claim->has_value()) return **claim;
    // Taken (or released into cooldown) by another allocator since the listing.
    if (refusal.code() == absl::StatusCode::kUnavailable) {
      cooling.insert(ip);
    } else {
      leased.insert(ip);
    }
  }
  return exhausted();
}

absl::Status VipAllocator::ReleaseAddress(uint32_t ip, const std::string& value,
                                          const std::string& holder, bool cool_down) {
  // Cooldown record first: a claim that creates the lease key after the delete below reads it.
  if (cool_down && options_.cooldown > absl::ZeroDuration()) {
    if (absl::Status s = store_->Put(CooldownKey(ip),
                                     EncodeCooldown(holder, options_.now() + options_.cooldown));
        !s.ok()) {
      return s;
    }
  }
  // Another writer acting for the same service may have changed the lease meanwhile; then it is
  // theirs to keep.
  absl::StatusOr<bool> deleted = store_->CompareAndSwap(LeaseKey(ip), value, std::nullopt);
  return deleted.status();
}

VipAllocator::Lease VipAllocator::MakeLease(uint32_t ip, absl::string_view value) const {
  Lease lease;
  const absl::string_view holder = HolderOf(value, &lease.pinned);
  const size_t slash = holder.find('/');
  lease.tenant = std::string(holder.substr(0, slash));
  if (slash != absl::string_view::npos) lease.service = std::string(holder.substr(slash + 1));
  lease.vip = FormatIpv4(ip);
  if (const Pool* pool = PoolHolding(ip)) lease.pool = pool->cidr;
  return lease;
}

absl::StatusOr<VipAllocator::Lease> VipAllocator::Allocate(absl::string_view tenant,
                                                           absl::string_view service,
                                                           absl::string_view pinned_vip) {
  if (absl::Status s = ValidateNames(tenant, service); !s.ok()) return s;
  const std::vector<const Pool*> pools = PoolsFor(tenant);
  if (pools.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("no VIP pool serves tenant \"", tenant,
                     "\"; add the tenant to a pool's tenants, or add a pool open to every tenant"));
  }
  std::optional<uint32_t> pin;
  if (!pinned_vip.empty()) {
    absl::StatusOr<uint32_t> ip = CheckPin(tenant, pinned_vip, pools);
    if (!ip.ok()) return ip.status();
    pin = *ip;
  }
  const std::string holder = Holder(tenant, service);
  const std::string value = LeaseValue(holder, pin.has_value());
  const std::string by_key = ByServiceKey(tenant, service);

  for (int round = 0; round < kMaxAllocateRounds; ++round) {
    absl::StatusOr<std::optional<std::string>> by = store_->Get(by_key);
    if (!by.ok()) return by.status();
    // The lease the service holds now, if its by_service record points at one naming it.
    std::optional<uint32_t> current;
    std::string current_value;
    uint32_t by_ip = 0;
    if (by->has_value() && ParseIpv4(**by, &by_ip)) {
      absl::StatusOr<std::optional<std::string>> lease = store_->Get(LeaseKey(by_ip));
      if (!lease.ok()) return lease.status();
      if (lease->has_value() && HolderOf(**lease) == holder) {
        current = by_ip;
        current_value = **lease;
      }
    }
    if (current.has_value()) {
      const bool keep = pin.has_value()
                            ? *pin == *current
                            : std::any_of(pools.begin(), pools.end(),
                                          [&](const Pool* p) { return p->Usable(*current); });
      if (keep) {
        if (current_value != value) {  // Only the pinned flag differs.
          absl::StatusOr<bool> updated =
              store_->CompareAndSwap(LeaseKey(*current), current_value, value);
          if (!updated.ok()) return updated.status();
          if (!*updated) continue;
        }
        return MakeLease(*current, value);
      }
    }

    absl::StatusOr<Claim> claim = pin.has_value() ? ClaimPinned(*pin, holder, value)
                                                  : ClaimFree(tenant, holder, value, pools);
    if (!claim.ok()) return claim.status();
    absl::StatusOr<bool> bound = store_->CompareAndSwap(by_key, *by, FormatIpv4(claim->ip));
    if (!bound.ok()) return bound.status();
    if (!*bound) {
      // Another allocator changed this service's record meanwhile. If it bound the same address
      // we are done; else give ours back (cooling, for this service) and look again.
      absl::StatusOr<std::optional<std::string>> now_bound = store_->Get(by_key);
      if (!now_bound.ok()) return now_bound.status();
      if (*now_bound == FormatIpv4(claim->ip)) return MakeLease(claim->ip, value);
      if (absl::Status s = ReleaseAddress(claim->ip, value, holder, /*cool_down=*/true); !s.ok()) {
        return s;
      }
      continue;
    }
    if (current.has_value()) {
      if (absl::Status s = ReleaseAddress(*current, current_value, holder, /*cool_down=*/true);
          !s.ok()) {
        return s;
      }
      LOG(INFO) << "VIP of " << holder << " moved from " << FormatIpv4(*current) << " to "
                << FormatIpv4(claim->ip);
    } else if (claim->fresh) {
      LOG(INFO) << "VIP " << FormatIpv4(claim->ip) << " leased to " << holder
                << (pin.has_value() ? " (pinned)" : "");
    }
    return MakeLease(claim->ip, value);
  }
  return absl::AbortedError(
      absl::StrCat("the VIP lease of ", holder, " kept changing under concurrent writers; retry"));
}

absl::Status VipAllocator::Give(absl::string_view tenant, absl::string_view service,
                                bool cool_down) {
  if (absl::Status s = ValidateNames(tenant, service); !s.ok()) return s;
  const std::string holder = Holder(tenant, service);
  const std::string by_key = ByServiceKey(tenant, service);
  absl::StatusOr<std::optional<std::string>> by = store_->Get(by_key);
  if (!by.ok()) return by.status();
  absl::StatusOr<std::vector<KeyValue>> leases = store_->List(kLeasesPrefix);
  if (!leases.ok()) return leases.status();
  bool found = false;
  // Every address naming the service: normally one, more only after a crash mid-move.
  for (const KeyValue& kv : *leases) {
    uint32_t ip = 0;
    if (!AddressOfKey(kv.key, kLeasesPrefix, &ip) || HolderOf(kv.value) != holder) continue;
    if (absl::Status s = ReleaseAddress(ip, kv.value, holder, cool_down); !s.ok()) return s;
    LOG(INFO) << "VIP " << FormatIpv4(ip) << " released by " << holder
              << (cool_down
                      ? absl::StrCat("; cooling down for ", absl::FormatDuration(options_.cooldown))
                      : std::string("; free now"));
    found = true;
  }
  if (by->has_value()) {
    absl::StatusOr<bool> deleted = store_->CompareAndSwap(by_key, *by, std::nullopt);
    if (!deleted.ok()) return deleted.status();
  }
  if (!found && !by->has_value()) {
    return absl::NotFoundError(absl::StrCat("service ", holder, " holds no VIP lease"));
  }
  return absl::OkStatus();
}

absl::Status VipAllocator::Release(absl::string_view tenant, absl::string_view service) {
  return Give(tenant, service, /*cool_down=*/true);
}

absl::Status VipAllocator::Discard(absl::string_view tenant, absl::string_view service) {
  return Give(tenant, service, /*cool_down=*/false);
}

absl::StatusOr<std::optional<VipAllocator::Lease>> VipAllocator::Lookup(absl::string_view tenant,
                                                                        absl::string_view service) {
  if (absl::Status s = ValidateNames(tenant, service); !s.ok()) return s;
  absl::StatusOr<std::optional<std::string>> by = store_->Get(ByServiceKey(tenant, service));
  if (!by.ok()) return by.status();
  uint32_t ip = 0;
  if (!by->has_value() || !ParseIpv4(**by, &ip)) return std::optional<Lease>();
  absl::StatusOr<std::optional<std::string>> value = store_->Get(LeaseKey(ip));
  if (!value.ok()) return value.status();
  if (!value->has_value() || HolderOf(**value) != Holder(tenant, service)) {
    return std::optional<Lease>();
  }
  return std::optional<Lease>(MakeLease(ip, **value));
}

absl::StatusOr<std::vector<VipAllocator::Lease>> VipAllocator::ListLeases(
    absl::string_view tenant) {
  absl::StatusOr<std::vector<KeyValue>> leases = store_->List(kLeasesPrefix);
  if (!leases.ok()) return leases.status();
  std::vector<std::pair<uint32_t, Lease>> out;
  for (const KeyValue& kv : *leases) {
    uint32_t ip = 0;
    if (!AddressOfKey(kv.key, kLeasesPrefix, &ip)) continue;
    Lease lease = MakeLease(ip, kv.value);
    if (!tenant.empty() && lease.tenant != tenant) continue;
    out.emplace_back(ip, std::move(lease));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return std::tie(a.second.tenant, a.second.service, a.first) <
           std::tie(b.second.tenant, b.second.service, b.first);
  });
  std::vector<Lease> result;
  result.reserve(out.size());
  for (auto& [ip, lease] : out) result.push_back(std::move(lease));
  return result;
}

absl::StatusOr<std::vector<VipAllocator::PoolStats>> VipAllocator::PoolUsage() {
  absl::StatusOr<std::vector<KeyValue>> leases = store_->List(kLeasesPrefix);
  if (!leases.ok()) return leases.status();
  absl::StatusOr<std::vector<KeyValue>> cooldowns = store_->List(kCooldownPrefix);
  if (!cooldowns.ok()) return cooldowns.status();
  std::vector<PoolStats> stats(pools_.size());
  for (size_t i = 0; i < pools_.size(); ++i) {
    stats[i].cidr = pools_[i].cidr;
    stats[i].size = pools_[i].size;
  }
  auto stats_of = [&](uint32_t ip) -> PoolStats* {
    for (size_t i = 0; i < pools_.size(); ++i) {
      if (pools_[i].Usable(ip)) return &stats[i];
    }
    return nullptr;
  };
  absl::flat_hash_set<uint32_t> leased;
  for (const KeyValue& kv : *leases) {
    uint32_t ip = 0;
    if (!AddressOfKey(kv.key, kLeasesPrefix, &ip)) continue;
    leased.insert(ip);
    if (PoolStats* s = stats_of(ip)) ++s->used;
  }
  const absl::Time now = options_.now();
  for (const KeyValue& kv : *cooldowns) {
    uint32_t ip = 0;
    Cooldown cooldown;
    if (!AddressOfKey(kv.key, kCooldownPrefix, &ip) || !DecodeCooldown(kv.value, &cooldown) ||
        leased.contains(ip) || now >= cooldown.until) {
      continue;
    }
    if (PoolStats* s = stats_of(ip)) ++s->cooling;
  }
  return stats;
}

absl::Status VipAllocator::ExportUsage(IntermediateMetrics& metrics) {
  absl::StatusOr<std::vector<PoolStats>> usage = PoolUsage();
  if (!usage.ok()) return usage.status();
  for (const PoolStats& pool : *usage) {
    metrics.VipPoolSize(pool.cidr).Set(static_cast<double>(pool.size));
    metrics.VipPoolUsed(pool.cidr).Set(static_cast<double>(pool.used));
  }
  return absl::OkStatus();
}

}  // namespace ferry::controlplane
