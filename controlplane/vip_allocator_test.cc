#include "controlplane/vip_allocator.h"

#include <atomic>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/barrier.h"
#include "absl/time/time.h"
#include "controlplane/intermediate_metrics.h"
#include "controlplane/testing/in_memory_state_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ferry::controlplane {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Lease = VipAllocator::Lease;

v1::VipPool PoolOf(const std::string& cidr, std::vector<std::string> tenants = {}) {
  v1::VipPool pool;
  pool.set_cidr(cidr);
  for (const std::string& t : tenants) pool.add_tenants(t);
  return pool;
}

// An independent FNV-1a, so the test states the documented slot choice instead of reusing the
// implementation's.
uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// The address a name prefers in a single /24 pool 10.100.0.0/24: slot k is 10.100.0.(2 + k).
std::string PreferredIn24(const std::string& tenant, const std::string& service) {
  return absl::StrCat("10.100.0.", 2 + Fnv1a(tenant + "/" + service) % 253);
}

class VipAllocatorTest : public ::testing::Test {
 protected:
  std::unique_ptr<VipAllocator> Make(std::vector<v1::VipPool> pools = {},
                                     absl::Duration cooldown = absl::Seconds(60)) {
    VipAllocator::Options options;
    options.pools = std::move(pools);
    options.cooldown = cooldown;
    options.now = [this] { return now_; };
    absl::StatusOr<std::unique_ptr<VipAllocator>> allocator =
        VipAllocator::Create(&store_, options);
    EXPECT_TRUE(allocator.ok()) << allocator.status();
    return allocator.ok() ? *std::move(allocator) : nullptr;
  }

  // Allocates `n` services named s0..s<n-1> of `tenant`; returns their VIPs.
  std::vector<std::string> Fill(VipAllocator& allocator, int n, const std::string& tenant = "acme",
                                const std::string& prefix = "s") {
    std::vector<std::string> vips;
    for (int i = 0; i < n; ++i) {
      absl::StatusOr<Lease> lease = allocator.Allocate(tenant, absl::StrCat(prefix, i), "");
      EXPECT_TRUE(lease.ok()) << i << ": " << lease.status();
      if (lease.ok()) vips.push_back(lease->vip);
    }
    return vips;
  }

  InMemoryStateStore store_;
  absl::Time now_ = absl::FromUnixSeconds(1700000000);
};

struct PoolCase {
  std::vector<v1::VipPool> pools;
  absl::StatusCode code;
  std::string message;  // substring; empty for OK
};

