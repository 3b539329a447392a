// Large arrays live in mappings of whole transparent huge pages, and a freed
// one is kept for the next. Fresh memory faults and zeroes every page first:
// that was most of a block read's CPU time (docs/benchmarks.md, "Array I/O"),
// and 4-10% of a 4000^2 matmul (its 16 output blocks and the 128 MB result,
// allocated again on each run). A kept mapping is written again without a
// fault. Kept mappings are MADV_FREE, so the kernel may take their pages back
// under memory pressure (they then fault in again, zeroed: the memory is
// uninitialised either way).
#include "large_memory.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <new>
#include <vector>

namespace weft::array::detail {
namespace {

class LargeMemory {
 public:
  // Never destroyed: arrays may be freed during exit, after static destructors.
  static LargeMemory& instance() {
    static LargeMemory* memory = new LargeMemory;
    return *memory;
  }

  std::shared_ptr<void> allocate(std::size_t bytes) {
    const std::size_t wanted = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    Mapping mapping = take(wanted);
    if (mapping.data == nullptr) mapping = map(wanted);
    return std::shared_ptr<void>(mapping.data, [this, mapping](void*) { keep(mapping); });
  }

  void release_kept() {
    std::vector<Mapping> kept;
    {
      std::lock_guard lock(mutex_);
      kept.swap(kept_);
      kept_bytes_ = 0;
    }
    for (const Mapping& mapping : kept) ::munmap(mapping.data, mapping.bytes);
  }

 private:
  // Kept at most: an eighth of the machine's memory, at least 512 MiB. Less
  // was too little: reading 800 MB in 128 MB blocks on 2 threads had up to
  // ~600 MB of blocks alive at once, so a 512 MiB cap dropped some mappings
  // each pass and the next pass faulted 776 MB in again (3.4 instead of
  // 5 GB/s from the page cache). Kept pages cost nothing the kernel cannot
  // take back (MADV_FREE); a worker's RSS counts them until the nanny
  // releases them.
  static std::size_t max_kept_bytes() {
    static const std::size_t bytes = [] {
      const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
      const std::size_t eighth = pages > 0 && page > 0 ? static_cast<std::size_t>(pages) * static_cast<std::size_t>(page) / 8 : 0;
      return std::max(eighth, std::size_t{512} << 20);
    }();
    return bytes;
  }
  struct Mapping {
    void* data = nullptr;
    std::size_t bytes = 0;
  };

  // The smallest kept mapping of `bytes` to twice that, so a small array does
  // not hold a large mapping.
  Mapping take(std::size_t bytes) {
    std::lock_guard lock(mutex_);
    auto best = kept_.end();
    for (auto it = kept_.begin(); it != kept_.end(); ++it)
      if (it->bytes >= bytes && it->bytes <= 2 * bytes && (best == kept_.end() || it->bytes < best->bytes)) best = it;
    if (best == kept_.end()) return {};
    const Mapping mapping = *best;
    kept_.erase(best);
    kept_bytes_ -= mapping.bytes;
    return mapping;
  }

  // A new mapping of `bytes` on a huge-page boundary: one huge page more is
  // mapped and the unaligned ends are unmapped.
  static Mapping map(std::size_t bytes) {
    const std::size_t mapped = bytes + kHugePage;
    void* base = ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) throw std::bad_alloc();
    const auto first = reinterpret_cast<std::uintptr_t>(base);
    const auto aligned = (first + kHugePage - 1) / kHugePage * kHugePage;
    if (aligned > first) ::munmap(base, aligned - first);
    if (const std::size_t tail = first + mapped - (aligned + bytes); tail > 0)
      ::munmap(reinterpret_cast<void*>(aligned + bytes), tail);
    void* data = reinterpret_cast<void*>(aligned);
    ::madvise(data, bytes, MADV_HUGEPAGE);  // advice only
    return {data, bytes};
  }

  void keep(const Mapping& mapping) {
    {
      std::lock_guard lock(mutex_);
      if (kept_bytes_ + mapping.bytes <= max_kept_bytes()) {
        ::madvise(mapping.data, mapping.bytes, MADV_FREE);
        kept_.push_back(mapping);
        kept_bytes_ += mapping.bytes;
        return;
      }
    }
    ::munmap(mapping.data, mapping.bytes);
  }

  std::mutex mutex_;
  std::vector<Mapping> kept_;
  std::size_t kept_bytes_ = 0;
};

}  // namespace

std::shared_ptr<void> allocate_large(std::size_t bytes) { return LargeMemory::instance().allocate(bytes); }

void release_kept_large_memory() { LargeMemory::instance().release_kept(); }

}  // namespace weft::array::detail
