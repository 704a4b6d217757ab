// VipAllocator: leases IPv4 virtual IPs (VIPs) to services from configured pools, persisted in
// the StateStore so that a restart, or another Intermediate sharing the store, sees the same
// leases.
//
// Stability: a (tenant, service) that holds a lease always gets it back; a new one starts at the
// slot picked by a stable hash (FNV-1a) of "tenant/service" within the tenant's pools and takes the
// next free slot from there (wrapping). A released address cools down (at least the DNS TTL)
// before another service may take it; the same service re-registering meanwhile gets it back.
//
// Store layout (all values are text, readable with any store tool):
//   /vip/leases/<ip>                   -> "<tenant>/<service>" or "<tenant>/<service> pinned"
//   /vip/by_service/<tenant>/<service> -> "<ip>"
//   /vip/cooldown/<ip>                 -> "<tenant>/<service> until <RFC 3339 time>"
// The lease key is the address's owner record: it is only ever created by CompareAndSwap from
// absent, so two allocators over one store never hand out one address twice. A release writes the
// cooldown record before it deletes the lease key, and a claim reads the cooldown record after it
// created the lease key, so a claim never slips in between.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "controlplane/intermediate_metrics.h"
#include "controlplane/state_store.h"
#include "ferry/v1/admin.pb.h"
#include "ferry/v1/config.pb.h"

namespace ferry::controlplane {

// The pool used when none is configured: every tenant allocates from it.
inline constexpr char kDefaultVipPool[] = "10.100.0.0/24";

// Parses a comma-separated list of CIDRs ("10.100.0.0/24,10.101.0.0/24"; spaces around entries are
// ignored) into pools open to every tenant. Only the syntax of the list is checked here (an empty
// entry is INVALID_ARGUMENT); VipAllocator::Create validates the CIDRs themselves.
absl::StatusOr<std::vector<v1::VipPool>> VipPoolsFromCidrList(absl::string_view list);

// Thread-safe: every method may be called from any thread, concurrently, and any number of
// allocators (in this process or others) may share one store, as long as they are configured with
// the same pools. All state lives in the store; the allocator itself holds only its configuration.
class VipAllocator {
 public:
  struct Options {
    // Pools to allocate from, in order. Empty: one pool kDefaultVipPool for every tenant.
    std::vector<v1::VipPool> pools;
    // How long a released address is kept from other services. Must be >= 0; keep it at least
    // the DNS TTL so that no resolver still holds the old name -> address answer.
    absl::Duration cooldown = absl::Seconds(60);
    // Time source (tests inject a fake clock).
    std::function<absl::Time()> now = [] { return absl::Now(); };
  };

  // One address held by one service.
  struct Lease {
    std::string tenant;
    std::string service;
    std::string vip;   // dotted quad, e.g. "10.100.0.17"
    std::string pool;  // CIDR of the pool holding vip; "" if no configured pool holds it any more
    bool pinned = false;

    v1::Lease ToProto() const;
    friend bool operator==(const Lease& a, const Lease& b) {
      return a.tenant == b.tenant && a.service == b.service && a.vip == b.vip && a.pool == b.pool &&
             a.pinned == b.pinned;
    }
  };

  // Use of one pool.
  struct PoolStats {
    std::string cidr;
    uint64_t size = 0;     // addresses that can be handed out (all but network/gateway/broadcast)
    uint64_t used = 0;     // addresses leased
    uint64_t cooling = 0;  // released addresses still cooling down (not leased, not free)
  };

  // Validates `options.pools` and returns an allocator over `store` (not owned; must outlive the
  // allocator). INVALID_ARGUMENT naming the pool ("vip_pools[1] \"10.100.0.0/33\": ...") for a
  // CIDR that is not "a.b.c.d/n" IPv4 with n in 8..30, has host bits set, or overlaps an earlier
  // pool; for a pool tenant that is not a DNS label; or for a negative cooldown.
  static absl::StatusOr<std::unique_ptr<VipAllocator>> Create(StateStore* store, Options options);

  // The lease of (tenant, service), creating or moving it as needed:
  //   - `pinned_vip` empty: the existing lease if the service holds one inside its tenant's pools
  //     (a pinned lease stays where it is and becomes unpinned); else the address it released
  //     last, if still free; else the hashed slot, or the next free one after it.
  //   - `pinned_vip` set: exactly that address. If the service holds another one, the lease moves
  //     and the old address cools down.
  // Errors: INVALID_ARGUMENT for a tenant or service that is not a DNS label, or a pin that is not
  // an IPv4 address, lies outside the tenant's pools, or is a pool's network, gateway or broadcast
  // address (the message says which); ALREADY_EXISTS for a pin leased to another service (named);
  // UNAVAILABLE for a pin still cooling down after another service released it (the message says
  // until when); FAILED_PRECONDITION when no pool serves the tenant; RESOURCE_EXHAUSTED when every
  // address of the tenant's pools is leased or cooling ("VIP pool 10.100.0.0/24 (253 addresses)
  // is exhausted"); ABORTED if other writers kept changing this service's lease; or the store's
  // error.
  absl::StatusOr<Lease> Allocate(absl::string_view tenant, absl::string_view service,
                                 absl::string_view pinned_vip);

