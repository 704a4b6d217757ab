#include "common/unique_fd.h"

#include <fcntl.h>
#include <unistd.h>

#include <utility>

#include "gtest/gtest.h"

namespace ferry {
namespace {

// True while `fd` names an open descriptor of this process.
bool IsOpen(int fd) { return fcntl(fd, F_GETFD) != -1; }

int OpenDevNull() {
  const int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0);
  return fd;
}

TEST(UniqueFdTest, DefaultHoldsNothing) {
  UniqueFd fd;
  EXPECT_EQ(fd.get(), -1);
  EXPECT_FALSE(fd);
}

TEST(UniqueFdTest, NegativeValuesHoldNothing) {
  UniqueFd fd(-7);
  EXPECT_EQ(fd.get(), -1);
  EXPECT_FALSE(fd);
}

TEST(UniqueFdTest, ClosesOnDestruction) {
  const int raw = OpenDevNull();
  {
    UniqueFd fd(raw);
    EXPECT_TRUE(fd);
    EXPECT_EQ(fd.get(), raw);
    EXPECT_TRUE(IsOpen(raw));
  }
  EXPECT_FALSE(IsOpen(raw));
}

TEST(UniqueFdTest, ReleaseGivesUpOwnershipWithoutClosing) {
  const int raw = OpenDevNull();
  {
    UniqueFd fd(raw);
    EXPECT_EQ(fd.release(), raw);
    EXPECT_FALSE(fd);
    EXPECT_EQ(fd.release(), -1);
  }
  EXPECT_TRUE(IsOpen(raw));
  close(raw);
}

TEST(UniqueFdTest, ResetClosesTheOldDescriptorAndTakesTheNew) {
  const int first = OpenDevNull();
  const int second = OpenDevNull();
  UniqueFd fd(first);
  fd.reset(second);
  EXPECT_FALSE(IsOpen(first));
  EXPECT_TRUE(IsOpen(second));
  EXPECT_EQ(fd.get(), second);
  fd.reset();
  EXPECT_FALSE(IsOpen(second));
  EXPECT_FALSE(fd);
}

TEST(UniqueFdTest, ResetToTheHeldDescriptorKeepsItOpen) {
  const int raw = OpenDevNull();
  UniqueFd fd(raw);
  fd.reset(raw);
  EXPECT_TRUE(IsOpen(raw));
  EXPECT_EQ(fd.get(), raw);
}

TEST(UniqueFdTest, MoveConstructionTransfersOwnership) {
  const int raw = OpenDevNull();
  UniqueFd from(raw);
  UniqueFd to(std::move(from));
  EXPECT_FALSE(from);  // NOLINT(bugprone-use-after-move): moved-from state is part of the contract.
  EXPECT_EQ(to.get(), raw);
  EXPECT_TRUE(IsOpen(raw));
}

TEST(UniqueFdTest, MoveAssignmentClosesTheTargetsOldDescriptor) {
  const int old_raw = OpenDevNull();
  const int new_raw = OpenDevNull();
  UniqueFd to(old_raw);
  UniqueFd from(new_raw);
  to = std::move(from);
  EXPECT_FALSE(IsOpen(old_raw));
  EXPECT_TRUE(IsOpen(new_raw));
  EXPECT_EQ(to.get(), new_raw);
  EXPECT_FALSE(from);  // NOLINT(bugprone-use-after-move)
}

TEST(UniqueFdTest, SelfMoveAssignmentKeepsTheDescriptor) {
  const int raw = OpenDevNull();
  UniqueFd fd(raw);
  UniqueFd& alias = fd;
  fd = std::move(alias);
  EXPECT_EQ(fd.get(), raw);
  EXPECT_TRUE(IsOpen(raw));
}

}  // namespace
}  // namespace ferry
