// Per-service traffic counters of one worker: frames and bytes in and out,
// keyed by service_id in a fixed open-addressing table (no allocation, no
// lock). The owning worker writes; the metrics thread reads, sums the workers
// and names the services from the route table.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace ferry::dataplane {

class ServiceCounters {
 public:
  // Services tracked per worker; traffic of services beyond this is counted
  // under service_id 0 ("other").
  static constexpr size_t kSlots = 1024;

  struct Slot {
    std::atomic<uint32_t> service_id{0};  // 0: free
    std::atomic<uint64_t> frames_in{0};
    std::atomic<uint64_t> bytes_in{0};
    std::atomic<uint64_t> frames_out{0};
    std::atomic<uint64_t> bytes_out{0};
  };

  // Owning worker only.
  void CountIn(uint32_t service_id, size_t bytes) {
    Slot& s = SlotFor(service_id);
    Add(s.frames_in, 1);
    Add(s.bytes_in, bytes);
  }
  void CountOut(uint32_t service_id, size_t bytes) {
    Slot& s = SlotFor(service_id);
    Add(s.frames_out, 1);
    Add(s.bytes_out, bytes);
  }

  // Any thread: calls fn(service_id, frames_in, bytes_in, frames_out, bytes_out)
  // for every used slot.
  template <typename F>
  void ForEach(F&& fn) const {
    for (const Slot& s : slots_) {
      if (s.service_id.load(std::memory_order_acquire) != 0) Report(s, fn);
    }
    if (overflow_.frames_in.load(std::memory_order_relaxed) != 0 ||
        overflow_.frames_out.load(std::memory_order_relaxed) != 0) {
      Report(overflow_, fn);  // service_id 0: "other"
    }
  }

 private:
  template <typename F>
  static void Report(const Slot& s, F& fn) {
    fn(s.service_id.load(std::memory_order_acquire), s.frames_in.load(std::memory_order_relaxed),
       s.bytes_in.load(std::memory_order_relaxed), s.frames_out.load(std::memory_order_relaxed),
       s.bytes_out.load(std::memory_order_relaxed));
  }
  static void Add(std::atomic<uint64_t>& counter, uint64_t n) {
    counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  Slot& SlotFor(uint32_t service_id) {
    if (service_id == 0) return overflow_;
    size_t i = (service_id * 2654435761u) % kSlots;
    for (size_t probe = 0; probe < kSlots; ++probe, i = (i + 1) % kSlots) {
      uint32_t id = slots_[i].service_id.load(std::memory_order_relaxed);
      if (id == service_id) return slots_[i];
      if (id == 0) {
        slots_[i].service_id.store(service_id, std::memory_order_release);
        return slots_[i];
      }
    }
    return overflow_;
  }

  std::array<Slot, kSlots> slots_;
  Slot overflow_;
};

}  // namespace ferry::dataplane