TEST_F(VipAllocatorTest, ValidatesPools) {
  const std::vector<PoolCase> cases = {
      {{PoolOf("10.100.0.0/24")}, absl::StatusCode::kOk, ""},
      {{PoolOf("10.0.0.0/8")}, absl::StatusCode::kOk, ""},
      {{PoolOf("192.168.7.4/30")}, absl::StatusCode::kOk, ""},
      {{PoolOf("10.100.0.0/24"), PoolOf("10.101.0.0/24")}, absl::StatusCode::kOk, ""},
      {{PoolOf("10.0.0.0/7")},
       absl::StatusCode::kInvalidArgument,
       "vip_pools[0] \"10.0.0.0/7\": prefix /7 is outside /8../30"},
      {{PoolOf("10.0.0.0/31")}, absl::StatusCode::kInvalidArgument, "prefix /31 is outside"},
      {{PoolOf("10.0.0.0/32")}, absl::StatusCode::kInvalidArgument, "prefix /32 is outside"},
      {{PoolOf("10.100.0.5/24")},
       absl::StatusCode::kInvalidArgument,
       "host bits are set; the network is 10.100.0.0/24"},
      {{PoolOf("10.100.0.0")}, absl::StatusCode::kInvalidArgument, "expected an IPv4 CIDR"},
      {{PoolOf("")}, absl::StatusCode::kInvalidArgument, "vip_pools[0] \"\": expected an IPv4"},
      {{PoolOf("fd00::/64")}, absl::StatusCode::kInvalidArgument, "IPv6 pools are not supported"},
      {{PoolOf("10.100.0/24")},
       absl::StatusCode::kInvalidArgument,
       "\"10.100.0\" is not an IPv4 address"},
      {{PoolOf("300.1.1.0/24")}, absl::StatusCode::kInvalidArgument, "is not an IPv4 address"},
      {{PoolOf("10.100.0.0/")}, absl::StatusCode::kInvalidArgument, "prefix length \"\" is not"},
      {{PoolOf("10.100.0.0/2x")}, absl::StatusCode::kInvalidArgument, "\"2x\" is not a number"},
      {{PoolOf("10.100.0.0/+24")}, absl::StatusCode::kInvalidArgument, "\"+24\" is not a number"},
      {{PoolOf("10.100.0.0/24"), PoolOf("10.100.0.128/25")},
       absl::StatusCode::kInvalidArgument,
       "vip_pools[1] \"10.100.0.128/25\": overlaps vip_pools[0] \"10.100.0.0/24\""},
      {{PoolOf("10.100.1.0/24"), PoolOf("10.100.0.0/16")},
       absl::StatusCode::kInvalidArgument,
       "vip_pools[1] \"10.100.0.0/16\": overlaps vip_pools[0]"},
      {{PoolOf("10.100.0.0/24"), PoolOf("10.100.0.0/24")},
       absl::StatusCode::kInvalidArgument,
       "overlaps"},
      {{PoolOf("10.100.0.0/24", {"Acme"})},
       absl::StatusCode::kInvalidArgument,
       "vip_pools[0] \"10.100.0.0/24\": tenants[0]"},
  };
  for (const PoolCase& c : cases) {
    std::string name;
    for (const v1::VipPool& p : c.pools) absl::StrAppend(&name, p.cidr(), " ");
    VipAllocator::Options options;
    options.pools = c.pools;
    absl::StatusOr<std::unique_ptr<VipAllocator>> allocator =
        VipAllocator::Create(&store_, options);
    EXPECT_EQ(allocator.status().code(), c.code) << name << allocator.status();
    if (!c.message.empty()) {
      EXPECT_THAT(std::string(allocator.status().message()), HasSubstr(c.message)) << name;
    }
  }
}

TEST_F(VipAllocatorTest, RefusesNegativeCooldown) {
  VipAllocator::Options options;
  options.cooldown = absl::Seconds(-1);
  absl::StatusOr<std::unique_ptr<VipAllocator>> allocator = VipAllocator::Create(&store_, options);
  EXPECT_EQ(allocator.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(allocator.status().message()), HasSubstr("cooldown"));
}

