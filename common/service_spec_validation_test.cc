#include "common/service_spec_validation.h"

#include <string>

#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace ferry {
namespace {

using ::testing::HasSubstr;

v1::ServiceSpec Parse(const std::string& text) {
  v1::ServiceSpec spec;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &spec)) << text;
  return spec;
}

TEST(ServiceSpecValidationTest, AcceptsWellFormedSpecs) {
  for (const char* text : {
           R"pb(name: "web"
                protocol: PROTOCOL_TCP
                backends { address: "127.0.0.1:8080" })pb",
           R"pb(name: "dns-a"
                protocol: PROTOCOL_UDP
                backends { address: "dns://db.local:53" })pb",
           R"pb(name: "srv"
                protocol: PROTOCOL_TCP
                backends { address: "srv://_http._tcp.x" })pb",
           R"pb(name: "ping"
                protocol: PROTOCOL_ICMP
                backends { address: "127.0.0.1" })pb",
           R"pb(name: "v6"
                protocol: PROTOCOL_TCP
                backends { address: "[::1]:80" }
                pinned_vip: "10.100.0.9"
                health_check {
                  interval { seconds: 1 }
                  timeout { nanos: 500000000 }
                  tcp {}
                })pb",
       }) {
    EXPECT_TRUE(ValidateServiceSpec(Parse(text), "service").ok()) << text;
  }
}

struct Case {
  const char* text;
  const char* error;
};

class ServiceSpecRefusalTest : public ::testing::TestWithParam<Case> {};

TEST_P(ServiceSpecRefusalTest, RefusesWithFieldPath) {
  const absl::Status status = ValidateServiceSpec(Parse(GetParam().text), "services[2]");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr(GetParam().error));
}

INSTANTIATE_TEST_SUITE_P(
    Table, ServiceSpecRefusalTest,
    ::testing::Values(Case{R"pb(name: "Web"
                                protocol: PROTOCOL_TCP
                                backends { address: "a:1" })pb",
                           "services[2].name: service name \"Web\" has an upper-case letter"},
                      Case{R"pb(name: "web"
                                tenant: "a_b"
                                protocol: PROTOCOL_TCP
                                backends { address: "a:1" })pb",
                           "services[2].tenant:"},
                      Case{R"pb(name: "web"
                                backends { address: "a:1" })pb",
                           "services[2].protocol: is not set"},
                      Case{R"pb(name: "web" protocol: PROTOCOL_TCP)pb",
                           "services[2].backends: needs at least"},
                      Case{R"pb(name: "web"
                                protocol: PROTOCOL_TCP
                                backends { address: "a" })pb",
                           "services[2].backends[0].address: \"a\" is not host:port"},
                      Case{R"pb(name: "web"
                                protocol: PROTOCOL_TCP
                                backends { address: "a:1" }
                                backends { address: "a:0" })pb",
                           "services[2].backends[1].address"},
                      Case{R"pb(name: "web"
                                protocol: PROTOCOL_TCP
                                backends { address: "a:70000" })pb",
                           "backends[0].address"},
                      Case{R"pb(name: "web"
                                protocol: PROTOCOL_TCP
                                backends { address: "::1:80" })pb",
                           "backends[0].address"},
                      Case{R"pb(name: "web"
                                protocol: PROTOCOL_TCP
                                backends { address: "srv://x" })pb",
                           "is not srv://_service._proto.name"},
                      Case{R"pb(name: "web"
                                protocol: PROTOCOL_TCP
                                backends { address: "a:1" }
                                port: 70000)pb",
                           "services[2].port"},
                      Case{R"pb(name: "web"
                                protocol: PROTOCOL_TCP
                                backends { address: "a:1" }
                                pinned_vip: "10.1")pb",
                           "services[2].pinned_vip"},
                      Case{R"pb(name: "web"
                                protocol: PROTOCOL_TCP
                                backends { address: "a:1" }
                                health_check {
                                  interval { nanos: 1000 }
                                  tcp {}
                                })pb",
                           "health_check.interval: must be at least 100ms"},
                      Case{R"pb(name: "web"
                                protocol: PROTOCOL_TCP
                                backends { address: "a:1" }
                                health_check {
                                  interval { seconds: 1 }
                                  timeout { seconds: 2 }
                                  tcp {}
                                })pb",
                           "health_check.timeout"},
                      Case{R"pb(name: "web"
                                protocol: PROTOCOL_TCP
                                backends { address: "a:1" }
                                health_check { interval { seconds: 1 } })pb",
                           "names no checker"}));

TEST(SplitHostPortTest, Splits) {
  std::string host;
  uint16_t port = 0;
  ASSERT_TRUE(SplitHostPort("[::1]:443", &host, &port));
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 443);
  ASSERT_TRUE(SplitHostPort("example.com:1", &host, &port));
  EXPECT_EQ(host, "example.com");
  EXPECT_FALSE(SplitHostPort(":80", &host, &port));
  EXPECT_FALSE(SplitHostPort("host:", &host, &port));
  EXPECT_FALSE(SplitHostPort("host:x", &host, &port));
  EXPECT_FALSE(SplitHostPort("[::1]443", &host, &port));
}

TEST(SplitHostPortTest, PortZeroOnlyForListenAddresses) {
  std::string host;
  uint16_t port = 7;
  EXPECT_FALSE(SplitHostPort("0.0.0.0:0", &host, &port));
  EXPECT_FALSE(SplitHostPort("0.0.0.0:0", &host, &port, PortRule::kNonZero));
  ASSERT_TRUE(SplitHostPort("0.0.0.0:0", &host, &port, PortRule::kAllowZero));
  EXPECT_EQ(host, "0.0.0.0");
  EXPECT_EQ(port, 0);
  ASSERT_TRUE(SplitHostPort("[::]:0", &host, &port, PortRule::kAllowZero));
  EXPECT_EQ(host, "::");
  EXPECT_FALSE(SplitHostPort("host:65536", &host, &port, PortRule::kAllowZero));
}

}  // namespace
}  // namespace ferry
