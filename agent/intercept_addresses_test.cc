#include "agent/intercept_addresses.h"

#include <arpa/inet.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <thread>

#include "agent/rtnetlink.h"
#include "agent/testing/network_namespace.h"
#include "gtest/gtest.h"

namespace ferry::agent {
namespace {

using testing::V4;

using testing::LinkHasAddress;

using InterceptAddressesTest = testing::NetworkNamespaceTest;

TEST_F(InterceptAddressesTest, RemovesOnlyTheAddressesItAdded) {
  // One address was there before: it must survive the object.
  ASSERT_TRUE(AddAddressV4(*LinkIndex("lo"), V4("192.0.2.1"), 32).ok());
  {
    absl::StatusOr<std::unique_ptr<InterceptAddresses>> vips = InterceptAddresses::Open("lo");
    ASSERT_TRUE(vips.ok()) << vips.status();
    EXPECT_EQ((*vips)->interface(), "lo");
    EXPECT_FALSE((*vips)->created_link());
    ASSERT_TRUE((*vips)->Add(V4("192.0.2.1")).ok());
    ASSERT_TRUE((*vips)->Add(V4("192.0.2.2")).ok());
    ASSERT_TRUE((*vips)->Add(V4("192.0.2.3")).ok());
    ASSERT_TRUE((*vips)->Add(V4("192.0.2.3")).ok());  // again: still one of ours
    EXPECT_EQ((*vips)->added().size(), 2u);
    EXPECT_TRUE(LinkHasAddress("lo", "192.0.2.2"));
    EXPECT_TRUE(LinkHasAddress("lo", "192.0.2.3"));
  }
  EXPECT_TRUE(LinkHasAddress("lo", "192.0.2.1"));
  EXPECT_FALSE(LinkHasAddress("lo", "192.0.2.2"));
  EXPECT_FALSE(LinkHasAddress("lo", "192.0.2.3"));
}

TEST_F(InterceptAddressesTest, MissingInterfaceOtherThanFerry0IsNotFound) {
  absl::StatusOr<std::unique_ptr<InterceptAddresses>> vips = InterceptAddresses::Open("eth9");
  ASSERT_TRUE(absl::IsNotFound(vips.status())) << vips.status();
  EXPECT_NE(vips.status().message().find("ferry0"), absl::string_view::npos);
}

TEST_F(InterceptAddressesTest, Ferry0IsCreatedOrFallsBackToLoopback) {
  {
    absl::StatusOr<std::unique_ptr<InterceptAddresses>> vips =
        InterceptAddresses::Open(kInterceptDummyInterface);
    ASSERT_TRUE(vips.ok()) << vips.status();
    ASSERT_TRUE((*vips)->Add(V4("192.0.2.5")).ok());
    if ((*vips)->created_link()) {
      EXPECT_EQ((*vips)->interface(), "ferry0");
      EXPECT_TRUE(LinkHasAddress("ferry0", "192.0.2.5"));
    } else {
      // No dummy driver in this kernel: the VIPs live on lo.
      EXPECT_EQ((*vips)->interface(), "lo");
      EXPECT_TRUE(LinkHasAddress("lo", "192.0.2.5"));
      EXPECT_TRUE(absl::IsNotFound(LinkIndex("ferry0").status()));
    }
  }
  // Either way nothing is left behind.
  EXPECT_TRUE(absl::IsNotFound(LinkIndex("ferry0").status()));
  EXPECT_FALSE(LinkHasAddress("lo", "192.0.2.5"));
}

TEST(RequireCapabilityTest, NamesTheMissingCapability) {
  // Capabilities are per thread: drop CAP_NET_ADMIN from one thread's
  // effective set and ask there.
  absl::Status before;
  absl::Status after;
  std::thread([&] {
    before = RequireCapability(CAP_NET_ADMIN, "CAP_NET_ADMIN", "intercept mode");
    __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
    ASSERT_EQ(syscall(SYS_capget, &header, data), 0);
    data[CAP_NET_ADMIN / 32].effective &= ~(1u << (CAP_NET_ADMIN % 32));
    ASSERT_EQ(syscall(SYS_capset, &header, data), 0);
    after = RequireCapability(CAP_NET_ADMIN, "CAP_NET_ADMIN", "intercept mode");
  }).join();
  if (!before.ok()) GTEST_SKIP() << "not running with CAP_NET_ADMIN: " << before;
  ASSERT_TRUE(absl::IsPermissionDenied(after)) << after;
  EXPECT_NE(after.message().find("intercept mode needs CAP_NET_ADMIN"), absl::string_view::npos)
      << after;
}

}  // namespace
}  // namespace ferry::agent