TEST_F(VipAllocatorTest, ParsesCidrLists) {
  absl::StatusOr<std::vector<v1::VipPool>> pools =
      VipPoolsFromCidrList(" 10.100.0.0/24 ,10.101.0.0/16");
  ASSERT_TRUE(pools.ok()) << pools.status();
  ASSERT_EQ(pools->size(), 2u);
  EXPECT_EQ((*pools)[0].cidr(), "10.100.0.0/24");
  EXPECT_EQ((*pools)[1].cidr(), "10.101.0.0/16");
  EXPECT_TRUE((*pools)[1].tenants().empty());
  EXPECT_TRUE(VipPoolsFromCidrList("")->empty());
  EXPECT_EQ(VipPoolsFromCidrList("10.100.0.0/24,,10.101.0.0/24").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(VipAllocatorTest, DefaultIsOne24ForEveryTenant) {
  std::unique_ptr<VipAllocator> allocator = Make();
  ASSERT_EQ(allocator->pools().size(), 1u);
  EXPECT_EQ(allocator->pools()[0].cidr(), "10.100.0.0/24");
  absl::StatusOr<std::vector<VipAllocator::PoolStats>> usage = allocator->PoolUsage();
  ASSERT_TRUE(usage.ok());
  ASSERT_EQ(usage->size(), 1u);
  EXPECT_EQ((*usage)[0].size, 253u);
  EXPECT_TRUE(allocator->Allocate("anyone", "web", "").ok());
}

TEST_F(VipAllocatorTest, NeverHandsOutNetworkGatewayOrBroadcast) {
  std::unique_ptr<VipAllocator> allocator = Make();
  const std::vector<std::string> vips = Fill(*allocator, 253);
  ASSERT_EQ(vips.size(), 253u);
  const std::set<std::string> distinct(vips.begin(), vips.end());
  EXPECT_EQ(distinct.size(), 253u);
  EXPECT_EQ(distinct.count("10.100.0.0"), 0u);
  EXPECT_EQ(distinct.count("10.100.0.1"), 0u);
  EXPECT_EQ(distinct.count("10.100.0.255"), 0u);
  for (int host = 2; host <= 254; ++host) {
    EXPECT_EQ(distinct.count(absl::StrCat("10.100.0.", host)), 1u) << host;
  }
}

TEST_F(VipAllocatorTest, ExhaustedPoolNamesCidrAndSize) {
  std::unique_ptr<VipAllocator> allocator = Make();
  Fill(*allocator, 253);
  absl::StatusOr<Lease> lease = allocator->Allocate("acme", "one-too-many", "");
  EXPECT_EQ(lease.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(lease.status().message()),
              HasSubstr("VIP pool 10.100.0.0/24 (253 addresses) is exhausted"));
  // Holders still get theirs back.
  EXPECT_TRUE(allocator->Allocate("acme", "s7", "").ok());
}

TEST_F(VipAllocatorTest, ExhaustionOfSeveralPoolsNamesEach) {
  std::unique_ptr<VipAllocator> allocator =
      Make({PoolOf("10.1.0.0/30"), PoolOf("10.2.0.0/29", {"acme"})});
  const std::vector<std::string> vips = Fill(*allocator, 6);
  EXPECT_EQ(std::set<std::string>(vips.begin(), vips.end()).size(), 6u);
  absl::StatusOr<Lease> lease = allocator->Allocate("acme", "more", "");
  EXPECT_EQ(lease.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(lease.status().message()),
              HasSubstr("VIP pools 10.1.0.0/30 (1 addresses) and 10.2.0.0/29 (5 addresses) are "
                        "exhausted"));
}

TEST_F(VipAllocatorTest, HashPicksThePreferredSlotThenTheNextFreeOne) {
  std::unique_ptr<VipAllocator> allocator = Make();
  absl::StatusOr<Lease> web = allocator->Allocate("acme", "web", "");
  ASSERT_TRUE(web.ok()) << web.status();
  EXPECT_EQ(web->vip, PreferredIn24("acme", "web"));
  EXPECT_EQ(web->pool, "10.100.0.0/24");
  EXPECT_FALSE(web->pinned);

  // "db" prefers some slot k; pin another service there first and "db" gets slot k+1 (wrapping
  // from .254 to .2).
  const std::string db_preferred = PreferredIn24("acme", "db");
  ASSERT_NE(db_preferred, web->vip);
  ASSERT_TRUE(allocator->Allocate("acme", "squatter", db_preferred).ok());
  const uint64_t k = Fnv1a("acme/db") % 253;
  absl::StatusOr<Lease> db = allocator->Allocate("acme", "db", "");
  ASSERT_TRUE(db.ok()) << db.status();
  EXPECT_EQ(db->vip, absl::StrCat("10.100.0.", 2 + (k + 1) % 253));
}

TEST_F(VipAllocatorTest, StableAcrossReRegistrationAndRestart) {
  std::unique_ptr<VipAllocator> allocator = Make();
  const std::vector<std::string> first = Fill(*allocator, 40);
  ASSERT_TRUE(allocator->Allocate("globex", "s0", "").ok());
  absl::StatusOr<std::vector<Lease>> before = allocator->ListLeases("");
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(Fill(*allocator, 40), first);  // re-registration

  allocator = Make();  // restart: a new allocator over the same store
  absl::StatusOr<std::vector<Lease>> after = allocator->ListLeases("");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after, *before);
  EXPECT_EQ(Fill(*allocator, 40), first);
  absl::StatusOr<std::optional<Lease>> found = allocator->Lookup("acme", "s3");
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->vip, first[3]);
}

