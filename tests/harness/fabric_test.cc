// The connector configs the fabric harness writes, loaded through the real
// config loader, so a harness mistake shows up here and not as a connector
// that refuses to start in every end-to-end test.
#include "tests/harness/fabric.h"

#include <string>
#include <vector>

#include "discovery/config_loader.h"
#include "ferry/v1/config.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ferry::harness {
namespace {

using ::testing::ElementsAre;

TEST(ConnectorConfigYamlTest, LoadsAsTheConnectorConfigItDescribes) {
  const TlsFiles tls{"/pki/ca.crt", "/pki/connector-acme-edge-1.crt",
                     "/pki/connector-acme-edge-1.key"};
  const std::string yaml = ConnectorConfigYaml(
      "127.0.0.1:7443", tls,
      {FabricService{"echo-udp", v1::PROTOCOL_UDP, {"127.0.0.1:9001", "127.0.0.1:9002"}, 7007},
       FabricService{"web-http", v1::PROTOCOL_TCP, {"127.0.0.1:8080"}, 0}});
  absl::StatusOr<v1::ConnectorConfig> config =
      discovery::LoadConfigText<v1::ConnectorConfig>(yaml, "connector.yaml");
  ASSERT_TRUE(config.ok()) << config.status() << "\n" << yaml;
  EXPECT_THAT(config->intermediates(), ElementsAre("127.0.0.1:7443"));
  EXPECT_EQ(config->tls().ca_cert(), tls.ca_cert);
  EXPECT_EQ(config->tls().cert(), tls.cert);
  EXPECT_EQ(config->tls().key(), tls.key);
  ASSERT_EQ(config->services_size(), 2);
  const v1::ServiceSpec& udp = config->services(0);
  EXPECT_EQ(udp.name(), "echo-udp");
  EXPECT_EQ(udp.protocol(), v1::PROTOCOL_UDP);
  EXPECT_EQ(udp.port(), 7007u);
  ASSERT_EQ(udp.backends_size(), 2);
  EXPECT_EQ(udp.backends(0).address(), "127.0.0.1:9001");
  EXPECT_EQ(udp.backends(1).address(), "127.0.0.1:9002");
  const v1::ServiceSpec& tcp = config->services(1);
  EXPECT_EQ(tcp.protocol(), v1::PROTOCOL_TCP);
  EXPECT_EQ(tcp.port(), 0u);  // left out: the connector takes the first backend's
}

TEST(ConnectorConfigYamlTest, HealthChecksAndExtraLinesLoad) {
  FabricService web{"web", v1::PROTOCOL_TCP, {"127.0.0.1:8080"}, 0};
  web.health_check.emplace();
  web.health_check->mutable_interval()->set_nanos(200000000);
  web.health_check->set_unhealthy_threshold(2);
  web.health_check->mutable_http()->set_path("/healthz");
  const std::string yaml = ConnectorConfigYaml("127.0.0.1:7443", TlsFiles{"/ca", "/c", "/k"}, {web},
                                               "dns_servers: [\"127.0.0.1:5353\"]\n");
  absl::StatusOr<v1::ConnectorConfig> config =
      discovery::LoadConfigText<v1::ConnectorConfig>(yaml, "connector.yaml");
  ASSERT_TRUE(config.ok()) << config.status() << "\n" << yaml;
  EXPECT_THAT(config->dns_servers(), ElementsAre("127.0.0.1:5353"));
  ASSERT_EQ(config->services_size(), 1);
  const v1::HealthCheck& check = config->services(0).health_check();
  EXPECT_EQ(check.interval().nanos(), 200000000);
  EXPECT_EQ(check.unhealthy_threshold(), 2u);
  EXPECT_EQ(check.http().path(), "/healthz");
}

TEST(ConnectorConfigYamlTest, QuotesPathsThatYamlWouldMisread) {
  const TlsFiles tls{"/tmp/a: b/#ca.crt", "/tmp/\"x\"\\y.crt", "/tmp/k.key"};
  absl::StatusOr<v1::ConnectorConfig> config = discovery::LoadConfigText<v1::ConnectorConfig>(
      ConnectorConfigYaml("127.0.0.1:7443", tls,
                          {FabricService{"echo-udp", v1::PROTOCOL_UDP, {"127.0.0.1:9001"}, 0}}),
      "connector.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->tls().ca_cert(), tls.ca_cert);
  EXPECT_EQ(config->tls().cert(), tls.cert);
}

TEST(TenantPkiTest, IssuesEachRoleForItsTenant) {
  absl::StatusOr<DevPki*> pki = SharedDevPki();
  ASSERT_TRUE(pki.ok()) << pki.status();
  TenantPki acme(**pki, "acme");
  absl::StatusOr<TlsFiles> agent = acme.Agent("laptop");
  absl::StatusOr<TlsFiles> connector = acme.Connector("edge-1");
  ASSERT_TRUE(agent.ok()) << agent.status();
  ASSERT_TRUE(connector.ok()) << connector.status();
  EXPECT_NE(agent->cert, connector->cert);
  EXPECT_EQ(agent->ca_cert, (*pki)->ca_cert());
  // The same identity again is the same files.
  absl::StatusOr<TlsFiles> again = acme.Agent("laptop");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->cert, agent->cert);
  EXPECT_FALSE(acme.Agent("Not A Label").ok());
}

}  // namespace
}  // namespace ferry::harness
