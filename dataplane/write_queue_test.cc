#include "dataplane/write_queue.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <new>
#include <vector>

#include "absl/status/status.h"
#include "common/unique_fd.h"
#include "dataplane/buffer_pool.h"
#include "gtest/gtest.h"

// Counts every operator new in this test binary, so that a test can check a stretch of code
// allocates nothing.
namespace {
std::atomic<long> g_allocations{0};
}  // namespace

void* operator new(size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t size) { return operator new(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }

namespace ferry::dataplane {
namespace {

std::vector<uint8_t> Pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> bytes(n);
  for (size_t i = 0; i < n; ++i) bytes[i] = static_cast<uint8_t>(seed + i * 7);
  return bytes;
}

// A connected pair of non-blocking AF_UNIX stream sockets; [0] is written to, [1] read from.
struct SocketPair {
  UniqueFd writer;
  UniqueFd reader;
};

SocketPair MakeSocketPair(int send_buffer = 0) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
    ADD_FAILURE() << "socketpair: " << errno;
    return {};
  }
  if (send_buffer > 0) {
    ::setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &send_buffer, sizeof(send_buffer));
  }
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

// Reads whatever is readable now from the non-blocking `fd`.
std::vector<uint8_t> ReadAvailable(int fd) {
  std::vector<uint8_t> out;
  uint8_t buf[65536];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    out.insert(out.end(), buf, buf + n);
  }
  return out;
}

struct AppendCase {
  const char* name;
  std::vector<size_t> sizes;
};

class WriteQueueRoundTripTest : public ::testing::TestWithParam<AppendCase> {};

TEST_P(WriteQueueRoundTripTest, FlushDeliversEveryAppendedByteInOrder) {
  BufferPool pool(/*chunk_size=*/64, /*chunk_count=*/64);
  WriteQueue queue(&pool, /*limit_bytes=*/4096);
  std::vector<uint8_t> expected;
  uint8_t seed = 1;
  for (size_t size : GetParam().sizes) {
    const std::vector<uint8_t> bytes = Pattern(size, seed++);
    ASSERT_TRUE(queue.Append(bytes));
    expected.insert(expected.end(), bytes.begin(), bytes.end());
  }
  EXPECT_EQ(queue.bytes(), expected.size());
  EXPECT_EQ(queue.empty(), expected.empty());

  SocketPair pair = MakeSocketPair();
  ASSERT_TRUE(queue.FlushTo(pair.writer.get()).ok());
  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(queue.bytes(), 0u);
  EXPECT_EQ(pool.available(), pool.chunk_count());
  EXPECT_EQ(ReadAvailable(pair.reader.get()), expected);
}

INSTANTIATE_TEST_SUITE_P(
    ChunkBoundaries, WriteQueueRoundTripTest,
    ::testing::Values(AppendCase{"Nothing", {}}, AppendCase{"OneByte", {1}},
                      AppendCase{"ExactlyOneChunk", {64}}, AppendCase{"OneChunkPlusOne", {65}},
                      AppendCase{"FillsTheTailThenSpills", {1, 63, 1, 64, 127}},
                      AppendCase{"EmptyAppendsBetween", {10, 0, 10, 0}},
                      AppendCase{"MoreChunksThanOneFlushCall", {64 * 20 + 3}},
                      AppendCase{"UpToTheLimit", {4000, 96}}),
    [](const ::testing::TestParamInfo<AppendCase>& info) { return info.param.name; });

TEST(WriteQueueTest, AppendOverTheLimitIsRefusedWhole) {
  BufferPool pool(64, 64);
  WriteQueue queue(&pool, /*limit_bytes=*/100);
  ASSERT_TRUE(queue.Append(Pattern(60, 0)));
  const size_t free_chunks = pool.available();
  EXPECT_FALSE(queue.Append(Pattern(41, 0)));
  EXPECT_EQ(queue.bytes(), 60u);
  EXPECT_EQ(pool.available(), free_chunks);
  EXPECT_FALSE(queue.CanAppend(41));
  EXPECT_TRUE(queue.CanAppend(40));
  EXPECT_TRUE(queue.Append(Pattern(40, 0)));
  EXPECT_EQ(queue.bytes(), 100u);
  EXPECT_FALSE(queue.Append(Pattern(1, 0)));
}

TEST(WriteQueueTest, PoolExhaustionRefusesAppend) {
  BufferPool pool(/*chunk_size=*/16, /*chunk_count=*/4);
  WriteQueue first(&pool, /*limit_bytes=*/1000);
  WriteQueue second(&pool, /*limit_bytes=*/1000);
  ASSERT_TRUE(first.Append(Pattern(40, 0)));  // 3 chunks, 8 bytes of room left in the last.
  EXPECT_EQ(pool.available(), 1u);
  // Under the queue's own limit, but needs two chunks where one is free.
  EXPECT_FALSE(second.Append(Pattern(17, 0)));
  EXPECT_EQ(second.bytes(), 0u);
  EXPECT_EQ(pool.available(), 1u);
  // The tail room of the first queue plus the last chunk take exactly 24 more bytes there.
  EXPECT_FALSE(first.Append(Pattern(25, 0)));
  EXPECT_TRUE(first.Append(Pattern(24, 0)));
  EXPECT_EQ(pool.available(), 0u);
  EXPECT_FALSE(second.Append(Pattern(1, 0)));
  first.Clear();
  EXPECT_EQ(pool.available(), 4u);
  EXPECT_TRUE(second.Append(Pattern(17, 0)));
}

