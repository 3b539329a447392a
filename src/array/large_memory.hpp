// Memory for large arrays (a huge page or more): whole transparent huge pages,
// kept for the next large array when one is freed.
#pragma once

#include <cstddef>
#include <memory>

namespace weft::array::detail {

/// Arrays of this many bytes or more get large memory.
inline constexpr std::size_t kHugePage = std::size_t{2} << 20;

/// At least `bytes`, in whole huge pages from a huge-page boundary,
/// uninitialised; kept for reuse when the last owner lets go. Throws
/// std::bad_alloc when the system has no memory left.
std::shared_ptr<void> allocate_large(std::size_t bytes);

/// Gives every kept mapping back to the system (the nanny calls this before
/// it measures a worker's memory against its limits).
void release_kept_large_memory();

}  // namespace weft::array::detail
