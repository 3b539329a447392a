// src/io/raw.cpp - raw binary files (weft/io/npy.hpp): the elements in C
// order, this machine's byte order, nothing else (numpy.tofile/fromfile).
//
// A block of a C-order file is a set of runs of neighbouring elements: one
// per row of the block, longer where the block spans whole trailing axes (a
// block of whole rows is one run). Reads and writes go run by run with
// pread/pwrite, so blocks are read and written in place by any rank.
#include <fcntl.h>
#include <sys/stat.h>

#include <filesystem>
#include <utility>
#include <vector>

#include "blocks.hpp"
#include "posix_file.hpp"
#include "staging.hpp"
#include "weft/collective.hpp"
#include "weft/error.hpp"
#include "weft/io/npy.hpp"

namespace weft::io {

namespace detail {

namespace fs = std::filesystem;
using array::DType;
using array::NDArray;
using array::Shape;

// Calls run(file_byte, block_byte, bytes) for each run of the block
// [start, start + extent) of a C-order array of `shape`, in the block's own
// C order (so block_byte grows by `bytes` each time).
template <class Run>
void for_each_run(const Shape& shape, const Shape& start, const Shape& extent, std::size_t itemsize, Run&& run) {
  if (array::shape_size(extent) == 0) return;
  // Axes k.. form one run: axis k may be partial, every later one is whole.
  std::size_t k = shape.size();
  std::int64_t run_elements = 1;
  while (k > 0) {
    --k;
    run_elements *= extent[k];
    if (extent[k] != shape[k]) break;
  }
  std::vector<std::int64_t> stride(shape.size(), 1);
  for (std::size_t a = shape.size(); a-- > 1;) stride[a - 1] = stride[a] * shape[a];
  std::int64_t base = 0;  // the element where the block's first run starts
  for (std::size_t a = 0; a < shape.size(); ++a) base += start[a] * stride[a];
  const auto bytes = static_cast<std::int64_t>(itemsize);
  std::vector<std::int64_t> at(k, 0);  // the odometer over the outer axes 0..k-1
  for (std::int64_t block_byte = 0;; block_byte += run_elements * bytes) {
    std::int64_t element = base;
    for (std::size_t a = 0; a < k; ++a) element += at[a] * stride[a];
    run(element * bytes, block_byte, static_cast<std::size_t>(run_elements * bytes));
    std::size_t a = k;
    while (a > 0 && ++at[a - 1] == extent[a - 1]) at[--a] = 0;
    if (a == 0) return;
  }
}

/// What a read task needs: the file and the array's layout in it.
struct RawReadSpec {
  std::string path;
  Shape shape;
  DType dtype = DType::float64;
  std::int64_t offset = 0;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(path, shape, dtype, offset);
  }
};

NDArray read_raw_block(const RawReadSpec& spec, const Shape& start, const Shape& extent) {
  NDArray out(spec.dtype, extent);
  const PosixFile file = PosixFile::open_read(spec.path, "from_raw");
  auto* data = static_cast<char*>(out.raw_data());
  for_each_run(spec.shape, start, extent, out.itemsize(),
               [&](std::int64_t file_byte, std::int64_t block_byte, std::size_t n) {
                 file.read_at(data + block_byte, n, spec.offset + file_byte, "from_raw");
               });
  return out;
}

/// A whole to_raw, as every writing rank sees it.
struct RawWritePlan {
  std::string target;
  std::string token;
  Shape shape;
  array::Chunks chunks;
  DType dtype = DType::float64;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(target, token, shape, chunks, dtype);
  }
  // The token is fresh for every write: it names the write.
  void tokenize(Hasher& h) const { tokenize_into(h, token); }
};