TEST(WriteQueueTest, AppendAllAppendsEveryPartOrNone) {
  BufferPool pool(32, 8);
  WriteQueue queue(&pool, /*limit_bytes=*/50);
  const std::vector<uint8_t> prefix = {0xAB, 0xCD};
  const std::vector<uint8_t> body = Pattern(40, 3);
  ASSERT_TRUE(queue.AppendAll({prefix, body}));
  EXPECT_EQ(queue.bytes(), 42u);
  EXPECT_FALSE(queue.AppendAll({prefix, Pattern(7, 0)}));  // 51 > 50
  EXPECT_EQ(queue.bytes(), 42u);

  SocketPair pair = MakeSocketPair();
  ASSERT_TRUE(queue.FlushTo(pair.writer.get()).ok());
  std::vector<uint8_t> expected = prefix;
  expected.insert(expected.end(), body.begin(), body.end());
  EXPECT_EQ(ReadAvailable(pair.reader.get()), expected);
}

TEST(WriteQueueTest, FlushStopsWhenTheSocketIsFullAndResumesWhereItStopped) {
  constexpr size_t kTotal = 1 << 20;
  BufferPool pool(4096, kTotal / 4096);
  WriteQueue queue(&pool, kTotal);
  const std::vector<uint8_t> bytes = Pattern(kTotal, 9);
  // Appends of odd sizes so that flushes end in the middle of chunks.
  for (size_t at = 0; at < kTotal;) {
    const size_t n = std::min<size_t>(kTotal - at, 1000 + at % 777);
    ASSERT_TRUE(queue.Append(absl::MakeConstSpan(bytes).subspan(at, n)));
    at += n;
  }

  SocketPair pair = MakeSocketPair(/*send_buffer=*/16384);
  std::vector<uint8_t> received;
  int flushes_that_left_bytes = 0;
  while (!queue.empty()) {
    ASSERT_TRUE(queue.FlushTo(pair.writer.get()).ok());
    if (!queue.empty()) ++flushes_that_left_bytes;
    const std::vector<uint8_t> got = ReadAvailable(pair.reader.get());
    received.insert(received.end(), got.begin(), got.end());
    ASSERT_EQ(queue.bytes() + received.size(), kTotal);
  }
  const std::vector<uint8_t> rest = ReadAvailable(pair.reader.get());
  received.insert(received.end(), rest.begin(), rest.end());
  EXPECT_GT(flushes_that_left_bytes, 0) << "the socket never filled up; the test proves nothing";
  EXPECT_EQ(received, bytes);
  EXPECT_EQ(pool.available(), pool.chunk_count());
}

TEST(WriteQueueTest, FlushToABrokenSocketReturnsTheErrorAndKeepsTheBytes) {
  BufferPool pool(64, 4);
  WriteQueue queue(&pool, 256);
  ASSERT_TRUE(queue.Append(Pattern(100, 0)));
  SocketPair pair = MakeSocketPair();
  pair.reader.reset();
  // MSG_NOSIGNAL: without it this would die of SIGPIPE.
  const absl::Status status = queue.FlushTo(pair.writer.get());
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("Broken pipe"), absl::string_view::npos) << status;
  EXPECT_EQ(queue.bytes(), 100u);
}

TEST(WriteQueueTest, FlushToAPipeUsesWritev) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  BufferPool pool(64, 8);
  WriteQueue queue(&pool, 512);
  const std::vector<uint8_t> bytes = Pattern(300, 4);
  ASSERT_TRUE(queue.Append(bytes));
  ASSERT_TRUE(queue.FlushTo(write_end.get()).ok());
  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(ReadAvailable(read_end.get()), bytes);
}

TEST(WriteQueueTest, ClearAndDestructionReturnChunks) {
  BufferPool pool(64, 8);
  {
    WriteQueue queue(&pool, 512);
    ASSERT_TRUE(queue.Append(Pattern(300, 0)));
    EXPECT_EQ(pool.available(), 3u);
    queue.Clear();
    EXPECT_TRUE(queue.empty());
    EXPECT_EQ(pool.available(), 8u);
    ASSERT_TRUE(queue.Append(Pattern(130, 0)));
    EXPECT_EQ(pool.available(), 5u);
  }
  EXPECT_EQ(pool.available(), 8u);
}

TEST(WriteQueueAllocationTest, CountingOperatorNewSeesAllocations) {
  // Without this the zeros below could mean the counter is not installed.
  const long before = g_allocations.load();
  auto* p = new std::vector<int>(10);
  delete p;
  EXPECT_GE(g_allocations.load() - before, 2);
}

TEST(WriteQueueAllocationTest, PoolAndQueueDoNotAllocateAfterConstruction) {
  BufferPool pool(4096, 64);
  WriteQueue queue(&pool, 64 * 4096);
  SocketPair pair = MakeSocketPair(/*send_buffer=*/16384);
  const std::vector<uint8_t> bytes = Pattern(3000, 5);
  std::vector<uint8_t> sink(1 << 16);

  const long before = g_allocations.load();
  for (int round = 0; round < 50; ++round) {
    Chunk* chunk = pool.Acquire();
    pool.Release(chunk);
    for (int i = 0; i < 20; ++i) {
      if (!queue.Append(bytes)) break;
    }
    ASSERT_TRUE(queue.AppendAll({absl::MakeConstSpan(bytes).first(2), bytes}) ||
                !queue.CanAppend(bytes.size() + 2));
    while (!queue.empty()) {
      ASSERT_TRUE(queue.FlushTo(pair.writer.get()).ok());
      while (::read(pair.reader.get(), sink.data(), sink.size()) > 0) {
      }
    }
    ASSERT_TRUE(queue.Append(bytes));
    queue.Clear();
  }
  EXPECT_EQ(g_allocations.load(), before);
}

}  // namespace
}  // namespace ferry::dataplane