  // Gives up the lease of (tenant, service): its address cools down for Options::cooldown, during
  // which only (tenant, service) may take it back. NOT_FOUND when it holds no lease;
  // INVALID_ARGUMENT for names that are not DNS labels; or the store's error.
  absl::Status Release(absl::string_view tenant, absl::string_view service);

  // Like Release, but with no cooldown: for a lease that was never published (an allocation rolled
  // back because the rest of its registration failed). Same errors as Release.
  absl::Status Discard(absl::string_view tenant, absl::string_view service);

  // The lease of (tenant, service), or nullopt when it holds none. Never allocates.
  absl::StatusOr<std::optional<Lease>> Lookup(absl::string_view tenant, absl::string_view service);

  // Every lease of `tenant` ("" for all tenants), sorted by tenant, service and address.
  absl::StatusOr<std::vector<Lease>> ListLeases(absl::string_view tenant);

  // Size and use of each configured pool, in configuration order.
  absl::StatusOr<std::vector<PoolStats>> PoolUsage();

  // Sets metrics' VipPoolSize and VipPoolUsed gauges (label: the pool's CIDR) from PoolUsage().
  // Call it after changes (and now and then, when other allocators share the store). Returns the
  // store's error, leaving the gauges as they were.
  absl::Status ExportUsage(IntermediateMetrics& metrics);

  // The pools in use (the defaults filled in), in configuration order.
  const std::vector<v1::VipPool>& pools() const { return configured_pools_; }

 private:
  // A validated pool. Addresses handed out: network + 2 .. broadcast - 1 (not the network, the
  // gateway network + 1, or the broadcast).
  struct Pool {
    std::string cidr;
    uint32_t network = 0;
    uint32_t broadcast = 0;
    uint64_t size = 0;  // broadcast - network - 2
    std::vector<std::string> tenants;

    uint32_t gateway() const { return network + 1; }
    uint32_t first_host() const { return network + 2; }
    bool Contains(uint32_t ip) const { return ip >= network && ip <= broadcast; }
    bool Usable(uint32_t ip) const { return ip >= first_host() && ip < broadcast; }
    bool Serves(absl::string_view tenant) const;
  };
  // An address this allocator now holds for a service.
  struct Claim {
    uint32_t ip = 0;
    bool fresh = false;  // created by this call (false: an earlier lease of the same service)
  };

  VipAllocator(StateStore* store, Options options, std::vector<Pool> pools,
               std::vector<v1::VipPool> configured_pools);

  std::vector<const Pool*> PoolsFor(absl::string_view tenant) const;
  const Pool* PoolHolding(uint32_t ip) const;
  // Parses and checks a pin against the tenant's pools.
  absl::StatusOr<uint32_t> CheckPin(absl::string_view tenant, absl::string_view pinned_vip,
                                    const std::vector<const Pool*>& pools) const;
  // Creates the lease key of `ip` (holding `value`), or takes over one that already names
  // `holder`. nullopt with `refusal` set (ALREADY_EXISTS: leased to another service; UNAVAILABLE:
  // cooling down for another service) when the address is not to be had.
  absl::StatusOr<std::optional<Claim>> TryClaim(uint32_t ip, const std::string& holder,
                                                const std::string& value, absl::Status* refusal);
  absl::StatusOr<Claim> ClaimPinned(uint32_t ip, const std::string& holder,
                                    const std::string& value);
  absl::StatusOr<Claim> ClaimFree(absl::string_view tenant, const std::string& holder,
                                  const std::string& value, const std::vector<const Pool*>& pools);
  // Deletes the lease key of `ip` if it still holds `value`, after writing a cooldown record for
  // `holder` when `cool_down`.
  absl::Status ReleaseAddress(uint32_t ip, const std::string& value, const std::string& holder,
                              bool cool_down);
  absl::Status Give(absl::string_view tenant, absl::string_view service, bool cool_down);
  absl::Status ValidateNames(absl::string_view tenant, absl::string_view service) const;
  Lease MakeLease(uint32_t ip, absl::string_view value) const;

  StateStore* const store_;
  const Options options_;
  const std::vector<Pool> pools_;
  const std::vector<v1::VipPool> configured_pools_;
};

}  // namespace ferry::controlplane
