#include "controlplane/sessions_service.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ferry {
namespace {

using ::testing::HasSubstr;

TEST(ParseServiceRefTest, ServiceAloneOrWithTenant) {
  absl::StatusOr<ServiceRef> plain = ParseServiceRef("ollama-api");
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->service, "ollama-api");
  EXPECT_EQ(plain->tenant, "");

  absl::StatusOr<ServiceRef> qualified = ParseServiceRef("ollama-api.globex");
  ASSERT_TRUE(qualified.ok()) << qualified.status();
  EXPECT_EQ(qualified->service, "ollama-api");
  EXPECT_EQ(qualified->tenant, "globex");
}

TEST(ParseServiceRefTest, RefusesMalformedNamesSayingWhy) {
  struct Case {
    std::string text;
    std::string why;
  };
  for (const Case& c : std::vector<Case>{
           {"", "is empty"},
           {"a.b.c", "2 dots"},
           {"Ollama", "upper-case"},
           {".acme", "service"},
           {"web.", "tenant"},
           {"web.Acme", "upper-case"},
       }) {
    absl::StatusOr<ServiceRef> ref = ParseServiceRef(c.text);
    EXPECT_TRUE(absl::IsInvalidArgument(ref.status())) << c.text << ": " << ref.status();
    EXPECT_THAT(ref.status().message(), HasSubstr("service: ")) << c.text;
    EXPECT_THAT(ref.status().message(), HasSubstr(c.why)) << c.text;
  }
}

}  // namespace
}  // namespace ferry