TEST_F(VipAllocatorTest, PinsAreCheckedAndHonoured) {
  std::unique_ptr<VipAllocator> allocator =
      Make({PoolOf("10.100.0.0/24"), PoolOf("10.200.0.0/24", {"globex"})});
  absl::StatusOr<Lease> db = allocator->Allocate("acme", "db", "10.100.0.50");
  ASSERT_TRUE(db.ok()) << db.status();
  EXPECT_EQ(db->vip, "10.100.0.50");
  EXPECT_TRUE(db->pinned);

  struct Case {
    std::string pin;
    absl::StatusCode code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"10.100.0.0", absl::StatusCode::kInvalidArgument,
       "10.100.0.0 is the network address of VIP pool 10.100.0.0/24"},
      {"10.100.0.1", absl::StatusCode::kInvalidArgument,
       "10.100.0.1 is the reserved gateway address"},
      {"10.100.0.255", absl::StatusCode::kInvalidArgument, "10.100.0.255 is the broadcast"},
      {"10.99.0.5", absl::StatusCode::kInvalidArgument,
       "10.99.0.5 is outside the VIP pools of tenant \"acme\" (10.100.0.0/24)"},
      // Another tenant's pool is outside acme's.
      {"10.200.0.5", absl::StatusCode::kInvalidArgument, "outside the VIP pools"},
      {"web.example", absl::StatusCode::kInvalidArgument, "is not an IPv4 address"},
      {"10.100.0.50", absl::StatusCode::kAlreadyExists, "already leased to acme/db"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<Lease> lease = allocator->Allocate("acme", "web", c.pin);
    EXPECT_EQ(lease.status().code(), c.code) << c.pin << ": " << lease.status();
    EXPECT_THAT(std::string(lease.status().message()), HasSubstr(c.message)) << c.pin;
  }
  // Refused pins allocated nothing.
  absl::StatusOr<std::optional<Lease>> web = allocator->Lookup("acme", "web");
  ASSERT_TRUE(web.ok());
  EXPECT_FALSE(web->has_value());
  // globex may pin inside its own pool, and a taken address in another tenant's name is refused
  // with that holder named.
  EXPECT_TRUE(allocator->Allocate("globex", "web", "10.200.0.5").ok());
  EXPECT_THAT(std::string(allocator->Allocate("globex", "db", "10.100.0.50").status().message()),
              HasSubstr("acme/db"));
}

TEST_F(VipAllocatorTest, ANewPinMovesTheLeaseAndTheOldAddressCoolsDown) {
  std::unique_ptr<VipAllocator> allocator = Make();
  absl::StatusOr<Lease> web = allocator->Allocate("acme", "web", "");
  ASSERT_TRUE(web.ok());
  absl::StatusOr<Lease> moved = allocator->Allocate("acme", "web", "10.100.0.99");
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ(moved->vip, "10.100.0.99");
  EXPECT_TRUE(moved->pinned);
  absl::StatusOr<std::vector<Lease>> leases = allocator->ListLeases("acme");
  ASSERT_TRUE(leases.ok());
  ASSERT_EQ(leases->size(), 1u);
  EXPECT_EQ((*leases)[0], *moved);
  // The old address is cooling: another service cannot pin it yet.
  absl::StatusOr<Lease> other = allocator->Allocate("acme", "db", web->vip);
  EXPECT_EQ(other.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(other.status().message()),
              HasSubstr(absl::StrCat("VIP ", web->vip, " was released by acme/web")));
  // Dropping the pin keeps the address, unpinned.
  absl::StatusOr<Lease> unpinned = allocator->Allocate("acme", "web", "");
  ASSERT_TRUE(unpinned.ok());
  EXPECT_EQ(unpinned->vip, "10.100.0.99");
  EXPECT_FALSE(unpinned->pinned);
}

