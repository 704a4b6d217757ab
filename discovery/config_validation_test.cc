#include "discovery/config_validation.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace ferry::discovery {
namespace {

template <typename T>
T FromText(const std::string& text) {
  T message;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &message)) << text;
  return message;
}

std::string ErrorOf(const absl::Status& status) {
  if (!status.ok()) {
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  }
  return std::string(status.message());
}

TEST(ListenAddressTest, AcceptsHostPortWithPortZero) {
  for (const char* address : {"127.0.0.1:7443", "0.0.0.0:0", "[::1]:7443", "[::]:0", "localhost:80",
                              "Gateway.Example.com:65535", "127.0.0.1:1"}) {
    EXPECT_EQ(ErrorOf(ValidateListenAddress(address, "listen")), "") << address;
  }
}

TEST(ListenAddressTest, RefusesWhatCannotBeBound) {
  struct Case {
    const char* address;
    const char* error;
  } cases[] = {
      {"",
       "listen: is empty; give host:port with a port from 0 to 65535 (e.g. 127.0.0.1:7443, "
       "[::1]:7443, 0.0.0.0:0)"},
      {":80",
       "listen: \":80\" is not host:port with a port from 0 to 65535 (e.g. "
       "127.0.0.1:7443, [::1]:7443, 0.0.0.0:0)"},
      {"127.0.0.1:65536",
       "listen: \"127.0.0.1:65536\" is not host:port with a port from 0 to "
       "65535 (e.g. 127.0.0.1:7443, [::1]:7443, 0.0.0.0:0)"},
      {"::1:80",
       "listen: \"::1:80\" is not host:port with a port from 0 to 65535 (e.g. "
       "127.0.0.1:7443, [::1]:7443, 0.0.0.0:0)"},
      {"[127.0.0.1]:80",
       "listen: \"[127.0.0.1]:80\": \"127.0.0.1\" in brackets is not an IPv6 address"},
      {"my_host:80",
       "listen: \"my_host:80\": the host \"my_host\" has the character \"_\"; DNS "
       "names hold a-z, 0-9, '-' and dots"},
      {"-bad.example:80",
       "listen: \"-bad.example:80\": the host \"-bad.example\" has the label "
       "\"-bad\" that starts or ends with '-'"},
      {"10.0.0:80",
       "listen: \"10.0.0:80\": the host \"10.0.0\" is neither an IP address nor a "
       "host name (its last label is a number)"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(ErrorOf(ValidateListenAddress(c.address, "listen")), c.error) << c.address;
  }
}

TEST(DialAddressTest, NeedsARealPort) {
  EXPECT_EQ(ErrorOf(ValidateDialAddress("intermediate.example.com:7443", "x")), "");
  EXPECT_EQ(ErrorOf(ValidateDialAddress("[fd00::1]:7443", "x")), "");
  EXPECT_EQ(ErrorOf(ValidateDialAddress("127.0.0.1:0", "intermediates[0]")),
            "intermediates[0]: \"127.0.0.1:0\" is not host:port with a port from 1 to 65535 "
            "(e.g. intermediate.example.com:7443, 10.0.0.5:7443)");
}

TEST(DnsNameTest, AcceptsAndRefuses) {
  for (const char* name : {"ferry.internal", "ferry.internal.", "a", "x-1.y-2.z"}) {
    EXPECT_EQ(ErrorOf(ValidateDnsName(name, "dns_zone")), "") << name;
  }
  const std::string long_label(64, 'a');
  std::string long_name;
  for (int i = 0; i < 3; ++i) long_name += std::string(63, 'a') + ".";
  long_name += std::string(62, 'b');  // 254 characters.
  struct Case {
    std::string name;
    std::string error;
  } cases[] = {
      {"", "dns_zone: is empty; give a DNS name such as \"ferry.internal\""},
      {".", "dns_zone: \".\" has an empty label (two dots in a row, or a leading dot)"},
      {".ferry", "dns_zone: \".ferry\" has an empty label (two dots in a row, or a leading dot)"},
      {long_label + ".x", "dns_zone: \"" + long_label + ".x\" has the label \"" + long_label +
                              "\" of 64 characters; at most 63"},
      {long_name, "dns_zone: \"" + long_name +
                      "\" is 254 characters long; a DNS name has at "
                      "most 253"},
      {"ferry.internal-",
       "dns_zone: \"ferry.internal-\" has the label \"internal-\" that starts "
       "or ends with '-'"},
      {"zone.123",
       "dns_zone: \"zone.123\" is neither an IP address nor a host name (its last "
       "label is a number)"},
  };
  for (const Case& c : cases) EXPECT_EQ(ErrorOf(ValidateDnsName(c.name, "dns_zone")), c.error);
}

TEST(VipPoolCidrTest, ParsesNetworkAndPrefix) {
  struct Case {
    const char* cidr;
    uint32_t network;
    int prefix;
  } cases[] = {
      {"10.100.0.0/24", 0x0a640000, 24},
      {"10.0.0.0/8", 0x0a000000, 8},
      {"192.168.1.4/30", 0xc0a80104, 30},
  };
  for (const Case& c : cases) {
    uint32_t network = 0;
    int prefix = 0;
    ASSERT_TRUE(ParseVipPoolCidr(c.cidr, "cidr", &network, &prefix).ok()) << c.cidr;
    EXPECT_EQ(network, c.network) << c.cidr;
    EXPECT_EQ(prefix, c.prefix) << c.cidr;
  }
  uint32_t network = 0;
  int prefix = 0;
  EXPECT_EQ(ErrorOf(ParseVipPoolCidr("10.0.0.0/+8", "cidr", &network, &prefix)),
            "cidr: \"10.0.0.0/+8\": the prefix \"+8\" is not a number; write it as "
            "address/prefix, e.g. \"10.100.0.0/24\"");
  EXPECT_EQ(ErrorOf(ParseVipPoolCidr("10.0.0.0/", "cidr", &network, &prefix)),
            "cidr: \"10.0.0.0/\": the prefix \"\" is not a number; write it as address/prefix, "
            "e.g. \"10.100.0.0/24\"");
  EXPECT_EQ(ErrorOf(ParseVipPoolCidr("", "cidr", &network, &prefix)),
            "cidr: is empty; write it as address/prefix, e.g. \"10.100.0.0/24\"");
}

TEST(ValidateConfigTest, EmptyIntermediateConfigIsValid) {
  EXPECT_EQ(ErrorOf(ValidateConfig(v1::IntermediateConfig())), "");
}

TEST(ValidateConfigTest, AdjacentPoolsDoNotOverlap) {
  EXPECT_EQ(ErrorOf(ValidateConfig(FromText<v1::IntermediateConfig>(R"pb(
              vip_pools { cidr: "10.100.0.0/24" }
              vip_pools { cidr: "10.100.1.0/24" }
              vip_pools { cidr: "10.101.0.0/16" }
            )pb"))),
            "");
  EXPECT_EQ(ErrorOf(ValidateConfig(FromText<v1::IntermediateConfig>(R"pb(
              vip_pools { cidr: "10.100.1.0/24" }
              vip_pools { cidr: "10.0.0.0/8" }
            )pb"))),
            "vip_pools[1].cidr: 10.0.0.0/8 overlaps vip_pools[0].cidr 10.100.1.0/24; pools must "
            "not share addresses");
}

TEST(ValidateConfigTest, PortZeroListenersNeverCollide) {
  EXPECT_EQ(ErrorOf(ValidateConfig(FromText<v1::IntermediateConfig>(R"pb(
              listen: "127.0.0.1:0"
              admin_listen: "127.0.0.1:0"
              dns_listen: "127.0.0.1:0"
            )pb"))),
            "");
  EXPECT_EQ(ErrorOf(ValidateConfig(FromText<v1::AgentConfig>(R"pb(
              intermediates: "i:1"
              exposures { service: "a" listen: "127.0.0.1:0" }
              exposures { service: "b" listen: "127.0.0.1:0" }
              exposures { service: "a" listen: "127.0.0.1:8080" }
            )pb"))),
            "");
}

TEST(ValidateConfigTest, ServicesGoThroughTheSharedServiceSpecValidation) {
  EXPECT_EQ(ErrorOf(ValidateConfig(FromText<v1::ConnectorConfig>(R"pb(
              intermediates: "i:1"
              services {
                name: "web"
                protocol: PROTOCOL_TCP
                backends { address: "127.0.0.1:80" }
              }
              services {
                name: "dns"
                protocol: PROTOCOL_UDP
                backends { address: "srv://nope" }
              }
            )pb"))),
            "services[1].backends[0].address: \"srv://nope\" is not srv://_service._proto.name");
}

TEST(ValidateConfigTest, DnsTtlBoundsUseDefaultsWhenUnset) {
  // Only max set, above the default min: fine. Only max set, below it: names the default.
  EXPECT_EQ(
      ErrorOf(ValidateConfig(FromText<v1::ConnectorConfig>(R"pb(intermediates: "i:1"
                                                                dns_max_ttl { seconds: 6 })pb"))),
      "");
  EXPECT_EQ(ErrorOf(ValidateConfig(FromText<v1::ConnectorConfig>(R"pb(intermediates: "i:1"
                                                                      dns_max_ttl {
                                                                        nanos: 500000000
                                                                      })pb"))),
            "dns_max_ttl: 0.5s is less than dns_min_ttl 5s (the default); the minimum must not "
            "exceed the maximum");
  EXPECT_EQ(ErrorOf(ValidateConfig(FromText<v1::ConnectorConfig>(
                R"pb(intermediates: "i:1"
                     dns_min_ttl { seconds: -1 nanos: -250000000 })pb"))),
            "dns_min_ttl: must be positive, got -1.25s; leave it out for the default");
}

TEST(ValidateConfigTest, DnsServersAreIpAddressesWithOptionalPorts) {
  for (const char* good : {"127.0.0.1", "127.0.0.1:5353", "::1", "[::1]:53"}) {
    EXPECT_EQ(ErrorOf(ValidateConfig(FromText<v1::ConnectorConfig>(
                  absl::StrCat("intermediates: \"i:1\" dns_servers: \"", good, "\"")))),
              "")
        << good;
  }
  EXPECT_EQ(ErrorOf(ValidateConfig(
                FromText<v1::ConnectorConfig>(R"pb(intermediates: "i:1"
                                                   dns_servers: "127.0.0.1"
                                                   dns_servers: "ns1.example:53")pb"))),
            "dns_servers[1]: \"ns1.example:53\" is not an IP address, with or without a port (e.g. "
            "127.0.0.1, 127.0.0.1:5353, [::1]:53)");
}

TEST(ValidateConfigTest, RelayWorkersUpToTheBound) {
  EXPECT_EQ(ErrorOf(ValidateConfig(FromText<v1::RelayConfig>(
                absl::StrCat("intermediates: \"i:1\" workers: ", kMaxWorkers)))),
            "");
}

TEST(ValidateConfigTest, AgentInterceptInterface) {
  struct Case {
    const char* text;
    const char* error;
  };
  const Case cases[] = {
      {R"pb(intermediates: "i:1" intercept: true)pb", ""},
      {R"pb(intermediates: "i:1" intercept: true intercept_interface: "ferry0")pb", ""},
      {R"pb(intermediates: "i:1" intercept_interface: "lo")pb",
       "intercept_interface: is set but intercept is false; set intercept: true or remove it"},
      {R"pb(intermediates: "i:1" intercept: true intercept_interface: "a-much-too-long-name")pb",
       "intercept_interface: \"a-much-too-long-name\" is not an interface name (1 to 15 "
       "characters, no '/', ':' or spaces)"},
      {R"pb(intermediates: "i:1" intercept: true intercept_interface: "eth0:1")pb",
       "intercept_interface: \"eth0:1\" is not an interface name (1 to 15 characters, no '/', "
       "':' or spaces)"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(ErrorOf(ValidateConfig(FromText<v1::AgentConfig>(c.text))), c.error) << c.text;
  }
}

}  // namespace
}  // namespace ferry::discovery
