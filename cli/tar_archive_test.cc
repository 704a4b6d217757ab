#include "cli/tar_archive.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ferry::cli {
namespace {

using ::testing::HasSubstr;

const absl::Time kMtime = absl::FromUnixSeconds(1700000000);

std::vector<TarEntry> SampleEntries() {
  return {
      {"MANIFEST.json", 0644, "{}"},
      {"pki/ca.key", 0600, std::string(1000, 'k')},
      {"config/empty.yaml", 0640, ""},
      {"state/journal", 0600, std::string(512, '\0')},
      // Longer than the 100-byte name field: goes through the prefix field.
      {std::string("config/") + std::string(120, 'd') + "/" + std::string(90, 'f'), 0644, "x"},
  };
}

TEST(TarArchiveTest, RoundTripKeepsPathsModesAndBytes) {
  absl::StatusOr<std::string> archive = EncodeTar(SampleEntries(), kMtime);
  ASSERT_TRUE(archive.ok()) << archive.status();
  EXPECT_EQ(archive->size() % kTarBlockSize, 0u);
  absl::StatusOr<std::vector<TarEntry>> decoded = DecodeTar(*archive);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  std::vector<TarEntry> want = SampleEntries();
  ASSERT_EQ(decoded->size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ((*decoded)[i].path, want[i].path);
    EXPECT_EQ((*decoded)[i].mode, want[i].mode) << want[i].path;
    EXPECT_EQ((*decoded)[i].data, want[i].data) << want[i].path;
  }
}

TEST(TarArchiveTest, HeaderIsStandardUstar) {
  absl::StatusOr<std::string> archive = EncodeTar({{"a/b.txt", 0600, "hello"}}, kMtime);
  ASSERT_TRUE(archive.ok());
  EXPECT_EQ(archive->substr(0, 8), std::string("a/b.txt\0", 8));
  EXPECT_EQ(archive->substr(100, 8), std::string("0000600\0", 8));
  EXPECT_EQ(archive->substr(124, 12), std::string("00000000005\0", 12));
  EXPECT_EQ(archive->substr(257, 8), std::string("ustar\0"
                                                 "00",
                                                 8));
  EXPECT_EQ((*archive)[156], '0');
  EXPECT_EQ(archive->substr(512, 5), "hello");
  // Header, one data block, two end blocks.
  EXPECT_EQ(archive->size(), 4 * kTarBlockSize);
}

TEST(TarArchiveTest, EncodeRefusesBadEntries) {
  struct Case {
    const char* label;
    TarEntry entry;
  };
  const Case cases[] = {
      {"empty path", {"", 0644, ""}},
      {"absolute", {"/etc/passwd", 0644, ""}},
      {"directory", {"config/", 0755, ""}},
      {"mode", {"a", 010000, ""}},
      {"name too long", {std::string(101, 'n'), 0644, ""}},
      {"prefix too long", {std::string(200, 'p') + "/x", 0644, ""}},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::string> archive = EncodeTar({c.entry}, kMtime);
    EXPECT_EQ(archive.status().code(), absl::StatusCode::kInvalidArgument) << c.label;
  }
}

TEST(TarArchiveTest, DecodeRefusesDamage) {
  absl::StatusOr<std::string> good = EncodeTar(SampleEntries(), kMtime);
  ASSERT_TRUE(good.ok());
  struct Case {
    const char* label;
    std::string archive;
    absl::StatusCode code;
    const char* message;
  };
  std::string flipped_header = *good;
  flipped_header[kTarBlockSize * 2 + 10] ^= 0x01;  // pki/ca.key's header name field
  std::string gnu_longname = *good;
  gnu_longname[156] = 'L';
  const Case cases[] = {
      {"empty", "", absl::StatusCode::kDataLoss, "no end-of-archive marker"},
      {"no end marker", good->substr(0, good->size() - 2 * kTarBlockSize),
       absl::StatusCode::kDataLoss, "no end-of-archive marker"},
      {"half end marker", good->substr(0, good->size() - kTarBlockSize),
       absl::StatusCode::kDataLoss, "lone zero block"},
      {"cut inside data", good->substr(0, kTarBlockSize * 3 + 100), absl::StatusCode::kDataLoss,
       "truncated inside entry 'pki/ca.key'"},
      {"cut inside header", good->substr(0, 2 * kTarBlockSize + 100), absl::StatusCode::kDataLoss,
       "header block is cut short"},
      {"header bit flip", flipped_header, absl::StatusCode::kDataLoss, "fails its checksum"},
      {"trailing garbage", *good + "garbage", absl::StatusCode::kDataLoss,
       "after its end-of-archive marker"},
      {"type changed without checksum", gnu_longname, absl::StatusCode::kDataLoss,
       "fails its checksum"},
      {"not tar", std::string(kTarBlockSize * 3, 'x'), absl::StatusCode::kDataLoss,
       "fails its checksum"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::vector<TarEntry>> decoded = DecodeTar(c.archive);
    EXPECT_EQ(decoded.status().code(), c.code) << c.label << ": " << decoded.status();
    EXPECT_THAT(std::string(decoded.status().message()), HasSubstr(c.message)) << c.label;
  }
}

// An entry type other than a regular file is refused even with a valid checksum.
TEST(TarArchiveTest, DecodeRefusesNonRegularEntries) {
  absl::StatusOr<std::string> archive = EncodeTar({{"a", 0644, "x"}}, kMtime);
  ASSERT_TRUE(archive.ok());
  for (char type : {'1', '2', '5', 'L', 'x'}) {
    std::string changed = *archive;
    changed[156] = type;
    // Recompute the checksum as a writer of that entry type would have.
    uint32_t sum = 0;
    for (size_t i = 0; i < kTarBlockSize; ++i) {
      sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(changed[i]);
    }
    char field[8];
    snprintf(field, sizeof(field), "%06o", sum);
    changed.replace(148, 6, field, 6);
    absl::StatusOr<std::vector<TarEntry>> decoded = DecodeTar(changed);
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kFailedPrecondition) << type;
    EXPECT_THAT(std::string(decoded.status().message()), HasSubstr("only regular files"));
  }
}

TEST(TarArchiveTest, TrailingZeroRecordPaddingIsAccepted) {
  absl::StatusOr<std::string> archive = EncodeTar({{"a", 0644, "x"}}, kMtime);
  ASSERT_TRUE(archive.ok());
  // GNU tar pads archives to 10240-byte records with zeros.
  std::string padded = *archive + std::string(10240 - archive->size(), '\0');
  absl::StatusOr<std::vector<TarEntry>> decoded = DecodeTar(padded);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->size(), 1u);
}

}  // namespace
}  // namespace ferry::cli
