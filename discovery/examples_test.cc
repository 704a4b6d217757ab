// Every file in config/examples/ loads through the real loader and validator, and the
// connector example keeps its promises: the services it shows, and an Ollama stanza that is
// switched on by deleting exactly one line.
#include <dirent.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "discovery/config_loader.h"
#include "ferry/v1/config.pb.h"
#include "gtest/gtest.h"

namespace ferry::discovery {
namespace {

std::string ExamplesDir() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  EXPECT_NE(srcdir, nullptr);
  EXPECT_NE(workspace, nullptr);
  return absl::StrCat(srcdir, "/", workspace, "/config/examples");
}

std::string ExamplePath(const std::string& name) { return absl::StrCat(ExamplesDir(), "/", name); }

std::string ReadExample(const std::string& name) {
  std::ifstream in(ExamplePath(name));
  EXPECT_TRUE(in.good()) << name;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

const v1::ServiceSpec* FindService(const v1::ConnectorConfig& config, const std::string& name) {
  for (const v1::ServiceSpec& spec : config.services()) {
    if (spec.name() == name) return &spec;
  }
  return nullptr;
}

TEST(ExamplesTest, EveryExampleLoadsAndValidates) {
  DIR* dir = opendir(ExamplesDir().c_str());
  ASSERT_NE(dir, nullptr) << ExamplesDir();
  std::set<std::string> names;
  while (const dirent* entry = readdir(dir)) {
    const std::string name = entry->d_name;
    if (name != "." && name != ".." && name != "BUILD.bazel") names.insert(name);
  }
  closedir(dir);
  EXPECT_EQ(names, (std::set<std::string>{"agent.yaml", "connector.yaml", "intermediate.yaml",
                                          "relay.yaml"}))
      << "a new example needs a line in this test saying which config it is";

  for (const std::string& name : names) {
    const std::string path = ExamplePath(name);
    absl::Status status;
    if (name == "intermediate.yaml") {
      status = LoadConfigFile<v1::IntermediateConfig>(path).status();
    } else if (name == "relay.yaml") {
      status = LoadConfigFile<v1::RelayConfig>(path).status();
    } else if (name == "connector.yaml") {
      status = LoadConfigFile<v1::ConnectorConfig>(path).status();
    } else if (name == "agent.yaml") {
      status = LoadConfigFile<v1::AgentConfig>(path).status();
    }
    EXPECT_TRUE(status.ok()) << status;
  }
}

TEST(ExamplesTest, ExamplesSetWhatTheirCommentsDescribe) {
  absl::StatusOr<v1::IntermediateConfig> intermediate =
      LoadConfigFile<v1::IntermediateConfig>(ExamplePath("intermediate.yaml"));
  ASSERT_TRUE(intermediate.ok()) << intermediate.status();
  EXPECT_EQ(intermediate->dns_zone(), "ferry.internal");
  EXPECT_EQ(intermediate->dns_ttl().seconds(), 30);
  ASSERT_EQ(intermediate->vip_pools_size(), 2);
  EXPECT_EQ(intermediate->vip_pools(0).cidr(), "10.100.0.0/24");

  absl::StatusOr<v1::AgentConfig> agent =
      LoadConfigFile<v1::AgentConfig>(ExamplePath("agent.yaml"));
  ASSERT_TRUE(agent.ok()) << agent.status();
  ASSERT_EQ(agent->exposures_size(), 3);
  EXPECT_EQ(agent->exposures(2).service(), "ollama-api");
  EXPECT_EQ(agent->exposures(2).listen(), "127.0.0.1:11434");
}

TEST(ExamplesTest, ConnectorExampleShowsEachKindOfService) {
  absl::StatusOr<v1::ConnectorConfig> config =
      LoadConfigFile<v1::ConnectorConfig>(ExamplePath("connector.yaml"));
  ASSERT_TRUE(config.ok()) << config.status();

  const v1::ServiceSpec* web = FindService(*config, "demo-web");
  ASSERT_NE(web, nullptr);
  EXPECT_EQ(web->protocol(), v1::PROTOCOL_TCP);
  EXPECT_EQ(web->health_check().http().path(), "/healthz");

  const v1::ServiceSpec* tcp_echo = FindService(*config, "echo-tcp");
  ASSERT_NE(tcp_echo, nullptr);
  EXPECT_EQ(tcp_echo->protocol(), v1::PROTOCOL_TCP);
  EXPECT_TRUE(tcp_echo->health_check().has_tcp());

  const v1::ServiceSpec* udp_echo = FindService(*config, "echo-udp");
  ASSERT_NE(udp_echo, nullptr);
  EXPECT_EQ(udp_echo->protocol(), v1::PROTOCOL_UDP);
  EXPECT_EQ(udp_echo->health_check().udp().send(), "ping");

  const v1::ServiceSpec* dns = FindService(*config, "inventory-api");
  ASSERT_NE(dns, nullptr);
  ASSERT_EQ(dns->backends_size(), 1);
  EXPECT_TRUE(absl::StartsWith(dns->backends(0).address(), "dns://"));

  // Shipped disabled.
  EXPECT_EQ(FindService(*config, "ollama-api"), nullptr);
  EXPECT_EQ(config->services_size(), 4);
}

TEST(ExamplesTest, DeletingOneLineEnablesTheOllamaStanza) {
  const std::string text = ReadExample("connector.yaml");
  std::vector<std::string> kept;
  int removed = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StripAsciiWhitespace(line) == "!disabled") {
      ++removed;
      continue;
    }
    kept.emplace_back(line);
  }
  ASSERT_EQ(removed, 1) << "the example should have exactly one \"!disabled\" line";

  absl::StatusOr<v1::ConnectorConfig> config =
      LoadConfigText<v1::ConnectorConfig>(absl::StrJoin(kept, "\n"), "connector.yaml (enabled)");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->services_size(), 5);
  const v1::ServiceSpec* ollama = FindService(*config, "ollama-api");
  ASSERT_NE(ollama, nullptr);
  EXPECT_EQ(ollama->protocol(), v1::PROTOCOL_TCP);
  ASSERT_EQ(ollama->backends_size(), 1);
  EXPECT_EQ(ollama->backends(0).address(), "127.0.0.1:11434");
  EXPECT_EQ(ollama->health_check().http().path(), "/api/tags");
}

}  // namespace
}  // namespace ferry::discovery
