#include "controlplane/crc32c.h"

#include <cstdint>
#include <string>

#include "gtest/gtest.h"

namespace ferry::controlplane {
namespace {

struct Vector {
  const char* name;
  std::string data;
  uint32_t crc;
};

// Check values from RFC 3720, appendix B.4, and the common "123456789" check string.
TEST(Crc32cTest, MatchesPublishedVectors) {
  std::string ascending(32, '\0');
  std::string descending(32, '\0');
  for (int i = 0; i < 32; ++i) {
    ascending[i] = static_cast<char>(i);
    descending[i] = static_cast<char>(31 - i);
  }
  const Vector vectors[] = {
      {"empty", "", 0x00000000u},
      {"check string", "123456789", 0xE3069283u},
      {"32 zeros", std::string(32, '\0'), 0x8A9136AAu},
      {"32 ones", std::string(32, '\xff'), 0x62A8AB43u},
      {"ascending", ascending, 0x46DD794Eu},
      {"descending", descending, 0x113FDB5Cu},
  };
  for (const Vector& v : vectors) {
    EXPECT_EQ(Crc32c(v.data), v.crc) << v.name;
  }
}

TEST(Crc32cTest, ExtendEqualsWholeForEverySplit) {
  const std::string data = "the quick brown fox jumps over the lazy dog";
  for (size_t split = 0; split <= data.size(); ++split) {
    const absl::string_view all(data);
    EXPECT_EQ(Crc32cExtend(Crc32c(all.substr(0, split)), all.substr(split)), Crc32c(data))
        << "split at " << split;
  }
}

TEST(Crc32cTest, MaskRoundTripsAndChangesTheValue) {
  for (uint32_t crc : {0u, 1u, 0xE3069283u, 0xFFFFFFFFu}) {
    EXPECT_NE(MaskCrc32c(crc), crc);
    EXPECT_EQ(UnmaskCrc32c(MaskCrc32c(crc)), crc);
  }
}

}  // namespace
}  // namespace ferry::controlplane
