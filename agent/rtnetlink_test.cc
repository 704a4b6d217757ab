#include "agent/rtnetlink.h"

#include <arpa/inet.h>

#include <string>

#include "agent/testing/network_namespace.h"
#include "gtest/gtest.h"

namespace ferry::agent {
namespace {

using testing::V4;

using testing::LinkHasAddress;

class RtnetlinkTest : public testing::NetworkNamespaceTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(NetworkNamespaceTest::SetUp());
    if (IsSkipped()) return;
    absl::StatusOr<int> lo = LinkIndex("lo");
    ASSERT_TRUE(lo.ok()) << lo.status();
    lo_ = *lo;
  }
  int lo_ = 0;
};

TEST_F(RtnetlinkTest, LinkIndexOfUnknownLinkIsNotFound) {
  EXPECT_TRUE(absl::IsNotFound(LinkIndex("no-such-link").status()));
}

TEST_F(RtnetlinkTest, AddThenDeleteAddressOnLoopback) {
  ASSERT_TRUE(AddAddressV4(lo_, V4("192.0.2.7"), 32).ok());
  EXPECT_TRUE(LinkHasAddress("lo", "192.0.2.7"));
  ASSERT_TRUE(DeleteAddressV4(lo_, V4("192.0.2.7"), 32).ok());
  EXPECT_FALSE(LinkHasAddress("lo", "192.0.2.7"));
}

TEST_F(RtnetlinkTest, ErrorsCarryTheKernelsReason) {
  ASSERT_TRUE(AddAddressV4(lo_, V4("192.0.2.8"), 32).ok());
  struct Case {
    const char* name;
    absl::Status status;
    absl::StatusCode want;
  };
  const Case cases[] = {
      {"duplicate add", AddAddressV4(lo_, V4("192.0.2.8"), 32), absl::StatusCode::kAlreadyExists},
      {"delete absent", DeleteAddressV4(lo_, V4("192.0.2.9"), 32), absl::StatusCode::kNotFound},
      {"prefix too long", AddAddressV4(lo_, V4("192.0.2.10"), 33),
       absl::StatusCode::kInvalidArgument},
      {"unknown link", AddAddressV4(9999, V4("192.0.2.11"), 32), absl::StatusCode::kNotFound},
      {"link name too long", CreateDummyLink("a-name-much-too-long").status(),
       absl::StatusCode::kInvalidArgument},
      {"delete unknown link", DeleteLink(9999), absl::StatusCode::kNotFound},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(c.status.code(), c.want) << c.name << ": " << c.status;
  }
}

TEST_F(RtnetlinkTest, DummyLinkIsCreatedUpOrReportedUnsupported) {
  absl::StatusOr<int> link = CreateDummyLink("ferrytest0");
  if (absl::IsUnimplemented(link.status())) {
    EXPECT_NE(link.status().message().find("dummy"), absl::string_view::npos) << link.status();
    EXPECT_TRUE(absl::IsNotFound(LinkIndex("ferrytest0").status()));
    return;
  }
  ASSERT_TRUE(link.ok()) << link.status();
  EXPECT_EQ(*LinkIndex("ferrytest0"), *link);
  EXPECT_TRUE(absl::IsAlreadyExists(CreateDummyLink("ferrytest0").status()));
  ASSERT_TRUE(AddAddressV4(*link, V4("192.0.2.20"), 32).ok());
  EXPECT_TRUE(LinkHasAddress("ferrytest0", "192.0.2.20"));
  ASSERT_TRUE(DeleteLink(*link).ok());
  EXPECT_TRUE(absl::IsNotFound(LinkIndex("ferrytest0").status()));
}

}  // namespace
}  // namespace ferry::agent