TEST_F(VipAllocatorTest, ReleasedAddressCoolsDownForOthersButNotForItsService) {
  // A /29 has five addresses: .2 to .6.
  std::unique_ptr<VipAllocator> allocator = Make({PoolOf("10.7.0.0/29")});
  absl::StatusOr<Lease> web = allocator->Allocate("acme", "web", "");
  ASSERT_TRUE(web.ok());
  ASSERT_TRUE(allocator->Release("acme", "web").ok());
  EXPECT_EQ(allocator->Release("acme", "web").code(), absl::StatusCode::kNotFound);

  // Others fill the four other addresses and then find the pool exhausted, not web's address.
  const std::vector<std::string> others = Fill(*allocator, 4);
  EXPECT_THAT(others, ::testing::Not(::testing::Contains(web->vip)));
  absl::StatusOr<Lease> blocked = allocator->Allocate("acme", "late", "");
  EXPECT_EQ(blocked.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(blocked.status().message()), HasSubstr("1 released addresses still"));
  EXPECT_EQ(allocator->Allocate("acme", "late", web->vip).status().code(),
            absl::StatusCode::kUnavailable);
  absl::StatusOr<std::vector<VipAllocator::PoolStats>> usage = allocator->PoolUsage();
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ((*usage)[0].used, 4u);
  EXPECT_EQ((*usage)[0].cooling, 1u);

  // Within the cooldown, web itself gets its address back.
  now_ += absl::Seconds(59);
  absl::StatusOr<Lease> back = allocator->Allocate("acme", "web", "");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->vip, web->vip);

  // Released again: after the cooldown another service may take it.
  ASSERT_TRUE(allocator->Release("acme", "web").ok());
  now_ += absl::Seconds(59);
  EXPECT_EQ(allocator->Allocate("acme", "late", "").status().code(),
            absl::StatusCode::kResourceExhausted);
  now_ += absl::Seconds(1);
  absl::StatusOr<Lease> late = allocator->Allocate("acme", "late", "");
  ASSERT_TRUE(late.ok()) << late.status();
  EXPECT_EQ(late->vip, web->vip);
}

TEST_F(VipAllocatorTest, CooldownSurvivesRestart) {
  std::unique_ptr<VipAllocator> allocator = Make();
  absl::StatusOr<Lease> web = allocator->Allocate("acme", "web", "");
  ASSERT_TRUE(web.ok());
  ASSERT_TRUE(allocator->Release("acme", "web").ok());
  allocator = Make();
  EXPECT_EQ(allocator->Allocate("acme", "db", web->vip).status().code(),
            absl::StatusCode::kUnavailable);
  now_ += absl::Seconds(60);
  EXPECT_TRUE(allocator->Allocate("acme", "db", web->vip).ok());
}

TEST_F(VipAllocatorTest, DiscardFreesAtOnce) {
  std::unique_ptr<VipAllocator> allocator = Make();
  absl::StatusOr<Lease> web = allocator->Allocate("acme", "web", "");
  ASSERT_TRUE(web.ok());
  ASSERT_TRUE(allocator->Discard("acme", "web").ok());
  EXPECT_TRUE(allocator->Allocate("acme", "db", web->vip).ok());
  EXPECT_EQ(allocator->Discard("acme", "web").code(), absl::StatusCode::kNotFound);
}

TEST_F(VipAllocatorTest, ZeroCooldownFreesAtOnce) {
  std::unique_ptr<VipAllocator> allocator = Make({}, absl::ZeroDuration());
  absl::StatusOr<Lease> web = allocator->Allocate("acme", "web", "");
  ASSERT_TRUE(web.ok());
  ASSERT_TRUE(allocator->Release("acme", "web").ok());
  EXPECT_TRUE(allocator->Allocate("acme", "db", web->vip).ok());
}

TEST_F(VipAllocatorTest, TenantPoolsAreRespected) {
  std::unique_ptr<VipAllocator> allocator =
      Make({PoolOf("10.1.0.0/24", {"acme"}), PoolOf("10.2.0.0/24", {"globex", "initech"})});
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<Lease> acme = allocator->Allocate("acme", absl::StrCat("s", i), "");
    ASSERT_TRUE(acme.ok());
    EXPECT_EQ(acme->pool, "10.1.0.0/24");
    absl::StatusOr<Lease> globex = allocator->Allocate("globex", absl::StrCat("s", i), "");
    ASSERT_TRUE(globex.ok());
    EXPECT_EQ(globex->pool, "10.2.0.0/24");
  }
  absl::StatusOr<Lease> stranger = allocator->Allocate("umbrella", "web", "");
  EXPECT_EQ(stranger.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(stranger.status().message()), HasSubstr("tenant \"umbrella\""));
}