// The step: every rank opens the temporary file (made at its final size)
// and writes the blocks it holds at their places; rank 0 renames it once
// all succeeded.
void write_raw_step(const CollectiveContext& ctx, const LocalParts<NDArray>& mine, const RawWritePlan& plan) {
  StagedFile stage(plan.target, plan.token);
  write_staged(ctx, stage, "raw file", [&] {
    PosixFile file = PosixFile::open_write(stage.temporary(), O_CREAT, "raw file", plan.target);
    file.resize(array::shape_size(plan.shape) * static_cast<std::int64_t>(array::itemsize(plan.dtype)));
    const ArrayBlocks blocks(plan.chunks, 0);
    for (std::size_t i = 0; i < mine.index.size(); ++i) {
      const std::vector<std::int64_t> index = blocks.index(mine.index[i]);
      const Shape extent = blocks.checked_extent(index, *mine.values[i], "to_raw: '" + plan.target + "'");
      const NDArray block = mine.values[i]->astype(plan.dtype);  // contiguous
      const auto* data = static_cast<const char*>(block.raw_data());
      for_each_run(plan.shape, blocks.start(index), extent, block.itemsize(),
                   [&](std::int64_t file_byte, std::int64_t block_byte, std::size_t n) {
                     file.write_at(data + block_byte, n, file_byte);
                   });
    }
    file.close();
  });
}

}  // namespace detail

array::Array from_raw(const std::string& path, const array::Shape& shape, array::DType dtype,
                      const array::ChunkSpec& chunks, std::int64_t offset) {
  using namespace detail;
  const fs::path file_path = fs::absolute(path).lexically_normal();
  for (const std::int64_t n : shape)
    if (n < 0) throw ValueError("bad-option", "from_raw: shape " + array::shape_str(shape) + " has a negative extent");
  if (offset < 0) throw ValueError("bad-option", "from_raw: offset " + std::to_string(offset) + " is negative");
  const PosixFile file = PosixFile::open_read(file_path, "from_raw");
  const std::int64_t size = file.size();
  const std::int64_t nbytes = array::shape_size(shape) * static_cast<std::int64_t>(array::itemsize(dtype));
  if (size != offset + nbytes)
    throw ValueError("bad-option", "from_raw: '" + path + "' has " + std::to_string(size) + " bytes, but " +
                                       std::string(array::dtype_name(dtype)) + " " + array::shape_str(shape) +
                                       " from byte " + std::to_string(offset) + " needs " +
                                       std::to_string(offset + nbytes));
  struct stat st {};
  ::stat(file_path.c_str(), &st);
  const array::Chunks block_chunks = array::normalize_chunks(chunks, shape, dtype);
  RawReadSpec spec{file_path.string(), shape, dtype, offset};
  // The file's identity and modification time are part of the token: a
  // rewritten file is another array.
  const Token token = array::detail::op_token("from-raw", spec.path, shape, dtype, block_chunks, offset,
                                              static_cast<std::int64_t>(st.st_ino), static_cast<std::int64_t>(st.st_size),
                                              static_cast<std::int64_t>(st.st_mtim.tv_sec),
                                              static_cast<std::int64_t>(st.st_mtim.tv_nsec));
  const ArrayBlocks blocks(block_chunks, 0);
  return array::make_array(array::detail::ArrayMeta{"from-raw", token, shape, block_chunks, dtype},
                           [spec, blocks](std::span<const std::int64_t> index, Key key) {
                             const std::vector<std::int64_t> at(index.begin(), index.end());
                             return weft::detail::make_call_task(std::move(key), false, &detail::read_raw_block, spec,
                                                                 blocks.start(at), blocks.extent(at));
                           });
}

void to_raw(const std::string& path, const array::Array& x, const NpyWriteOptions& options,
            const ComputeOptions& compute) {
  using namespace detail;
  if (array::has_unknown(x.chunks()))
    throw ValueError("unknown-chunks", "to_raw: the array has unknown chunk sizes " + array::chunks_str(x.chunks()) +
                                           "; call compute_chunk_sizes first");
  RawWritePlan plan{check_output_target(path, options.overwrite, "to_raw").string(), staging_token(), x.shape(),
                    x.chunks(), x.dtype()};
  partitioned_collective(&write_raw_step, DelayedOptions{.name = "to-raw", .pure = false})(array::to_delayed(x), plan)
      .compute(compute);
}

}  // namespace weft::io
