#include "dataplane/frame.h"

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "dataplane/testing/frame_builder.h"
#include "gtest/gtest.h"

namespace ferry::dataplane {
namespace {

using test::FrameBuilder;

// A DATA|OPEN frame written out by hand from the wire layout in frame.h, so that
// the codec is checked against the spec rather than against itself.
const std::vector<uint8_t> kGoldenFrame = {
    0x2F, 0x01, 0x01, 0x01,                          // magic, version, DATA, OPEN
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,  // session_id
    0x0A, 0x0B, 0x0C, 0x0D,                          // service_id
    0x11, 0x22, 0x33, 0x44,                          // flow_id
    0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02,  // counter
    'h',  'i',  '!',                                 // payload
    0xF0, 0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7,  // tag
    0xF8, 0xF9, 0xFA, 0xFB, 0xFC, 0xFD, 0xFE, 0xFF,
};

FrameHeader GoldenHeader() {
  FrameHeader header;
  header.type = FrameType::kData;
  header.flags = kFlagOpen;
  header.session_id = 0x0102030405060708;
  header.service_id = 0x0A0B0C0D;
  header.flow_id = 0x11223344;
  header.counter = 0x8000000000000102;
  return header;
}

TEST(FrameConstantsTest, MatchTheWireFormat) {
  EXPECT_EQ(kHeaderSize, 28u);
  EXPECT_EQ(kTagSize, 16u);
  EXPECT_EQ(kMaxFrameSize, 65535u);
  EXPECT_EQ(kMinFrameSize, 44u);
  EXPECT_EQ(kMaxPayloadSize, 65535u - 44u);
  EXPECT_EQ(FrameSize(0), 44u);
  EXPECT_EQ(FrameSize(1400), 1444u);
}

TEST(DecodeFrameTest, DecodesHandWrittenFrame) {
  FrameResult<FrameView> result = DecodeFrame(kGoldenFrame);
  ASSERT_TRUE(result.ok()) << FrameErrorName(result.error());
  EXPECT_EQ(result->header, GoldenHeader());
  EXPECT_TRUE(result->header.has_open());
  EXPECT_FALSE(result->header.has_fin());
  EXPECT_EQ(std::string(result->payload.begin(), result->payload.end()), "hi!");
  EXPECT_EQ(result->tag.size(), kTagSize);
  EXPECT_EQ(result->tag.front(), 0xF0);
  EXPECT_EQ(result->tag.back(), 0xFF);
  EXPECT_EQ(result->size(), kGoldenFrame.size());
}

TEST(DecodeFrameTest, SpansPointIntoTheCallersBuffer) {
  FrameResult<FrameView> result = DecodeFrame(kGoldenFrame);
  ASSERT_TRUE(result.ok());
  const uint8_t* base = kGoldenFrame.data();
  EXPECT_EQ(result->header_bytes.data(), base);
  EXPECT_EQ(result->header_bytes.size(), kHeaderSize);
  EXPECT_EQ(result->payload.data(), base + kHeaderSize);
  EXPECT_EQ(result->payload.size(), 3u);
  EXPECT_EQ(result->tag.data(), base + kHeaderSize + 3);
}

TEST(DecodeFrameTest, AcceptsEveryTypeAndFlagCombination) {
  const FrameType kTypes[] = {FrameType::kData,  FrameType::kClose,    FrameType::kKeepalive,
                              FrameType::kProbe, FrameType::kProbeAck, FrameType::kWindow};
  const uint8_t kFlags[] = {0, kFlagOpen, kFlagFin, kFlagOpen | kFlagFin};
  for (FrameType type : kTypes) {
    for (uint8_t flags : kFlags) {
      std::vector<uint8_t> frame = FrameBuilder().Type(type).Flags(flags).Build();
      FrameResult<FrameView> result = DecodeFrame(frame);
      ASSERT_TRUE(result.ok()) << FrameTypeName(type) << " flags " << int{flags};
      EXPECT_EQ(result->header.type, type);
      EXPECT_EQ(result->header.flags, flags);
      EXPECT_EQ(result->header.has_open(), (flags & kFlagOpen) != 0);
      EXPECT_EQ(result->header.has_fin(), (flags & kFlagFin) != 0);
    }
  }
}

TEST(DecodeFrameTest, DecodesExtremeFieldValues) {
  for (uint64_t wide : {uint64_t{0}, ~uint64_t{0}}) {
    const uint32_t narrow = static_cast<uint32_t>(wide);
    std::vector<uint8_t> frame =
        FrameBuilder().SessionId(wide).ServiceId(narrow).FlowId(narrow).Counter(wide).Build();
    FrameResult<FrameView> result = DecodeFrame(frame);
    ASSERT_TRUE(result.ok());
    EXPECT_EQ(result->header.session_id, wide);
    EXPECT_EQ(result->header.service_id, narrow);
    EXPECT_EQ(result->header.flow_id, narrow);
    EXPECT_EQ(result->header.counter, wide);
  }
}

TEST(DecodeFrameTest, AcceptsSmallestAndLargestFrames) {
  std::vector<uint8_t> smallest = FrameBuilder().Type(FrameType::kKeepalive).Build();
  ASSERT_EQ(smallest.size(), kMinFrameSize);
  FrameResult<FrameView> small_result = DecodeFrame(smallest);
  ASSERT_TRUE(small_result.ok());
  EXPECT_TRUE(small_result->payload.empty());

  std::vector<uint8_t> largest = FrameBuilder().PayloadOfSize(kMaxPayloadSize).Build();
  ASSERT_EQ(largest.size(), kMaxFrameSize);
  FrameResult<FrameView> large_result = DecodeFrame(largest);
  ASSERT_TRUE(large_result.ok());
  EXPECT_EQ(large_result->payload.size(), kMaxPayloadSize);
}

TEST(DecodeFrameTest, TruncationBelowHeaderPlusTagIsTooShortAtEveryLength) {
  const std::vector<uint8_t> frame = FrameBuilder().Payload("payload").Build();
  for (size_t length = 0; length < kMinFrameSize; ++length) {
    FrameResult<FrameView> result = DecodeFrame(absl::MakeConstSpan(frame.data(), length));
    ASSERT_FALSE(result.ok()) << "length " << length;
    EXPECT_EQ(result.error(), FrameError::kTooShort) << "length " << length;
  }
}

TEST(DecodeFrameTest, TruncationInsidePayloadShortensThePayloadOnly) {
  // The codec cannot tell a cut datagram from a shorter frame; the AEAD tag
  // does (aead_test covers that). What decode must do is stay in bounds.
  const std::vector<uint8_t> frame = FrameBuilder().PayloadOfSize(100).Build();
  for (size_t length = kMinFrameSize; length <= frame.size(); ++length) {
    FrameResult<FrameView> result = DecodeFrame(absl::MakeConstSpan(frame.data(), length));
    ASSERT_TRUE(result.ok()) << "length " << length;
    EXPECT_EQ(result->payload.size(), length - kMinFrameSize);
    EXPECT_EQ(result->tag.data() + kTagSize, frame.data() + length);
  }
}

TEST(DecodeFrameTest, EmptyInputIsTooShort) {
  FrameResult<FrameView> result = DecodeFrame(absl::Span<const uint8_t>());
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error(), FrameError::kTooShort);
}

struct MalformedCase {
  std::string name;
  FrameBuilder builder;
  FrameError expected;
};

class MalformedFrameTest : public ::testing::TestWithParam<MalformedCase> {};

TEST_P(MalformedFrameTest, IsRejectedWithItsError) {
  const std::vector<uint8_t> frame = GetParam().builder.Build();
  FrameResult<FrameView> result = DecodeFrame(frame);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error(), GetParam().expected)
      << "got " << FrameErrorName(result.error()) << ", want "
      << FrameErrorName(GetParam().expected);
}