TEST_F(VipAllocatorTest, LeaseOutsideTheTenantsPoolsMovesAfterAConfigChange) {
  std::unique_ptr<VipAllocator> allocator = Make({PoolOf("10.1.0.0/24")});
  ASSERT_TRUE(allocator->Allocate("acme", "web", "").ok());
  allocator = Make({PoolOf("10.2.0.0/24")});
  absl::StatusOr<Lease> web = allocator->Allocate("acme", "web", "");
  ASSERT_TRUE(web.ok()) << web.status();
  EXPECT_EQ(web->pool, "10.2.0.0/24");
  absl::StatusOr<std::vector<Lease>> leases = allocator->ListLeases("acme");
  ASSERT_TRUE(leases.ok());
  EXPECT_EQ(leases->size(), 1u);
}

TEST_F(VipAllocatorTest, AdoptsALeaseWhoseServiceRecordWasLost) {
  // A crash between the two writes of an allocation leaves only the address's lease key.
  ASSERT_TRUE(store_.Put("/vip/leases/10.100.0.77", "acme/web").ok());
  std::unique_ptr<VipAllocator> allocator = Make();
  absl::StatusOr<Lease> web = allocator->Allocate("acme", "web", "");
  ASSERT_TRUE(web.ok()) << web.status();
  EXPECT_EQ(web->vip, "10.100.0.77");
  EXPECT_EQ(*store_.Get("/vip/by_service/acme/web"), "10.100.0.77");
}

TEST_F(VipAllocatorTest, ListsLeasesByTenantSorted) {
  std::unique_ptr<VipAllocator> allocator = Make();
  ASSERT_TRUE(allocator->Allocate("globex", "web", "").ok());
  ASSERT_TRUE(allocator->Allocate("acme", "web", "10.100.0.9").ok());
  ASSERT_TRUE(allocator->Allocate("acme", "api", "").ok());
  absl::StatusOr<std::vector<Lease>> acme = allocator->ListLeases("acme");
  ASSERT_TRUE(acme.ok());
  ASSERT_EQ(acme->size(), 2u);
  EXPECT_EQ((*acme)[0].service, "api");
  EXPECT_EQ((*acme)[1], (Lease{"acme", "web", "10.100.0.9", "10.100.0.0/24", true}));
  const v1::Lease proto = (*acme)[1].ToProto();
  EXPECT_EQ(proto.vip(), "10.100.0.9");
  EXPECT_TRUE(proto.pinned());
  absl::StatusOr<std::vector<Lease>> all = allocator->ListLeases("");
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[2].tenant, "globex");
}

TEST_F(VipAllocatorTest, ExportsPoolGauges) {
  IntermediateMetrics metrics(std::make_shared<prometheus::Registry>());
  std::unique_ptr<VipAllocator> allocator = Make({PoolOf("10.1.0.0/24"), PoolOf("10.2.0.0/28")});
  Fill(*allocator, 3);
  ASSERT_TRUE(allocator->Allocate("acme", "pinned", "10.2.0.4").ok());
  ASSERT_TRUE(allocator->ExportUsage(metrics).ok());
  EXPECT_EQ(metrics.VipPoolSize("10.1.0.0/24").Value(), 253);
  EXPECT_EQ(metrics.VipPoolSize("10.2.0.0/28").Value(), 13);
  EXPECT_EQ(metrics.VipPoolUsed("10.1.0.0/24").Value() + metrics.VipPoolUsed("10.2.0.0/28").Value(),
            4);
  EXPECT_GE(metrics.VipPoolUsed("10.2.0.0/28").Value(), 1);
}

