#include "common/grpc_status.h"

#include "gtest/gtest.h"

namespace ferry {
namespace {

TEST(GrpcStatusTest, MapsEveryCodeOneToOne) {
  for (int code = 0; code <= 16; ++code) {
    const absl::Status in(static_cast<absl::StatusCode>(code), code == 0 ? "" : "what to fix");
    const grpc::Status out = ToGrpcStatus(in);
    EXPECT_EQ(static_cast<int>(out.error_code()), code);
    if (code != 0) {
      EXPECT_EQ(out.error_message(), "what to fix");
    }
    EXPECT_EQ(FromGrpcStatus(out), in);
  }
}

}  // namespace
}  // namespace ferry