std::vector<MalformedCase> MalformedCases() {
  std::vector<MalformedCase> cases = {
      {"empty", FrameBuilder().TruncateTo(0), FrameError::kTooShort},
      {"header_only", FrameBuilder().TruncateTo(kHeaderSize), FrameError::kTooShort},
      {"one_byte_short", FrameBuilder().TruncateTo(kMinFrameSize - 1), FrameError::kTooShort},
      {"one_byte_too_long", FrameBuilder().PayloadOfSize(kMaxPayloadSize + 1),
       FrameError::kTooLong},
      {"far_too_long", FrameBuilder().PayloadOfSize(2 * kMaxFrameSize), FrameError::kTooLong},
      // Length is checked before content: a short frame with a bad magic is short.
      {"short_and_bad_magic", FrameBuilder().Magic(0).TruncateTo(10), FrameError::kTooShort},
      {"long_and_bad_magic", FrameBuilder().Magic(0).PayloadOfSize(kMaxFrameSize),
       FrameError::kTooLong},
      // Then magic, version, type, flags, in header order.
      {"bad_magic_and_version", FrameBuilder().Magic(0x30).Version(9), FrameError::kBadMagic},
      {"bad_version_and_type", FrameBuilder().Version(2).RawType(0), FrameError::kBadVersion},
      {"bad_type_and_flags", FrameBuilder().RawType(9).Flags(0xFF), FrameError::kBadType},
  };
  for (uint8_t magic : {0x00, 0x2E, 0x30, 0xAF, 0xF2, 0xFF}) {
    cases.push_back(
        {"magic_" + std::to_string(magic), FrameBuilder().Magic(magic), FrameError::kBadMagic});
  }
  for (uint8_t version : {0, 2, 3, 0x81, 0xFF}) {
    cases.push_back({"version_" + std::to_string(version), FrameBuilder().Version(version),
                     FrameError::kBadVersion});
  }
  for (uint8_t type : {0, 7, 8, 0x10, 0x81, 0xFF}) {
    cases.push_back(
        {"type_" + std::to_string(type), FrameBuilder().RawType(type), FrameError::kBadType});
  }
  for (int bit = 2; bit < 8; ++bit) {
    const uint8_t flag = static_cast<uint8_t>(1u << bit);
    cases.push_back(
        {"flag_bit_" + std::to_string(bit), FrameBuilder().Flags(flag), FrameError::kBadFlags});
    cases.push_back({"flag_bit_" + std::to_string(bit) + "_with_open_fin",
                     FrameBuilder().Flags(flag | kFlagOpen | kFlagFin), FrameError::kBadFlags});
  }
  cases.push_back({"all_flags", FrameBuilder().Flags(0xFF), FrameError::kBadFlags});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(AllErrors, MalformedFrameTest, ::testing::ValuesIn(MalformedCases()),
                         [](const ::testing::TestParamInfo<MalformedCase>& info) {
                           return info.param.name;
                         });

TEST(MalformedFrameTest, TableCoversEveryDecodeError) {
  std::set<FrameError> covered;
  for (const MalformedCase& c : MalformedCases()) covered.insert(c.expected);
  // kBufferTooSmall is an encoding error; decoding never returns it.
  for (size_t i = 0; i < kFrameErrorCount; ++i) {
    const FrameError error = static_cast<FrameError>(i);
    if (error == FrameError::kBufferTooSmall) continue;
    EXPECT_TRUE(covered.count(error)) << FrameErrorName(error) << " has no malformed case";
  }
}

TEST(DecodeFrameTest, EveryInvalidByteInEachCheckedFieldIsRejected) {
  for (int value = 0; value < 256; ++value) {
    const uint8_t byte = static_cast<uint8_t>(value);
    FrameResult<FrameView> magic = DecodeFrame(FrameBuilder().Magic(byte).Build());
    EXPECT_EQ(magic.ok(), byte == kFrameMagic) << "magic " << value;
    FrameResult<FrameView> version = DecodeFrame(FrameBuilder().Version(byte).Build());
    EXPECT_EQ(version.ok(), byte == kFrameVersion) << "version " << value;
    FrameResult<FrameView> type = DecodeFrame(FrameBuilder().RawType(byte).Build());
    EXPECT_EQ(type.ok(), value >= 1 && value <= 6) << "type " << value;
    FrameResult<FrameView> flags = DecodeFrame(FrameBuilder().Flags(byte).Build());
    EXPECT_EQ(flags.ok(), (byte & ~kKnownFlags) == 0) << "flags " << value;
  }
}

TEST(EncodeHeaderTest, WritesTheHandWrittenBytes) {
  std::vector<uint8_t> out(kHeaderSize, 0xEE);
  FrameResult<size_t> written = EncodeHeader(GoldenHeader(), absl::MakeSpan(out));
  ASSERT_TRUE(written.ok()) << FrameErrorName(written.error());
  EXPECT_EQ(*written, kHeaderSize);
  EXPECT_EQ(out, std::vector<uint8_t>(kGoldenFrame.begin(), kGoldenFrame.begin() + kHeaderSize));
}

TEST(EncodeHeaderTest, BufferShorterThanHeaderIsRefusedAndUntouched) {
  for (size_t size = 0; size < kHeaderSize; ++size) {
    std::vector<uint8_t> out(size, 0xEE);
    FrameResult<size_t> written = EncodeHeader(GoldenHeader(), absl::MakeSpan(out));
    ASSERT_FALSE(written.ok()) << "size " << size;
    EXPECT_EQ(written.error(), FrameError::kBufferTooSmall);
    EXPECT_EQ(out, std::vector<uint8_t>(size, 0xEE));
  }
}

TEST(EncodeHeaderTest, RefusesWhatDecodeWouldReject) {
  std::vector<uint8_t> out(kHeaderSize, 0xEE);
  FrameHeader bad_type = GoldenHeader();
  bad_type.type = static_cast<FrameType>(7);
  FrameResult<size_t> type_result = EncodeHeader(bad_type, absl::MakeSpan(out));
  ASSERT_FALSE(type_result.ok());
  EXPECT_EQ(type_result.error(), FrameError::kBadType);

  FrameHeader bad_flags = GoldenHeader();
  bad_flags.flags = 0x04;
  FrameResult<size_t> flags_result = EncodeHeader(bad_flags, absl::MakeSpan(out));
  ASSERT_FALSE(flags_result.ok());
  EXPECT_EQ(flags_result.error(), FrameError::kBadFlags);
  EXPECT_EQ(out, std::vector<uint8_t>(kHeaderSize, 0xEE));
}

TEST(EncodeFrameTest, RoundTripsThroughDecode) {
  const std::string payload = "a flow's bytes";
  std::vector<uint8_t> buffer(FrameSize(payload.size()) + 10, 0);
  std::copy(payload.begin(), payload.end(), buffer.begin() + kHeaderSize);
  FrameHeader header = GoldenHeader();
  header.type = FrameType::kClose;
  header.flags = kFlagFin;
  FrameResult<size_t> size = EncodeFrame(header, payload.size(), absl::MakeSpan(buffer));
  ASSERT_TRUE(size.ok()) << FrameErrorName(size.error());
  EXPECT_EQ(*size, FrameSize(payload.size()));

  FrameResult<FrameView> view = DecodeFrame(absl::MakeConstSpan(buffer.data(), *size));
  ASSERT_TRUE(view.ok()) << FrameErrorName(view.error());
  EXPECT_EQ(view->header, header);
  EXPECT_EQ(std::string(view->payload.begin(), view->payload.end()), payload);
}

TEST(EncodeFrameTest, AgreesWithTheBuilder) {
  std::vector<uint8_t> buffer(FrameSize(3), 0);
  buffer[kHeaderSize] = 'h';
  buffer[kHeaderSize + 1] = 'i';
  buffer[kHeaderSize + 2] = '!';
  ASSERT_TRUE(EncodeFrame(GoldenHeader(), 3, absl::MakeSpan(buffer)).ok());
  std::vector<uint8_t> built = FrameBuilder().Header(GoldenHeader()).Payload("hi!").Build();
  EXPECT_EQ(buffer, built);
}

TEST(EncodeFrameTest, BufferTooSmallForTheFrameIsRefusedAndUntouched) {
  const size_t payload_size = 20;
  for (size_t size = 0; size < FrameSize(payload_size); ++size) {
    std::vector<uint8_t> out(size, 0xEE);
    FrameResult<size_t> result = EncodeFrame(GoldenHeader(), payload_size, absl::MakeSpan(out));
    ASSERT_FALSE(result.ok()) << "size " << size;
    EXPECT_EQ(result.error(), FrameError::kBufferTooSmall) << "size " << size;
    EXPECT_EQ(out, std::vector<uint8_t>(size, 0xEE));
  }
}

TEST(EncodeFrameTest, PayloadLargerThanAFrameIsTooLong) {
  std::vector<uint8_t> out(kMaxFrameSize + 100);
  EXPECT_TRUE(EncodeFrame(GoldenHeader(), kMaxPayloadSize, absl::MakeSpan(out)).ok());
  FrameResult<size_t> result =
      EncodeFrame(GoldenHeader(), kMaxPayloadSize + 1, absl::MakeSpan(out));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error(), FrameError::kTooLong);
  // A size near SIZE_MAX must not wrap around into a small frame.
  FrameResult<size_t> huge = EncodeFrame(GoldenHeader(), ~size_t{0} - 5, absl::MakeSpan(out));
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.error(), FrameError::kTooLong);
}

