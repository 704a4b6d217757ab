#include "dataplane/testing/frame_builder.h"

#include <algorithm>
#include <utility>

#include "dataplane/big_endian.h"
#include "glog/logging.h"

namespace ferry::dataplane::test {

FrameBuilder& FrameBuilder::Magic(uint8_t magic) {
  magic_ = magic;
  return *this;
}

FrameBuilder& FrameBuilder::Version(uint8_t version) {
  version_ = version;
  return *this;
}

FrameBuilder& FrameBuilder::Type(FrameType type) { return RawType(static_cast<uint8_t>(type)); }

FrameBuilder& FrameBuilder::RawType(uint8_t type) {
  type_ = type;
  return *this;
}

FrameBuilder& FrameBuilder::Flags(uint8_t flags) {
  flags_ = flags;
  return *this;
}

FrameBuilder& FrameBuilder::SessionId(uint64_t session_id) {
  session_id_ = session_id;
  return *this;
}

FrameBuilder& FrameBuilder::ServiceId(uint32_t service_id) {
  service_id_ = service_id;
  return *this;
}

FrameBuilder& FrameBuilder::FlowId(uint32_t flow_id) {
  flow_id_ = flow_id;
  return *this;
}

FrameBuilder& FrameBuilder::Counter(uint64_t counter) {
  counter_ = counter;
  return *this;
}

FrameBuilder& FrameBuilder::Header(const FrameHeader& header) {
  return Type(header.type)
      .Flags(header.flags)
      .SessionId(header.session_id)
      .ServiceId(header.service_id)
      .FlowId(header.flow_id)
      .Counter(header.counter);
}

FrameBuilder& FrameBuilder::Payload(absl::Span<const uint8_t> payload) {
  payload_.assign(payload.begin(), payload.end());
  return *this;
}

FrameBuilder& FrameBuilder::Payload(absl::string_view payload) {
  payload_.assign(payload.begin(), payload.end());
  return *this;
}

FrameBuilder& FrameBuilder::PayloadOfSize(size_t size, uint8_t fill) {
  payload_.assign(size, fill);
  return *this;
}

FrameBuilder& FrameBuilder::Tag(const std::array<uint8_t, kTagSize>& tag) {
  tag_ = tag;
  return *this;
}

FrameBuilder& FrameBuilder::TruncateTo(size_t size) {
  truncate_to_ = size;
  return *this;
}

std::vector<uint8_t> FrameBuilder::Assemble() const {
  std::vector<uint8_t> frame(FrameSize(payload_.size()));
  uint8_t* p = frame.data();
  p[kMagicOffset] = magic_;
  p[kVersionOffset] = version_;
  p[kTypeOffset] = type_;
  p[kFlagsOffset] = flags_;
  StoreBigEndian64(p + kSessionIdOffset, session_id_);
  StoreBigEndian32(p + kServiceIdOffset, service_id_);
  StoreBigEndian32(p + kFlowIdOffset, flow_id_);
  StoreBigEndian64(p + kCounterOffset, counter_);
  std::copy(payload_.begin(), payload_.end(), p + kHeaderSize);
  std::copy(tag_.begin(), tag_.end(), p + kHeaderSize + payload_.size());
  return frame;
}

std::vector<uint8_t> FrameBuilder::Truncated(std::vector<uint8_t> frame) const {
  if (truncate_to_.has_value() && *truncate_to_ < frame.size()) frame.resize(*truncate_to_);
  return frame;
}

std::vector<uint8_t> FrameBuilder::Build() const { return Truncated(Assemble()); }

std::vector<uint8_t> FrameBuilder::BuildSealed(HopAead& aead) const {
  std::vector<uint8_t> frame = Assemble();
  const AeadStatus status = aead.Seal(absl::MakeSpan(frame), payload_.size());
  CHECK(status == AeadStatus::kOk)
      << "FrameBuilder::BuildSealed: Seal failed with " << AeadStatusName(status);
  return Truncated(std::move(frame));
}

}  // namespace ferry::dataplane::test
