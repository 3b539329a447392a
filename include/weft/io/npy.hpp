// weft/io/npy.hpp - arrays as stacks of .npy files (dask.array.to_npy_stack,
// from_npy_stack) and as raw binary files (numpy.tofile / numpy.fromfile).
//
//   namespace wa = weft::array;
//   weft::io::to_npy_stack("out/", x, 0);             // out/0.npy, out/1.npy, ..., out/info
//   wa::Array y = weft::io::from_npy_stack("out/");   // numpy.load("out/1.npy") reads one block
//   weft::io::to_raw("x.bin", x);                     // numpy.fromfile("x.bin", "<f8")
//   wa::Array z = weft::io::from_raw("x.bin", {100, 50}, wa::DType::float64, {10, 50});
//
// An npy stack is a folder holding one .npy file (NumPy's format 1.0, or 2.0
// for a header over 64 KiB) per block along `axis`, the array being cut only
// along that axis, and `info`: a Python pickle of {'chunks', 'dtype', 'axis'}
// as dask writes it, so dask.array.from_npy_stack reads weft's stacks and
// weft reads dask's (any pickle protocol 2-5 of that dictionary).
//
// Writing is one step over the blocks where they are (on the distributed
// scheduler every worker writes the blocks it holds; nothing moves between
// ranks). The folder is written as `<dirname>.weft-tmp-<token>` beside the
// target and renamed into place when every block is written and synced, so
// a failure leaves nothing at the target (and an existing stack untouched);
// replacing an existing stack needs `overwrite`. A raw file is made the same
// way as a file: every block is written at its offset in C order by the rank
// that holds it, and rank 0 renames the file once all succeeded. Both need
// the target folder on a file system every rank sees (as parallel HDF5 does).
//
// Reading: from_npy_stack reads `info` and every block's header when it is
// called, so a missing folder, info or block file, or a block whose header
// disagrees with info (dtype, shape) is an error before any task exists; each
// block is then one read task. from_raw checks the file's size first.
// Errors name the path: IoError "cannot-open", "cannot-read" (a malformed
// header or info, a truncated file), "cannot-write", "target-exists";
// TypeError "unsupported-dtype"; ValueError "bad-axis", "unknown-chunks",
// "bad-option" (a raw size that does not match).
#pragma once

#include <cstdint>
#include <string>

#include "weft/array/array.hpp"
#include "weft/array/chunks.hpp"
#include "weft/compute.hpp"

namespace weft::io {

struct NpyWriteOptions {
  /// Replace an existing folder at the path (without it: IoError "target-exists").
  bool overwrite = false;
};

/// The stack in folder `dirname` (dask.array.from_npy_stack): one block per
/// .npy file along the stack's axis.
array::Array from_npy_stack(const std::string& dirname);

/// Writes `x` as an npy stack along `axis` into the new folder `dirname`
/// (dask.array.to_npy_stack): x is first rechunked to one block on every other
/// axis. ValueError "bad-axis" for an axis x lacks (a 0-d x has none).
void to_npy_stack(const std::string& dirname, const array::Array& x, int axis = 0,
                  const NpyWriteOptions& options = {}, const ComputeOptions& compute = {});

/// The raw file at `path` as an array of `shape` and `dtype` (C order, this
/// machine's byte order), the data starting `offset` bytes in, cut into
/// `chunks` (numpy.fromfile, or numpy.memmap with an offset). IoError
/// "cannot-open" for a missing file; ValueError "bad-option" when the file's
/// size is not offset + the array's bytes.
array::Array from_raw(const std::string& path, const array::Shape& shape, array::DType dtype,
                      const array::ChunkSpec& chunks = "auto", std::int64_t offset = 0);

/// Writes `x`'s elements in C order, in this machine's byte order, to the new
/// file `path` (x.compute().tofile(path)), each block at its place by the
/// task or rank holding it.
void to_raw(const std::string& path, const array::Array& x, const NpyWriteOptions& options = {},
            const ComputeOptions& compute = {});

}  // namespace weft::io
