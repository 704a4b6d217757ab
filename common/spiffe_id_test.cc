#include "common/spiffe_id.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ferry {
namespace {

using ::testing::HasSubstr;

TEST(SpiffeIdTest, ParsesAndFormatsRoundTrip) {
  const std::string uri = "spiffe://ferry.local/tenant/acme/connector/edge-1";
  absl::StatusOr<SpiffeId> id = ParseSpiffeId(uri);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->trust_domain, "ferry.local");
  EXPECT_EQ(id->tenant, "acme");
  EXPECT_EQ(id->role, "connector");
  EXPECT_EQ(id->name, "edge-1");
  EXPECT_EQ(id->ApiRole(), v1::ROLE_CONNECTOR);
  EXPECT_EQ(id->ToUri(), uri);
  EXPECT_EQ(id->ToProto().tenant(), "acme");
}

TEST(SpiffeIdTest, MapsEveryRole) {
  const std::pair<const char*, v1::Role> roles[] = {{"connector", v1::ROLE_CONNECTOR},
                                                    {"agent", v1::ROLE_AGENT},
                                                    {"relay", v1::ROLE_RELAY},
                                                    {"admin", v1::ROLE_ADMIN},
                                                    {"intermediate", v1::ROLE_UNSPECIFIED}};
  for (const auto& [role, api] : roles) {
    auto id = ParseSpiffeId(std::string("spiffe://t.d/tenant/a/") + role + "/n");
    ASSERT_TRUE(id.ok()) << role;
    EXPECT_EQ(id->ApiRole(), api) << role;
  }
}

struct BadUri {
  std::string uri;
  std::string reason;
};

class SpiffeIdRefusalTest : public ::testing::TestWithParam<BadUri> {};

TEST_P(SpiffeIdRefusalTest, Refuses) {
  absl::StatusOr<SpiffeId> id = ParseSpiffeId(GetParam().uri);
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(id.status().message()), HasSubstr(GetParam().reason));
}

INSTANTIATE_TEST_SUITE_P(
    Table, SpiffeIdRefusalTest,
    ::testing::Values(
        BadUri{"", "must start with spiffe://"},
        BadUri{"https://ferry.local/tenant/a/agent/b", "must start with spiffe://"},
        BadUri{"spiffe://ferry.local", "no path"},
        BadUri{"spiffe:///tenant/a/agent/b", "trust domain is empty"},
        BadUri{"spiffe://ferry.local:443/tenant/a/agent/b", "no port or user"},
        BadUri{"spiffe://u@ferry.local/tenant/a/agent/b", "no port or user"},
        BadUri{"spiffe://ferry.local/tenant/a/agent", "/tenant/<tenant>/<role>/<name>"},
        BadUri{"spiffe://ferry.local/tenant/a/agent/b/c", "/tenant/<tenant>/<role>/<name>"},
        BadUri{"spiffe://ferry.local/org/a/agent/b", "/tenant/<tenant>/<role>/<name>"},
        BadUri{"spiffe://ferry.local/tenant/a/root/b", "unknown role \"root\""},
        BadUri{"spiffe://ferry.local/tenant/A/agent/b", "tenant name \"A\""},
        BadUri{"spiffe://ferry.local/tenant/a/agent/", "component name is empty"},
        BadUri{"spiffe://ferry.local/tenant/a/agent/b?x=1", "query and fragment"},
        BadUri{"spiffe://ferry.local/tenant/a/agent/b#f", "query and fragment"},
        BadUri{"spiffe://" + std::string(3000, 'a'), "too long"}));

}  // namespace
}  // namespace ferry
