#include "discovery/config_error.h"

#include <string>

#include "gtest/gtest.h"

namespace ferry::discovery {
namespace {

TEST(ConfigErrorTest, FormatsSourceLocationPathAndReason) {
  struct Case {
    ConfigLocation where;
    const char* path;
    const char* expected;
  } cases[] = {
      {{3, 7}, "services[0].name", "a.yaml:3:7: services[0].name: bad"},
      {{}, "intermediates", "a.yaml: intermediates: bad"},
      {{2, 1}, "", "a.yaml:2:1: bad"},
      {{}, "", "a.yaml: bad"},
  };
  for (const Case& c : cases) {
    const absl::Status status = ConfigError("a.yaml", c.where, c.path, "bad");
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(status.message(), c.expected);
  }
}

TEST(ConfigLocationsTest, FindsThePathOrItsClosestWrittenParent) {
  ConfigLocations locations;
  locations.Record("services", {2, 1});
  locations.Record("services[1]", {9, 5});
  locations.Record("services[1].backends", {12, 5});
  locations.Record("services[1].backends[0]", {13, 9});
  locations.Record("services[1].backends[0].address", {13, 11});

  EXPECT_EQ(locations.Find("services[1].backends[0].address").line, 13);
  EXPECT_EQ(locations.Find("services[1].backends[0].address").column, 11);
  EXPECT_EQ(locations.Find("services[1].backends[0].weight").column, 9);  // Not written.
  EXPECT_EQ(locations.Find("services[1].health_check.interval").line, 9);
  EXPECT_EQ(locations.Find("services[4].name").line, 2);
  EXPECT_EQ(locations.Find("listen").line, 0);
  EXPECT_EQ(locations.Find("").line, 0);
}

TEST(ConfigLocationsTest, FirstRecordOfAPathWins) {
  ConfigLocations locations;
  locations.Record("tls", {4, 1});
  locations.Record("tls", {8, 1});
  EXPECT_EQ(locations.Find("tls").line, 4);
}

}  // namespace
}  // namespace ferry::discovery