TEST_F(VipAllocatorTest, RefusesBadNames) {
  std::unique_ptr<VipAllocator> allocator = Make();
  EXPECT_EQ(allocator->Allocate("Acme", "web", "").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(allocator->Allocate("acme", "a/b", "").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(allocator->Release("acme", "").code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(VipAllocatorTest, StoreErrorsPropagate) {
  std::unique_ptr<VipAllocator> allocator = Make();
  store_.SetWriteError(absl::UnavailableError("disk on fire"));
  absl::StatusOr<Lease> lease = allocator->Allocate("acme", "web", "");
  EXPECT_EQ(lease.status().code(), absl::StatusCode::kUnavailable);
  store_.SetWriteError(absl::OkStatus());
  EXPECT_TRUE(allocator->Allocate("acme", "web", "").ok());
}

// Two allocators over one store (two Intermediates sharing etcd), many threads each, all racing
// for the one address left: exactly one wins.
TEST_F(VipAllocatorTest, TwoAllocatorsRacingForTheLastAddressHaveOneWinner) {
  constexpr int kThreads = 16;
  for (int round = 0; round < 50; ++round) {
    InMemoryStateStore store;
    VipAllocator::Options options;
    options.pools = {PoolOf("10.7.0.0/29")};
    auto a = VipAllocator::Create(&store, options);
    auto b = VipAllocator::Create(&store, options);
    ASSERT_TRUE(a.ok() && b.ok());
    for (int i = 0; i < 4; ++i) ASSERT_TRUE((*a)->Allocate("acme", absl::StrCat("s", i), "").ok());

    std::atomic<int> won{0};
    std::atomic<int> exhausted{0};
    absl::Barrier start(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      VipAllocator* allocator = (t % 2 == 0 ? a : b)->get();
      threads.emplace_back([&, allocator, t] {
        start.Block();
        absl::StatusOr<Lease> lease = allocator->Allocate("acme", absl::StrCat("racer-", t), "");
        if (lease.ok()) {
          ++won;
        } else if (lease.status().code() == absl::StatusCode::kResourceExhausted) {
          ++exhausted;
        } else {
          ADD_FAILURE() << lease.status();
        }
      });
    }
    for (std::thread& t : threads) t.join();
    EXPECT_EQ(won.load(), 1);
    EXPECT_EQ(exhausted.load(), kThreads - 1);
    absl::StatusOr<std::vector<Lease>> leases = (*b)->ListLeases("acme");
    ASSERT_TRUE(leases.ok());
    std::set<std::string> vips;
    for (const Lease& l : *leases) vips.insert(l.vip);
    EXPECT_EQ(leases->size(), 5u);
    EXPECT_EQ(vips.size(), 5u);
  }
}

// Many services from many threads over two allocators: every address distinct, and the same
// service asked for from both sides gets one address.
TEST_F(VipAllocatorTest, ConcurrentAllocationsNeverShareAnAddress) {
  constexpr int kThreads = 8;
  constexpr int kServicesPerThread = 12;
  VipAllocator::Options options;
  auto a = VipAllocator::Create(&store_, options);
  auto b = VipAllocator::Create(&store_, options);
  ASSERT_TRUE(a.ok() && b.ok());
  std::vector<std::vector<Lease>> got(kThreads);
  absl::Barrier start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    VipAllocator* allocator = (t % 2 == 0 ? a : b)->get();
    threads.emplace_back([&, allocator, t] {
      start.Block();
      for (int i = 0; i < kServicesPerThread; ++i) {
        // Threads t and t^1 (one per allocator) ask for the same names.
        absl::StatusOr<Lease> lease =
            allocator->Allocate("acme", absl::StrCat("svc-", t / 2, "-", i), "");
        if (!lease.ok()) {
          ADD_FAILURE() << lease.status();
          continue;
        }
        got[t].push_back(*lease);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int t = 0; t < kThreads; t += 2) EXPECT_EQ(got[t], got[t + 1]) << t;
  absl::StatusOr<std::vector<Lease>> leases = (*a)->ListLeases("");
  ASSERT_TRUE(leases.ok());
  std::set<std::string> vips;
  for (const Lease& l : *leases) vips.insert(l.vip);
  EXPECT_EQ(leases->size(), size_t{kThreads / 2 * kServicesPerThread});
  EXPECT_EQ(vips.size(), leases->size());
}

}  // namespace
}  // namespace ferry::controlplane
