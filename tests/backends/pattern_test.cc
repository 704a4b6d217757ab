#include "tests/backends/pattern.h"

#include <string>

#include "gtest/gtest.h"

namespace ferry::backends {
namespace {

TEST(PatternTest, BytesFollowTheFormula) {
  EXPECT_EQ(PatternByte(0), 7);
  EXPECT_EQ(PatternByte(1), 138);
  EXPECT_EQ(PatternByte(2), 13);  // 269 & 0xff
  EXPECT_EQ(PatternByte(256), PatternByte(0));
  const std::string bytes = PatternBytes(0, 300);
  for (size_t i = 0; i < bytes.size(); ++i) {
    ASSERT_EQ(static_cast<uint8_t>(bytes[i]), (i * 131 + 7) & 0xff) << "byte " << i;
  }
}

TEST(PatternTest, SliceAtAnOffsetMatchesTheWholeStream) {
  const std::string whole = PatternBytes(0, 5000);
  EXPECT_EQ(PatternBytes(1234, 777), whole.substr(1234, 777));
}

struct Sha256Case {
  std::string input;
  std::string hex;
};

TEST(Sha256Test, KnownAnswers) {
  // FIPS 180-2 examples.
  const Sha256Case cases[] = {
      {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
      {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
      {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
  };
  for (const Sha256Case& c : cases) EXPECT_EQ(Sha256Hex(c.input), c.hex) << '"' << c.input << '"';
}

TEST(Sha256Test, IncrementalEqualsOneShot) {
  const std::string data = PatternBytes(0, 100000);
  Sha256 sha;
  sha.Update(absl::string_view(data).substr(0, 1));
  sha.Update(absl::string_view(data).substr(1, 65535));
  sha.Update(absl::string_view(data).substr(65536));
  EXPECT_EQ(sha.HexDigest(), Sha256Hex(data));
}

TEST(Sha256Test, PatternDigestMatchesTheMaterializedPattern) {
  // Sizes around the 64 KiB chunk PatternSha256Hex works in.
  for (uint64_t size : {0ull, 1ull, 65535ull, 65536ull, 65537ull, 200000ull}) {
    EXPECT_EQ(PatternSha256Hex(size), Sha256Hex(PatternBytes(0, size))) << "size " << size;
  }
}

}  // namespace
}  // namespace ferry::backends