TEST(FrameErrorNameTest, NamesAreUniqueSnakeCaseLabels) {
  std::set<std::string> names;
  for (size_t i = 0; i < kFrameErrorCount; ++i) {
    const std::string name(FrameErrorName(static_cast<FrameError>(i)));
    EXPECT_NE(name, "unknown");
    EXPECT_FALSE(name.empty());
    for (char c : name) EXPECT_TRUE((c >= 'a' && c <= 'z') || c == '_') << name;
    EXPECT_TRUE(names.insert(name).second) << "duplicate " << name;
  }
  EXPECT_EQ(FrameErrorName(FrameError::kTooShort), "too_short");
  EXPECT_EQ(FrameErrorName(FrameError::kBadFlags), "bad_flags");
  EXPECT_EQ(FrameErrorName(static_cast<FrameError>(kFrameErrorCount)), "unknown");
}

TEST(FrameTypeTest, NamesAndValidity) {
  EXPECT_EQ(FrameTypeName(FrameType::kData), "data");
  EXPECT_EQ(FrameTypeName(FrameType::kClose), "close");
  EXPECT_EQ(FrameTypeName(FrameType::kKeepalive), "keepalive");
  EXPECT_EQ(FrameTypeName(FrameType::kProbe), "probe");
  EXPECT_EQ(FrameTypeName(FrameType::kProbeAck), "probe_ack");
  EXPECT_EQ(FrameTypeName(FrameType::kWindow), "window");
  EXPECT_EQ(FrameTypeName(static_cast<FrameType>(0)), "unknown");
  EXPECT_FALSE(IsValidFrameType(0));
  EXPECT_TRUE(IsValidFrameType(1));
  EXPECT_TRUE(IsValidFrameType(5));
  EXPECT_FALSE(IsValidFrameType(7));
}

TEST(FrameResultDeathTest, ReadingTheWrongAlternativeAborts) {
  FrameResult<size_t> error = FrameError::kBadMagic;
  EXPECT_DEATH((void)error.value(), "value\\(\\) on an error");
  FrameResult<size_t> value = size_t{3};
  EXPECT_DEATH((void)value.error(), "error\\(\\) on a value");
}

}  // namespace
}  // namespace ferry::dataplane
